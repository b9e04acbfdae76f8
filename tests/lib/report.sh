# tests/lib/report.sh - how a harness step says why it failed, logs, polls
# and stops what it started; the base every other tests/lib file uses.
#
# One set of helpers so that every tier's failure message has the same
# shape: a step that fails calls mta_why with the reason and returns 1, the
# first reason is kept in $MTA_T/why and the runner prints it.  Nothing here
# ever skips.  Process ids live in files, not shell variables, because test
# cases run in subshells and may stop and start what a runner started.
# (The mta_ prefix is historical: the MTA tier's cases call these by name.)
# shellcheck shell=bash

TESTLIB=${TESTLIB:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
# The system python starts in 0.2 s; a pyenv shim in front of it takes 1 s+.
if [ -z "${MTA_PYTHON:-}" ]; then
    if [ -x /usr/bin/python3 ]; then MTA_PYTHON=/usr/bin/python3; else MTA_PYTHON=python3; fi
fi

# mta_why - record why the current step failed (the first reason wins).
mta_why() {
    [ -s "$MTA_T/why" ] || printf '%s\n' "$*" >"$MTA_T/why"
    printf 'why: %s\n' "$*" >&2
    return 1
}

# mta_step - log a step of the current case, with the time, to its log.
mta_step() { printf '+ %s %s\n' "$(date +%T.%3N)" "$*" >&2; }

# mta_tail - the last N lines of FILE on one line, for failure messages.
mta_tail() {
    [ -f "$2" ] || { echo "(no $2)"; return 0; }
    tail -n "$1" "$2" | tr '\n' '|' | cut -c1-600
}

# mta_poll - run COMMAND... every 0.1 s until it succeeds or SECONDS pass.
mta_poll() {
    local secs=$1 deadline
    shift
    deadline=$(( $(date +%s%N) / 1000000 + secs * 1000 ))
    while :; do
        "$@" && return 0
        [ $(( $(date +%s%N) / 1000000 )) -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# mta_listening - true when something listens on 127.0.0.1:PORT.
mta_listening() {
    [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
}

# mta_kill_pidfile - stop the process in PIDFILE (TERM, then KILL after SECS).
mta_kill_pidfile() {
    local pidfile=$1 secs=${2:-10} pid
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    rm -f "$pidfile"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    if ! mta_poll "$secs" eval "! kill -0 $pid 2>/dev/null"; then
        kill -KILL "$pid" 2>/dev/null
        mta_poll 2 eval "! kill -0 $pid 2>/dev/null"
    fi
    { wait "$pid"; } 2>/dev/null
    return 0
}

# mta_new_id - a unique X-Test-Id value for one message of case NAME.
mta_new_id() {
    printf '%s-%s-%s%s\n' "$1" "$$" "$RANDOM" "$RANDOM"
}

# mta_case NAME FN - run case function FN in a subshell, its output in
# $MTA_T/cases/NAME.log; print "PASS NAME" or "FAIL NAME: the first reason"
# and return 0 only on a pass.  A case passes when it returns 0 and gave no
# reason: a reason recorded by a step whose failure the case ignored still
# fails it.
mta_case() {
    local name=$1 fn=$2 rc
    : >"$MTA_T/why"
    ( set +e; "$fn" ) >"$MTA_T/cases/$name.log" 2>&1
    rc=$?
    if [ $rc = 0 ] && ! [ -s "$MTA_T/why" ]; then
        echo "PASS $name"
        return 0
    fi
    [ -s "$MTA_T/why" ] || echo "exit status $rc" >"$MTA_T/why"
    echo "FAIL $name: $(head -1 "$MTA_T/why")"
    return 1
}
