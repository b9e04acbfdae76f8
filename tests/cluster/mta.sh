#!/usr/bin/env bash
# tests/cluster/mta.sh - the cluster tier through a real Postfix (DESIGN
# section 11): host mx1 runs coexist-milter behind a private Postfix (the
# MTA tier's harness) on a replica kept by its follower; a second host's
# coexistctl changes the state; the next message through mx1's Postfix is
# routed by it. Then the database is crashed (pg_ctl -m immediate) and
# kept down for 30 s under mail: mx1 keeps routing by the last state
# (nothing tempfailed, nothing lost) while writes are refused, and after the restart the follower
# catches up without a restart of its own. Last, the replica is removed and then
# overwritten under mail: tempfails only until the follower's snapshot lands. Runs inside private network and
# mount namespaces (it enters them itself). Prints PASS/FAIL lines and
# "cluster-mta: N passed, N failed".
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${BUILD_DIR:-$ROOT/_build}/werror
CTL=${COEXISTCTL:-$BIN/coexistctl}
MILTER=${COEXIST_MILTER:-$(dirname "$CTL")/coexist-milter}
PGTOOL=${PGTOOL:-$(dirname "$CTL")/tests/cluster/pgtool}

if [ "${COEXIST_CLUSTER_INNS:-}" != 1 ]; then
    case $CTL in /*) ;; *) CTL=$(pwd)/$CTL ;; esac
    export COEXISTCTL=$CTL COEXIST_MILTER=$MILTER PGTOOL COEXIST_CLUSTER_INNS=1
    # shellcheck source=tests/lib/ns.sh
    . "$ROOT/tests/lib/ns.sh"
    ns_exec "$0"
    echo "FAIL setup: cannot enter private namespaces"
    echo "cluster-mta: 0 passed, 1 failed"
    exit 1
fi

PASSED=0
FAILED=0
pass() { echo "PASS $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $*: $(head -1 "$MTA_T/why" 2>/dev/null)"; FAILED=$((FAILED + 1)); : >"$MTA_T/why"; }

MTA_T=$(mktemp -d /tmp/coexist-cluster-mta.XXXXXX) && chmod 755 "$MTA_T" || exit 1
: >"$MTA_T/why"
MTA_LIBDIR=$ROOT/tests/mta
# shellcheck source=tests/mta/lib.sh
. "$MTA_LIBDIR/lib.sh"
# shellcheck source=tests/cluster/pglib.sh
. "$HERE/pglib.sh"

finish() {
    pf_stop >/dev/null 2>&1
    mta_kill_pidfile "$MTA_T/milter.pid" 8
    mta_kill_pidfile "$MTA_T/follow.pid" 5
    mta_kill_pidfile "$MTA_T/follow2.pid" 5
    sink_stop
    pg_destroy >/dev/null 2>&1
    if [ "$FAILED" -gt 0 ]; then echo "cluster-mta: logs kept in $MTA_T"; else rm -rf "$MTA_T"; fi
    echo "cluster-mta: $PASSED passed, $FAILED failed"
    [ "$FAILED" = 0 ]
    exit
}
trap finish EXIT

for b in "$CTL" "$MILTER" "$PGTOOL"; do
    [ -x "$b" ] || { mta_why "no $b (build first)"; fail setup; exit; }
done
pg_start "$MTA_T/pg" >/dev/null || { mta_why "PostgreSQL 15 does not start"; fail setup; exit; }
CI=$(pg_conninfo)
MILTER_DIR=$MTA_T/mx1
MILTER_SOCK=$MILTER_DIR/milter.sock
MILTER_CONF=$MILTER_DIR/coexist-milter.conf
mkdir -p "$MILTER_DIR" "$MTA_T/mx2" && chmod 755 "$MILTER_DIR"
# mx1: the milter and its follower share the replica; mx2: only coexistctl.
cat >"$MILTER_CONF" <<EOF
socket = unix:$MILTER_SOCK
state_db = $MILTER_DIR/state.tdb
allow_root = yes
umask = 000
on_db_error = tempfail
log_stderr = yes
trace_secret_file =
shared_store = $CI
node_name = mx1
hash_size = 1009
counters_interval = 1
EOF
printf 'state_db = %s\nshared_store = %s\nnode_name = mx2\nhash_size = 1009\ntrace_secret_file =\n' \
    "$MTA_T/mx2/state.tdb" "$CI" >"$MTA_T/mx2/coexist-milter.conf"
ctl1() { "$CTL" -c "$MILTER_CONF" "$@"; }
ctl2() { "$CTL" -c "$MTA_T/mx2/coexist-milter.conf" "$@"; }

ctl1 init --shared >"$MTA_T/init.out" 2>&1 || { mta_why "init --shared: $(cat "$MTA_T/init.out")"; fail setup; exit; }
"$CTL" -c "$MILTER_CONF" follow >"$MTA_T/follow.log" 2>&1 &
echo $! >"$MTA_T/follow.pid"
"$CTL" -c "$MTA_T/mx2/coexist-milter.conf" follow >"$MTA_T/follow2.log" 2>&1 &
echo $! >"$MTA_T/follow2.pid"
mta_poll 20 test -s "$MILTER_DIR/state.tdb" || { mta_why "mx1's follower made no replica"; fail setup; exit; }
mta_poll 20 test -s "$MTA_T/mx2/state.tdb" || { mta_why "mx2's follower made no replica"; fail setup; exit; }
ctl2 add adam.barr@corp.example adam@pop.example --mode bcc >"$MTA_T/add.out" 2>&1 &&
    ctl2 add rita.rewrite@corp.example rita@pop.example --mode rewrite >>"$MTA_T/add.out" 2>&1 ||
    { mta_why "coexistctl add on mx2: $(cat "$MTA_T/add.out")"; fail setup; exit; }
sink_start && milter_start && pf_setup && pf_start || { fail "setup: sink, milter on the replica, postfix"; exit; }
pass "setup: PostgreSQL, two followers, coexist-milter on mx1's replica behind Postfix"

# roundtrip NAME RCPT... - a message through mx1's Postfix; its id in $ID.
roundtrip() {
    ID=$(mta_new_id "cluster-$1")
    shift
    pf_send_smtp "$ID" "$@" && pf_wait "$ID"
}

# waits - until mx1's replica says KEY is STATE.
replica_says() { "$CTL" -c "$MILTER_CONF" show "$1" 2>/dev/null | grep -q "^state: *$2\$"; }

# 1. a change written on mx2 routes the next message on mx1
if mta_poll 5 replica_says adam.barr@corp.example unmigrated && roundtrip bcc adam.barr@corp.example &&
        expect_rcpts "$ID" adam.barr@corp.example adam@pop.example; then
    pass "mx2's add is routed by mx1's Postfix (bcc copy)"
else fail "mx2's add through mx1"; fi
t0=$(( $(date +%s%N) / 1000000 ))
ctl2 migrate adam.barr@corp.example >/dev/null 2>"$MTA_T/mig.err" || mta_why "migrate on mx2: $(cat "$MTA_T/mig.err")"
if mta_poll 2 replica_says adam.barr@corp.example migrated; then
    seen=$(( $(date +%s%N) / 1000000 - t0 ))
    if roundtrip migrated adam.barr@corp.example && expect_rcpts "$ID" adam.barr@corp.example; then
        pass "mx2's migrate reached mx1 in $seen ms; the next message through mx1's Postfix is left alone"
    else fail "after the migrate on mx2"; fi
else mta_why "mx1's replica did not see the migrate within 2 s"; fail "flip on mx2 seen by mx1"; fi

# 2. the database crashes and stays down for 30 s under mail: mx1 routes
# every message by the last state
pg_stop immediate >/dev/null 2>&1 || mta_why "pg_ctl -m immediate stop failed"
ok=1
k=0
end=$(( $(date +%s) + 30 ))
while [ "$(date +%s)" -lt "$end" ]; do
    k=$((k + 1))
    roundtrip "down$k" rita.rewrite@corp.example adam.barr@corp.example || ok=0
    expect_rcpts "$ID" rita@pop.example adam.barr@corp.example || ok=0
    sleep 0.5
done
[ "$ok" = 1 ] && [ "$k" -ge 10 ] && ! grep -q "milter-reject\|451 " "$PF_LOG" \
    && pass "the database crashed and down for 30 s: $k messages through mx1, each routed by the last state, none tempfailed" \
    || fail "mail while the database is down ($k messages)"
ctl1 unmigrate adam.barr@corp.example >/dev/null 2>"$MTA_T/down.err"
rc=$?
[ "$rc" = 75 ] && pass "a write with the database down: exit 75, $(cat "$MTA_T/down.err")" \
    || { mta_why "exit $rc: $(cat "$MTA_T/down.err")"; fail "write with the database down"; }

# 3. the database back: the followers catch up by themselves
pg_restart >/dev/null 2>&1 || mta_why "pg_restart failed"
mta_poll 40 ctl2 unmigrate adam.barr@corp.example >/dev/null 2>&1 || mta_why "unmigrate on mx2 after the restart"
if mta_poll 40 replica_says adam.barr@corp.example unmigrated && kill -0 "$(cat "$MTA_T/follow.pid")" &&
        roundtrip back adam.barr@corp.example &&
        expect_rcpts "$ID" adam.barr@corp.example adam@pop.example; then
    pass "after the restart mx1's follower caught up without a restart; mail is routed by the new state"
else fail "after the database restart"; fi

# send_retrying ID RCPT... - submit like a client that keeps its message on
# a 4xx and tries again (0.2 s later, for up to 15 s); the time of the last
# 4xx in $LAST_4XX (ms, 0 if none), any 5xx or a 4xx past 15 s fails.
send_retrying() {
    local id=$1 end=$(( $(date +%s) + 15 ))
    shift
    while ! pf_send_smtp "$id" "$@"; do
        grep -qE '^ *<[~*]* *4[0-9][0-9] ' "$MTA_T/$id.smtp" || return 1
        LAST_4XX=$(( $(date +%s%N) / 1000000 ))
        TEMPFAILS=$((TEMPFAILS + 1))
        [ "$(date +%s)" -lt "$end" ] || { mta_why "still 4xx after 15 s"; return 1; }
        sleep 0.2
    done
}

# 4. mx1's replica removed, then overwritten in place, while mail flows: the
# milter tempfails (the client keeps the message) only until the follower's
# snapshot is renamed in; then every message is delivered once, routed by
# the state: nothing lost, nothing misrouted.
for damage in removed overwritten; do
    : >"$MTA_T/why"
    TEMPFAILS=0 LAST_4XX=0 ok=1
    # the milter logs each store it opens: a new one means the snapshot landed
    before=$(grep -c "state_db .* opened" "$MTA_T/milter.log")
    t0=$(( $(date +%s%N) / 1000000 ))
    if [ "$damage" = removed ]; then
        rm -f "$MILTER_DIR/state.tdb"
    else
        size=$(stat -c %s "$MILTER_DIR/state.tdb")
        head -c "$size" /dev/urandom | dd of="$MILTER_DIR/state.tdb" conv=notrunc status=none
    fi
    for k in $(seq 1 12); do
        ID=$(mta_new_id "cluster-$damage$k")
        send_retrying "$ID" rita.rewrite@corp.example adam.barr@corp.example && pf_wait "$ID" &&
            expect_rcpts "$ID" rita@pop.example adam.barr@corp.example adam@pop.example || { ok=0; break; }
        sleep 0.25
    done
    window=0
    [ "$LAST_4XX" -gt 0 ] && window=$((LAST_4XX - t0))
    after=$(grep -c "state_db .* opened" "$MTA_T/milter.log")
    if [ "$ok" = 1 ] && [ "$after" -gt "$before" ] && [ "$window" -lt 3000 ] &&
            kill -0 "$(cat "$MTA_T/milter.pid")"; then
        pass "replica $damage under mail: the follower's snapshot replaced it; $TEMPFAILS tempfail(s), the last ${window} ms after the damage; 12 messages each delivered once and routed"
    else
        [ "$after" -gt "$before" ] || mta_why "the milter opened no new store: $(mta_tail 2 "$MTA_T/milter.log")"
        [ "$window" -lt 3000 ] || mta_why "tempfails went on for $window ms"
        fail "replica $damage under mail"
    fi
done

# 5. every host's counters through the shared store: mx1's milter flushes,
# its follower pushes, and "report" on mx2 (no milter, no counters file of
# its own) shows what mx1 routed, message for message as the sink got it
sent_to() { grep -rlF "X-Rcpt-Args: <$1>" "$MTA_T/sink" 2>/dev/null | wc -l; }
report_says() { # KEY FIELD: mx2's report of KEY's FIELD (copies, rewrites)
    ctl2 report --format json 2>/dev/null | "$MTA_PYTHON" -c '
import json, sys
r = json.load(sys.stdin)
print(next((u[sys.argv[2]] for u in r["users"] if u["address"] == sys.argv[1]), -1))' "$1" "$2"
}
counts_agree() {
    [ "$(report_says adam.barr@corp.example copies)" = "$(sent_to adam@pop.example)" ] &&
        [ "$(report_says rita.rewrite@corp.example rewrites)" = "$(sent_to rita@pop.example)" ]
}
if mta_poll 20 counts_agree && [ "$(sent_to adam@pop.example)" -ge 10 ]; then
    pass "report on mx2 sums mx1's counters from the shared store: $(sent_to adam@pop.example) copies for adam, $(sent_to rita@pop.example) rewrites for rita, as the sink received them ($(ctl2 report 2>/dev/null | grep -c 'summed with 1 other host') host summed)"
else
    mta_why "mx2's report: adam copies $(report_says adam.barr@corp.example copies) (sink $(sent_to adam@pop.example)), rita rewrites $(report_says rita.rewrite@corp.example rewrites) (sink $(sent_to rita@pop.example)): $(ctl2 report 2>&1 | head -3 | tr '\n' '|')"
    fail "counters summed through the shared store"
fi

# 6. status says whether the milter answers a negotiation: mx1's does, and
# a milter that is stopped (SIGSTOP: it still accepts) does not
ctl1 status >"$MTA_T/status1.out" 2>&1
kill -STOP "$(cat "$MTA_T/milter.pid")"
ctl1 status >"$MTA_T/status2.out" 2>&1
kill -CONT "$(cat "$MTA_T/milter.pid")"
if grep -q "^milter: unix:$MILTER_SOCK answers (protocol version 6, the actions it needs)" "$MTA_T/status1.out" &&
        grep -q "^milter: unix:$MILTER_SOCK does not answer a negotiation" "$MTA_T/status2.out"; then
    pass "status: $(grep '^milter:' "$MTA_T/status1.out"); stopped: $(grep '^milter:' "$MTA_T/status2.out" | cut -c1-160)"
else
    mta_why "status said: $(grep '^milter:' "$MTA_T/status1.out") / $(grep '^milter:' "$MTA_T/status2.out")"
    fail "status and the milter's negotiation"
fi
exit
