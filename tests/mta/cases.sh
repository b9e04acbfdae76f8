# tests/mta/cases.sh - the cases of the MTA tier (sourced by tests/mta/run.sh).
#
# Each case_* function runs in a subshell and returns non-zero (after
# mta_why) at its first failed expectation.  The routing cases (ROUTING_CASES)
# run once per submission path MTA_PATH:
#   smtp      swaks or smtplib to Postfix's smtpd       (smtpd_milters)
#   local     the Postfix instance's sendmail(1), pickup (non_smtpd_milters)
#   sendmail  swaks or smtplib to the Sendmail daemon    (INPUT_MAIL_FILTER, F=T)
# Sendmail runs milters only for mail it receives over SMTP, so it has no
# "local" path.  The milter-down cases are per MTA.
#
# How NOTIFY and ORCPT are observed: smtp-sink -d writes one "X-Rcpt-Args:
# <addr> PARAMS" line per RCPT command it received, with the ESMTP
# parameters exactly as the MTA sent them; sinkq.py decodes them.  Postfix's
# smtp client sends ORCPT=rfc822;<the recipient itself> for every recipient
# that has no ORCPT of its own (Sendmail sends none), so the rewrite checks
# (ORCPT naming the original address) see what the milter set, not a default.
#
# The store (case_store_setup) holds:
#   adam.barr@corp.example    -> adam@pop.example     bcc      unmigrated
#   rita.rewrite@corp.example -> rita@pop.example     rewrite  unmigrated
#   mig.user@corp.example     -> mig@pop.example      bcc      migrated
#   mig.rw@corp.example       -> migrw@pop.example    rewrite  migrated
#   @corp2.example            -> @pop2.example        rewrite  (domain rule)
#   boss@corp2.example        -> boss@legacy.example  bcc      (user beats domain)
#   carol@corp.example        -> carol@pop.example    rewrite  (address forms)
#   @dom.example              -> @legacy8.example     bcc      (SMTPUTF8)
#   @dömain.example           -> @legacy8.example     rewrite  (given in U-labels)
#   mig.rev@corp.example      -> migrev@pop.example   rewrite  migrated, reverse
#   unmig.rev@corp.example    -> unmigrev@pop.example bcc      unmigrated, reverse
#   @corp3.example            -> @pop3.example        rewrite  migrated, reverse
# and nothing for nobody@corp.example or anything @elsewhere.example.
# The flip case adds and removes flip.user@corp.example itself.

# case_store_setup - create the store and the records above.
case_store_setup() {
    milter_setup || return 1
    ctl add adam.barr@corp.example adam@pop.example --mode bcc || return 1
    ctl add rita.rewrite@corp.example rita@pop.example --mode rewrite || return 1
    ctl add mig.user@corp.example mig@pop.example --mode bcc || return 1
    ctl add mig.rw@corp.example migrw@pop.example --mode rewrite || return 1
    ctl migrate mig.user@corp.example mig.rw@corp.example || return 1
    ctl add @corp2.example @pop2.example --mode rewrite || return 1
    ctl add boss@corp2.example boss@legacy.example --mode bcc || return 1
    ctl add carol@corp.example carol@pop.example --mode rewrite || return 1
    ctl add @dom.example @legacy8.example --mode bcc || return 1
    ctl add @dömain.example @legacy8.example --mode rewrite || return 1
    ctl add mig.rev@corp.example migrev@pop.example --mode rewrite --reverse || return 1
    ctl migrate mig.rev@corp.example || return 1
    ctl add unmig.rev@corp.example unmigrev@pop.example --mode bcc --reverse || return 1
    ctl add @corp3.example @pop3.example --mode rewrite --reverse || return 1
    ctl migrate @corp3.example || return 1
}

# case_socket_umask - the milter socket was created with "umask = 000", so
# Postfix's unprivileged smtpd and cleanup can connect to it.  If not, the
# socket is opened up here so that the other cases still say something.
case_socket_umask() {
    local mode
    mode=$(stat -c %a "$MILTER_SOCK")
    [ "$mode" = 777 ] && return 0
    chmod 666 "$MILTER_SOCK"
    mta_why "socket mode $mode with umask = 000, want 777 (chmod 666 applied for the other cases)"
}

# The routing cases, in order; case NAME is the function case_NAME (with
# "-" as "_").  run.sh runs them as postfix-smtp-NAME, postfix-local-NAME
# and sendmail-NAME.
# shellcheck disable=SC2034 # used by run.sh
ROUTING_CASES="bcc rewrite migrated unknown domain-rule mixed-case plus-tag
    several-rcpts duplicates flip dsn-notify loop-guard address-forms reverse"

# mta_submit - send message ID to RCPT... by the current MTA_PATH.
mta_submit() {
    local id=$1
    shift
    case $MTA_PATH in
    smtp) pf_send_smtp "$id" "$@" ;;
    local) pf_send_local "$id" -- "$@" ;;
    sendmail) sm_send_smtp "$id" "$@" ;;
    *) mta_why "unknown MTA_PATH '$MTA_PATH'" ;;
    esac
}

# mta_wait - wait until message ID went through the current path's MTA.
mta_wait() {
    if [ "$MTA_PATH" = sendmail ]; then sm_wait "$@"; else pf_wait "$@"; fi
}

# roundtrip - submit a new message of case NAME to RCPT..., wait for it;
# the message id is left in $ID.
roundtrip() {
    ID=$(mta_new_id "${MTA_PATH}-$1")
    shift
    mta_submit "$ID" "$@" && mta_wait "$ID"
}

# expect_routed - the trace header says this instance changed the message:
# one header, "INSTANCE; r=TAG,...; mac=MAC" (the HMAC loop guard).
expect_routed() {
    local vals
    vals=$(sink_header "$1" X-Coexist-Milter)
    [ "$(printf '%s\n' "$vals" | grep -c .)" = 1 ] &&
        printf '%s\n' "$vals" | grep -qE "^$MILTER_INSTANCE; r=([A-Za-z0-9_-]+(,[A-Za-z0-9_-]+)*|\*); mac=[A-Za-z0-9_-]+\$" ||
        mta_why "trace header: got '$(printf '%s' "$vals" | tr '\n' '|')', want one '$MILTER_INSTANCE; r=...; mac=...'"
}

# expect_untouched - no trace header: the milter changed nothing.
expect_untouched() { expect_no_header "$1" X-Coexist-Milter; }

# ---- routing cases (every path) ------------------------------------------------

case_bcc() {
    roundtrip bcc adam.barr@corp.example || return 1
    expect_rcpts "$ID" adam.barr@corp.example adam@pop.example || return 1
    expect_notify "$ID" adam@pop.example NEVER || return 1
    expect_notify "$ID" adam.barr@corp.example - || return 1
    # the copy is a recipient of its own: its ORCPT never names the original
    expect_orcpt_not "$ID" adam@pop.example rfc822\;adam.barr@corp.example || return 1
    expect_routed "$ID"
}

case_rewrite() {
    roundtrip rewrite rita.rewrite@corp.example || return 1
    expect_rcpts "$ID" rita@pop.example || return 1
    expect_orcpt "$ID" rita@pop.example rfc822\;rita.rewrite@corp.example || return 1
    expect_notify "$ID" rita@pop.example - || return 1
    expect_routed "$ID"
}

case_migrated() {
    roundtrip migrated mig.user@corp.example mig.rw@corp.example || return 1
    expect_rcpts "$ID" mig.user@corp.example mig.rw@corp.example || return 1
    expect_untouched "$ID"
}

case_unknown() {
    # an unknown user of a managed domain, another domain, and a legacy
    # alias used directly: all left alone
    roundtrip unknown nobody@corp.example someone@elsewhere.example adam@pop.example || return 1
    expect_rcpts "$ID" nobody@corp.example someone@elsewhere.example adam@pop.example || return 1
    expect_untouched "$ID"
}

case_domain_rule() {
    roundtrip domain jane.doe@corp2.example || return 1
    expect_rcpts "$ID" jane.doe@pop2.example || return 1
    expect_orcpt "$ID" jane.doe@pop2.example rfc822\;jane.doe@corp2.example || return 1
    expect_routed "$ID" || return 1
    # a user record wins over its domain's rule
    roundtrip domain-user boss@corp2.example || return 1
    expect_rcpts "$ID" boss@corp2.example boss@legacy.example || return 1
    expect_notify "$ID" boss@legacy.example NEVER
}

case_mixed_case() {
    roundtrip mixed-bcc Adam.Barr@CORP.Example || return 1
    expect_rcpts "$ID" Adam.Barr@CORP.Example adam@pop.example || return 1
    expect_notify "$ID" adam@pop.example NEVER || return 1
    # the delete must name the raw recipient (Postfix compares case-sensitively)
    roundtrip mixed-rewrite Rita.Rewrite@Corp.Example || return 1
    expect_rcpts "$ID" rita@pop.example || return 1
    expect_orcpt "$ID" rita@pop.example rfc822\;Rita.Rewrite@Corp.Example
}

case_plus_tag() {
    roundtrip plus-bcc adam.barr+news@corp.example || return 1
    expect_rcpts "$ID" adam.barr+news@corp.example adam@pop.example || return 1
    expect_notify "$ID" adam@pop.example NEVER || return 1
    # the unmatched extension goes with a rewrite (virtual(5)); ORCPT names
    # the address the sender used, extension included
    roundtrip plus-rewrite rita.rewrite+lists@corp.example || return 1
    expect_rcpts "$ID" rita+lists@pop.example || return 1
    expect_orcpt "$ID" rita+lists@pop.example rfc822\;rita.rewrite+lists@corp.example || return 1
    # an extension of a bcc user is no part of the copy (recipient_bcc_maps)
    roundtrip plus-bcc-dash adam.barr+x-y@corp.example || return 1
    expect_rcpts "$ID" adam.barr+x-y@corp.example adam@pop.example
}

case_several_rcpts() {
    roundtrip several adam.barr@corp.example rita.rewrite@corp.example \
        mig.user@corp.example nobody@corp.example jane.doe@corp2.example \
        boss@corp2.example || return 1
    expect_rcpts "$ID" adam.barr@corp.example adam@pop.example rita@pop.example \
        mig.user@corp.example nobody@corp.example jane.doe@pop2.example \
        boss@corp2.example boss@legacy.example || return 1
    expect_notify "$ID" adam@pop.example NEVER || return 1
    expect_notify "$ID" boss@legacy.example NEVER || return 1
    expect_orcpt "$ID" rita@pop.example rfc822\;rita.rewrite@corp.example || return 1
    expect_orcpt "$ID" jane.doe@pop2.example rfc822\;jane.doe@corp2.example || return 1
    expect_routed "$ID"
}

case_duplicates() {
    # the alias is already a recipient: not added again
    roundtrip dup-present adam.barr@corp.example adam@pop.example || return 1
    expect_rcpts "$ID" adam.barr@corp.example adam@pop.example || return 1
    # two spellings of one rewrite user: the alias once, every original
    # gone; with +x the rewrite carries the extension: another address
    roundtrip dup-rewrite rita.rewrite@corp.example Rita.Rewrite@corp.example \
        rita.rewrite+x@corp.example || return 1
    expect_rcpts "$ID" rita@pop.example rita+x@pop.example || return 1
    # user and user+tag (bcc): the alias once, both originals kept
    roundtrip dup-tag adam.barr@corp.example adam.barr+x@corp.example || return 1
    expect_rcpts "$ID" adam.barr@corp.example adam.barr+x@corp.example adam@pop.example
}

# case_flip - coexistctl between two messages: the very next message sees
# the new state (no reload, no restart).
case_flip() {
    ctl add flip.user@corp.example flip@pop.example --mode bcc || return 1
    roundtrip flip-unmigrated flip.user@corp.example || return 1
    expect_rcpts "$ID" flip.user@corp.example flip@pop.example || return 1
    ctl migrate flip.user@corp.example || return 1
    roundtrip flip-migrated flip.user@corp.example || return 1
    expect_rcpts "$ID" flip.user@corp.example || return 1
    expect_untouched "$ID" || return 1
    ctl unmigrate flip.user@corp.example || return 1
    ctl mode flip.user@corp.example rewrite || return 1
    roundtrip flip-rolled-back flip.user@corp.example || return 1
    expect_rcpts "$ID" flip@pop.example || return 1
    ctl remove flip.user@corp.example || return 1
    roundtrip flip-removed flip.user@corp.example || return 1
    expect_rcpts "$ID" flip.user@corp.example
}

# case_dsn_notify - recipients with NOTIFY=SUCCESS,FAILURE (RCPT parameters
# over SMTP, sendmail -N locally): the bcc copy still gets NEVER, the kept
# original keeps its NOTIFY, the rewritten alias gets the original's ORCPT
# and (over SMTP) its NOTIFY.
case_dsn_notify() {
    ID=$(mta_new_id "$MTA_PATH-dsn")
    case $MTA_PATH in
    smtp) send_smtp_dsn "$PF_PORT" "$ID" NOTIFY=SUCCESS,FAILURE \
              adam.barr@corp.example rita.rewrite@corp.example || return 1 ;;
    sendmail) send_smtp_dsn "$SM_PORT" "$ID" NOTIFY=SUCCESS,FAILURE \
              adam.barr@corp.example rita.rewrite@corp.example || return 1 ;;
    local) pf_send_local "$ID" -N success,failure -- \
              adam.barr@corp.example rita.rewrite@corp.example || return 1 ;;
    esac
    mta_wait "$ID" || return 1
    expect_rcpts "$ID" adam.barr@corp.example adam@pop.example rita@pop.example || return 1
    expect_notify "$ID" adam.barr@corp.example SUCCESS,FAILURE || return 1
    expect_notify "$ID" adam@pop.example NEVER || return 1
    expect_orcpt "$ID" rita@pop.example rfc822\;rita.rewrite@corp.example || return 1
    # Postfix's non-smtpd path simulates RCPT with the bare address and no
    # ESMTP parameters, so there the milter cannot know the original NOTIFY
    # (Postfix then applies its default, which the sink sees as none).
    if [ "$MTA_PATH" = local ]; then
        expect_notify "$ID" rita@pop.example -
    else
        expect_notify "$ID" rita@pop.example SUCCESS,FAILURE
    fi
}

# case_loop_guard - with the HMAC guard: a forged constant header no
# longer skips routing (and is logged); a routed message that comes back
# (same Message-ID, its trace header kept) is not routed again for the
# recipient it was routed for, while another managed recipient is.
case_loop_guard() {
    local msgid trace logstart
    logstart=$(wc -l <"$MTA_T/milter.log")
    MTA_EXTRA_HEADER="X-Coexist-Milter: $MILTER_INSTANCE" \
        roundtrip loop-forged adam.barr@corp.example || return 1
    expect_rcpts "$ID" adam.barr@corp.example adam@pop.example || return 1
    tail -n +$((logstart + 1)) "$MTA_T/milter.log" |
        grep -q "loop guard: trace header with a bad mac; routing" ||
        { mta_why "no 'bad mac' line in the milter log"; return 1; }

    msgid="<loop-$MTA_PATH-$$@client.example>"
    MTA_EXTRA_HEADER="Message-ID: $msgid" roundtrip loop-first adam.barr@corp.example || return 1
    expect_rcpts "$ID" adam.barr@corp.example adam@pop.example || return 1
    expect_routed "$ID" || return 1
    trace=$(sink_header "$ID" X-Coexist-Milter)
    # the list server re-posts it to the same user and to a rewrite user
    MTA_EXTRA_HEADER="Message-ID: $msgid
X-Coexist-Milter: $trace" roundtrip loop-again adam.barr@corp.example rita.rewrite@corp.example || return 1
    expect_rcpts "$ID" adam.barr@corp.example rita@pop.example || return 1
    # the same header on a message with another Message-ID does not verify
    MTA_EXTRA_HEADER="Message-ID: <other-$$@client.example>
X-Coexist-Milter: $trace" roundtrip loop-replayed adam.barr@corp.example || return 1
    expect_rcpts "$ID" adam.barr@corp.example adam@pop.example
}

# mta_forms - the address forms of issue 10 for the current MTA: each one
# the MTA itself delivers to carol@corp.example. Measured with log_level =
# debug (the milter logs "rcpt RAW {rcpt_addr}=..."): Postfix 3.7's smtpd
# and Sendmail 8.17 send {rcpt_addr}=carol@corp.example for every form here;
# Postfix's pickup path sends the canonical form as argv[0] and
# {rcpt_addr} alike (route and trailing dot gone, quotes removed, percent
# hack and bang path still there). Sendmail resolves only the
# first three to her (it relays the others elsewhere). Postfix's sendmail(1)
# path hands the milter the address before resolution and matches deletes
# against the form as typed (cleanup_milter.c): there only the quoted forms
# are routed whole (README: "What the milter cannot see").
mta_forms() {
    if [ "$MTA_PATH" != local ]; then
        printf '%s\n' '<@relay.example:carol@corp.example>' '<carol@corp.example.>' \
            '<carol%corp.example@mx.local>'
    fi
    [ "$MTA_PATH" = sendmail ] && return 0
    [ "$MTA_PATH" = local ] ||
        printf '%s\n' '<corp.example!carol@mx.local>' '<"carol@corp.example"@mx.local>'
    printf '%s\n' '<"car\ol"@corp.example>' '<car\ol@corp.example>'
}

# case_address_forms - a client cannot skip routing with a form the MTA
# resolves to a managed user: carol (rewrite) gets only her legacy copy,
# the original (named by its raw form) is deleted, ORCPT names the form.
case_address_forms() {
    local form n=0 ids=() forms=()
    while IFS= read -r form; do
        n=$((n + 1))
        ID=$(mta_new_id "$MTA_PATH-form$n")
        case $MTA_PATH in
        smtp) send_raw_rcpts "$PF_PORT" "$ID" "$form" || return 1 ;;
        sendmail) send_raw_rcpts "$SM_PORT" "$ID" "$form" || return 1 ;;
        local) form=${form#<}; form=${form%>}; pf_send_local "$ID" -- "$form" || return 1 ;;
        esac
        ids+=("$ID")
        forms+=("$form")
    done < <(mta_forms)
    for n in "${!ids[@]}"; do
        mta_wait "${ids[$n]}" || return 1
        expect_rcpts "${ids[$n]}" carol@pop.example ||
            { mta_why "form ${forms[$n]}: $(head -1 "$MTA_T/why")"; return 1; }
        expect_routed "${ids[$n]}" || return 1
    done
}

# case_pf_smtputf8 - SMTPUTF8 through Postfix (smtputf8_enable = yes): a
# UTF-8 local part under a domain rule gets its copy, case-folded as
# Postfix folds it; a domain given in U-labels and in A-labels meets one
# rule (coexistctl was given the U-label form).
case_pf_smtputf8() {
    [ "$(postconf -c "$PF_ETC" -h smtputf8_enable)" = yes ] ||
        { mta_why "smtputf8_enable is not yes"; return 1; }
    ID=$(mta_new_id utf8-local)
    send_raw_rcpts "$PF_PORT" "$ID" '<Jürgen@dom.example>' && pf_wait "$ID" || return 1
    # the copy keeps the local part as the sender spelled it, as Postfix's
    # own @domain results do
    expect_rcpts "$ID" Jürgen@dom.example Jürgen@legacy8.example || return 1
    expect_routed "$ID" || return 1
    ID=$(mta_new_id utf8-ulabel)
    send_raw_rcpts "$PF_PORT" "$ID" '<anna@dömain.example>' && pf_wait "$ID" || return 1
    expect_rcpts "$ID" anna@legacy8.example || return 1
    ID=$(mta_new_id utf8-alabel)
    send_raw_rcpts "$PF_PORT" "$ID" '<Bert@XN--DMAIN-JUA.example>' && pf_wait "$ID" || return 1
    expect_rcpts "$ID" Bert@legacy8.example || return 1
    MTA_PATH=smtp roundtrip utf8-ascii-local nobody@dom.example || return 1
    expect_rcpts "$ID" nobody@dom.example nobody@legacy8.example
}

# case_reverse - mail to a migrated user's legacy alias arrives at the new
# address with ORCPT naming the legacy address; an unmigrated owner's alias
# is left alone; a domain rule with reverse sends its legacy domain back;
# a reverse-routed message that comes back (its trace header and
# Message-ID kept) is not routed a second time.
case_reverse() {
    local msgid trace
    msgid="<reverse-$MTA_PATH-$$@client.example>"
    MTA_EXTRA_HEADER="Message-ID: $msgid" roundtrip reverse-user migrev@pop.example || return 1
    expect_rcpts "$ID" mig.rev@corp.example || return 1
    expect_orcpt "$ID" mig.rev@corp.example rfc822\;migrev@pop.example || return 1
    expect_routed "$ID" || return 1
    trace=$(sink_header "$ID" X-Coexist-Milter)
    roundtrip reverse-unmigrated unmigrev@pop.example || return 1
    expect_rcpts "$ID" unmigrev@pop.example || return 1
    expect_untouched "$ID" || return 1
    roundtrip reverse-domain jane.doe@pop3.example || return 1
    expect_rcpts "$ID" jane.doe@corp3.example || return 1
    expect_orcpt "$ID" jane.doe@corp3.example rfc822\;jane.doe@pop3.example || return 1
    MTA_EXTRA_HEADER="Message-ID: $msgid
X-Coexist-Milter: $trace" roundtrip reverse-again migrev@pop.example || return 1
    expect_rcpts "$ID" migrev@pop.example
}

# ---- Postfix's own tables against coexist-milter ---------------------------------

# The differential test of issue 10: the same entries as Postfix tables
# (virtual_alias_maps for rewrite, recipient_bcc_maps for bcc) and as
# coexist-milter records, with recipient_delimiter = +- in both. The two
# tables are independent in Postfix while the store has one record per key,
# so a bcc key and a rewrite key never share a bare address here.
DIFF_BCC="jean-luc@dif.example jl@popd.example
jean@dif.example jean@popd.example
bob@dif.example bob@popd.example"
DIFF_VIRTUAL="adam@dif.example adam@popd.example
adam-smith@dif.example as@popd.example
owner-list@dif.example ol@popd.example
boss@dif2.example boss@legacyd.example
@dif2.example @popd2.example"
DIFF_RCPTS="jean@dif.example Jean@DIF.example jean-luc@dif.example Jean-Luc@dif.example
    jean-luc+x@dif.example jean-marie@dif.example jean+x@dif.example JEAN-Paul+y@dif.example
    adam@dif.example ADAM+Tag@dif.example adam-x@dif.example adam-smith@dif.example
    Adam-Smith+z@dif.example bob@dif.example bob+x@dif.example Bob-y@dif.example
    owner-list@dif.example owner-list-x@dif.example list-request@dif.example
    nobody@dif.example zed@dif2.example Zed+X@dif2.example zed-x@dif2.example
    Boss@dif2.example boss+x@dif2.example boss-x-y@dif2.example"

# diff_run TAG - each of DIFF_RCPTS in a message of its own through Postfix's
# smtpd; "RCPT<TAB>delivered recipients" per line into $MTA_T/diff-TAG.
diff_run() {
    local tag=$1 r i=0 ids=()
    for r in $DIFF_RCPTS; do
        i=$((i + 1))
        ids+=("$(mta_new_id "diff-$tag-$i")")
        pf_send_smtp "${ids[-1]}" "$r" || return 1
    done
    i=0
    : >"$MTA_T/diff-$tag"
    for r in $DIFF_RCPTS; do
        pf_wait "${ids[$i]}" || return 1
        printf '%s\t%s\n' "$r" "$(sink_rcpts "${ids[$i]}" | cut -f1 | sort | tr '\n' ' ')" \
            >>"$MTA_T/diff-$tag"
        i=$((i + 1))
    done
}

# diff_milter_restart - the milter with recipient_delimiter = DELIMS.
diff_milter_restart() {
    milter_stop || return 1
    sed -i '/^recipient_delimiter =/d' "$MILTER_CONF"
    [ -z "$1" ] || echo "recipient_delimiter = $1" >>"$MILTER_CONF"
    milter_start
}

case_pf_differential() {
    local saved
    saved=$(postconf -c "$PF_ETC" -h smtpd_milters)
    printf '%s\n' "$DIFF_BCC" >"$PF_ETC/diff-bcc"
    printf '%s\n' "$DIFF_VIRTUAL" >"$PF_ETC/diff-virtual"
    printf 'address,alias,mode,state,wave,cutover\n' >"$MTA_T/diff.csv"
    printf '%s\n' "$DIFF_BCC" | awk '{print $1 "," $2 ",bcc,unmigrated,,"}' >>"$MTA_T/diff.csv"
    printf '%s\n' "$DIFF_VIRTUAL" | awk '{print $1 "," $2 ",rewrite,unmigrated,,"}' >>"$MTA_T/diff.csv"
    ctl import "$MTA_T/diff.csv" || return 1

    # Postfix alone, with its tables
    pf_stop
    postconf -c "$PF_ETC" -e recipient_delimiter=+- smtpd_milters= non_smtpd_milters= \
        "virtual_alias_maps = texthash:$PF_ETC/diff-virtual" \
        "recipient_bcc_maps = texthash:$PF_ETC/diff-bcc" || return 1
    pf_start || return 1
    diff_run native || return 1

    # Postfix with coexist-milter instead of its tables
    pf_stop
    postconf -c "$PF_ETC" -e "smtpd_milters = $saved" "non_smtpd_milters = $saved" \
        virtual_alias_maps= recipient_bcc_maps= || return 1
    diff_milter_restart +- || return 1
    pf_start || return 1
    diff_run milter || return 1

    # back as the other cases expect it
    pf_stop
    postconf -c "$PF_ETC" -e recipient_delimiter=+ || return 1
    diff_milter_restart "" || return 1
    pf_start || return 1
    for r in $DIFF_RCPTS; do printf '%s\t' "$r" >&2; grep -P "^\Q$r\E\t" "$MTA_T/diff-milter" | cut -f2 >&2; done
    if ! diff -u "$MTA_T/diff-native" "$MTA_T/diff-milter" >"$MTA_T/diff.out"; then
        cat "$MTA_T/diff.out" >&2
        mta_why "Postfix's tables and coexist-milter deliver differently: $(grep -c '^-[^-]' "$MTA_T/diff.out") recipients differ (see the case log)"
        return 1
    fi
    # the test must be able to fail: the tables did route something
    grep -q "jl@popd.example" "$MTA_T/diff-native" && grep -q "Zed+X@popd2.example" "$MTA_T/diff-native" ||
        { mta_why "the native run routed nothing: $(head -3 "$MTA_T/diff-native")"; return 1; }
}

# ---- the milter down ----------------------------------------------------------

# case_pf_milter_down - milter_default_action = tempfail with the milter
# stopped: SMTP gets 4xx and nothing is queued; a sendmail(1) message stays
# queued; with the milter back, "postqueue -f" delivers it with the right
# recipients, and the SMTP client's retry is accepted and routed.
case_pf_milter_down() {
    local smtp_id local_id logstart
    smtp_id=$(mta_new_id down-smtp)
    local_id=$(mta_new_id down-local)
    milter_stop || return 1
    expect_smtp_tempfail "$PF_PORT" "$smtp_id" adam.barr@corp.example || return 1
    pf_queue_empty || { mta_why "queue not empty after the 4xx: $(pf_queue)"; return 1; }

    logstart=$(wc -l <"$PF_LOG")
    pf_send_local "$local_id" -- adam.barr@corp.example rita.rewrite@corp.example || return 1
    # pickup hands the file to cleanup, which cannot reach the milter and
    # answers a temporary error (milter-reject ... 4.7.1): pickup then
    # leaves the file in maildrop.
    mta_poll "$MTA_TIMEOUT" pf_log_since "$logstart" 'cleanup\[[0-9]+\]: [0-9A-F]+: milter-reject: .* 4\.[0-9]+\.[0-9]+ ' ||
        { mta_why "no temporary milter-reject from cleanup in the maillog: $(mta_tail 3 "$PF_LOG")"; return 1; }
    tail -n +$((logstart + 1)) "$PF_LOG" | grep -i 'milter' | head -3 >&2
    [ "$(pf_queue | grep -c .)" = 1 ] && pf_queue | grep -q '"queue_name": *"maildrop"' ||
        { mta_why "want 1 message in maildrop with the milter down, queue: $(pf_queue)"; return 1; }
    expect_nothing_arrived "$local_id" || return 1
    pf_queue >&2

    milter_start || return 1
    mta_step "postqueue -f"
    postqueue -c "$PF_ETC" -f || { mta_why "postqueue -f failed"; return 1; }
    pf_wait "$local_id" || return 1
    expect_rcpts "$local_id" adam.barr@corp.example adam@pop.example rita@pop.example || return 1
    expect_orcpt "$local_id" rita@pop.example rfc822\;rita.rewrite@corp.example || return 1
    expect_notify "$local_id" adam@pop.example NEVER || return 1
    expect_routed "$local_id" || return 1

    # the SMTP client retries: accepted and routed now
    pf_send_smtp "$smtp_id" adam.barr@corp.example && pf_wait "$smtp_id" || return 1
    expect_rcpts "$smtp_id" adam.barr@corp.example adam@pop.example
}

# case_sm_milter_down - F=T: with the milter stopped Sendmail answers 4xx,
# queues and delivers nothing; with the milter back the retry is accepted
# and routed.
case_sm_milter_down() {
    local id
    id=$(mta_new_id sendmail-down)
    milter_stop || return 1
    expect_smtp_tempfail "$SM_PORT" "$id" adam.barr@corp.example rita.rewrite@corp.example || return 1
    sm_queue_empty || { mta_why "sendmail queued the message: $(ls "$SM_DIR/queue")"; return 1; }
    expect_nothing_arrived "$id" || return 1

    milter_start || return 1
    sm_send_smtp "$id" adam.barr@corp.example rita.rewrite@corp.example && sm_wait "$id" || return 1
    expect_rcpts "$id" adam.barr@corp.example adam@pop.example rita@pop.example || return 1
    expect_orcpt "$id" rita@pop.example rfc822\;rita.rewrite@corp.example || return 1
    expect_routed "$id"
}

# ---- counters and report (DESIGN section 12) ---------------------------------------

# report_field ADDR FIELD - FIELD of ADDR's row in "coexistctl report --format csv".
report_field() {
    "$COEXISTCTL" -c "$MILTER_CONF" -d "$MILTER_DB" report --format csv 2>/dev/null |
        awk -F, -v a="$1" -v f="$2" 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
                                     $1 == a { print $col[f] }'
}

# case_pf_report - N messages for a new bcc user through Postfix's smtpd, each
# seen with its copy at the sink; then (counters_interval = 1) report counts
# exactly N copies for the user, none for a migrated user (the routing cases
# write to it), and a message to a migrated user's legacy alias is counted
# as reverse.
case_pf_report() {
    local n=4 i got
    MTA_PATH=smtp
    ctl add count.user@corp.example count@pop.example --mode bcc --wave wr || return 1
    for i in $(seq $n); do
        roundtrip "report-$i" count.user@corp.example || return 1
        expect_rcpts "$ID" count.user@corp.example count@pop.example || return 1
    done
    for i in $(seq 50); do
        got=$(report_field count.user@corp.example copies)
        [ "$got" = "$n" ] && break
        sleep 0.2
    done
    [ "$got" = "$n" ] || { mta_why "report: count.user copies '$got', the sink got $n copies"; return 1; }
    got=$(report_field mig.user@corp.example copies),$(report_field mig.user@corp.example rewrites)
    [ "$got" = "0,0" ] || { mta_why "report: migrated mig.user has copies,rewrites $got, want 0,0"; return 1; }
    # mail to a migrated user's legacy alias, routed back, counts as reverse
    roundtrip report-reverse migrev@pop.example || return 1
    expect_rcpts "$ID" mig.rev@corp.example || return 1
    for i in $(seq 50); do
        got=$(report_field mig.rev@corp.example reverse)
        [ -n "$got" ] && [ "$got" -ge 1 ] && break
        sleep 0.2
    done
    [ -n "$got" ] && [ "$got" -ge 1 ] ||
        { mta_why "report: mig.rev's reverse count '$got' after a reverse-routed message"; return 1; }
}
