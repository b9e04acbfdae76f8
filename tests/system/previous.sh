#!/usr/bin/env bash
# tests/system/previous.sh - the "previous release" .deb that the system
# tier upgrades from, built from git and cached.
#
# Usage: tests/system/previous.sh OUTDIR   (prints the .deb's path)
# The previous release is SYSTEM_PREV_REF if set, else the newest tag, else
# commit 1735fe2: the last one before the 0.2.0 entries of NEWS (0.1.0 was
# never tagged). Its source is "git archive" of that commit, packaged with
# packaging/build-deb.sh -t, and its version gets "~prev" appended: every
# commit so far says 0.1.0-1, and dpkg must see the current .deb as newer.
# Cached in /var/cache/coexist-milter-test, keyed on the commit id.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${SYSTEM_CACHE:-/var/cache/coexist-milter-test}
OUT=$1
ref=${SYSTEM_PREV_REF:-$(git -C "$ROOT" describe --tags --abbrev=0 2>/dev/null || echo 1735fe2)}
# A shallow clone (CI's, perhaps) lacks the old commit: ask its origin for
# the whole history once; without it the upgrade case cannot run (a FAIL).
if ! git -C "$ROOT" rev-parse --quiet --verify "$ref^{commit}" >/dev/null &&
        [ "$(git -C "$ROOT" rev-parse --is-shallow-repository 2>/dev/null)" = true ]; then
    git -C "$ROOT" fetch --quiet --unshallow 2>/dev/null ||
        echo "previous.sh: git fetch --unshallow failed" >&2
fi
commit=$(git -C "$ROOT" rev-parse --verify "$ref^{commit}") ||
    { echo "previous.sh: no commit $ref here (a shallow clone whose origin is out of reach?)" >&2; exit 1; }
cached=$CACHE/prev-$commit.deb
if [ ! -s "$cached" ]; then
    mkdir -p "$CACHE" "$OUT/prev"
    git -C "$ROOT" archive --format=tar.gz --prefix=coexist-milter/ "$commit" >"$OUT/prev/src.tar.gz"
    DEB_BUILD_OPTIONS=nocheck sh "$ROOT/packaging/build-deb.sh" -t "$OUT/prev/src.tar.gz" \
        "$OUT/prev" >"$OUT/prev/build.log" 2>&1 ||
        { tail -5 "$OUT/prev/build.log" >&2; exit 1; }
    deb=$(find "$OUT/prev" -name 'coexist-milter_*.deb' | head -1)
    dpkg-deb -R "$deb" "$OUT/prev/root"
    sed -i 's/^Version: .*/&~prev/' "$OUT/prev/root/DEBIAN/control"
    dpkg-deb --root-owner-group -b "$OUT/prev/root" "$cached.tmp" >/dev/null
    mv "$cached.tmp" "$cached"
fi
echo "$cached"
