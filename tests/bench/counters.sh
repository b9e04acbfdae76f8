#!/usr/bin/env bash
# tests/bench/counters.sh - what the per-user counters (DESIGN section 12)
# cost: coexist-milter with counters_db against the same daemon with
# counters_db = (empty: no counting), driven in turn by the benchmark's load
# client, in alternating order, every recipient a routed bcc user.
#
# Usage: tests/bench/counters.sh [BUILDDIR]
#   Binaries: $COEXISTCTL, $COEXIST_MILTER, $LOADCLIENT, else BUILDDIR/...
#   Knobs: CB_USERS (100000), CB_CONNS ("1 16"), CB_RCPTS ("1 10"),
#   CB_SECS (3), CB_ROUNDS (3), CB_INTERVAL (counters_interval, 1: a flush
#   every second, the worst case).
# Output: one line per run, then per cell the median messages/s and CPU per
# message of each and the ratio counters/none, and "PASS"/"FAIL" lines: FAIL
# only when a run failed (wrong bcc, errors) or counters_db does not hold
# exactly what was routed; the ratio is reported, not asserted (a shared
# machine's noise is larger than what is measured).
set -u
build=${1:-.}
COEXISTCTL=${COEXISTCTL:-$build/coexistctl}
COEXIST_MILTER=${COEXIST_MILTER:-$build/coexist-milter}
LOADCLIENT=${LOADCLIENT:-$build/tests/bench/loadclient}
USERS=${CB_USERS:-100000}
CONNS=${CB_CONNS:-"1 16"}
RCPTS=${CB_RCPTS:-"1 10"}
SECS=${CB_SECS:-3}
ROUNDS=${CB_ROUNDS:-3}
INTERVAL=${CB_INTERVAL:-1}
CLK_TCK=$(getconf CLK_TCK)
FAILED=0

fail() { echo "FAIL $1"; FAILED=$((FAILED + 1)); }
field() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -1; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

WORK=$(mktemp -d /tmp/coexist-cb.XXXXXX)
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
}
trap cleanup EXIT

# The store: USERS unmigrated bcc users.
i=0
{
    echo "address,alias,mode,state,wave,cutover"
    while [ $i -lt "$USERS" ]; do
        echo "u$i@corp.example,u$i@pop.example,bcc,unmigrated,w$((i % 10)),"
        i=$((i + 1))
    done
} > "$WORK/users.csv"
"$COEXISTCTL" -d "$WORK/state.tdb" init --hash-size $((USERS + 3)) >/dev/null &&
    "$COEXISTCTL" -d "$WORK/state.tdb" import "$WORK/users.csv" >/dev/null ||
    { fail "store: import"; exit 1; }

declare -A SOCK PID
for m in counters none; do
    db=counters.tdb
    [ "$m" = none ] && db=
    cat > "$WORK/$m.conf" <<EOF
socket = unix:$WORK/$m.sock
state_db = $WORK/state.tdb
allow_root = yes
trace_secret_file =
log_level = notice
stats_interval = 0
counters_db = $db
counters_interval = $INTERVAL
EOF
    # -v: the stats line at exit goes to stderr too (log_level keeps the rest quiet)
    "$COEXIST_MILTER" -f -v -c "$WORK/$m.conf" 2>"$WORK/$m.err" &
    PID[$m]=$!
    PIDS="$PIDS ${PID[$m]}"
    SOCK[$m]=$WORK/$m.sock
done
for m in counters none; do
    for _ in $(seq 50); do [ -S "${SOCK[$m]}" ] && break; sleep 0.1; done
    [ -S "${SOCK[$m]}" ] || { fail "start $m: $(cat "$WORK/$m.err")"; exit 1; }
done

for c in $CONNS; do
    for r in $RCPTS; do
        for round in $(seq "$ROUNDS"); do
            order="counters none"
            [ $((round % 2)) = 0 ] && order="none counters"
            for m in $order; do
                c0=$(cpu_ticks "${PID[$m]}")
                line=$("$LOADCLIENT" -s "unix:${SOCK[$m]}" -q -l "$m" -c "$c" -r "$r" \
                       -u "$USERS" -d "$SECS" -x 'u%u@pop.example' 2>"$WORK/lc.err" |
                       grep '^LOADCLIENT ' | tail -1)
                rc=$?
                c1=$(cpu_ticks "${PID[$m]}")
                total=$(field total_msgs "$line")
                if [ -z "$total" ] || [ "$total" = 0 ] || [ "$(field bcc_bad "$line")" != 0 ]; then
                    fail "run $m c=$c r=$r: $line $(cat "$WORK/lc.err")"
                    continue
                fi
                cpu=$(((c1 - c0) * 1000000 / CLK_TCK / total))
                echo "RUN $m conns=$c rcpts=$r round=$round msg_s=$(field msg_s "$line") cpu_us=$cpu routed=$((total * r)) rc=$rc"
            done
        done
    done
done | tee "$WORK/runs.txt"
FAILED=$((FAILED + $(grep -c '^FAIL' "$WORK/runs.txt")))

# Stop both (the shutdown flush), then counters_db must hold one count per
# recipient the counting daemon routed.
cleanup
PIDS=""
copies=$(tdbdump "$WORK/counters.tdb" | sed -n 's/.*copies=\([0-9]*\).*/\1/p' | awk '{s += $1} END {print s + 0}')
sent=$(awk '$2 == "counters" { for (i = 3; i <= NF; i++) if ($i ~ /^routed=/) s += substr($i, 8) }
            END { print s + 0 }' "$WORK/runs.txt")
# The load client counts the messages it measured; the daemon also routed
# those in flight at the end of each run: at least that many, a few more.
if [ "$copies" -ge "$sent" ] && [ "$copies" -le $((sent + sent / 50 + 1000)) ]; then
    echo "PASS counters_db holds $copies copies for the $sent bcc the load client counted (+ in flight)"
else
    fail "counters_db holds $copies copies, the load client counted $sent bcc"
fi

# Medians per cell and the ratio.
echo
echo "| conns | rcpts | msgs/s counters | msgs/s none | ratio | CPU us/msg counters | CPU us/msg none |"
echo "|---|---|---|---|---|---|---|"
for c in $CONNS; do
    for r in $RCPTS; do
        med() { grep "^RUN $1 conns=$c rcpts=$r " "$WORK/runs.txt" | tr ' ' '\n' |
                sed -n "s/^$2=//p" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
        a=$(med counters msg_s); b=$(med none msg_s)
        ca=$(med counters cpu_us); cb=$(med none cpu_us)
        ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')
        echo "| $c | $r | $a | $b | $ratio | $ca | $cb |"
    done
done
[ -n "${CB_KEEP:-}" ] && echo "kept $WORK" || rm -rf "$WORK"
echo "counters-bench: $FAILED failed"
[ "$FAILED" = 0 ]
