# tests/system/cases-admin.sh - the system tier's cases of an administrator
# at work: migrate, stop and start, restart under traffic, systemd-analyze
# security, the README's shared_store steps with coexist-follow.
# Sourced by inside.sh, which sets the users ($BCC...), $SOCK and $D
# and runs the c_* functions with run_case.
# shellcheck shell=bash disable=SC2154

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
    # Type=simple: "active" from the fork on; the child is root until its exec.
    poll 10 eval "[ \"\$(stat -c %U /proc/$pid 2>/dev/null)\" = coexist-milter ]" ||
        { sys_why "coexist-follow (pid $pid) runs as $(stat -c %U "/proc/$pid" 2>&1), not coexist-milter"; return 1; }
    # Written to PostgreSQL; returns once this host's replica has it. Right
    # after "enable --now" the follower may not have made the replica yet,
    # and a write then failed ("changed since it was read", three times;
    # nothing changed): noted, then done again once status shows a replica.
    if ! coexistctl add "$BCC" "$BCC_ALIAS" >>"$W/follow.log" 2>&1; then
        echo "# coexistctl add right after enable --now failed: $(tail -1 "$W/follow.log")" >>"$W/notes"
        poll "$SOCK_TIMEOUT" eval "! coexistctl status 2>/dev/null | grep -q '^replica position: none'" ||
            { sys_why "coexist-follow made no replica: $(journalctl -u coexist-follow -n 2 --no-pager | tr '\n' '|')"; return 1; }
        coexistctl add "$BCC" "$BCC_ALIAS" >>"$W/follow.log" 2>&1 ||
            { sys_why "coexistctl add with shared_store failed: $(tail -1 "$W/follow.log")"; return 1; }
    fi
    id=$(new_id follow-bcc)
    send_smtp "$id" "$BCC" && expect_rcpts "$id" "$BCC" "$BCC_ALIAS" || return 1
    coexistctl migrate "$BCC" >>"$W/follow.log" 2>&1 || { sys_why "coexistctl migrate failed"; return 1; }
    id=$(new_id follow-migrated)
    send_smtp "$id" "$BCC" && expect_rcpts "$id" "$BCC" || return 1
    [ "$(systemctl show -p NRestarts --value coexist-follow)" = 0 ] ||
        { sys_why "coexist-follow restarted"; return 1; }
    coexistctl status >>"$W/follow.log" 2>&1 || { sys_why "coexistctl status failed"; return 1; }
    coexistctl doctor >"$W/doctor-shared.log" 2>&1 ||
        { sys_why "coexistctl doctor with shared_store: $(head -3 "$W/doctor-shared.log" | tr '\n' '|')"; return 1; }
    # Reinstalled (dpkg's upgrade path): the enabled follower runs the new binary.
    dpkg -i "$D/coexist-milter.deb" >>"$W/follow.log" 2>&1 || { sys_why "dpkg -i again failed"; return 1; }
    poll "$SOCK_TIMEOUT" systemctl is-active --quiet coexist-follow ||
        { sys_why "coexist-follow not active after the reinstall"; return 1; }
    [ "$(systemctl show -p MainPID --value coexist-follow)" != "$pid" ] ||
        sys_why "coexist-follow was not restarted by the upgrade"
}
