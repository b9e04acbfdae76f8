#!/usr/bin/env bash
# tests/faults/check-rebuild.sh - coexistctl check on a store whose file
# structure a killed write left damaged. Made deterministically here: the
# file grown by space tdb never formatted, and the header pointing at a not
# yet armed recovery area past it (the state import-kill.sh hits by chance).
# check must keep a copy, rebuild, keep every record; and with a recovery
# area it cannot trust, refuse and change nothing.
set -u
CTL=$(readlink -f "${COEXISTCTL:-./coexistctl}")
PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/coexist-rb.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail=0
bad() { echo "FAIL check-rebuild: $1"; fail=1; }

# damage STORE KIND - append unformatted space and point the header's
# recovery area past it: KIND "armed-not" (a valid, unarmed recovery
# record) or "garbage" (no record at all).
damage() {
    "$PY" - "$1" "$2" <<'PY'
import os, struct, sys
path, kind = sys.argv[1], sys.argv[2]
size, gap, rec = os.path.getsize(path), 65536, 65536
with open(path, "r+b") as f:
    f.seek(size)
    f.write(b"B" * gap)
    if kind == "armed-not":   # next, rec_len, key_len=old size, data_len, hash, magic=invalid
        f.write(struct.pack("<6I", 0, rec - 24, size, 0, 0, 0) + b"\0" * (rec - 24))
    else:
        f.write(b"B" * rec)
    f.seek(44)                # tdb_header.recovery_start
    f.write(struct.pack("<I", size + gap))
PY
}

make_store() {
    rm -f "$1"*
    "$CTL" -d "$1" init >/dev/null &&
        "$CTL" -d "$1" add adam.barr@corp.example adam@pop.example --mode bcc >/dev/null &&
        "$CTL" -d "$1" add @corp2.example @pop2.example --mode rewrite >/dev/null &&
        "$CTL" -d "$1" export > "$WORK/before"
}

S=$WORK/s.tdb
if ! make_store "$S"; then bad "cannot build a store"; exit 1; fi
damage "$S" armed-not
"$CTL" -d "$S" check > "$WORK/out" 2>&1; rc=$?
if [ "$rc" != 0 ] || ! grep -q "^rebuilt $S: .*Expected a recovery area" "$WORK/out"; then
    bad "unformatted space: check exit $rc: $(tr '\n' ' ' < "$WORK/out")"
elif [ "$(ls "$S".damaged-* 2>/dev/null | wc -l)" != 1 ]; then
    bad "unformatted space: no copy of the damaged file kept"
elif ! "$CTL" -d "$S" export | cmp -s - "$WORK/before"; then
    bad "unformatted space: records changed by the rebuild"
elif ! "$CTL" -d "$S" check > "$WORK/out2" 2>&1 || grep -q '^rebuilt' "$WORK/out2"; then
    bad "unformatted space: the rebuilt store does not check clean: $(tr '\n' ' ' < "$WORK/out2")"
else
    echo "PASS check-rebuild: unformatted space rebuilt, damaged copy kept, records unchanged"
fi

make_store "$S"
damage "$S" garbage
sum=$(sha256sum < "$S")
"$CTL" -d "$S" check > "$WORK/out" 2>&1; rc=$?
if [ "$rc" = 0 ]; then
    bad "untrustworthy recovery area: check passed: $(tr '\n' ' ' < "$WORK/out")"
elif [ "$(sha256sum < "$S")" != "$sum" ]; then
    bad "untrustworthy recovery area: check changed the store"
elif ! "$CTL" -d "$S" export | cmp -s - "$WORK/before"; then
    bad "untrustworthy recovery area: records no longer read as before"
else
    echo "PASS check-rebuild: a store it cannot rebuild is reported (exit $rc) and left unchanged"
fi
exit "$fail"
