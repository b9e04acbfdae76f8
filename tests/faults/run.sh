#!/usr/bin/env bash
# tests/faults/run.sh - the reliability tier: each script here kills or
# breaks something on purpose and checks that no state and no mail is lost.
# Scripts print PASS/FAIL lines; this prints "faults: N passed, N failed".
# COEXISTCTL and COEXIST_MILTER name the binaries under test.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
PASSED=0
FAILED=0
for script in "$HERE"/*.sh; do
    [ "$(basename "$script")" = run.sh ] && continue
    out=$(bash "$script" 2>&1)
    rc=$?
    printf '%s\n' "$out"
    p=$(printf '%s\n' "$out" | grep -c '^PASS ')
    f=$(printf '%s\n' "$out" | grep -c '^FAIL ')
    if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
        echo "FAIL $(basename "$script"): exit $rc without a FAIL line"
        f=1
    fi
    PASSED=$((PASSED + p))
    FAILED=$((FAILED + f))
done
echo "faults: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
