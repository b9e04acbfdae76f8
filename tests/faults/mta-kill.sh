#!/usr/bin/env bash
# tests/faults/mta-kill.sh - coexist-milter killed with SIGKILL in the middle
# of a stream of mail through a private Postfix (milter_default_action =
# tempfail), then started again.
#
# 4 SMTP senders send 50 messages each (one connection per message) while
# 20 more go in through sendmail(1) (pickup, non_smtpd_milters); each message
# has a unique X-Test-Id and the recipients bcc.user (bcc), rw.user (rewrite)
# and nobody (unknown).  The milter is killed twice, once 50 and once 120
# messages are accepted; each time 3 more sendmail(1) messages are submitted
# while it is down, and it is started again once the senders have seen a
# dozen more 4xx.  The client records every SMTP reply and retries what was
# not accepted, as a real client does; then "postqueue -f" hands any
# sendmail(1) message still held in maildrop to the milter.
#
# Checks: every attempt that was not accepted got a 4xx (never 5xx, never a
# dropped connection); every message accepted (250) or submitted through
# sendmail(1) arrives exactly once, with exactly bcc.user, bcc@pop, rw@pop
# and nobody and one trace header; a message whose attempt got a 4xx was not
# delivered for that attempt (its retry is its only copy); nothing else
# arrives (no bounce).
#
# Usage (as root): tests/faults/mta-kill.sh   (COEXISTCTL, COEXIST_MILTER)
set -u
FT_NAME=mta-kill
# shellcheck source=tests/faults/mta-common.bash
. "$(dirname "$(readlink -f "$0")")/mta-common.bash"
ft_enter "$0" "$@"
ft_init
ft_up || ft_end

R=$MTA_T/results.jsonl
: >"$R"
count() { grep -c "\"outcome\": \"$1\"" "$R"; }
at_least() { [ "$(count "$1")" -ge "$2" ]; }

"$MTA_PYTHON" "$FT_PY" stream --port "$PF_PORT" --rcpts "$FT_RCPTS" --prefix kill \
    --senders 4 --per-sender 50 --local 20 --local-gap 0.02 --backoff 0.05 \
    --sendmail "$PF_SENDMAIL" --config "$PF_ETC" --results "$R" --retry-for 30 \
    >"$MTA_T/stream.log" 2>&1 &
stream_pid=$!
RCPTS=(${FT_RCPTS//,/ })

# kill_round N AT - SIGKILL the milter once AT messages are accepted, submit
# 3 sendmail(1) messages while it is down, start it again once the senders
# have seen a dozen more 4xx.  Sets round_note; fails if the stream ended.
kill_round() {
    local n=$1 at=$2 pid acc tf_before down j id logstart
    mta_poll 30 at_least accepted "$at" ||
        { round_note="$at messages were never accepted: $(tail -3 "$MTA_T/stream.log" | tr '\n' '|')"; return 1; }
    pid=$(ft_milter_pid)
    acc=$(count accepted)
    kill -KILL "$pid" || { round_note="kill $pid failed"; return 1; }
    { wait "$pid"; } 2>/dev/null
    rm -f "$MTA_T/milter.pid"
    echo "---- killed $(date +%T.%N) after $acc accepted" >>"$MTA_T/milter.log"
    # sendmail(1) while the milter is down: cleanup refuses, pickup keeps
    # the file in maildrop
    logstart=$(wc -l <"$PF_LOG")
    for j in 1 2 3; do
        id=kill-down$n-$j
        mta_message "$id" | "$PF_SENDMAIL" -C "$PF_ETC" -f "$MTA_SENDER" -- "${RCPTS[@]}" \
            >>"$MTA_T/down-sendmail.log" 2>&1 &&
            printf '{"id": "%s", "kind": "local", "attempt": 1, "outcome": "submitted", "code": 0, "phase": "sendmail", "text": ""}\n' \
                "$id" >>"$R"
    done
    tf_before=$(count tempfail)
    mta_poll 5 at_least tempfail $((tf_before + 12))
    mta_poll 5 pf_log_since "$logstart" 'cleanup\[[0-9]+\]: [0-9A-F]+: milter-reject: CONNECT .* 4\.[0-9.]+ '
    down=$(( $(count tempfail) - tf_before ))
    if ! kill -0 "$stream_pid" 2>/dev/null; then
        round_note="the stream had ended before the milter came back: the test proved less than it should"
        milter_start
        return 1
    fi
    milter_start 2>>"$MTA_T/restart.log" ||
        { round_note="the milter did not start again: $(ft_why)"; return 1; }
    round_note="SIGKILL after $acc messages accepted, while the senders ran; $down got 4xx while it was down; restarted"
}

if kill_round 1 50; then ft_pass kill-1 "$round_note"; else ft_fail kill-1 "$round_note"; fi
if kill_round 2 120; then ft_pass kill-2 "$round_note"; else ft_fail kill-2 "$round_note"; fi
wait "$stream_pid"
stream_rc=$?
[ "$stream_rc" = 0 ] || ft_fail stream "the SMTP client failed (exit $stream_rc): $(tail -3 "$MTA_T/stream.log" | tr '\n' '|')"

# sendmail(1) messages the milter could not see stay in maildrop (pickup
# tries them again when woken: by the next submission or postqueue -f)
held=$(pf_queue | grep -c '"queue_name": *"maildrop"')
postqueue -c "$PF_ETC" -f
refused=$(grep -cE 'cleanup\[[0-9]+\]: [0-9A-F]+: milter-reject: CONNECT .* 4\.[0-9.]+ ' "$PF_LOG")
if [ "$refused" = 0 ]; then
    ft_fail local-held "no sendmail(1) message met the milter down (no 4xx from cleanup in the maillog)"
fi
if ft_check_delivery "$R" kill 40; then
    ft_pass delivery "$(sed -n 's/^summary: //p' "$MTA_T/check-kill.out"); cleanup refused sendmail(1) messages $refused times while the milter was down, $held still in maildrop at postqueue -f"
else
    ft_fail delivery "$(sed -n 's/^bad: //p' "$MTA_T/check-kill.out" | head -3 | tr '\n' '|') ($(sed -n 's/^summary: //p' "$MTA_T/check-kill.out"))"
fi
# the milter's log: the last one started routed mail
after_last_kill() { awk '/^---- killed/ { n = NR } { line[NR] = $0 } END { for (i = n + 1; i <= NR; i++) print line[i] }' "$MTA_T/milter.log"; }
if after_last_kill | grep -q ': rewrite rcpt=<rw.user@corp.example>'; then
    ft_pass restarted "the milter started after the last kill routed mail ($(after_last_kill | grep -c ': bcc rcpt=') bcc lines)"
else
    ft_fail restarted "no routing line in the milter log after the restart: $(mta_tail 3 "$MTA_T/milter.log")"
fi
ft_end
