#!/bin/sh
# tests/deps.sh - install what building and testing coexist-milter needs on
# Debian 12, non-interactively. Idempotent: when every package is already
# installed it touches nothing (not even the apt lists).
set -eu

PACKAGES="build-essential autoconf automake libtool pkg-config
  libmilter-dev libtdb-dev tdb-tools libcmocka-dev libcsv-dev libjansson-dev libssl-dev
  libidn2-dev libunistring-dev
  libpq-dev postgresql-15 postgresql-client-15
  postfix swaks miltertest libwrap0 python3 iproute2 util-linux valgrind
  prometheus rsyslog
  groff-base man-db m4
  debhelper dpkg-dev lintian rpm systemd fakeroot
  clang libclang-rt-14-dev"
# Without recommends: libnss-mymachines would edit the host's nsswitch.conf.
# The system tier boots a container with these.
PACKAGES_NORECOMMENDS="systemd-container mmdebstrap"

# absent PACKAGE... - those of PACKAGE... that are not installed.
absent() {
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
            || printf ' %s' "$p"
    done
}
# shellcheck disable=SC2086
missing=$(absent $PACKAGES)
# shellcheck disable=SC2086
missing_norec=$(absent $PACKAGES_NORECOMMENDS)
[ -z "$missing$missing_norec" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing packages:$missing$missing_norec (run as root to install them)" >&2
    exit 1
fi
# "No configuration" leaves /etc/postfix/main.cf absent: the system Postfix
# never starts; the tests run private instances of their own.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
apt_get() { apt-get -o DPkg::Lock::Timeout=300 -q "$@"; }
apt_get update >/dev/null
# shellcheck disable=SC2086
[ -z "$missing" ] || apt_get install -y $missing
# shellcheck disable=SC2086
[ -z "$missing_norec" ] || apt_get install -y --no-install-recommends $missing_norec
