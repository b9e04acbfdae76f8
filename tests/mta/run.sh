#!/usr/bin/env bash
# tests/mta/run.sh - the MTA tier: coexist-milter behind a real Postfix 3.7
# (smtpd_milters and non_smtpd_milters) and a real Sendmail 8.17 (run from its
# unpacked Debian package), both delivering into smtp-sink; the cases assert
# the envelope recipients, and their NOTIFY and ORCPT, that arrive (smtp-sink
# records each RCPT with its ESMTP parameters; see cases.sh).
#
# Usage (as root):
#   tests/mta/run.sh [--coexistctl PATH] [--coexist-milter PATH] [--keep]
#                    [--only REGEX]
#   or COEXISTCTL=PATH COEXIST_MILTER=PATH tests/mta/run.sh
# Without paths, the binaries are looked for in the current directory (a
# build directory) and then in the source tree.
#
# It re-executes itself in private network, mount and UTS namespaces (only
# loopback exists there), prints "PASS name" or "FAIL name: why" per case and
# "mta: N passed, N failed" at the end, and exits non-zero on any failure.
# An MTA that cannot start is a failure, never a skip.  The work directory
# (/tmp/coexist-mta.*, with every log) is kept on failure or with --keep.
set -u

MTA_LIBDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/mta/lib.sh
. "$MTA_LIBDIR/lib.sh"

mta_keep=${MTA_KEEP:-0}
mta_only=${MTA_ONLY:-}
while [ $# -gt 0 ]; do
    case $1 in
    --coexistctl) COEXISTCTL=$2; shift 2 ;;
    --coexist-milter) COEXIST_MILTER=$2; shift 2 ;;
    --keep) mta_keep=1; shift ;;
    --only) mta_only=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done

# ---- outside: enter the namespaces (tests/mta/lib.sh) ------------------------
if [ "${COEXIST_MTA_INNS:-}" != 1 ]; then
    export MTA_KEEP=$mta_keep MTA_ONLY=$mta_only
    mta_reexec mta COEXIST_MTA_INNS "$MTA_LIBDIR/run.sh"
fi

# ---- inside the namespaces -----------------------------------------------------
mta_start=$(date +%s)
MTA_T=$(mktemp -d /tmp/coexist-mta.XXXXXX) || exit 1
chmod 755 "$MTA_T"
mkdir -p "$MTA_T/cases"
mta_pass=0
mta_fail=0

# mta_cleanup - stop everything this run started; keep the work dir on failure.
mta_cleanup() {
    sm_stop
    pf_stop
    mta_kill_pidfile "$MTA_T/milter.pid" 8
    sink_stop
    utf8sink_stop
    if [ "$mta_fail" -gt 0 ] || [ "$mta_keep" = 1 ]; then
        echo "mta: logs kept in $MTA_T"
    else
        rm -rf "$MTA_T"
    fi
}
trap mta_cleanup EXIT
trap 'exit 130' INT TERM

# Sendmail resolves its own name before reading its .cf (60 s sleep if that
# fails): a qualified hostname, and a hosts file naming it, both private.
hostname sm.test
printf '127.0.0.1\tlocalhost sm.test sm pf.test\n' >"$MTA_T/hosts"
mount --bind "$MTA_T/hosts" /etc/hosts

# run_case - run case function FN as NAME (tests/lib/report.sh mta_case),
# unless --only leaves it out; count it.
run_case() {
    local name=$1 fn=$2
    case $name in
    postfix-*|sendmail-*) [ -z "$mta_only" ] || [[ $name =~ $mta_only ]] || return 0 ;;
    esac
    if mta_case "$name" "$fn"; then
        mta_pass=$((mta_pass + 1))
    else
        mta_fail=$((mta_fail + 1))
        return 1
    fi
}

# fail_case - count NAME as failed because WHY (a component did not start).
fail_case() {
    echo "FAIL $1: $2"
    mta_fail=$((mta_fail + 1))
}

# last_why - the reason the last setup step gave.
last_why() { head -1 "$MTA_T/why" 2>/dev/null; }

. "$MTA_LIBDIR/cases.sh"
. "$MTA_LIBDIR/blind.sh"

# ---- shared components --------------------------------------------------------
: >"$MTA_T/why"
mta_base_ok=1
milter_paths
if ! sink_start; then fail_case smtp-sink "$(last_why)"; mta_base_ok=0; fi
if ! utf8sink_start; then fail_case utf8sink "$(last_why)"; mta_base_ok=0; fi
run_case store-setup case_store_setup || mta_base_ok=0
: >"$MTA_T/why"
if [ $mta_base_ok = 1 ] && ! milter_start; then
    fail_case milter-start "$(last_why)"
    mta_base_ok=0
fi
if [ $mta_base_ok = 1 ]; then
    run_case milter-socket-umask case_socket_umask
else
    fail_case milter-socket-umask "not attempted: a shared component failed"
fi

# fail_all - count every case named PREFIX-NAME (NAME in ROUTING_CASES) and
# each EXTRA name as failed because WHY: an MTA that does not start fails
# its cases, so the count of cases is the same in every run.
fail_all() {
    local prefix=$1 why=$2 c
    shift 2
    for c in $ROUTING_CASES; do fail_case "$prefix-$c" "$why"; done
    for c in "$@"; do fail_case "$c" "$why"; done
}

# ---- Postfix ---------------------------------------------------------------------
: >"$MTA_T/why"
if [ $mta_base_ok = 1 ] && pf_setup && pf_start; then
    echo "# postfix $(postconf -d -h mail_version) on 127.0.0.1:$PF_PORT"
    for MTA_PATH in smtp local; do
        export MTA_PATH
        for c in $ROUTING_CASES; do run_case "postfix-$MTA_PATH-$c" "case_${c//-/_}"; done
    done
    run_case postfix-smtputf8 case_pf_smtputf8
    run_case postfix-differential case_pf_differential
    run_case postfix-milter-down-tempfail case_pf_milter_down
    for c in $BLIND_CASES; do run_case "postfix-$c" "case_${c//-/_}"; done
    run_case postfix-report case_pf_report
    pf_stop
else
    why="postfix did not start: $(last_why)"
    [ $mta_base_ok = 1 ] || why="not attempted: a shared component failed"
    fail_all postfix-smtp "$why"
    fail_all postfix-local "$why" postfix-smtputf8 postfix-differential \
        postfix-milter-down-tempfail postfix-report $(printf 'postfix-%s ' $BLIND_CASES)
fi

# ---- Sendmail ----------------------------------------------------------------------
: >"$MTA_T/why"
if [ $mta_base_ok = 1 ] && { milter_running || milter_start; } && sm_setup && sm_start; then
    echo "# sendmail $("$SM_BIN" -d0.1 -bt </dev/null 2>/dev/null | sed -n 's/^Version //p') on 127.0.0.1:$SM_PORT"
    export MTA_PATH=sendmail
    for c in $ROUTING_CASES; do run_case "sendmail-$c" "case_${c//-/_}"; done
    run_case sendmail-milter-down-tempfail case_sm_milter_down
    sm_stop
else
    why="sendmail did not start: $(last_why)"
    [ $mta_base_ok = 1 ] || why="not attempted: a shared component failed"
    fail_all sendmail "$why" sendmail-milter-down-tempfail
fi

echo "# mta tier took $(( $(date +%s) - mta_start ))s"
echo "mta: $mta_pass passed, $mta_fail failed"
[ "$mta_fail" = 0 ]
