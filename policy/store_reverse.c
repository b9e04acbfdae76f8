/*
 * store_reverse.c - the reverse index of the store, entry by entry (see
 * store.h): its codec, its upkeep on every put and delete, and lookups.
 *
 * "=adam@pop.example" = "v=1 owners=adam.barr@corp.example" names who has
 * that alias; "=@pop.example" = "v=1 owners=@corp.example" the domain
 * rules with that legacy domain. A list, because two users may share an
 * alias for bcc; sorted, so that one set of owners has one text and
 * tdbdump of two equal stores is equal. ',' never occurs in a normalized
 * address. The whole-store walks (build, check) are in store_rindex.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

#define OWNERS_PREFIX "v=1 owners="

/* reverse_key - the index key of ALIAS: "=" ALIAS. */
void reverse_key(const char *alias, char out[REVERSE_KEY_BUFSIZE])
{
    snprintf(out, REVERSE_KEY_BUFSIZE, "%c%s", STORE_REVERSE_PREFIX, alias);
}

void store_reverse_alias(const struct record *rec, char out[ADDR_BUFSIZE + 1])
{
    snprintf(out, ADDR_BUFSIZE + 1, "%s%s", rec->kind == RECORD_DOMAIN ? "@" : "", rec->alias);
}

/* owner_valid - whether NAME can own ALIAS: a user key for a user alias,
 * a domain rule key for a legacy domain. */
static int owner_valid(const char *alias, const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > ADDR_MAX)
        return 0;
    for (const unsigned char *p = (const unsigned char *) name; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return 0;
    if (alias[0] == '@')
        return name[0] == '@' && strchr(name + 1, '@') == NULL;
    return name[0] != '@' && name[0] != '!' && name[0] != STORE_REVERSE_PREFIX
           && strchr(name, '@') != NULL;
}

int reverse_parse(const char *alias, char *text, struct reverse_owners *o,
                  char *why, size_t whylen)
{
    size_t cap = 0;
    char *p;

    memset(o, 0, sizeof(*o));
    if (strncmp(text, OWNERS_PREFIX, strlen(OWNERS_PREFIX)) != 0) {
        snprintf(why, whylen, "does not start with '" OWNERS_PREFIX "'");
        return -1;
    }
    for (p = text + strlen(OWNERS_PREFIX); p != NULL;) {
        char *comma = strchr(p, ',');

        if (comma)
            *comma = '\0';
        if (!owner_valid(alias, p)) {
            snprintf(why, whylen, "bad owner '%.*s'", ADDR_MAX, p);
            goto fail;
        }
        if (o->count > 0 && strcmp(o->name[o->count - 1], p) >= 0) {
            snprintf(why, whylen, "owners not sorted or repeated at '%.*s'", ADDR_MAX, p);
            goto fail;
        }
        if (o->count == cap) {
            size_t grown_cap = cap ? 2 * cap : 4;
            const char **grown = realloc(o->name, grown_cap * sizeof(*grown));

            if (grown == NULL) {
                snprintf(why, whylen, "out of memory");
                goto fail;
            }
            o->name = grown;
            cap = grown_cap;
        }
        o->name[o->count++] = p;
        p = comma ? comma + 1 : NULL;
    }
    return 0;
fail:
    free(o->name);
    memset(o, 0, sizeof(*o));
    return -1;
}

int reverse_store(struct store *st, const char *alias, const char *const *name, size_t n)
{
    char key[REVERSE_KEY_BUFSIZE], *text, *w;
    size_t len = strlen(OWNERS_PREFIX) + 1;
    int rc;

    reverse_key(alias, key);
    errno = 0;
    if (n == 0) {
        if (tdb_delete(st->tdb, store_key(key)) != 0 && tdb_error(st->tdb) != TDB_ERR_NOEXIST)
            return store_tdb_write_fail(st, "reverse index delete");
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        len += strlen(name[i]) + 1;
    if ((text = malloc(len)) == NULL)
        return store_fail(st, "out of memory");
    w = text + sprintf(text, "%s", OWNERS_PREFIX);
    for (size_t i = 0; i < n; i++)
        w += sprintf(w, "%s%s", i ? "," : "", name[i]);
    errno = 0;
    rc = tdb_store(st->tdb, store_key(key), (TDB_DATA) {(unsigned char *) text,
                                                         (size_t) (w - text)}, 0);
    free(text);
    return rc != 0 ? store_tdb_write_fail(st, "reverse index store") : 0;
}

/*
 * owners_load - the owners of ALIAS into O (none when absent), with the
 * text they point into in *TEXT (the caller frees both).
 */
static int owners_load(struct store *st, const char *alias, struct reverse_owners *o,
                       char **text)
{
    char key[REVERSE_KEY_BUFSIZE], why[400];
    TDB_DATA val;

    memset(o, 0, sizeof(*o));
    *text = NULL;
    reverse_key(alias, key);
    st->tdb_msg[0] = '\0';
    val = tdb_fetch(st->tdb, store_key(key));
    if (val.dptr == NULL)
        return tdb_error(st->tdb) == TDB_ERR_NOEXIST ? 0 : store_tdb_fail(st, "fetch");
    if ((*text = malloc(val.dsize + 1)) == NULL) {
        free(val.dptr);
        return store_fail(st, "out of memory");
    }
    memcpy(*text, val.dptr, val.dsize);
    (*text)[val.dsize] = '\0';
    free(val.dptr);
    if (memchr(*text, '\0', val.dsize) != NULL)
        snprintf(why, sizeof(why), "NUL byte in the value");
    else if (reverse_parse(alias, *text, o, why, sizeof(why)) == 0)
        return 0;
    free(*text);
    *text = NULL;
    return store_fail(st, "%s: corrupt reverse index entry '%s': %s (coexistctl check "
                      "rebuilds the index)", st->path, key, why);
}

/* find - where OWNER is, or would go, in the sorted list O; *AT set. */
static int find(const struct reverse_owners *o, const char *owner, size_t *at)
{
    size_t lo = 0, hi = o->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(o->name[mid], owner);

        if (c == 0)
            return *at = mid, 1;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *at = lo;
    return 0;
}

/* reverse_update_alias - add OWNER to ALIAS's entry (ADD) or drop it; a
 * no-op when already so, so that nothing is rewritten in vain. */
int reverse_update_alias(struct store *st, const char *alias, const char *owner, int add)
{
    struct reverse_owners o;
    char *text;
    size_t at;
    int rc = 0, present;

    if (owners_load(st, alias, &o, &text) < 0)
        return -1;
    present = find(&o, owner, &at);
    if (add && !present) {
        const char **grown = realloc(o.name, (o.count + 1) * sizeof(*grown));

        if (grown == NULL) {
            free(o.name);
            free(text);
            return store_fail(st, "out of memory");
        }
        o.name = grown;
        memmove(o.name + at + 1, o.name + at, (o.count - at) * sizeof(*o.name));
        o.name[at] = owner;
        rc = reverse_store(st, alias, o.name, ++o.count);
    } else if (!add && present) {
        memmove(o.name + at, o.name + at + 1, (o.count - at - 1) * sizeof(*o.name));
        rc = reverse_store(st, alias, o.name, --o.count);
    }
    free(o.name);
    free(text);
    return rc;
}

int reverse_update(struct store *st, const char *key, const struct record *old,
                   const struct record *rec)
{
    char was[ADDR_BUFSIZE + 1], now[ADDR_BUFSIZE + 1];

    if (old)
        store_reverse_alias(old, was);
    if (rec)
        store_reverse_alias(rec, now);
    if (old && (rec == NULL || strcmp(was, now) != 0)
        && reverse_update_alias(st, was, key, 0) < 0)
        return -1;
    /* Also when the alias stayed: an index left incomplete is mended. */
    return rec ? reverse_update_alias(st, now, key, 1) : 0;
}

int store_reverse_owners(struct store *st, const char *alias, store_owner_fn fn, void *ctx)
{
    struct reverse_owners o;
    char *text;
    int n;

    if (owners_load(st, alias, &o, &text) < 0)
        return -1;
    for (size_t i = 0; fn != NULL && i < o.count; i++)
        if (fn(o.name[i], ctx) != 0)
            break;
    n = (int) o.count;
    free(o.name);
    free(text);
    return n;
}

/* first_owner - store_owner_fn keeping the first owner only. */
static int first_owner(const char *owner, void *ctx)
{
    snprintf(ctx, ADDR_BUFSIZE, "%s", owner);
    return 1;
}

int store_reverse_get(struct store *st, const char *alias, char owner[ADDR_BUFSIZE])
{
    owner[0] = '\0';
    return store_reverse_owners(st, alias, first_owner, owner);
}

int reverse_mark(struct store *st)
{
    /* Outside a transaction only for a file just created: one small store
     * needs no recovery area, which a nearly full disk may not have room
     * for, and a crash here leaves a new file to init again. */
    errno = 0;
    if (tdb_store(st->tdb, store_key(STORE_REVERSE_MARKER),
                  (TDB_DATA) {(unsigned char *) REVERSE_MARKER_VALUE,
                              strlen(REVERSE_MARKER_VALUE)}, 0) != 0)
        return store_tdb_write_fail(st, "reverse index marker");
    return 0;
}
