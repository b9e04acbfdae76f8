/*
 * store_walk.c - a traversal of the records in steps (see store.h), for a
 * reader that must not hold the store for the whole of one: the milter
 * counts the users for metrics_file between lookups, a thousand records
 * per hold of its lock, where one traversal of 10^5 records would stop its
 * mail for a fifth of a second and one of 10^6 for seconds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* walk_next - the key after CUR's (the first at the start), malloc'd by tdb. */
static TDB_DATA walk_next(struct store *st, const struct store_cursor *cur)
{
    TDB_DATA k = {(unsigned char *) cur->sc_key, cur->sc_len};

    return cur->sc_started ? tdb_nextkey(st->tdb, k) : tdb_firstkey(st->tdb);
}

int store_walk_step(struct store *st, struct store_cursor *cur, size_t max,
                    store_visit_fn fn, void *ctx)
{
    char key[ADDR_BUFSIZE + 1], why[256];
    struct record rec;

    for (size_t n = 0; n < max; n++) {
        TDB_DATA k = walk_next(st, cur), v;
        int kind;

        if (k.dptr == NULL) {
            TDB_DATA at = {(unsigned char *) cur->sc_key, cur->sc_len};

            /* The end, unless the cursor's key went away between two steps. */
            if (!cur->sc_started || tdb_exists(st->tdb, at))
                return 1;
            return store_fail(st, "%s: the store changed during the walk", st->path);
        }
        if (k.dsize > sizeof(cur->sc_key)) {
            free(k.dptr);
            return store_fail(st, "%s: a key of %zu bytes", st->path, k.dsize);
        }
        memcpy(cur->sc_key, k.dptr, k.dsize);
        cur->sc_len = k.dsize;
        cur->sc_started = 1;
        kind = store_key_kind((const char *) k.dptr, k.dsize);
        if (kind < 0) {
            free(k.dptr);
            continue;
        }
        v = tdb_fetch(st->tdb, k);
        free(k.dptr);
        snprintf(key, sizeof(key), "%.*s", (int) (cur->sc_len < ADDR_BUFSIZE ? cur->sc_len
                                                 : ADDR_BUFSIZE), cur->sc_key);
        if (v.dptr == NULL)
            return store_fail(st, "%s: '%s' went away during the walk", st->path, key);
        if (cur->sc_len > ADDR_MAX || memchr(cur->sc_key, '\0', cur->sc_len) != NULL
            || record_decode((enum record_kind) kind, (const char *) v.dptr, v.dsize, &rec,
                             why, sizeof(why)) < 0) {
            free(v.dptr);
            return store_fail(st, "%s: corrupt record for '%s'", st->path, key);
        }
        free(v.dptr);
        if (fn(key, &rec, ctx) != 0)
            return 1;
    }
    return 0;
}
