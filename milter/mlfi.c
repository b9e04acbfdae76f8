/*
 * mlfi.c - the libmilter callbacks of coexist-milter (see mlfi.h).
 *
 * Life of the private data. libmilter gives each connection one private
 * pointer; it holds the connection context (cctx_), created at the first
 * MAIL FROM and freed in xxfi_close. Inside it the message context (mctx_)
 * holds the recipients of the current message and is reset at MAIL FROM,
 * at end of message and at abort, so several messages on one connection
 * never see each other's recipients. xxfi_close may run with no private
 * data at all (a connection that ended before MAIL FROM).
 *
 * Only DATA and xxfi_eom answer anything but "continue", so MAIL, RCPT and
 * header are negotiated as no-reply steps: the MTA does not wait for them.
 * At DATA every recipient is known: when none of them has a record (or a
 * reverse-index owner, or fails to normalize), nothing end of message could
 * do, and DATA answers ACCEPT, so the MTA sends this milter no headers, no
 * body and no end of message for it. Otherwise end of message decides
 * again, on the store as it is then (a flip in between counts). A failure
 * before end of message (out of memory) is remembered and answered there
 * with a tempfail; RCPT is never answered with ACCEPT, which would skip end
 * of message before all recipients are known.
 *
 * The loop guard (DESIGN.md section 10). Without a secret, a message that
 * carries "TRACE_HEADER: INSTANCE" is left alone, as it always was. With
 * one, the header callback keeps the Message-ID and the trace headers that
 * name this instance; end of message verifies them (policy/trace.c) and
 * lets the decision skip exactly the recipients a verified header names,
 * and the header added names the recipients routed now.
 */
#include <config.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "mlfi.h"
#include "stats.h"
#include "tally.h"
#include "trace.h"

/* One envelope recipient as received: argv[0] the address, then ESMTP args. */
struct mlfi_rcpt {
    char **argv;                /* one allocation, strings included */
    const char *resolved;       /* {rcpt_addr} at RCPT (in the same block), or NULL */
};

/* Per message. */
struct mlfi_msg {
    struct mlfi_rcpt *mctx_rcpts;
    size_t mctx_nrcpt;
    size_t mctx_cap;            /* kept across messages */
    int mctx_looped;            /* carries our own trace header (no secret) */
    int mctx_nomem;             /* a recipient or header could not be kept */
    /* With a secret: the trace headers naming us, verified at end of message. */
    char *mctx_traces[TRACE_HEADERS_MAX];
    size_t mctx_ntrace;
    int mctx_trace_bad;         /* one of ours too long to be genuine */
    char *mctx_msgid;           /* the first Message-ID, trimmed; kept across messages */
    size_t mctx_msgid_cap;
    int mctx_have_msgid;
};

/* Per connection. */
struct mlfi_conn {
    struct mlfi_msg cctx_msg;
    /* End-of-message scratch, reused so a busy connection does not allocate. */
    struct decide_rcpt *cctx_drcpts;
    struct decide_route *cctx_routes;
    size_t cctx_scratch_cap;
    struct decide_result cctx_result;
    const char **cctx_keys;     /* the routed keys the trace header names */
    struct trace_set cctx_seen; /* what verified trace headers name */
};

/* Set once before smfi_main(), read-only afterwards. */
static struct {
    const struct config *cfg;
    struct dbhandle *dbh;
    const struct trace_secret *secret;  /* NULL: the guard has no secret */
    struct tally *tally;                /* per-user counters; NULL: none */
} mlfi_env;

/* mlfi_init - what the callbacks need from main. */
void mlfi_init(const struct config *cfg, struct dbhandle *dbh)
{
    mlfi_env.cfg = cfg;
    mlfi_env.dbh = dbh;
}

/* mlfi_set_secret - the loop guard's secret; NULL or an empty one: none. */
void mlfi_set_secret(const struct trace_secret *secret)
{
    mlfi_env.secret = secret != NULL && secret->ts_len > 0 ? secret : NULL;
}

/* mlfi_set_tally - where routed recipients are counted; NULL: nowhere. */
void mlfi_set_tally(struct tally *tally)
{
    mlfi_env.tally = tally;
}

/*
 * rcpt_copy - ARGV and its strings, then RESOLVED (may be NULL), in one
 * block: libmilter reuses its own. *RESOLVED_COPY points into the block.
 */
static char **rcpt_copy(char **argv, const char *resolved, const char **resolved_copy)
{
    size_t n, bytes = resolved ? strlen(resolved) + 1 : 0;
    char **copy, *p;

    for (n = 0; argv[n] != NULL; n++)
        bytes += strlen(argv[n]) + 1;
    copy = malloc((n + 1) * sizeof(*copy) + bytes);
    if (copy == NULL)
        return NULL;
    p = (char *) (copy + n + 1);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(argv[i]) + 1;

        copy[i] = memcpy(p, argv[i], len);
        p += len;
    }
    copy[n] = NULL;
    *resolved_copy = resolved ? memcpy(p, resolved, strlen(resolved) + 1) : NULL;
    return copy;
}

/* mctx_add_rcpt - keep one recipient verbatim. Returns 0 or -1. */
static int mctx_add_rcpt(struct mlfi_msg *msg, char **argv, const char *resolved)
{
    struct mlfi_rcpt *rcpt;

    if (msg->mctx_nrcpt == msg->mctx_cap) {
        size_t cap = msg->mctx_cap ? 2 * msg->mctx_cap : 8;
        struct mlfi_rcpt *grown = realloc(msg->mctx_rcpts, cap * sizeof(*grown));

        if (grown == NULL)
            return -1;
        msg->mctx_rcpts = grown;
        msg->mctx_cap = cap;
    }
    rcpt = &msg->mctx_rcpts[msg->mctx_nrcpt];
    if ((rcpt->argv = rcpt_copy(argv, resolved, &rcpt->resolved)) == NULL)
        return -1;
    msg->mctx_nrcpt++;
    return 0;
}

/* mctx_reset - forget the message; the recipient array is kept for the next. */
static void mctx_reset(struct mlfi_msg *msg)
{
    for (size_t i = 0; i < msg->mctx_nrcpt; i++)
        free(msg->mctx_rcpts[i].argv);
    msg->mctx_nrcpt = 0;
    msg->mctx_looped = 0;
    msg->mctx_nomem = 0;
    for (size_t i = 0; i < msg->mctx_ntrace; i++)
        free(msg->mctx_traces[i]);
    msg->mctx_ntrace = 0;
    msg->mctx_trace_bad = 0;
    msg->mctx_have_msgid = 0;
}

/*
 * mctx_keep_msgid - the Message-ID the trace tags are bound to: the first
 * one, blanks around it removed. Returns 0 or -1 (out of memory).
 */
static int mctx_keep_msgid(struct mlfi_msg *msg, const char *value)
{
    size_t len;

    while (isspace((unsigned char) *value))
        value++;
    for (len = strlen(value); len > 0 && isspace((unsigned char) value[len - 1]); len--)
        ;
    if (len + 1 > msg->mctx_msgid_cap) {
        char *grown = realloc(msg->mctx_msgid, len + 1);

        if (grown == NULL)
            return -1;
        msg->mctx_msgid = grown;
        msg->mctx_msgid_cap = len + 1;
    }
    memcpy(msg->mctx_msgid, value, len);
    msg->mctx_msgid[len] = '\0';
    msg->mctx_have_msgid = 1;
    return 0;
}

/*
 * mctx_keep_trace - a trace header naming us, for end of message (the
 * Message-ID it is bound to may come later). Past TRACE_HEADERS_MAX they
 * are not kept: their recipients are routed again, never skipped wrongly.
 * Returns 0 or -1 (out of memory).
 */
static int mctx_keep_trace(struct mlfi_msg *msg, const char *value)
{
    if (strlen(value) > TRACE_VALUE_MAX) {
        msg->mctx_trace_bad = 1;
        return 0;
    }
    if (msg->mctx_ntrace == TRACE_HEADERS_MAX)
        return 0;
    if ((msg->mctx_traces[msg->mctx_ntrace] = strdup(value)) == NULL)
        return -1;
    msg->mctx_ntrace++;
    return 0;
}

/* cctx_free - the connection context and everything it holds. */
static void cctx_free(struct mlfi_conn *cctx)
{
    mctx_reset(&cctx->cctx_msg);
    free(cctx->cctx_msg.mctx_rcpts);
    free(cctx->cctx_msg.mctx_msgid);
    free(cctx->cctx_keys);
    free(cctx->cctx_drcpts);
    free(cctx->cctx_routes);
    decide_result_free(&cctx->cctx_result);
    free(cctx);
}

/* cctx_get - the connection context, created on first use; NULL if out of memory. */
static struct mlfi_conn *cctx_get(SMFICTX *ctx)
{
    struct mlfi_conn *cctx = smfi_getpriv(ctx);

    if (cctx != NULL)
        return cctx;
    if ((cctx = calloc(1, sizeof(*cctx))) == NULL)
        return NULL;
    if (smfi_setpriv(ctx, cctx) != MI_SUCCESS) {
        free(cctx);
        return NULL;
    }
    return cctx;
}

/* cctx_scratch - end-of-message arrays for the current recipients. */
static int cctx_scratch(struct mlfi_conn *cctx)
{
    const struct mlfi_msg *msg = &cctx->cctx_msg;

    if (msg->mctx_nrcpt > cctx->cctx_scratch_cap) {
        size_t cap = msg->mctx_nrcpt;
        struct decide_rcpt *drcpts;
        struct decide_route *routes;
        const char **keys;

        if ((drcpts = realloc(cctx->cctx_drcpts, cap * sizeof(*drcpts))) == NULL)
            return -1;
        cctx->cctx_drcpts = drcpts;
        if ((routes = realloc(cctx->cctx_routes, cap * sizeof(*routes))) == NULL)
            return -1;
        cctx->cctx_routes = routes;
        if ((keys = realloc(cctx->cctx_keys, cap * sizeof(*keys))) == NULL)
            return -1;
        cctx->cctx_keys = keys;
        cctx->cctx_scratch_cap = cap;
    }
    for (size_t i = 0; i < msg->mctx_nrcpt; i++) {
        char **argv = msg->mctx_rcpts[i].argv;

        cctx->cctx_drcpts[i].raw = argv[0];
        cctx->cctx_drcpts[i].esmtp_args = (const char *const *) (argv + 1);
        cctx->cctx_drcpts[i].resolved = msg->mctx_rcpts[i].resolved;
    }
    return 0;
}

/* header_value_is - whether VALUE, blanks around it ignored, is WANT. */
static int header_value_is(const char *value, const char *want)
{
    size_t len = strlen(want);

    while (isspace((unsigned char) *value))
        value++;
    if (strncmp(value, want, len) != 0)
        return 0;
    for (value += len; *value; value++)
        if (!isspace((unsigned char) *value))
            return 0;
    return 1;
}

/* ---- answers at end of message ------------------------------------------ */

/* eom_tempfail - log CAUSE and ask the MTA to try again later. */
static sfsistat eom_tempfail(SMFICTX *ctx, const char *qid, const char *cause)
{
    log_qid(LOG_ERR, qid, "error: %s; answering tempfail", cause);
    stats_add(STATS_ERRORS, 1);
    stats_add(STATS_TEMPFAILS, 1);
    if (smfi_setreply(ctx, "451", "4.3.0",
                      "coexist-milter: temporary failure, try again later")
        != MI_SUCCESS)
        log_qid(LOG_WARNING, qid, "smfi_setreply failed; the MTA answers its default");
    return SMFIS_TEMPFAIL;
}

/* eom_db_error - a store problem: the on_db_error setting decides. */
static sfsistat eom_db_error(SMFICTX *ctx, const char *qid, const char *cause)
{
    if (mlfi_env.cfg->on_db_error != ON_DB_ERROR_ACCEPT)
        return eom_tempfail(ctx, qid, cause);
    log_qid(LOG_ERR, qid, "error: %s; accepting unchanged", cause);
    stats_add(STATS_ERRORS, 1);
    return SMFIS_CONTINUE;
}

/*
 * eom_apply_one - send one action to the MTA. The recipient forms come from
 * the policy result, which libmilter's char * prototypes want writable.
 */
static int eom_apply_one(SMFICTX *ctx, struct decide_action *act)
{
    if (act->kind == ACTION_DELETE)
        return smfi_delrcpt(ctx, act->addr);
    return smfi_addrcpt_par(ctx, act->addr, act->args[0] ? act->args : NULL);
}

/*
 * eom_apply - every add, then every delete, then the trace header: a
 * recipient is never deleted before its replacement was sent. On a failure
 * the caller tempfails, and the MTA discards every change already sent, so
 * a message is never half-routed. Returns 0, or -1 with CAUSE filled.
 */
static int eom_apply(SMFICTX *ctx, struct decide_result *result, const char *trace,
                     char *cause, size_t causelen)
{
    static const enum decide_action_kind order[] = {ACTION_ADD, ACTION_DELETE};
    const struct config *cfg = mlfi_env.cfg;

    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        for (size_t a = 0; a < result->count; a++) {
            struct decide_action *act = &result->actions[a];

            if (act->kind != order[k] || eom_apply_one(ctx, act) == MI_SUCCESS)
                continue;
            snprintf(cause, causelen, "%s %s failed",
                     act->kind == ACTION_ADD ? "smfi_addrcpt_par" : "smfi_delrcpt",
                     act->addr);
            return -1;
        }
    }
    /* The trace header is the loop guard: a second pass knows what we did. */
    if (smfi_addheader(ctx, (char *) cfg->trace_header, (char *) trace) != MI_SUCCESS) {
        snprintf(cause, causelen, "smfi_addheader %s failed", cfg->trace_header);
        return -1;
    }
    return 0;
}

/* printable_copy - S with bytes outside printable ASCII and UTF-8 as '?'. */
static void printable_copy(char *out, size_t outlen, const char *s)
{
    size_t n = 0;

    for (; *s && n + 1 < outlen; s++)
        out[n++] = (unsigned char) *s < 0x20 || *s == 0x7f ? '?' : *s;
    out[n] = '\0';
}

/*
 * eom_log_unresolved - one line per recipient neither the MTA's {rcpt_addr}
 * nor our own parse could make a key of: it is left alone, and an admin
 * must be able to see that it was.
 */
static void eom_log_unresolved(const char *qid, const struct decide_rcpt *rcpts,
                               const struct decide_route *routes, size_t nrcpt)
{
    char shown[ADDR_BUFSIZE + 32];

    for (size_t i = 0; i < nrcpt; i++) {
        if (routes[i].unresolved == NULL)
            continue;
        printable_copy(shown, sizeof(shown), decide_rcpt_addr(&rcpts[i]));
        log_qid(LOG_NOTICE, qid, "unresolved rcpt=%s: %s; left alone", shown,
                routes[i].unresolved);
    }
}

/*
 * eom_log_resolved - at log_level = debug, each recipient as sent and as the
 * MTA resolved it ({rcpt_addr}): what an admin needs to see why an address
 * form was or was not routed.
 */
static void eom_log_resolved(const char *qid, const struct decide_rcpt *rcpts, size_t nrcpt)
{
    char raw[ADDR_BUFSIZE + 32], resolved[ADDR_BUFSIZE + 32];

    if (!log_enabled(LOG_DEBUG))
        return;
    for (size_t i = 0; i < nrcpt; i++) {
        printable_copy(raw, sizeof(raw), rcpts[i].raw);
        printable_copy(resolved, sizeof(resolved), rcpts[i].resolved ? rcpts[i].resolved : "");
        log_qid(LOG_DEBUG, qid, "rcpt %s {rcpt_addr}=%s", raw,
                rcpts[i].resolved ? resolved : "(none)");
    }
}

/*
 * eom_log_routes - one line per routed recipient, all sent in one system
 * call (the largest cost the milter itself had); counts them unless DRY.
 */
static void eom_log_routes(const char *qid, const struct decide_route *routes,
                           size_t nrcpt, int dry)
{
    struct log_batch batch;

    log_batch_init(&batch);
    for (size_t i = 0; i < nrcpt; i++) {
        const struct decide_route *r = &routes[i];

        if (r->rule == RULE_NONE)
            continue;
        if (r->reverse) {
            log_batch_qid(&batch, LOG_INFO, qid, "%sreverse rcpt=<%s> to=<%s> rule=%s",
                          dry ? "dry-run " : "", r->key, r->alias, decide_rule_name(r->rule));
            if (!dry)
                stats_add(STATS_REVERSE, 1);
            continue;
        }
        log_batch_qid(&batch, LOG_INFO, qid, "%s%s rcpt=<%s> alias=<%s> rule=%s",
                      dry ? "dry-run " : "", record_mode_name(r->mode), r->key,
                      r->alias, decide_rule_name(r->rule));
        if (!dry)
            stats_add(r->mode == MODE_REWRITE ? STATS_REWRITE : STATS_BCC, 1);
    }
    log_batch_flush(&batch);
}

/*
 * eom_guard - verify the trace headers of ours into TC's set; a bad one is
 * logged once per message and ignored, so a forger gains nothing. Returns
 * whether a verified whole-message tag covers every recipient.
 */
static int eom_guard(const struct mlfi_msg *msg, const struct trace_check *tc,
                     struct trace_set *seen, const char *qid)
{
    int bad = msg->mctx_trace_bad;

    trace_set_init(seen);
    for (size_t i = 0; i < msg->mctx_ntrace; i++)
        if (trace_parse(tc->tc_secret, tc->tc_instance, tc->tc_msgid, msg->mctx_traces[i],
                        seen) == TRACE_BAD)
            bad = 1;
    if (bad)
        log_qid(LOG_WARNING, qid, "loop guard: trace header with a bad mac; routing");
    return seen->tset_all;
}

/* eom_log_skipped - one line per recipient a verified trace header named. */
static void eom_log_skipped(const char *qid, const struct decide_route *routes,
                            size_t nrcpt, const struct trace_check *tc)
{
    if (tc->tc_set->tset_count == 0)
        return;
    for (size_t i = 0; i < nrcpt; i++)
        if (routes[i].key[0] != '\0' && !routes[i].routed && trace_covers(tc, routes[i].key))
            log_qid(LOG_INFO, qid, "loop guard: rcpt=<%s> routed already for this "
                    "message; not again", routes[i].key);
}

/*
 * eom_trace_value - the trace header's value: the instance alone without a
 * secret, else the tags of every recipient routed now (a bcc merged into
 * another recipient's add was routed too: it got its copy).
 */
static int eom_trace_value(struct mlfi_conn *cctx, const struct trace_check *tc,
                           char out[TRACE_VALUE_MAX], char err[DECIDE_ERR_MAX])
{
    size_t nkeys = 0;
    char why[TRACE_ERR_MAX];

    if (tc->tc_secret == NULL) {
        snprintf(out, TRACE_VALUE_MAX, "%s", tc->tc_instance);
        return 0;
    }
    for (size_t i = 0; i < cctx->cctx_msg.mctx_nrcpt; i++)
        if (cctx->cctx_routes[i].routed)
            cctx->cctx_keys[nkeys++] = cctx->cctx_routes[i].key;
    if (trace_build(tc->tc_secret, tc->tc_instance, tc->tc_msgid, cctx->cctx_keys, nkeys,
                    out, TRACE_VALUE_MAX, why) < 0) {
        snprintf(err, DECIDE_ERR_MAX, "trace header: %.480s", why);
        return -1;
    }
    return 0;
}

/* eom_route - decide for the whole message, then apply (or only log). */
static sfsistat eom_route(SMFICTX *ctx, struct mlfi_conn *cctx, const char *qid)
{
    const struct config *cfg = mlfi_env.cfg;
    const struct mlfi_msg *msg = &cctx->cctx_msg;
    size_t nrcpt = msg->mctx_nrcpt;
    struct trace_check tc = {mlfi_env.secret, cfg->instance,
                             msg->mctx_have_msgid ? msg->mctx_msgid : "", &cctx->cctx_seen};
    struct decide_settings settings = {
        .delimiters = cfg->recipient_delimiter,
        .now = time(NULL),
        .propagate_extension = cfg->propagate_extension,
    };
    char err[DECIDE_ERR_MAX], trace[TRACE_VALUE_MAX];

    if (nrcpt == 0)
        return SMFIS_CONTINUE;
    if (tc.tc_secret != NULL) {
        if (eom_guard(msg, &tc, &cctx->cctx_seen, qid)) {
            log_qid(LOG_INFO, qid, "loop guard: %s routed it for every recipient "
                    "(r=*); left unchanged", cfg->instance);
            return SMFIS_CONTINUE;
        }
        settings.already_routed = trace_covers;
        settings.already_routed_ctx = &tc;
    }
    if (cctx_scratch(cctx) < 0)
        return eom_tempfail(ctx, qid, "out of memory");
    if (dbh_decide(mlfi_env.dbh, cctx->cctx_drcpts, nrcpt, &settings,
                   &cctx->cctx_result, cctx->cctx_routes, err) < 0)
        return eom_db_error(ctx, qid, err);
    eom_log_resolved(qid, cctx->cctx_drcpts, nrcpt);
    eom_log_unresolved(qid, cctx->cctx_drcpts, cctx->cctx_routes, nrcpt);
    if (tc.tc_secret != NULL)
        eom_log_skipped(qid, cctx->cctx_routes, nrcpt, &tc);
    if (cctx->cctx_result.count == 0)
        return SMFIS_CONTINUE;
    if (eom_trace_value(cctx, &tc, trace, err) < 0)
        return eom_tempfail(ctx, qid, err);
    if (!cfg->dry_run && eom_apply(ctx, &cctx->cctx_result, trace, err, sizeof(err)) < 0)
        return eom_tempfail(ctx, qid, err);
    eom_log_routes(qid, cctx->cctx_routes, nrcpt, cfg->dry_run);
    if (!cfg->dry_run && mlfi_env.tally != NULL)
        tally_routes(mlfi_env.tally, cctx->cctx_routes, nrcpt, settings.now);
    return SMFIS_CONTINUE;
}

/* ---- the callbacks -------------------------------------------------------- */

/* mlfi_negotiate - ask for the actions we use and skip the steps we don't need. */
static sfsistat mlfi_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
                               unsigned long f2, unsigned long f3,
                               unsigned long *pf0, unsigned long *pf1,
                               unsigned long *pf2, unsigned long *pf3)
{
    (void) f2;
    (void) f3;
    /* Refusing makes the MTA apply its milter default action (tempfail). */
    if ((f0 & MLFI_ACTIONS) != MLFI_ACTIONS) {
        log_msg(LOG_ERR, "MTA offers actions 0x%lx, coexist-milter needs 0x%lx "
                "(add recipient with arguments, delete recipient, add header): "
                "refusing the connection", f0, (unsigned long) MLFI_ACTIONS);
        return SMFIS_REJECT;
    }
    if ((f1 & MLFI_NOREPLY_STEPS) != MLFI_NOREPLY_STEPS) {
        log_msg(LOG_ERR, "libmilter offers protocol 0x%lx without the no-reply "
                "steps 0x%lx: refusing the connection", f1,
                (unsigned long) MLFI_NOREPLY_STEPS);
        return SMFIS_REJECT;
    }
    *pf0 = MLFI_ACTIONS;
    /* An MTA that cannot take a macro list sends its default one. */
    if ((f0 & SMFIF_SETSYMLIST) != 0
        && smfi_setsymlist(ctx, SMFIM_ENVRCPT, MLFI_RCPT_MACRO) == MI_SUCCESS)
        *pf0 |= SMFIF_SETSYMLIST;
    /* libmilter pre-filled *pf1 (steps without a callback): add to it. */
    *pf1 |= (f1 & MLFI_SKIP_STEPS) | MLFI_NOREPLY_STEPS;
    *pf2 = 0;
    *pf3 = 0;
    return SMFIS_CONTINUE;
}

/* mlfi_envfrom - a new message starts: forget anything of the last one. */
static sfsistat mlfi_envfrom(SMFICTX *ctx, char **argv)
{
    struct mlfi_conn *cctx = cctx_get(ctx);

    (void) argv;
    /* Out of memory: end of message sees no context and tempfails. */
    if (cctx != NULL)
        mctx_reset(&cctx->cctx_msg);
    return SMFIS_NOREPLY;
}

/*
 * mlfi_envrcpt - keep the recipient exactly as sent, ESMTP args included,
 * and the address the MTA resolved it to ({rcpt_addr}): "<@relay:carol@corp>",
 * "<carol%corp@mx>" or "<\"car\\ol\"@corp>" all reach carol@corp, and
 * only the MTA knows which forms it rewrites. The raw form stays the one
 * smfi_delrcpt names.
 * Only MAIL FROM creates the context: one made here could have missed an
 * earlier recipient of the message, and a partial list would be routed.
 */
static sfsistat mlfi_envrcpt(SMFICTX *ctx, char **argv)
{
    struct mlfi_conn *cctx = smfi_getpriv(ctx);

    if (argv == NULL || argv[0] == NULL)
        return SMFIS_NOREPLY;
    stats_add(STATS_RECIPIENTS, 1);
    /* The MTA's resolution of the address: what it will deliver to. */
    if (cctx != NULL
        && mctx_add_rcpt(&cctx->cctx_msg, argv, smfi_getsymval(ctx, MLFI_RCPT_MACRO)) < 0)
        cctx->cctx_msg.mctx_nomem = 1;
    return SMFIS_NOREPLY;
}

/*
 * mlfi_header - notice our own trace header. Without a secret its presence
 * is the whole guard; with one, it and the Message-ID it is bound to are
 * kept for end of message.
 */
static sfsistat mlfi_header(SMFICTX *ctx, char *name, char *value)
{
    struct mlfi_conn *cctx = smfi_getpriv(ctx);
    const struct config *cfg = mlfi_env.cfg;
    struct mlfi_msg *msg;
    int rc = 0;

    if (cctx == NULL || value == NULL)
        return SMFIS_NOREPLY;
    msg = &cctx->cctx_msg;
    if (mlfi_env.secret == NULL) {
        if (strcasecmp(name, cfg->trace_header) == 0 && header_value_is(value, cfg->instance))
            msg->mctx_looped = 1;
    } else if (strcasecmp(name, cfg->trace_header) == 0) {
        if (trace_is_ours(cfg->instance, value))
            rc = mctx_keep_trace(msg, value);
    } else if (strcasecmp(name, "Message-ID") == 0 && !msg->mctx_have_msgid)
        rc = mctx_keep_msgid(msg, value);
    if (rc < 0)
        msg->mctx_nomem = 1;
    return SMFIS_NOREPLY;
}

/*
 * mlfi_data - all recipients known: a message none of them is managed for
 * is accepted here (see the top of this file). Anything else, including a
 * store error, continues: end of message decides and answers errors.
 */
static sfsistat mlfi_data(SMFICTX *ctx)
{
    struct mlfi_conn *cctx = smfi_getpriv(ctx);
    struct decide_settings settings = {
        .delimiters = mlfi_env.cfg->recipient_delimiter,
        .now = time(NULL),
        .propagate_extension = mlfi_env.cfg->propagate_extension,
    };
    char err[DECIDE_ERR_MAX];

    if (cctx == NULL || cctx->cctx_msg.mctx_nomem || cctx->cctx_msg.mctx_nrcpt == 0
        || cctx_scratch(cctx) < 0
        || dbh_any_managed(mlfi_env.dbh, cctx->cctx_drcpts, cctx->cctx_msg.mctx_nrcpt,
                           &settings, err) != 0)
        return SMFIS_CONTINUE;
    stats_add(STATS_MESSAGES, 1);
    if (log_enabled(LOG_DEBUG))
        log_qid(LOG_DEBUG, smfi_getsymval(ctx, "i"), "no recipient is managed: accepted at DATA");
    mctx_reset(&cctx->cctx_msg);
    stats_tick(time(NULL), mlfi_env.cfg->stats_interval);
    return SMFIS_ACCEPT;
}

/* mlfi_eom - decide and apply, once per message. */
static sfsistat mlfi_eom(SMFICTX *ctx)
{
    struct mlfi_conn *cctx = smfi_getpriv(ctx);
    const char *qid = smfi_getsymval(ctx, "i");
    sfsistat rc;

    stats_add(STATS_MESSAGES, 1);
    /* Every message has a recipient, so RCPT ran: no context means no memory. */
    if (cctx == NULL)
        return eom_tempfail(ctx, qid, "out of memory for the connection context");
    if (cctx->cctx_msg.mctx_nomem)
        rc = eom_tempfail(ctx, qid, "out of memory keeping the recipients");
    else if (cctx->cctx_msg.mctx_looped) {
        log_qid(LOG_INFO, qid, "%s: %s present; left unchanged",
                mlfi_env.cfg->trace_header, mlfi_env.cfg->instance);
        rc = SMFIS_CONTINUE;
    } else
        rc = eom_route(ctx, cctx, qid);
    mctx_reset(&cctx->cctx_msg);
    stats_tick(time(NULL), mlfi_env.cfg->stats_interval);
    return rc;
}

/* mlfi_abort - the MTA dropped the message: forget it. */
static sfsistat mlfi_abort(SMFICTX *ctx)
{
    struct mlfi_conn *cctx = smfi_getpriv(ctx);

    if (cctx != NULL)
        mctx_reset(&cctx->cctx_msg);
    return SMFIS_CONTINUE;
}

/* mlfi_close - end of connection; there may never have been a context. */
static sfsistat mlfi_close(SMFICTX *ctx)
{
    struct mlfi_conn *cctx = smfi_getpriv(ctx);

    if (cctx != NULL) {
        cctx_free(cctx);
        smfi_setpriv(ctx, NULL);
    }
    return SMFIS_CONTINUE;
}

const struct smfiDesc mlfi_desc = {
    .xxfi_name = "coexist-milter",
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = MLFI_ACTIONS,
    .xxfi_connect = NULL,       /* the context is made at MAIL FROM */
    .xxfi_helo = NULL,
    .xxfi_envfrom = mlfi_envfrom,
    .xxfi_envrcpt = mlfi_envrcpt,
    .xxfi_header = mlfi_header,
    .xxfi_eoh = NULL,
    .xxfi_body = NULL,
    .xxfi_eom = mlfi_eom,
    .xxfi_abort = mlfi_abort,
    .xxfi_close = mlfi_close,
    .xxfi_unknown = NULL,
    .xxfi_data = mlfi_data,
    .xxfi_negotiate = mlfi_negotiate,
};
