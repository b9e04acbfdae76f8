# tests/lib/ns.sh - entering private namespaces, and finding the binaries
# under test from outside them.
#
# Every tier that starts an MTA or owns /dev/log runs in its own network
# namespace (only loopback, so fixed ports cannot collide with another tier
# or the host) and mount namespace (so a private /dev and tmpfs mounts die
# with it).  The namespace has no network: fetch what needs one (sm_fetch)
# before entering.  ns_run and ns_exec export NS_OUTER_MNTNS, the caller's
# mount namespace, which tests/lib/dev.sh checks before it touches /dev.
# shellcheck shell=bash

TESTLIB=${TESTLIB:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}

# ns_cmd [--pid] - the unshare command line that runs bash SCRIPT ARGS...
# with loopback up, in NS_CMD.  --pid adds a pid namespace whose processes
# all die with its first one (nothing a run started can outlive it).
ns_cmd() {
    NS_CMD=(unshare --net --mount --uts --fork)
    [ "${1:-}" = --pid ] && NS_CMD+=(--pid --kill-child --mount-proc)
    NS_CMD+=(bash -c 'ip link set lo up && exec bash "$0" "$@"')
    NS_OUTER_MNTNS=$(readlink /proc/self/ns/mnt)
    export NS_OUTER_MNTNS
}

# ns_run [--pid] SCRIPT ARGS... - run SCRIPT in the namespaces and return
# its status (for callers that clean up outside afterwards).
ns_run() {
    local pid=
    [ "${1:-}" = --pid ] && { pid=--pid; shift; }
    ns_cmd $pid
    "${NS_CMD[@]}" "$@"
}

# ns_exec SCRIPT ARGS... - replace this shell with SCRIPT in the namespaces;
# returns only if unshare cannot be executed.
ns_exec() {
    ns_cmd
    exec "${NS_CMD[@]}" "$@"
}

# mta_find_bin NAME - NAME from the current directory (a build directory) or
# the source tree, as an absolute path ("NAME-not-found" if neither has it).
mta_find_bin() {
    local f
    for f in "./$1" "$TESTLIB/../../$1"; do
        [ -x "$f" ] && { (cd "$(dirname "$f")" && echo "$(pwd)/$1"); return 0; }
    done
    echo "$1-not-found"
}

# mta_reexec TIER INNS_VAR SCRIPT - run from outside the namespaces: as root,
# find the binaries (COEXISTCTL, COEXIST_MILTER), fetch the Sendmail debs
# (the namespace has no network) when tests/lib/sendmail.sh is sourced, and
# exec SCRIPT again in the namespaces with INNS_VAR=1. The caller exports
# whatever else SCRIPT needs. Prints TIER's failure summary and exits 1 when
# it cannot.
mta_reexec() {
    local tier=$1 inns=$2 script=$3
    if [ "$(id -u)" != 0 ]; then
        echo "FAIL setup: the $tier tier must run as root (a private Postfix)"
        echo "$tier: 0 passed, 1 failed"
        exit 1
    fi
    COEXISTCTL=${COEXISTCTL:-$(mta_find_bin coexistctl)}
    COEXIST_MILTER=${COEXIST_MILTER:-$(mta_find_bin coexist-milter)}
    case $COEXISTCTL in /*) ;; *) COEXISTCTL=$(pwd)/$COEXISTCTL ;; esac
    case $COEXIST_MILTER in /*) ;; *) COEXIST_MILTER=$(pwd)/$COEXIST_MILTER ;; esac
    if declare -F sm_fetch >/dev/null; then sm_fetch >/dev/null 2>&1 || true; fi
    export COEXISTCTL COEXIST_MILTER "$inns=1"
    ns_exec "$script"
    echo "FAIL setup: cannot enter private namespaces (unshare)"
    echo "$tier: 0 passed, 1 failed"
    exit 1
}
