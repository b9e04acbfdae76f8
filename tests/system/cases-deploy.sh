# tests/system/cases-deploy.sh - the system tier's first cases: the container booted,
# the .deb installed, the README's Postfix steps, the test's sink and users,
# mail over SMTP and sendmail(1), mail.log and the journal.
# Sourced by inside.sh, which sets the users ($BCC...), $SOCK and $D
# and runs the c_* functions with run_case.
# shellcheck shell=bash disable=SC2154

# ---- the package and the README's steps ------------------------------------

c_boot() {
    local state failed
    state=$(systemctl is-system-running)
    failed=$(systemctl --failed --no-legend --plain | awk '{print $1}' | tr '\n' ' ')
    [ "$state" = running ] || sys_why "system is '$state', failed units: $failed" || return 1
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

# coexistctl doctor (README "Checking the deployment") on the deployment the
# README's steps made, under systemd with Debian's chrooted Postfix: no finding.
c_doctor() {
    coexistctl doctor >"$W/doctor.log" 2>&1 ||
        sys_why "coexistctl doctor exited $? on the README's deployment: $(head -3 "$W/doctor.log" | tr '\n' '|')"
}

# doctor_finds WHAT ID - doctor on the deployment as it is now exits 78 and
# names the finding ID ("[ID] ..."): WHAT was broken on purpose.
doctor_finds() {
    local rc
    coexistctl doctor >"$W/doctor-broken.log" 2>&1
    rc=$?
    cat "$W/doctor-broken.log" >&2
    [ "$rc" = 78 ] && grep -q "^\[$2\] .*fix: " "$W/doctor-broken.log" ||
        sys_why "$1: doctor exited $rc without [$2]: $(head -2 "$W/doctor-broken.log" | tr '\n' '|')"
}

# Five deployments broken as admins break them, each found by doctor under
# systemd with Debian's own chrooted Postfix, and each put back (doctor clean
# again at the end).
c_doctor_broken() {
    local ok=0 milters dflt
    milters=$(postconf -h smtpd_milters)
    postconf -e "smtpd_milters =" &&
        doctor_finds "smtpd_milters emptied" postfix.smtpd_milters || ok=1
    postconf -e "smtpd_milters = $milters"
    dflt=$(postconf -h milter_default_action)
    postconf -e "milter_default_action = accept" &&
        doctor_finds "milter_default_action = accept" postfix.milter_default_action || ok=1
    postconf -e "milter_default_action = $dflt"
    postconf -P "smtp/inet/smtpd_milters=inet:127.0.0.1:8891" &&
        doctor_finds "master.cf overrides smtpd_milters" postfix.master_override || ok=1
    postconf -PX "smtp/inet/smtpd_milters"
    deluser --quiet postfix coexist-milter &&
        doctor_finds "postfix not in the socket's group" milter.socket_access || ok=1
    adduser --quiet postfix coexist-milter
    chmod 0640 /var/lib/coexist-milter/trace.key &&
        doctor_finds "trace.key group-readable" trace.mode || ok=1
    chmod 0600 /var/lib/coexist-milter/trace.key
    coexistctl doctor >"$W/doctor-restored.log" 2>&1 ||
        { sys_why "doctor after putting everything back: $(head -2 "$W/doctor-restored.log" | tr '\n' '|')"; ok=1; }
    return $ok
}
