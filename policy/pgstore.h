/*
 * pgstore.h - the shared state of several MX hosts in PostgreSQL (DESIGN
 * section 11): records, the journal of every change, the replicas'
 * positions, and the notifications that wake the followers.
 *
 * The database is the one writer's truth; each host's TDB is a replica
 * kept by `coexistctl follow` from the journal. A change (change.h) is
 * applied in one transaction, compare-and-set: records, journal rows and a
 * NOTIFY commit together or not at all.
 *
 * Journal order: the transaction that applies a change takes the lock of
 * the one coexist_meta row before it takes journal ids, and keeps it until
 * it commits. Journal ids therefore become visible in id order, so a
 * follower that has seen id N and reads "id > N" can never skip a row that
 * commits later with a smaller id. Ids of rolled-back transactions are
 * skipped: ids are increasing, not dense. Rows whose key starts with '!'
 * are notes (change_note), not records.
 *
 * Every function returns a pgstore result: PGSTORE_OK (0) or a negative
 * code, with a one-line reason in ERR (PGSTORE_ERR_MAX bytes). The codes
 * are change.h's: a caller maps CHANGE_UNAVAILABLE to EX_TEMPFAIL and
 * CHANGE_CONFLICT to "refresh and retry". The library never prints or
 * logs (libpq's notices are silenced). A handle is not thread-safe.
 * Nothing here reconnects behind the caller's back: after
 * PGSTORE_UNAVAILABLE the caller calls pgstore_reset() when it wants to.
 */
#ifndef COEXIST_PGSTORE_H
#define COEXIST_PGSTORE_H

#include <time.h>

#include "change.h"

#define PGSTORE_ERR_MAX 512
#define PGSTORE_SCHEMA_VERSION 2        /* what this build writes and reads (2: counters) */
#define PGSTORE_CHANNEL "coexist"       /* LISTEN/NOTIFY channel; payload: journal id */
#define PGSTORE_ID_MAX 64               /* a database id, NUL included */

enum pgstore_result {
    PGSTORE_OK = CHANGE_OK,
    PGSTORE_ERROR = CHANGE_ERROR,               /* refused, or a server error */
    PGSTORE_CONFLICT = CHANGE_CONFLICT,         /* pgstore_apply: expected values
                                                 * did not match, or a race was lost */
    PGSTORE_UNAVAILABLE = CHANGE_UNAVAILABLE,   /* cannot reach the database */
};

struct pgstore;

/*
 * pgstore_connect - connect with the libpq CONNINFO ("service=coexist",
 * "host=/run/pg dbname=coexist"). PGSTORE_OK and *DB; PGSTORE_ERROR for a
 * malformed conninfo; PGSTORE_UNAVAILABLE if it does not connect. *DB is
 * NULL on failure.
 */
int pgstore_connect(const char *conninfo, struct pgstore **db,
                    char err[PGSTORE_ERR_MAX]);

/* pgstore_close - disconnect and free DB; NULL is fine. */
void pgstore_close(struct pgstore *db);

/*
 * pgstore_reset - reconnect with the same conninfo (after a server restart
 * or a lost connection), LISTEN again if pgstore_listen was called.
 * PGSTORE_OK, or PGSTORE_UNAVAILABLE (DB stays usable for another reset).
 */
int pgstore_reset(struct pgstore *db, char err[PGSTORE_ERR_MAX]);

/* ---- schema (pgschema.c) ---- */

/*
 * pgstore_init - create the schema at PGSTORE_SCHEMA_VERSION, with a new
 * random database id, in one transaction. Refuses a database that has it
 * already, or that has a table of ours by name but not our marker.
 */
int pgstore_init(struct pgstore *db, char err[PGSTORE_ERR_MAX]);

/*
 * pgstore_check_schema - make sure the database holds our schema at this
 * build's version: current is fine, older is upgraded (pgstore_upgrade),
 * newer or foreign is refused. Remembers the database id.
 */
int pgstore_check_schema(struct pgstore *db, char err[PGSTORE_ERR_MAX]);

/*
 * pgstore_upgrade - run the upgrade steps from the database's version to
 * PGSTORE_SCHEMA_VERSION in one transaction (a no-op when current).
 */
int pgstore_upgrade(struct pgstore *db, char err[PGSTORE_ERR_MAX]);

/*
 * pgstore_database_id - the random id made by pgstore_init, as read by the
 * last pgstore_check_schema ("" before). Points into DB.
 */
const char *pgstore_database_id(const struct pgstore *db);

/* ---- writing (pgapply.c) ---- */

/*
 * pgstore_apply - apply CH in one transaction, compare-and-set (change.h):
 * records locked in key order, each compared with its expected value,
 * written, journaled with CH's actor and node; notes journaled; NOTIFY
 * with the last journal id. PGSTORE_OK and *LAST_ID (may be NULL) the id
 * of the last journal row (0 for an empty change, which writes nothing);
 * PGSTORE_CONFLICT naming the first key that differed; PGSTORE_ERROR for
 * a change CH refuses (change_order) or a server error; PGSTORE_UNAVAILABLE.
 * On any failure nothing was committed -- except a connection lost during
 * COMMIT itself, which ERR reports as an unknown outcome (with
 * PGSTORE_UNAVAILABLE: a retry of a compare-and-set change is safe).
 */
int pgstore_apply(struct pgstore *db, const struct change *ch, long long *last_id,
                  char err[PGSTORE_ERR_MAX]);

/* ---- reading (pgread.c) ---- */

/*
 * pgstore_owners - call FN (may be NULL) with every record key whose
 * reverse-index key is ALIAS ("adam@pop.example", "@pop.example"), in key
 * order; FN returns 0 to go on, non-zero to stop. Returns the number of
 * keys visited (>= 0), or a negative result.
 */
typedef int (*pgstore_key_fn)(const char *key, void *ctx);
int pgstore_owners(struct pgstore *db, const char *alias, pgstore_key_fn fn,
                   void *ctx, char err[PGSTORE_ERR_MAX]);

/*
 * pgstore_snapshot - call FN for every record, in no particular order,
 * from one REPEATABLE READ READ ONLY transaction that also reads the
 * journal's latest id into *POSITION: the records are exactly the state
 * after journal row *POSITION. FN returns 0 to go on, non-zero to stop
 * (then PGSTORE_ERROR, "stopped"). Strings are valid during the call only.
 */
typedef int (*pgstore_record_fn)(const char *key, const char *value, void *ctx);
int pgstore_snapshot(struct pgstore *db, pgstore_record_fn fn, void *ctx,
                     long long *position, char err[PGSTORE_ERR_MAX]);

/* ---- the journal and the replicas (pgjournal.c) ---- */

/* One journal row; strings NULL where the column is NULL (absent). */
struct pgstore_row {
    long long id;
    time_t at;
    const char *actor;
    const char *node;
    const char *key;            /* a record key, or a note key ("!import") */
    const char *old_value;      /* NULL: the record was created */
    const char *new_value;      /* NULL: the record was deleted */
};
typedef int (*pgstore_row_fn)(const struct pgstore_row *row, void *ctx);

/*
 * pgstore_journal_since - call FN for the journal rows with id > POSITION,
 * in id order, at most LIMIT (> 0) of them; FN returns 0 to go on, non-zero
 * to stop. Returns the number of rows visited (>= 0), or a negative result.
 * Strings are valid during the call only.
 */
int pgstore_journal_since(struct pgstore *db, long long position, long limit,
                          pgstore_row_fn fn, void *ctx, char err[PGSTORE_ERR_MAX]);

/* pgstore_latest_id - the id of the newest journal row (0: none ever). */
int pgstore_latest_id(struct pgstore *db, long long *id, char err[PGSTORE_ERR_MAX]);

/*
 * pgstore_history - the journal newest first, for KEY only unless NULL, at
 * most LIMIT rows (0: all): what "coexistctl history" shows with the
 * shared store. Returns the number of rows visited, or a result code.
 */
int pgstore_history(struct pgstore *db, const char *key, long limit, pgstore_row_fn fn,
                    void *ctx, char err[PGSTORE_ERR_MAX]);

/*
 * pgstore_oldest_id - the lowest id the journal still holds completely:
 * rows below it may have been pruned. A follower at position P has missed
 * rows (and needs a snapshot) iff P + 1 < *ID.
 */
int pgstore_oldest_id(struct pgstore *db, long long *id, char err[PGSTORE_ERR_MAX]);

/*
 * pgstore_counters_push - store N counters values (KEYS[i] -> VALUES[i],
 * the text of counters.h) as NODE's, replacing NODE's earlier ones, in one
 * transaction (schema version 2). A result code.
 */
int pgstore_counters_push(struct pgstore *db, const char *node, size_t n,
                          const char *const *keys, const char *const *values,
                          char err[PGSTORE_ERR_MAX]);

/* One counters row: return non-zero to stop the walk. */
typedef int (*pgstore_counters_fn)(const char *node, const char *key, const char *value,
                                   void *ctx);

/*
 * pgstore_counters_traverse - FN for every counters row of a node other
 * than EXCEPT_NODE (NULL: all), by key: the number of rows, or a result
 * code (a walk FN stopped is PGSTORE_ERROR).
 */
int pgstore_counters_traverse(struct pgstore *db, const char *except_node,
                              pgstore_counters_fn fn, void *ctx, char err[PGSTORE_ERR_MAX]);

/* pgstore_prune - delete the journal rows with id < BEFORE_ID. */
int pgstore_prune(struct pgstore *db, long long before_id, char err[PGSTORE_ERR_MAX]);

/* pgstore_report_position - record that NODE's replica has applied POSITION. */
int pgstore_report_position(struct pgstore *db, const char *node, long long position,
                            char err[PGSTORE_ERR_MAX]);

/*
 * pgstore_positions - call FN for every replica that reported, by node
 * name. Returns the number visited (>= 0), or a negative result.
 */
typedef int (*pgstore_position_fn)(const char *node, long long position, time_t at,
                                   void *ctx);
int pgstore_positions(struct pgstore *db, pgstore_position_fn fn, void *ctx,
                      char err[PGSTORE_ERR_MAX]);

/* ---- lag (pglag.c) ---- */

/*
 * pgstore_lag - the journal rows a replica at POSITION has not applied:
 * their number into *ROWS and the time of the oldest into *OLDEST (0 when
 * none).
 */
int pgstore_lag(struct pgstore *db, long long position, long long *rows, time_t *oldest,
                char err[PGSTORE_ERR_MAX]);

/* ---- notifications (pgnotify.c) ---- */

/* pgstore_listen - LISTEN on PGSTORE_CHANNEL (again after each reset). */
int pgstore_listen(struct pgstore *db, char err[PGSTORE_ERR_MAX]);

/* pgstore_socket - the connection's socket for the caller's poll(), or -1. */
int pgstore_socket(const struct pgstore *db);

/*
 * pgstore_wait_notify - wait up to TIMEOUT_MS (-1: forever) for
 * notifications. PGSTORE_OK with *GOT the highest journal id they named,
 * or 0 if none arrived (timeout, or a signal interrupted the wait);
 * PGSTORE_UNAVAILABLE when the connection is lost.
 */
int pgstore_wait_notify(struct pgstore *db, int timeout_ms, long long *got,
                        char err[PGSTORE_ERR_MAX]);

#endif
