/*
 * store_int.h - what store.c, journal.c and store_reverse.c share; not for
 * other modules.
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
    /* The journal sequence inside the open transaction: read once, written
     * once by store_commit (not a fetch and a store per entry). */
    unsigned long long txn_seq;
    int txn_seq_loaded, txn_seq_dirty;
    off_t size_seen;            /* largest size of the open file seen so far */
    char err[STORE_ERR_MAX];
    char tdb_msg[200];          /* last message of tdb's log function */
};

/* journal_seq_flush - store the transaction's journal sequence if it moved. */
int journal_seq_flush(struct store *st);

/* store_fail - set the error message; always returns -1. */
int store_fail(struct store *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * store_traverse_read - tdb_traverse_read under one allrecord read lock
 * (outside a transaction, which holds one already): the walk then takes no
 * lock per hash chain and record -- two fcntl calls each, most of a
 * million-record walk's time, each one waiting on the milter's locks --
 * and sees one committed state. Readers are not held up; writers wait.
 */
int store_traverse_read(struct store *st, tdb_traverse_func fn, void *ctx);

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

/* Kinds of keys: a record's kind (enum record_kind), or one of these. */
#define STORE_KEY_RESERVED (-1)     /* '!': journal, markers */
#define STORE_KEY_INDEX (-2)        /* '=': reverse index */

/* store_key_kind - what the LEN bytes of KEY hold. */
int store_key_kind(const char *key, size_t len);

/*
 * reverse_update - move KEY in the index from OLD's alias to REC's, inside
 * the open transaction. OLD NULL: KEY had no (readable) record; REC NULL:
 * KEY is being deleted.
 */
int reverse_update(struct store *st, const char *key, const struct record *old,
                   const struct record *rec);

/* The reverse index's keys, values and marker (store_reverse.c). */
#define REVERSE_KEY_BUFSIZE (ADDR_BUFSIZE + 2)     /* '=' '@'? alias NUL */
#define REVERSE_MARKER_VALUE "v=1"

struct reverse_owners {
    const char **name;          /* sorted; pointing into the parsed text */
    size_t count;
};

void reverse_key(const char *alias, char out[REVERSE_KEY_BUFSIZE]);

/*
 * reverse_parse - the owners of ALIAS in TEXT (NUL-terminated, split in
 * place), strictly: "v=1 owners=" then sorted, distinct keys of the right
 * kind. Returns 0 with O->name malloc'd (the caller frees it), or -1 with
 * WHY set.
 */
int reverse_parse(const char *alias, char *text, struct reverse_owners *o,
                  char *why, size_t whylen);

/* reverse_store - write ALIAS's entry with the N sorted NAMEs; none: delete it. */
int reverse_store(struct store *st, const char *alias, const char *const *name, size_t n);

/* reverse_update_alias - add OWNER to ALIAS's entry (ADD) or drop it. */
int reverse_update_alias(struct store *st, const char *alias, const char *owner, int add);

/*
 * reverse_forget - drop KEY from every entry that names it, by a walk of
 * the whole store: for a record that does not parse, whose alias is
 * unknown, being overwritten or deleted (rare: how a bad record is mended).
 */
int reverse_forget(struct store *st, const char *key);

/* reverse_mark - write the marker of a complete index, inside the open
 * transaction or, for a new empty store, on its own. */
int reverse_mark(struct store *st);

static inline TDB_DATA store_key(const char *key)
{
    TDB_DATA d = {(unsigned char *) key, strlen(key)};
    return d;
}

#endif
