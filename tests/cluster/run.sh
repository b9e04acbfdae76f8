#!/usr/bin/env bash
# tests/cluster/run.sh - the cluster tier (DESIGN section 11): a real
# PostgreSQL 15 (pglib.sh), two hosts' replicas each kept by its own
# "coexistctl follow", changes written to the database through pgtool
# (pgstore, as the writing verbs will). Prints PASS/FAIL lines and
# "cluster: N passed, N failed". PostgreSQL that does not start is a FAIL.
#
# COEXISTCTL and PGTOOL name the binaries under test (default: _build/werror).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${BUILD_DIR:-$ROOT/_build}/werror
CTL=${COEXISTCTL:-$BIN/coexistctl}
PGTOOL=${PGTOOL:-$(dirname "$CTL")/tests/cluster/pgtool}
PASSED=0
FAILED=0
PIDS=()

pass() { echo "PASS $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $*"; FAILED=$((FAILED + 1)); }
finish() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    pg_destroy >/dev/null 2>&1
    [ -n "${T:-}" ] && rm -rf "$T"
    echo "cluster: $PASSED passed, $FAILED failed"
    [ "$FAILED" = 0 ]
    exit
}

# shellcheck source=tests/cluster/pglib.sh
. "$HERE/pglib.sh"
for b in "$CTL" "$PGTOOL"; do
    [ -x "$b" ] || { fail "setup: no $b (build first)"; finish; }
done
T=$(mktemp -d /tmp/coexist-cluster.XXXXXX) && chmod 755 "$T" || { fail "setup: mktemp"; finish; }
pg_start "$T/pg" >/dev/null || { fail "setup: PostgreSQL 15 does not start"; finish; }
CI=$(pg_conninfo)
"$PGTOOL" "$CI" init || { fail "setup: schema"; finish; }
for i in 0 1 2 3 4 5 6 7 8 9; do
    "$PGTOOL" "$CI" put "u$i@corp.example" \
        "v=1 state=unmigrated mode=bcc alias=u$i@pop.example" >/dev/null \
        || { fail "setup: put u$i"; finish; }
done
"$PGTOOL" "$CI" put @corp.example "v=1 state=unmigrated mode=rewrite legacy=pop.example" \
    >/dev/null || { fail "setup: domain rule"; finish; }

# host N: its own config, store and follower
for n in 1 2; do
    mkdir -p "$T/mx$n"
    printf 'state_db = %s\nshared_store = %s\nnode_name = mx%s\nhash_size = 1009\n' \
        "$T/mx$n/state.tdb" "$CI" "$n" >"$T/mx$n/coexist-milter.conf"
    "$CTL" -c "$T/mx$n/coexist-milter.conf" follow >"$T/mx$n/follow.out" 2>&1 &
    PIDS+=($!)
done

# now_ms - a clock in milliseconds.
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# state_of N KEY - the state of KEY in host N's replica ("" if none).
state_of() {
    "$CTL" -c "$T/mx$1/coexist-milter.conf" show "$2" 2>/dev/null | sed -n 's/^state: *//p'
}

# wait_state N KEY STATE SECONDS - poll until host N's replica says so.
wait_state() {
    local end=$(( $(now_ms) + $4 * 1000 ))
    while [ "$(now_ms)" -lt "$end" ]; do
        [ "$(state_of "$1" "$2")" = "$3" ] && return 0
        sleep 0.01
    done
    return 1
}

# 1. the first start of each follower takes a snapshot of the database
ok=1
for n in 1 2; do
    wait_state "$n" u9@corp.example unmigrated 20 || ok=0
done
[ "$ok" = 1 ] && pass "both followers made their replica by a snapshot" \
    || fail "a follower did not make its replica (see $T/mx*/follow.out)"

# 2. a change in the database reaches both replicas within 1 s
times=()
ok=1
for k in $(seq 1 20); do
    key=u$((k % 10))@corp.example
    want=$(state_of 1 "$key")
    [ "$want" = migrated ] && want=unmigrated || want=migrated
    t0=$(now_ms)
    "$PGTOOL" "$CI" flip "$key" >/dev/null || { ok=0; break; }
    for n in 1 2; do
        wait_state "$n" "$key" "$want" 5 || ok=0
    done
    times+=($(( $(now_ms) - t0 )))
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
p50=$(printf '%s\n' "$sorted" | sed -n "$(( (${#times[@]} + 1) / 2 ))p")
worst=$(printf '%s\n' "$sorted" | tail -1)
echo "cluster: ${#times[@]} flips reached both replicas: p50 ${p50} ms, max ${worst} ms" \
    "(including the polling coexistctl show)"
[ "$ok" = 1 ] && [ "${worst:-9999}" -lt 1000 ] \
    && pass "20 flips reached both replicas within 1 s (max $worst ms)" \
    || fail "flips: reached=$ok, max ${worst:-?} ms"

# 3. the database stopped and started: both followers catch up, not restarted
pg_stop fast >/dev/null || fail "pg_stop"
sleep 3
[ "$(state_of 1 u1@corp.example)" != "" ] && pass "the replicas serve while the database is down" \
    || fail "a replica stopped serving while the database was down"
pg_restart >/dev/null || fail "pg_restart"
want=$(state_of 1 u3@corp.example)
[ "$want" = migrated ] && want=unmigrated || want=migrated
"$PGTOOL" "$CI" flip u3@corp.example >/dev/null || fail "flip after the restart"
t0=$(now_ms)
ok=1
for n in 1 2; do
    wait_state "$n" u3@corp.example "$want" 40 || ok=0
done
alive=1
for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null || alive=0; done
[ "$ok" = 1 ] && [ "$alive" = 1 ] \
    && pass "both followers caught up after a database restart ($(( $(now_ms) - t0 )) ms), without a restart of their own" \
    || fail "after the database restart: caught up=$ok, followers alive=$alive"

# 4. both replicas equal the database, record for record
"$PGTOOL" "$CI" dump | sort >"$T/db.txt"
same=1
for n in 1 2; do
    "$CTL" -c "$T/mx$n/coexist-milter.conf" export --format csv >"$T/mx$n/export.csv" || same=0
done
cmp -s "$T/mx1/export.csv" "$T/mx2/export.csv" || same=0
[ "$(wc -l <"$T/db.txt")" -eq 11 ] || same=0
[ "$same" = 1 ] && pass "both replicas export the same state as the database's 11 records" \
    || fail "the replicas differ (see $T/mx1/export.csv, $T/mx2/export.csv, $T/db.txt)"

# 5. SIGTERM stops each follower cleanly
ok=1
for p in "${PIDS[@]}"; do
    kill -TERM "$p"
    wait "$p" || ok=0
done
PIDS=()
[ "$ok" = 1 ] && pass "followers exit 0 on SIGTERM" || fail "a follower did not exit 0 on SIGTERM"
finish
