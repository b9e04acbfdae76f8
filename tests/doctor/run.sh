#!/usr/bin/env bash
# tests/doctor/run.sh - the doctor tier: "coexistctl doctor" against a real
# deployment and broken copies of it. A private Postfix 3.7 instance and
# the real coexist-milter on its socket (tests/mta/lib.sh, the MTA tier's
# harness) make the good deployment: mail is routed through it, doctor
# exits 0 with no finding, and its JSON says the same. Then one thing at a
# time is broken, doctor must name it alone with the right finding and a
# fix and exit non-zero, and the thing is put back: smtpd_milters and
# non_smtpd_milters without the socket (also as JSON), milter_default_action
# = accept (main.cf, and the milter's own { } entry), a master.cf service
# overriding smtpd_milters, a content filter's re-injection listener
# without no_milters (and with it: clean), chrooted smtpd and cleanup
# naming the socket relative to queue_directory (clean) and by its host
# path (both found, the fix in the relative form), a socket Postfix's
# account cannot connect to (mode: Postfix really tempfails; group: clean
# once postfix is in it), another milter on the socket that lacks actions
# or refuses the negotiation (tests/doctor/fakemilter.py), the milter
# killed (a stale socket), a store record that fails check, a store not
# owned by the milter's user, a world-readable and a group-readable trace
# secret, shared_store without a replica, and Sendmail: a good .cf, F=T
# missing (.cf) or F=R (.mc), MAIL_FILTER instead of INPUT_MAIL_FILTER,
# no milter line at all.
#
# Usage (as root): tests/doctor/run.sh [--coexistctl PATH] [--coexist-milter PATH] [--keep]
#   or COEXISTCTL=PATH COEXIST_MILTER=PATH tests/doctor/run.sh
# Prints "PASS name" / "FAIL name: why" per case and ends with
# "doctor: N passed, N failed". It runs in private network, mount and UTS
# namespaces, like the MTA tier; the work directory is kept on failure.
set -u

DOCTOR_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MTA_LIBDIR=$(cd "$DOCTOR_DIR/../mta" && pwd)
# shellcheck source=tests/mta/lib.sh
. "$MTA_LIBDIR/lib.sh"

dr_keep=${DOCTOR_KEEP:-0}
while [ $# -gt 0 ]; do
    case $1 in
    --coexistctl) COEXISTCTL=$2; shift 2 ;;
    --coexist-milter) COEXIST_MILTER=$2; shift 2 ;;
    --keep) dr_keep=1; shift ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done

# ---- outside: enter the namespaces (tests/mta/lib.sh) ------------------------
if [ "${COEXIST_DOCTOR_INNS:-}" != 1 ]; then
    export DOCTOR_KEEP=$dr_keep
    mta_reexec doctor COEXIST_DOCTOR_INNS "$DOCTOR_DIR/run.sh"
fi

# ---- inside the namespaces -----------------------------------------------------
MTA_T=$(mktemp -d /tmp/coexist-doctor.XXXXXX) || exit 1
chmod 755 "$MTA_T"
mkdir -p "$MTA_T/cases"
dr_pass=0
dr_fail=0
# No system Postfix or Sendmail is looked at: only what a case names.
export MAIL_CONFIG=$MTA_T/no-system-postfix

dr_cleanup() {
    mta_kill_pidfile "$MTA_T/fake.pid" 3
    mta_kill_pidfile "$MTA_T/pkg-milter.pid" 8
    pf_stop
    mta_kill_pidfile "$MTA_T/milter.pid" 8
    sink_stop
    if [ "$dr_fail" -gt 0 ] || [ "$dr_keep" = 1 ]; then
        echo "doctor: logs kept in $MTA_T"
    else
        rm -rf "$MTA_T"
    fi
}
trap dr_cleanup EXIT
trap 'exit 130' INT TERM
# Groups are changed in a copy of /etc/group, bound over it in this namespace.
for f in group passwd; do
    cp "/etc/$f" "$MTA_T/$f.orig" && cp "/etc/$f" "$MTA_T/$f" &&
        mount --bind "$MTA_T/$f" "/etc/$f" || echo "FAIL setup: cannot bind /etc/$f"
done

# run_case NAME FN - FN as case NAME (tests/lib/report.sh mta_case), counted.
run_case() {
    if mta_case "$1" "$2"; then dr_pass=$((dr_pass + 1)); else dr_fail=$((dr_fail + 1)); fi
}

fail_case() { echo "FAIL $1: $2"; dr_fail=$((dr_fail + 1)); }

# doctor ARGS... - coexistctl doctor on the test milter's config; the
# output in $MTA_T/doctor.out, the exit status in $MTA_T/doctor.rc.
doctor() {
    local rc=0
    mta_step "coexistctl doctor $*"
    "$COEXISTCTL" -c "${DR_CONF:-$MILTER_CONF}" doctor "$@" >"$MTA_T/doctor.out" 2>&1 || rc=$?
    echo "$rc" >"$MTA_T/doctor.rc"
    sed 's/^/  | /' "$MTA_T/doctor.out" >&2
}

# pf_doctor ARGS... - doctor for the test Postfix instance.
pf_doctor() { doctor --postfix-config "${DR_PF_ETC:-$PF_ETC}" "$@"; }

# expect_clean - doctor found nothing and exited 0.
expect_clean() {
    local rc
    rc=$(cat "$MTA_T/doctor.rc")
    [ "$rc" = 0 ] && grep -q '^doctor: 0 problems' "$MTA_T/doctor.out" ||
        mta_why "doctor exit $rc, want 0: $(mta_tail 3 "$MTA_T/doctor.out")"
}

# expect_finding ID [TEXT] - doctor exited non-zero with a finding ID
# (whose line holds TEXT, if given) and that finding only, unless
# DR_OTHERS allows others.
expect_finding() {
    local id=$1 text=${2:-} rc lines
    rc=$(cat "$MTA_T/doctor.rc")
    [ "$rc" != 0 ] || { mta_why "doctor exit 0 without finding [$id]"; return 1; }
    lines=$(grep -F "[$id] " "$MTA_T/doctor.out")
    [ -n "$lines" ] || { mta_why "no [$id] finding: $(mta_tail 3 "$MTA_T/doctor.out")"; return 1; }
    [ -z "$text" ] || printf '%s\n' "$lines" | grep -qF -- "$text" ||
        { mta_why "[$id] without '$text': $lines"; return 1; }
    printf '%s\n' "$lines" | grep -q '; fix: .' ||
        { mta_why "[$id] says no fix: $lines"; return 1; }
    [ "${DR_OTHERS:-0}" = 1 ] || [ "$(grep -c '^\[' "$MTA_T/doctor.out")" = 1 ] ||
        mta_why "other findings than [$id]: $(grep '^\[' "$MTA_T/doctor.out" | cut -c1-200 | tr '\n' '|')"
}

# pf_set NAME=VALUE... - change main.cf of the instance (postconf -e).
pf_set() { postconf -c "$PF_ETC" -e "$@"; }

# ---- the good deployment ---------------------------------------------------------

# case_good_mail - the deployment routes: a bcc user gets the legacy copy.
case_good_mail() {
    local id
    ctl add good@corp.example good@pop.example --mode bcc || return 1
    id=$(mta_new_id good)
    pf_send_smtp "$id" good@corp.example || return 1
    pf_wait "$id" || return 1
    expect_rcpts "$id" good@corp.example good@pop.example
}

case_good() { pf_doctor; expect_clean; }

# case_good_json - the same as JSON: no problem, no finding, what was checked.
case_good_json() {
    pf_doctor --format json
    [ "$(cat "$MTA_T/doctor.rc")" = 0 ] || { mta_why "exit $(cat "$MTA_T/doctor.rc")"; return 1; }
    "$MTA_PYTHON" - "$MTA_T/doctor.out" <<'EOF' || mta_why "JSON: $(mta_tail 5 "$MTA_T/doctor.out")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["problems"] == 0 and d["findings"] == [], d
assert set(d["checked"]) >= {"postfix", "milter", "store"}, d["checked"]
EOF
}

# ---- broken deployments ------------------------------------------------------------

case_smtpd_milters() {
    pf_set "smtpd_milters = inet:127.0.0.1:8891"
    pf_doctor
    pf_set "smtpd_milters = unix:$MILTER_SOCK"
    expect_finding postfix.smtpd_milters "add unix:$MILTER_SOCK to smtpd_milters in main.cf"
}

# case_smtpd_milters_json - the same finding in JSON, with its check, problem and fix.
case_smtpd_milters_json() {
    pf_set "smtpd_milters ="
    pf_doctor --format json
    pf_set "smtpd_milters = unix:$MILTER_SOCK"
    [ "$(cat "$MTA_T/doctor.rc")" != 0 ] || { mta_why "exit 0"; return 1; }
    "$MTA_PYTHON" - "$MTA_T/doctor.out" <<'EOF' || mta_why "JSON: $(mta_tail 8 "$MTA_T/doctor.out")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["problems"] == len(d["findings"]) == 1, d
f = d["findings"][0]
assert f["check"] == "postfix.smtpd_milters", f
assert "does not reach" in f["problem"] and f["fix"].startswith("add unix:"), f
EOF
}

case_non_smtpd_milters() {
    pf_set "non_smtpd_milters ="
    pf_doctor
    pf_set "non_smtpd_milters = unix:$MILTER_SOCK"
    expect_finding postfix.non_smtpd_milters "sendmail(1)"
}

case_default_accept() {
    pf_set "milter_default_action = accept"
    pf_doctor
    pf_set "milter_default_action = tempfail"
    expect_finding postfix.milter_default_action "without the legacy copies"
}

# case_entry_accept - the milter's own { ..., default_action=accept } entry.
case_entry_accept() {
    pf_set "smtpd_milters = { unix:$MILTER_SOCK, default_action=accept }"
    pf_doctor
    pf_set "smtpd_milters = unix:$MILTER_SOCK"
    expect_finding postfix.milter_default_action "default_action of $MILTER_SOCK"
}

# with_master LINES... - append master.cf LINES for one doctor run, then put it back.
with_master() {
    cp "$PF_ETC/master.cf" "$MTA_T/master.cf.good"
    printf '%s\n' "$@" >>"$PF_ETC/master.cf"
    pf_doctor
    cp "$MTA_T/master.cf.good" "$PF_ETC/master.cf"
}

case_master_override() {
    with_master "127.0.0.1:10031 inet n - n - - smtpd" \
        "  -o smtpd_milters=inet:127.0.0.1:8891"
    expect_finding postfix.master_override "127.0.0.1:10031/inet overrides smtpd_milters"
}

case_reinjection() {
    with_master "127.0.0.1:10032 inet n - n - - smtpd" "  -o content_filter=" \
        "  -o receive_override_options=no_unknown_recipient_checks"
    expect_finding postfix.reinjection "receive_override_options=no_milters"
}

# case_reinjection_ok - the listener as the README says: no finding.
case_reinjection_ok() {
    with_master "127.0.0.1:10032 inet n - n - - smtpd" "  -o content_filter=" \
        "  -o receive_override_options=no_unknown_recipient_checks,no_milters"
    expect_clean
}

# chroot_instance MILTERS - a copy of the instance's config, for doctor only:
# smtpd and cleanup chrooted (as Debian ships them) in a queue_directory that
# holds the milter's directory (as /var/spool/postfix holds coexist-milter/),
# both lists set to MILTERS.
chroot_instance() {
    DR_PF_ETC=$MTA_T/postfix-chroot
    rm -rf "$DR_PF_ETC" && cp -r "$PF_ETC" "$DR_PF_ETC" || return 1
    sed -i -e 's/^\(127.0.0.1:[0-9]* inet n -    \)n/\1y/' \
        -e 's/^\(cleanup    unix  n -       \)n/\1y/' "$DR_PF_ETC/master.cf"
    postconf -c "$DR_PF_ETC" -e "queue_directory = $MTA_T" "smtpd_milters = $1" \
        "non_smtpd_milters = $1"
    [ "$(postconf -c "$DR_PF_ETC" -F | grep -cE '^(127.0.0.1:[0-9]*/inet|cleanup/unix)/chroot = y')" = 2 ] ||
        mta_why "the copy's smtpd and cleanup are not chrooted: $(grep -E 'smtpd|cleanup' "$DR_PF_ETC/master.cf")"
}

case_chroot_relative() {
    chroot_instance "unix:milter/milter.sock" || return 1
    pf_doctor
    expect_clean
}

# case_chroot_absolute - the host's path, which the chrooted services look
# up inside the chroot: both lists miss, and the fix names the relative form.
case_chroot_absolute() {
    chroot_instance "unix:$MILTER_SOCK" || return 1
    pf_doctor
    DR_OTHERS=1 expect_finding postfix.non_smtpd_milters "add unix:milter/milter.sock to non_smtpd_milters"
    DR_OTHERS=1 expect_finding postfix.smtpd_milters "add unix:milter/milter.sock to smtpd_milters"
    [ "$(grep -c '^\[' "$MTA_T/doctor.out")" = 2 ] || mta_why "want 2 findings"
}

# case_socket_mode - a socket only root may use: Postfix's account cannot
# connect, and Postfix itself shows it (milter_default_action: 4xx).
case_socket_mode() {
    local id
    id=$(mta_new_id mode)
    chmod 0700 "$MILTER_SOCK"
    pf_doctor
    if pf_send_smtp "$id" good@corp.example; then
        chmod 0777 "$MILTER_SOCK"
        mta_why "Postfix accepted mail it could not give the milter"
        return 1
    fi
    : >"$MTA_T/why"     # the refusal is what this case wants
    chmod 0777 "$MILTER_SOCK"
    grep -qE ' 4[0-9][0-9] 4\.[0-9]+\.[0-9]+ ' "$MTA_T/$id.smtp" ||
        mta_why "no 4xx from Postfix: $(mta_tail 4 "$MTA_T/$id.smtp")"
    expect_finding milter.socket_access "postfix cannot connect"
}

# group_file LINE - /etc/group (bind-mounted, this namespace only) plus LINE.
group_file() {
    cp "$MTA_T/group.orig" "$MTA_T/group" && printf '%s\n' "$1" >>"$MTA_T/group"
}

# case_socket_group - a 0770 socket of a group Postfix's account is not in;
# then with postfix in it (adduser postfix GROUP): clean.
case_socket_group() {
    group_file "cxdoc:x:4711:"
    chgrp 4711 "$MILTER_SOCK" && chmod 0770 "$MILTER_SOCK"
    pf_doctor
    expect_finding milter.socket_access "adduser postfix cxdoc"
    group_file "cxdoc:x:4711:postfix"
    pf_doctor
    chgrp 0 "$MILTER_SOCK" && chmod 0777 "$MILTER_SOCK"
    expect_clean
}

# fake_milter ANSWER - fakemilter.py on its own socket; DR_CONF names it.
fake_milter() {
    "$MTA_PYTHON" "$DOCTOR_DIR/fakemilter.py" "$MTA_T/fake.sock" "$1" "$MTA_T/fake.ready" \
        >"$MTA_T/fake.log" 2>&1 &
    echo $! >"$MTA_T/fake.pid"
    mta_poll 10 test -e "$MTA_T/fake.ready" || mta_why "fakemilter.py did not start"
    DR_CONF=$MTA_T/fake.conf
    sed "s|^socket = .*|socket = unix:$MTA_T/fake.sock|" "$MILTER_CONF" >"$DR_CONF"
}

# case_negotiation_actions - a milter that does not ask for what coexist-milter needs.
case_negotiation_actions() {
    fake_milter 0x01 || return 1
    DR_PF_ETC=$MTA_T/postfix-fake
    rm -rf "$DR_PF_ETC" && cp -r "$PF_ETC" "$DR_PF_ETC"
    postconf -c "$DR_PF_ETC" -e "smtpd_milters = unix:$MTA_T/fake.sock" \
        "non_smtpd_milters = unix:$MTA_T/fake.sock"
    pf_doctor
    mta_kill_pidfile "$MTA_T/fake.pid" 3
    rm -f "$MTA_T/fake.ready"
    expect_finding milter.negotiation "does not ask for add recipient (SMFIF_ADDRCPT), add recipient with ESMTP arguments (SMFIF_ADDRCPT_PAR), delete recipient"
}

# case_negotiation_refused - a milter that answers the negotiation with tempfail.
case_negotiation_refused() {
    fake_milter reply:t || return 1
    DR_PF_ETC=$MTA_T/postfix-fake
    pf_doctor
    mta_kill_pidfile "$MTA_T/fake.pid" 3
    rm -f "$MTA_T/fake.ready"
    expect_finding milter.negotiation "answered the negotiation with 't' (tempfail)"
}

# case_trace_group - a 0640 secret whose group has Postfix's account in it.
case_trace_group() {
    group_file "cxdoc:x:4711:postfix"
    chgrp 4711 "$MILTER_DIR/trace.key"
    pf_doctor
    chgrp 0 "$MILTER_DIR/trace.key"
    group_file ""
    expect_finding trace.mode "which has postfix in it"
}

# case_stale_socket - the milter killed: its socket stays, nothing answers.
case_stale_socket() {
    kill -KILL "$(cat "$MTA_T/milter.pid")"
    mta_poll 10 eval '! milter_running' || { mta_why "milter still runs"; return 1; }
    [ -S "$MILTER_SOCK" ] || { mta_why "no stale socket left"; return 1; }
    pf_doctor
    rm -f "$MTA_T/milter.pid"
    milter_start || return 1
    expect_finding milter.negotiation "nothing listens on $MILTER_SOCK"
}

# case_store_check - a record that does not parse (written with tdbtool).
case_store_check() {
    tdbtool "$MILTER_DB" store bad@corp.example 'v=1 state=bogus' >/dev/null ||
        { mta_why "tdbtool store failed"; return 1; }
    pf_doctor
    tdbtool "$MILTER_DB" delete bad@corp.example >/dev/null
    expect_finding store.check "bad@corp.example"
}

# case_store_owner - the milter's user (nobody here) does not own the store.
case_store_owner() {
    DR_CONF=$MTA_T/user-nobody.conf
    cp "$MILTER_CONF" "$DR_CONF" && echo "user = nobody" >>"$DR_CONF"
    DR_OTHERS=1 pf_doctor
    DR_OTHERS=1 expect_finding store.owner "not by the milter's user nobody"
}

case_trace_mode() {
    chmod 0644 "$MILTER_DIR/trace.key"
    pf_doctor
    chmod 0640 "$MILTER_DIR/trace.key"
    expect_finding trace.secret "gives others access"
}

# case_packaged - the README's Postfix deployment, as the package makes it:
# an account coexist-milter (in this namespace's passwd and group, with
# postfix in its group), the socket in the chroot's coexist-milter/ (0750),
# umask 007, the store and secret made by "coexistctl init" as root in the
# account's state directory, the milter started as the account (systemd's
# User=, here setpriv) with no user in its config, smtpd and cleanup
# chrooted and naming unix:coexist-milter/coexist-milter.sock. doctor takes
# the milter's account from its socket. The secret as init makes it (0600)
# is clean; 0640 (the account's group, which Postfix's account is in) is
# found; a store root took over is found.
case_packaged() {
    local pkg=$MTA_T/pkg conf=$MTA_T/pkg/coexist-milter.conf rc=0
    group_file "coexist-milter:x:4720:postfix"
    cp "$MTA_T/passwd.orig" "$MTA_T/passwd" &&
        echo "coexist-milter:x:4720:4720::/nonexistent:/usr/sbin/nologin" >>"$MTA_T/passwd"
    mkdir -p "$pkg/spool/coexist-milter" "$pkg/lib" && chmod 755 "$pkg" "$pkg/spool" &&
        chown coexist-milter:coexist-milter "$pkg/spool/coexist-milter" "$pkg/lib" &&
        chmod 0750 "$pkg/spool/coexist-milter" "$pkg/lib" || { mta_why "layout"; return 1; }
    printf '%s\n' "socket = unix:$pkg/spool/coexist-milter/coexist-milter.sock" \
        "state_db = $pkg/lib/state.tdb" "umask = 007" "pid_file =" >"$conf"
    "$COEXISTCTL" -c "$conf" init >&2 || { mta_why "coexistctl init as root failed"; return 1; }
    setpriv --reuid=coexist-milter --regid=coexist-milter --init-groups \
        "$COEXIST_MILTER" -c "$conf" -f >"$MTA_T/pkg-milter.log" 2>&1 &
    echo $! >"$MTA_T/pkg-milter.pid"
    mta_poll 30 test -S "$pkg/spool/coexist-milter/coexist-milter.sock" ||
        { mta_why "packaged milter did not start: $(mta_tail 3 "$MTA_T/pkg-milter.log")"; rc=1; }
    DR_PF_ETC=$MTA_T/postfix-pkg
    rm -rf "$DR_PF_ETC" && cp -r "$PF_ETC" "$DR_PF_ETC" &&
        sed -i -e 's/^\(127.0.0.1:[0-9]* inet n -    \)n/\1y/' \
            -e 's/^\(cleanup    unix  n -       \)n/\1y/' "$DR_PF_ETC/master.cf" &&
        postconf -c "$DR_PF_ETC" -e "queue_directory = $pkg/spool" \
            "smtpd_milters = unix:coexist-milter/coexist-milter.sock" \
            "non_smtpd_milters = unix:coexist-milter/coexist-milter.sock"
    DR_CONF=$conf
    if [ $rc = 0 ]; then
        [ "$(stat -c %a "$pkg/lib/trace.key")" = 600 ] ||
            mta_why "coexistctl init made trace.key $(stat -c %a "$pkg/lib/trace.key"), want 600"
        pf_doctor
        expect_clean
        chmod 0640 "$pkg/lib/trace.key"
        pf_doctor
        expect_finding trace.mode "which has postfix in it"
        chmod 0600 "$pkg/lib/trace.key"
        chown root "$pkg/lib/state.tdb"
        pf_doctor
        chown coexist-milter "$pkg/lib/state.tdb"
        expect_finding store.owner "not by the milter's user coexist-milter"
    fi
    mta_kill_pidfile "$MTA_T/pkg-milter.pid" 12
    cp "$MTA_T/passwd.orig" "$MTA_T/passwd"
    group_file ""
}

# case_replica_none - shared_store set, but the store is no replica (no
# follower ever ran): the milter would route by a state nobody keeps.
case_replica_none() {
    DR_CONF=$MTA_T/shared.conf
    cp "$MILTER_CONF" "$DR_CONF" && echo "shared_store = host=$MTA_T/nopg dbname=coexist" >>"$DR_CONF"
    pf_doctor
    expect_finding replica.position "no replica of the shared store"
}

# sm_build MC - sendmail.cf from the harness's .mc, its milter line edited by SED.
sm_build() {
    sed "$1" "$SM_DIR/test.mc" >"$SM_DIR/doctor.mc"
    m4 -D_CF_DIR_="$SM_CFDIR/" "$SM_CFDIR/m4/cf.m4" "$SM_DIR/doctor.mc" \
        >"$SM_DIR/doctor.cf" 2>"$SM_DIR/m4.log" || mta_why "m4: $(mta_tail 3 "$SM_DIR/m4.log")"
}

case_sendmail_good() {
    sm_build 's/x/x/' || return 1
    grep -q '^Xcoexist, S=unix:.*F=T' "$SM_DIR/doctor.cf" || { mta_why "no X line with F=T"; return 1; }
    doctor --sendmail-cf "$SM_DIR/doctor.cf"
    expect_clean
}

case_sendmail_no_t() {
    sm_build 's/, F=T//' || return 1
    doctor --sendmail-cf "$SM_DIR/doctor.cf"
    expect_finding sendmail.flags "passes unfiltered"
}

case_sendmail_mc_no_t() {
    sm_build 's/F=T/F=R/' || return 1
    doctor --sendmail-cf "$SM_DIR/doctor.mc"
    expect_finding sendmail.flags "is rejected"
}

# case_sendmail_not_input - MAIL_FILTER defines the milter but never calls it.
case_sendmail_not_input() {
    sm_build 's/^INPUT_MAIL_FILTER/MAIL_FILTER/' || return 1
    doctor --sendmail-cf "$SM_DIR/doctor.cf"
    expect_finding sendmail.input_filters "not in InputMailFilters"
}

# case_sendmail_none - no milter line for this socket at all.
case_sendmail_none() {
    sm_build '/INPUT_MAIL_FILTER/d' || return 1
    doctor --sendmail-cf "$SM_DIR/doctor.cf"
    expect_finding sendmail.milter "has no milter with this milter's socket"
}

# ---- run -------------------------------------------------------------------------
: >"$MTA_T/why"
milter_paths
base_ok=1
sink_start || { fail_case smtp-sink "$(head -1 "$MTA_T/why")"; base_ok=0; }
: >"$MTA_T/why"
# (in a subshell: the milter is no job of this shell, which would report
# the kill of case stale-socket)
{ [ $base_ok = 1 ] && milter_setup && ( milter_start ); } ||
    { fail_case milter-start "$(head -1 "$MTA_T/why")"; base_ok=0; }
: >"$MTA_T/why"
{ [ $base_ok = 1 ] && pf_setup && pf_start; } ||
    { fail_case postfix-start "$(head -1 "$MTA_T/why")"; base_ok=0; }

DR_CASES="good-mail good good-json smtpd-milters smtpd-milters-json non-smtpd-milters
    default-accept entry-accept master-override reinjection reinjection-ok
    chroot-relative chroot-absolute socket-mode socket-group negotiation-actions
    negotiation-refused stale-socket store-check store-owner trace-mode trace-group
    packaged replica-none"
DR_SM_CASES="sendmail-good sendmail-no-t sendmail-mc-no-t sendmail-not-input sendmail-none"
for c in $DR_CASES; do
    if [ $base_ok = 1 ]; then run_case "$c" "case_${c//-/_}"
    else fail_case "$c" "not attempted: the deployment did not start"; fi
done
: >"$MTA_T/why"
if [ $base_ok = 1 ] && sm_setup; then
    for c in $DR_SM_CASES; do run_case "$c" "case_${c//-/_}"; done
else
    for c in $DR_SM_CASES; do fail_case "$c" "no Sendmail .cf: $(head -1 "$MTA_T/why")"; done
fi

echo "doctor: $dr_pass passed, $dr_fail failed"
[ "$dr_fail" = 0 ]
