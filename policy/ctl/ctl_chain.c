/*
 * ctl_chain.c - what coexistctl refuses about the links between records:
 * chains (an alias that is itself managed, an address that is already
 * someone's alias) and an alias with two owners while reverse routing is
 * on for it (mail to it would have two places to go back to).
 *
 * The milter never chains, so a chain is not a loop; but it is never what
 * the administrator meant, and the reverse index makes both directions one
 * lookup each (DESIGN sections 4 and 9).
 */
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "ctl.h"

struct others {
    struct ctl *c;
    const char *self;
    ctl_skip_fn skip;
    void *skip_ctx;
    struct ctl_owners *out;
    int failed;
};

/* visit_other - count one owner, and note whether it routes back. */
static int visit_other(const char *owner, void *ctx)
{
    struct others *o = ctx;
    struct record rec;
    int found;

    if ((o->self && strcmp(owner, o->self) == 0) || (o->skip && o->skip(owner, o->skip_ctx)))
        return 0;
    if (o->out->count++ == 0)
        snprintf(o->out->first, sizeof(o->out->first), "%s", owner);
    if ((found = store_get(o->c->st, owner, &rec)) < 0)
        return o->failed = 1;
    if (found && rec.reverse && o->out->reverse[0] == '\0')
        snprintf(o->out->reverse, sizeof(o->out->reverse), "%s", owner);
    return 0;
}

int ctl_other_owners(struct ctl *c, const char *alias, const char *self, ctl_skip_fn skip,
                     void *skip_ctx, struct ctl_owners *out)
{
    struct others o = {c, self, skip, skip_ctx, out, 0};

    memset(out, 0, sizeof(*out));
    if (store_reverse_owners(c->st, alias, visit_other, &o) < 0 || o.failed)
        return ctl_store_fail(c);
    return EX_OK;
}

/* alias_managed - refuse chains: an alias must not itself be routed. */
static int alias_managed(struct ctl *c, const struct record *rec)
{
    char key[ADDR_BUFSIZE + 1];
    struct record found_rec;
    int found = 0;

    if (rec->kind == RECORD_USER)
        found = store_get(c->st, rec->alias, &found_rec);
    if (found == 0) {
        snprintf(key, sizeof(key), "@%s", rec->kind == RECORD_DOMAIN ? rec->alias
                 : addr_domain(rec->alias));
        found = store_get(c->st, key, &found_rec);
    }
    if (found < 0)
        return ctl_store_fail(c);
    if (found > 0) {
        fprintf(c->err, "coexistctl: alias '%s' is itself a managed address (no chaining)\n",
                rec->alias);
        return EX_DATAERR;
    }
    return EX_OK;
}

/*
 * already_alias - refuse the other chain: KEY is already some record's
 * alias (or, for "@domain", some rule's legacy domain). The index names an
 * address and a domain rule the same way as KEY is written.
 */
static int already_alias(struct ctl *c, const char *key)
{
    struct ctl_owners o;
    int rc = ctl_other_owners(c, key, NULL, NULL, NULL, &o);

    if (rc != EX_OK || o.count == 0)
        return rc;
    fprintf(c->err, "coexistctl: '%s' is already the %s of '%s' (no chaining)\n", key,
            key[0] == '@' ? "legacy domain" : "alias", o.first);
    return EX_DATAERR;
}

int ctl_refuse_shared(struct ctl *c, const char *key, const struct record *rec)
{
    char alias[ADDR_BUFSIZE + 1];
    struct ctl_owners o;
    int rc;

    store_reverse_alias(rec, alias);
    if ((rc = ctl_other_owners(c, alias, key, NULL, NULL, &o)) != EX_OK || o.count == 0)
        return rc;
    if (rec->reverse) {
        fprintf(c->err, "coexistctl: alias '%s' is shared with '%s': reverse routing needs "
                "one owner\n", alias, o.first);
        return EX_DATAERR;
    }
    if (o.reverse[0]) {
        fprintf(c->err, "coexistctl: alias '%s' is routed back to '%s' (reverse = yes): it "
                "cannot have a second owner\n", alias, o.reverse);
        return EX_DATAERR;
    }
    return EX_OK;
}

int ctl_refuse_links(struct ctl *c, const char *key, const struct record *rec)
{
    int rc;

    if ((rc = alias_managed(c, rec)) != EX_OK || (rc = already_alias(c, key)) != EX_OK)
        return rc;
    return ctl_refuse_shared(c, key, rec);
}
