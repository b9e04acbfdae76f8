#!/usr/bin/env bash
# packaging/demo.sh - watch coexist-milter route mail through a real Postfix.
#
#   bash packaging/demo.sh        (as root, on Debian 12, from the source tree)
#
# 1. Installs what it needs (tests/deps.sh) and builds into _build/demo.
# 2. In private network, mount and UTS namespaces (only loopback exists, and
#    /dev/log is a private one) starts smtp-sink (a fake final destination
#    that records every envelope recipient), coexist-milter, and a private
#    Postfix instance that hands every message to the milter, then to the sink.
# 3. Makes a small state with coexistctl: a bcc user, a rewrite user, a
#    migrated user and a domain rule.
# 4. Sends one message to each, and prints where each one arrived and the
#    syslog lines the milter wrote.
# 5. Migrates the bcc user with coexistctl, sends again: the very next
#    message is no longer copied.  No reload, no restart.
# 6. Stops everything it started.  Exits 0 only if every message arrived
#    exactly where it should have.
#
# Environment:
#   COEXIST_DEMO_BUILD_DIR=DIR  build directory (default: _build/demo)
#   COEXIST_DEMO_SKIP_BUILD=1   use the binaries already built in that directory
#   COEXIST_DEMO_KEEP=1         keep the work directory with every log
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MTA_LIBDIR=$ROOT/tests/mta
# The harness of the MTA tier (on tests/lib): namespaces, a private /dev/log,
# smtp-sink, the private Postfix, the milter.  Hence a checkout: the .deb
# ships neither this script nor tests/.
# shellcheck source=tests/mta/lib.sh
. "$MTA_LIBDIR/lib.sh"

say() { printf '\n== %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

# =========================== outside the namespaces ==========================
if [ "${COEXIST_DEMO_INSIDE:-}" != 1 ]; then
    [ "$(id -u)" = 0 ] || die "run me as root (I start a private Postfix and mount a private /dev/log)"

    say "Installing what the demo needs (tests/deps.sh)"
    sh "$ROOT/tests/deps.sh" || die "tests/deps.sh failed"

    BUILD=${COEXIST_DEMO_BUILD_DIR:-$ROOT/_build/demo}
    # A tree configured in place cannot also be built out of tree.
    [ -f "$ROOT/config.status" ] && [ -z "${COEXIST_DEMO_BUILD_DIR:-}" ] && BUILD=$ROOT
    if [ "${COEXIST_DEMO_SKIP_BUILD:-}" = 1 ]; then
        say "Using the binaries in $BUILD"
    else
        say "Building into $BUILD"
        mkdir -p "$BUILD" || die "cannot create $BUILD"
        log=$BUILD/demo-build.log
        : >"$log"
        if [ ! -x "$ROOT/configure" ]; then
            echo "   ./autogen.sh"
            (cd "$ROOT" && ./autogen.sh) >>"$log" 2>&1 || { tail -20 "$log"; die "autogen.sh failed (log: $log)"; }
        fi
        if [ ! -f "$BUILD/Makefile" ]; then
            echo "   configure"
            (cd "$BUILD" && "$ROOT/configure") >>"$log" 2>&1 || { tail -20 "$log"; die "configure failed (log: $log)"; }
        fi
        echo "   make"
        make -C "$BUILD" -j"$(nproc)" >>"$log" 2>&1 || { tail -30 "$log"; die "make failed (log: $log)"; }
    fi
    COEXISTCTL=$BUILD/coexistctl
    COEXIST_MILTER=$BUILD/coexist-milter
    [ -x "$COEXISTCTL" ] && [ -x "$COEXIST_MILTER" ] || die "no coexistctl or coexist-milter in $BUILD"

    MTA_T=$(mktemp -d /tmp/coexist-demo.XXXXXX) || die "mktemp failed"
    chmod 755 "$MTA_T"
    export COEXISTCTL COEXIST_MILTER MTA_T COEXIST_DEMO_INSIDE=1
    ns_run "$ROOT/packaging/demo.sh"
    rc=$?
    if [ $rc = 0 ] && [ "${COEXIST_DEMO_KEEP:-}" != 1 ]; then
        rm -rf --one-file-system "$MTA_T"
    else
        echo "demo: every log is in $MTA_T"
    fi
    exit $rc
fi

# =========================== inside the namespaces ===========================
LOG=$MTA_T/demo.log         # what the harness says while it works
hostname mx.demo
demo_ok=1
SYSLOG_FILE=$MTA_T/syslog.txt

# stop_all - stop what this demo started, newest first.
stop_all() {
    pf_stop
    mta_kill_pidfile "$MTA_T/milter.pid" 10
    sink_stop
    syslog_stop
} 2>>"$LOG"
trap stop_all EXIT
trap 'exit 130' INT TERM

# step WHAT COMMAND... - run a harness step quietly; on failure explain and stop.
step() {
    local what=$1
    shift
    : >"$MTA_T/why"
    "$@" 2>>"$LOG" && return 0
    echo "demo: $what failed: $(head -1 "$MTA_T/why")"
    echo "demo: the harness log is $LOG"
    exit 1
}

# coexistctl ARGS... - show the command, run it on the demo's store.
coexistctl() {
    printf '   # coexistctl %s\n' "$*"
    "$COEXISTCTL" -c "$MILTER_CONF" "$@" 2>&1 | sed 's/^/     /'
    return "${PIPESTATUS[0]}"
}

# syslog_mark - the number of syslog lines so far (show_syslog prints the rest).
syslog_mark() { wc -l <"$SYSLOG_FILE"; }

# show_syslog MARK - the lines coexist-milter and coexistctl sent to syslog
# after MARK, as a syslog daemon would write them to /var/log/mail.log
# (the "<22>" at the start of a datagram is mail.info; the daemon adds the
# host name).
show_syslog() {
    local lines
    lines=$(tail -n +$(($1 + 1)) "$SYSLOG_FILE" | grep -E '^<[0-9]+>.{16}(coexist-milter|coexistctl)(\[[0-9]+\])?:' |
        sed -E "s/^<[0-9]+>(.{15}) /\\1 $(hostname -s) /")
    if [ -n "$lines" ]; then
        printf '%s\n' "$lines" | sed 's/^/   /'
    else
        echo "   (nothing arrived at /dev/log)"
    fi
}

# ---- the routing table -------------------------------------------------------
# deliver LABEL RCPT WANT... - send one message to RCPT through Postfix over
# SMTP, wait until it has arrived, and record a row: what arrived against
# WANT, the envelope recipients expected at the sink.
ROWS=()
deliver() {
    local label=$1 rcpt=$2 id got want qid arrived="" addr notify orcpt verdict
    shift 2
    id=$(mta_new_id demo)
    step "sending to $rcpt" pf_send_smtp "$id" "$rcpt"
    step "delivering to $rcpt" pf_wait "$id"
    qid=$(grep -o 'queued as [0-9A-Za-z]*' "$MTA_T/$id.smtp" | awk '{print $3}' | tail -1)
    while IFS=$'\t' read -r addr notify orcpt; do
        # What the milter set: NOTIFY, and an ORCPT naming another address
        # (Postfix itself sends ORCPT=rfc822;<the address> for every other one).
        local dsn=""
        [ "$notify" = - ] || dsn="NOTIFY=$notify"
        [ "$orcpt" = - ] || [ "${orcpt,,}" = "rfc822;${addr,,}" ] || dsn="${dsn:+$dsn }ORCPT=${orcpt#rfc822;}"
        arrived="${arrived:+$arrived, }$addr${dsn:+ ($dsn)}"
    done < <(sink_rcpts "$id")
    got=$(sink_rcpts "$id" | cut -f1 | sort | tr '\n' ' ')
    want=$(printf '%s\n' "$@" | sort | tr '\n' ' ')
    if [ "$got" = "$want" ]; then
        verdict="ok"
    else
        verdict="WRONG, want: ${want% }"
        demo_ok=0
    fi
    LAST_VERDICT=$verdict
    ROWS+=("$(printf '%-26s %-11s %-10s %s' "$rcpt" "${qid:-?}" "$label" "$arrived")" "$verdict")
}

# print_rows - the recorded rows as a table, then forget them.
print_rows() {
    local i
    printf '   %-26s %-11s %-10s %s\n' "SENT TO" "QUEUE ID" "RULE" "ARRIVED AT (envelope recipients at the sink)"
    for ((i = 0; i < ${#ROWS[@]}; i += 2)); do
        printf '   %s\n' "${ROWS[i]}"
        [ "${ROWS[i + 1]}" = ok ] || printf '   %26s ^^^ %s\n' "" "${ROWS[i + 1]}"
    done
    ROWS=()
}

# ---- start -------------------------------------------------------------------
say "Starting, in private namespaces (loopback only, a private /dev/log)"
step "the syslog collector" syslog_start
echo "   /dev/log        -> $SYSLOG_FILE"
step "smtp-sink" sink_start
echo "   smtp-sink       on 127.0.0.1:$SINK_PORT (the final destination; records envelope recipients)"
milter_paths
step "the milter's config and store" milter_setup
# milter_setup mirrors the milter's log to stderr for the test tier; the
# demo reads syslog, the way an admin would.
sed -i 's/^log_stderr = yes/log_stderr = no/' "$MILTER_CONF"
step "coexist-milter" milter_start
echo "   coexist-milter  on $MILTER_SOCK (config $MILTER_CONF)"
step "Postfix" pf_setup
step "Postfix" pf_start
echo "   postfix $(postconf -d -h mail_version)  on 127.0.0.1:$PF_PORT, smtpd_milters = unix:$MILTER_SOCK"

say "The state, made with coexistctl (the milter keeps running throughout)"
coexistctl add adam.barr@corp.example adam@pop.example --mode bcc &&
    coexistctl add bob.kelly@corp.example bob@pop.example --mode rewrite &&
    coexistctl add carol.white@corp.example carol@pop.example --mode bcc &&
    coexistctl migrate carol.white@corp.example &&
    coexistctl add @sales.example @oldsales.example --mode rewrite &&
    coexistctl list || { echo "demo: coexistctl failed"; exit 1; }

say "One message to each address, through Postfix (SMTP), into smtp-sink"
deliver "bcc"      adam.barr@corp.example   adam.barr@corp.example adam@pop.example
deliver "rewrite"  bob.kelly@corp.example   bob@pop.example
deliver "migrated" carol.white@corp.example carol.white@corp.example
deliver "domain"   ann.lee@sales.example    ann.lee@oldsales.example
deliver "unknown"  dave@elsewhere.example   dave@elsewhere.example
print_rows
cat <<'EOF'

   bcc:      the legacy mailbox gets a copy, sent with NOTIFY=NEVER so that it
             never produces a delivery report of its own.
   rewrite:  only the legacy mailbox gets it; ORCPT keeps the address the
             sender used, so a bounce names it.
   migrated, unknown: left alone.
EOF

say "What coexist-milter and coexistctl wrote to syslog (facility mail), so far"
show_syslog 0

say "Migrating adam.barr@corp.example, then sending to him again"
mark=$(syslog_mark)
coexistctl migrate adam.barr@corp.example || { echo "demo: coexistctl failed"; exit 1; }
deliver "migrated" adam.barr@corp.example   adam.barr@corp.example
print_rows
echo
if [ "$LAST_VERDICT" = ok ]; then
    echo "   The very next message after the flip: no copy for adam@pop.example."
    echo "   Nothing was reloaded or restarted."
else
    echo "   The message after the flip was NOT routed as a migrated user's."
fi
echo
show_syslog "$mark"

say "Stopping everything this demo started"
mark=$(syslog_mark)
pf_stop 2>>"$LOG"
step "stopping coexist-milter" milter_stop
mta_poll 2 eval "[ \$(syslog_mark) -gt $mark ]"   # its last lines, if any
show_syslog "$mark"
stop_all
echo "   stopped: postfix, coexist-milter, smtp-sink, the syslog collector"

echo
if [ $demo_ok = 1 ]; then
    echo "demo: every message arrived where it should have."
    exit 0
fi
echo "demo: some messages did NOT arrive where they should have (see above)."
exit 1
