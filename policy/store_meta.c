/*
 * store_meta.c - reserved '!' keys that are neither records nor journal
 * entries: small markers a module keeps beside the records, such as the
 * replica's position ("!replica", replica.h), written in the caller's
 * transaction so that they can never disagree with the records they
 * describe (see store.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/*
 * meta_key_ok - a meta key starts with '!', has no '@', and is none of the
 * keys the store itself manages (the journal, its sequence, the index's
 * marker): a caller must not be able to forge those.
 */
static int meta_key_ok(struct store *st, const char *key)
{
    if (key[0] != '!' || strchr(key, '@') != NULL
        || strncmp(key, STORE_JOURNAL_PREFIX, strlen(STORE_JOURNAL_PREFIX)) == 0
        || strcmp(key, STORE_JOURNAL_SEQ_KEY) == 0 || strcmp(key, STORE_REVERSE_MARKER) == 0)
        return store_fail(st, "'%s' is not a meta key", key);
    return 0;
}

int store_meta_get(struct store *st, const char *key, char *buf, size_t len)
{
    TDB_DATA val;

    if (meta_key_ok(st, key) < 0)
        return -1;
    st->tdb_msg[0] = '\0';
    val = tdb_fetch(st->tdb, store_key(key));
    if (val.dptr == NULL) {
        if (tdb_error(st->tdb) == TDB_ERR_NOEXIST)
            return 0;
        return store_tdb_fail(st, "fetch");
    }
    if (val.dsize >= len || memchr(val.dptr, '\0', val.dsize) != NULL) {
        free(val.dptr);
        return store_fail(st, "%s: value of '%s' is not a short text", st->path, key);
    }
    memcpy(buf, val.dptr, val.dsize);
    buf[val.dsize] = '\0';
    free(val.dptr);
    return 1;
}

int store_meta_put(struct store *st, const char *key, const char *value)
{
    int own_txn = !st->in_txn;

    if (meta_key_ok(st, key) < 0)
        return -1;
    if (own_txn && store_begin(st) < 0)
        return -1;
    errno = 0;
    if (tdb_store(st->tdb, store_key(key),
                  (TDB_DATA) {(unsigned char *) value, strlen(value)}, 0) != 0) {
        store_tdb_write_fail(st, "store");
        if (own_txn)
            store_cancel(st);
        return -1;
    }
    return own_txn ? store_commit(st) : 0;
}
