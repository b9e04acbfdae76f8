/*
 * replica.h - the local TDB as a replica of the shared store (DESIGN
 * section 11): the milter keeps reading its TDB, and `coexistctl follow`
 * keeps that TDB equal to the database by applying the shared journal.
 *
 * The replica's position (the id of the last journal row it has applied)
 * and the id of the database it copies live in the TDB itself, under the
 * reserved key REPLICA_KEY = "v=1 db=<database id> position=<N>", written
 * in the same tdb transaction as the rows it covers: a follower killed at
 * any moment leaves records and position agreeing, so every row is
 * applied exactly once.
 *
 * When applying rows cannot bring the replica up to date -- no replica
 * yet, no position in it, a file that fails store_check, a replica of
 * another database, or a journal pruned past its position -- a snapshot
 * replaces it: a new file beside state_db filled from the database in one
 * transaction, then rename(2)d over state_db. A live file is never
 * truncated; the milter reopens on the inode change.
 *
 * Functions return a replica result and a one-line reason in ERR
 * (REPLICA_ERR_MAX bytes); the library never prints or logs. Database
 * results keep pgstore.h's values. A struct replica is not thread-safe.
 */
#ifndef COEXIST_REPLICA_H
#define COEXIST_REPLICA_H

#include "store.h"

#define REPLICA_KEY "!replica"
#define REPLICA_ERR_MAX 1024
#define REPLICA_ID_MAX 64               /* a database id, NUL included */
#define REPLICA_BATCH 1000              /* journal rows per tdb transaction */

enum replica_result {
    REPLICA_OK = 0,
    REPLICA_ERROR = -1,                 /* the database refused (PGSTORE_ERROR) */
    REPLICA_UNAVAILABLE = -3,           /* the database cannot be reached */
    REPLICA_LOCAL = -4,                 /* the local store failed (full disk, ...) */
    REPLICA_NEEDS_SNAPSHOT = -5,        /* rows cannot bring it up to date */
};

/* Where a replica is: what its REPLICA_KEY says. */
struct replica_position {
    long long position;                 /* last journal id applied */
    char database_id[REPLICA_ID_MAX];
};

/* ---- the position, without a database (replica_local.c) ---- */

/*
 * replica_position_read - the position stored in the open ST. Returns 1
 * and *POS, 0 if ST has none (not a replica, or not yet), -1 if the key is
 * there but does not parse (a damaged replica).
 */
int replica_position_read(struct store *st, struct replica_position *pos,
                          char err[REPLICA_ERR_MAX]);

/*
 * replica_position_write - store POS in ST, inside its open transaction
 * (the one that applies the rows POS covers).
 */
int replica_position_write(struct store *st, const struct replica_position *pos,
                           char err[REPLICA_ERR_MAX]);

/*
 * replica_status - the position of the replica at STATE_DB, opened and
 * closed again: 1 and *POS, 0 if it has no position, -1 (also when the
 * file cannot be opened). STATE_DB must not be open in this process (tdb
 * allows one open of a file per process).
 */
int replica_status(const char *state_db, struct replica_position *pos,
                   char err[REPLICA_ERR_MAX]);

/*
 * replica_wait_for - a writer's wait: return once the replica at STATE_DB
 * has applied journal id ID, polling its position (the store opened and
 * closed each time, so that it works while `follow` holds the file, and
 * across a snapshot's rename). Returns 1 reached, 0 not within SECONDS,
 * -1 on an error. *SEEN (may be NULL) gets the last position seen, -1 if
 * none (no replica yet, or no position in it). Like replica_status, the
 * caller must not hold STATE_DB open itself.
 */
int replica_wait_for(const char *state_db, long long id, unsigned seconds,
                     long long *seen, char err[REPLICA_ERR_MAX]);

/* ---- keeping it (replica.c; only with PostgreSQL) ---- */

struct pgstore;

struct replica {
    char path[4096];                    /* state_db */
    unsigned hash_size;                 /* of a snapshot's new file */
    struct store *st;                   /* NULL: no usable replica */
    struct replica_position pos;        /* valid when damaged is "" */
    char damaged[REPLICA_ERR_MAX];      /* why it needs a snapshot, or "" */
};

/*
 * replica_open - R for the replica at STATE_DB. A missing file, one that
 * does not open or has no position, and with CHECK one that fails
 * store_check, is no error: R->damaged says why it needs a snapshot.
 * Returns 0, or -1 only for a path too long.
 */
int replica_open(struct replica *r, const char *state_db, unsigned hash_size, int check,
                 char err[REPLICA_ERR_MAX]);

/* replica_close - close R's store; R may be opened again. */
void replica_close(struct replica *r);

/*
 * replica_watch - is R's file still the replica R holds? Cheap enough to
 * call every second (a stat, an fstat and one fetch): a file removed or
 * replaced on disk is reopened; one whose position no longer reads back as
 * R's (overwritten in place) is reopened with store_check. Returns 1 when
 * R is now damaged (R->damaged says why: the next replica_apply_since
 * asks for a snapshot), 0 when it is fine.
 */
int replica_watch(struct replica *r);

/*
 * replica_recheck - reopen R's file with store_check, after a local write
 * failed: a file damaged in place then asks for a snapshot instead of
 * failing every retry. Returns 1 when R is damaged, 0 when it is fine.
 */
int replica_recheck(struct replica *r);

/*
 * replica_apply_since - apply the journal rows past R's position, in
 * transactions of up to BATCH rows (0: REPLICA_BATCH) that each store the
 * new position, until none is left or BUDGET_MS has passed (0: no limit).
 * A put's record text is stored as it is (no per-key journal entry), a
 * deletion deletes, notes ('!' keys) only move the position. A file
 * replaced or removed on disk is reopened first. *APPLIED (may be NULL)
 * gets the number of rows applied. REPLICA_OK; REPLICA_NEEDS_SNAPSHOT
 * with the reason (see above; also a row that does not apply, which marks
 * R damaged); REPLICA_LOCAL; or a database result (what was committed
 * stays committed).
 */
int replica_apply_since(struct replica *r, struct pgstore *db, long batch,
                        unsigned budget_ms, long long *applied, char err[REPLICA_ERR_MAX]);

/*
 * replica_snapshot - replace the replica by the database's state: a new
 * file "<state_db>.snapshot.<pid>" with R's hash size, every record put
 * (so the reverse index is built) and the position stored in one
 * transaction, synced, renamed over state_db, and opened as R's store.
 * *RECORDS (may be NULL) gets the number of records. On failure the old
 * replica is left as it was and the new file removed.
 */
int replica_snapshot(struct replica *r, struct pgstore *db, long long *records,
                     char err[REPLICA_ERR_MAX]);

#endif
