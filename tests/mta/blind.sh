# tests/mta/blind.sh - what coexist-milter cannot see behind a real Postfix
# (README "What the milter cannot see, and what to do"): each statement
# there has its case here (sourced by tests/mta/run.sh after cases.sh).
#
#   postfix-blind-virtual     virtual_alias_maps (a group and a short alias)
#                             expand after the milter: no copy, no rewrite
#   postfix-blind-canonical   recipient_canonical_maps rewrites after it too
#   postfix-order-delete-*    a recipient another milter deletes at end of
#                             message is still routed by coexist-milter
#                             (either order): a rewrite user comes back at
#                             the alias, a bcc user still gets the copy
#   postfix-order-add         one another milter adds is never routed, and
#                             coexist-milter's ACCEPT at DATA leaves the other
#                             milter its end of message
#   postfix-order-reject-*    a RCPT another milter rejects: hidden from
#                             coexist-milter only when that milter runs first
#   postfix-size-limit        a message that fits message_size_limit is
#                             refused (552) once the milter's copy and
#                             header push the queue file over it
#
# The other milter is tests/mta/othermilter (built beside coexist-milter).

# The cases, in order: postfix-NAME runs case_NAME (with "-" as "_").
# shellcheck disable=SC2034 # used by run.sh
BLIND_CASES="blind-virtual blind-canonical order-delete-rewrite order-delete-bcc order-add
    order-reject-first order-reject-last size-limit"

OTHER_MILTER=${OTHER_MILTER:-$(dirname "$COEXIST_MILTER")/tests/mta/othermilter}
OTHER_SOCK=$MTA_T/other.sock

# other_start ARGS... - (re)start othermilter with ARGS on OTHER_SOCK.
other_start() {
    other_stop
    [ -x "$OTHER_MILTER" ] || { mta_why "no othermilter at $OTHER_MILTER (make check TESTS=)"; return 1; }
    "$OTHER_MILTER" -p "unix:$OTHER_SOCK" "$@" >>"$MTA_T/other.log" 2>&1 &
    echo $! >"$MTA_T/other.pid"
    mta_poll 10 test -S "$OTHER_SOCK" || { mta_why "othermilter did not listen: $(mta_tail 2 "$MTA_T/other.log")"; return 1; }
}

other_stop() { mta_kill_pidfile "$MTA_T/other.pid" 8; rm -f "$OTHER_SOCK"; }

# pf_with NAME=VALUE... - restart the instance with these main.cf settings
# (pf_restore puts the saved ones back).
pf_with() {
    local kv
    for kv; do
        printf '%s = %s\n' "${kv%%=*}" "$(postconf -c "$PF_ETC" -h "${kv%%=*}")" >>"$MTA_T/pf.saved"
    done
    pf_stop
    postconf -c "$PF_ETC" -e "$@" || { mta_why "postconf -e $* failed"; return 1; }
    pf_start
}

pf_restore() {
    [ -s "$MTA_T/pf.saved" ] || return 0
    pf_stop
    tac "$MTA_T/pf.saved" | while IFS= read -r line; do
        postconf -c "$PF_ETC" -e "$line"
    done
    rm -f "$MTA_T/pf.saved"
    pf_start
}

# send_some ID RCPT... - submit over SMTP; recipients the server refuses
# are left out (as a client does), the message goes to the others.
# Refused recipients, "ADDR CODE" per line, in $MTA_T/ID.refused.
send_some() {
    local id=$1
    shift
    mta_message "$id" >"$MTA_T/$id.eml"
    mta_step "smtplib -p $PF_PORT $* ($id), refusals allowed"
    submit_py "$PF_PORT" "$id" --refused "$MTA_T/$id.refused" -- "$@" ||
        mta_why "SMTP submission failed: $(mta_tail 2 "$MTA_T/$id.smtp")"
}

# with_order ORDER - smtpd_milters with othermilter "first" or "last".
with_order() {
    local ours=unix:$MILTER_SOCK theirs=unix:$OTHER_SOCK
    if [ "$1" = first ]; then
        pf_with "smtpd_milters=$theirs $ours"
    else
        pf_with "smtpd_milters=$ours $theirs"
    fi
}

# ---- recipients Postfix rewrites after the milter ---------------------------

case_blind_virtual() {
    printf '%s\n' "team@corp.example adam.barr@corp.example, rita.rewrite@corp.example" \
        "ab@corp.example adam.barr@corp.example" >"$PF_ETC/blind-virtual"
    pf_with "virtual_alias_maps=texthash:$PF_ETC/blind-virtual" || return 1
    local ok=0
    ID=$(mta_new_id blind-group)
    pf_send_smtp "$ID" team@corp.example && pf_wait "$ID" &&
        expect_rcpts "$ID" adam.barr@corp.example rita.rewrite@corp.example && expect_untouched "$ID" &&
        ID=$(mta_new_id blind-alias) && pf_send_smtp "$ID" ab@corp.example && pf_wait "$ID" &&
        expect_rcpts "$ID" adam.barr@corp.example && expect_untouched "$ID" && ok=1
    # the remedy: a record for the group address itself
    ctl add team@corp.example team@pop.example --mode bcc || ok=0
    ID=$(mta_new_id blind-managed)
    [ "$ok" = 1 ] && pf_send_smtp "$ID" team@corp.example && pf_wait "$ID" &&
        expect_rcpts "$ID" adam.barr@corp.example rita.rewrite@corp.example team@pop.example || ok=0
    ctl remove team@corp.example || ok=0
    pf_restore || ok=0
    [ "$ok" = 1 ]
}

case_blind_canonical() {
    printf '%s\n' "a.barr@corp.example adam.barr@corp.example" >"$PF_ETC/blind-canonical"
    pf_with "recipient_canonical_maps=texthash:$PF_ETC/blind-canonical" || return 1
    local ok=0
    ID=$(mta_new_id blind-canonical)
    pf_send_smtp "$ID" a.barr@corp.example && pf_wait "$ID" &&
        expect_rcpts "$ID" adam.barr@corp.example && expect_untouched "$ID" && ok=1
    pf_restore || ok=0
    [ "$ok" = 1 ]
}

# ---- another milter's changes ------------------------------------------------

# order_case OTHER-ARGS -- RCPTS -- WANT... - in both orders, the message
# to RCPTS (comma-separated) with othermilter running OTHER-ARGS arrives
# with exactly the recipients WANT.
order_case() {
    local args=() rcpts order ok=1
    while [ "$1" != -- ]; do args+=("$1"); shift; done
    shift
    rcpts=$1
    shift 2
    other_start "${args[@]}" || return 1
    for order in first last; do
        with_order "$order" || { ok=0; break; }
        ID=$(mta_new_id "order-$order")
        # shellcheck disable=SC2086
        send_some "$ID" ${rcpts//,/ } && pf_wait "$ID" && expect_rcpts "$ID" "$@" ||
            { mta_why "othermilter ${args[*]} $order: $(head -1 "$MTA_T/why")"; ok=0; }
        echo "othermilter ${args[*]} $order: delivered $(sink_rcpts "$ID" | cut -f1 | tr '\n' ' ')" >&2
        pf_restore || ok=0
    done
    other_stop
    [ "$ok" = 1 ]
}

case_order_delete_rewrite() {
    order_case -D rita.rewrite@corp.example -- rita.rewrite@corp.example,nobody@corp.example -- \
        nobody@corp.example rita@pop.example
}

case_order_delete_bcc() {
    order_case -D adam.barr@corp.example -- adam.barr@corp.example,nobody@corp.example -- \
        nobody@corp.example adam@pop.example
}

# Also what Postfix does with an ACCEPT at DATA from one milter among
# several: nobody@ is managed by no record, so coexist-milter accepts at
# DATA (seen in its debug log), and the other milter, before or after it,
# still gets the message and adds its recipient at end of message.
case_order_add() {
    local before ok=0
    milter_stop && echo "log_level = debug" >>"$MILTER_CONF" && milter_start || return 1
    before=$(grep -c 'no recipient is managed: accepted at DATA' "$MTA_T/milter.log")
    order_case -A adam.barr@corp.example -- nobody@corp.example -- \
        nobody@corp.example adam.barr@corp.example || ok=1
    [ "$(( $(grep -c 'no recipient is managed: accepted at DATA' "$MTA_T/milter.log") - before ))" = 2 ] ||
        { mta_why "coexist-milter did not accept both messages at DATA"; ok=1; }
    milter_stop && sed -i '/^log_level = debug$/d' "$MILTER_CONF" && milter_start || ok=1
    return $ok
}

# reject_case ORDER WANT... - othermilter refuses adam.barr at RCPT.
reject_case() {
    local order=$1 ok=1
    shift
    other_start -R adam.barr@corp.example || return 1
    with_order "$order" || { other_stop; return 1; }
    ID=$(mta_new_id "reject-$order")
    send_some "$ID" adam.barr@corp.example nobody@corp.example && pf_wait "$ID" || ok=0
    [ "$ok" = 1 ] && { grep -q '^adam.barr@corp.example 550$' "$MTA_T/$ID.refused" ||
        { mta_why "RCPT adam.barr was not refused with 550: $(cat "$MTA_T/$ID.refused")"; ok=0; }; }
    [ "$ok" = 1 ] && { expect_rcpts "$ID" "$@" || ok=0; }
    echo "othermilter -R $order: delivered $(sink_rcpts "$ID" | cut -f1 | tr '\n' ' ')" >&2
    pf_restore || ok=0
    other_stop
    [ "$ok" = 1 ]
}

# first: coexist-milter never sees the refused recipient
case_order_reject_first() { reject_case first nobody@corp.example; }
# last: coexist-milter saw RCPT before the other refused it, and routes it
case_order_reject_last() { reject_case last nobody@corp.example adam@pop.example; }

# ---- message_size_limit --------------------------------------------------------

# size_message ID BYTES - a test message of about BYTES bytes.
size_message() {
    mta_message "$1"
    head -c "$2" /dev/zero | tr '\0' 'x' | fold -w 76
    echo
}

# size_try ID BYTES RCPT - 0 accepted, 1 refused with 552, 2 anything else.
size_try() {
    size_message "$1" "$2" >"$MTA_T/$1.eml"
    swaks --server 127.0.0.1 --port "$PF_PORT" --helo client.example --from "$MTA_SENDER" \
        --to "$3" --data "@$MTA_T/$1.eml" >"$MTA_T/$1.smtp" 2>&1 && return 0
    grep -qE '^ *<[~*]* *552[ -]' "$MTA_T/$1.smtp" && return 1
    return 2
}

case_size_limit() {
    local limit=20000 lo=15000 hi=20000 mid rc ok=1
    pf_with "message_size_limit=$limit" || return 1
    # The largest message to an unmanaged address of the same length as
    # adam.barr@corp.example that Postfix accepts.
    while [ $((hi - lo)) -gt 8 ]; do
        mid=$(( (lo + hi) / 2 ))
        size_try "$(mta_new_id size-probe)" "$mid" adam.xxxx@corp.example
        rc=$?
        if [ "$rc" = 0 ]; then lo=$mid; elif [ "$rc" = 1 ]; then hi=$mid; else
            mta_why "size probe of $mid bytes: $(grep -E '^ *<' "$MTA_T/"size-probe*.smtp | tail -1)"; ok=0; break
        fi
    done
    echo "largest accepted body to an unmanaged address: $lo bytes (limit $limit)" >&2
    if [ "$ok" = 1 ]; then
        ID=$(mta_new_id size-routed)
        size_try "$ID" "$lo" adam.barr@corp.example
        rc=$?
        [ "$rc" = 1 ] || { mta_why "the same message to a bcc user: want 552, got $(grep -E '^ *<[~*]* *[0-9]{3}' "$MTA_T/$ID.smtp" | tail -2 | tr '\n' '|')"; ok=0; }
        # with room for the copy and the header it goes through, routed
        ID=$(mta_new_id size-room)
        [ "$ok" = 1 ] && { size_try "$ID" $((lo - 400)) adam.barr@corp.example && pf_wait "$ID" &&
            expect_rcpts "$ID" adam.barr@corp.example adam@pop.example || ok=0; }
    fi
    pf_restore || ok=0
    [ "$ok" = 1 ]
}
