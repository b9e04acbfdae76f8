#!/bin/sh
# packaging/build-deb.sh - build the coexist-milter Debian binary package.
#
# Usage: packaging/build-deb.sh [-t TARBALL] [OUTDIR]
#
# dpkg-buildpackage wants debian/ at the top of the source tree, where this
# project keeps packaging/debian/. So this copies the source into a temporary
# directory, puts packaging/debian there as debian/, runs
# "dpkg-buildpackage -us -uc -b" and copies the results
# (coexist-milter_*.deb, .buildinfo, .changes) to OUTDIR (default: the
# current directory).
#
# The source is the "make dist" tarball given with -t, or else the files of
# this git checkout, tracked or not, minus what .gitignore excludes (so work
# not yet committed is packaged, and in-tree build output is not).
# DEB_BUILD_OPTIONS is passed through (e.g. "nocheck" skips make check).
# Needs debhelper, dpkg-dev, fakeroot and the Build-Depends of control.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
tarball=
while getopts t: opt; do
    case $opt in
        t) tarball=$(cd "$(dirname "$OPTARG")" && pwd)/$(basename "$OPTARG") ;;
        *) echo "usage: $0 [-t TARBALL] [OUTDIR]" >&2; exit 64 ;;
    esac
done
shift $((OPTIND - 1))
OUTDIR=${1:-.}
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)

TMP=$(mktemp -d /tmp/coexist-deb.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
SRC=$TMP/coexist-milter

if [ -n "$tarball" ]; then
    mkdir "$SRC"
    tar -xf "$tarball" -C "$SRC" --strip-components=1
elif git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    mkdir "$SRC"
    # Files deleted in the work tree but still in the index are skipped.
    (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard) |
        (cd "$ROOT" && xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) |
        tar -C "$ROOT" --null -T - -cf - | tar -C "$SRC" -xf -
else
    echo "build-deb: $ROOT is not a git checkout; give a make dist tarball with -t" >&2
    exit 66
fi
[ -d "$SRC/packaging/debian" ] || { echo "build-deb: no packaging/debian in the source" >&2; exit 66; }
rm -rf "$SRC/debian"
cp -a "$SRC/packaging/debian" "$SRC/debian"

(cd "$SRC" && dpkg-buildpackage -us -uc -b)

found=0
for f in "$TMP"/coexist-milter_*.deb "$TMP"/coexist-milter-dbgsym_*.deb \
         "$TMP"/coexist-milter_*.buildinfo "$TMP"/coexist-milter_*.changes; do
    [ -f "$f" ] || continue
    cp "$f" "$OUTDIR"/
    case $f in *.deb) echo "build-deb: $OUTDIR/$(basename "$f")"; found=1 ;; esac
done
[ "$found" = 1 ] || { echo "build-deb: no .deb was produced" >&2; exit 70; }
