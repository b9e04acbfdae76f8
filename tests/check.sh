#!/usr/bin/env bash
# tests/check.sh - set up, build and run every test tier of coexist-milter.
#
# Installs missing Debian packages (as root), builds twice out of tree (a
# -Werror build and an ASan+UBSan build), then runs: the cmocka unit tests in
# both builds, the miltertest protocol tier, and the real-MTA tier. Every
# tier that cannot run counts as failed, never as skipped. The last line is
# "N passed, N failed", counting test cases.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/_build}
LOGS=$BUILD/logs
PASSED=0
FAILED=0

note() { printf '== %s\n' "$*"; }
count() { PASSED=$((PASSED + $1)); FAILED=$((FAILED + $2)); }
finish() {
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
    exit
}

note "dependencies"
if ! sh "$ROOT/tests/deps.sh"; then
    echo "check: cannot install dependencies"
    count 0 1
    finish
fi

# build NAME CONFIGURE-FLAGS... - configure and build into $BUILD/NAME.
build() {
    local name=$1; shift
    mkdir -p "$BUILD/$name" "$LOGS"
    # "make check TESTS=" builds the test programs without running them.
    (cd "$BUILD/$name" && "$ROOT/configure" -q "$@" && make -j"$(nproc)" all \
        && make -j"$(nproc)" check TESTS=) >"$LOGS/build-$name.log" 2>&1
}

# unit NAME - run every cmocka binary of build NAME, counting cases.
unit() {
    local dir=$BUILD/$1 t log p f
    for t in "$dir"/tests/unit/test_*; do
        [ -x "$t" ] && [ -f "$t" ] || continue
        log=$LOGS/$1-$(basename "$t").log
        if (cd "$dir" && "$t") >"$log" 2>&1; then :; fi
        p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
        f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
        p=${p:-0}; f=${f:-0}
        # A crash (sanitizer report, abort) prints no summary: count it.
        if ! grep -q '^\[  PASSED  \]' "$log" || grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log"; then
            f=$((f + 1))
        fi
        [ "$f" -gt 0 ] && { echo "FAIL $1 $(basename "$t") (see $log)"; tail -20 "$log"; }
        echo "$1 $(basename "$t"): $p passed, $f failed"
        count "$p" "$f"
    done
}

# tier NAME SCRIPT ARGS... - a script tier that ends with "NAME: N passed, N failed".
tier() {
    local name=$1 script=$2 log=$LOGS/$1.log p f; shift 2
    if [ ! -f "$script" ]; then return; fi
    note "$name tier"
    bash "$script" "$@" 2>&1 | tee "$log" | grep -E '^(PASS|FAIL)' || true
    p=$(sed -n "s/^$name: \([0-9]*\) passed, \([0-9]*\) failed.*/\1/p" "$log" | tail -1)
    f=$(sed -n "s/^$name: \([0-9]*\) passed, \([0-9]*\) failed.*/\2/p" "$log" | tail -1)
    if [ -z "$p" ]; then
        echo "FAIL $name tier: no summary line (see $log)"; tail -30 "$log"
        p=0; f=$((${f:-0} + 1))
    fi
    echo "$name: $p passed, $f failed"
    count "$p" "$f"
}

note "autogen"
if ! (cd "$ROOT" && ./autogen.sh) >"$BUILD.autogen.log" 2>&1; then
    cat "$BUILD.autogen.log"; count 0 1; finish
fi
mkdir -p "$LOGS"
for variant in "werror --enable-werror" "asan --enable-werror --enable-sanitizers"; do
    set -- $variant
    note "build $1"
    if ! build "$@"; then
        echo "FAIL build $1 (see $LOGS/build-$1.log)"; tail -30 "$LOGS/build-$1.log"
        count 0 1
        continue
    fi
    note "unit tests ($1)"
    unit "$1"
done

BIN=$BUILD/werror
export COEXISTCTL=$BIN/coexistctl COEXIST_MILTER=$BIN/coexist-milter
tier milter "$ROOT/tests/milter/run.sh"
# The same scripts with the daemon under valgrind: no leak, no memory error.
export COEXIST_MT_VALGRIND=1
tier milter-valgrind "$ROOT/tests/milter/run.sh"
unset COEXIST_MT_VALGRIND
tier mta "$ROOT/tests/mta/run.sh"
# coexistctl doctor on a good deployment (real Postfix and milter) and broken ones.
tier doctor "$ROOT/tests/doctor/run.sh"
tier security "$ROOT/tests/security/run.sh"
tier faults "$ROOT/tests/faults/run.sh"
# Two replicas of a real PostgreSQL, each kept by coexistctl follow.
PGTOOL=$BIN/tests/cluster/pgtool tier cluster "$ROOT/tests/cluster/run.sh"
# The same through a real Postfix on one host, and the database crashed under mail.
PGTOOL=$BIN/tests/cluster/pgtool tier cluster-mta "$ROOT/tests/cluster/mta.sh"
# libFuzzer targets for the parsers and the decision, 10 s each.
BUILD_DIR=$BUILD tier fuzz "$ROOT/tests/fuzz/run.sh" 10
# The unit and protocol suites again under ThreadSanitizer, plus a load.
BUILD_DIR=$BUILD tier tsan "$ROOT/tests/tsan/run.sh"
# A few seconds of the benchmark, so that it cannot rot: correctness only.
tier bench "$ROOT/tests/bench/run.sh" --smoke
# Builds the .deb, installs it, runs it as the unit would, purges it.
tier pkg "$ROOT/tests/pkg/run.sh"
# The README's Postfix deployment of that package under a real systemd (nspawn).
tier system "$ROOT/tests/system/run.sh"
finish
