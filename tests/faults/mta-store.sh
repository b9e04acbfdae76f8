#!/usr/bin/env bash
# tests/faults/mta-store.sh - the state store broken under a running
# coexist-milter, behind a private Postfix (milter_default_action = tempfail).
#
# The milter runs as a throw-away system user (created with useradd, removed
# at the end): as root it could open a chmod 000 store anyway, so
# "unreadable" needs an unprivileged daemon, as deployed.  The store lives in
# a directory that user owns; root's coexistctl init there hands it over.
#
# For each fault: an SMTP message gets a 4xx carrying the milter's own reply
# (so the milter answered, it did not crash); the milter's log has an
# "error: ...; answering tempfail" line naming the cause; nothing is queued
# or delivered for it; a sendmail(1) message submitted meanwhile stays in
# maildrop (cleanup gets a 4xx).  Then the store is put back (coexistctl
# init + add, rename of a good copy, chmod or chown) and, without restarting
# the milter: a new SMTP message is routed (bcc.user + bcc@pop, rw@pop,
# nobody), the client's retry of the refused one too, and "postqueue -f"
# delivers the held sendmail(1) message, routed, exactly once.
#
# Faults: deleted; replaced by rename with a non-tdb file; truncated to 0
# bytes in place; truncated in place and overwritten with a few bytes of
# text; chmod 000 while open (the open handle keeps working: routed, no 4xx);
# a chmod 000 copy renamed in; a root-owned copy renamed in (the daemon's
# user cannot open it read-write).
#
# Usage (as root): tests/faults/mta-store.sh   (COEXISTCTL, COEXIST_MILTER)
set -u
FT_NAME=mta-store
# shellcheck source=tests/faults/mta-common.bash
. "$(dirname "$(readlink -f "$0")")/mta-common.bash"
ft_enter "$0" "$@"
ft_init

FT_USER=coexist-ftest
# ft_user_gone - remove the throw-away user if this script created it.
ft_user_gone() {
    [ "${ft_user_created:-0}" = 1 ] || return 0
    userdel "$FT_USER" >/dev/null 2>&1 ||
        echo "# $FT_NAME: could not remove user $FT_USER"
}
ft_user_created=0
if id "$FT_USER" >/dev/null 2>&1; then
    # left behind by an interrupted run: reuse it, remove it at the end
    ft_user_created=1
elif useradd --system --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$FT_USER" >"$MTA_T/useradd.log" 2>&1; then
    ft_user_created=1
else
    ft_fail setup "useradd $FT_USER failed: $(mta_tail 2 "$MTA_T/useradd.log")"
    ft_end
fi
FT_CLEANUPS+=(ft_user_gone)

STATE_DIR=$MTA_T/state
mkdir -p "$STATE_DIR" && chown "$FT_USER": "$STATE_DIR" && chmod 750 "$STATE_DIR"
MILTER_DB=$STATE_DIR/state.tdb
FT_MILTER_CONF_EXTRA="user = $FT_USER"
ft_up || ft_end

pid=$(ft_milter_pid)
uid=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
owner=$(stat -c %U "$MILTER_DB")
if [ "$uid" = "$(id -u "$FT_USER")" ] && [ "$owner" = "$FT_USER" ]; then
    ft_pass setup "milter runs as $FT_USER (uid $uid), store owned by $owner"
else
    ft_fail setup "milter uid '$uid', store owner '$owner'; want $FT_USER for both"
    ft_end
fi

EXPECT=(${FT_EXPECT//,/ })
RCPTS=(${FT_RCPTS//,/ })

# good_copy NAME - a valid store with the records, beside the live one (new inode).
good_copy() {
    local f=$STATE_DIR/$1.tdb
    rm -f "$f"
    "$COEXISTCTL" -c "$MILTER_CONF" -d "$f" init >/dev/null &&
        "$COEXISTCTL" -c "$MILTER_CONF" -d "$f" add bcc.user@corp.example bcc@pop.example --mode bcc >/dev/null &&
        "$COEXISTCTL" -c "$MILTER_CONF" -d "$f" add rw.user@corp.example rw@pop.example --mode rewrite >/dev/null &&
        echo "$f"
}

# fresh_store - the store made again in place with coexistctl init and add.
fresh_store() {
    rm -f "$MILTER_DB" && ctl init && ft_store
}

# milter_alive - the same milter process still runs.
milter_alive() { kill -0 "$pid" 2>/dev/null && [ "$(ft_milter_pid)" = "$pid" ]; }

# routed_now NAME - a new SMTP message is accepted and routed.
routed_now() {
    local id=store-$1-$RANDOM
    pf_send_smtp "$id" "${RCPTS[@]}" && arrived "$id" && expect_rcpts "$id" "${EXPECT[@]}" &&
        expect_header "$id" X-Coexist-Milter "$MILTER_INSTANCE"
}

# arrived ID - wait until message ID is in the sink and out of the active
# and incoming queues (a held sendmail(1) message may sit in maildrop).
in_sink_not_queued() {
    [ -n "$(sink_files "$1")" ] && ! pf_queue | grep -v '"queue_name": *"maildrop"' | grep -q .
}
arrived() {
    mta_poll "$MTA_TIMEOUT" in_sink_not_queued "$1" ||
        mta_why "message $1 not delivered within ${MTA_TIMEOUT}s: $(pf_queue | head -c 300) $(mta_tail 3 "$PF_LOG")"
}

# recover - after a failed case: a good store, nothing left in the queue,
# so that the next case starts clean.
recover() {
    if ! milter_alive; then
        # later cases need a milter: start another one (the failure is reported)
        rm -f "$MTA_T/milter.pid"
        milter_start 2>>"$MTA_T/recover.log" && pid=$(ft_milter_pid)
    fi
    chmod 640 "$MILTER_DB" 2>/dev/null
    fresh_store >>"$MTA_T/recover.log" 2>&1
    postqueue -c "$PF_ETC" -f
    mta_poll "$MTA_TIMEOUT" pf_queue_empty
    # one message, so that the milter holds the good store open again
    (routed_now recover) >>"$MTA_T/recover.log" 2>&1
    : >"$MTA_T/why"
}

# fault_case NAME CAUSE_RE BREAK REPAIR [NOTICE_RE] - run BREAK (a function),
# expect the tempfail behaviour described above with an error line matching
# CAUSE_RE (and a line matching NOTICE_RE, if given), then REPAIR and expect
# routing again, all without restarting the milter.
fault_case() {
    local name=$1 cause=$2 break_fn=$3 repair_fn=$4 notice=${5:-}
    local id=store-$1-$RANDOM lid=store-$1-local-$RANDOM mstart lstart errline
    : >"$MTA_T/why"
    (
        set +e
        mstart=$(wc -l <"$MTA_T/milter.log")
        mta_step "break: $break_fn"
        "$break_fn" || { mta_why "could not break the store ($break_fn)"; exit 1; }
        expect_smtp_tempfail "$PF_PORT" "$id" "${RCPTS[@]}" || exit 1
        milter_alive || { mta_why "the milter process $pid died (the shell reports how on stderr): $(mta_tail 2 "$MTA_T/milter.log")"; exit 1; }
        grep -qE '^ *<\*\* +4[0-9][0-9] .*coexist-milter' "$MTA_T/$id.smtp" ||
            { mta_why "the 4xx is not the milter's own: $(grep -E '^ *<\*\* +4' "$MTA_T/$id.smtp" | head -1)"; exit 1; }
        errline=$(tail -n +$((mstart + 1)) "$MTA_T/milter.log" | grep -E ': error: .*answering tempfail' | head -1)
        [ -n "$errline" ] || { mta_why "no 'error: ... answering tempfail' line in the milter log: $(mta_tail 3 "$MTA_T/milter.log")"; exit 1; }
        printf '%s\n' "$errline" | grep -qE -- "$cause" ||
            { mta_why "the error line does not name the cause /$cause/: $errline"; exit 1; }
        echo "$errline" >"$MTA_T/$name.errline"
        if [ -n "$notice" ] && ! tail -n +$((mstart + 1)) "$MTA_T/milter.log" | grep -qE -- "$notice"; then
            mta_why "no /$notice/ line in the milter log: $(mta_tail 3 "$MTA_T/milter.log")"; exit 1
        fi
        pf_queue_empty || { mta_why "queue not empty after the 4xx: $(pf_queue | head -c 300)"; exit 1; }
        # the pickup path meanwhile: cleanup gets a 4xx, the file stays in maildrop
        lstart=$(wc -l <"$PF_LOG")
        pf_send_local "$lid" -- "${RCPTS[@]}" || exit 1
        mta_poll "$MTA_TIMEOUT" pf_log_since "$lstart" 'cleanup\[[0-9]+\]: [0-9A-F]+: milter-reject: .* 4\.[0-9.]+ ' ||
            { mta_why "no 4xx from cleanup for the sendmail(1) message: $(mta_tail 3 "$PF_LOG")"; exit 1; }
        pf_queue | grep -q '"queue_name": *"maildrop"' ||
            { mta_why "the sendmail(1) message is not held in maildrop: $(pf_queue | head -c 300)"; exit 1; }
        expect_nothing_arrived "$id" && expect_nothing_arrived "$lid" || exit 1
        mta_step "repair: $repair_fn"
        "$repair_fn" || { mta_why "could not repair the store ($repair_fn)"; exit 1; }
        routed_now "$name-after" || exit 1
        milter_alive || { mta_why "the milter was restarted or died"; exit 1; }
        # the client retries the refused message; the held one is flushed
        pf_send_smtp "$id" "${RCPTS[@]}" || exit 1
        mta_step "postqueue -f"
        postqueue -c "$PF_ETC" -f
        pf_wait "$id" && expect_rcpts "$id" "${EXPECT[@]}" || exit 1
        pf_wait "$lid" && expect_rcpts "$lid" "${EXPECT[@]}" || exit 1
        [ "$(sink_files "$id" | wc -l)" = 1 ] && [ "$(sink_files "$lid" | wc -l)" = 1 ] ||
            { mta_why "a message was delivered more than once"; exit 1; }
    ) >"$MTA_T/case-$name.log" 2>&1
    if [ $? = 0 ] && ! [ -s "$MTA_T/why" ]; then
        ft_pass "$name" "4xx, logged \"$(sed -E "s/^coexist-milter: //; s/^[^ ]+: error: //; s|$MILTER_DB|STORE|g; s/; answering tempfail$//" "$MTA_T/$name.errline" | cut -c1-120)\"; $(repair_text "$repair_fn"), routed without a restart"
    else
        ft_fail "$name" "$(ft_why) (log: $MTA_T/case-$name.log)"
        recover
    fi
}

# repair_text FN - what repair function FN does, for the PASS line.
repair_text() {
    case $1 in
    fresh_store) echo "coexistctl init + add" ;;
    repair_rename_good) echo "a good copy renamed in" ;;
    repair_chmod) echo "chmod 640" ;;
    repair_chown) echo "chown to the daemon's user" ;;
    *) echo "$1" ;;
    esac
}

# ---- the faults ---------------------------------------------------------------

break_delete() { rm -f "$MILTER_DB"; }

break_rename_garbage() {
    local i
    for i in $(seq 2000); do echo "this is not a tdb file, it is garbage $i"; done >"$STATE_DIR/garbage"
    chown "$FT_USER": "$STATE_DIR/garbage" && mv "$STATE_DIR/garbage" "$MILTER_DB"
}
repair_rename_good() {
    local f
    f=$(good_copy good) && mv "$f" "$MILTER_DB"
}

break_truncate_zero() { truncate -s 0 "$MILTER_DB"; }

# the same inode, truncated and a few bytes of text written (what "cat x > store" does)
break_truncate_text() { printf 'not a tdb file\n' >"$MILTER_DB"; }

break_copy_unreadable() {
    local f
    f=$(good_copy unreadable) && chmod 000 "$f" && mv "$f" "$MILTER_DB"
}
repair_chmod() { chmod 640 "$MILTER_DB"; }

break_copy_root_owned() {
    local f
    f=$(good_copy rootowned) && chown root:root "$f" && chmod 644 "$f" && mv "$f" "$MILTER_DB"
}
repair_chown() { chown "$FT_USER": "$MILTER_DB" && chmod 640 "$MILTER_DB"; }

fault_case deleted 'No such file or directory' break_delete fresh_store 'is gone; reopening'
fault_case renamed-garbage 'cannot open store: not a tdb file' break_rename_garbage repair_rename_good \
    'was replaced on disk; reopening'
# truncated in place: the same inode, so only the size tells (a mapped read
# past the new end would be SIGBUS); the milter must notice and reopen
fault_case truncated-zero 'cannot open store: not a tdb file' \
    break_truncate_zero repair_rename_good 'was truncated in place; reopening'
fault_case truncated-text 'cannot open store: not a tdb file' \
    break_truncate_text fresh_store 'was truncated in place; reopening'

# chmod 000 on the open store: the daemon keeps the handle it opened (file
# modes are checked at open), so mail is still routed and nothing waits
: >"$MTA_T/why"
chmod 000 "$MILTER_DB"
if (routed_now chmod-open) >"$MTA_T/case-chmod-open.log" 2>&1 && milter_alive; then
    ft_pass chmod-open "chmod 000 while open: the open handle keeps routing, no 4xx"
else
    ft_fail chmod-open "$(ft_why) (log: $MTA_T/case-chmod-open.log)"
fi
chmod 640 "$MILTER_DB"

fault_case unreadable 'Permission denied' break_copy_unreadable repair_chmod 'was replaced on disk; reopening'
fault_case root-owned 'Permission denied' break_copy_root_owned repair_chown 'was replaced on disk; reopening'
ft_end
