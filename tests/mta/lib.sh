# tests/mta/lib.sh - a private Postfix, an unpacked Sendmail, smtp-sink and
# coexist-milter on loopback, for the MTA tier (sourced by tests/mta/run.sh).
#
# Everything lives under one work directory, $MTA_T, and is meant to run
# inside a private network and mount namespace (run.sh arranges that), so the
# fixed ports below cannot collide with anything.  Process ids are kept in
# files, not shell variables, because test cases run in subshells and may
# stop and start the milter.
#
# Conventions: functions return 0 on success; on failure they call mta_why
# with the reason and return 1, so a case can end with "|| return 1" and the
# runner prints the first reason.  Nothing here ever skips: a component that
# cannot start is a failure.

PF_PORT=${PF_PORT:-10025}       # Postfix smtpd
SINK_PORT=${SINK_PORT:-10026}   # smtp-sink, where both MTAs deliver
SM_PORT=${SM_PORT:-10027}       # Sendmail daemon
UTF8_SINK_PORT=${UTF8_SINK_PORT:-10028} # utf8sink.py, for SMTPUTF8 mail
MTA_TIMEOUT=${MTA_TIMEOUT:-20}  # seconds a message may take to arrive
MTA_SENDER=sender@client.example
MTA_CACHE=${MTA_CACHE:-/var/cache/coexist-milter-tests}
MTA_LIBDIR=${MTA_LIBDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
# The system python starts in 0.2 s; a pyenv shim in front of it takes 1 s+.
if [ -z "${MTA_PYTHON:-}" ]; then
    if [ -x /usr/bin/python3 ]; then MTA_PYTHON=/usr/bin/python3; else MTA_PYTHON=python3; fi
fi

# ---- reporting --------------------------------------------------------------

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

# ---- entering the namespaces (the MTA tier and the doctor tier) ----------------

# mta_find_bin NAME - NAME from the current directory (a build directory) or
# the source tree, as an absolute path ("NAME-not-found" if neither has it).
mta_find_bin() {
    local f
    for f in "./$1" "$MTA_LIBDIR/../../$1"; do
        [ -x "$f" ] && { (cd "$(dirname "$f")" && echo "$(pwd)/$1"); return 0; }
    done
    echo "$1-not-found"
}

# mta_reexec TIER INNS_VAR SCRIPT - run from outside the namespaces: as root,
# find the binaries (COEXISTCTL, COEXIST_MILTER), fetch the Sendmail debs
# (the namespace has no network), and exec SCRIPT again in private network,
# mount and UTS namespaces (loopback only) with INNS_VAR=1. The caller
# exports whatever else SCRIPT needs. Prints TIER's failure summary and
# exits 1 when it cannot.
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
    sm_fetch >/dev/null 2>&1 || true
    export COEXISTCTL COEXIST_MILTER "$inns=1"
    exec unshare --net --mount --uts --fork \
        bash -c 'ip link set lo up && exec bash "$0"' "$script"
    echo "FAIL setup: cannot enter private namespaces (unshare)"
    echo "$tier: 0 passed, 1 failed"
    exit 1
}

# ---- smtp-sink ----------------------------------------------------------------

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
    "$MTA_PYTHON" "$MTA_LIBDIR/utf8sink.py" "$UTF8_SINK_PORT" "$MTA_T/sink" \
        "$MTA_T/utf8sink.pid" >"$MTA_T/utf8sink.log" 2>&1 &
    mta_poll 30 mta_listening "$UTF8_SINK_PORT" ||
        mta_why "utf8sink.py does not listen on $UTF8_SINK_PORT: $(mta_tail 3 "$MTA_T/utf8sink.log")"
}

utf8sink_stop() { mta_kill_pidfile "$MTA_T/utf8sink.pid" 3; }

# sink_files - capture files of message ID (a cheap grep first: this is polled).
sink_files() {
    grep -rqF -- "X-Test-Id: $1" "$MTA_T/sink" 2>/dev/null || return 0
    "$MTA_PYTHON" "$MTA_LIBDIR/sinkq.py" files "$MTA_T/sink" "$1"
}

# sink_rcpts - "ADDR<TAB>NOTIFY<TAB>ORCPT" per envelope recipient of message
# ID; read once, after delivery is complete (cached in $MTA_T/ID.rcpts).
sink_rcpts() {
    [ -f "$MTA_T/$1.rcpts" ] ||
        "$MTA_PYTHON" "$MTA_LIBDIR/sinkq.py" rcpts "$MTA_T/sink" "$1" >"$MTA_T/$1.rcpts"
    cat "$MTA_T/$1.rcpts"
}

# sink_header - values of header NAME in message ID as delivered.
sink_header() { "$MTA_PYTHON" "$MTA_LIBDIR/sinkq.py" header "$MTA_T/sink" "$1" "$2"; }

# ---- assertions on what arrived ---------------------------------------------

# expect_rcpts - message ID arrived with exactly the recipients ADDR...
# (a multiset: a recipient delivered twice is a failure).
expect_rcpts() {
    local id=$1 got want
    shift
    got=$(sink_rcpts "$id" | cut -f1 | sort | tr '\n' ' ')
    want=$(printf '%s\n' "$@" | sort | tr '\n' ' ')
    [ "$got" = "$want" ] || mta_why "recipients: got [${got% }], want [${want% }]"
}

# rcpt_field - field N (2 NOTIFY, 3 ORCPT) of recipient ADDR in message ID;
# fails unless ADDR arrived exactly once.
rcpt_field() {
    local id=$1 addr=$2 n=$3 rows
    rows=$(sink_rcpts "$id" | awk -F'\t' -v a="$addr" '$1 == a')
    [ "$(printf '%s' "$rows" | grep -c .)" = 1 ] ||
        { mta_why "recipient $addr arrived $(printf '%s' "$rows" | grep -c .) times"; return 1; }
    printf '%s\n' "$rows" | cut -f"$n"
}

# expect_notify - recipient ADDR of message ID carried NOTIFY=VALUE
# ("-" for no NOTIFY parameter).
expect_notify() {
    local got
    got=$(rcpt_field "$1" "$2" 2) || return 1
    [ "$got" = "$3" ] || mta_why "NOTIFY of $2: got '$got', want '$3'"
}

# expect_orcpt - recipient ADDR of message ID carried ORCPT=VALUE (decoded);
# the address part is compared case-insensitively, as the domain and the
# MTA's quoting may change case-insensitive parts.
expect_orcpt() {
    local got
    got=$(rcpt_field "$1" "$2" 3) || return 1
    [ "${got,,}" = "${3,,}" ] || mta_why "ORCPT of $2: got '$got', want '$3'"
}

# expect_orcpt_not - recipient ADDR of message ID does not carry ORCPT=VALUE.
expect_orcpt_not() {
    local got
    got=$(rcpt_field "$1" "$2" 3) || return 1
    [ "${got,,}" != "${3,,}" ] || mta_why "ORCPT of $2 is '$got'; it must not be"
}

# expect_header - message ID carries header NAME (with VALUE, if given).
expect_header() {
    local vals
    vals=$(sink_header "$1" "$2")
    [ -n "$vals" ] || { mta_why "header $2 missing"; return 1; }
    [ $# -lt 3 ] || printf '%s\n' "$vals" | grep -qxF -- "$3" ||
        mta_why "header $2: got '$(printf '%s' "$vals" | tr '\n' ' ')', want '$3'"
}

# expect_no_header - message ID does not carry header NAME.
expect_no_header() {
    local vals
    vals=$(sink_header "$1" "$2")
    [ -z "$vals" ] || mta_why "header $2 present ('$(printf '%s' "$vals" | tr '\n' ' ')') on an untouched message"
}

# expect_nothing_arrived - no capture file for message ID.
expect_nothing_arrived() {
    [ -z "$(sink_files "$1")" ] || mta_why "message $1 was delivered: $(sink_rcpts "$1" | cut -f1 | tr '\n' ' ')"
}

# ---- coexist-milter ------------------------------------------------------------

# milter_paths - where the milter's socket, store and config live (call
# this in the main shell: cases run in subshells).
milter_paths() {
    MILTER_DIR=$MTA_T/milter
    MILTER_SOCK=$MILTER_DIR/milter.sock
    MILTER_DB=$MILTER_DIR/state.tdb
    MILTER_CONF=$MILTER_DIR/coexist-milter.conf
    MILTER_INSTANCE=mta-test
}

# milter_setup - write the config and create an empty store.
milter_setup() {
    mkdir -p "$MILTER_DIR" && chmod 755 "$MILTER_DIR" || return 1
    cat >"$MILTER_CONF" <<EOF
# coexist-milter config for the MTA tier (generated by tests/mta/lib.sh)
socket = unix:$MILTER_SOCK
state_db = $MILTER_DB
allow_root = yes
umask = 000
on_db_error = tempfail
dry_run = no
log_stderr = yes
instance = $MILTER_INSTANCE
counters_interval = 1
EOF
    # The MTA tier runs the HMAC loop guard, as a package does (coexistctl
    # init makes the secret); tests/faults/ asserts the constant header of
    # old (MTA_GUARD=constant).
    if [ "${MTA_GUARD:-hmac}" = constant ]; then
        echo "trace_secret_file =" >>"$MILTER_CONF"
    else
        echo "trace_secret_file = $MILTER_DIR/trace.key" >>"$MILTER_CONF"
    fi
    ctl init >"$MILTER_DIR/init.log" 2>&1 ||
        mta_why "coexistctl init failed: $(mta_tail 3 "$MILTER_DIR/init.log")"
}

# ctl - coexistctl on the test store; output goes to the case log.
ctl() {
    mta_step "coexistctl $*"
    "$COEXISTCTL" -c "$MILTER_CONF" -d "$MILTER_DB" "$@" >&2 || mta_why "coexistctl $* failed (exit $?)"
}

# milter_connectable - true when the milter accepts a connection on its socket.
milter_connectable() {
    "$MTA_PYTHON" - "$MILTER_SOCK" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
except OSError:
    sys.exit(1)
s.close()
EOF
}

# milter_start - run coexist-milter in the foreground (in the background of
# this shell) and wait until its socket accepts connections.
milter_start() {
    [ -x "$COEXIST_MILTER" ] || { mta_why "no coexist-milter binary at '$COEXIST_MILTER'"; return 1; }
    echo "---- start $(date +%T.%N)" >>"$MTA_T/milter.log"
    "$COEXIST_MILTER" -c "$MILTER_CONF" -f -v >>"$MTA_T/milter.log" 2>&1 &
    echo $! >"$MTA_T/milter.pid"
    if ! mta_poll 30 milter_connectable; then
        mta_why "coexist-milter does not accept on $MILTER_SOCK: $(mta_tail 4 "$MTA_T/milter.log")"
        mta_kill_pidfile "$MTA_T/milter.pid" 6
        return 1
    fi
}

# milter_stop - SIGTERM the milter and wait for it (libmilter takes up to 5 s).
milter_stop() {
    mta_kill_pidfile "$MTA_T/milter.pid" 12
    echo "---- stopped $(date +%T.%N)" >>"$MTA_T/milter.log"
    if milter_connectable; then
        mta_why "milter socket still accepts after stop"
        return 1
    fi
}

# milter_running - true while the milter process is alive.
milter_running() {
    [ -f "$MTA_T/milter.pid" ] && kill -0 "$(cat "$MTA_T/milter.pid")" 2>/dev/null
}

# ---- Postfix ----------------------------------------------------------------------

# pf_setup - a private Postfix instance under $MTA_T/postfix: own config,
# queue and data directories, no chroot, smtpd on 127.0.0.1:PF_PORT, all mail
# relayed to smtp-sink, the milter on both the smtpd and the non-smtpd path.
pf_setup() {
    PF_DIR=$MTA_T/postfix
    PF_ETC=$PF_DIR/etc
    PF_LOG=$PF_DIR/maillog
    mkdir -p "$PF_ETC" "$PF_DIR/queue" && chmod 755 "$PF_DIR" || return 1
    cat >"$PF_ETC/main.cf" <<EOF
# generated by tests/mta/lib.sh
compatibility_level = 3.6
queue_directory = $PF_DIR/queue
data_directory = $PF_DIR/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = pf.test
mydomain = test
myorigin = \$myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
# mx.local is local: Postfix resolves user%domain@mx.local, bang paths and
# "user@domain"@mx.local there (issue 10's address forms)
mydestination = mx.local
relay_domains =
local_recipient_maps =
alias_maps =
alias_database =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
default_transport = smtp:[127.0.0.1]:$SINK_PORT
relay_transport = smtp:[127.0.0.1]:$SINK_PORT
smtputf8_enable = yes
# smtp-sink cannot take SMTPUTF8 mail: these domains go to utf8sink.py
transport_maps = texthash:$PF_ETC/transport
smtp_dns_support_level = disabled
smtpd_milters = unix:$MILTER_SOCK
non_smtpd_milters = unix:$MILTER_SOCK
milter_default_action = tempfail
maillog_file = $PF_LOG
maillog_file_prefixes = $PF_DIR
queue_run_delay = 5s
minimal_backoff_time = 5s
maximal_backoff_time = 10s
biff = no
EOF
    cat >"$PF_ETC/master.cf" <<EOF
# generated by tests/mta/lib.sh: every service unchrooted
127.0.0.1:$PF_PORT inet n -    n -    -  smtpd
pickup     unix  n -       n 60   1  pickup
cleanup    unix  n -       n -    0  cleanup
qmgr       unix  n -       n 300  1  qmgr
rewrite    unix  - -       n -    -  trivial-rewrite
bounce     unix  - -       n -    0  bounce
defer      unix  - -       n -    0  bounce
trace      unix  - -       n -    0  bounce
verify     unix  - -       n -    1  verify
flush      unix  n -       n 1000? 0 flush
proxymap   unix  - -       n -    -  proxymap
proxywrite unix  - -       n -    1  proxymap
smtp       unix  - -       n -    -  smtp
relay      unix  - -       n -    -  smtp
showq      unix  n -       n -    -  showq
error      unix  - -       n -    -  error
retry      unix  - -       n -    -  error
discard    unix  - -       n -    -  discard
anvil      unix  - -       n -    1  anvil
scache     unix  - -       n -    1  scache
postlog    unix-dgram n -  n -    1  postlogd
EOF
    printf '%s smtp:[127.0.0.1]:%s\n' dom.example "$UTF8_SINK_PORT" \
        legacy8.example "$UTF8_SINK_PORT" >"$PF_ETC/transport"
    postfix -c "$PF_ETC" check >"$PF_DIR/check.log" 2>&1 ||
        mta_why "postfix check failed: $(mta_tail 3 "$PF_DIR/check.log")"
}

# pf_start - start the instance; its smtpd must listen.
pf_start() {
    postfix -c "$PF_ETC" start >"$PF_DIR/start.log" 2>&1 ||
        { mta_why "postfix start failed: $(mta_tail 3 "$PF_DIR/start.log") $(mta_tail 3 "$PF_LOG")"; return 1; }
    mta_poll 60 mta_listening "$PF_PORT" ||
        mta_why "postfix smtpd does not listen on $PF_PORT: $(mta_tail 3 "$PF_LOG")"
}

# pf_stop - stop the instance (synchronous).
pf_stop() {
    [ -n "${PF_ETC:-}" ] && [ -f "$PF_ETC/main.cf" ] || return 0
    postfix -c "$PF_ETC" status >/dev/null 2>&1 || return 0
    postfix -c "$PF_ETC" stop >>"$PF_DIR/start.log" 2>&1
}

# pf_queue - the instance's queue as postqueue -j prints it (one JSON per message).
pf_queue() { postqueue -c "$PF_ETC" -j 2>/dev/null; }

# pf_queue_empty - true when no message is queued (maildrop included).
pf_queue_empty() { [ -z "$(pf_queue)" ]; }

# pf_log_since - true when a line after line N of the maillog matches the
# extended regular expression RE.
pf_log_since() { tail -n +$(($1 + 1)) "$PF_LOG" 2>/dev/null | grep -qE -- "$2"; }

# pf_delivered - message ID reached the sink and nothing is left in the queue.
pf_delivered() { [ -n "$(sink_files "$1")" ] && pf_queue_empty; }

# pf_wait - wait until message ID is delivered; timing out fails the case.
pf_wait() {
    mta_poll "${2:-$MTA_TIMEOUT}" pf_delivered "$1" && { mta_step "delivered $1"; return 0; }
    mta_why "message $1 not delivered within ${2:-$MTA_TIMEOUT}s (sink files: $(sink_files "$1" | wc -l), queue: $(pf_queue | cut -c1-300)) log: $(mta_tail 4 "$PF_LOG")"
}

# mta_message - a test message with header X-Test-Id: ID on stdout, plus
# the header line EXTRA if given.
mta_message() {
    printf 'From: <%s>\n' "$MTA_SENDER"
    printf 'To: undisclosed-recipients:;\n'
    printf 'Subject: coexist-milter mta test %s\n' "$1"
    printf 'X-Test-Id: %s\n' "$1"
    [ -z "${2:-}" ] || printf '%s\n' "$2"
    printf '\ntest message %s\n' "$1"
}

# send_smtp - submit message ID to RCPT... over SMTP (swaks) at PORT;
# succeeds only if the message was accepted.  The transcript is kept.
send_smtp() {
    local port=$1 id=$2 to
    shift 2
    to=$(IFS=,; echo "$*")
    mta_message "$id" "${MTA_EXTRA_HEADER:-}" >"$MTA_T/$id.eml"
    mta_step "swaks -p $port --to $to ($id)"
    if ! swaks --server 127.0.0.1 --port "$port" --helo client.example \
            --from "$MTA_SENDER" --to "$to" --data "@$MTA_T/$id.eml" \
            >"$MTA_T/$id.smtp" 2>&1; then
        mta_why "SMTP submission refused: $(grep -E '^ *<[~*]* *[45][0-9][0-9]' "$MTA_T/$id.smtp" | head -2 | tr '\n' '|')"
        return 1
    fi
}

# send_smtp_dsn - like send_smtp but with ESMTP RCPT parameters PARAMS
# (e.g. "NOTIFY=SUCCESS,FAILURE") on every recipient (swaks cannot).
send_smtp_dsn() {
    local port=$1 id=$2 params=$3
    shift 3
    mta_message "$id" "${MTA_EXTRA_HEADER:-}" >"$MTA_T/$id.eml"
    mta_step "smtplib -p $port rcpt_options=$params $* ($id)"
    "$MTA_PYTHON" - "$port" "$MTA_SENDER" "$params" "$MTA_T/$id.eml" "$@" \
        >"$MTA_T/$id.smtp" 2>&1 <<'EOF' || { mta_why "SMTP submission with $params refused: $(mta_tail 2 "$MTA_T/$id.smtp")"; return 1; }
import smtplib, sys
port, sender, params, path, rcpts = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
with open(path, "rb") as f:
    msg = f.read().replace(b"\n", b"\r\n")
with smtplib.SMTP("127.0.0.1", int(port), local_hostname="client.example", timeout=30) as s:
    s.set_debuglevel(1)
    refused = s.sendmail(sender, rcpts, msg, rcpt_options=params.split())
    if refused:
        print("refused:", refused)
        sys.exit(1)
EOF
}

# send_raw_rcpts - message ID over SMTP at PORT with each RCPT... sent
# verbatim ("RCPT TO:<@relay.example:carol@corp.example>": swaks cannot);
# SMTPUTF8 when an address is not ASCII. Succeeds only if all are accepted.
send_raw_rcpts() {
    local port=$1 id=$2
    shift 2
    mta_message "$id" "${MTA_EXTRA_HEADER:-}" >"$MTA_T/$id.eml"
    mta_step "smtplib -p $port raw RCPT $* ($id)"
    "$MTA_PYTHON" - "$port" "$MTA_SENDER" "$MTA_T/$id.eml" "$@" \
        >"$MTA_T/$id.smtp" 2>&1 <<'EOF' || { mta_why "SMTP submission refused: $(mta_tail 2 "$MTA_T/$id.smtp")"; return 1; }
import smtplib, sys
port, sender, path, rcpts = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
with open(path, "rb") as f:
    msg = f.read().replace(b"\n", b"\r\n")
utf8 = any(not r.isascii() for r in rcpts)
with smtplib.SMTP("127.0.0.1", int(port), local_hostname="client.example", timeout=30) as s:
    s.set_debuglevel(1)
    s.ehlo()
    if utf8:
        s.command_encoding = "utf-8"
    code, text = s.mail(sender, ["SMTPUTF8"] if utf8 else [])
    if code != 250:
        sys.exit("MAIL: %d %s" % (code, text))
    for r in rcpts:
        code, text = s.docmd("RCPT TO:" + r)
        if code not in (250, 251):
            sys.exit("RCPT %s: %d %s" % (r, code, text))
    code, text = s.data(msg)
    if code != 250:
        sys.exit("DATA: %d %s" % (code, text))
EOF
}

# expect_smtp_tempfail - submission of ID to RCPT... at PORT gets a 4xx
# reply (at connect, MAIL, RCPT or DATA) and is not accepted.
expect_smtp_tempfail() {
    local port=$1 id=$2 to
    shift 2
    to=$(IFS=,; echo "$*")
    mta_message "$id" "${MTA_EXTRA_HEADER:-}" >"$MTA_T/$id.eml"
    mta_step "swaks -p $port --to $to ($id), expecting 4xx"
    if swaks --server 127.0.0.1 --port "$port" --helo client.example \
            --from "$MTA_SENDER" --to "$to" --data "@$MTA_T/$id.eml" \
            >"$MTA_T/$id.smtp" 2>&1; then
        mta_why "message accepted although the milter is down"
        return 1
    fi
    grep -qE '^ *<~?\*\* +4[0-9][0-9][ -]' "$MTA_T/$id.smtp" ||
        { mta_why "no 4xx reply: $(grep -E '^ *<' "$MTA_T/$id.smtp" | tail -3 | tr '\n' '|')"; return 1; }
    grep -E '^ *<~?\*\* +4' "$MTA_T/$id.smtp" | head -1 >&2
}

# pf_send_smtp - send_smtp to the Postfix instance.
pf_send_smtp() { send_smtp "$PF_PORT" "$@"; }

# pf_send_local - submit message ID through the instance's sendmail(1)
# (pickup, non_smtpd_milters).  Options before "--" go to sendmail
# (e.g. -N success,failure), then the recipients.
pf_send_local() {
    local id=$1 opts=()
    shift
    while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
    [ "${1:-}" = -- ] && shift
    mta_step "sendmail(1) ${opts[*]} $* ($id)"
    mta_message "$id" "${MTA_EXTRA_HEADER:-}" |
        "$(postconf -c "$PF_ETC" -h sendmail_path)" -C "$PF_ETC" -f "$MTA_SENDER" "${opts[@]}" -- "$@" \
        >"$MTA_T/$id.local" 2>&1 ||
        mta_why "sendmail(1) failed: $(mta_tail 2 "$MTA_T/$id.local")"
}

# ---- Sendmail (unpacked, never installed) --------------------------------------

# sm_deb - the newest cached .deb of package NAME (empty if none).
sm_deb() {
    ls "$MTA_CACHE/$1"_*.deb 2>/dev/null | sort -V | tail -n 1
}

# sm_unpack - sendmail-bin and sendmail-cf from the .deb cache (filled by
# sm_fetch) unpacked under $MTA_T/sendmail/root.  Nothing is installed.
sm_unpack() {
    local deb pkg
    SM_DIR=$MTA_T/sendmail
    SM_ROOT=$SM_DIR/root
    mkdir -p "$SM_ROOT" || return 1
    for pkg in sendmail-bin sendmail-cf; do
        deb=$(sm_deb "$pkg")
        if [ -z "$deb" ]; then
            # apt-get download runs in the caller's network namespace; run.sh
            # calls sm_fetch before it enters its own (which has no network).
            mta_why "no $pkg .deb in $MTA_CACHE (apt-get download failed: $(mta_tail 2 "$MTA_CACHE/fetch.log"))"
            return 1
        fi
        dpkg -x "$deb" "$SM_ROOT" || { mta_why "dpkg -x $deb failed"; return 1; }
    done
    SM_BIN=$SM_ROOT/usr/libexec/sendmail/sendmail
    SM_CFDIR=$SM_ROOT/usr/share/sendmail/cf
    [ -x "$SM_BIN" ] && [ -f "$SM_CFDIR/m4/cf.m4" ] ||
        mta_why "unpacked sendmail lacks $SM_BIN or $SM_CFDIR/m4/cf.m4"
}

# sm_fetch - make sure the sendmail-bin and sendmail-cf .debs are in
# $MTA_CACHE (needs the network; a no-op once they are).  Downloads into a
# temporary directory first, so an interrupted download never looks cached.
# Its output goes to $MTA_CACHE/fetch.log.
sm_fetch() {
    local tmp rc
    local pkg deb
    mkdir -p "$MTA_CACHE" || return 1
    for pkg in sendmail-bin sendmail-cf; do   # a damaged .deb is fetched again
        deb=$(sm_deb $pkg)
        [ -z "$deb" ] || dpkg-deb --info "$deb" >/dev/null 2>&1 || rm -f "$deb"
    done
    [ -n "$(sm_deb sendmail-bin)" ] && [ -n "$(sm_deb sendmail-cf)" ] && return 0
    tmp=$(mktemp -d "$MTA_CACHE/download.XXXXXX") || return 1
    # apt drops privileges to _apt for downloads when it can write there
    chmod 755 "$tmp"; chown _apt "$tmp" 2>/dev/null
    (
        cd "$tmp" || exit 1
        get() { apt-get -q -o DPkg::Lock::Timeout=300 download sendmail-bin sendmail-cf; }
        get || { apt-get -q -o DPkg::Lock::Timeout=300 update && get; }
    ) >"$MTA_CACHE/fetch.log" 2>&1
    rc=$?
    [ $rc = 0 ] && mv "$tmp"/*.deb "$MTA_CACHE"/
    rm -rf "$tmp"
    return $rc
}

# sm_setup - a sendmail.cf for a daemon on 127.0.0.1:SM_PORT that relays
# everything to smtp-sink and runs coexist-milter with F=T (tempfail when
# the milter is down).
sm_setup() {
    sm_unpack || return 1
    mkdir -p "$SM_DIR/queue" && chmod 700 "$SM_DIR/queue" || return 1
    printf 'hosts\tfiles\naliases\tfiles\n' >"$SM_DIR/service.switch"
    : >"$SM_DIR/helpfile"
    : >"$SM_DIR/statistics"
    cat >"$SM_DIR/test.mc" <<EOF
divert(-1)
# generated by tests/mta/lib.sh
divert(0)dnl
define(\`confDOMAIN_NAME', \`sm.test')dnl
define(\`QUEUE_DIR', \`$SM_DIR/queue')dnl
define(\`confPID_FILE', \`$SM_DIR/sendmail.pid')dnl
define(\`STATUS_FILE', \`$SM_DIR/statistics')dnl
define(\`HELP_FILE', \`$SM_DIR/helpfile')dnl
define(\`confSERVICE_SWITCH_FILE', \`$SM_DIR/service.switch')dnl
undefine(\`ALIAS_FILE')dnl
define(\`confDONT_BLAME_SENDMAIL', \`TrustStickyBit')dnl
define(\`confDONT_PROBE_INTERFACES', \`True')dnl
define(\`SMART_HOST', \`relay:[127.0.0.1]')dnl
define(\`RELAY_MAILER_ARGS', \`TCP \$h $SINK_PORT')dnl
define(\`confTO_CONNECT', \`10s')dnl
define(\`confTO_ICONNECT', \`10s')dnl
DAEMON_OPTIONS(\`Port=$SM_PORT, Addr=127.0.0.1, Name=MTA')dnl
FEATURE(\`no_default_msa')dnl
FEATURE(\`nocanonify')dnl
FEATURE(\`promiscuous_relay')dnl
FEATURE(\`accept_unresolvable_domains')dnl
LOCAL_DOMAIN(\`mx.local')dnl
INPUT_MAIL_FILTER(\`coexist', \`S=unix:$MILTER_SOCK, F=T, T=C:5s;S:10s;R:10s;E:30s')dnl
MAILER(\`smtp')dnl
EOF
    m4 -D_CF_DIR_="$SM_CFDIR/" "$SM_CFDIR/m4/cf.m4" "$SM_DIR/test.mc" \
        >"$SM_DIR/sendmail.cf" 2>"$SM_DIR/m4.log" ||
        mta_why "m4 failed to build sendmail.cf: $(mta_tail 3 "$SM_DIR/m4.log")"
}

# sm_start - run the Sendmail daemon (-bD: in the foreground of a
# background job), queue runs every 5 s, SMTP traffic logged with -X.
sm_start() {
    "$SM_BIN" -C "$SM_DIR/sendmail.cf" -bD -q5s -X "$SM_DIR/traffic.log" \
        >>"$SM_DIR/daemon.log" 2>&1 &
    echo $! >"$MTA_T/sendmail.pid"
    mta_poll 60 mta_listening "$SM_PORT" ||
        mta_why "sendmail does not listen on $SM_PORT: $(mta_tail 3 "$SM_DIR/daemon.log")"
}

sm_stop() { mta_kill_pidfile "$MTA_T/sendmail.pid" 10; }

# sm_queue_empty - true when Sendmail's queue holds no message.
sm_queue_empty() { ! compgen -G "$SM_DIR/queue/[qdtx]f*" >/dev/null; }

# sm_delivered - message ID reached the sink and Sendmail's queue is empty.
sm_delivered() { [ -n "$(sink_files "$1")" ] && sm_queue_empty; }

# sm_wait - wait until message ID is delivered via Sendmail.
sm_wait() {
    mta_poll "${2:-$MTA_TIMEOUT}" sm_delivered "$1" && { mta_step "delivered $1"; return 0; }
    mta_why "message $1 not delivered by sendmail within ${2:-$MTA_TIMEOUT}s (sink files: $(sink_files "$1" | wc -l), queue: $(ls "$SM_DIR/queue" | tr '\n' ' ')) traffic: $(mta_tail 4 "$SM_DIR/traffic.log")"
}

sm_send_smtp() { send_smtp "$SM_PORT" "$@"; }

# ---- syslog: a private /dev/log (used by packaging/demo.sh) ---------------------

# syslog_start - own /dev/log with tests/milter/syslog_collector.py, which
# appends each datagram as one line to $MTA_T/syslog.txt.  Only inside a
# private mount namespace: it mounts a tmpfs on /dev (see the "Capturing
# syslog in tests" note).  MTA_OUTER_MNTNS must name the caller's original
# mount namespace (readlink /proc/self/ns/mnt, taken before unshare).
syslog_start() {
    local n d old=$MTA_T/olddev
    SYSLOG_FILE=$MTA_T/syslog.txt
    if [ -z "${MTA_OUTER_MNTNS:-}" ] || [ "$(readlink /proc/self/ns/mnt)" = "$MTA_OUTER_MNTNS" ]; then
        mta_why "syslog_start: not in a private mount namespace; /dev left alone"
        return 1
    fi
    mkdir -p "$old" && mount --rbind /dev "$old" &&
        mount -t tmpfs -o mode=0755,size=4m coexist-dev /dev ||
        { mta_why "cannot mount a private /dev"; return 1; }
    for n in null zero random urandom full tty; do
        [ -e "$old/$n" ] || continue
        : >"/dev/$n" && mount --bind "$old/$n" "/dev/$n" || { mta_why "cannot bind /dev/$n"; return 1; }
    done
    for d in pts shm; do
        mkdir "/dev/$d" && mount --bind "$old/$d" "/dev/$d" || { mta_why "cannot bind /dev/$d"; return 1; }
    done
    chmod 1777 /dev/shm
    ln -s /proc/self/fd /dev/fd
    ln -s /proc/self/fd/0 /dev/stdin
    ln -s /proc/self/fd/1 /dev/stdout
    ln -s /proc/self/fd/2 /dev/stderr
    "$MTA_PYTHON" "$MTA_LIBDIR/../milter/syslog_collector.py" /dev/log "$SYSLOG_FILE" \
        2>"$MTA_T/syslog.err" &
    echo $! >"$MTA_T/syslog.pid"
    mta_poll 30 test -e "$SYSLOG_FILE.ready" ||
        mta_why "syslog collector did not start: $(mta_tail 3 "$MTA_T/syslog.err")"
}

syslog_stop() { mta_kill_pidfile "$MTA_T/syslog.pid" 3; }
