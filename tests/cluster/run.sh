#!/usr/bin/env bash
# tests/cluster/run.sh - the cluster tier (DESIGN section 11): a real
# PostgreSQL 15 (pglib.sh), three hosts' replicas each kept by its own
# "coexistctl follow"; changes written through pgtool (pgstore) and through
# coexistctl's writing verbs on the hosts themselves. Prints PASS/FAIL
# lines and "cluster: N passed, N failed". PostgreSQL that does not start
# is a FAIL.
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
for n in 1 2 3; do
    mkdir -p "$T/mx$n"
    printf 'state_db = %s\nshared_store = %s\nnode_name = mx%s\nhash_size = 1009\ntrace_secret_file =\n' \
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
for n in 1 2 3; do
    wait_state "$n" u9@corp.example unmigrated 20 || ok=0
done
[ "$ok" = 1 ] && pass "both followers made their replica by a snapshot" \
    || fail "a follower did not make its replica (see $T/mx*/follow.out)"

# 1b. one follower per replica: a second one is refused while the first runs
"$CTL" -c "$T/mx1/coexist-milter.conf" follow --once >"$T/second.out" 2>&1
rc=$?
[ "$rc" = 75 ] && grep -q "another follow keeps" "$T/second.out" \
    && pass "a second follower of one replica is refused (exit 75)" \
    || fail "a second follower: exit $rc: $(cat "$T/second.out")"

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

# 3. the database stopped and started: the followers catch up, not restarted
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

# ctl N ARGS... - coexistctl on host N.
ctl() { local n=$1; shift; "$CTL" -c "$T/mx$n/coexist-milter.conf" "$@"; }

# percentile P VALUES... - the P-th percentile (nearest rank) of VALUES.
percentile() {
    local p=$1; shift
    printf '%s\n' "$@" | sort -n | sed -n "$(( ($# * p + 99) / 100 ))p"
}

# 6. coexistctl's writing verbs on host 1 reach hosts 2 and 3: 100 flips
ctl 1 add flip@corp.example flip@pop.example --mode bcc >"$T/add.out" 2>&1 ||
    fail "coexistctl add through the shared store: $(cat "$T/add.out")"
times=()
ok=1
want=unmigrated
for k in $(seq 1 100); do
    if [ "$want" = unmigrated ]; then verb=migrate want=migrated; else verb=unmigrate want=unmigrated; fi
    t0=$(now_ms)
    ctl 1 "$verb" flip@corp.example >/dev/null 2>"$T/flip.err" || { ok=0; cat "$T/flip.err"; break; }
    # the writing verb returned: host 1's own replica has it already
    [ "$(state_of 1 flip@corp.example)" = "$want" ] || { ok=0; echo "host 1 did not see its own $verb"; break; }
    for n in 2 3; do wait_state "$n" flip@corp.example "$want" 5 || ok=0; done
    times+=($(( $(now_ms) - t0 )))
done
p50=$(percentile 50 "${times[@]}")
p99=$(percentile 99 "${times[@]}")
echo "cluster: ${#times[@]} coexistctl flips on mx1 seen by mx2 and mx3: p50 ${p50} ms, p99 ${p99} ms (the verb's own wait and the polling show included)"
[ "$ok" = 1 ] && [ "${#times[@]}" = 100 ] && [ "${p99:-9999}" -lt 1000 ] \
    && pass "100 flips made on mx1 reach mx2 and mx3 within 1 s (p50 $p50 ms, p99 $p99 ms)" \
    || fail "flips through coexistctl: ok=$ok, ${#times[@]} done, p99 ${p99:-?} ms"

# 7. concurrent writers on two hosts serialize: overlapping waves in loops
for i in $(seq 1 20); do
    w=wa; [ $((i % 2)) = 0 ] && w=wb
    printf '%s\n' "c$i@corp.example,c$i@pop.example,bcc,unmigrated,$w," >>"$T/waves.body"
done
{ echo "address,alias,mode,state,wave,cutover"; cat "$T/waves.body"; } >"$T/waves.csv"
ctl 1 import "$T/waves.csv" >/dev/null 2>"$T/import.err" || fail "import through the shared store: $(cat "$T/import.err")"
before=$("$PGTOOL" "$CI" latest)
writer() { # HOST WAVE ROUNDS
    local changes=0 out
    for r in $(seq 1 "$3"); do
        for verb in migrate unmigrate; do
            if out=$(ctl "$1" "$verb" --wave "$2" 2>>"$T/writer$1.err"); then
                changes=$((changes + $(printf '%s\n' "$out" | sed -n 's/^[a-z]*: \([0-9]*\) record.*/\1/p')))
            fi
        done
    done
    echo "$changes" >"$T/writer$1.count"
}
writer 1 wa 10 & w1=$!
writer 2 wb 10 & w2=$!
writer 3 wa 10 & w3=$!
wait $w1 $w2 $w3
sleep 1
after=$("$PGTOOL" "$CI" latest)
total=$(( $(cat "$T/writer1.count") + $(cat "$T/writer2.count") + $(cat "$T/writer3.count") ))
"$PGTOOL" "$CI" dump | sort >"$T/db2.txt"
same=1
for n in 1 2 3; do
    wait_state "$n" flip@corp.example "$want" 5 || same=0
    ctl "$n" export --format csv >"$T/mx$n/export2.csv" || same=0
done
for n in 2 3; do cmp -s "$T/mx1/export2.csv" "$T/mx$n/export2.csv" || same=0; done
[ "$(grep -c @ "$T/db2.txt")" -eq "$(($(wc -l <"$T/mx1/export2.csv") - 1))" ] || same=0
[ "$same" = 1 ] && [ $((after - before)) = "$total" ] \
    && pass "three writers on two waves: every replica exports the same state as the database, and the journal holds each of the $total changes once" \
    || fail "concurrent writers: same=$same, journal grew by $((after - before)), changes made $total (see $T/writer*.err)"

# 8. the database down: writes refused with EX_TEMPFAIL, nothing changed
pg_stop fast >/dev/null || fail "pg_stop"
ctl 2 migrate flip@corp.example >/dev/null 2>"$T/down.err"
rc=$?
[ "$rc" = 75 ] && [ "$(grep -c . "$T/down.err")" = 1 ] && grep -q "nothing changed" "$T/down.err" \
    && pass "with the database down a write fails with one line and EX_TEMPFAIL: $(cat "$T/down.err")" \
    || fail "write with the database down: exit $rc, said: $(cat "$T/down.err")"
[ "$(state_of 2 flip@corp.example)" = "$want" ] && pass "the replica still serves the last state" \
    || fail "the replica lost its state while the database was down"
pg_restart >/dev/null || fail "pg_restart"
sleep 1
[ "$("$PGTOOL" "$CI" latest)" = "$after" ] && pass "the refused write changed nothing in the database" \
    || fail "the journal moved while the database was down"

# 9. bad input: a conninfo that does not connect, a newer schema, init twice
printf 'state_db = %s\nshared_store = host=%s/nowhere dbname=x\ntrace_secret_file =\n' \
    "$T/mx1/state.tdb" "$T" >"$T/bad.conf"
"$CTL" -c "$T/bad.conf" migrate flip@corp.example >/dev/null 2>"$T/bad.err"
rc=$?
[ "$rc" = 75 ] && grep -q "cannot connect" "$T/bad.err" \
    && pass "a conninfo that does not connect: EX_TEMPFAIL, one clear line" \
    || fail "bad conninfo: exit $rc: $(cat "$T/bad.err")"
ctl 1 init --shared >/dev/null 2>"$T/init2.err"
rc=$?
[ "$rc" = 73 ] && grep -q "already holds" "$T/init2.err" \
    && pass "init --shared of a database that has the schema is refused" \
    || fail "init --shared twice: exit $rc: $(cat "$T/init2.err")"
pg_psql -c "UPDATE coexist_meta SET schema_version = 99" >/dev/null 2>&1
ctl 1 migrate flip@corp.example >/dev/null 2>"$T/newer.err"
rc=$?
pg_psql -c "UPDATE coexist_meta SET schema_version = 2" >/dev/null 2>&1
[ "$rc" = 78 ] && grep -q "newer" "$T/newer.err" \
    && pass "a schema newer than this coexistctl is refused: $(cat "$T/newer.err")" \
    || fail "newer schema: exit $rc: $(cat "$T/newer.err")"

# 9b. a host's old single-host store, shared_store set, no follower yet: a
# write is refused (it would read records the database does not hold)
mkdir -p "$T/mx4"
printf 'state_db = %s\nhash_size = 1009\ntrace_secret_file =\n' "$T/mx4/state.tdb" >"$T/mx4/local.conf"
"$CTL" -c "$T/mx4/local.conf" init >/dev/null 2>&1 &&
    "$CTL" -c "$T/mx4/local.conf" add u1@corp.example old@pop.example >/dev/null 2>&1 ||
    fail "mx4: a local store"
printf 'state_db = %s\nshared_store = %s\nnode_name = mx4\nreplica_wait = 1\ntrace_secret_file =\n' \
    "$T/mx4/state.tdb" "$CI" >"$T/mx4/coexist-milter.conf"
before=$("$PGTOOL" "$CI" latest)
"$CTL" -c "$T/mx4/coexist-milter.conf" add newbie@corp.example newbie@pop.example >/dev/null 2>"$T/mx4.err"
rc=$?
[ "$rc" = 69 ] && grep -q "not yet a replica" "$T/mx4.err" && [ "$("$PGTOOL" "$CI" latest)" = "$before" ] \
    && pass "a write on a store that is no replica yet is refused, nothing written: $(cat "$T/mx4.err")" \
    || fail "write before the first snapshot: exit $rc: $(cat "$T/mx4.err")"

# 10. a replica deleted while its follower runs is made again by a snapshot
rm -f "$T/mx3/state.tdb"
pgtool_want=$(state_of 1 u5@corp.example)
[ "$pgtool_want" = migrated ] && pgtool_want=unmigrated || pgtool_want=migrated
"$PGTOOL" "$CI" flip u5@corp.example >/dev/null
wait_state 3 u5@corp.example "$pgtool_want" 20 \
    && pass "a deleted replica is rebuilt by its follower" \
    || fail "mx3's deleted replica was not rebuilt (see $T/mx3/follow.out)"

# 11. a follower SIGKILLed again and again while it applies a 100,000-user
# import: after a clean run its replica equals the database, key for key
kill -TERM "${PIDS[2]}" && wait "${PIDS[2]}" 2>/dev/null
# what a follower killed mid-snapshot leaves behind, from a process long gone
: >"$T/mx3/state.tdb.snapshot.999999999"
"$PGTOOL" "$CI" bulk 100000 kill >/dev/null || fail "bulk import of 100000"
kills=0
for delay in 0.7 1.3 0.9 1.7; do
    "$CTL" -c "$T/mx3/coexist-milter.conf" follow >>"$T/mx3/follow.out" 2>&1 &
    kpid=$!
    sleep "$delay"
    kill -KILL "$kpid" 2>/dev/null && kills=$((kills + 1))
    wait "$kpid" 2>/dev/null
done
"$CTL" -c "$T/mx3/coexist-milter.conf" follow --once >>"$T/mx3/follow.out" 2>&1 ||
    fail "follow --once after the kills (see $T/mx3/follow.out)"
"$PGTOOL" "$CI" dump | sort >"$T/db3.txt"
ctl 3 export --format csv | tail -n +2 | cut -d, -f1 | sort >"$T/mx3/keys.txt"
cut -d' ' -f1 "$T/db3.txt" | sort >"$T/db3.keys"
latest=$("$PGTOOL" "$CI" latest)
pos=$(ctl 3 status 2>/dev/null | sed -n 's/^replica position: //p')
# mx1's follower was never killed: the two replicas must export byte for byte alike
for t in $(seq 1 300); do
    [ "$(ctl 1 status 2>/dev/null | sed -n 's/^replica position: //p')" = "$latest" ] && break
    sleep 0.1
done
ctl 1 export >"$T/mx1/export3.csv"
ctl 3 export >"$T/mx3/export3.csv"
[ "$kills" -ge 3 ] && cmp -s "$T/db3.keys" "$T/mx3/keys.txt" && [ "$pos" = "$latest" ] \
        && cmp -s "$T/mx1/export3.csv" "$T/mx3/export3.csv" \
        && [ ! -e "$T/mx3/state.tdb.snapshot.999999999" ] \
    && pass "a follower SIGKILLed $kills times while applying 100,000 rows: its export equals an unkilled replica's byte for byte, every key of the database, at the latest position; a dead follower's snapshot file was removed" \
    || fail "after $kills kills: keys $(wc -l <"$T/mx3/keys.txt") vs $(wc -l <"$T/db3.keys"), position ${pos:-?} of $latest, exports $(cmp "$T/mx1/export3.csv" "$T/mx3/export3.csv" 2>&1 | head -1) (see $T/mx3/follow.out)"
PIDS=("${PIDS[0]}" "${PIDS[1]}")

# 5. SIGTERM stops each follower cleanly
ok=1
for p in "${PIDS[@]}"; do
    kill -TERM "$p"
    wait "$p" || ok=0
done
PIDS=()
[ "$ok" = 1 ] && pass "followers exit 0 on SIGTERM" || fail "a follower did not exit 0 on SIGTERM"
finish
