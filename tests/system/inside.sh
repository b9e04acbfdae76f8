#!/usr/bin/env bash
# tests/system/inside.sh - the system tier's cases, run as root inside the
# booted container by tests/system/run.sh (through nsenter): install the
# .deb, follow the README's "Deploying with Postfix" steps (deploy.sh, cut
# out of README.md by run.sh), then mail over SMTP and sendmail(1) into
# an smtp-sink on the container's loopback, and the service stopped,
# started and restarted under systemd; then the README's shared_store
# steps (deploy-shared.sh) with coexist-follow and Debian's PostgreSQL;
# purge, the previous release, upgrade, purge.
#
# Usage: inside.sh DIR   (DIR holds the .debs, deploy*.sh, lib.sh)
# Prints "PASS name" or "FAIL name: why" per case; the reasons and every
# step go to stderr.
set -u
D=$1
# shellcheck source=tests/system/lib.sh
. "$D/lib.sh"
mkdir -p "$W"
SOCK=/var/spool/postfix/coexist-milter/coexist-milter.sock
BCC=adam.barr@corp.example BCC_ALIAS=adam@pop.example
REWRITE=bob.kelly@corp.example REWRITE_ALIAS=bob@pop.example
MIGRATED=carol.diaz@corp.example MIGRATED_ALIAS=carol@pop.example
OTHER=dave@elsewhere.example

# run_case NAME FUNCTION [critical] - run one case in a subshell, print its
# verdict. When a critical case fails, the cases after it cannot mean
# anything: one FAIL says how many were not run, and the script ends.
run_case() {
    : >"$W/why"
    echo "==== $1 $(date +%T.%3N)" >&2
    if ( set -u; "$2" ) >&2; then
        echo "PASS $1"
        return 0
    fi
    echo "FAIL $1: $(head -1 "$W/why")"
    [ -s "$W/why" ] || echo "FAIL $1: (no reason recorded)"
    if [ "${3:-}" = critical ]; then
        echo "FAIL not-run: $(grep -c '^run_case ' "$0") cases in all, the rest not run after $1 failed"
        exit 1
    fi
}

# ---- the package and the README's steps ------------------------------------

c_boot() {
    local state failed
    state=$(systemctl is-system-running)
    failed=$(systemctl --failed --no-legend --plain | awk '{print $1}' | tr '\n' ' ')
    [ "$state" = running ] || sys_why "system is '$state', failed units: $failed"
    systemctl is-active --quiet postfix rsyslog || sys_why "postfix or rsyslog not active"
}

c_install() {
    dpkg -i "$D/coexist-milter.deb" >"$W/install.log" 2>&1 ||
        { sys_why "dpkg -i: $(tail -2 "$W/install.log" | tr '\n' '|')"; return 1; }
    # The postinst enables and starts the service, with the packaged socket.
    systemctl is-enabled --quiet coexist-milter || sys_why "coexist-milter not enabled" || return 1
    poll "$SOCK_TIMEOUT" systemctl is-active --quiet coexist-milter ||
        sys_why "coexist-milter not active after install: $(systemctl status --no-pager coexist-milter | tail -2 | tr '\n' '|')" || return 1
    # The follower is for shared_store hosts only: installed, not enabled, not started.
    ! systemctl is-enabled --quiet coexist-follow && ! systemctl is-active --quiet coexist-follow ||
        sys_why "coexist-follow is enabled or running after install"
}

c_readme_steps() {
    # Exactly the README's commands; sh -e: the first one that fails fails the case.
    sh -ex "$D/deploy.sh" >"$W/deploy.log" 2>&1 ||
        sys_why "README step failed: $(tail -3 "$W/deploy.log" | tr '\n' '|')"
}

c_service_deployed() {
    local pid user
    poll "$SOCK_TIMEOUT" test -S "$SOCK" || { sys_why "no socket $SOCK: $(journalctl -u coexist-milter -n 3 --no-pager | tr '\n' '|')"; return 1; }
    pid=$(systemctl show -p MainPID --value coexist-milter)
    user=$(stat -c %U "/proc/$pid")
    [ "$user" = coexist-milter ] || sys_why "daemon runs as '$user'" || return 1
    # "systemctl restart" succeeds even when the daemon then exits at once.
    [ "$(systemctl show -p NRestarts --value coexist-milter)" = 0 ] ||
        sys_why "the daemon restarted $(systemctl show -p NRestarts --value coexist-milter) times" || return 1
    [ "$(stat -c '%a %U %G' "$SOCK")" = "770 coexist-milter coexist-milter" ] ||
        sys_why "socket is $(stat -c '%a %U %G' "$SOCK")" || return 1
    [ "$(stat -c %U /var/lib/coexist-milter/state.tdb)" = coexist-milter ] ||
        sys_why "the store is not coexist-milter's"
}

# The test's own fixture, not a deployment step: Postfix sends the test
# domains to the sink; three users in three states.
c_fixture() {
    mkdir -p "$SINK_DIR" && chown nobody: "$SINK_DIR" || return 1
    systemd-run --quiet --unit=coexist-sink /usr/sbin/smtp-sink -u nobody \
        -d "$SINK_DIR/%Y%m%d%H%M%S." "127.0.0.1:$SINK_PORT" 128 || { sys_why "systemd-run smtp-sink failed"; return 1; }
    printf '%s smtp:[127.0.0.1]:%s\n' corp.example "$SINK_PORT" pop.example "$SINK_PORT" \
        elsewhere.example "$SINK_PORT" >/etc/postfix/transport
    postmap /etc/postfix/transport &&
        postconf -e 'transport_maps = hash:/etc/postfix/transport' myhostname=sys.test &&
        systemctl reload postfix || { sys_why "postfix transport setup failed"; return 1; }
    coexistctl add "$BCC" "$BCC_ALIAS" &&
        coexistctl add "$REWRITE" "$REWRITE_ALIAS" --mode rewrite &&
        coexistctl add "$MIGRATED" "$MIGRATED_ALIAS" &&
        coexistctl migrate "$MIGRATED" || { sys_why "coexistctl as root failed"; return 1; }
    poll 10 eval "ss -Hltn 'sport = :$SINK_PORT' | grep -q ." || sys_why "smtp-sink does not listen"
}

# ---- mail: SMTP (smtpd_milters) and sendmail(1) (non_smtpd_milters) ---------

# routed PATH - one message per user state through PATH (smtp or local).
routed() {
    local via=$1 send=send_smtp id
    [ "$via" = local ] && send=send_local
    id=$(new_id "$via-bcc"); echo "$id" >>"$W/ids.bcc"
    $send "$id" "$BCC" && expect_rcpts "$id" "$BCC" "$BCC_ALIAS" || return 1
    id=$(new_id "$via-rewrite")
    $send "$id" "$REWRITE" && expect_rcpts "$id" "$REWRITE_ALIAS" || return 1
    id=$(new_id "$via-migrated")
    $send "$id" "$MIGRATED" && expect_rcpts "$id" "$MIGRATED" || return 1
    id=$(new_id "$via-other")
    $send "$id" "$OTHER" && expect_rcpts "$id" "$OTHER" || return 1
    [ -z "$(sink_header "$id" X-Coexist-Milter)" ] || sys_why "an untouched message got X-Coexist-Milter"
}
c_smtp() { routed smtp; }
c_sendmail() { routed local; }

# The milter's decision lines, once through rsyslog, once in the journal.
c_mail_log() {
    local want="bcc rcpt=<$BCC> alias=<$BCC_ALIAS> rule=user"
    poll 5 grep -qF "$want" /var/log/mail.log ||
        { sys_why "no '$want' in /var/log/mail.log"; return 1; }
    grep -F "$want" /var/log/mail.log | grep -qE ' coexist-milter\[[0-9]+\]: [0-9A-F]+: bcc ' ||
        { sys_why "mail.log line not 'coexist-milter[PID]: QUEUEID: ...': $(grep -F "$want" /var/log/mail.log | head -1)"; return 1; }
    grep -qF "rewrite rcpt=<$REWRITE> alias=<$REWRITE_ALIAS> rule=user" /var/log/mail.log ||
        { sys_why "no rewrite line in /var/log/mail.log"; return 1; }
    grep -qF "rcpt=<$MIGRATED>" /var/log/mail.log && { sys_why "a line for the migrated user"; return 1; }
    grep -qE "coexistctl\[[0-9]+\]: migrate $MIGRATED " /var/log/mail.log ||
        sys_why "coexistctl's migrate line is not in /var/log/mail.log"
}

c_journal() {
    local j
    j=$(journalctl -u coexist-milter --no-pager -o cat)
    printf '%s\n' "$j" | grep -qF "bcc rcpt=<$BCC> alias=<$BCC_ALIAS> rule=user" ||
        { sys_why "journalctl -u coexist-milter lacks the bcc line"; return 1; }
    printf '%s\n' "$j" | grep -qF "starting: socket=unix:$SOCK" ||
        sys_why "journalctl -u coexist-milter lacks 'starting: socket=unix:$SOCK'"
}

# ---- the administrator at work ------------------------------------------------

c_migrate() {
    local id
    coexistctl migrate "$BCC" >"$W/migrate.log" 2>&1 || { sys_why "coexistctl migrate failed"; return 1; }
    id=$(new_id migrated-now)
    send_smtp "$id" "$BCC" && expect_rcpts "$id" "$BCC" || return 1
    id=$(new_id migrated-now-local)
    send_local "$id" "$BCC" && expect_rcpts "$id" "$BCC" || return 1
    coexistctl unmigrate "$BCC" >>"$W/migrate.log" 2>&1 || { sys_why "coexistctl unmigrate failed"; return 1; }
    id=$(new_id unmigrated-again)
    send_smtp "$id" "$BCC" && expect_rcpts "$id" "$BCC" "$BCC_ALIAS"
}

# Down: SMTP is refused with 4xx, sendmail(1) mail waits in maildrop;
# started again, the waiting message is routed and delivered.
c_stop_start() {
    local id local_id
    systemctl stop coexist-milter || { sys_why "systemctl stop failed"; return 1; }
    id=$(new_id stopped-smtp)
    smtp_refused "$id" 451 "$REWRITE" || return 1
    local_id=$(new_id stopped-local)
    send_local "$local_id" "$REWRITE" || return 1
    sleep 3
    in_maildrop "$local_id" || { sys_why "the sendmail(1) message is not in maildrop"; return 1; }
    arrived "$local_id" && { sys_why "delivered while the milter was down"; return 1; }
    systemctl start coexist-milter || { sys_why "systemctl start failed"; return 1; }
    poll "$SOCK_TIMEOUT" test -S "$SOCK" || { sys_why "no socket after start"; return 1; }
    # pickup retries maildrop on its own timer (60 s); an admin flushes.
    postqueue -f
    expect_rcpts "$local_id" "$REWRITE_ALIAS" || return 1
    id=$(new_id started-smtp)
    send_smtp "$id" "$REWRITE" && expect_rcpts "$id" "$REWRITE_ALIAS"
}

# Restarted while mail flows: every message the MTA accepted arrives
# routed; those refused during the restart got 4xx (the client retries),
# never an unrouted delivery. sendmail(1) mail waits and is routed too.
c_restart_traffic() {
    local i id pid_before pid_after bad=0
    pid_before=$(systemctl show -p MainPID --value coexist-milter)
    : >"$W/accepted"; : >"$W/refused"; : >"$W/local"
    for i in $(seq 30); do
        [ "$i" = 10 ] && { systemctl restart coexist-milter & }
        id=$(new_id "restart-$i")
        if [ $((i % 3)) = 0 ]; then
            send_local "$id" "$BCC" && echo "$id" >>"$W/local"
        elif swaks --server 127.0.0.1 --port 25 --helo client.example --from "$SENDER" \
                --to "$BCC" --data "@$(message "$id" >"$W/$id.eml"; echo "$W/$id.eml")" \
                >"$W/$id.smtp" 2>&1; then
            echo "$id" >>"$W/accepted"
        elif grep -qE '^ *<\*\* +4[0-9][0-9] ' "$W/$id.smtp"; then
            echo "$id" >>"$W/refused"
        else
            sys_why "$id: neither accepted nor 4xx: $(grep -E '^ *<\*\*' "$W/$id.smtp" | head -1)"; bad=1
        fi
    done
    wait
    poll "$SOCK_TIMEOUT" test -S "$SOCK" || { sys_why "no socket after the restart"; return 1; }
    pid_after=$(systemctl show -p MainPID --value coexist-milter)
    [ "$pid_before" != "$pid_after" ] || { sys_why "the daemon was not restarted"; return 1; }
    postqueue -f
    for id in $(cat "$W/accepted" "$W/local"); do
        expect_rcpts "$id" "$BCC" "$BCC_ALIAS" || bad=1
    done
    for id in $(cat "$W/refused"); do
        arrived "$id" && { sys_why "$id was refused but delivered"; bad=1; }
    done
    echo "accepted $(wc -l <"$W/accepted"), refused $(wc -l <"$W/refused"), sendmail(1) $(wc -l <"$W/local")"
    [ "$bad" = 0 ]
}

# systemd's exposure score of the unit, into the log; at most SECURITY_MAX.
SECURITY_MAX=${SECURITY_MAX:-2.5}
c_security() {
    local score
    systemd-analyze security --no-pager coexist-milter >"$W/security.log" 2>&1
    score=$(sed -n 's/.*Overall exposure level for coexist-milter.service: \([0-9.]*\).*/\1/p' "$W/security.log")
    cat "$W/security.log"
    echo "# systemd-analyze security coexist-milter: $(grep 'Overall exposure' "$W/security.log")" >>"$W/notes"
    [ -n "$score" ] || { sys_why "no score from systemd-analyze security"; return 1; }
    awk -v s="$score" -v m="$SECURITY_MAX" 'BEGIN { exit !(s <= m) }' ||
        sys_why "exposure $score, want <= $SECURITY_MAX"
}

# ---- several MX hosts: the README's shared_store steps, coexist-follow -------

# The README's "Several MX hosts" commands (deploy-shared.sh), against
# Debian's own PostgreSQL in the container standing in for db.corp.example;
# then coexist-follow keeps the replica that the milter routes by.
c_follow() {
    local id pid
    echo '127.0.0.1 db.corp.example' >>/etc/hosts
    poll "$SOCK_TIMEOUT" runuser -u postgres -- psql -qAtc 'select 1' >/dev/null 2>&1 ||
        { sys_why "PostgreSQL does not answer"; return 1; }
    runuser -u postgres -- psql -qc "create role coexist login password 'SECRET'" >"$W/follow.log" 2>&1 &&
        runuser -u postgres -- createdb -O coexist coexist >>"$W/follow.log" 2>&1 ||
        { sys_why "cannot create the database: $(tail -1 "$W/follow.log")"; return 1; }
    sh -ex "$D/deploy-shared.sh" >>"$W/follow.log" 2>&1 ||
        { sys_why "README shared_store step failed: $(tail -3 "$W/follow.log" | tr '\n' '|')"; return 1; }
    export PGSERVICEFILE=/etc/coexist-milter/pg_service.conf PGPASSFILE=/etc/coexist-milter/pgpass
    poll "$SOCK_TIMEOUT" systemctl is-active --quiet coexist-follow ||
        { sys_why "coexist-follow not active: $(journalctl -u coexist-follow -n 3 --no-pager | tr '\n' '|')"; return 1; }
    pid=$(systemctl show -p MainPID --value coexist-follow)
    [ "$(stat -c %U "/proc/$pid")" = coexist-milter ] ||
        { sys_why "coexist-follow (pid $pid) does not run as coexist-milter"; return 1; }
    # Written to PostgreSQL; returns once this host's replica has it.
    coexistctl add "$BCC" "$BCC_ALIAS" >>"$W/follow.log" 2>&1 ||
        { sys_why "coexistctl add with shared_store failed: $(tail -1 "$W/follow.log")"; return 1; }
    id=$(new_id follow-bcc)
    send_smtp "$id" "$BCC" && expect_rcpts "$id" "$BCC" "$BCC_ALIAS" || return 1
    coexistctl migrate "$BCC" >>"$W/follow.log" 2>&1 || { sys_why "coexistctl migrate failed"; return 1; }
    id=$(new_id follow-migrated)
    send_smtp "$id" "$BCC" && expect_rcpts "$id" "$BCC" || return 1
    [ "$(systemctl show -p NRestarts --value coexist-follow)" = 0 ] ||
        { sys_why "coexist-follow restarted"; return 1; }
    coexistctl status >>"$W/follow.log" 2>&1 || { sys_why "coexistctl status failed"; return 1; }
    # Reinstalled (dpkg's upgrade path): the enabled follower runs the new binary.
    dpkg -i "$D/coexist-milter.deb" >>"$W/follow.log" 2>&1 || { sys_why "dpkg -i again failed"; return 1; }
    poll "$SOCK_TIMEOUT" systemctl is-active --quiet coexist-follow ||
        { sys_why "coexist-follow not active after the reinstall"; return 1; }
    [ "$(systemctl show -p MainPID --value coexist-follow)" != "$pid" ] ||
        sys_why "coexist-follow was not restarted by the upgrade"
}

# ---- purge, the previous release, upgrade, purge: under systemd -------------

# purged - nothing of the package is left running or registered: the
# unit, its enablement, the account, its directories.
purged() {
    local st
    st=$(systemctl show -p LoadState --value coexist-milter)
    [ "$st" = not-found ] || { sys_why "unit LoadState '$st' after purge"; return 1; }
    [ ! -e /etc/systemd/system/multi-user.target.wants/coexist-milter.service ] ||
        { sys_why "the enablement symlink is left"; return 1; }
    ! getent passwd coexist-milter >/dev/null && ! getent group coexist-milter >/dev/null ||
        { sys_why "account coexist-milter left"; return 1; }
    [ ! -e /var/lib/coexist-milter ] && [ ! -e /etc/coexist-milter ] && [ ! -e /run/coexist-milter ] ||
        { sys_why "left: $(ls -d /var/lib/coexist-milter /etc/coexist-milter /run/coexist-milter 2>/dev/null | tr '\n' ' ')"; return 1; }
    st=$(systemctl show -p LoadState --value coexist-follow)
    [ "$st" = not-found ] || { sys_why "coexist-follow LoadState '$st' after purge"; return 1; }
    pgrep -x 'coexist-milter|coexistctl' >/dev/null && { sys_why "a coexist-milter or coexistctl process runs on"; return 1; }
    [ -z "$(systemctl --failed --no-legend --plain)" ] ||
        sys_why "failed units: $(systemctl --failed --no-legend --plain | tr '\n' '|')"
}

c_purge_current() {
    dpkg -P coexist-milter >"$W/purge1.log" 2>&1 ||
        { sys_why "dpkg -P: $(tail -2 "$W/purge1.log" | tr '\n' '|')"; return 1; }
    purged
}

# The previous release, deployed with the README's steps, routing mail.
c_previous_deployed() {
    local id
    dpkg -i "$D/previous.deb" >"$W/install-prev.log" 2>&1 ||
        { sys_why "dpkg -i previous: $(tail -2 "$W/install-prev.log" | tr '\n' '|')"; return 1; }
    sh -ex "$D/deploy.sh" >"$W/deploy-prev.log" 2>&1 ||
        { sys_why "README step failed on the previous release: $(tail -2 "$W/deploy-prev.log" | tr '\n' '|')"; return 1; }
    coexistctl add "$BCC" "$BCC_ALIAS" >>"$W/deploy-prev.log" 2>&1 || { sys_why "coexistctl add failed"; return 1; }
    poll "$SOCK_TIMEOUT" test -S "$SOCK" || { sys_why "no socket"; return 1; }
    id=$(new_id previous)
    send_smtp "$id" "$BCC" && expect_rcpts "$id" "$BCC" "$BCC_ALIAS"
}

# Upgraded in place (the edited conffile kept, as apt's default answer
# would): the service runs the new binary, the store and socket are kept.
c_upgrade() {
    local pid id
    dpkg --force-confdef --force-confold -i "$D/coexist-milter.deb" >"$W/upgrade.log" 2>&1 ||
        { sys_why "dpkg -i (upgrade): $(tail -2 "$W/upgrade.log" | tr '\n' '|')"; return 1; }
    [ "$(dpkg-query -W -f='${Version}' coexist-milter)" = "$(dpkg-deb -f "$D/coexist-milter.deb" Version)" ] ||
        { sys_why "not upgraded"; return 1; }
    poll "$SOCK_TIMEOUT" systemctl is-active --quiet coexist-milter || { sys_why "not active after the upgrade"; return 1; }
    pid=$(systemctl show -p MainPID --value coexist-milter)
    case $(readlink "/proc/$pid/exe") in
    *deleted*) sys_why "the old binary still runs (pid $pid)"; return 1 ;;
    esac
    # The export format changed between the releases: ask the new binary.
    coexistctl explain "$BCC" | grep -qF "bcc: deliver to <$BCC> and add <$BCC_ALIAS>" ||
        { sys_why "the store lost $BCC: $(coexistctl explain "$BCC" 2>&1 | tr '\n' '|')"; return 1; }
    grep -q "^socket = unix:$SOCK" /etc/coexist-milter/coexist-milter.conf ||
        { sys_why "the edited socket line is gone"; return 1; }
    coexist-milter -n -c /etc/coexist-milter/coexist-milter.conf >>"$W/upgrade.log" 2>&1 ||
        { sys_why "the kept config does not pass coexist-milter -n"; return 1; }
    poll "$SOCK_TIMEOUT" test -S "$SOCK" || { sys_why "no socket after the upgrade"; return 1; }
    id=$(new_id upgraded)
    send_smtp "$id" "$BCC" && expect_rcpts "$id" "$BCC" "$BCC_ALIAS"
}

c_purge_upgraded() {
    dpkg -P coexist-milter >"$W/purge2.log" 2>&1 ||
        { sys_why "dpkg -P: $(tail -2 "$W/purge2.log" | tr '\n' '|')"; return 1; }
    purged || return 1
    # With the milter gone, Postfix tempfails as milter_default_action says.
    smtp_refused "$(new_id purged)" 451 "$BCC"
}

run_case boot c_boot critical
run_case install c_install critical
run_case readme-deploy-postfix c_readme_steps critical
run_case service-deployed c_service_deployed critical
run_case fixture c_fixture critical
run_case smtp-bcc-rewrite-migrated c_smtp
run_case sendmail-bcc-rewrite-migrated c_sendmail
run_case mail-log c_mail_log
run_case journal c_journal
run_case migrate-next-message c_migrate
run_case stop-4xx-queued-start-delivered c_stop_start
run_case restart-under-traffic c_restart_traffic
run_case systemd-analyze-security c_security
run_case shared-store-follow c_follow
run_case purge c_purge_current
run_case previous-release-deployed c_previous_deployed
run_case upgrade-from-previous c_upgrade
run_case purge-after-upgrade c_purge_upgraded
cat "$W/notes" 2>/dev/null
