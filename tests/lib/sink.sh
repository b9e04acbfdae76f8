# tests/lib/sink.sh - smtp-sink (and utf8sink.py for SMTPUTF8 mail) as the
# final destination of every test MTA, and questions about what arrived.
#
# The sink records each RCPT with its ESMTP parameters, so a test asserts
# the envelope an MTA delivered after the milter changed it, which is what
# coexist-milter is about; sinkq.py reads the capture files.  Needs $MTA_T
# (the work directory) and tests/lib/report.sh.
# shellcheck shell=bash

TESTLIB=${TESTLIB:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
SINK_PORT=${SINK_PORT:-10026}   # smtp-sink, where every MTA delivers
UTF8_SINK_PORT=${UTF8_SINK_PORT:-10028} # utf8sink.py, for SMTPUTF8 mail

# sink_start - run smtp-sink on SINK_PORT, one capture file per transaction.
sink_start() {
    SINK_DIR=$MTA_T/sink
    mkdir -p "$SINK_DIR" && chown nobody: "$SINK_DIR" || return 1
    smtp-sink -u nobody -d "$SINK_DIR/%Y%m%d%H%M%S." "127.0.0.1:$SINK_PORT" 128 \
        >"$MTA_T/sink.log" 2>&1 &
    echo $! >"$MTA_T/sink.pid"
    mta_poll 30 mta_listening "$SINK_PORT" ||
        mta_why "smtp-sink does not listen on $SINK_PORT: $(mta_tail 3 "$MTA_T/sink.log")"
}

sink_stop() { mta_kill_pidfile "$MTA_T/sink.pid" 3; }

# utf8sink_start - the SMTPUTF8 sink on UTF8_SINK_PORT, writing into the
# same directory as smtp-sink (sinkq.py reads both).
utf8sink_start() {
    mkdir -p "$MTA_T/sink" || return 1
    "$MTA_PYTHON" "$TESTLIB/utf8sink.py" "$UTF8_SINK_PORT" "$MTA_T/sink" \
        "$MTA_T/utf8sink.pid" >"$MTA_T/utf8sink.log" 2>&1 &
    mta_poll 30 mta_listening "$UTF8_SINK_PORT" ||
        mta_why "utf8sink.py does not listen on $UTF8_SINK_PORT: $(mta_tail 3 "$MTA_T/utf8sink.log")"
}

utf8sink_stop() { mta_kill_pidfile "$MTA_T/utf8sink.pid" 3; }

# sink_files - capture files of message ID (a cheap grep first: this is polled).
sink_files() {
    grep -rqF -- "X-Test-Id: $1" "$MTA_T/sink" 2>/dev/null || return 0
    "$MTA_PYTHON" "$TESTLIB/sinkq.py" files "$MTA_T/sink" "$1"
}

# sink_rcpts - "ADDR<TAB>NOTIFY<TAB>ORCPT" per envelope recipient of message
# ID; read once, after delivery is complete (cached in $MTA_T/ID.rcpts).
sink_rcpts() {
    [ -f "$MTA_T/$1.rcpts" ] ||
        "$MTA_PYTHON" "$TESTLIB/sinkq.py" rcpts "$MTA_T/sink" "$1" >"$MTA_T/$1.rcpts"
    cat "$MTA_T/$1.rcpts"
}

# sink_header - values of header NAME in message ID as delivered.
sink_header() { "$MTA_PYTHON" "$TESTLIB/sinkq.py" header "$MTA_T/sink" "$1" "$2"; }
