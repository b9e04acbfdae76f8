# tests/system/lib.sh - helpers for the cases that run inside the system
# tier's container (sourced by inside.sh): reporting, polling, submitting
# mail over SMTP and through sendmail(1), and reading what smtp-sink got.
#
# Runs as root inside a booted Debian 12 with Debian's own Postfix. Every
# helper returns 0 on success; on failure it records why (sys_why) and
# returns 1, so a case ends with "|| return 1" and the runner prints the
# first reason.
# shellcheck shell=bash

SINK_DIR=/var/tmp/coexist-sink
# shellcheck disable=SC2034  # used by inside.sh
SINK_PORT=2526
SENDER=sender@client.example
W=/root/system/work             # per-message files: .eml, .smtp, .local
SYS_TIMEOUT=${SYS_TIMEOUT:-60}  # seconds a message may take to arrive (a loaded CI host)
# Type=simple: "systemctl start" returns before the socket exists; the
# daemon may take seconds to listen on a loaded host.
SOCK_TIMEOUT=${SOCK_TIMEOUT:-60}

# sys_why, sys_step - a failure reason and a step, recorded as every tier
# records them (tests/lib/report.sh, copied beside this file into the
# container by run.sh): the first reason wins, in $W/why.
MTA_T=$W
# shellcheck source=tests/lib/report.sh
. "$(dirname "${BASH_SOURCE[0]}")/report.sh"
sys_why() { mta_why "$@"; }
sys_step() { mta_step "$@"; }

# poll SECS COMMAND... - run COMMAND every 0.2 s until it succeeds or SECS pass.
poll() {
    local secs=$1 end
    shift
    end=$(( $(date +%s) + secs ))
    while :; do
        "$@" && return 0
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.2
    done
}

# new_id NAME - a unique X-Test-Id for one message of case NAME.
new_id() { printf '%s-%s%s\n' "$1" "$RANDOM" "$RANDOM"; }

# message ID - a small message carrying X-Test-Id: ID.
message() {
    printf 'From: <%s>\nTo: <undisclosed@corp.example>\nSubject: system tier %s\nX-Test-Id: %s\n\nbody of %s\n' \
        "$SENDER" "$1" "$1" "$1"
}

# send_smtp ID RCPT... - submit message ID to Postfix's smtpd on port 25.
send_smtp() {
    local id=$1 to
    shift
    to=$(IFS=,; echo "$*")
    message "$id" >"$W/$id.eml"
    sys_step "swaks --to $to ($id)"
    swaks --server 127.0.0.1 --port 25 --helo client.example --from "$SENDER" \
        --to "$to" --data "@$W/$id.eml" >"$W/$id.smtp" 2>&1 ||
        sys_why "SMTP refused: $(grep -E '^ *<~?\**~? *[45][0-9][0-9]' "$W/$id.smtp" | head -2 | tr '\n' '|')"
}

# smtp_refused ID CODE RCPT... - the SMTP submission of ID is refused with
# a reply starting with CODE (e.g. 451).
smtp_refused() {
    local id=$1 code=$2 to
    shift 2
    to=$(IFS=,; echo "$*")
    message "$id" >"$W/$id.eml"
    sys_step "swaks --to $to ($id), expecting $code"
    if swaks --server 127.0.0.1 --port 25 --helo client.example --from "$SENDER" \
            --to "$to" --data "@$W/$id.eml" >"$W/$id.smtp" 2>&1; then
        sys_why "SMTP accepted $id; want a $code reply"
        return 1
    fi
    grep -qE "^ *<\*\* +$code " "$W/$id.smtp" ||
        sys_why "SMTP refused $id without $code: $(grep -E '^ *<\*\*' "$W/$id.smtp" | head -2 | tr '\n' '|')"
}

# send_local ID RCPT... - submit message ID with Postfix's sendmail(1).
send_local() {
    local id=$1
    shift
    sys_step "sendmail(1) $* ($id)"
    message "$id" | /usr/sbin/sendmail -f "$SENDER" -- "$@" >"$W/$id.local" 2>&1 ||
        sys_why "sendmail(1) failed: $(head -2 "$W/$id.local" | tr '\n' '|')"
}

# sink_files ID - capture files of smtp-sink that hold message ID.
sink_files() { grep -rlF -- "X-Test-Id: $1" "$SINK_DIR" 2>/dev/null; }

# sink_rcpts ID - the envelope recipients smtp-sink got for ID, sorted, one
# a line (only the header part of each capture file: a bounce quotes the
# original's header in its body).
sink_rcpts() {
    local f
    for f in $(sink_files "$1"); do
        awk '/^$/ { exit } /^X-Rcpt-Args: / { sub(/^X-Rcpt-Args: </, ""); sub(/>.*/, ""); print }' "$f"
    done | sort
}

# arrived ID - message ID reached the sink.
arrived() { [ -n "$(sink_files "$1")" ]; }

# expect_rcpts ID ADDR... - ID arrives, with exactly the recipients ADDR...
# After the first copy arrives, a second delivery (a copy queued apart)
# gets until the queue is empty.
expect_rcpts() {
    local id=$1 got want
    shift
    poll "$SYS_TIMEOUT" arrived "$id" || { sys_why "$id never arrived at the sink"; return 1; }
    poll 10 queue_empty || true
    got=$(sink_rcpts "$id" | tr '\n' ' ')
    want=$(printf '%s\n' "$@" | sort | tr '\n' ' ')
    [ "$got" = "$want" ] || sys_why "$id recipients: got [${got% }], want [${want% }]"
}

# queue_empty - Postfix's queue (maildrop included) holds nothing.
queue_empty() { [ -z "$(postqueue -j 2>/dev/null)" ] && [ -z "$(find /var/spool/postfix/maildrop -type f 2>/dev/null)" ]; }

# sink_header ID NAME - the values of header NAME in ID as delivered.
sink_header() {
    local f
    for f in $(sink_files "$1"); do
        awk -v h="$2:" '/^$/ { exit } index($0, h) == 1 { sub(/^[^:]*: */, ""); print }' "$f"
    done
}

# in_maildrop ID - message ID waits in Postfix's maildrop (not yet picked up).
in_maildrop() { grep -rqF -- "X-Test-Id: $1" /var/spool/postfix/maildrop 2>/dev/null; }
