#!/usr/bin/env bash
# tests/faults/mta-flips.sh - users flipped with coexistctl as fast as it
# goes while mail flows through a private Postfix and coexist-milter.
#
# 4 SMTP senders send 50 messages each (unique X-Test-Id, one connection per
# message) to three managed users and one unknown address, while one thread
# runs coexistctl migrate / unmigrate / mode bcc|rewrite on those users in a
# loop, recording when each command started and ended.  The milter decides
# at end of DATA, so for each message the users' possible states are those
# in force at some moment between sending DATA and reading the 250: from
# the last flip that had finished before, to the last flip that had started
# before the end (the commit is somewhere inside the coexistctl run).
#
# Checks: every message is accepted and delivered exactly once; for each
# message and user, the recipients that arrived are exactly one valid
# outcome of one of those states: unmigrated bcc = original + alias,
# unmigrated rewrite = alias only, migrated = original only (never the
# original deleted without the alias, never the alias twice, never the
# user missing); the unknown address arrives once, untouched; no coexistctl
# command fails; the store ends in the state the flipper believes; the flips
# did overlap the traffic.
#
# Usage (as root): tests/faults/mta-flips.sh   (COEXISTCTL, COEXIST_MILTER)
set -u
FT_NAME=mta-flips
# shellcheck source=tests/faults/mta-common.bash
. "$(dirname "$(readlink -f "$0")")/mta-common.bash"
ft_enter "$0" "$@"
ft_init
ft_up || ft_end

if ! { ctl add flip1@corp.example f1@pop.example --mode bcc &&
        ctl add flip2@corp.example f2@pop.example --mode rewrite &&
        ctl add flip3@corp.example f3@pop.example --mode bcc &&
        ctl migrate flip3@corp.example; } >>"$MTA_T/setup.log" 2>&1; then
    ft_fail setup "the flip users: $(ft_why)"
    ft_end
fi

"$MTA_PYTHON" "$FT_PY" flips --port "$PF_PORT" --prefix flips --senders 4 --per-sender 50 \
    --users flip1@corp.example:f1@pop.example:unmigrated:bcc,flip2@corp.example:f2@pop.example:unmigrated:rewrite,flip3@corp.example:f3@pop.example:migrated:bcc \
    --unknown nobody@corp.example \
    --coexistctl "$COEXISTCTL" --conf "$MILTER_CONF" --db "$MILTER_DB" \
    --results "$MTA_T/results.jsonl" --sink "$MTA_T/sink" --config "$PF_ETC" --wait 40 \
    >"$MTA_T/flips.out" 2>&1
rc=$?
summary=$(sed -n 's/^summary: //p' "$MTA_T/flips.out")
if [ $rc = 0 ] && [ -n "$summary" ]; then
    ft_pass delivery "$summary"
else
    ft_fail delivery "$(sed -n 's/^bad: //p' "$MTA_T/flips.out" | head -3 | tr '\n' '|')${summary:+ ($summary)}$([ -n "$summary" ] || mta_tail 3 "$MTA_T/flips.out")"
fi

# the flips must have overlapped the traffic, or the test proved little
ambiguous=$(printf '%s\n' "$summary" | sed -n 's/.*; \([0-9]*\) user copies could have seen more than one state.*/\1/p')
nflips=$(printf '%s\n' "$summary" | sed -n 's/.*; \([0-9]*\) flips (.*/\1/p')
if [ "${nflips:-0}" -ge 20 ] && [ "${ambiguous:-0}" -ge 10 ]; then
    ft_pass overlap "$nflips flips while the 200 messages were sent; $ambiguous user copies were decided while a flip of that user was possibly committing"
else
    ft_fail overlap "only ${nflips:-0} flips, ${ambiguous:-0} user copies decided during one (want >= 20 and >= 10)"
fi
# the milter's log agrees: it routed in both modes and left migrated users alone
if grep -q ': bcc rcpt=<flip' "$MTA_T/milter.log" && grep -q ': rewrite rcpt=<flip' "$MTA_T/milter.log" &&
    ! grep -q 'error:' "$MTA_T/milter.log"; then
    ft_pass log "$(grep -c ': bcc rcpt=<flip' "$MTA_T/milter.log") bcc and $(grep -c ': rewrite rcpt=<flip' "$MTA_T/milter.log") rewrite lines for the flip users, no error line"
else
    ft_fail log "want bcc and rewrite lines for the flip users and no error line: $(grep -m2 'error:' "$MTA_T/milter.log" | tr '\n' '|')"
fi
ft_end
