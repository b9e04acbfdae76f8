#!/usr/bin/env bash
# tests/fuzz/run.sh - build and run the libFuzzer targets of the policy library.
#
# Usage: tests/fuzz/run.sh [SECONDS [TARGET...]]
#   SECONDS  how long each target runs (default 10)
#   TARGET   addr record config csvio decide trace (default: all)
#   BUILD_DIR  where to work (default /tmp): binaries, logs, corpus copies
#              and crash inputs go to $BUILD_DIR/fuzz.
#
# Each target (tests/fuzz/fuzz_<target>.c) is compiled straight from the
# policy sources it needs with clang -fsanitize=fuzzer,address,undefined,
# outside the autotools build. It first replays its seed corpus
# (tests/fuzz/corpus/<target>/, copied: the tree is never written), then
# mutates for SECONDS seconds with -max_total_time. A build failure, a
# sanitizer report, a failed property (abort), a leak, a timeout or an
# out-of-memory is a FAIL; the offending input is saved in $BUILD_DIR/fuzz
# and named in the FAIL line. To reproduce: $BUILD_DIR/fuzz/fuzz_<target> FILE.
#
# Output: "PASS fuzz <target>" or "FAIL fuzz <target>: why" per target, then
# "fuzz: N passed, N failed". Needs clang and libFuzzer (Debian: clang-14,
# libclang-rt-14-dev), libcsv-dev, libjansson-dev, libssl-dev.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SECS=${1:-10}
[ $# -gt 0 ] && shift
TARGETS=${*:-addr record config csvio decide trace}
OUT=${BUILD_DIR:-/tmp}/fuzz
CC=${FUZZ_CC:-clang}
CFLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
    -fno-omit-frame-pointer -Wall -Wextra -I$ROOT/policy -I$HERE"
PASSED=0
FAILED=0

pass() { echo "PASS fuzz $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL fuzz $1: $2"; FAILED=$((FAILED + 1)); }
finish() { echo "fuzz: $PASSED passed, $FAILED failed"; [ "$FAILED" = 0 ]; exit; }

case $SECS in
    ''|*[!0-9]*) echo "usage: $0 [SECONDS [TARGET...]]" >&2; fail usage "bad SECONDS '$SECS'"; finish ;;
esac

# sources TARGET - the policy files TARGET links, and its libraries.
sources() {
    local p=$ROOT/policy
    case $1 in
        addr) echo "$p/addr.c $ADDR_LIBS" ;;
        record) echo "$p/addr.c $p/timefmt.c $p/record.c $ADDR_LIBS" ;;
        config) echo "$p/config.c" ;;
        csvio) echo "$p/addr.c $p/timefmt.c $p/record.c $p/csvio.c $JANSSON_FLAGS -lcsv $ADDR_LIBS" ;;
        decide) echo "$p/addr.c $p/timefmt.c $p/record.c $p/decide.c $ADDR_LIBS" ;;
        trace) echo "$p/trace.c $CRYPTO_FLAGS" ;;
        *) return 1 ;;
    esac
}

# max_len TARGET - the largest input worth trying (records stop at 1024).
max_len() {
    case $1 in
        addr) echo 700 ;;
        record) echo 1100 ;;
        *) echo 4096 ;;
    esac
}

mkdir -p "$OUT" || { fail harness "cannot create $OUT"; finish; }
if ! command -v "$CC" >/dev/null 2>&1; then
    for t in $TARGETS; do fail "$t" "$CC not found (Debian: apt-get install clang-14 libclang-rt-14-dev)"; done
    finish
fi
JANSSON_FLAGS=$(pkg-config --cflags --libs jansson 2>/dev/null || echo "-ljansson")
# addr.c: IDNA (libidn2) and Unicode case folding (libunistring).
ADDR_LIBS="$(pkg-config --cflags --libs libidn2 2>/dev/null || echo "-lidn2") -lunistring"
CRYPTO_FLAGS=$(pkg-config --cflags --libs libcrypto 2>/dev/null || echo "-lcrypto")

# Build every target at once: compiling with three sanitizers is the slow part.
declare -A BUILD_PID
for t in $TARGETS; do
    if ! src=$(sources "$t"); then
        fail "$t" "unknown target (known: addr record config csvio decide trace)"
        continue
    fi
    # shellcheck disable=SC2086
    $CC $CFLAGS -o "$OUT/fuzz_$t" "$HERE/fuzz_$t.c" $src >"$OUT/build-$t.log" 2>&1 &
    BUILD_PID[$t]=$!
done

for t in $TARGETS; do
    [ -n "${BUILD_PID[$t]:-}" ] || continue
    if ! wait "${BUILD_PID[$t]}"; then
        if grep -q 'libclang_rt.fuzzer' "$OUT/build-$t.log"; then
            fail "$t" "libFuzzer runtime missing (Debian: libclang-rt-14-dev); see $OUT/build-$t.log"
        else
            fail "$t" "build failed: $(grep -m1 -E 'error' "$OUT/build-$t.log") (see $OUT/build-$t.log)"
        fi
        continue
    fi
    work=$OUT/corpus-$t
    log=$OUT/fuzz-$t.log
    rm -rf "$work" "$OUT/$t-"crash-* "$OUT/$t-"leak-* "$OUT/$t-"timeout-* "$OUT/$t-"oom-*
    mkdir -p "$work"
    [ -d "$HERE/corpus/$t" ] && cp "$HERE/corpus/$t"/* "$work"/ 2>/dev/null
    dict=()
    [ -f "$HERE/$t.dict" ] && dict=(-dict="$HERE/$t.dict")
    ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        "$OUT/fuzz_$t" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
        -max_len="$(max_len "$t")" -print_final_stats=1 \
        -artifact_prefix="$OUT/$t-" "${dict[@]}" "$work" >"$log" 2>&1
    rc=$?
    artifact=$(ls "$OUT/$t-"crash-* "$OUT/$t-"leak-* "$OUT/$t-"timeout-* "$OUT/$t-"oom-* 2>/dev/null | head -n 1)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ "$rc" = 0 ] && [ -z "$artifact" ] && ! grep -qE '^==[0-9]+==ERROR|runtime error:' "$log"; then
        pass "$t (${runs:-?} runs in ${SECS}s, corpus $(ls "$work" | wc -l) inputs)"
    else
        why=$(grep -m1 -E 'property failed|^==[0-9]+==ERROR|runtime error:|Timeout|out-of-memory' "$log" \
            | sed 's/^==[0-9]*==//' | cut -c1-200)
        fail "$t" "${why:-exit $rc}; input ${artifact:-not saved} (see $log)"
    fi
done
finish
