/*
 * fuzz_decide.c - libFuzzer target for the routing decision
 * (policy/decide.c).
 *
 * Input: a flags byte (bit 0: the message carries our trace header; bits
 * 1-3: the delimiter set; bit 4: propagate_unmatched_extensions; bit 5: reverse
 * routing, with "==ALIAS k1,k2" lines as the reverse index), a byte for the clock (now = byte << 24, which
 * straddles the cutovers of the seeds), then lines:
 *   =KEY RECORD-TEXT   a store record under KEY, decoded as the store does;
 *                      a record that does not decode is a lookup error,
 *                      as store_get() reports it
 *   RAW[\tARG]...      an envelope recipient and its ESMTP arguments
 * Properties: an error or a loop leaves no action; adds come first, each
 * alias once, never one already among the recipients, bcc with
 * NOTIFY=NEVER; a delete names a rewritten recipient's raw form (then the
 * form without its source route, if it has one); a deleted
 * recipient's alias is added or already a recipient (mail is never lost);
 * a second call with the reused result gives the same actions; and
 * decide_actions_routes gives the same actions with, for each recipient,
 * what decide_route says.
 */
#define _GNU_SOURCE
#include <string.h>

#include "decide.h"
#include "fuzz.h"

#define MAX_ENTRIES 32
#define MAX_RCPTS 64
#define MAX_ARGS 8

static const char *const delimiter_sets[] = {"+", "", "+-", ".", "-+._=", "\"", "<>", "+="};

struct entry {
    const char *key;            /* "=ALIAS": a reverse index entry */
    int ok;                     /* the record decoded */
    struct record rec;
    const char *owners;         /* index entry: "k1,k2" */
};

struct table {
    struct entry entries[MAX_ENTRIES];
    size_t count;
};

/* lookup - the decide_lookup_fn over the table; the first entry wins. */
static int lookup(void *ctx, const char *key, struct record *rec, char err[DECIDE_ERR_MAX])
{
    struct table *t = ctx;

    for (size_t i = 0; i < t->count; i++) {
        if (t->entries[i].owners != NULL || strcmp(t->entries[i].key, key) != 0)
            continue;
        if (!t->entries[i].ok) {
            snprintf(err, DECIDE_ERR_MAX, "record of %s does not parse", key);
            return -1;
        }
        *rec = t->entries[i].rec;
        return 1;
    }
    return 0;
}

/* owner - the decide_owner_fn over the table's "=ALIAS k1,k2" entries. */
static int owner(void *ctx, const char *alias, char out[ADDR_BUFSIZE], char err[DECIDE_ERR_MAX])
{
    struct table *t = ctx;
    int n = 1;

    (void) err;
    for (size_t i = 0; i < t->count; i++) {
        const char *o = t->entries[i].owners;

        if (o == NULL || strcmp(t->entries[i].key + 1, alias) != 0)
            continue;
        snprintf(out, ADDR_BUFSIZE, "%.*s", (int) strcspn(o, ","), o);
        for (; *o; o++)
            n += *o == ',';
        return n;
    }
    return 0;
}

/* add_entry - "=KEY TEXT" into T; "==ALIAS OWNERS" is a reverse index entry. */
static void add_entry(struct table *t, char *line)
{
    struct entry *e;
    char *sp = strchr(line, ' '), err[256];

    if (t->count == MAX_ENTRIES || sp == NULL)
        return;
    *sp = '\0';
    e = &t->entries[t->count++];
    e->key = line;
    e->owners = line[0] == '=' ? sp + 1 : NULL;
    e->ok = e->owners == NULL
        && record_decode(line[0] == '@' ? RECORD_DOMAIN : RECORD_USER, sp + 1,
                         strlen(sp + 1), &e->rec, err, sizeof(err)) == 0;
}

/* check_result - the properties of one successful decision. */
static void check_result(const struct decide_rcpt *rcpts, size_t nrcpt,
                         const struct decide_settings *settings, struct table *t,
                         const struct decide_result *res)
{
    struct decide_route route;
    char err[DECIDE_ERR_MAX], key[ADDR_BUFSIZE];
    size_t adds = 0, deletes = 0;
    const char *why;

    /* an add and a delete each, a second delete for a source route */
    FUZZ_CHECK(res->count <= 3 * nrcpt, "%zu actions for %zu recipients", res->count, nrcpt);
    for (size_t a = 0; a < res->count; a++) {
        const struct decide_action *act = &res->actions[a];
        size_t len = strlen(act->addr);

        FUZZ_CHECK(act->rcpt_index < nrcpt, "rcpt_index %zu", act->rcpt_index);
        FUZZ_CHECK(decide_route(&rcpts[act->rcpt_index], settings, lookup, t, 1, &route,
                                err) == 0 && route.routed && route.mode == act->mode
                   && route.rule == act->rule && route.rule != RULE_NONE,
                   "action %zu for a recipient that is not routed so", a);
        if (act->kind == ACTION_DELETE) {
            deletes++;
            FUZZ_CHECK(act->mode == MODE_REWRITE, "delete for a bcc");
            FUZZ_CHECK(strcmp(act->addr, rcpts[act->rcpt_index].raw) == 0
                       || (a > 0 && res->actions[a - 1].kind == ACTION_DELETE
                           && res->actions[a - 1].rcpt_index == act->rcpt_index
                           && strstr(rcpts[act->rcpt_index].raw, ":") != NULL
                           && strncmp(strchr(rcpts[act->rcpt_index].raw, ':') + 1,
                                      act->addr + 1, len - 2) == 0),
                       "delete '%s' is neither the raw '%s' nor it without its route",
                       act->addr,
                       rcpts[act->rcpt_index].raw);
            continue;
        }
        FUZZ_CHECK(deletes == 0, "an add after a delete");
        adds++;
        FUZZ_CHECK(len >= 3 && act->addr[0] == '<' && act->addr[len - 1] == '>'
                   && strncmp(act->addr + 1, route.alias, len - 2) == 0
                   && strlen(route.alias) == len - 2, "add '%s' for alias '%s'", act->addr,
                   route.alias);
        FUZZ_CHECK(act->mode != MODE_BCC || strcmp(act->args, "NOTIFY=NEVER") == 0,
                   "bcc args '%s'", act->args);
        FUZZ_CHECK(act->mode != MODE_REWRITE || strcasestr(act->args, "ORCPT=") != NULL,
                   "rewrite args '%s' without ORCPT", act->args);
        for (size_t b = 0; b < a; b++)
            FUZZ_CHECK(strcmp(res->actions[b].addr, act->addr) != 0, "'%s' added twice",
                       act->addr);
        for (size_t i = 0; i < nrcpt; i++)
            FUZZ_CHECK(addr_normalize(rcpts[i].raw, key, &why) < 0
                       || strcmp(key, route.alias) != 0,
                       "'%s' added though recipient '%s' is it", act->addr, rcpts[i].raw);
    }
    /* Every routed recipient's alias ends up among the recipients. */
    for (size_t i = 0; i < nrcpt; i++) {
        int found = 0;

        FUZZ_CHECK(decide_route(&rcpts[i], settings, lookup, t, 1, &route, err) == 0,
                   "route of '%s' fails after a decision succeeded", rcpts[i].raw);
        if (!route.routed)
            continue;
        for (size_t a = 0; a < res->count && !found; a++)
            found = res->actions[a].kind == ACTION_ADD
                && strncmp(res->actions[a].addr + 1, route.alias, strlen(route.alias)) == 0
                && res->actions[a].addr[strlen(route.alias) + 1] == '>';
        for (size_t j = 0; j < nrcpt && !found; j++)
            found = addr_normalize(rcpts[j].raw, key, &why) == 0
                && strcmp(key, route.alias) == 0;
        FUZZ_CHECK(found, "alias '%s' of '%s' is neither added nor a recipient",
                   route.alias, rcpts[i].raw);
    }
}

/* check_routes - decide_actions_routes agrees with decide_actions and
 * with decide_route, recipient by recipient. */
static void check_routes(const struct decide_rcpt *rcpts, size_t nrcpt,
                         const struct decide_settings *settings, struct table *t)
{
    struct decide_result res = {0}, plain = {0};
    struct decide_route *routes = malloc(nrcpt * sizeof(*routes)), want;
    char err[DECIDE_ERR_MAX];

    if (routes == NULL)
        abort();
    FUZZ_CHECK(decide_actions_routes(rcpts, nrcpt, settings, lookup, t, &res, routes,
                                     err) == 0, "decide_actions_routes failed: %s", err);
    FUZZ_CHECK(decide_actions(rcpts, nrcpt, settings, lookup, t, &plain, err) == 0
               && plain.count == res.count, "%zu actions with routes, %zu without",
               res.count, plain.count);
    for (size_t a = 0; a < res.count; a++)
        FUZZ_CHECK(res.actions[a].kind == plain.actions[a].kind
                   && strcmp(res.actions[a].addr, plain.actions[a].addr) == 0
                   && strcmp(res.actions[a].args, plain.actions[a].args) == 0,
                   "action %zu differs with routes", a);
    for (size_t i = 0; i < nrcpt; i++) {
        if (settings->loop_detected) {
            FUZZ_CHECK(routes[i].rule == RULE_NONE && !routes[i].routed,
                       "route %zu on a looped message", i);
            continue;
        }
        FUZZ_CHECK(decide_route(&rcpts[i], settings, lookup, t, 1, &want, err) == 0,
                   "decide_route('%s')", rcpts[i].raw);
        FUZZ_CHECK(routes[i].rule == want.rule && routes[i].routed == want.routed
                   && (want.rule == RULE_NONE
                       || (routes[i].mode == want.mode
                           && routes[i].effective == want.effective
                           && strcmp(routes[i].key, want.key) == 0
                           && strcmp(routes[i].alias, want.alias) == 0)),
                   "route of '%s': rule %d '%s' -> '%s', decide_route says %d '%s' -> '%s'",
                   rcpts[i].raw, routes[i].rule, routes[i].key, routes[i].alias, want.rule,
                   want.key, want.alias);
    }
    decide_result_free(&res);
    decide_result_free(&plain);
    free(routes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct table t;
    struct decide_rcpt rcpts[MAX_RCPTS];
    const char *args[MAX_RCPTS][MAX_ARGS + 1];
    struct decide_settings settings = {0};     /* no guard */
    struct decide_result res = {0}, res2 = {0};
    char err[DECIDE_ERR_MAX], *text, *line, *next;
    size_t nrcpt = 0;
    int rc;

    if (size < 2)
        return 0;
    settings.loop_detected = data[0] & 1;
    settings.already_routed = NULL;
    settings.already_routed_ctx = NULL;
    settings.delimiters = delimiter_sets[(data[0] >> 1) & 7];
    settings.now = (time_t) data[1] << 24;
    settings.propagate_extension = (data[0] >> 4) & 1;
    settings.owner = (data[0] & 0x20) ? owner : NULL;
    text = fuzz_strndup(data + 2, size - 2);
    t.count = 0;
    for (line = text; line != NULL; line = next) {
        if ((next = strchr(line, '\n')) != NULL)
            *next++ = '\0';
        if (line[0] == '=') {
            add_entry(&t, line + 1);
        } else if (nrcpt < MAX_RCPTS) {
            size_t n = 0;
            char *tab;

            rcpts[nrcpt].raw = line;
            rcpts[nrcpt].resolved = NULL;
            while (n < MAX_ARGS && (tab = strchr(line, '\t')) != NULL) {
                *tab = '\0';
                line = tab + 1;
                args[nrcpt][n++] = line;
            }
            args[nrcpt][n] = NULL;
            /* Odd recipients without args as NULL: both forms are allowed. */
            rcpts[nrcpt].esmtp_args = n == 0 && (nrcpt & 1) ? NULL : args[nrcpt];
            nrcpt++;
        }
    }

    rc = decide_actions(rcpts, nrcpt, &settings, lookup, &t, &res, err);
    if (rc < 0)
        FUZZ_CHECK(res.count == 0 && err[0] != '\0', "failed with %zu actions", res.count);
    else if (settings.loop_detected)
        FUZZ_CHECK(res.count == 0, "%zu actions on a looped message", res.count);
    else
        check_result(rcpts, nrcpt, &settings, &t, &res);

    /* Reuse: the same input through the grown result gives the same actions. */
    res2 = res;
    res.actions = NULL;
    res.count = res.capacity = 0;
    if (rc == 0 && res2.count > 0) {
        struct decide_action *first = malloc(res2.count * sizeof(*first));
        size_t count = res2.count;

        if (first == NULL)
            abort();
        memcpy(first, res2.actions, count * sizeof(*first));
        FUZZ_CHECK(decide_actions(rcpts, nrcpt, &settings, lookup, &t, &res2, err) == 0
                   && res2.count == count, "second call differs");
        for (size_t a = 0; a < count; a++)
            FUZZ_CHECK(first[a].kind == res2.actions[a].kind
                       && strcmp(first[a].addr, res2.actions[a].addr) == 0
                       && strcmp(first[a].args, res2.actions[a].args) == 0,
                       "second call differs at %zu", a);
        free(first);
    }
    decide_result_free(&res2);

    /* decide_actions_routes (the milter's entry point): the same actions,
     * and ROUTES[i] is decide_route()'s answer, or nothing on a loop. */
    if (rc == 0 && nrcpt > 0)
        check_routes(rcpts, nrcpt, &settings, &t);
    free(text);
    return 0;
}
