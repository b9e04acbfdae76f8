#!/usr/bin/env bash
# tests/security/run.sh - privileges and permissions of coexist-milter and
# coexistctl, checked with two throw-away system users:
#   coexist-t-milter  the daemon's user (owns the store and the socket)
#   coexist-t-other   another local user, who must get nowhere
# The daemon must refuse to stay root unless allow_root = yes, drop to its
# user after opening the socket, leave a socket only its user and group can
# connect to (umask 007) and a store others cannot read; coexistctl must
# refuse to change a store it does not own, and a store that root creates in
# the daemon's directory must belong to the daemon's user.
#
# Usage (as root): tests/security/run.sh
#   COEXISTCTL and COEXIST_MILTER name the binaries (default ./coexistctl,
#   ./coexist-milter). Prints PASS/FAIL lines and "security: N passed, N failed".
set -u

PASSED=0
FAILED=0
ok() { echo "PASS $1"; PASSED=$((PASSED + 1)); }
bad() { echo "FAIL $1: $2"; FAILED=$((FAILED + 1)); }
finish() {
    echo "security: $PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
    exit
}

CTL=$(readlink -f "${COEXISTCTL:-./coexistctl}")
MILTER=$(readlink -f "${COEXIST_MILTER:-./coexist-milter}")
PY=/usr/bin/python3   # not a per-user shim another user cannot run
MUSER=coexist-t-milter
OUSER=coexist-t-other
[ "$(id -u)" = 0 ] || { bad harness "must run as root (it creates two users)"; finish; }
for b in "$CTL" "$MILTER"; do
    [ -x "$b" ] || { bad harness "$b not found (set COEXISTCTL / COEXIST_MILTER)"; finish; }
done
for tool in useradd userdel setpriv timeout; do
    command -v "$tool" >/dev/null || { bad harness "$tool not found"; finish; }
done

WORK=$(mktemp -d /tmp/coexist-sec.XXXXXX)
chmod 0755 "$WORK"
DPID=""
cleanup() {
    [ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
    userdel "$MUSER" 2>/dev/null
    userdel "$OUSER" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

for u in "$MUSER" "$OUSER"; do
    userdel "$u" 2>/dev/null
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$u" || { bad harness "useradd $u failed"; finish; }
done

# as USER CMD... - run CMD with USER's uid, gid and groups
as() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --init-groups -- "$@"; }

# The daemon's directories, as the Debian package lays them out.
STATE=$WORK/lib
RUN=$WORK/run
mkdir -p "$STATE" "$RUN"
chown "$MUSER:$MUSER" "$STATE" "$RUN"
chmod 0750 "$STATE"
chmod 0755 "$RUN"
STORE=$STATE/state.tdb
SOCK=$RUN/milter.sock

conf() { # FILE EXTRA-LINES...
    local f=$1; shift
    {
        echo "socket = unix:$SOCK"
        echo "state_db = $STORE"
        echo "umask = 007"
        for l in "$@"; do echo "$l"; done
    } > "$f"
}

# ---- coexistctl: root creates the store in the daemon's directory
if "$CTL" -d "$STORE" init >"$WORK/init.out" 2>&1 &&
    "$CTL" -d "$STORE" add adam.barr@corp.example adam@pop.example --mode bcc >>"$WORK/init.out" 2>&1; then
    owner=$(stat -c '%U:%a' "$STORE")
    if [ "$owner" = "$MUSER:640" ]; then
        ok "coexistctl init as root: the store belongs to the directory's owner, mode 0640"
    else
        bad "coexistctl init as root" "store is $owner, expected $MUSER:640"
    fi
else
    bad "coexistctl init as root" "$(cat "$WORK/init.out")"
fi

# ---- another user cannot read the store
if as "$OUSER" cat "$STORE" >/dev/null 2>&1; then
    bad "store unreadable by another user" "$OUSER could read $STORE"
else
    ok "store unreadable by another user"
fi

# ---- coexistctl refuses to change a store it does not own
chmod 0755 "$STATE"   # even when the permissions would let it write
chmod 0666 "$STORE"
before=$(sha256sum < "$STORE")
as "$OUSER" "$CTL" -d "$STORE" migrate adam.barr@corp.example >"$WORK/other.out" 2>&1
rc=$?
after=$(sha256sum < "$STORE")
if [ "$rc" = 77 ] && grep -q "is owned by $MUSER" "$WORK/other.out" && [ "$before" = "$after" ]; then
    ok "coexistctl refuses a store it does not own (EX_NOPERM, store unchanged)"
else
    bad "coexistctl refuses a store it does not own" "exit $rc, changed=$([ "$before" = "$after" ] && echo no || echo yes): $(cat "$WORK/other.out")"
fi
if as "$OUSER" "$CTL" -d "$STORE" show adam.barr@corp.example >/dev/null 2>&1; then
    ok "coexistctl: reading verbs are not refused by the owner check"
else
    bad "coexistctl: reading verbs" "show as $OUSER on a 0666 store failed"
fi
chmod 0640 "$STORE"
chmod 0750 "$STATE"
if as "$MUSER" "$CTL" -d "$STORE" mode adam.barr@corp.example bcc >"$WORK/owner.out" 2>&1; then
    ok "coexistctl: the owner may change the store"
else
    bad "coexistctl: the owner may change the store" "$(cat "$WORK/owner.out")"
fi

# ---- the daemon refuses to run as root
conf "$WORK/root.conf"
timeout 10 "$MILTER" -f -c "$WORK/root.conf" >"$WORK/root.out" 2>&1
rc=$?
if [ "$rc" != 0 ] && [ "$rc" != 124 ] && grep -q "refusing to run as root" "$WORK/root.out" && [ ! -e "$SOCK" ]; then
    ok "daemon refuses to run as root without allow_root (exit $rc, no socket)"
else
    bad "daemon refuses to run as root" "exit $rc, socket $([ -e "$SOCK" ] && echo exists || echo absent): $(cat "$WORK/root.out")"
fi
rm -f "$SOCK"

# ---- the daemon drops to its user and protects its socket
conf "$WORK/user.conf" "user = $MUSER"
"$MILTER" -f -v -c "$WORK/user.conf" >"$WORK/user.out" 2>&1 &
DPID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
if [ -S "$SOCK" ] && kill -0 "$DPID" 2>/dev/null; then
    want=$(id -u "$MUSER")
    # The socket is made as root (its owner and mode are set then), the
    # uid changes just after, before the first connection is served: on a
    # loaded machine the test can look in between, so it waits up to 5 s.
    for _ in $(seq 100); do
        uids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$DPID/status")
        [ "$uids" = "$want $want $want $want" ] && break
        sleep 0.05
    done
    if [ "$uids" = "$want $want $want $want" ]; then
        ok "daemon runs as $MUSER (real, effective, saved, fs uid)"
    else
        bad "daemon drops privileges" "uids '$uids', expected $want"
    fi
    if grep -q '^CapEff:[[:space:]]*0*$' "/proc/$DPID/status"; then
        ok "daemon has no capabilities left"
    else
        bad "daemon has no capabilities left" "$(grep CapEff "/proc/$DPID/status")"
    fi
    sock=$(stat -c '%U:%G:%a' "$SOCK")
    case $sock in
    "$MUSER:$MUSER:"[67][67]0) ok "socket owned by $MUSER, nothing for others ($sock)" ;;
    *) bad "socket owner and mode" "$sock, expected $MUSER:$MUSER with no permission for others" ;;
    esac
    connect='import socket,sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print(e); sys.exit(1)'
    if as "$OUSER" "$PY" -c "$connect" "$SOCK" >"$WORK/conn.out" 2>&1; then
        bad "another user cannot connect to the socket" "$OUSER connected"
    elif grep -q "Permission denied" "$WORK/conn.out"; then
        ok "another user cannot connect to the socket (permission denied)"
    else
        bad "another user cannot connect to the socket" "unexpected: $(cat "$WORK/conn.out")"
    fi
    if as "$MUSER" "$PY" -c "$connect" "$SOCK" >"$WORK/conn2.out" 2>&1; then
        ok "the daemon's own group can connect (as an MTA in that group would)"
    else
        bad "the daemon's own group can connect" "$(cat "$WORK/conn2.out")"
    fi
else
    bad "daemon starts as $MUSER" "no socket or daemon gone: $(cat "$WORK/user.out")"
fi
[ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
DPID=""
finish
