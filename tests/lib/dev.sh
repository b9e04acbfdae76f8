# tests/lib/dev.sh - a private /dev whose /dev/log a test owns, and the
# collector that captures what is sent there.
#
# Why a private /dev: the daemon logs with syslog(3) to /dev/log; a test
# that wants those lines (or wants no host syslog daemon in the path) must
# own that socket without touching the host's.  /dev is a tmpfs of its own
# inside the private mount namespace (tests/lib/ns.sh), with the device nodes
# a process needs bind-mounted from the real one (notes/mta-harness.md,
# "Capturing syslog in tests").
# shellcheck shell=bash

TESTLIB=${TESTLIB:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}

# dev_private OLDDIR - mount the private /dev; the real one stays reachable
# at OLDDIR.  Refuses (DEV_WHY says why) unless this is a private mount
# namespace, i.e. not NS_OUTER_MNTNS, the one ns_run/ns_exec started from.
dev_private() {
    local old=$1 n d
    DEV_WHY=
    if [ -z "${NS_OUTER_MNTNS:-}" ] || [ "$(readlink /proc/self/ns/mnt)" = "$NS_OUTER_MNTNS" ]; then
        DEV_WHY="not in a private mount namespace; /dev left alone"
        return 1
    fi
    mkdir -p "$old" && mount --rbind /dev "$old" &&
        mount -t tmpfs -o mode=0755,size=4m coexist-dev /dev ||
        { DEV_WHY="cannot mount a private /dev"; return 1; }
    for n in null zero random urandom full tty; do
        [ -e "$old/$n" ] || continue
        : >"/dev/$n" && mount --bind "$old/$n" "/dev/$n" || { DEV_WHY="cannot bind /dev/$n"; return 1; }
    done
    for d in pts shm; do
        mkdir "/dev/$d" && mount --bind "$old/$d" "/dev/$d" || { DEV_WHY="cannot bind /dev/$d"; return 1; }
    done
    chmod 1777 /dev/shm
    ln -s /proc/self/fd /dev/fd
    ln -s /proc/self/fd/0 /dev/stdin
    ln -s /proc/self/fd/1 /dev/stdout
    ln -s /proc/self/fd/2 /dev/stderr
    [ -e /dev/pts/ptmx ] && ln -s pts/ptmx /dev/ptmx
    return 0
}

# dev_wait_ready FILE SECS - wait until a collector created FILE.ready.
dev_wait_ready() {
    local i=0
    while [ ! -e "$1.ready" ]; do
        i=$((i + 1))
        [ "$i" -gt $(($2 * 10)) ] && return 1
        sleep 0.1
    done
    return 0
}

# dev_log_collect FILE [SECS] - own /dev/log with syslog_collector.py, which appends
# each datagram to FILE as one line; its pid in DEV_LOG_PID, its stderr in
# FILE.err.  Fails (DEV_WHY) if it is not listening within SECS (5) seconds.
dev_log_collect() {
    DEV_WHY=
    "$MTA_PYTHON" "$TESTLIB/syslog_collector.py" /dev/log "$1" 2>"$1.err" &
    DEV_LOG_PID=$!
    dev_wait_ready "$1" "${2:-5}" ||
        { DEV_WHY="did not start: $(cat "$1.err")"; return 1; }
}

# dev_log_selfcheck FILE - logger(1) -> /dev/log -> the collector's FILE
# carries the line, as mail.info (<22>): the harness itself works.
dev_log_selfcheck() {
    local token i=0
    DEV_WHY=
    token="selftest-$$-$(date +%s)"
    logger -p mail.info -t coexist-mt-selftest "$token" 2>"$1.logger.err"
    while ! grep -q "$token" "$1" 2>/dev/null && [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done
    grep -q "<22>.*coexist-mt-selftest.*$token" "$1" ||
        { DEV_WHY="logger line not captured: $(cat "$1.logger.err") $(tail -n 2 "$1")"; return 1; }
}
