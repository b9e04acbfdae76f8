/*
 * store.h - the coexistence state store: records in one TDB file, and the
 * journal of every change, written in the same transaction.
 *
 * Keys are normalized addresses ("local@domain") and domain rules
 * ("@domain"). Journal entries live under keys that start with '!' and
 * contain no '@', so they can never collide with an address.
 *
 * The reverse index (DESIGN section 9) lives under keys that start with
 * '=': "=ALIAS" for the users whose alias is ALIAS, "=@LEGACY" for the
 * domain rules whose legacy domain is LEGACY, each "v=1 owners=a,b" with
 * the owners sorted. store_put, store_delete and store_wipe_records keep it
 * in the same transaction as the record, and never journal it. An address
 * starting with '=' can therefore never be a record key: store_put refuses
 * one, and store_get of one says "absent". "!reverse-index" = "v=1" marks a
 * complete index; a store written before the index has none, and
 * store_reverse_ensure builds it.
 *
 * Every function returns 0 on success and -1 on failure with a message in
 * the handle (store_error()); the library never prints or logs. A handle is
 * not thread-safe: the caller serializes access (the milter holds one mutex).
 */
#ifndef COEXIST_STORE_H
#define COEXIST_STORE_H

#include <stddef.h>
#include <time.h>

#include "record.h"

#define STORE_DEFAULT_HASH_SIZE 10007
#define STORE_JOURNAL_PREFIX "!journal/"
#define STORE_JOURNAL_SEQ_KEY "!journal-seq"
#define STORE_ERR_MAX 512
#define STORE_REVERSE_PREFIX '='
#define STORE_REVERSE_MARKER "!reverse-index"

struct store;

enum store_open_mode {
    STORE_OPEN_EXISTING,        /* fail if the file does not exist */
    STORE_CREATE,               /* create; fail if it exists */
};

/*
 * store_open - open PATH read-write (or create it with HASH_SIZE buckets,
 * rounded up to a prime). Returns a handle, or NULL with the reason in ERR.
 */
struct store *store_open(const char *path, enum store_open_mode mode,
                         unsigned hash_size, char err[STORE_ERR_MAX]);
void store_close(struct store *st);

/* store_error - the message of the last failure on ST. */
const char *store_error(const struct store *st);

/*
 * store_changed_on_disk - 1 if PATH now names another file than the one
 * open (replaced by rename, deleted), 2 if it is the same file but smaller
 * than it was (truncated in place: reading the mapped tail would be
 * SIGBUS), 0 if the same, -1 if PATH is gone. A tdb file only grows in
 * normal use; on 1, 2 or -1 the caller reopens before any lookup.
 */
int store_changed_on_disk(struct store *st);
const char *store_path(const struct store *st);

/*
 * store_get - look KEY up. Returns 1 and fills *REC if found, 0 if absent,
 * -1 on a store error (including a record that does not parse). A KEY
 * starting with '=' is always absent: it names a reverse index entry, and
 * a recipient "=adam@pop.example" must not read one as a record.
 */
int store_get(struct store *st, const char *key, struct record *rec);

/*
 * store_get_text - KEY's stored text as it is, undecoded, into TEXT (LEN
 * bytes): 1, 0 if absent, -1 on an error. A value that is no text (longer
 * than LEN - 1, a NUL in it) is given as a stand-in that starts with '!'
 * and is the same for the same bytes. What a change compares for
 * compare-and-set, so that a record that no longer decodes can still be
 * removed or replaced.
 */
int store_get_text(struct store *st, const char *key, char *text, size_t len);

/*
 * store_read_lock / store_read_unlock - one read lock over the whole store
 * for a batch of store_get calls (the milter's lookups for one message).
 * The batch then sees one committed state: a writer's commit waits for the
 * unlock, and the lock waits for a commit in progress. Each store_get
 * inside skips its own chain lock and unlock (two fcntl calls). Hold it
 * for microseconds, never across I/O: it holds off every writer.
 */
int store_read_lock(struct store *st);
void store_read_unlock(struct store *st);

/*
 * store_put / store_delete - change KEY and journal the change with ACTOR,
 * inside the current transaction (store_begin) or in one of their own; the
 * reverse index follows in the same transaction. ACTOR NULL skips the
 * per-key journal entry: a bulk import journals one summary entry
 * (store_journal_note) instead of a million. store_delete of an absent key
 * is an error, and so is a KEY starting with '!' or '='.
 */
int store_put(struct store *st, const char *key, const struct record *rec,
              const char *actor);
int store_delete(struct store *st, const char *key, const char *actor);

int store_begin(struct store *st);
int store_commit(struct store *st);
void store_cancel(struct store *st);

/*
 * store_traverse - call FN for every record (journal skipped), in no
 * particular order. FN returns 0 to go on, non-zero to stop. Returns -1 if
 * a record does not parse or the traversal failed, else 0.
 */
typedef int (*store_visit_fn)(const char *key, const struct record *rec,
                              void *ctx);
int store_traverse(struct store *st, store_visit_fn fn, void *ctx);

/*
 * store_walk_step - the traversal in steps: FN for at most MAX more records
 * after CUR (zeroed to start), in tdb's order. Call it inside
 * store_read_lock; between steps the lock may be dropped. Returns 1 when
 * the walk is done, 0 when there is more, -1 when a record does not parse
 * or the store changed under the cursor (start again).
 */
struct store_cursor {
    char sc_key[ADDR_BUFSIZE + 8];      /* any key: an index key is '=' + an alias */
    size_t sc_len;
    int sc_started;
};
int store_walk_step(struct store *st, struct store_cursor *cur, size_t max,
                    store_visit_fn fn, void *ctx);

/* One journal entry, as read back; strings point into a private buffer. */
struct journal_entry {
    unsigned long long seq;
    time_t when;
    const char *actor;
    const char *key;
    const char *old_value;      /* "-" when created */
    const char *new_value;      /* "-" when removed */
    const char *node;           /* the host that made it (shared journal), or NULL */
};
typedef int (*journal_visit_fn)(const struct journal_entry *entry, void *ctx);

/*
 * store_journal - visit journal entries for KEY (NULL: all) newest first,
 * at most LIMIT of them (0: all).
 */
int store_journal(struct store *st, const char *key, unsigned limit,
                  journal_visit_fn fn, void *ctx);

/*
 * store_check - tdb_check plus every record decoded. Returns the number of
 * bad records found (their keys reported through FN if not NULL), or -1 if
 * the file itself is damaged.
 */
typedef void (*store_problem_fn)(const char *key, const char *why, void *ctx);
int store_check(struct store *st, store_problem_fn fn, void *ctx);

/*
 * store_rebuild - rewrite every record into a freshly laid out file, in one
 * transaction (tdb_repack). What check does when tdb_check finds damage
 * that every record survived: e.g. a file grown by a transaction that was
 * killed before it armed its recovery area, whose new space tdb never
 * formatted. Returns 0, or -1 with store_error() set and the store as it was.
 */
int store_rebuild(struct store *st);

/* store_journal_note - journal a free-form entry (e.g. an import summary). */
int store_journal_note(struct store *st, const char *key, const char *old_value,
                       const char *new_value, const char *actor);

/* store_wipe_records - delete every record and the reverse index (not the
 * journal, not the index's marker: an empty index is complete). */
int store_wipe_records(struct store *st);

/* store_seqnum - changes whenever a writer commits (TDB_SEQNUM). */
int store_seqnum(struct store *st);

/*
 * store_reverse_get - who has ALIAS (a normalized user address, or
 * "@legacydomain" for domain rules) as alias, by the reverse index. Returns
 * the number of owners: 0 none, else OWNER is filled with the first (in
 * byte order); -1 on a store error (an index entry that does not parse).
 * Like store_get it works inside store_read_lock, and on a store without
 * an index (written by an older version) it finds nothing.
 */
int store_reverse_get(struct store *st, const char *alias, char owner[ADDR_BUFSIZE]);

/*
 * store_reverse_owners - call FN for every owner of ALIAS, in byte order;
 * OWNER points into a private buffer valid during the call. FN returns 0
 * to go on, non-zero to stop. Returns the number of owners, or -1.
 */
typedef int (*store_owner_fn)(const char *owner, void *ctx);
int store_reverse_owners(struct store *st, const char *alias, store_owner_fn fn,
                         void *ctx);

/* store_reverse_alias - the index name of REC's alias: "a@b" or "@legacy". */
void store_reverse_alias(const struct record *rec, char out[ADDR_BUFSIZE + 1]);

/*
 * store_reverse_build - drop every index entry and write the index of all
 * records anew, with its marker, in one transaction (the caller's or its
 * own). Records that do not parse are left out (check reports them).
 * *NRECORDS (if not NULL) gets the number of records indexed.
 */
int store_reverse_build(struct store *st, size_t *nrecords);

/*
 * store_reverse_ensure - build the index if its marker is missing (a store
 * of an older version). Returns 0 if it was there, 1 if it was built,
 * -1 on an error (also a marker of an unknown version).
 */
int store_reverse_ensure(struct store *st, size_t *nrecords);

/*
 * store_reverse_check - the index against the records, both ways: every
 * record named by the entry of its alias, every owner of an entry a record
 * with that alias, every entry parsed, the marker present. Each mismatch
 * goes to FN (if not NULL). Returns the number found, or -1. Records that
 * do not parse are store_check's to report, and are skipped here.
 */
int store_reverse_check(struct store *st, store_problem_fn fn, void *ctx);

/*
 * store_meta_get / store_meta_put - a reserved key of another module
 * (KEY starts with '!', has no '@', and is not the journal's or the
 * index's): a short text, never journaled, written inside the current
 * transaction or in one of its own. store_meta_get returns 1 and the text
 * in BUF (LEN bytes), 0 if absent, -1 on an error (also a value that does
 * not fit).
 */
int store_meta_get(struct store *st, const char *key, char *buf, size_t len);
int store_meta_put(struct store *st, const char *key, const char *value);

#endif
