/*
 * decide.c - the routing decision (see decide.h and DESIGN.md section 4).
 *
 * All lookups happen before any action is emitted, so a lookup error leaves
 * the result empty and the caller can tempfail a message that was never
 * half-routed. Aliases are never looked up again (no chaining), and an alias
 * is added at most once per message, whatever mix of recipients asked for it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "decide.h"

const char *decide_rule_name(enum decide_rule rule)
{
    static const char *const names[] = {"none", "user", "domain"};

    return names[rule];
}

const char *decide_rcpt_addr(const struct decide_rcpt *rcpt)
{
    if (rcpt->resolved != NULL && strchr(rcpt->resolved, '@') != NULL)
        return rcpt->resolved;
    return rcpt->raw;
}

/*
 * spelling - the local part of KEY as the sender wrote it in RAW, when RAW
 * is KEY but for ASCII case (brackets and a source route aside); else
 * KEY's own. Postfix builds rewrite results from the address as received:
 * "Zed+X@Corp.Example" under "@corp.example @pop.example" becomes
 * "Zed+X@pop.example", and an unmatched extension keeps its case too.
 */
static const char *spelling(const char *raw, const char *key, char buf[ADDR_BUFSIZE])
{
    char bare[ADDR_BUFSIZE + 4];
    const char *addr = bare;

    if (addr_strip_brackets(raw, bare, sizeof(bare)) < 0)
        return key;
    if (addr[0] == '@' && strchr(addr, ':') != NULL)
        addr = strchr(addr, ':') + 1;
    if (strlen(addr) != strlen(key) || strcasecmp(addr, key) != 0)
        return key;
    strcpy(buf, addr);
    return buf;
}

/* with_extension - ALIAS with EXT (EXTLEN bytes) before its '@', into OUT. */
static int with_extension(const char *alias, const char *ext, size_t extlen,
                          char out[ADDR_BUFSIZE])
{
    const char *at = strrchr(alias, '@');
    int n;

    if (at == NULL)
        return -1;
    n = snprintf(out, ADDR_BUFSIZE, "%.*s%.*s%s", (int) (at - alias), alias,
                 (int) extlen, ext, at);
    return n < 0 || n >= ADDR_BUFSIZE ? -1 : 0;
}

/*
 * route_user - RULE_USER from REC; EXT (EXTLEN bytes of SPELLED, the
 * recipient as written) is the unmatched extension, if any.
 */
static int route_user(struct decide_route *route, const struct record *rec,
                      const struct decide_settings *settings, const char *ext,
                      size_t extlen, char err[DECIDE_ERR_MAX])
{
    route->rule = RULE_USER;
    /* recipient_bcc_maps ignores the extension; virtual(5) propagates it. */
    if (ext != NULL && rec->mode == MODE_REWRITE && settings->propagate_extension) {
        if (with_extension(rec->alias, ext, extlen, route->alias) < 0) {
            snprintf(err, DECIDE_ERR_MAX, "alias for '%s' too long", route->key);
            return -1;
        }
    } else {
        strcpy(route->alias, rec->alias);
    }
    return 0;
}

/* route_domain - RULE_DOMAIN: the whole local part of SPELLED at the legacy
 * domain, as Postfix makes "@otherdomain" results (the extension is kept). */
static int route_domain(struct decide_route *route, const struct record *rec,
                        const char *spelled, char err[DECIDE_ERR_MAX])
{
    const char *at = strrchr(spelled, '@');

    route->rule = RULE_DOMAIN;
    if (snprintf(route->alias, sizeof(route->alias), "%.*s@%s", (int) (at - spelled),
                 spelled, rec->alias) >= (int) sizeof(route->alias)) {
        snprintf(err, DECIDE_ERR_MAX, "alias for '%s' too long", route->key);
        return -1;
    }
    return 0;
}

/*
 * reverse_owner - the single owner of ALIAS in the reverse index into
 * OWNER, and its record into REC: 1, 0 when none (or shared: two owners
 * cannot both have mail sent back), -1 on an error. An owner whose record
 * does not name ALIAS (KIND, LEGACY) is an index out of step with the
 * records: an error, never a guess where mail goes.
 */
static int reverse_owner(const struct decide_settings *settings, decide_lookup_fn lookup,
                         void *lookup_ctx, const char *alias, enum record_kind kind,
                         const char *legacy, char owner[ADDR_BUFSIZE], struct record *rec,
                         char err[DECIDE_ERR_MAX])
{
    int n = settings->owner(lookup_ctx, alias, owner, err), found;

    if (n != 1)
        return n < 0 ? -1 : 0;
    if ((found = lookup(lookup_ctx, owner, rec, err)) < 0)
        return -1;
    if (found == 0 || rec->kind != kind || strcmp(rec->alias, legacy) != 0) {
        snprintf(err, DECIDE_ERR_MAX, "reverse index entry for '%s' names '%s', whose "
                 "record does not name it (coexistctl check repairs the index)", alias,
                 owner);
        return -1;
    }
    return 1;
}

/*
 * route_reverse - ROUTE->key is no managed address: is it a legacy address
 * that goes back to its owner? The user whose alias it is, else the domain
 * rule whose legacy domain it is at, unless the address it would go to has
 * a user record of its own (that user's legacy mailbox is their alias, not
 * this one). SPELLED is the recipient as sent. Fills ROUTE (the caller
 * decides routed from REC); returns 1 if an owner was found, 0, or -1.
 */
static int route_reverse(struct decide_route *route, const struct decide_settings *settings,
                         decide_lookup_fn lookup, void *lookup_ctx, const char *spelled,
                         struct record *rec, char err[DECIDE_ERR_MAX])
{
    char at_domain[ADDR_BUFSIZE], owner[ADDR_BUFSIZE], owner_key[ADDR_BUFSIZE];
    const char *domain = addr_domain(route->key);
    struct record own;
    int found;

    found = reverse_owner(settings, lookup, lookup_ctx, route->key, RECORD_USER, route->key,
                          owner, rec, err);
    if (found < 0)
        return -1;
    if (found > 0) {
        route->rule = RULE_USER;
        strcpy(route->alias, owner);
    } else {
        snprintf(at_domain, sizeof(at_domain), "@%s", domain);
        if ((found = reverse_owner(settings, lookup, lookup_ctx, at_domain, RECORD_DOMAIN,
                                   domain, owner, rec, err)) <= 0)
            return found;
        /* The same local part at the new domain, spelled as sent. */
        if (snprintf(owner_key, sizeof(owner_key), "%.*s%s",
                     (int) (domain - 1 - route->key), route->key, owner)
            >= (int) sizeof(owner_key)
            || snprintf(route->alias, sizeof(route->alias), "%.*s%s",
                        (int) (strrchr(spelled, '@') - spelled), spelled, owner)
            >= (int) sizeof(route->alias)) {
            snprintf(err, DECIDE_ERR_MAX, "address for '%s' too long", route->key);
            return -1;
        }
        if ((found = lookup(lookup_ctx, owner_key, &own, err)) != 0) {
            route->alias[0] = '\0';
            return found < 0 ? -1 : 0;
        }
        route->rule = RULE_DOMAIN;
    }
    strcpy(route->match, owner);
    route->reverse = 1;
    return 1;
}

int decide_route(const struct decide_rcpt *rcpt, const struct decide_settings *settings,
                 decide_lookup_fn lookup, void *lookup_ctx, int lenient,
                 struct decide_route *route, char err[DECIDE_ERR_MAX])
{
    const char *addr = decide_rcpt_addr(rcpt), *why, *ext = NULL, *spelled;
    char spelled_buf[ADDR_BUFSIZE];
    struct record rec;
    size_t extlen = 0;
    int found;

    memset(route, 0, sizeof(*route));
    if (addr_normalize(addr, route->key, &why) < 0) {
        if (lenient)
            return (route->unresolved = why), 0;
        snprintf(err, DECIDE_ERR_MAX, "bad address '%s': %s", addr, why);
        return -1;
    }
    spelled = spelling(rcpt->raw, route->key, spelled_buf);
    strcpy(route->match, route->key);
    found = lookup(lookup_ctx, route->match, &rec, err);
    if (found == 0
        && addr_split_extension(route->key, settings->delimiters, route->match, &ext,
                                &extlen)) {
        ext = spelled + (ext - route->key);
        found = lookup(lookup_ctx, route->match, &rec, err);
    }
    if (found == 0) {
        ext = NULL;
        snprintf(route->match, sizeof(route->match), "@%s", addr_domain(route->key));
        if ((found = lookup(lookup_ctx, route->match, &rec, err)) > 0
            && route_domain(route, &rec, spelled, err) < 0)
            return -1;
    } else if (found > 0 && route_user(route, &rec, settings, ext, extlen, err) < 0) {
        return -1;
    }
    if (found == 0 && settings->owner != NULL)
        found = route_reverse(route, settings, lookup, lookup_ctx, spelled, &rec, err);
    if (found < 0)
        return -1;
    if (found == 0) {
        route->match[0] = '\0';
        return 0;
    }
    route->effective = record_effective_state(&rec, settings->now);
    if (route->reverse) {
        /* Mail to the legacy mailbox goes where the owner now reads. */
        route->mode = MODE_REWRITE;
        route->routed = route->effective == STATE_MIGRATED && rec.reverse;
        return 0;
    }
    route->mode = rec.mode;
    route->routed = route->effective == STATE_UNMIGRATED;
    return 0;
}

int decide_any_managed(const struct decide_rcpt *rcpts, size_t nrcpt,
                       const struct decide_settings *settings, decide_lookup_fn lookup,
                       void *lookup_ctx, char err[DECIDE_ERR_MAX])
{
    struct decide_route route;

    for (size_t i = 0; i < nrcpt; i++) {
        if (decide_route(&rcpts[i], settings, lookup, lookup_ctx, 1, &route, err) < 0)
            return -1;
        if (route.match[0] != '\0' || route.unresolved != NULL)
            return 1;
    }
    return 0;
}

int decide_xtext(const char *addr, char *out, size_t outlen)
{
    size_t n = 0;

    for (; *addr; addr++) {
        unsigned char c = (unsigned char) *addr;
        int plain = c >= 33 && c <= 126 && c != '+' && c != '=';

        if (n + (plain ? 1 : 3) >= outlen)
            return -1;
        if (plain)
            out[n++] = (char) c;
        else
            n += (size_t) snprintf(out + n, outlen - n, "+%02X", c);
    }
    out[n] = '\0';
    return 0;
}

/* esmtp_arg - the recipient's "KEYWORD=..." argument, or NULL. */
static const char *esmtp_arg(const struct decide_rcpt *rcpt, const char *keyword)
{
    size_t len = strlen(keyword);

    for (const char *const *a = rcpt->esmtp_args; a && *a; a++)
        if (strncasecmp(*a, keyword, len) == 0 && (*a)[len] == '=')
            return *a;
    return NULL;
}

/* rewrite_args - keep the original's NOTIFY; name it in ORCPT. */
static int rewrite_args(const struct decide_rcpt *rcpt, char *out, size_t outlen)
{
    const char *notify = esmtp_arg(rcpt, "NOTIFY");
    const char *orcpt = esmtp_arg(rcpt, "ORCPT");
    char bare[ADDR_BUFSIZE + 4], xtext[3 * ADDR_BUFSIZE];
    int n;

    if (orcpt == NULL) {
        /* The sender's own spelling, so a bounce names what they typed. */
        if (addr_strip_brackets(rcpt->raw, bare, sizeof(bare)) < 0
            || decide_xtext(bare, xtext, sizeof(xtext)) < 0)
            return -1;
    }
    n = snprintf(out, outlen, "%s%s%s%s", notify ? notify : "", notify ? " " : "",
                 orcpt ? orcpt : "ORCPT=rfc822;", orcpt ? "" : xtext);
    return n < 0 || (size_t) n >= outlen ? -1 : 0;
}

/* push - append an action, growing the array. */
static struct decide_action *push(struct decide_result *result)
{
    if (result->count == result->capacity) {
        size_t cap = result->capacity ? 2 * result->capacity : 8;
        struct decide_action *grown = realloc(result->actions, cap * sizeof(*grown));

        if (grown == NULL)
            return NULL;
        result->actions = grown;
        result->capacity = cap;
    }
    return &result->actions[result->count++];
}

/* alias_taken - whether ALIAS is a recipient or was added already. */
static int alias_taken(const char *alias, char (*keys)[ADDR_BUFSIZE], size_t nrcpt,
                       const struct decide_result *result)
{
    for (size_t i = 0; i < nrcpt; i++)
        if (strcmp(keys[i], alias) == 0)
            return 1;
    for (size_t i = 0; i < result->count; i++)
        if (result->actions[i].kind == ACTION_ADD
            && strncmp(result->actions[i].addr + 1, alias, strlen(alias)) == 0
            && result->actions[i].addr[strlen(alias) + 1] == '>')
            return 1;
    return 0;
}

/* push_delete - one delete of ADDR for recipient I, into DELETES. */
static int push_delete(const struct decide_route *route, size_t i, const char *addr,
                       size_t *ndelete, struct decide_action *deletes)
{
    struct decide_action *act = &deletes[(*ndelete)++];

    act->kind = ACTION_DELETE;
    act->mode = route->mode;
    act->rule = route->rule;
    act->reverse = route->reverse;
    act->rcpt_index = i;
    act->args[0] = '\0';
    return snprintf(act->addr, sizeof(act->addr), "%s", addr) >= (int) sizeof(act->addr)
        ? -1 : 0;
}

/*
 * route_stripped - RAW without its source route, in brackets, into OUT;
 * 0 if RAW has none. Postfix's smtpd drops a route before it records the
 * original recipient, which is what its smfi_delrcpt matches, while the
 * milter is handed (and Sendmail matches) the form as sent: a rewrite of
 * "<@relay:carol@corp>" deletes both spellings; the one the MTA does not
 * hold matches nothing.
 */
static int route_stripped(const char *raw, char out[ADDR_BUFSIZE + 2])
{
    char bare[ADDR_BUFSIZE + 4];
    const char *colon;

    if (addr_strip_brackets(raw, bare, sizeof(bare)) < 0 || bare[0] != '@'
        || (colon = strchr(bare, ':')) == NULL)
        return 0;
    return snprintf(out, ADDR_BUFSIZE + 2, "<%s>", colon + 1) < ADDR_BUFSIZE + 2;
}

/* emit - the add (unless taken) and, for rewrite, the deletes of RCPT I. */
static int emit(const struct decide_rcpt *rcpt, size_t i, const struct decide_route *route,
                char (*keys)[ADDR_BUFSIZE], size_t nrcpt, struct decide_result *result,
                size_t *ndelete, struct decide_action *deletes)
{
    struct decide_action *act;
    char stripped[ADDR_BUFSIZE + 2];

    if (!alias_taken(route->alias, keys, nrcpt, result)) {
        if ((act = push(result)) == NULL)
            return -1;
        act->kind = ACTION_ADD;
        act->mode = route->mode;
        act->rule = route->rule;
        act->reverse = route->reverse;
        act->rcpt_index = i;
        snprintf(act->addr, sizeof(act->addr), "<%s>", route->alias);
        if (route->mode == MODE_BCC)
            snprintf(act->args, sizeof(act->args), "NOTIFY=NEVER");
        else if (rewrite_args(rcpt, act->args, sizeof(act->args)) < 0)
            return -1;
    }
    if (route->mode != MODE_REWRITE)
        return 0;
    if (push_delete(route, i, rcpt->raw, ndelete, deletes) < 0)
        return -1;
    if (route_stripped(rcpt->raw, stripped)
        && push_delete(route, i, stripped, ndelete, deletes) < 0)
        return -1;
    return 0;
}

int decide_actions(const struct decide_rcpt *rcpts, size_t nrcpt,
                   const struct decide_settings *settings,
                   decide_lookup_fn lookup, void *lookup_ctx,
                   struct decide_result *result, char err[DECIDE_ERR_MAX])
{
    return decide_actions_routes(rcpts, nrcpt, settings, lookup, lookup_ctx, result,
                                 NULL, err);
}

int decide_actions_routes(const struct decide_rcpt *rcpts, size_t nrcpt,
                          const struct decide_settings *settings,
                          decide_lookup_fn lookup, void *lookup_ctx,
                          struct decide_result *result, struct decide_route *routes,
                          char err[DECIDE_ERR_MAX])
{
    struct decide_route *own_routes = NULL;
    struct decide_action *deletes = NULL;
    char (*keys)[ADDR_BUFSIZE] = NULL;
    size_t i, ndelete = 0;
    int rc = -1;

    result->count = 0;
    if (routes != NULL && nrcpt > 0)
        memset(routes, 0, nrcpt * sizeof(*routes));     /* RULE_NONE, not routed */
    if (settings->loop_detected || nrcpt == 0)
        return 0;
    if (routes == NULL)
        routes = own_routes = calloc(nrcpt, sizeof(*routes));
    keys = calloc(nrcpt, sizeof(*keys));
    deletes = calloc(2 * nrcpt, sizeof(*deletes));     /* see route_stripped() */
    if (routes == NULL || keys == NULL || deletes == NULL) {
        snprintf(err, DECIDE_ERR_MAX, "out of memory");
        goto out;
    }
    for (i = 0; i < nrcpt; i++) {
        if (decide_route(&rcpts[i], settings, lookup, lookup_ctx, 1, &routes[i], err) < 0)
            goto out;
        strcpy(keys[i], routes[i].key);
    }
    for (i = 0; i < nrcpt; i++) {
        /* Routed by us for this very message before: not a second time. */
        if (routes[i].routed && settings->already_routed != NULL
            && settings->already_routed(settings->already_routed_ctx, routes[i].key))
            routes[i].routed = 0;
        if (routes[i].routed
            && emit(&rcpts[i], i, &routes[i], keys, nrcpt, result, &ndelete, deletes) < 0) {
            snprintf(err, DECIDE_ERR_MAX, "cannot build actions for '%s'", rcpts[i].raw);
            goto out;
        }
    }
    /* Deletes go last: the MTA must never see a message with neither. */
    for (i = 0; i < ndelete; i++) {
        struct decide_action *act = push(result);

        if (act == NULL) {
            snprintf(err, DECIDE_ERR_MAX, "out of memory");
            goto out;
        }
        *act = deletes[i];
    }
    rc = 0;
out:
    if (rc < 0)
        result->count = 0;
    free(own_routes);
    free(keys);
    free(deletes);
    return rc;
}

void decide_result_free(struct decide_result *result)
{
    free(result->actions);
    result->actions = NULL;
    result->count = result->capacity = 0;
}
