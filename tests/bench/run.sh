#!/usr/bin/env bash
# tests/bench/run.sh - the coexist-milter benchmark (DESIGN.md section 8).
#
# Usage: tests/bench/run.sh --smoke | --quick | --full [BUILDDIR]
#   Binaries: $COEXISTCTL and $COEXIST_MILTER if set, else BUILDDIR/coexistctl
#   and BUILDDIR/coexist-milter (BUILDDIR defaults to "."); the load client
#   and the null milter are $LOADCLIENT / $NULLMILTER, else tests/bench/ next
#   to coexist-milter (the same build). Needs root (namespaces), python3,
#   postfix (with smtp-source and smtp-sink), util-linux, iproute2.
#
#   --smoke  about 12 s: a 1,000-user store, one short load per filter,
#            flips under load and a few messages through Postfix; asserts
#            correctness only (nonzero throughput, no error, the bcc really
#            added and logged), never speed. This is the CI tier.
#   --quick  10^3 and 10^5 users, one round of 1 s per cell: for development
#            (about 2.5 minutes).
#   --full   10^3, 10^5 and 10^6 users, three rounds of 3 s per cell, five
#            rounds through Postfix; the numbers of docs/BENCHMARKS.md (about
#            25 minutes).
#   Knobs (environment): BENCH_SIZES, BENCH_CONNS, BENCH_RCPTS, BENCH_SECS,
#   BENCH_ROUNDS, BENCH_E2E_MSGS, BENCH_E2E_RCPTS, BENCH_E2E_ROUNDS,
#   BENCH_E2E_SESSIONS, BENCH_FLIP_SECS, BENCH_HEADERS (5 or 20, default 20),
#   BENCH_E2E=0 (skip Postfix),
#   BENCH_KEEP=1 (keep the work directory), BENCH_RESULTS=FILE (copy the raw
#   result lines there).
#
# What it does. It re-executes itself in private mount, network and pid
# namespaces (loopback only, so fixed ports cannot collide with other tests;
# every process it started dies with the namespace), gives itself a private
# /dev whose /dev/log Debian's rsyslogd owns, writing mail.* to a file as a
# mail host does (every bcc line must reach that file), and then, for each
# store size:
#   - writes a CSV of N users "Ku@corp.example,Ku@pop.example,bcc,unmigrated,wK%10,"
#     and times "coexistctl import" (wall time, peak RSS);
#   - runs coexist-milter on it beside the null milter (every callback
#     continues) and the minimal bcc milter (nullmilter -b: the same adds with
#     no lookup), and drives each in turn with the same load client, in
#     alternating order, for every (connections x recipients) cell; each
#     coexist and bcc-milter message is checked to carry one bcc per recipient;
#   - does the same with recipients the store does not know (coexist-milter
#     against the null milter: two lookups per recipient, no change);
#   - records the milters' RSS and CPU time per message.
# On the largest store it then flips a user (and a whole wave) with coexistctl
# while a load runs and compares the latency with a run without flips, and
# runs Postfix end to end: smtp-source into four private Postfix instances
# (coexist-milter; the minimal bcc milter; native recipient_bcc_maps, hash;
# the null milter), all relaying to one smtp-sink, in alternating order,
# with routed mail (the first three) and unrouted mail (coexist-milter and
# the null milter), recording each milter's CPU time per message.
#
# Output: "PASS name" / "FAIL name: why" lines, the result tables (Markdown),
# and last "bench: N passed, N failed". Exit 0 only if nothing failed.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/lib/report.sh
. "$HERE/../lib/report.sh"
# shellcheck source=tests/lib/ns.sh
. "$HERE/../lib/ns.sh"
# shellcheck source=tests/lib/dev.sh
. "$HERE/../lib/dev.sh"
# shellcheck source=tests/lib/postfix.sh
. "$HERE/../lib/postfix.sh"

usage() {
    sed -n '2,/^# What it does/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
    exit "${1:-2}"
}

abspath() {
    case $1 in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s/%s\n' "$(pwd)" "$1" ;;
    esac
}

# ------------------------------------------------------------------ outer
if [ -z "${BENCH_INNER:-}" ]; then
    MODE="" BUILD="."
    for arg; do
        case $arg in
            --smoke|--quick|--full) MODE=${arg#--} ;;
            -h|--help) usage 0 ;;
            -*) usage ;;
            *) BUILD=$arg ;;
        esac
    done
    [ -n "$MODE" ] || usage
    outer_fail() {
        echo "FAIL $1: $2"
        echo "bench: 0 passed, 1 failed"
        exit 1
    }
    COEXISTCTL=$(abspath "${COEXISTCTL:-$BUILD/coexistctl}")
    COEXIST_MILTER=$(abspath "${COEXIST_MILTER:-$BUILD/coexist-milter}")
    bindir=$(dirname "$COEXIST_MILTER")
    LOADCLIENT=$(abspath "${LOADCLIENT:-$bindir/tests/bench/loadclient}")
    NULLMILTER=$(abspath "${NULLMILTER:-$bindir/tests/bench/nullmilter}")
    for bin in "$COEXISTCTL" "$COEXIST_MILTER" "$LOADCLIENT" "$NULLMILTER"; do
        [ -x "$bin" ] && [ -f "$bin" ] ||
            outer_fail "harness" "$bin not found (build with: make check TESTS=)"
    done
    [ "$(id -u)" = 0 ] || outer_fail "harness" "must run as root (unshare, Postfix)"
    for tool in unshare python3 ip mount postfix postmap smtp-source smtp-sink; do
        command -v "$tool" >/dev/null 2>&1 || outer_fail "harness" "$tool not found"
    done
    WORK=$(mktemp -d /tmp/coexist-bench.XXXXXX) || outer_fail "harness" "mktemp failed"
    # Postfix (user postfix) must reach the queue, the maps and the sockets.
    chmod 755 "$WORK"
    BENCH_INNER=1
    export BENCH_INNER WORK MODE COEXISTCTL COEXIST_MILTER LOADCLIENT NULLMILTER
    ns_run --pid "$HERE/run.sh"
    rc=$?
    if [ ! -f "$WORK/summary" ]; then
        echo "FAIL harness: the namespace run did not finish (exit $rc); files in $WORK"
        echo "bench: 0 passed, 1 failed"
        exit 1
    fi
    if [ -n "${BENCH_RESULTS:-}" ]; then
        cp "$WORK/results" "$BENCH_RESULTS" || echo "bench: cannot write $BENCH_RESULTS"
    fi
    if [ "$rc" = 0 ] && [ -z "${BENCH_KEEP:-}" ]; then
        rm -rf --one-file-system "$WORK"
    else
        # The summary stays the last line.
        echo "bench: files kept in $WORK"
        read -r p f <"$WORK/summary"
        echo "bench: $p passed, $f failed"
    fi
    exit "$rc"
fi

# ------------------------------------------------------------------ inner
PASSED=0
FAILED=0
RESULTS=$WORK/results
CLK_TCK=$(getconf CLK_TCK)
: >"$RESULTS"

ok() { echo "PASS $1"; PASSED=$((PASSED + 1)); }
bad() { echo "FAIL $1: $2"; FAILED=$((FAILED + 1)); }
T_START=${EPOCHREALTIME/./}
note() { printf '== %s (at %d s)\n' "$*" $(((${EPOCHREALTIME/./} - T_START) / 1000000)); }

finish() {
    echo "bench: $PASSED passed, $FAILED failed"
    echo "$PASSED $FAILED" >"$WORK/summary"
    [ "$FAILED" = 0 ]
    exit
}

case $MODE in
    smoke)
        SIZES=${BENCH_SIZES:-1000} CONNS=${BENCH_CONNS:-4} RCPTS=${BENCH_RCPTS:-3}
        SECS=${BENCH_SECS:-0} ROUNDS=${BENCH_ROUNDS:-1} FLIP_SECS=${BENCH_FLIP_SECS:-1}
        E2E_MSGS=${BENCH_E2E_MSGS:-20} E2E_RCPTS=${BENCH_E2E_RCPTS:-2}
        E2E_ROUNDS=${BENCH_E2E_ROUNDS:-1} E2E_SESSIONS=${BENCH_E2E_SESSIONS:-4} ;;
    quick)
        SIZES=${BENCH_SIZES:-"1000 100000"} CONNS=${BENCH_CONNS:-"1 16 64"}
        RCPTS=${BENCH_RCPTS:-"1 10"} SECS=${BENCH_SECS:-1} ROUNDS=${BENCH_ROUNDS:-1}
        FLIP_SECS=${BENCH_FLIP_SECS:-3} E2E_MSGS=${BENCH_E2E_MSGS:-500}
        E2E_RCPTS=${BENCH_E2E_RCPTS:-"1 10"} E2E_ROUNDS=${BENCH_E2E_ROUNDS:-1}
        E2E_SESSIONS=${BENCH_E2E_SESSIONS:-16} ;;
    full)
        SIZES=${BENCH_SIZES:-"1000 100000 1000000"} CONNS=${BENCH_CONNS:-"1 16 64"}
        RCPTS=${BENCH_RCPTS:-"1 10"} SECS=${BENCH_SECS:-3} ROUNDS=${BENCH_ROUNDS:-3}
        FLIP_SECS=${BENCH_FLIP_SECS:-5} E2E_MSGS=${BENCH_E2E_MSGS:-2000}
        E2E_RCPTS=${BENCH_E2E_RCPTS:-"1 10"} E2E_ROUNDS=${BENCH_E2E_ROUNDS:-5}
        E2E_SESSIONS=${BENCH_E2E_SESSIONS:-16} ;;
esac
# Headers per message in the protocol matrix: what real mail carries (the
# packets a filter that accepts at DATA never gets); BENCH_HEADERS=5 for the
# numbers of the first round.
HEADERS=${BENCH_HEADERS:-20}
# SECS 0: a fixed number of messages per run instead of a duration.
if [ "$SECS" = 0 ]; then LC_LEN="-n 1500"; else LC_LEN="-d $SECS -w 0.5"; fi
LARGEST=$(printf '%s\n' $SIZES | sort -n | tail -1)
RCPT_PAT="%uu@corp.example"     # user K is Ku@corp.example ...
ALIAS_PAT="%uu@pop.example"     # ... and its legacy alias Ku@pop.example
OTHER_PAT="%uu@other.example"   # no user, no domain rule: left alone

# ---- helpers -----------------------------------------------------------------

# field KEY LINE - the value of KEY=value in LINE.
field() {
    local re="(^| )$1=([^ ]*)"
    [[ $2 =~ $re ]] && printf '%s' "${BASH_REMATCH[2]}"
}

# now_ms - a wall clock in milliseconds (bash 5 EPOCHREALTIME).
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# poll SECS COMMAND... - run COMMAND every 0.05 s until it succeeds.
poll() {
    local deadline=$(($(now_ms) + $1 * 1000))
    shift
    until "$@"; do
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

# cpu_ticks PID - user plus system time of PID so far, in clock ticks.
cpu_ticks() {
    local stat
    read -r stat <"/proc/$1/stat" || { echo 0; return; }
    stat=${stat##*) }           # fields from 3 on; the name may hold blanks
    set -- $stat
    echo $((${12} + ${13}))
}

# mem_kb PID FIELD - VmRSS or VmHWM of PID in kB.
mem_kb() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }

# all_gone PID... - none of the processes runs any more.
all_gone() {
    local pid
    for pid; do ! kill -0 "$pid" 2>/dev/null || return 1; done
}

# stop_pid PID... - TERM, then KILL what still runs after a second:
# libmilter may take 5 s to notice, and nothing here needs a clean stop.
stop_pid() {
    kill -TERM "$@" 2>/dev/null
    poll 1 all_gone "$@" || kill -KILL "$@" 2>/dev/null
    wait "$@" 2>/dev/null
    return 0
}

# ---- private /dev whose /dev/log rsyslogd owns (tests/lib/dev.sh) -----------
dev_private "$WORK/olddev" || { bad "harness: private /dev" "$DEV_WHY"; finish; }
. "$HERE/syslogd.sh"
bench_syslogd_start "$WORK/syslogd" ||
    { bad "harness: rsyslogd" "did not start or write: $(tail -3 "$WORK/syslogd/rsyslogd.out" | tr '\n' ' ')"; finish; }
ok "harness: rsyslogd owns /dev/log and writes mail.* to a file"

# ---- the machine -------------------------------------------------------------
machine() {
    local cpu mem
    cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
    mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
    {
        echo "MACHINE cpu: $(nproc) x $cpu, $mem RAM, kernel $(uname -r)"
        echo "MACHINE os: Debian $(cat /etc/debian_version 2>/dev/null), $("$COEXIST_MILTER" -V 2>&1 | head -1), tdb $(dpkg-query -W -f='${Version}' libtdb1 2>/dev/null), Postfix $(postconf -d -h mail_version 2>/dev/null)"
        echo "MACHINE build: $(sed -n "s/^CFLAGS='\(.*\)'$/CFLAGS=\1/p" "$(dirname "$COEXIST_MILTER")/config.log" 2>/dev/null | head -1) ($(gcc -dumpfullversion 2>/dev/null | sed 's/^/gcc /'))"
        echo "MACHINE run: mode $MODE, $(date -u +%Y-%m-%dT%H:%MZ), load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
    } | tee -a "$RESULTS" | sed 's/^MACHINE /== machine: /'
}
machine

# ---- the milters ---------------------------------------------------------------
declare -A MPID MSOCK
MSOCK[coexist]=$WORK/coexist.sock
MSOCK[null]=$WORK/null.sock
MSOCK[bcc]=$WORK/bcc.sock

# start_milter NAME COMMAND... - start a filter in the foreground of a job.
start_milter() {
    local name=$1
    shift
    rm -f "${MSOCK[$name]}"
    "$@" >"$WORK/$name.out" 2>&1 &
    MPID[$name]=$!
    if poll 10 test -S "${MSOCK[$name]}"; then return 0; fi
    bad "start $name milter" "no socket ${MSOCK[$name]}: $(tail -3 "$WORK/$name.out" | tr '\n' ' ')"
    return 1
}

start_milter null "$NULLMILTER" -p "unix:${MSOCK[null]}" || finish
start_milter bcc "$NULLMILTER" -p "unix:${MSOCK[bcc]}" -b pop.example || finish

# ---- the store ---------------------------------------------------------------------

# make_store SIZE - CSV, init, timed import, check; writes $WORK/coexist-SIZE.conf.
make_store() {
    local size=$1 conf=$WORK/coexist-$1.conf db=$WORK/store-$1.tdb csv=$WORK/users-$1.csv
    local out users
    cat >"$conf" <<EOF
socket = unix:${MSOCK[coexist]}
state_db = $db
# Postfix (user postfix) connects to the socket.
umask = 000
allow_root = yes
EOF
    awk -v n="$size" 'BEGIN {
        print "address,alias,mode,state,wave,cutover"
        for (i = 0; i < n; i++)
            printf "%du@corp.example,%du@pop.example,bcc,unmigrated,w%d,\n", i, i, i % 10
    }' >"$csv"
    if ! "$COEXISTCTL" -c "$conf" init --hash-size "$size" >"$WORK/init-$size.log" 2>&1; then
        bad "store $size: init" "$(tail -2 "$WORK/init-$size.log" | tr '\n' ' ')"
        return 1
    fi
    out=$(python3 "$HERE/benchtool.py" rusage "$COEXISTCTL" -c "$conf" import "$csv" \
        2>"$WORK/import-$size.log")
    users=$("$COEXISTCTL" -c "$conf" stats 2>&1 | awk '$1 == "users:" {print $2}')
    if [ "$(field rc "$out")" != 0 ] || [ "$users" != "$size" ]; then
        bad "store $size: import" "rc $(field rc "$out"), $users users: $(tail -2 "$WORK/import-$size.log" | tr '\n' ' ')"
        return 1
    fi
    echo "STORE size=$size import_s=$(field secs "$out") import_maxrss_kb=$(field maxrss_kb "$out") file_kb=$(($(stat -c %s "$db") / 1024))" >>"$RESULTS"
    ok "store of $size users: imported in $(field secs "$out") s, peak RSS $(field maxrss_kb "$out") kB"
}

# ---- the load ----------------------------------------------------------------------------

# lc MILTER ARGS... - one load client run against MILTER. Sets LC_LINE (its
# LOADCLIENT line plus cpu_us, the milter's CPU per message), LC_ERR (first
# error), and returns the load client's status.
lc() {
    local m=$1 c0 c1 rc total
    shift
    c0=$(cpu_ticks "${MPID[$m]}")
    LC_LINE=$("$LOADCLIENT" -s "unix:${MSOCK[$m]}" -q -l "$m" "$@" 2>"$WORK/lc.err")
    rc=$?
    c1=$(cpu_ticks "${MPID[$m]}")
    LC_ERR=$(tr '\n' ' ' <"$WORK/lc.err")
    LC_LINE=$(printf '%s\n' "$LC_LINE" | grep '^LOADCLIENT ' | tail -1)
    total=$(field total_msgs "$LC_LINE")
    [ -n "$total" ] && [ "$total" -gt 0 ] || { LC_ERR="no report ${LC_ERR}"; return 1; }
    LC_LINE="${LC_LINE#LOADCLIENT } cpu_us=$(((c1 - c0) * 1000000 / CLK_TCK / total))"
    return $rc
}

# lc_verdict RC RCPTS BCC [REPLY] - why the last run is wrong, or nothing.
# BCC 1: every recipient must have got its bcc; 0: the filter changed
# nothing. REPLY (default continue): what every message must have ended
# with; accept for coexist-milter on mail no recipient is managed for (it
# accepts at DATA).
lc_verdict() {
    local rc=$1 rcpts=$2 want_bcc=$3 reply=${4:-continue} total
    total=$(field total_msgs "$LC_LINE")
    if [ "$rc" != 0 ] || [ "$(field errors "$LC_LINE")" != 0 ]; then
        echo "load client status $rc: ${LC_ERR:-$LC_LINE}"
    elif [ "$(field msgs "$LC_LINE")" = 0 ] || [ "$(field msg_s "$LC_LINE")" = 0.0 ]; then
        echo "no throughput: $LC_LINE"
    elif [ "$(field "$reply" "$LC_LINE")" != "$total" ]; then
        echo "not every message ended with $reply: $LC_LINE"
    elif [ "$want_bcc" = 0 ] &&
            [ "$(field addrcpt_par "$LC_LINE")$(field addheader "$LC_LINE")$(field delrcpt "$LC_LINE")" != 000 ]; then
        echo "messages were changed: $LC_LINE"
    elif [ "$want_bcc" = 1 ] && { [ "$(field bcc_ok "$LC_LINE")" != "$total" ] ||
            [ "$(field addrcpt_par "$LC_LINE")" != $((total * rcpts)) ]; }; then
        echo "not every recipient got its bcc: $LC_LINE"
    fi
}

# matrix SIZE - every cell, ROUNDS rounds, the filters in alternating order.
# Two workloads: "routed", recipients drawn from the store's users (every one
# an unmigrated bcc user: a lookup, a bcc and a log line each), against the
# null and the minimal bcc milter; and "unrouted", recipients of a domain the
# store does not know (two lookups each, no change), against the null milter.
matrix() {
    local size=$1 kind conns rcpts round m rc why order milters want tally reply
    declare -A runs msgs fail
    for m in coexist-routed coexist-unrouted null bcc; do runs[$m]=0 msgs[$m]=0 fail[$m]=""; done
    for kind in routed unrouted; do
        if [ "$kind" = routed ]; then milters="coexist null bcc"; else milters="coexist null"; fi
        for conns in $CONNS; do
            for rcpts in $RCPTS; do
                for round in $(seq 1 "$ROUNDS"); do
                    order=$milters
                    [ $((round % 2)) = 1 ] || order=$(printf '%s\n' $milters | tac | tr '\n' ' ')
                    for m in $order; do
                        set -- -c "$conns" -r "$rcpts" -u "$size" -S "$round" -H "$HEADERS"
                        if [ "$kind" = unrouted ]; then
                            set -- "$@" -p "$OTHER_PAT"
                            want=0
                        elif [ "$m" = null ]; then
                            set -- "$@" -p "$RCPT_PAT"
                            want=0
                        else
                            set -- "$@" -p "$RCPT_PAT" -x "$ALIAS_PAT"
                            want=1
                        fi
                        # shellcheck disable=SC2086
                        lc "$m" "$@" $LC_LEN
                        rc=$?
                        reply=continue
                        [ "$kind/$m" != unrouted/coexist ] || reply=accept
                        why=$(lc_verdict "$rc" "$rcpts" "$want" "$reply")
                        tally=$m
                        [ "$m" != coexist ] || tally=$m-$kind
                        [ -z "$why" ] || [ -n "${fail[$tally]}" ] ||
                            fail[$tally]="c=$conns r=$rcpts: $why"
                        runs[$tally]=$((runs[$tally] + 1))
                        [ "$tally" != coexist-routed ] ||
                            COEXIST_ADDS=$((COEXIST_ADDS + $(field addrcpt_par "$LC_LINE" || echo 0)))
                        msgs[$tally]=$((msgs[$tally] + $(field total_msgs "$LC_LINE" || echo 0)))
                        echo "RUN load=$kind size=$size milter=$m round=$round headers=$HEADERS $LC_LINE" >>"$RESULTS"
                        printf '   %-8s %-7s users=%s c=%-2s r=%-2s round %s: %s msg/s p99 %s ms\n' \
                            "$kind" "$m" "$size" "$conns" "$rcpts" "$round" \
                            "$(field msg_s "$LC_LINE")" "$(field p99_ms "$LC_LINE")"
                    done
                done
            done
        done
    done
    for m in coexist-routed coexist-unrouted null bcc; do
        local what="no change to any message"
        case $m in
            coexist-routed|bcc) what="every recipient got its bcc (NOTIFY=NEVER) and the header" ;;
            coexist-unrouted) what="recipients unknown to the store left alone, every message accepted at DATA" ;;
        esac
        if [ -n "${fail[$m]}" ]; then
            bad "load $m, $size users" "${fail[$m]}"
        else
            ok "load $m, $size users: ${runs[$m]} runs, ${msgs[$m]} messages, no errors, $what"
        fi
    done
    for m in coexist null; do
        echo "RSS size=$size milter=$m rss_kb=$(mem_kb "${MPID[$m]}" VmRSS) hwm_kb=$(mem_kb "${MPID[$m]}" VmHWM)" >>"$RESULTS"
    done
}

# ---- state flips under load ------------------------------------------------------------------

# flips SIZE CONNS - single-user flips in a loop while a load runs, against
# the same load without flips; then a whole wave (a tenth of the users),
# flipped and back, under a load that lasts until both commands are done.
flips() {
    local size=$1 conns=$2 base line n=0 t0 t1 rc lcpid what ctl=$WORK/ctl-times
    local user=7u@corp.example conf=$WORK/coexist-$1.conf secs
    set -- -c "$conns" -r 1 -u "$size" -p "$RCPT_PAT"
    lc coexist "$@" -d "$FLIP_SECS" ||
        { bad "flips ($conns conns): baseline run" "$LC_ERR"; return 1; }
    base=$LC_LINE
    for what in user wave; do
        : >"$ctl"
        # The wave's load runs until SIGINT, however long coexistctl takes.
        if [ "$what" = user ]; then secs=$FLIP_SECS; else secs=86400; fi
        "$LOADCLIENT" -s "unix:${MSOCK[coexist]}" -q -l flip "$@" -d "$secs" \
            >"$WORK/flip.out" 2>"$WORK/lc.err" &
        lcpid=$!
        sleep 0.5
        if [ "$what" = user ]; then
            while kill -0 "$lcpid" 2>/dev/null; do
                for verb in migrate unmigrate; do
                    t0=$(now_ms)
                    "$COEXISTCTL" -c "$conf" "$verb" "$user" >/dev/null 2>>"$WORK/ctl.err" ||
                        echo "$verb failed" >>"$WORK/ctl.fail"
                    t1=$(now_ms)
                    echo $((t1 - t0)) >>"$ctl"
                    n=$((n + 1))
                done
            done
        else
            for verb in migrate unmigrate; do
                t0=$(now_ms)
                "$COEXISTCTL" -c "$conf" "$verb" --wave w3 >/dev/null 2>>"$WORK/ctl.err" ||
                    echo "$verb --wave failed" >>"$WORK/ctl.fail"
                t1=$(now_ms)
                echo $((t1 - t0)) >>"$ctl"
                sleep 0.5
            done
            n=2
            kill -INT "$lcpid"
        fi
        wait "$lcpid"
        rc=$?
        line=$(grep '^LOADCLIENT ' "$WORK/flip.out" | tail -1)
        if [ -s "$WORK/ctl.fail" ]; then
            bad "flips ($what, $conns conns)" "coexistctl: $(head -1 "$WORK/ctl.fail") $(tail -2 "$WORK/ctl.err" | tr '\n' ' ')"
            rm -f "$WORK/ctl.fail"
        elif [ "$rc" != 0 ] || [ "$(field errors "$line")" != 0 ] || [ "$(field tempfail "$line")" != 0 ]; then
            bad "flips ($what, $conns conns)" "load client status $rc: $(tr '\n' ' ' <"$WORK/lc.err") $line"
        else
            ok "flips ($what, $conns conns): $n coexistctl changes during load, no message failed"
        fi
        [ "$what" = user ] || what="wave-of-$((size / 10))"
        echo "FLIP users=$size conns=$conns what=$what flips=$n" \
            "ctl_max_ms=$(sort -n "$ctl" | tail -1) ctl_med_ms=$(sort -n "$ctl" | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}')" \
            "base_p999_ms=$(field p999_ms "$base") base_max_ms=$(field max_ms "$base") base_slow=$(field slow "$base")" \
            "p999_ms=$(field p999_ms "$line") max_ms=$(field max_ms "$line") slow=$(field slow "$line")" \
            "errors=$(( $(field errors "$line") + $(field tempfail "$line") ))" >>"$RESULTS"
    done
    # Every user is unmigrated again: every recipient must still get its bcc.
    lc coexist -c "$conns" -r 3 -u "$size" -p "$RCPT_PAT" -x "$ALIAS_PAT" -n 500
    rc=$?
    why=$(lc_verdict "$rc" 3 1)
    if [ -n "$why" ]; then bad "routing after the flips" "$why"; else ok "routing after the flips: every recipient bcc'd"; fi
}

# ---- a replica of the shared store (DESIGN section 11) --------------------------------------

# replica_pos CONF - the replica's journal position ("" if none).
replica_pos() { "$COEXISTCTL" -c "$1" status 2>/dev/null | sed -n 's/^replica position: \([0-9]*\)$/\1/p'; }

# replica_at CONF ID - the replica has applied the journal up to ID.
replica_at() { [ "$(replica_pos "$1")" = "$2" ]; }

# replica_bench SIZE - the same users through a real PostgreSQL 15: import
# into the database (one transaction), a snapshot into an empty replica,
# the milter's lookups on that replica against the plain store (alternating
# runs, routed load), and a wave of a tenth of the users applied by a
# running follower under load: its apply rate and the longest wait of a
# message meanwhile, against the same load without it.
replica_bench() {
    local size=$1 conf=$WORK/replica-$1.conf db=$WORK/replica-$1.tdb ci out t0 t1 latest
    local conns rcpts round m order base line rc fpid why="" apply_ms rows
    # shellcheck source=tests/cluster/pglib.sh
    . "$HERE/../cluster/pglib.sh"
    pg_start "$WORK/pg" >"$WORK/pg.out" 2>&1 ||
        { bad "replica: PostgreSQL 15" "does not start: $(tail -3 "$WORK/pg.out" | tr '\n' ' ')"; return 1; }
    ci=$(pg_conninfo)
    MSOCK[replica]=$WORK/replica.sock
    cat >"$conf" <<EOF
socket = unix:${MSOCK[replica]}
state_db = $db
umask = 000
allow_root = yes
shared_store = $ci
node_name = bench
hash_size = $size
replica_wait = 0
trace_secret_file =
EOF
    "$COEXISTCTL" -c "$conf" init --shared >"$WORK/rinit.log" 2>&1 &&
        "$COEXISTCTL" -c "$conf" follow --once >>"$WORK/rinit.log" 2>&1 ||
        { bad "replica: init --shared" "$(tail -2 "$WORK/rinit.log" | tr '\n' ' ')"; pg_destroy; return 1; }
    # replica_wait = 0: the import does not wait for a follower (exit 69 says so)
    out=$(python3 "$HERE/benchtool.py" rusage "$COEXISTCTL" -c "$conf" import "$WORK/users-$size.csv" \
        2>"$WORK/rimport.log")
    case $(field rc "$out") in 0|69) ;; *)
        bad "replica: import into PostgreSQL" "rc $(field rc "$out"): $(tail -2 "$WORK/rimport.log" | tr '\n' ' ')"
        pg_destroy; return 1 ;;
    esac
    # A new host: no replica yet, so its follower takes a snapshot.
    rm -f "$db"
    t0=$(now_ms)
    "$COEXISTCTL" -c "$conf" follow --once >"$WORK/rsnap.log" 2>&1 ||
        { bad "replica: snapshot" "$(tail -2 "$WORK/rsnap.log" | tr '\n' ' ')"; pg_destroy; return 1; }
    t1=$(now_ms)
    latest=$(replica_pos "$conf")
    echo "REPLICA size=$size import_s=$(field secs "$out") snapshot_s=$(( (t1 - t0) / 1000 )).$(( (t1 - t0) % 1000 / 100 )) file_kb=$(($(stat -c %s "$db") / 1024))" >>"$RESULTS"
    ok "replica of $size users: imported into PostgreSQL in $(field secs "$out") s, snapshot in $((t1 - t0)) ms"
    start_milter replica "$COEXIST_MILTER" -f -c "$conf" || { pg_destroy; return 1; }
    # lookups on the replica against the plain store: alternating routed runs
    for conns in $CONNS; do
        for rcpts in $RCPTS; do
            for round in $(seq 1 "$ROUNDS"); do
                order="coexist replica"
                [ $((round % 2)) = 1 ] || order="replica coexist"
                for m in $order; do
                    # shellcheck disable=SC2086
                    lc "$m" -c "$conns" -r "$rcpts" -u "$size" -S "$round" -p "$RCPT_PAT" -x "$ALIAS_PAT" $LC_LEN
                    rc=$?
                    [ -n "$why" ] || why=$(lc_verdict "$rc" "$rcpts" 1)
                    echo "RUN load=replica size=$size milter=$m round=$round $LC_LINE" >>"$RESULTS"
                    printf '   replica  %-7s users=%s c=%-2s r=%-2s round %s: %s msg/s p99 %s ms\n' \
                        "$m" "$size" "$conns" "$rcpts" "$round" "$(field msg_s "$LC_LINE")" "$(field p99_ms "$LC_LINE")"
                done
            done
        done
    done
    if [ -n "$why" ]; then bad "load on the replica, $size users" "$why"
    else ok "load on the replica, $size users: every recipient got its bcc"; fi
    # a wave applied by a running follower under load
    set -- -c 16 -r 1 -u "$size" -p "$RCPT_PAT"
    lc replica "$@" -d "$FLIP_SECS" || { bad "replica: baseline run" "$LC_ERR"; stop_pid "${MPID[replica]}"; pg_destroy; return 1; }
    base=$LC_LINE
    "$COEXISTCTL" -c "$conf" follow >"$WORK/rfollow.log" 2>&1 &
    fpid=$!
    "$LOADCLIENT" -s "unix:${MSOCK[replica]}" -q -l rwave "$@" -d 86400 >"$WORK/rwave.out" 2>"$WORK/lc.err" &
    local lcpid=$!
    sleep 0.5
    t0=$(now_ms)
    "$COEXISTCTL" -c "$conf" migrate --wave w3 >"$WORK/rwave.ctl" 2>&1
    rc=$?
    local ctl_ms=$(( $(now_ms) - t0 ))
    latest=$("$COEXISTCTL" -c "$conf" status 2>>"$WORK/rwave.ctl" | sed -n 's/^latest journal id: //p')
    poll 600 replica_at "$conf" "$latest"
    t1=$(now_ms)
    kill -INT "$lcpid"
    wait "$lcpid"
    line=$(grep '^LOADCLIENT ' "$WORK/rwave.out" | tail -1)
    stop_pid "$fpid"
    rows=$(( size / 10 ))
    apply_ms=$(( t1 - t0 ))
    [ "$apply_ms" -gt 0 ] || apply_ms=1
    echo "REPLICA_WAVE size=$size rows=$rows ctl_ms=$ctl_ms apply_ms=$apply_ms rows_s=$(( rows * 1000 / apply_ms ))" \
        "base_p999_ms=$(field p999_ms "$base") base_max_ms=$(field max_ms "$base")" \
        "p999_ms=$(field p999_ms "$line") max_ms=$(field max_ms "$line")" \
        "errors=$(( $(field errors "$line") + $(field tempfail "$line") ))" >>"$RESULTS"
    if [ "$rc" != 0 ] && [ "$rc" != 69 ]; then
        bad "replica: a wave through the shared store" "migrate --wave: exit $rc: $(tail -2 "$WORK/rwave.ctl" | tr '\n' ' ')"
    elif [ "$(replica_pos "$conf")" != "$latest" ]; then
        bad "replica: a wave through the shared store" "the follower reached $(replica_pos "$conf") of $latest"
    elif [ "$(field errors "$line")" != 0 ] || [ "$(field tempfail "$line")" != 0 ]; then
        bad "replica: a wave through the shared store" "messages failed: $line"
    else
        ok "replica: a wave of $rows users in the replica $apply_ms ms after migrate --wave began ($ctl_ms ms in coexistctl) under load (longest message $(field max_ms "$line") ms, $(field max_ms "$base") ms without), none failed"
    fi
    stop_pid "${MPID[replica]}"
    pg_destroy
}

# ---- Postfix end to end ----------------------------------------------------------------------
SINK_PORT=2599
unset PF_PORT   # tests/lib/postfix.sh's single instance port; here one per instance
declare -A PF_PORT=([coexist]=2525 [bccmilter]=2526 [native]=2527 [nullmilter]=2528)
# The filter behind each instance, whose CPU time per message is measured.
declare -A E2E_MILTER=([coexist]=coexist [bccmilter]=bcc [nullmilter]=null)

# e2e_make NAME MAIN_CF_LINES - configure a private Postfix instance
# (tests/lib/postfix.sh) that delivers nothing itself; e2e_start starts it.
e2e_make() {
    local dir=$WORK/pf-$1
    pf_write_conf "$dir" "pf-$1.test" "${PF_PORT[$1]}" "$SINK_PORT" "" &&
        printf '%s\n' "$2" >>"$dir/etc/main.cf"
}

# e2e_start NAME - check and start the instance; wait until smtpd listens.
e2e_start() {
    local dir=$WORK/pf-$1
    postfix -c "$dir/etc" check >"$dir/start.log" 2>&1 &&
        postfix -c "$dir/etc" start >>"$dir/start.log" 2>&1 &&
        poll 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/${PF_PORT[$1]}" 2>/dev/null
}

# e2e_queue_empty NAME - no message left in the instance's queue.
e2e_queue_empty() {
    local q=$WORK/pf-$1/queue
    [ -z "$(find "$q/maildrop" "$q/incoming" "$q/active" "$q/deferred" "$q/hold" \
        -type f -print -quit 2>/dev/null)" ]
}

# e2e_count NAME FROM_LINE RE - maillog lines after FROM_LINE that match RE.
e2e_count() { tail -n +"$(($2 + 1))" "$WORK/pf-$1/maillog" 2>/dev/null | grep -cE -- "$3"; }

# e2e_sent NAME FROM_LINE N - at least N deliveries logged after FROM_LINE.
e2e_sent() { [ "$(e2e_count "$1" "$2" 'status=sent')" -ge "$3" ]; }

# e2e_run NAME RCPTS ROUND [LOAD] - one timed smtp-source run through
# instance NAME. LOAD routed (default): recipients are the store's bcc users,
# each must be delivered and get its copy; unrouted: recipients of a domain
# the store does not know, delivered with no copy.
e2e_run() {
    local name=$1 rcpts=$2 round=$3 load=${4:-routed} log=$WORK/pf-$1/maillog mark t0 t1 secs
    local want=$((E2E_MSGS * rcpts)) sent bcc to=u@corp.example wsent wbcc c0=0 c1=0 m
    wsent=$((2 * want)) wbcc=$want
    if [ "$load" = unrouted ]; then to=u@other.example wsent=$want wbcc=0; fi
    m=${E2E_MILTER[$name]:-}
    [ -z "$m" ] || c0=$(cpu_ticks "${MPID[$m]}")
    mark=$(wc -l <"$log" 2>/dev/null || echo 0)
    t0=$(now_ms)
    if ! smtp-source -s "$E2E_SESSIONS" -m "$E2E_MSGS" -r "$rcpts" -N -l 1024 \
            -f sender@client.example -t "$to" -M client.example \
            "127.0.0.1:${PF_PORT[$name]}" >"$WORK/source.log" 2>&1; then
        E2E_WHY="smtp-source failed: $(tail -2 "$WORK/source.log" | tr '\n' ' ') $(tail -2 "$log" | tr '\n' ' ')"
        return 1
    fi
    if ! poll 300 e2e_queue_empty "$name"; then
        E2E_WHY="queue not empty after 300 s"
        return 1
    fi
    t1=$(now_ms)
    [ -z "$m" ] || c1=$(cpu_ticks "${MPID[$m]}")
    # The log lines of the last deliveries may trail the queue file's removal.
    poll 10 e2e_sent "$name" "$mark" "$wsent"
    sent=$(e2e_count "$name" "$mark" 'status=sent')
    bcc=$(e2e_count "$name" "$mark" 'to=<[0-9]+u@pop\.example>.*status=sent')
    secs=$(awk -v ms=$((t1 - t0)) 'BEGIN {printf "%.3f", ms / 1000}')
    echo "E2E load=$load config=$name users=$LARGEST rcpts=$rcpts round=$round msgs=$E2E_MSGS" \
        "sessions=$E2E_SESSIONS secs=$secs msg_s=$(awk -v n="$E2E_MSGS" -v s="$secs" 'BEGIN {printf "%.1f", n / s}')" \
        "sent=$sent bcc=$bcc cpu_us=$(((c1 - c0) * 1000000 / CLK_TCK / E2E_MSGS))" >>"$RESULTS"
    printf '   %-8s %-10s r=%-2s round %s: %s messages in %s s\n' "$load" "$name" "$rcpts" "$round" "$E2E_MSGS" "$secs"
    if [ "$sent" != "$wsent" ] || [ "$bcc" != "$wbcc" ]; then
        E2E_WHY="$load: $sent deliveries ($wsent wanted), $bcc to the legacy aliases ($wbcc wanted): $(grep -m2 -E 'status=(deferred|bounced)|warning|error' "$log" | tr '\n' ' ')"
        return 1
    fi
    return 0
}

# e2e - the three Postfix instances, alternating, every rcpts count.
e2e() {
    local name rcpts round order t0 t1 maxr stops=""
    declare -A fail
    # smtp-source -N numbers the recipients 1, 2, ... across the run.
    maxr=$(printf '%s\n' $E2E_RCPTS | sort -n | tail -1)
    if [ $((E2E_MSGS * maxr)) -ge "$LARGEST" ]; then
        bad "postfix end to end" "$E2E_MSGS messages x $maxr recipients need more than $LARGEST users"
        return 1
    fi
    mkdir -p "$WORK/sink" && chown nobody "$WORK/sink"
    (cd "$WORK/sink" && exec smtp-sink -u nobody "127.0.0.1:$SINK_PORT" 256) >"$WORK/sink.log" 2>&1 &
    SINK_PID=$!
    e2e_make coexist "smtpd_milters = unix:${MSOCK[coexist]}" &&
        e2e_make bccmilter "smtpd_milters = unix:${MSOCK[bcc]}" &&
        e2e_make native "recipient_bcc_maps = hash:$WORK/bcc_map" &&
        e2e_make nullmilter "smtpd_milters = unix:${MSOCK[null]}" ||
        { bad "postfix: configure" "cannot write $WORK/pf-*"; return 1; }
    t0=$(now_ms)
    awk -v n="$LARGEST" 'BEGIN { for (i = 0; i < n; i++) printf "%du@corp.example %du@pop.example\n", i, i }' \
        >"$WORK/bcc_map"
    postmap -c "$WORK/pf-native/etc" "hash:$WORK/bcc_map" 2>"$WORK/postmap.err" ||
        { bad "postfix: postmap" "$(cat "$WORK/postmap.err")"; return 1; }
    t1=$(now_ms)
    echo "POSTMAP users=$LARGEST ms=$((t1 - t0))" >>"$RESULTS"
    e2e_start coexist && e2e_start bccmilter && e2e_start native && e2e_start nullmilter ||
        { bad "postfix: start" "$(tail -3 "$WORK"/pf-*/start.log | tr '\n' ' ')"; return 1; }
    ok "postfix: four private instances and smtp-sink up (postmap of $LARGEST users: $((t1 - t0)) ms)"
    for name in coexist bccmilter native nullmilter; do fail[$name]=""; done
    for rcpts in $E2E_RCPTS; do
        for round in $(seq 1 "$E2E_ROUNDS"); do
            case $((round % 3)) in
                1) order="native bccmilter coexist" ;;
                2) order="coexist native bccmilter" ;;
                0) order="bccmilter coexist native" ;;
            esac
            for name in $order; do
                E2E_WHY=""
                e2e_run "$name" "$rcpts" "$round" || [ -n "${fail[$name]}" ] ||
                    fail[$name]="r=$rcpts round $round: $E2E_WHY"
            done
            # Mail no recipient of which is managed, against the null milter.
            order="coexist nullmilter"
            [ $((round % 2)) = 1 ] || order="nullmilter coexist"
            for name in $order; do
                E2E_WHY=""
                e2e_run "$name" "$rcpts" "$round" unrouted || [ -n "${fail[$name]}" ] ||
                    fail[$name]="r=$rcpts round $round: $E2E_WHY"
            done
        done
    done
    for name in coexist bccmilter native nullmilter; do
        if [ -n "${fail[$name]}" ]; then
            bad "postfix end to end: $name" "${fail[$name]}"
        else
            ok "postfix end to end: $name: every message delivered, with one bcc per recipient where routed, none where not"
        fi
        postfix -c "$WORK/pf-$name/etc" stop >/dev/null 2>&1 &
        stops="$stops $!"
    done
    # shellcheck disable=SC2086
    wait $stops
    stop_pid "$SINK_PID"
}

# ---- the run --------------------------------------------------------------------------------------
for size in $SIZES; do
    note "store of $size users"
    make_store "$size" || continue
    start_milter coexist "$COEXIST_MILTER" -f -c "$WORK/coexist-$size.conf" || continue
    bcc0=$(syslog_bcc)
    COEXIST_ADDS=0
    note "load: users=$size conns=[$CONNS] rcpts=[$RCPTS] rounds=$ROUNDS"
    matrix "$size"
    # Each bcc the load client saw was also logged: rsyslog wrote the line.
    bcc1=$(syslog_bcc_reach $((bcc0 + COEXIST_ADDS)) 30)
    if [ "$COEXIST_ADDS" -gt 0 ] && [ "$((bcc1 - bcc0))" = "$COEXIST_ADDS" ]; then
        ok "coexist-milter, $size users: all $COEXIST_ADDS bccs logged, rsyslog wrote every line"
    else
        bad "coexist-milter syslog, $size users" "$COEXIST_ADDS bccs added, $((bcc1 - bcc0)) bcc lines in $SYSLOGD_LOG"
    fi
    if [ "$size" = "$LARGEST" ]; then
        note "state flips under load, $size users"
        flips "$size" 1
        [ "$MODE" = smoke ] || flips "$size" 16
        if [ "${BENCH_REPLICA:-1}" != 0 ]; then
            note "a replica of the shared store, $size users"
            replica_bench "$size"
        fi
        if [ "${BENCH_E2E:-1}" != 0 ]; then
            note "postfix end to end, $size users"
            e2e
        fi
    fi
    stop_pid "${MPID[coexist]}"
    rm -f "$WORK/users-$size.csv"
done
stop_pid "${MPID[null]}" "${MPID[bcc]}" "$SYSLOGD_PID"
echo "MACHINE end: load average at end $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS"

note "results"
python3 "$HERE/benchtool.py" report "$RESULTS" || bad "report" "benchtool.py report failed"
finish
