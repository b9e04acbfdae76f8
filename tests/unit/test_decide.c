/*
 * test_decide.c - unit tests of the routing decision (policy/decide.c),
 * with an in-memory lookup table instead of the store.
 *
 * Covers: the whole decision table (mode bcc/rewrite x state unmigrated,
 * migrated, cutover passed, cutover ahead x rule user/domain/none) with the
 * exact actions and ESMTP arguments (NOTIFY=NEVER for bcc; NOTIFY kept and
 * ORCPT=rfc822;<xtext> added or kept for rewrite), the user record winning
 * over the domain rule, adds before deletes, deletes in the raw form as
 * received, duplicate aliases, no chaining, the loop guard, lookup errors
 * (nothing partial), unparseable recipients, zero and 1000 recipients,
 * decide_xtext, decide_route (what explain shows) and decide_rule_name.
 *
 * Actions are compared as one text per result, one line per action:
 * "add <alias> [args] mode/rule #rcpt_index".
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decide.h"
#include "record.h"

#define CHECK_STR(got, want) do { \
        const char *got_ = (got), *want_ = (want); \
        if (got_ == NULL || strcmp(got_, want_) != 0) \
            fail_msg("%s:\ngot  '%s',\nwant '%s'", what, got_ ? got_ : "(null)", want_); \
    } while (0)

/* 2027-01-15T08:00:00Z: after the "past" cutover, before the "future" one. */
#define NOW ((time_t) 1800000000)
#define PAST "2020-01-01T00:00:00Z"
#define FUTURE "2099-01-01T00:00:00Z"

/* ---- the in-memory lookup ------------------------------------------------ */

struct entry {
    const char *key;
    const char *text;           /* record text; NULL: the lookup fails */
};

struct table {
    const struct entry *entries;
    size_t n;
    size_t calls;
    char log[4096];             /* keys looked up, space separated */
};

static int lookup(void *ctx, const char *key, struct record *rec, char err[DECIDE_ERR_MAX])
{
    struct table *t = ctx;
    size_t len = strlen(t->log);
    char why[256];

    t->calls++;
    if (len + strlen(key) + 2 < sizeof(t->log))
        snprintf(t->log + len, sizeof(t->log) - len, "%s%s", len ? " " : "", key);
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->entries[i].key, key) != 0)
            continue;
        if (t->entries[i].text == NULL) {
            snprintf(err, DECIDE_ERR_MAX, "store: corrupt record for '%s'", key);
            return -1;
        }
        if (record_decode(key[0] == '@' ? RECORD_DOMAIN : RECORD_USER, t->entries[i].text,
                          strlen(t->entries[i].text), rec, why, sizeof(why)) < 0)
            fail_msg("test table: record for '%s' does not decode: %s", key, why);
        return 1;
    }
    return 0;
}

#define TABLE(arr) {(arr), sizeof(arr) / sizeof((arr)[0]), 0, ""}

/* format_actions - RESULT as text, one line per action. */
static const char *format_actions(const struct decide_result *result, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < result->count && used < len; i++) {
        const struct decide_action *a = &result->actions[i];

        used += (size_t) snprintf(buf + used, len - used, "%s %s [%s] %s/%s #%zu\n",
                                  a->kind == ACTION_ADD ? "add" : "delete", a->addr, a->args,
                                  record_mode_name(a->mode), decide_rule_name(a->rule),
                                  a->rcpt_index);
    }
    return buf;
}

/* decide - run decide_actions on RAWS (ARGS for every recipient, or NULL). */
static int decide(const char *const *raws, size_t n, const char *const *args,
                  struct table *t, int loop, struct decide_result *result,
                  char err[DECIDE_ERR_MAX])
{
    struct decide_rcpt *rcpts = calloc(n ? n : 1, sizeof(*rcpts));
    struct decide_settings settings = {
        .delimiters = "+", .now = NOW, .loop_detected = loop, .propagate_extension = 1,
    };
    int rc;

    assert_non_null(rcpts);
    for (size_t i = 0; i < n; i++) {
        rcpts[i].raw = raws[i];
        rcpts[i].esmtp_args = args;
    }
    err[0] = '\0';
    rc = decide_actions(n ? rcpts : NULL, n, &settings, lookup, t, result, err);
    free(rcpts);
    return rc;
}

/* expect - decide on RAWS and compare the actions and the lookups made. */
static void expect(const char *what, const struct entry *entries, size_t nentries,
                   const char *const *raws, size_t n, const char *const *args,
                   const char *want_actions, const char *want_lookups)
{
    struct table t = {entries, nentries, 0, ""};
    struct decide_result result = {0};
    char err[DECIDE_ERR_MAX], got[8192];
    int rc = decide(raws, n, args, &t, 0, &result, err);

    if (rc != 0)
        fail_msg("%s: decide_actions returned %d (%s)", what, rc, err);
    CHECK_STR(format_actions(&result, got, sizeof(got)), want_actions);
    if (want_lookups)
        CHECK_STR(t.log, want_lookups);
    decide_result_free(&result);
}

#define N(arr) (sizeof(arr) / sizeof((arr)[0]))

/* ---- the decision table ---------------------------------------------------- */

#define RAW "<Adam.Barr+News@Corp.Example>"
#define ORCPT "ORCPT=rfc822;Adam.Barr+2BNews@Corp.Example"
#define BCC(alias, rule) "add <" alias "> [NOTIFY=NEVER] bcc/" rule " #0\n"
#define REWRITE(alias, rule) \
    "add <" alias "> [NOTIFY=SUCCESS,DELAY " ORCPT "] rewrite/" rule " #0\n" \
    "delete " RAW " [] rewrite/" rule " #0\n"
/* Postfix's order (virtual(5)): the full address, without the extension, @domain. */
#define LOOKUP_USER "adam.barr+news@corp.example adam.barr@corp.example"
#define LOOKUP_BOTH LOOKUP_USER " @corp.example"

static void test_decision_table(void **state)
{
    static const char *const states[] = {
        "state=unmigrated", "state=migrated", "state=unmigrated cutover=" PAST,
        "state=unmigrated cutover=" FUTURE,
    };
    static const struct {
        enum record_mode mode;
        int state;                      /* index into states[] */
        enum decide_rule rule;
        const char *want, *lookups;
    } cases[] = {
        {MODE_BCC, 0, RULE_USER, BCC("adam@pop.example", "user"), LOOKUP_USER},
        {MODE_BCC, 1, RULE_USER, "", LOOKUP_USER},
        {MODE_BCC, 2, RULE_USER, "", LOOKUP_USER},
        {MODE_BCC, 3, RULE_USER, BCC("adam@pop.example", "user"), LOOKUP_USER},
        {MODE_BCC, 0, RULE_DOMAIN, BCC("Adam.Barr+News@pop.example", "domain"), LOOKUP_BOTH},
        {MODE_BCC, 1, RULE_DOMAIN, "", LOOKUP_BOTH},
        {MODE_BCC, 2, RULE_DOMAIN, "", LOOKUP_BOTH},
        {MODE_BCC, 3, RULE_DOMAIN, BCC("Adam.Barr+News@pop.example", "domain"), LOOKUP_BOTH},
        {MODE_BCC, 0, RULE_NONE, "", LOOKUP_BOTH},
        {MODE_BCC, 1, RULE_NONE, "", LOOKUP_BOTH},
        {MODE_BCC, 2, RULE_NONE, "", LOOKUP_BOTH},
        {MODE_BCC, 3, RULE_NONE, "", LOOKUP_BOTH},
        {MODE_REWRITE, 0, RULE_USER, REWRITE("adam+News@pop.example", "user"), LOOKUP_USER},
        {MODE_REWRITE, 1, RULE_USER, "", LOOKUP_USER},
        {MODE_REWRITE, 2, RULE_USER, "", LOOKUP_USER},
        {MODE_REWRITE, 3, RULE_USER, REWRITE("adam+News@pop.example", "user"), LOOKUP_USER},
        {MODE_REWRITE, 0, RULE_DOMAIN, REWRITE("Adam.Barr+News@pop.example", "domain"),
         LOOKUP_BOTH},
        {MODE_REWRITE, 1, RULE_DOMAIN, "", LOOKUP_BOTH},
        {MODE_REWRITE, 2, RULE_DOMAIN, "", LOOKUP_BOTH},
        {MODE_REWRITE, 3, RULE_DOMAIN, REWRITE("Adam.Barr+News@pop.example", "domain"),
         LOOKUP_BOTH},
        {MODE_REWRITE, 0, RULE_NONE, "", LOOKUP_BOTH},
        {MODE_REWRITE, 1, RULE_NONE, "", LOOKUP_BOTH},
        {MODE_REWRITE, 2, RULE_NONE, "", LOOKUP_BOTH},
        {MODE_REWRITE, 3, RULE_NONE, "", LOOKUP_BOTH},
    };
    static const char *const args[] = {"NOTIFY=SUCCESS,DELAY", NULL};
    static const char *const raws[] = {RAW};
    (void) state;

    for (size_t i = 0; i < N(cases); i++) {
        char text[256], what[128];
        struct entry entries[2] = {{"@other.example", "v=1 state=unmigrated mode=bcc "
                                                      "legacy=pop.example"}};
        size_t n = 1;

        if (cases[i].rule == RULE_USER)
            snprintf(text, sizeof(text), "v=1 %s mode=%s alias=adam@pop.example",
                     states[cases[i].state], record_mode_name(cases[i].mode));
        else
            snprintf(text, sizeof(text), "v=1 %s mode=%s legacy=pop.example",
                     states[cases[i].state], record_mode_name(cases[i].mode));
        if (cases[i].rule != RULE_NONE)
            entries[n++] = (struct entry) {cases[i].rule == RULE_USER ? "adam.barr@corp.example"
                                           : "@corp.example", text};
        snprintf(what, sizeof(what), "case %zu (%s, %s, %s)", i,
                 record_mode_name(cases[i].mode), states[cases[i].state],
                 decide_rule_name(cases[i].rule));
        expect(what, entries, n, raws, 1, args, cases[i].want, cases[i].lookups);
    }
}

static void test_user_wins_over_domain(void **state)
{
    static const struct entry entries[] = {
        {"@corp.example", "v=1 state=unmigrated mode=rewrite legacy=legacy.example"},
        {"adam.barr@corp.example", "v=1 state=unmigrated mode=bcc alias=adam@pop.example"},
        {"moved@corp.example", "v=1 state=migrated mode=bcc alias=moved@pop.example"},
    };
    static const char *const raws[] = {"<adam.barr@corp.example>", "<moved@corp.example>"};
    const char *what = "user record over domain rule";
    (void) state;

    /* A migrated user record also wins: the domain rule does not route it. */
    expect(what, entries, N(entries), raws, N(raws), NULL,
           "add <adam@pop.example> [NOTIFY=NEVER] bcc/user #0\n",
           "adam.barr@corp.example moved@corp.example");
}

/* ---- arguments of the added recipient -------------------------------------- */

static void test_esmtp_args(void **state)
{
    static const struct entry entries[] = {
        {"adam.barr@corp.example", "v=1 state=unmigrated mode=rewrite alias=adam@pop.example"},
        {"bob@corp.example", "v=1 state=unmigrated mode=bcc alias=bob@pop.example"},
    };
    static const char *const a_none[] = {NULL};
    static const char *const a_never[] = {"NOTIFY=NEVER", NULL};
    static const char *const a_lower[] = {"notify=success,failure", NULL};
    static const char *const a_orcpt[] = {"ORCPT=rfc822;someone+2Belse@x.example", NULL};
    static const char *const a_both[] = {"NOTIFY=DELAY", "ORCPT=rfc822;x@y.example", NULL};
    static const char *const a_rev[] = {"ORCPT=rfc822;x@y.example", "NOTIFY=DELAY", NULL};
    static const char *const a_like[] = {"NOTIFYX=1", "XORCPT=2", NULL};
    static const struct {
        const char *raw;
        const char *const *args;
        const char *want;
    } cases[] = {
        {"<adam.barr@corp.example>", NULL,
         "add <adam@pop.example> [ORCPT=rfc822;adam.barr@corp.example] rewrite/user #0\n"
         "delete <adam.barr@corp.example> [] rewrite/user #0\n"},
        {"<adam.barr@corp.example>", a_none,
         "add <adam@pop.example> [ORCPT=rfc822;adam.barr@corp.example] rewrite/user #0\n"
         "delete <adam.barr@corp.example> [] rewrite/user #0\n"},
        {"<adam.barr@corp.example>", a_never,
         "add <adam@pop.example> [NOTIFY=NEVER ORCPT=rfc822;adam.barr@corp.example] "
         "rewrite/user #0\ndelete <adam.barr@corp.example> [] rewrite/user #0\n"},
        {"<adam.barr@corp.example>", a_lower,
         "add <adam@pop.example> [notify=success,failure ORCPT=rfc822;adam.barr@corp.example]"
         " rewrite/user #0\ndelete <adam.barr@corp.example> [] rewrite/user #0\n"},
        {"<adam.barr@corp.example>", a_orcpt,
         "add <adam@pop.example> [ORCPT=rfc822;someone+2Belse@x.example] rewrite/user #0\n"
         "delete <adam.barr@corp.example> [] rewrite/user #0\n"},
        {"<adam.barr@corp.example>", a_both,
         "add <adam@pop.example> [NOTIFY=DELAY ORCPT=rfc822;x@y.example] rewrite/user #0\n"
         "delete <adam.barr@corp.example> [] rewrite/user #0\n"},
        {"<adam.barr@corp.example>", a_rev,
         "add <adam@pop.example> [NOTIFY=DELAY ORCPT=rfc822;x@y.example] rewrite/user #0\n"
         "delete <adam.barr@corp.example> [] rewrite/user #0\n"},
        {"<adam.barr@corp.example>", a_like,
         "add <adam@pop.example> [ORCPT=rfc822;adam.barr@corp.example] rewrite/user #0\n"
         "delete <adam.barr@corp.example> [] rewrite/user #0\n"},
        /* The sender's spelling, xtext-encoded; no brackets (a non_smtpd form). */
        {"Adam.Barr+x=y@Corp.Example", NULL,
         "add <adam+x=y@pop.example> [ORCPT=rfc822;Adam.Barr+2Bx+3Dy@Corp.Example] "
         "rewrite/user #0\ndelete Adam.Barr+x=y@Corp.Example [] rewrite/user #0\n"},
        /* bcc ignores the original's DSN arguments. */
        {"<Bob@corp.example>", a_both, "add <bob@pop.example> [NOTIFY=NEVER] bcc/user #0\n"},
        {"<Bob@corp.example>", a_orcpt, "add <bob@pop.example> [NOTIFY=NEVER] bcc/user #0\n"},
    };
    (void) state;

    for (size_t i = 0; i < N(cases); i++) {
        char what[64];
        const char *raws[] = {cases[i].raw};

        snprintf(what, sizeof(what), "case %zu (%s)", i, cases[i].raw);
        expect(what, entries, N(entries), raws, 1, cases[i].args, cases[i].want, NULL);
    }
}

/* ---- ordering and raw deletes ------------------------------------------------ */

static void test_adds_before_deletes(void **state)
{
    static const struct entry entries[] = {
        {"a@corp.example", "v=1 state=unmigrated mode=rewrite alias=a@pop.example"},
        {"b@corp.example", "v=1 state=unmigrated mode=bcc alias=b@pop.example"},
        {"@sales.example", "v=1 state=unmigrated mode=rewrite legacy=oldsales.example"},
    };
    static const char *const raws[] = {
        "<A@Corp.Example>", "<b@corp.example>", "<C.D@Sales.Example>", "<e@unknown.example>",
    };
    const char *what = "adds before deletes";
    (void) state;

    expect(what, entries, N(entries), raws, N(raws), NULL,
           "add <a@pop.example> [ORCPT=rfc822;A@Corp.Example] rewrite/user #0\n"
           "add <b@pop.example> [NOTIFY=NEVER] bcc/user #1\n"
           "add <C.D@oldsales.example> [ORCPT=rfc822;C.D@Sales.Example] rewrite/domain #2\n"
           "delete <A@Corp.Example> [] rewrite/user #0\n"
           "delete <C.D@Sales.Example> [] rewrite/domain #2\n",
           "a@corp.example b@corp.example c.d@sales.example @sales.example "
           "e@unknown.example @unknown.example");
}

static void test_delete_uses_raw_form(void **state)
{
    static const struct entry entries[] = {
        {"adam.barr@corp.example", "v=1 state=unmigrated mode=rewrite alias=adam@pop.example"},
    };
    static const char *const raws[] = {
        "<Adam.Barr+X@Corp.Example>", "adam.barr@corp.example", " <ADAM.BARR@corp.example> ",
    };
    static const char *const deletes[] = {
        "delete <Adam.Barr+X@Corp.Example> [] rewrite/user #0\n",
        "delete adam.barr@corp.example [] rewrite/user #0\n",
        "delete  <ADAM.BARR@corp.example>  [] rewrite/user #0\n",
    };
    (void) state;

    for (size_t i = 0; i < N(raws); i++) {
        struct table t = TABLE(entries);
        struct decide_result result = {0};
        char err[DECIDE_ERR_MAX], got[1024], what[64];
        const char *one[] = {raws[i]};

        snprintf(what, sizeof(what), "case %zu (%s)", i, raws[i]);
        assert_int_equal(decide(one, 1, NULL, &t, 0, &result, err), 0);
        assert_int_equal(result.count, 2);
        assert_int_equal(result.actions[1].kind, ACTION_DELETE);
        CHECK_STR(result.actions[1].addr, raws[i]);
        result.actions[0] = result.actions[1];
        result.count = 1;
        CHECK_STR(format_actions(&result, got, sizeof(got)), deletes[i]);
        decide_result_free(&result);
    }
}

/* ---- duplicates ------------------------------------------------------------- */

static void test_duplicates(void **state)
{
    static const struct entry bcc[] = {
        {"adam.barr@corp.example", "v=1 state=unmigrated mode=bcc alias=adam@pop.example"},
        {"a@corp.example", "v=1 state=unmigrated mode=bcc alias=shared@pop.example"},
        {"b@corp.example", "v=1 state=unmigrated mode=bcc alias=shared@pop.example"},
        {"x1@corp.example", "v=1 state=unmigrated mode=bcc alias=x@pop.example"},
        {"x2@corp.example", "v=1 state=unmigrated mode=bcc alias=x@pop.example.net"},
    };
    static const struct entry rewrite[] = {
        {"adam.barr@corp.example", "v=1 state=unmigrated mode=rewrite alias=adam@pop.example"},
        {"a@corp.example", "v=1 state=unmigrated mode=rewrite alias=shared@pop.example"},
        {"b@corp.example", "v=1 state=unmigrated mode=rewrite alias=shared@pop.example"},
        {"x1@corp.example", "v=1 state=unmigrated mode=rewrite alias=x@pop.example"},
        {"x2@corp.example", "v=1 state=unmigrated mode=rewrite alias=x@pop.example.net"},
    };
    static const char *const alias_present[] = {"<adam.barr@corp.example>",
                                                "<Adam@POP.Example>"};
    /* adam+old@pop.example is another address (Postfix's duplicate filter
     * compares whole addresses): the alias is still added. */
    static const char *const alias_tagged[] = {"<adam.barr@corp.example>",
                                               "<adam+old@pop.example>"};
    static const char *const alias_first[] = {"<ADAM@pop.example>", "<adam.barr@corp.example>"};
    static const char *const same_alias[] = {"<a@corp.example>", "<b@corp.example>"};
    static const char *const user_tag[] = {"<adam.barr@corp.example>",
                                           "<Adam.Barr+Tag@corp.example>"};
    static const char *const prefix_alias[] = {"<x1@corp.example>", "<x2@corp.example>"};
    static const struct {
        const char *name;
        const char *const *raws;
        size_t n;
        const char *want_bcc, *want_rewrite;
    } cases[] = {
        {"alias already a recipient (other case)", alias_present, 2, "",
         "delete <adam.barr@corp.example> [] rewrite/user #0\n"},
        {"the alias with an extension is another recipient", alias_tagged, 2,
         "add <adam@pop.example> [NOTIFY=NEVER] bcc/user #0\n",
         "add <adam@pop.example> [ORCPT=rfc822;adam.barr@corp.example] rewrite/user #0\n"
         "delete <adam.barr@corp.example> [] rewrite/user #0\n"},
        {"alias already a recipient, listed first", alias_first, 2, "",
         "delete <adam.barr@corp.example> [] rewrite/user #1\n"},
        {"two recipients with the same alias", same_alias, 2,
         "add <shared@pop.example> [NOTIFY=NEVER] bcc/user #0\n",
         "add <shared@pop.example> [ORCPT=rfc822;a@corp.example] rewrite/user #0\n"
         "delete <a@corp.example> [] rewrite/user #0\n"
         "delete <b@corp.example> [] rewrite/user #1\n"},
        /* bcc ignores the extension (recipient_bcc_maps): one copy; a
         * rewrite carries it (virtual(5)): two legacy addresses */
        {"user and user+tag", user_tag, 2,
         "add <adam@pop.example> [NOTIFY=NEVER] bcc/user #0\n",
         "add <adam@pop.example> [ORCPT=rfc822;adam.barr@corp.example] rewrite/user #0\n"
         "add <adam+Tag@pop.example> [ORCPT=rfc822;Adam.Barr+2BTag@corp.example] "
         "rewrite/user #1\n"
         "delete <adam.barr@corp.example> [] rewrite/user #0\n"
         "delete <Adam.Barr+Tag@corp.example> [] rewrite/user #1\n"},
        {"an alias that is a prefix of another is not a duplicate", prefix_alias, 2,
         "add <x@pop.example> [NOTIFY=NEVER] bcc/user #0\n"
         "add <x@pop.example.net> [NOTIFY=NEVER] bcc/user #1\n",
         "add <x@pop.example> [ORCPT=rfc822;x1@corp.example] rewrite/user #0\n"
         "add <x@pop.example.net> [ORCPT=rfc822;x2@corp.example] rewrite/user #1\n"
         "delete <x1@corp.example> [] rewrite/user #0\n"
         "delete <x2@corp.example> [] rewrite/user #1\n"},
    };
    (void) state;

    for (size_t i = 0; i < N(cases); i++) {
        char what[128];

        snprintf(what, sizeof(what), "%s, bcc", cases[i].name);
        expect(what, bcc, N(bcc), cases[i].raws, cases[i].n, NULL, cases[i].want_bcc, NULL);
        snprintf(what, sizeof(what), "%s, rewrite", cases[i].name);
        expect(what, rewrite, N(rewrite), cases[i].raws, cases[i].n, NULL,
               cases[i].want_rewrite, NULL);
    }
}

/* ---- no chaining, loop guard ------------------------------------------------ */

static void test_no_chaining(void **state)
{
    /* The alias is itself managed (a hand-made store): it is not looked up. */
    static const struct entry entries[] = {
        {"adam.barr@corp.example", "v=1 state=unmigrated mode=rewrite alias=adam@pop.example"},
        {"adam@pop.example", "v=1 state=unmigrated mode=rewrite alias=zz@elsewhere.example"},
        {"@pop.example", "v=1 state=unmigrated mode=bcc legacy=other.example"},
    };
    static const char *const raws[] = {"<adam.barr@corp.example>"};
    const char *what = "no chaining";
    (void) state;

    expect(what, entries, N(entries), raws, 1, NULL,
           "add <adam@pop.example> [ORCPT=rfc822;adam.barr@corp.example] rewrite/user #0\n"
           "delete <adam.barr@corp.example> [] rewrite/user #0\n",
           "adam.barr@corp.example");
}

static void test_loop_detected(void **state)
{
    static const struct entry entries[] = {
        {"adam.barr@corp.example", "v=1 state=unmigrated mode=rewrite alias=adam@pop.example"},
    };
    static const char *const raws[] = {"<adam.barr@corp.example>"};
    struct table t = TABLE(entries);
    struct decide_result result = {0};
    char err[DECIDE_ERR_MAX];
    (void) state;

    /* A result with actions from an earlier message is emptied. */
    assert_int_equal(decide(raws, 1, NULL, &t, 0, &result, err), 0);
    assert_int_equal(result.count, 2);
    t.calls = 0;
    assert_int_equal(decide(raws, 1, NULL, &t, 1, &result, err), 0);
    assert_int_equal(result.count, 0);
    assert_int_equal(t.calls, 0);
    decide_result_free(&result);
}

/* already_seen - an already_routed callback: KEY is in the NULL-ended list CTX. */
static int already_seen(const void *ctx, const char *key)
{
    for (const char *const *k = ctx; *k != NULL; k++)
        if (strcmp(*k, key) == 0)
            return 1;
    return 0;
}

static void test_already_routed(void **state)
{
    static const struct entry entries[] = {
        {"adam.barr@corp.example", "v=1 state=unmigrated mode=bcc alias=adam@pop.example"},
        {"bob@corp.example", "v=1 state=unmigrated mode=rewrite alias=bob@pop.example"},
        {"carol@corp.example", "v=1 state=unmigrated mode=bcc alias=carol@pop.example"},
    };
    static const char *const raws[] = {"<Adam.Barr@corp.example>", "<bob@corp.example>",
                                       "<carol@corp.example>"};
    static const char *const seen[] = {"adam.barr@corp.example", "bob@corp.example", NULL};
    struct decide_rcpt rcpts[3];
    struct decide_route routes[3];
    struct decide_settings settings = {.delimiters = "+", .now = NOW, .already_routed = already_seen,
                                       .already_routed_ctx = seen};
    struct table t = TABLE(entries);
    struct decide_result result = {0};
    char err[DECIDE_ERR_MAX], got[1024];
    const char *what = "already routed: adam and bob skipped, carol routed";
    (void) state;

    for (size_t i = 0; i < 3; i++)
        rcpts[i] = (struct decide_rcpt) {raws[i], NULL, NULL};
    assert_int_equal(decide_actions_routes(rcpts, 3, &settings, lookup, &t, &result,
                                           routes, err), 0);
    /* The key asked about is the normalized one, not the raw form. */
    CHECK_STR(format_actions(&result, got, sizeof(got)),
              "add <carol@pop.example> [NOTIFY=NEVER] bcc/user #2\n");
    assert_int_equal(routes[0].routed, 0);
    assert_int_equal(routes[1].routed, 0);
    assert_int_equal(routes[2].routed, 1);
    /* The check comes after the lookup: each recipient looked up once. */
    CHECK_STR(t.log, "adam.barr@corp.example bob@corp.example carol@corp.example");
    /* NULL callback: everyone routed. */
    settings.already_routed = NULL;
    assert_int_equal(decide_actions_routes(rcpts, 3, &settings, lookup, &t, &result,
                                           routes, err), 0);
    assert_int_equal(result.count, 4);
    decide_result_free(&result);
}

/* ---- errors and odd recipients ----------------------------------------------- */

static void test_lookup_error_no_partial(void **state)
{
    static const struct entry entries[] = {
        {"adam.barr@corp.example", "v=1 state=unmigrated mode=rewrite alias=adam@pop.example"},
        {"broken@corp.example", NULL},
        {"@broken.example", NULL},
    };
    static const char *const after[] = {"<adam.barr@corp.example>", "<broken@corp.example>"};
    static const char *const before[] = {"<broken@corp.example>", "<adam.barr@corp.example>"};
    static const char *const domain[] = {"<adam.barr@corp.example>", "<x@Broken.Example>"};
    static const struct {
        const char *const *raws;
        const char *err;
    } cases[] = {
        {after, "store: corrupt record for 'broken@corp.example'"},
        {before, "store: corrupt record for 'broken@corp.example'"},
        {domain, "store: corrupt record for '@broken.example'"},
    };
    (void) state;

    for (size_t i = 0; i < N(cases); i++) {
        struct table t = TABLE(entries);
        struct decide_result result = {0};
        char err[DECIDE_ERR_MAX], what[32];
        static const char *const ok[] = {"<adam.barr@corp.example>"};

        snprintf(what, sizeof(what), "case %zu", i);
        /* Fill the result first: an error must leave it empty, not stale. */
        assert_int_equal(decide(ok, 1, NULL, &t, 0, &result, err), 0);
        assert_int_equal(result.count, 2);
        if (decide(cases[i].raws, 2, NULL, &t, 0, &result, err) != -1)
            fail_msg("%s: decide_actions did not fail", what);
        assert_int_equal(result.count, 0);
        CHECK_STR(err, cases[i].err);
        decide_result_free(&result);
    }
}

static void test_unparseable_left_alone(void **state)
{
    static const struct entry entries[] = {
        {"@corp.example", "v=1 state=unmigrated mode=rewrite legacy=pop.example"},
    };
    static const char *const raws[] = {
        "<>", "<no-at-sign>", "<a b@corp.example>", "<adam.barr@corp.example",
        "adam.barr@corp.example>", "<adam.barr@[10.0.0.1]>", "", "<\001x@corp.example>",
        NULL, "<bob@corp.example>",
    };
    const char *what = "unparseable recipients";
    (void) state;

    expect(what, entries, N(entries), raws, N(raws), NULL,
           "add <bob@pop.example> [ORCPT=rfc822;bob@corp.example] rewrite/domain #9\n"
           "delete <bob@corp.example> [] rewrite/domain #9\n",
           "bob@corp.example @corp.example");
}

static void test_zero_recipients(void **state)
{
    static const struct entry entries[] = {
        {"@corp.example", "v=1 state=unmigrated mode=bcc legacy=pop.example"},
    };
    struct table t = TABLE(entries);
    struct decide_result result = {0};
    char err[DECIDE_ERR_MAX];
    (void) state;

    assert_int_equal(decide(NULL, 0, NULL, &t, 0, &result, err), 0);
    assert_int_equal(result.count, 0);
    assert_int_equal(t.calls, 0);
    decide_result_free(&result);
}

static void test_many_recipients(void **state)
{
    static const struct entry bcc[] = {
        {"@corp.example", "v=1 state=unmigrated mode=bcc legacy=pop.example"},
    };
    static const struct entry rewrite[] = {
        {"@corp.example", "v=1 state=unmigrated mode=rewrite legacy=pop.example"},
    };
    enum { MANY = 1000 };
    static char names[MANY][32];
    const char *raws[MANY];
    struct decide_result result = {0};
    char err[DECIDE_ERR_MAX], want[64];
    (void) state;

    for (size_t i = 0; i < MANY; i++) {
        snprintf(names[i], sizeof(names[i]), "<U%04zu@corp.example>", i);
        raws[i] = names[i];
    }
    for (int pass = 0; pass < 2; pass++) {
        struct table t = {pass ? rewrite : bcc, 1, 0, ""};
        size_t n = pass ? 2 * MANY : MANY;

        if (decide(raws, MANY, NULL, &t, 0, &result, err) != 0)
            fail_msg("pass %d: %s", pass, err);
        assert_int_equal(result.count, n);
        assert_int_equal(t.calls, 2 * MANY);
        for (size_t i = 0; i < n; i++) {
            const struct decide_action *a = &result.actions[i];
            size_t r = i % MANY;
            const char *what = names[r];

            snprintf(want, sizeof(want), "<U%04zu@pop.example>", r);   /* the spelling is kept */
            if (i < MANY) {
                assert_int_equal(a->kind, ACTION_ADD);
                CHECK_STR(a->addr, want);
            } else {
                assert_int_equal(a->kind, ACTION_DELETE);
                CHECK_STR(a->addr, names[r]);
            }
            assert_int_equal(a->rcpt_index, r);
        }
    }
    /* The grown result is reused for a small message. */
    {
        struct table t = {bcc, 1, 0, ""};
        const char *what = "reuse after 1000";
        char got[256];

        assert_int_equal(decide(raws, 1, NULL, &t, 0, &result, err), 0);
        CHECK_STR(format_actions(&result, got, sizeof(got)),
                  "add <U0000@pop.example> [NOTIFY=NEVER] bcc/domain #0\n");
    }
    decide_result_free(&result);
    assert_null(result.actions);
    assert_int_equal(result.count, 0);
}

/* ---- decide_route: what explain shows ------------------------------------------ */

static void test_route(void **state)
{
    static const struct entry entries[] = {
        {"adam.barr@corp.example", "v=1 state=unmigrated mode=bcc alias=adam@pop.example"},
        {"@corp.example", "v=1 state=unmigrated mode=rewrite legacy=pop.example"},
        {"moved@corp.example", "v=1 state=migrated mode=bcc alias=moved@pop.example"},
        {"later@corp.example", "v=1 state=unmigrated mode=bcc alias=later@pop.example "
                               "cutover=" PAST},
        {"soon@corp.example", "v=1 state=unmigrated mode=rewrite alias=soon@pop.example "
                              "cutover=" FUTURE},
        {"broken@corp.example", NULL},
    };
    static const struct {
        const char *raw, *delims;
        int lenient, rc;
        enum decide_rule rule;
        int routed;
        enum record_state effective;
        enum record_mode mode;
        const char *key, *alias, *err;
    } cases[] = {
        {"<Adam.Barr+x@Corp.Example>", "+", 0, 0, RULE_USER, 1, STATE_UNMIGRATED, MODE_BCC,
         "adam.barr+x@corp.example", "adam@pop.example", ""},
        {"zed@corp.example", "+", 0, 0, RULE_DOMAIN, 1, STATE_UNMIGRATED, MODE_REWRITE,
         "zed@corp.example", "zed@pop.example", ""},
        {"nobody@other.example", "+", 0, 0, RULE_NONE, 0, STATE_UNMIGRATED, MODE_BCC,
         "nobody@other.example", "", ""},
        {"moved@corp.example", "+", 0, 0, RULE_USER, 0, STATE_MIGRATED, MODE_BCC,
         "moved@corp.example", "moved@pop.example", ""},
        {"later@corp.example", "+", 0, 0, RULE_USER, 0, STATE_MIGRATED, MODE_BCC,
         "later@corp.example", "later@pop.example", ""},
        {"soon@corp.example", "+", 0, 0, RULE_USER, 1, STATE_UNMIGRATED, MODE_REWRITE,
         "soon@corp.example", "soon@pop.example", ""},
        {"adam.barr-x@corp.example", "+-", 0, 0, RULE_USER, 1, STATE_UNMIGRATED, MODE_BCC,
         "adam.barr-x@corp.example", "adam@pop.example", ""},
        {"adam.barr-x@corp.example", "+", 0, 0, RULE_DOMAIN, 1, STATE_UNMIGRATED, MODE_REWRITE,
         "adam.barr-x@corp.example", "adam.barr-x@pop.example", ""},
        {"adam.barr+x@corp.example", "", 0, 0, RULE_DOMAIN, 1, STATE_UNMIGRATED, MODE_REWRITE,
         "adam.barr+x@corp.example", "adam.barr+x@pop.example", ""},
        {"bad address", "+", 0, -1, RULE_NONE, 0, STATE_UNMIGRATED, MODE_BCC, "", "",
         "bad address 'bad address': missing @domain"},
        {"<a b@corp.example>", "+", 0, -1, RULE_NONE, 0, STATE_UNMIGRATED, MODE_BCC, "", "",
         "bad address '<a b@corp.example>': space in address"},
        {"<a b@corp.example>", "+", 1, 0, RULE_NONE, 0, STATE_UNMIGRATED, MODE_BCC, "", "", ""},
        {"broken@corp.example", "+", 0, -1, RULE_NONE, 0, STATE_UNMIGRATED, MODE_BCC,
         "broken@corp.example", "", "store: corrupt record for 'broken@corp.example'"},
    };
    (void) state;

    for (size_t i = 0; i < N(cases); i++) {
        struct decide_settings settings = {
            .delimiters = cases[i].delims, .now = NOW, .propagate_extension = 1,
        };
        struct table t = TABLE(entries);
        struct decide_route route;
        char err[DECIDE_ERR_MAX] = "", what[96];
        struct decide_rcpt rcpt = {.raw = cases[i].raw};
        int rc = decide_route(&rcpt, &settings, lookup, &t, cases[i].lenient, &route,
                              err);

        snprintf(what, sizeof(what), "case %zu (%s)", i, cases[i].raw);
        if (rc != cases[i].rc)
            fail_msg("%s: rc got %d, want %d (%s)", what, rc, cases[i].rc, err);
        CHECK_STR(err, cases[i].err);
        if (rc < 0)
            continue;
        if (route.rule != cases[i].rule)
            fail_msg("%s: rule got '%s', want '%s'", what, decide_rule_name(route.rule),
                     decide_rule_name(cases[i].rule));
        assert_int_equal(route.routed, cases[i].routed);
        if (route.rule != RULE_NONE) {
            CHECK_STR(record_state_name(route.effective), record_state_name(cases[i].effective));
            CHECK_STR(record_mode_name(route.mode), record_mode_name(cases[i].mode));
        }
        CHECK_STR(route.key, cases[i].key);
        CHECK_STR(route.alias, cases[i].alias);
    }
}

/* ---- Postfix's lookup order, delimiters, the MTA's resolution ------------- */

/* route_one - decide_route of ADDR with DELIMS and PROPAGATE over ENTRIES. */
static void route_one(const struct entry *entries, size_t n, const char *addr,
                      const char *delims, int propagate, struct decide_route *route,
                      struct table *t)
{
    struct decide_settings settings = {
        .delimiters = delims, .now = NOW, .propagate_extension = propagate,
    };
    struct decide_rcpt rcpt = {.raw = addr};
    char err[DECIDE_ERR_MAX] = "";

    *t = (struct table) {entries, n, 0, ""};
    if (decide_route(&rcpt, &settings, lookup, t, 0, route, err) < 0)
        fail_msg("decide_route(%s): %s", addr, err);
}

/*
 * test_lookup_order - issue 10: with recipient_delimiter = +- the key
 * "jean-luc" is its own person, "jean" another; the full address is looked
 * up first, then without the extension, then @domain, as virtual(5) says.
 */
static void test_lookup_order(void **state)
{
    static const struct entry entries[] = {
        {"jean-luc@corp.example", "v=1 state=unmigrated mode=bcc alias=jl@pop.example"},
        {"jean@corp.example", "v=1 state=unmigrated mode=rewrite alias=jean@pop.example"},
        {"adam+special@corp.example", "v=1 state=unmigrated mode=bcc alias=sp@pop.example"},
        {"adam@corp.example", "v=1 state=unmigrated mode=rewrite alias=adam@pop.example"},
        {"owner-list@corp.example", "v=1 state=unmigrated mode=bcc alias=ol@pop.example"},
        {"@corp.example", "v=1 state=unmigrated mode=rewrite legacy=pop.example"},
    };
    static const struct {
        const char *addr, *delims;
        int propagate;
        const char *match, *alias, *lookups;
    } cases[] = {
        {"jean-luc@corp.example", "+-", 1, "jean-luc@corp.example", "jl@pop.example",
         "jean-luc@corp.example"},
        {"jean@corp.example", "+-", 1, "jean@corp.example", "jean@pop.example",
         "jean@corp.example"},
        /* jean-marie has no record: Postfix finds jean (extension "-marie") */
        {"jean-marie@corp.example", "+-", 1, "jean@corp.example", "jean-marie@pop.example",
         "jean-marie@corp.example jean@corp.example"},
        {"jean-marie@corp.example", "+-", 0, "jean@corp.example", "jean@pop.example",
         "jean-marie@corp.example jean@corp.example"},
        /* with "+" only, "-" is no delimiter: the domain rule, local part whole */
        {"jean-marie@corp.example", "+", 1, "@corp.example", "jean-marie@pop.example",
         "jean-marie@corp.example @corp.example"},
        /* the extension as the sender spelled it, as Postfix carries it */
        {"Jean-Luc+x@Corp.Example", "+-", 1, "jean@corp.example", "jean-Luc+x@pop.example",
         "jean-luc+x@corp.example jean@corp.example"},
        /* the full address wins over the bare one */
        {"adam+special@corp.example", "+", 1, "adam+special@corp.example", "sp@pop.example",
         "adam+special@corp.example"},
        {"adam+other@corp.example", "+", 1, "adam@corp.example", "adam+other@pop.example",
         "adam+other@corp.example adam@corp.example"},
        /* owner-* is never split when "-" is a delimiter */
        {"owner-list@corp.example", "+-", 1, "owner-list@corp.example", "ol@pop.example",
         "owner-list@corp.example"},
        {"owner-other@corp.example", "+-", 1, "@corp.example", "owner-other@pop.example",
         "owner-other@corp.example @corp.example"},
        {"zed-x+y@corp.example", "-+", 1, "@corp.example", "zed-x+y@pop.example",
         "zed-x+y@corp.example zed@corp.example @corp.example"},
    };
    (void) state;

    for (size_t i = 0; i < N(cases); i++) {
        struct decide_route route;
        struct table t;
        char what[160];

        snprintf(what, sizeof(what), "case %zu (%s, '%s')", i, cases[i].addr, cases[i].delims);
        route_one(entries, N(entries), cases[i].addr, cases[i].delims, cases[i].propagate,
                  &route, &t);
        CHECK_STR(route.match, cases[i].match);
        CHECK_STR(route.alias, cases[i].alias);
        CHECK_STR(t.log, cases[i].lookups);
    }
}

/* test_resolved_address - the MTA's {rcpt_addr} is looked up, the raw form deleted. */
static void test_resolved_address(void **state)
{
    static const struct entry entries[] = {
        {"carol@corp.example", "v=1 state=unmigrated mode=rewrite alias=carol@pop.example"},
    };
    static const struct {
        const char *raw, *resolved, *want;
    } cases[] = {
        {"<carol%corp.example@mx.local>", "carol@corp.example",
         "add <carol@pop.example> [ORCPT=rfc822;carol%corp.example@mx.local] rewrite/user #0\n"
         "delete <carol%corp.example@mx.local> [] rewrite/user #0\n"},
        {"<\"carol@corp.example\"@mx.local>", "carol@corp.example",
         "add <carol@pop.example> [ORCPT=rfc822;\"carol@corp.example\"@mx.local] "
         "rewrite/user #0\ndelete <\"carol@corp.example\"@mx.local> [] rewrite/user #0\n"},
        /* a source route: deleted as sent (Sendmail) and without it (Postfix) */
        {"<@relay.example:carol@corp.example>", "carol@corp.example",
         "add <carol@pop.example> [ORCPT=rfc822;@relay.example:carol@corp.example] "
         "rewrite/user #0\n"
         "delete <@relay.example:carol@corp.example> [] rewrite/user #0\n"
         "delete <carol@corp.example> [] rewrite/user #0\n"},
        /* Sendmail's local mailer: {rcpt_addr} without a domain: the raw form */
        {"<carol@corp.example>", "carol",
         "add <carol@pop.example> [ORCPT=rfc822;carol@corp.example] rewrite/user #0\n"
         "delete <carol@corp.example> [] rewrite/user #0\n"},
        /* what the MTA resolved decides, even against the raw text */
        {"<carol@corp.example>", "someone@else.example", ""},
    };
    (void) state;

    for (size_t i = 0; i < N(cases); i++) {
        struct decide_settings settings = {.delimiters = "+", .now = NOW};
        struct decide_rcpt rcpt = {cases[i].raw, NULL, cases[i].resolved};
        struct table t = TABLE(entries);
        struct decide_result result = {0};
        char err[DECIDE_ERR_MAX], got[2048], what[160];

        snprintf(what, sizeof(what), "case %zu (%s as %s)", i, cases[i].raw,
                 cases[i].resolved);
        if (decide_actions(&rcpt, 1, &settings, lookup, &t, &result, err) < 0)
            fail_msg("%s: %s", what, err);
        CHECK_STR(format_actions(&result, got, sizeof(got)), cases[i].want);
        decide_result_free(&result);
    }
}

/* test_unresolved_reported - a recipient nobody can resolve says why. */
static void test_unresolved_reported(void **state)
{
    struct decide_settings settings = {.delimiters = "+", .now = NOW};
    struct decide_rcpt rcpts[] = {{"<\"carol@corp.example\"@mx.local>", NULL, NULL},
                                  {"<ok@corp.example>", NULL, NULL}};
    struct decide_route routes[2];
    struct decide_result result = {0};
    struct table t = {NULL, 0, 0, ""};
    char err[DECIDE_ERR_MAX];

    (void) state;
    assert_int_equal(decide_actions_routes(rcpts, 2, &settings, lookup, &t, &result, routes,
                                           err), 0);
    assert_non_null(routes[0].unresolved);
    assert_non_null(strstr(routes[0].unresolved, "invalid character"));
    assert_null(routes[1].unresolved);
    decide_result_free(&result);
}

/* ---- reverse routing (DESIGN section 9) ------------------------------------ */

/* owner - the reverse index of a test table: entry "=ALIAS" -> "k1,k2". */
static int owner(void *ctx, const char *alias, char out[ADDR_BUFSIZE],
                 char err[DECIDE_ERR_MAX])
{
    struct table *t = ctx;
    size_t len = strlen(t->log);

    if (len + strlen(alias) + 3 < sizeof(t->log))
        snprintf(t->log + len, sizeof(t->log) - len, "%s=%s", len ? " " : "", alias);
    for (size_t i = 0; i < t->n; i++) {
        const char *comma;
        int n = 1;

        if (t->entries[i].key[0] != '=' || strcmp(t->entries[i].key + 1, alias) != 0)
            continue;
        if (t->entries[i].text == NULL) {
            snprintf(err, DECIDE_ERR_MAX, "store: bad index entry for '%s'", alias);
            return -1;
        }
        comma = strchr(t->entries[i].text, ',');
        snprintf(out, ADDR_BUFSIZE, "%.*s",
                 (int) (comma ? (size_t) (comma - t->entries[i].text)
                        : strlen(t->entries[i].text)), t->entries[i].text);
        for (const char *p = t->entries[i].text; *p; p++)
            n += *p == ',';
        return n;
    }
    return 0;
}

/* reverse_decide - decide_actions with the reverse index on RAWS. */
static void reverse_expect(const char *what, const struct entry *entries, size_t n,
                           const char *const *raws, size_t nraw, const char *const *args,
                           const char *want, const char *want_lookups)
{
    struct decide_settings settings = {.delimiters = "+", .now = NOW, .owner = owner};
    struct decide_rcpt rcpts[8];
    struct table t = {entries, n, 0, ""};
    struct decide_result result = {0};
    char err[DECIDE_ERR_MAX], got[4096];

    for (size_t i = 0; i < nraw; i++)
        rcpts[i] = (struct decide_rcpt) {raws[i], args, NULL};
    if (decide_actions(rcpts, nraw, &settings, lookup, &t, &result, err) < 0)
        fail_msg("%s: %s", what, err);
    CHECK_STR(format_actions(&result, got, sizeof(got)), want);
    if (want_lookups)
        CHECK_STR(t.log, want_lookups);
    decide_result_free(&result);
}

/*
 * test_reverse_table - state x reverse flag x rule (user, domain) x cutover:
 * only a migrated owner with reverse = yes gets mail to the legacy address
 * back, with the original's NOTIFY and ORCPT naming the legacy address.
 */
static void test_reverse_table(void **state)
{
    static const char *const states[] = {
        "state=unmigrated", "state=migrated", "state=unmigrated cutover=" PAST,
        "state=unmigrated cutover=" FUTURE,
    };
    static const int migrated[] = {0, 1, 1, 0};
    static const char *const args[] = {"NOTIFY=SUCCESS", NULL};
    static const char *const user_raw[] = {"<Adam@POP.example>"};
    static const char *const dom_raw[] = {"<Jane.Doe@Pop2.Example>"};
    (void) state;

    for (int rule = 0; rule < 2; rule++) {
        for (size_t st = 0; st < N(states); st++) {
            for (int rev = 0; rev < 2; rev++) {
                char text[256], want[512], what[128];
                struct entry entries[3];

                if (rule == 0) {
                    snprintf(text, sizeof(text), "v=1 %s mode=bcc alias=adam@pop.example%s",
                             states[st], rev ? " reverse=yes" : "");
                    entries[0] = (struct entry) {"adam.barr@corp.example", text};
                    entries[1] = (struct entry) {"=adam@pop.example", "adam.barr@corp.example"};
                } else {
                    snprintf(text, sizeof(text), "v=1 %s mode=bcc legacy=pop2.example%s",
                             states[st], rev ? " reverse=yes" : "");
                    entries[0] = (struct entry) {"@corp2.example", text};
                    entries[1] = (struct entry) {"=@pop2.example", "@corp2.example"};
                }
                entries[2] = (struct entry) {"@other.example", "v=1 state=migrated mode=bcc "
                                             "legacy=x.example reverse=yes"};
                want[0] = '\0';
                if (migrated[st] && rev && rule == 0)
                    snprintf(want, sizeof(want), "add <adam.barr@corp.example> [NOTIFY=SUCCESS "
                             "ORCPT=rfc822;Adam@POP.example] rewrite/user #0\n"
                             "delete <Adam@POP.example> [] rewrite/user #0\n");
                else if (migrated[st] && rev)
                    snprintf(want, sizeof(want), "add <Jane.Doe@corp2.example> "
                             "[NOTIFY=SUCCESS ORCPT=rfc822;Jane.Doe@Pop2.Example] "
                             "rewrite/domain #0\n"
                             "delete <Jane.Doe@Pop2.Example> [] rewrite/domain #0\n");
                snprintf(what, sizeof(what), "%s, %s, reverse %s", rule ? "domain" : "user",
                         states[st], rev ? "on" : "off");
                reverse_expect(what, entries, N(entries), rule ? dom_raw : user_raw, 1, args,
                               want, NULL);
            }
        }
    }
}

/* test_reverse_cases - lookups, duplicates, shared aliases, own records, errors. */
static void test_reverse_cases(void **state)
{
    static const struct entry entries[] = {
        {"adam.barr@corp.example", "v=1 state=migrated mode=rewrite alias=adam@pop.example "
                                   "reverse=yes"},
        {"=adam@pop.example", "adam.barr@corp.example"},
        /* the CLI refuses reverse on a shared alias; the decision too */
        {"s1@corp.example", "v=1 state=migrated mode=bcc alias=shared@pop.example "
                            "reverse=yes"},
        {"s2@corp.example", "v=1 state=migrated mode=bcc alias=shared@pop.example"},
        {"=shared@pop.example", "s1@corp.example,s2@corp.example"},
        {"@corp2.example", "v=1 state=migrated mode=rewrite legacy=pop2.example reverse=yes"},
        {"=@pop2.example", "@corp2.example"},
        {"boss@corp2.example", "v=1 state=migrated mode=bcc alias=chief@pop2.example"},
        {"=chief@pop2.example", "boss@corp2.example"},
        {"=stale@pop.example", "gone@corp.example"},
    };
    static const char *const plain[] = {"<adam@pop.example>"};
    static const char *const dup[] = {"<adam@pop.example>", "<Adam.Barr@corp.example>"};
    static const char *const shared[] = {"<shared@pop.example>"};
    static const char *const own[] = {"<boss@pop2.example>"};
    static const char *const bosses[] = {"<chief@pop2.example>"};
    static const char *const stale[] = {"<stale@pop.example>"};
    (void) state;

    /* the forward lookups come first, then the index: alias, then legacy domain */
    reverse_expect("user", entries, N(entries), plain, 1, NULL,
                   "add <adam.barr@corp.example> [ORCPT=rfc822;adam@pop.example] "
                   "rewrite/user #0\ndelete <adam@pop.example> [] rewrite/user #0\n",
                   "adam@pop.example @pop.example =adam@pop.example adam.barr@corp.example");
    /* the new address already a recipient: no add, still the delete */
    reverse_expect("new address already a recipient", entries, N(entries), dup, 2, NULL,
                   "delete <adam@pop.example> [] rewrite/user #0\n", NULL);
    /* an alias with two owners is sent back to neither */
    reverse_expect("shared alias", entries, N(entries), shared, 1, NULL, "", NULL);
    /* boss@corp2 has a record of its own: boss@pop2 is not his legacy mailbox */
    reverse_expect("domain rule, the new address has its own record", entries, N(entries),
                   own, 1, NULL, "", NULL);
    /* his own alias without reverse: left alone, the domain rule does not step in */
    reverse_expect("user alias without reverse under a reverse domain", entries,
                   N(entries), bosses, 1, NULL, "", NULL);
    {
        struct decide_settings settings = {.delimiters = "+", .now = NOW, .owner = owner};
        struct decide_rcpt rcpt = {stale[0], NULL, NULL};
        struct table t = TABLE(entries);
        struct decide_result result = {0};
        char err[DECIDE_ERR_MAX];
        const char *what = "index out of step";

        assert_int_equal(decide_actions(&rcpt, 1, &settings, lookup, &t, &result, err), -1);
        CHECK_STR(strstr(err, "coexistctl check") ? "found" : err, "found");
        assert_int_equal(result.count, 0);
        decide_result_free(&result);
    }
}

static void test_rule_names(void **state)
{
    const char *what = "decide_rule_name";
    (void) state;

    CHECK_STR(decide_rule_name(RULE_NONE), "none");
    CHECK_STR(decide_rule_name(RULE_USER), "user");
    CHECK_STR(decide_rule_name(RULE_DOMAIN), "domain");
}

/* ---- decide_xtext -------------------------------------------------------------- */

static void test_xtext(void **state)
{
    static const struct {
        const char *in;
        size_t outlen;
        int rc;
        const char *out;
    } cases[] = {
        {"adam.barr@corp.example", 64, 0, "adam.barr@corp.example"},
        {"Adam.Barr+News@Corp.Example", 64, 0, "Adam.Barr+2BNews@Corp.Example"},
        {"a=b@x", 64, 0, "a+3Db@x"},
        {"a b", 64, 0, "a+20b"},
        {"\001", 64, 0, "+01"},
        {"\177", 64, 0, "+7F"},
        {"\351t\351", 64, 0, "+E9t+E9"},
        {"!~\"", 64, 0, "!~\""},
        {"", 1, 0, ""},
        {"abc", 4, 0, "abc"},
        {"abc", 3, -1, NULL},
        {"+", 4, 0, "+2B"},
        {"+", 3, -1, NULL},
        {"a+", 5, 0, "a+2B"},
        {"a+", 4, -1, NULL},
    };
    (void) state;

    for (size_t i = 0; i < N(cases); i++) {
        char out[64], what[64];
        int rc;

        memset(out, 'X', sizeof(out));
        rc = decide_xtext(cases[i].in, out, cases[i].outlen);
        snprintf(what, sizeof(what), "case %zu", i);
        if (rc != cases[i].rc)
            fail_msg("%s: rc got %d, want %d", what, rc, cases[i].rc);
        if (rc == 0)
            CHECK_STR(out, cases[i].out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decision_table),
        cmocka_unit_test(test_user_wins_over_domain),
        cmocka_unit_test(test_esmtp_args),
        cmocka_unit_test(test_adds_before_deletes),
        cmocka_unit_test(test_delete_uses_raw_form),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_no_chaining),
        cmocka_unit_test(test_loop_detected),
        cmocka_unit_test(test_already_routed),
        cmocka_unit_test(test_lookup_error_no_partial),
        cmocka_unit_test(test_unparseable_left_alone),
        cmocka_unit_test(test_zero_recipients),
        cmocka_unit_test(test_many_recipients),
        cmocka_unit_test(test_route),
        cmocka_unit_test(test_lookup_order),
        cmocka_unit_test(test_resolved_address),
        cmocka_unit_test(test_unresolved_reported),
        cmocka_unit_test(test_reverse_table),
        cmocka_unit_test(test_reverse_cases),
        cmocka_unit_test(test_rule_names),
        cmocka_unit_test(test_xtext),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
