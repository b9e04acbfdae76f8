#!/usr/bin/env bash
# tests/system/run.sh - the system tier: the deployment as the README
# documents it, under a real systemd. Builds the .deb, boots a Debian 12
# container (systemd-nspawn, private network) with systemd, rsyslog and
# Debian's own chrooted Postfix, and runs tests/system/inside.sh in it:
# install the package, run the README's "Deploying with Postfix" commands
# as they stand in README.md, mail through the milter into an smtp-sink,
# stop, start and restart the service; the README's shared_store steps with
# coexist-follow; purge, the previous release, upgrade, purge.
#
# Usage (as root, on Debian 12): tests/system/run.sh [--deb FILE] [--keep]
# --deb installs FILE instead of building one with packaging/build-deb.sh;
# --keep keeps the work directory (/tmp/coexist-system.*) and the
# container's root even when every case passes (logs are kept on failure).
# The root is cached in /var/cache/coexist-milter-test (tests/system/root.sh).
#
# Prints "PASS name" / "FAIL name: why" per case and "system: N passed,
# N failed" last. A part that cannot run (no nspawn, no boot) is a failure.
set -u

SYS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SYS_DIR/../.." && pwd)
MACHINE=coexist-system-$$
keep=0
deb=${SYSTEM_DEB:-}
while [ $# -gt 0 ]; do
    case $1 in
    --deb) deb=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done

passed=0
failed=0
start=$(date +%s)
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
finish() {
    echo "# system tier took $(( $(date +%s) - start ))s; work directory ${T:--}"
    echo "system: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}
abort() { fail "$1" "$2"; finish; }

[ "$(id -u)" = 0 ] || abort setup "must run as root (it boots a container)"
for tool in systemd-nspawn nsenter dpkg-deb tar flock; do
    command -v "$tool" >/dev/null 2>&1 || abort setup "missing $tool (tests/deps.sh installs it)"
done
T=$(mktemp -d /tmp/coexist-system.XXXXXX) || abort setup "mktemp failed"
R=$T/root
nspawn_pid=
cpid=

# inside COMMAND... - run COMMAND inside the container, as root, clean environment.
inside() {
    nsenter -t "$cpid" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        LANG=C.UTF-8 TERM=dumb "$@"
}

# cleanup - power the container off, remove what nspawn leaves behind.
cleanup() {
    local d
    if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
        [ -n "$cpid" ] && inside systemctl poweroff >/dev/null 2>&1
        for _ in $(seq 150); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
        kill -TERM "$nspawn_pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$nspawn_pid" 2>/dev/null
        wait "$nspawn_pid" 2>/dev/null
    fi
    rm -rf "/run/systemd/nspawn/propagate/$MACHINE"
    # Empty cgroups of the container (rmdir fails on one still in use).
    for d in /sys/fs/cgroup/unified/payload /sys/fs/cgroup/systemd/payload /sys/fs/cgroup/payload; do
        [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    if [ "$keep" = 0 ]; then
        rm -rf "$R"
        [ "$failed" -eq 0 ] && rm -rf "$T"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One container at a time: they share the "payload" cgroup nspawn makes.
exec 9>/run/lock/coexist-milter-systemtest.lock || abort setup "cannot open the lock file"
flock -w 600 9 || abort setup "another tests/system/run.sh holds the lock"

# ---- the package and the root ------------------------------------------------
if [ -z "$deb" ]; then
    mkdir -p "$T/deb"
    if DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS-nocheck} \
            sh "$ROOT/packaging/build-deb.sh" "$T/deb" >"$T/build.log" 2>&1; then
        deb=$(ls "$T/deb"/coexist-milter_*.deb 2>/dev/null | head -1)
    fi
    [ -n "$deb" ] || abort build-deb "packaging/build-deb.sh failed: $(tail -3 "$T/build.log" | tr '\n' '|')"
    pass build-deb
fi
[ -f "$deb" ] || abort build-deb "no such file: $deb"

prev=$(bash "$SYS_DIR/previous.sh" "$T" 2>"$T/previous.log") ||
    abort previous-deb "tests/system/previous.sh failed: $(tail -3 "$T/previous.log" | tr '\n' '|')"
tarball=$(bash "$SYS_DIR/root.sh" "$deb" "$prev" 2>"$T/root.log") && [ -s "$tarball" ] ||
    abort root "tests/system/root.sh failed: $(tail -3 "$T/root.log" | tr '\n' '|')"
mkdir -p "$R" && tar -C "$R" -xpf "$tarball" && mkdir -p "$R/dev" ||
    abort root "cannot unpack $tarball"
pass root
echo "# root unpacked at $(( $(date +%s) - start ))s"

# The README's steps, cut out of README.md between its markers: the test
# runs what the README shows, so the two cannot drift apart.
mkdir -p "$R/root/system"
# readme_steps NAME - the ```sh blocks of README.md between the markers
# "<!-- NAME: begin" and "<!-- NAME: end".
readme_steps() {
    awk -v b="<!-- $1: begin" -v e="<!-- $1: end" '
        index($0, b) == 1 { on = 1; next } index($0, e) == 1 { on = 0 }
        on && /^```sh$/ { code = 1; next } on && /^```$/ { code = 0; next } code' "$ROOT/README.md"
}
readme_steps deploy-postfix >"$R/root/system/deploy.sh"
grep -q 'systemctl restart coexist-milter' "$R/root/system/deploy.sh" &&
    grep -q 'smtpd_milters' "$R/root/system/deploy.sh" ||
    abort readme-steps "no deploy-postfix steps between the markers in README.md"
readme_steps deploy-shared >"$R/root/system/deploy-shared.sh"
grep -q 'coexist-follow' "$R/root/system/deploy-shared.sh" ||
    abort readme-steps "no deploy-shared steps between the markers in README.md"
cp "$deb" "$R/root/system/coexist-milter.deb"
cp "$prev" "$R/root/system/previous.deb"
cp "$SYS_DIR"/lib.sh "$SYS_DIR"/inside.sh "$SYS_DIR"/cases-*.sh "$SYS_DIR"/../lib/report.sh \
    "$R/root/system/"

# ---- boot --------------------------------------------------------------------
systemd-nspawn -D "$R" -b --register=no --keep-unit --private-network -M "$MACHINE" \
    --console=passive </dev/null >"$T/nspawn.log" 2>&1 &
nspawn_pid=$!
for _ in $(seq 100); do
    # nspawn forks a helper first; the container's PID 1 is its systemd.
    cpid=$(ps -o pid=,comm= --ppid "$nspawn_pid" 2>/dev/null | awk '$2 == "systemd" { print $1; exit }')
    [ -n "$cpid" ] && break
    kill -0 "$nspawn_pid" 2>/dev/null || break
    sleep 0.1
done
[ -n "$cpid" ] || abort boot "systemd-nspawn did not start: $(tail -3 "$T/nspawn.log" | tr '\n' '|')"
# systemctl fails until the container's systemd has its private bus.
for _ in $(seq 300); do
    state=$(timeout 60 nsenter -t "$cpid" -a systemctl is-system-running --wait 2>&1)
    case $state in *"connect to bus"*) sleep 0.1 ;; *) break ;; esac
done
[ "$state" = running ] ||
    abort boot "the container's systemd is '$state': $(inside systemctl --failed --no-legend --plain 2>&1 | tr '\n' '|')"
echo "# booted $MACHINE in $(( $(date +%s) - start ))s since start; systemd pid $cpid"

# ---- the cases, inside -----------------------------------------------------------
timeout 600 nsenter -t "$cpid" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    LANG=C.UTF-8 TERM=dumb bash /root/system/inside.sh /root/system \
    >"$T/inside.out" 2>"$T/inside.log"
rc=$?
cat "$T/inside.out"
passed=$((passed + $(grep -c '^PASS' "$T/inside.out")))
failed=$((failed + $(grep -c '^FAIL' "$T/inside.out")))
[ $rc = 0 ] || fail inside "inside.sh exited $rc (see $T/inside.log)"
grep -q '^PASS install' "$T/inside.out" || grep -q '^FAIL install' "$T/inside.out" ||
    fail inside "inside.sh ran no case (see $T/inside.log)"

echo "# cases done at $(( $(date +%s) - start ))s"
# What the container logged, for a failure's post-mortem.
cp "$R/var/log/mail.log" "$T/mail.log" 2>/dev/null
inside journalctl --no-pager -b >"$T/journal.log" 2>&1
finish
