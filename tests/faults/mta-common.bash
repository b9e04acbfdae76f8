# tests/faults/mta-common.bash - what the MTA-level fault scripts
# (tests/faults/mta-*.sh) share: entering private namespaces, a work
# directory, PASS/FAIL lines, and a private Postfix + smtp-sink +
# coexist-milter from tests/mta/lib.sh (and so tests/lib).  Sourced, never run (run.sh runs
# only *.sh files).
#
# A script does:
#   FT_NAME=mta-kill; . "$(dirname "$0")/mta-common.bash"; ft_enter "$0" "$@"
#   ... (now inside the namespaces, in $MTA_T) ...
#   ft_up || exit 1;  ...cases, each ending in ft_pass/ft_fail...;  ft_end
# Environment: COEXISTCTL, COEXIST_MILTER (the binaries under test);
# FT_KEEP=1 keeps the work directory (it is kept anyway after a failure).

FT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MTA_LIBDIR=$(cd "$FT_DIR/../mta" && pwd)
# These tests count the constant trace header of the guard without a secret.
MTA_GUARD=constant
# shellcheck source=tests/mta/lib.sh
. "$MTA_LIBDIR/lib.sh"
FT_PY=$FT_DIR/mtafaults.py
ft_passed=0
ft_failed=0

# ft_pass / ft_fail - one result line ("PASS name: detail", "FAIL name: why").
ft_pass() { echo "PASS $FT_NAME-$1${2:+: $2}"; ft_passed=$((ft_passed + 1)); }
ft_fail() { echo "FAIL $FT_NAME-$1: $2"; ft_failed=$((ft_failed + 1)); }

# ft_enter SCRIPT ARGS... - outside: check, then re-execute SCRIPT in the
# private namespaces of tests/lib/ns.sh (only loopback there).  Inside: return.
ft_enter() {
    local script
    script=$(readlink -f "$1")
    shift
    [ "${COEXIST_FT_INNS:-}" = 1 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "FAIL $FT_NAME: must run as root (a private Postfix)"
        exit 1
    fi
    COEXISTCTL=$(readlink -f "${COEXISTCTL:-$(mta_find_bin coexistctl)}")
    COEXIST_MILTER=$(readlink -f "${COEXIST_MILTER:-$(mta_find_bin coexist-milter)}")
    export COEXISTCTL COEXIST_MILTER COEXIST_FT_INNS=1
    ns_exec "$script" "$@"
    echo "FAIL $FT_NAME: cannot enter private namespaces (unshare)"
    exit 1
}

# ft_cleanup - stop what this script started; keep the logs after a failure.
ft_cleanup() {
    local fn pid
    pf_stop
    if [ -f "$MTA_T/milter.pid" ]; then
        # KILL, not TERM: a libmilter stop takes seconds and nothing is at stake now
        pid=$(cat "$MTA_T/milter.pid")
        kill -KILL "$pid" 2>/dev/null
        { wait "$pid"; } 2>/dev/null
        rm -f "$MTA_T/milter.pid"
    fi
    sink_stop
    for fn in "${FT_CLEANUPS[@]}"; do "$fn"; done
    if [ "$ft_failed" -gt 0 ] || [ "${FT_KEEP:-0}" = 1 ]; then
        echo "# $FT_NAME: logs kept in $MTA_T"
    else
        rm -rf "$MTA_T"
    fi
}

# ft_init - inside the namespaces: work directory, hostname, cleanup.
ft_init() {
    FT_START=$(date +%s)
    FT_CLEANUPS=()
    MTA_T=$(mktemp -d "/tmp/coexist-$FT_NAME.XXXXXX") || exit 1
    chmod 755 "$MTA_T"
    trap ft_cleanup EXIT
    trap 'exit 130' INT TERM
    : >"$MTA_T/why"
    milter_paths
}

# ft_why - the first reason a lib.sh step gave (and forget it).
ft_why() { head -1 "$MTA_T/why" 2>/dev/null; : >"$MTA_T/why"; }

# ft_store - the records every fault script routes against.
#   bcc.user@corp.example -> bcc@pop.example  bcc      unmigrated
#   rw.user@corp.example  -> rw@pop.example   rewrite  unmigrated
# and nothing for nobody@corp.example.
FT_RCPTS=bcc.user@corp.example,rw.user@corp.example,nobody@corp.example
FT_EXPECT=bcc.user@corp.example,bcc@pop.example,rw@pop.example,nobody@corp.example
ft_store() {
    ctl add bcc.user@corp.example bcc@pop.example --mode bcc &&
        ctl add rw.user@corp.example rw@pop.example --mode rewrite
}

# ft_up - smtp-sink, the store, the milter and Postfix; FAIL line on error.
# FT_MILTER_CONF_EXTRA is appended to the milter's config.
ft_up() {
    if ! sink_start 2>>"$MTA_T/setup.log"; then ft_fail setup "smtp-sink: $(ft_why)"; return 1; fi
    if ! { milter_setup && ft_store; } >>"$MTA_T/setup.log" 2>&1; then
        ft_fail setup "store: $(ft_why)"; return 1
    fi
    [ -z "${FT_MILTER_CONF_EXTRA:-}" ] || printf '%s\n' "$FT_MILTER_CONF_EXTRA" >>"$MILTER_CONF"
    if ! milter_start 2>>"$MTA_T/setup.log"; then ft_fail setup "milter: $(ft_why)"; return 1; fi
    # many messages in a burst: no arrival-rate throttling in smtpd
    if ! { pf_setup && postconf -c "$PF_ETC" -e in_flow_delay=0 && pf_start; } 2>>"$MTA_T/setup.log"; then
        ft_fail setup "postfix: $(ft_why)"; return 1
    fi
    PF_SENDMAIL=$(postconf -c "$PF_ETC" -h sendmail_path)
    return 0
}

# ft_check_delivery RESULTS PREFIX [WAIT] - mtafaults.py check of RESULTS:
# prints its summary lines to stdout with a "# " prefix; status as check's.
ft_check_delivery() {
    "$MTA_PYTHON" "$FT_PY" check --results "$1" --prefix "$2" --wait "${3:-30}" \
        --sink "$MTA_T/sink" --config "$PF_ETC" --expect "$FT_EXPECT" \
        --trace "$MILTER_INSTANCE" >"$MTA_T/check-$2.out" 2>&1
}

# ft_milter_pid - the running milter's pid (empty if none).
ft_milter_pid() { cat "$MTA_T/milter.pid" 2>/dev/null; }

# ft_end - the summary line; exit status 1 on any failure.
ft_end() {
    echo "# $FT_NAME took $(( $(date +%s) - FT_START ))s: $ft_passed passed, $ft_failed failed"
    [ "$ft_failed" = 0 ]
    exit $?
}
