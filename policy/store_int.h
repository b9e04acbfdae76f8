/*
 * store_int.h - what store.c and journal.c share; not for other modules.
 */
#ifndef COEXIST_STORE_INT_H
#define COEXIST_STORE_INT_H

#include <sys/types.h>
#include <fcntl.h>
#include <stdarg.h>
#include <tdb.h>

#include "store.h"

struct store {
    struct tdb_context *tdb;
    char path[4096];
    int in_txn;                 /* a caller's store_begin is open */
    off_t size_seen;            /* largest size of the open file seen so far */
    char err[STORE_ERR_MAX];
    char tdb_msg[200];          /* last message of tdb's log function */
};

/* store_fail - set the error message; always returns -1. */
int store_fail(struct store *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* store_tdb_fail - the error message of a failed tdb call WHAT. */
int store_tdb_fail(struct store *st, const char *what);

/*
 * store_tdb_write_fail - the same for a call that writes (store, delete,
 * commit): a full file system is named as such. The caller sets errno to
 * 0 before the call, so that an ENOSPC left in it is this call's.
 */
int store_tdb_write_fail(struct store *st, const char *what);

/* journal_append - the journal entry of a change, inside the transaction. */
int journal_append(struct store *st, const char *key, const char *old_value,
                   const char *new_value, const char *actor);

static inline TDB_DATA store_key(const char *key)
{
    TDB_DATA d = {(unsigned char *) key, strlen(key)};
    return d;
}

#endif
