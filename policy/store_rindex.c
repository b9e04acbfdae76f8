/*
 * store_rindex.c - the reverse index as a whole (see store.h): building it
 * for a store written before it existed, and checking it against the
 * records both ways.
 *
 * Both walk the store once and work on sorted (alias, owner) pairs in
 * memory rather than fetching entry by entry inside the traversal: a
 * million records then cost one sort, not a million read-modify-writes of
 * entries that a shared alias makes long.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* One (alias, owner) pair; ALIAS is malloc'd with OWNER after its NUL. */
struct pair {
    char *alias;
    const char *owner;
};

struct pairs {
    struct pair *v;
    size_t count, capacity;
};

struct walk {
    struct store *st;
    struct pairs records;       /* what the records say */
    struct pairs index;         /* what the index says */
    int drop_index;             /* build: delete every entry on the way */
    store_problem_fn problem;
    void *ctx;
    int bad;                    /* entries that do not parse */
    int failed;                 /* out of memory, a failed delete */
};

/* pair_add - append (ALIAS, OWNER) to PS; -1 when out of memory. */
static int pair_add(struct pairs *ps, const char *alias, const char *owner)
{
    size_t la = strlen(alias), lo = strlen(owner);
    char *text;

    if (ps->count == ps->capacity) {
        size_t cap = ps->capacity ? 2 * ps->capacity : 256;
        struct pair *grown = realloc(ps->v, cap * sizeof(*grown));

        if (grown == NULL)
            return -1;
        ps->v = grown;
        ps->capacity = cap;
    }
    if ((text = malloc(la + lo + 2)) == NULL)
        return -1;
    memcpy(text, alias, la + 1);
    memcpy(text + la + 1, owner, lo + 1);
    ps->v[ps->count].alias = text;
    ps->v[ps->count++].owner = text + la + 1;
    return 0;
}

static void pairs_free(struct pairs *ps)
{
    for (size_t i = 0; i < ps->count; i++)
        free(ps->v[i].alias);
    free(ps->v);
    memset(ps, 0, sizeof(*ps));
}

static int pair_cmp(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    int c = strcmp(x->alias, y->alias);

    return c ? c : strcmp(x->owner, y->owner);
}

static void pairs_sort(struct pairs *ps)
{
    if (ps->count > 1)
        qsort(ps->v, ps->count, sizeof(ps->v[0]), pair_cmp);
}

/* walk_index_entry - the pairs of one index entry, or a problem. */
static void walk_index_entry(struct walk *w, const char *key, const TDB_DATA *v)
{
    struct reverse_owners o;
    char *text = malloc(v->dsize + 1), why[400];

    if (text == NULL) {
        w->failed = 1;
        return;
    }
    memcpy(text, v->dptr, v->dsize);
    text[v->dsize] = '\0';
    if (memchr(v->dptr, '\0', v->dsize) != NULL || strlen(key) > ADDR_BUFSIZE
        || reverse_parse(key + 1, text, &o, why, sizeof(why)) < 0) {
        if (memchr(v->dptr, '\0', v->dsize) != NULL || strlen(key) > ADDR_BUFSIZE)
            snprintf(why, sizeof(why), "not an index entry");
        w->bad++;
        if (w->problem)
            w->problem(key, why, w->ctx);
        free(text);
        return;
    }
    for (size_t i = 0; i < o.count && !w->failed; i++)
        if (pair_add(&w->index, key + 1, o.name[i]) < 0)
            w->failed = 1;
    free(o.name);
    free(text);
}

/* walk_one - tdb traversal callback: collect one record or index entry. */
static int walk_one(struct tdb_context *tdb, TDB_DATA k, TDB_DATA v, void *arg)
{
    struct walk *w = arg;
    char key[REVERSE_KEY_BUFSIZE + 1], alias[ADDR_BUFSIZE + 1], why[256];
    int kind = store_key_kind((const char *) k.dptr, k.dsize);
    struct record rec;

    if (kind == STORE_KEY_RESERVED)
        return 0;
    if (k.dsize >= sizeof(key) || memchr(k.dptr, '\0', k.dsize)) {
        /* store_check reports such a record key; such an index key is none of ours */
        if (kind == STORE_KEY_INDEX && w->drop_index && tdb_delete(tdb, k) != 0)
            return w->failed = 1, -1;
        return 0;
    }
    memcpy(key, k.dptr, k.dsize);
    key[k.dsize] = '\0';
    if (kind == STORE_KEY_INDEX) {
        if (w->drop_index)
            return tdb_delete(tdb, k) != 0 ? (w->failed = 1, -1) : 0;
        walk_index_entry(w, key, &v);
        return w->failed ? -1 : 0;
    }
    /* A record that does not parse is store_check's to report. */
    if (k.dsize > ADDR_MAX || record_decode((enum record_kind) kind, (const char *) v.dptr,
                                            v.dsize, &rec, why, sizeof(why)) < 0)
        return 0;
    store_reverse_alias(&rec, alias);
    if (pair_add(&w->records, alias, key) < 0)
        return w->failed = 1, -1;
    return 0;
}

/* write_index - one entry per alias of the sorted pairs PS. */
static int write_index(struct store *st, const struct pairs *ps)
{
    const char **names = NULL;
    size_t cap = 0;

    for (size_t i = 0; i < ps->count;) {
        size_t j = i, n;

        while (j < ps->count && strcmp(ps->v[j].alias, ps->v[i].alias) == 0)
            j++;
        n = j - i;
        if (n > cap) {
            const char **grown = realloc(names, n * sizeof(*grown));

            if (grown == NULL) {
                free(names);
                return store_fail(st, "out of memory");
            }
            names = grown;
            cap = n;
        }
        for (size_t k = 0; k < n; k++)
            names[k] = ps->v[i + k].owner;
        if (reverse_store(st, ps->v[i].alias, names, n) < 0) {
            free(names);
            return -1;
        }
        i = j;
    }
    free(names);
    return 0;
}

int store_reverse_build(struct store *st, size_t *nrecords)
{
    struct walk w = {.st = st, .drop_index = 1};
    int own_txn = !st->in_txn;

    if (own_txn && store_begin(st) < 0)
        return -1;
    st->tdb_msg[0] = '\0';
    errno = 0;
    /* tdb allows deleting the record a traversal stands on; the new entries
     * are written after it, so the walk never meets them. */
    if (tdb_traverse(st->tdb, walk_one, &w) < 0 || w.failed) {
        if (w.failed && errno == 0)
            store_fail(st, "%s: reverse index build: out of memory", st->path);
        else
            store_tdb_write_fail(st, "reverse index build");
        goto fail;
    }
    pairs_sort(&w.records);
    if (write_index(st, &w.records) < 0 || reverse_mark(st) < 0)
        goto fail;
    if (nrecords)
        *nrecords = w.records.count;
    pairs_free(&w.records);
    return own_txn ? store_commit(st) : 0;
fail:
    pairs_free(&w.records);
    if (own_txn)
        store_cancel(st);
    return -1;
}

/* naming_one - tdb traversal callback: the aliases whose entry names w->ctx. */
static int naming_one(struct tdb_context *tdb, TDB_DATA k, TDB_DATA v, void *arg)
{
    struct walk *w = arg;
    char key[REVERSE_KEY_BUFSIZE + 1];
    struct pairs *found = &w->index;
    size_t before = found->count;

    (void) tdb;
    if (store_key_kind((const char *) k.dptr, k.dsize) != STORE_KEY_INDEX
        || k.dsize >= sizeof(key) || memchr(k.dptr, '\0', k.dsize))
        return 0;
    memcpy(key, k.dptr, k.dsize);
    key[k.dsize] = '\0';
    /* Collect this entry's pairs, then keep only the one naming the key. */
    walk_index_entry(w, key, &v);
    size_t keep = found->count;

    for (size_t i = before; i < found->count; i++)
        if (strcmp(found->v[i].owner, (const char *) w->ctx) == 0)
            keep = i;
    if (keep < found->count) {
        struct pair p = found->v[keep];

        found->v[keep] = found->v[before];
        found->v[before++] = p;
    }
    while (found->count > before)
        free(found->v[--found->count].alias);
    return w->failed ? -1 : 0;
}

int reverse_forget(struct store *st, const char *key)
{
    struct walk w = {.st = st, .ctx = (void *) key};
    int rc = 0;

    /* Entries that do not parse are check's: they stay as they are. */
    if (tdb_traverse_read(st->tdb, naming_one, &w) < 0 || w.failed) {
        pairs_free(&w.index);
        return w.failed ? store_fail(st, "out of memory") : store_tdb_fail(st, "traverse");
    }
    for (size_t i = 0; i < w.index.count && rc == 0; i++)
        rc = reverse_update_alias(st, w.index.v[i].alias, key, 0);
    pairs_free(&w.index);
    return rc;
}

/* marker - 1 if the marker says the index is complete, 0 if absent, 2 if
 * it holds a value of another version (st->err says so), -1 on an error. */
static int marker(struct store *st)
{
    TDB_DATA val = tdb_fetch(st->tdb, store_key(STORE_REVERSE_MARKER));
    int ok;

    if (val.dptr == NULL)
        return tdb_error(st->tdb) == TDB_ERR_NOEXIST ? 0 : store_tdb_fail(st, "fetch");
    ok = val.dsize == strlen(REVERSE_MARKER_VALUE)
         && memcmp(val.dptr, REVERSE_MARKER_VALUE, val.dsize) == 0;
    if (!ok)
        store_fail(st, "%s: reverse index marker '%s' has an unknown value '%.*s' "
                   "(a store of a newer version?)", st->path, STORE_REVERSE_MARKER,
                   (int) (val.dsize < 40 ? val.dsize : 40), val.dptr);
    free(val.dptr);
    return ok ? 1 : 2;
}

int store_reverse_ensure(struct store *st, size_t *nrecords)
{
    int m;

    st->tdb_msg[0] = '\0';
    if ((m = marker(st)) != 0)
        return m == 1 ? 0 : -1;
    return store_reverse_build(st, nrecords) < 0 ? -1 : 1;
}

/* report - one mismatch, KEY and a formatted reason. */
static void report(struct walk *w, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(struct walk *w, const char *key, const char *fmt, ...)
{
    char why[3 * ADDR_BUFSIZE];
    va_list ap;

    w->bad++;
    if (w->problem == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    w->problem(key, why, w->ctx);
}

/* compare - merge the two sorted lists and report what only one has. */
static void compare(struct walk *w)
{
    size_t i = 0, j = 0;
    char key[REVERSE_KEY_BUFSIZE];

    while (i < w->records.count || j < w->index.count) {
        int c = i == w->records.count ? 1 : j == w->index.count ? -1
                : pair_cmp(&w->records.v[i], &w->index.v[j]);

        if (c == 0) {
            i++, j++;
        } else if (c < 0) {
            reverse_key(w->records.v[i].alias, key);
            report(w, w->records.v[i].owner, "not in the reverse index (entry '%s' does "
                   "not name it)", key);
            i++;
        } else {
            reverse_key(w->index.v[j].alias, key);
            report(w, key, "reverse index names '%s', which has no record with that "
                   "alias", w->index.v[j].owner);
            j++;
        }
    }
}

int store_reverse_check(struct store *st, store_problem_fn fn, void *ctx)
{
    struct walk w = {.st = st, .problem = fn, .ctx = ctx};
    int m, rc;

    st->tdb_msg[0] = '\0';
    rc = store_traverse_read(st, walk_one, &w);
    if (rc < 0 || w.failed) {
        if (w.failed)
            store_fail(st, "%s: reverse index check: out of memory", st->path);
        else
            store_tdb_fail(st, "traverse");
        pairs_free(&w.records);
        pairs_free(&w.index);
        return -1;
    }
    pairs_sort(&w.records);
    pairs_sort(&w.index);
    compare(&w);
    pairs_free(&w.records);
    pairs_free(&w.index);
    if ((m = marker(st)) < 0)
        return -1;
    if (m == 0)
        report(&w, STORE_REVERSE_MARKER, "missing: the reverse index is not known to be "
               "complete");
    else if (m == 2)
        report(&w, STORE_REVERSE_MARKER, "%s", st->err);
    return w.bad;
}
