#!/usr/bin/env bash
# tests/system/root.sh - the Debian 12 root the system tier boots with
# systemd-nspawn: systemd, dbus, rsyslog, Debian's own postfix ("Local
# only"), the libraries coexist-milter's .deb depends on, and the tools
# the test runs inside (swaks). Built with mmdebstrap from the apt sources
# this machine already uses, and cached as a tarball keyed on everything
# that goes into it, so a cached run only unpacks it.
#
# Usage: tests/system/root.sh DEB... > TARBALL-PATH
# Prints the path of the (possibly cached) tarball on stdout; progress
# and errors go to stderr. The Depends of each DEB are added to the
# package list, so "dpkg -i" works inside without any network.
set -euo pipefail

CACHE=${SYSTEM_CACHE:-/var/cache/coexist-milter-test}
SUITE=bookworm
# What the tier needs inside, besides the .deb's own Depends.
BASE="systemd systemd-sysv dbus rsyslog postfix libmilter1.0.1 libtdb1
  swaks procps iproute2 netbase python3-minimal
  postgresql-15"

# deb_depends DEB - the package names of DEB's Depends (the first of each
# alternative, without versions).
deb_depends() {
    dpkg-deb -f "$1" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/[[:space:]]//g; s/:any$//' | grep .
}

# host_sources - the apt sources this machine uses, as the files' text
# (one-line and deb822 files alike; disabled files are not read).
host_sources() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && printf '%s\n' "$f"
    done
}

pkgs=$( { printf '%s\n' $BASE; for d in "$@"; do deb_depends "$d"; done; } | sort -u | tr '\n' ' ')
mapfile -t sources < <(host_sources)
[ ${#sources[@]} -gt 0 ] || { echo "root.sh: no apt sources in /etc/apt" >&2; exit 1; }
# The key: the package list, the suite, the sources and this script's code
# (not its comments).
key=$( { echo "$SUITE $pkgs"; cat "${sources[@]}"; grep -v "^ *#" "$0"; } | sha256sum | cut -c1-16)
tarball=$CACHE/root-$SUITE-$key.tar
if [ -s "$tarball" ]; then
    echo "# root: cached $tarball" >&2
    echo "$tarball"
    exit 0
fi

command -v mmdebstrap >/dev/null || { echo "root.sh: mmdebstrap missing (tests/deps.sh installs it)" >&2; exit 1; }
mkdir -p "$CACHE"
echo "# root: building $tarball with: $pkgs" >&2
# The debconf answer must be in place before postfix is configured; the
# mailname and the host name make Postfix's myhostname a qualified one.
preseed='printf "%s\n" "postfix postfix/main_mailer_type select Local only" "postfix postfix/mailname string sys.test" | chroot "$1" debconf-set-selections'
tmp=$tarball.tmp.$$
trap 'rm -f "$tmp"' EXIT
mmdebstrap --variant=apt --format=tar --skip=output/dev \
    --include="$(echo $pkgs | tr ' ' ',')" \
    --essential-hook="$preseed" \
    --customize-hook='echo sys.test >"$1/etc/hostname"; echo sys.test >"$1/etc/mailname"' \
    --customize-hook='printf "127.0.0.1 localhost\n127.0.1.1 sys.test sys\n" >"$1/etc/hosts"' \
    --customize-hook='rm -f "$1"/etc/apt/sources.list "$1"/etc/apt/sources.list.d/*' \
    "$SUITE" "$tmp" "${sources[@]}" >&2
mv "$tmp" "$tarball"
# Older roots of this script are of no use any more.
find "$CACHE" -maxdepth 1 -name "root-$SUITE-*.tar" ! -name "$(basename "$tarball")" -delete
echo "$tarball"
