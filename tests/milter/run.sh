#!/usr/bin/env bash
# tests/milter/run.sh - the protocol tier: miltertest (Lua) against the real
# coexist-milter daemon, with syslog captured.
#
# Usage: tests/milter/run.sh [BUILDDIR | COEXISTCTL COEXIST_MILTER]
#   Binaries: $COEXISTCTL / $COEXIST_MILTER if set, else BUILDDIR/coexistctl
#   and BUILDDIR/coexist-milter, else ./coexistctl and ./coexist-milter.
#   COEXIST_MT_KEEP=1 keeps the temp dir (it is also kept on failure).
#   Needs root (unshare), python3, miltertest, util-linux.
#
# What it does: re-executes itself in private mount and network namespaces
# (loopback only), mounts a private tmpfs /dev there and owns /dev/log with
# syslog_collector.py (tests/lib/ns.sh and dev.sh; notes/mta-harness.md,
# "Capturing syslog in tests"), builds the stores with coexistctl, writes one
# config per script, and runs every t-*.lua with `miltertest -s`. Each script
# starts the daemon itself (mt.startfilter) and talks to it through
# milter_proxy.py, which records the end-of-message requests (this miltertest
# cannot see smfi_addrcpt_par adds; see lib.lua). Afterwards the syslog lines
# each script announced are checked in the collector's file.
#
# Output: "PASS name" / "FAIL name: reason" per case, then
# "milter: N passed, N failed". Exit 0 only if nothing failed. Failing to
# start miltertest, the daemon or the harness is a FAIL, never a skip.

set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/lib/report.sh
. "$HERE/../lib/report.sh"
# shellcheck source=tests/lib/ns.sh
. "$HERE/../lib/ns.sh"
# shellcheck source=tests/lib/dev.sh
. "$HERE/../lib/dev.sh"
# COEXIST_MT_VALGRIND=1 runs the daemon under valgrind (memcheck) and fails
# every script whose daemon leaked (definitely/indirectly lost) or made a
# memory error; the summary line is then "milter-valgrind: ...".
if [ -n "${COEXIST_MT_VALGRIND:-}" ]; then TIER=milter-valgrind; else TIER=milter; fi

abspath() {
    case $1 in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s/%s\n' "$(pwd)" "$1" ;;
    esac
}

# ------------------------------------------------------------------ outer
if [ -z "${COEXIST_MT_INNER:-}" ]; then
    if [ $# -ge 2 ]; then
        COEXISTCTL=${COEXISTCTL:-$1}
        COEXIST_MILTER=${COEXIST_MILTER:-$2}
    else
        build=${1:-.}
        COEXISTCTL=${COEXISTCTL:-$build/coexistctl}
        COEXIST_MILTER=${COEXIST_MILTER:-$build/coexist-milter}
    fi
    COEXISTCTL=$(abspath "$COEXISTCTL")
    COEXIST_MILTER=$(abspath "$COEXIST_MILTER")

    outer_fail() {
        echo "FAIL $1: $2"
        echo "$TIER: 0 passed, 1 failed"
        exit 1
    }
    [ "$(id -u)" = 0 ] || outer_fail "harness" "must run as root (unshare --mount --net)"
    tools="unshare miltertest python3 mount timeout promtool tdbtool"
    [ -n "${COEXIST_MT_VALGRIND:-}" ] && tools="$tools valgrind"
    for tool in $tools; do
        command -v "$tool" >/dev/null 2>&1 || outer_fail "harness" "$tool not found"
    done
    WORK=$(mktemp -d /tmp/coexist-mt.XXXXXX) || outer_fail "harness" "mktemp failed"
    COEXIST_MT_INNER=1
    COEXIST_MT_WORK=$WORK
    export COEXIST_MT_INNER COEXIST_MT_WORK COEXISTCTL COEXIST_MILTER
    ns_run "$HERE/run.sh"
    rc=$?
    if [ ! -f "$WORK/summary" ]; then
        echo "FAIL harness: the namespace run did not finish (unshare exit $rc); files in $WORK"
        echo "$TIER: 0 passed, 1 failed"
        exit 1
    fi
    # The private /dev bind mounts lived only in the namespace, which is gone:
    # here $WORK/olddev is an empty directory. --one-file-system anyway.
    if [ "$rc" = 0 ] && [ -z "${COEXIST_MT_KEEP:-}" ]; then
        rm -rf --one-file-system "$WORK"
    else
        echo "$TIER: files kept in $WORK"
    fi
    exit "$rc"
fi

# ------------------------------------------------------------------ inner
WORK=$COEXIST_MT_WORK
PASSED=0
FAILED=0
PIDS=""
INSTANCE=mt-test-instance
TRACE=X-Coexist-Milter
SYSLOG=$WORK/syslog.txt

ok() { echo "PASS $1"; PASSED=$((PASSED + 1)); }
bad() { echo "FAIL $1: $2"; FAILED=$((FAILED + 1)); }

cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
}

finish() {
    cleanup
    PIDS=""
    echo "$TIER: $PASSED passed, $FAILED failed"
    echo "$PASSED $FAILED" > "$WORK/summary"
    [ "$FAILED" = 0 ] && exit 0
    exit 1
}
trap cleanup EXIT

for bin in "$COEXISTCTL" "$COEXIST_MILTER"; do
    if [ ! -x "$bin" ]; then
        bad "harness" "$bin not found or not executable (build first, or set COEXISTCTL / COEXIST_MILTER)"
    fi
done
[ "$FAILED" = 0 ] || finish

# Under valgrind, miltertest starts a wrapper that execs the daemon in
# memcheck; each daemon writes its own report, checked after its script.
DAEMON=$COEXIST_MILTER
if [ -n "${COEXIST_MT_VALGRIND:-}" ]; then
    DAEMON=$WORK/valgrind-daemon.sh
    cat > "$DAEMON" <<VG
#!/bin/sh
exec valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect \\
    --errors-for-leak-kinds=definite,indirect --track-fds=no \\
    --log-file="\$VG_LOG" "$COEXIST_MILTER" "\$@"
VG
    chmod 0755 "$DAEMON"
fi

# check_valgrind NAME - the memcheck report of script NAME's daemon.
check_valgrind() {
    [ -n "${COEXIST_MT_VALGRIND:-}" ] || return 0
    log=$WORK/$1.valgrind
    if [ ! -f "$log" ]; then
        bad "valgrind: $1" "no valgrind report ($log): the daemon did not run under valgrind"
    elif [ -s "$log" ]; then
        bad "valgrind: $1" "memcheck reported errors or leaks: $(grep -m 3 -E 'lost|Invalid|uninitialised|ERROR SUMMARY' "$log" | tr '\n' ' ')"
    else
        ok "valgrind: $1: no leaks, no memory errors"
    fi
}

# ---- private /dev with /dev/log owned by the collector (tests/lib/dev.sh)
if ! dev_private "$WORK/olddev"; then
    bad "harness: private /dev" "$DEV_WHY"
    finish
fi
if ! dev_log_collect "$SYSLOG"; then
    bad "harness: syslog collector" "$DEV_WHY"
    finish
fi
PIDS="$PIDS $DEV_LOG_PID"
if dev_log_selfcheck "$SYSLOG"; then
    ok "harness: /dev/log collector receives logger(1) lines as mail.info"
else
    bad "harness: /dev/log collector" "$DEV_WHY"
fi

# ---- stores
CTL_LOG=$WORK/coexistctl.log
ctl() { # DB ARGS...
    db=$1; shift
    echo "+ coexistctl -d $db $*" >> "$CTL_LOG"
    "$COEXISTCTL" -d "$db" "$@" >> "$CTL_LOG" 2>&1 && return 0
    echo "coexistctl -d $(basename "$db") $* failed (exit $?): $(tail -n 1 "$CTL_LOG")"
    return 1
}

setup_route_store() {
    db=$WORK/route.tdb
    ctl "$db" init &&
    ctl "$db" add adam.barr@corp.example adam@pop.example --mode bcc &&
    ctl "$db" add rita.rewrite@corp.example rita@pop.example --mode rewrite &&
    ctl "$db" add mig.user@corp.example mig@pop.example --mode bcc &&
    ctl "$db" migrate mig.user@corp.example &&
    ctl "$db" add sched.past@corp.example sched@pop.example --mode bcc &&
    ctl "$db" migrate sched.past@corp.example --at 2020-01-01T00:00:00Z &&
    ctl "$db" add sched.future@corp.example future@pop.example --mode bcc &&
    ctl "$db" migrate sched.future@corp.example --at 2099-01-01T00:00:00Z &&
    ctl "$db" add shared1@corp.example shared@pop.example --mode bcc --wave w1 &&
    ctl "$db" add shared2@corp.example shared@pop.example --mode bcc --wave w1 &&
    ctl "$db" add flip.user@corp.example flip@pop.example --mode bcc &&
    ctl "$db" add @corp2.example @pop2.example --mode rewrite &&
    ctl "$db" add dave@corp2.example dave.old@pop2.example --mode bcc &&
    ctl "$db" migrate dave@corp2.example &&
    ctl "$db" add erin@corp2.example erin.old@pop2.example --mode bcc
}

setup_dryrun_store() {
    db=$WORK/dryrun.tdb
    ctl "$db" init &&
    ctl "$db" add adam.barr@corp.example adam@pop.example --mode bcc &&
    ctl "$db" add rita.rewrite@corp.example rita@pop.example --mode rewrite &&
    ctl "$db" add @corp2.example @pop2.example --mode rewrite
}

# The loop guard's store: its init also makes $WORK/trace.key, the secret
# the guard config finds by default (trace_secret_file = trace.key, beside
# state_db); the other configs switch the secret off to keep testing the
# guard of old.
setup_guard_store() {
    db=$WORK/guard.tdb
    ctl "$db" init &&
    ctl "$db" add adam.barr@corp.example adam@pop.example --mode bcc &&
    ctl "$db" add rita.rewrite@corp.example rita@pop.example --mode rewrite &&
    ctl "$db" add carol@corp.example carol@pop.example --mode bcc &&
    test -s "$WORK/trace.key"
}

# Reverse routing (DESIGN section 9): migrated owners with and without
# reverse, an unmigrated one with it, a domain rule.
setup_reverse_store() {
    db=$WORK/reverse.tdb
    ctl "$db" init &&
    ctl "$db" add adam.barr@corp.example adam@pop.example --mode rewrite --reverse &&
    ctl "$db" add bea@corp.example bea.old@pop.example --mode bcc &&
    ctl "$db" add carl@corp.example carl.old@pop.example --mode bcc --reverse &&
    ctl "$db" add later@corp.example later.old@pop.example --mode bcc --reverse &&
    ctl "$db" migrate adam.barr@corp.example bea@corp.example &&
    ctl "$db" migrate later@corp.example --at 2020-01-01T00:00:00Z &&
    ctl "$db" add @corp3.example @pop3.example --mode rewrite --reverse &&
    ctl "$db" migrate @corp3.example &&
    ctl "$db" add own@corp3.example own.old@pop3.example --mode bcc
}

for s in route dryrun guard reverse; do
    if msg=$(setup_${s}_store); then
        ok "setup: $s store built with coexistctl"
    else
        bad "setup: $s store" "$msg"
    fi
done

# ---- configs: one per script (t-NAME.lua uses NAME.conf and NAME.tdb)
write_conf() { # NAME LINES...
    name=$1; shift
    {
        echo "# coexist-milter config written by tests/milter/run.sh ($name)"
        echo "socket = unix:$WORK/$name.sock"
        echo "state_db = $WORK/$name.tdb"
        echo "pid_file = $WORK/$name.pid"
        echo "allow_root = yes"
        echo "instance = $INSTANCE"
        echo "syslog_facility = mail"
        for line in "$@"; do echo "$line"; done
    } > "$WORK/$name.conf"
}
write_conf route "on_db_error = tempfail" "dry_run = no" "trace_secret_file ="
write_conf dryrun "on_db_error = tempfail" "dry_run = yes" "trace_secret_file ="
write_conf dberror "on_db_error = tempfail" "dry_run = no" "trace_secret_file ="
write_conf accept "on_db_error = accept" "dry_run = no" "trace_secret_file ="
write_conf hostile "on_db_error = tempfail" "dry_run = no" "trace_secret_file =" \
    "propagate_unmatched_extensions = no"
write_conf guard "on_db_error = tempfail" "dry_run = no"
write_conf reverse "on_db_error = tempfail" "dry_run = no" "trace_secret_file ="
# Counters, report and metrics (DESIGN section 12): flushes and metrics every second.
write_conf report "on_db_error = tempfail" "dry_run = no" "trace_secret_file =" \
    "counters_db = report-counters.tdb" "counters_interval = 1" "stats_interval = 1" \
    "metrics_file = $WORK/report.prom"

# ---- syslog expectations announced by a script
check_syslog() { # NAME EXPECTFILE
    sname=$1
    [ -s "$2" ] || return 0
    # the daemon has stopped; give the collector a moment to drain
    sleep 0.3
    tab=$(printf '\t')
    while IFS="$tab" read -r sign what text; do
        [ -n "$sign" ] || continue
        lines=$(grep 'coexist-milter' "$SYSLOG" | grep -F -- "$text")
        if [ "$sign" = "+" ]; then
            if [ -z "$lines" ]; then
                bad "syslog: $sname: $what" "no line containing \"$text\" (from coexist-milter)"
                continue
            fi
            pri=$(printf '%s\n' "$lines" | head -n 1 | sed -n 's/^<\([0-9]*\)>.*/\1/p')
            if [ -z "$pri" ] || [ $((pri / 8)) != 2 ]; then
                bad "syslog: $sname: $what" "not facility mail: $(printf '%s\n' "$lines" | head -n 1)"
            else
                ok "syslog: $sname: $what"
            fi
        else
            if [ -n "$lines" ]; then
                bad "syslog: $sname: $what" "unexpected line: $(printf '%s\n' "$lines" | head -n 1)"
            else
                ok "syslog: $sname: $what"
            fi
        fi
    done < "$2"
}

# ---- run the scripts
run_script() { # PATH
    script=$1
    base=$(basename "$script" .lua)
    name=${base#t-}
    if [ ! -f "$WORK/$name.conf" ]; then
        bad "$base" "no config for it in run.sh (expected $name.conf)"
        return
    fi
    psock=$WORK/$name-proxy.sock
    eomrec=$WORK/$name.eom
    expect=$WORK/$name.logexpect
    : > "$expect"
    python3 "$HERE/milter_proxy.py" "$psock" "$WORK/$name.sock" "$eomrec" 2>"$WORK/$name-proxy.err" &
    ppid=$!
    PIDS="$PIDS $ppid"
    if ! dev_wait_ready "$psock" 5; then
        bad "$base" "recording proxy did not start: $(cat "$WORK/$name-proxy.err")"
        return
    fi
    VG_LOG=$WORK/$name.valgrind timeout -k 10 300 miltertest \
        -D TESTDIR="$HERE" -D WORK="$WORK" -D DAEMON="$DAEMON" -D CONF="$WORK/$name.conf" \
        -D DSOCK="$WORK/$name.sock" -D PSOCK="$psock" -D CTL="$COEXISTCTL" -D STORE="$WORK/$name.tdb" \
        -D EOMREC="$eomrec" -D LOGEXPECT="$expect" -D INSTANCE="$INSTANCE" -D TRACE="$TRACE" \
        -s "$script" > "$WORK/$name.out" 2> "$WORK/$name.err"
    rc=$?
    before=$FAILED
    while IFS= read -r line; do
        case $line in
            "PASS "*) echo "$line"; PASSED=$((PASSED + 1)) ;;
            "FAIL "*) echo "$line"; FAILED=$((FAILED + 1)) ;;
        esac
    done < "$WORK/$name.out"
    if ! grep -q "^END $base.lua" "$WORK/$name.out"; then
        bad "$base" "script did not finish (miltertest exit $rc)"
    fi
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        bad "$base" "miltertest timed out"
    elif [ "$rc" != 0 ]; then
        bad "$base" "miltertest exit $rc: $(grep -v '^ *$' "$WORK/$name.err" | grep -i 'miltertest' | tail -n 3 | tr '\n' ' ')"
    fi
    # the daemon must be gone (miltertest SIGTERMs and waits for it)
    if [ -s "$WORK/$name.pid" ]; then
        dpid=$(cat "$WORK/$name.pid")
        if kill -0 "$dpid" 2>/dev/null && grep -q coexist-milter "/proc/$dpid/cmdline" 2>/dev/null; then
            bad "$base" "daemon (pid $dpid) still running after the script; killed"
            kill -9 "$dpid" 2>/dev/null
        fi
    fi
    kill "$ppid" 2>/dev/null
    wait "$ppid" 2>/dev/null
    check_syslog "$name" "$expect"
    check_valgrind "$name"
    if [ "$FAILED" != "$before" ]; then
        echo "---- $base: miltertest/daemon stderr, notable lines ($WORK/$name.err):"
        grep -iE 'fatal|error|warn|miltertest|abort|sanitizer|signal|leak' "$WORK/$name.err" |
            awk '!seen[$0]++' | head -n 20 | sed 's/^/    /'
        echo "----"
    fi
}

for t in "$HERE"/t-*.lua; do
    run_script "$t"
done

if grep -q 'coexist-milter' "$SYSLOG"; then
    ok "syslog: coexist-milter lines arrived at /dev/log"
else
    bad "syslog" "no line from coexist-milter arrived at /dev/log"
fi

finish
