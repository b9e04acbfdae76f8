/*
 * pgapply.c - applying a change set to the shared store, compare-and-set,
 * in one transaction (see pgstore.h, change.h).
 *
 * A change may hold 10^6 ops (an import): one statement per op would be
 * 10^6 round trips, so the ops are streamed with COPY into a temporary
 * staging table and merged with a few set statements:
 *
 *   lock    SELECT ... FOR UPDATE of every existing record named, in key
 *           order (two hosts lock in the same order: no deadlock);
 *   compare the first op whose expected value IS DISTINCT FROM the locked
 *           row's (or from "absent") is a conflict: roll back;
 *   write   delete, update, then insert the keys expected absent: a key
 *           another writer created meanwhile is a unique violation, also
 *           a conflict;
 *   journal take the coexist_meta row lock (pgstore.h: ids become visible
 *           in id order), one journal row per op in change_order order;
 *   notify  NOTIFY coexist, '<last id>', delivered at commit.
 *
 * The staging table is ON COMMIT DELETE ROWS, created once per session.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgstore_int.h"

#define COPY_CHUNK 65536
#define ANALYZE_OVER 1000       /* give the planner the staging table's size */

/* A COPY stream being built, flushed to the server by the chunk. */
struct copybuf {
    PGconn *conn;
    size_t len;
    int failed;
    char buf[COPY_CHUNK];
};

/* copy_flush - send what is buffered. */
static void copy_flush(struct copybuf *cb)
{
    if (!cb->failed && cb->len > 0 && PQputCopyData(cb->conn, cb->buf, (int) cb->len) != 1)
        cb->failed = 1;
    cb->len = 0;
}

/* copy_byte - one byte of the stream. */
static void copy_byte(struct copybuf *cb, char c)
{
    if (cb->len == sizeof(cb->buf))
        copy_flush(cb);
    cb->buf[cb->len++] = c;
}

/* copy_field - S in COPY's text format (NULL as \N), then SEP. */
static void copy_field(struct copybuf *cb, const char *s, char sep)
{
    if (s == NULL) {
        copy_byte(cb, '\\');
        copy_byte(cb, 'N');
    }
    for (; s && *s; s++) {
        switch (*s) {
        case '\\': copy_byte(cb, '\\'); copy_byte(cb, '\\'); break;
        case '\n': copy_byte(cb, '\\'); copy_byte(cb, 'n'); break;
        case '\r': copy_byte(cb, '\\'); copy_byte(cb, 'r'); break;
        case '\t': copy_byte(cb, '\\'); copy_byte(cb, 't'); break;
        default: copy_byte(cb, *s);
        }
    }
    copy_byte(cb, sep);
}

/* kind_code - an op kind as the staging table has it. */
static const char *kind_code(enum change_op_kind kind)
{
    return kind == CHANGE_OP_PUT ? "p" : kind == CHANGE_OP_DELETE ? "d" : "n";
}

/* copy_result - the result of the COPY after its end was sent. */
static int copy_result(struct pgstore *db, char *err)
{
    PGresult *res = PQgetResult(db->conn);
    int rc = PGSTORE_OK;

    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = pg_error(db, res, "staging the change", err);
    else
        PQclear(res);
    while ((res = PQgetResult(db->conn)) != NULL)
        PQclear(res);
    return rc;
}

/* stage - COPY CH's ops, in ORDER, into the staging table. */
static int stage(struct pgstore *db, const struct change *ch, const size_t *order, char *err)
{
    PGresult *res = PQexec(db->conn, "COPY coexist_staging (seq, kind, key, expect, value,"
                           " alias) FROM STDIN");
    struct copybuf *cb;
    char seq[32];

    if (res == NULL || PQresultStatus(res) != PGRES_COPY_IN)
        return pg_error(db, res, "staging the change", err);
    PQclear(res);
    if ((cb = malloc(sizeof(*cb))) == NULL) {
        PQputCopyEnd(db->conn, "out of memory");
        copy_result(db, err);
        return pg_fail(err, PGSTORE_ERROR, "staging the change: out of memory");
    }
    cb->conn = db->conn;
    cb->len = 0;
    cb->failed = 0;
    for (size_t i = 0; i < ch->nops && !cb->failed; i++) {
        const struct change_op *op = &ch->ops[order[i]];

        snprintf(seq, sizeof(seq), "%zu", i);
        copy_field(cb, seq, '\t');
        copy_field(cb, kind_code(op->kind), '\t');
        copy_field(cb, op->key, '\t');
        copy_field(cb, op->old_value, '\t');
        copy_field(cb, op->new_value, '\t');
        copy_field(cb, op->alias, '\n');
    }
    copy_flush(cb);
    free(cb);
    /* After a failed send this fails too; the result below says why. */
    PQputCopyEnd(db->conn, NULL);
    return copy_result(db, err);
}

/* prepare - the staging table (once per session), filled with CH. */
static int prepare(struct pgstore *db, const struct change *ch, const size_t *order,
                   char *err)
{
    int rc;

    if (!db->staging_ready
        && (rc = pg_run(db, "CREATE TEMP TABLE IF NOT EXISTS coexist_staging (seq bigint"
                        " NOT NULL, kind text NOT NULL, key text NOT NULL, expect text,"
                        " value text, alias text) ON COMMIT DELETE ROWS", 0, NULL,
                        "staging the change", err)) != PGSTORE_OK)
        return rc;
    if ((rc = stage(db, ch, order, err)) != PGSTORE_OK)
        return rc;
    if (ch->nops > ANALYZE_OVER)
        return pg_run(db, "ANALYZE coexist_staging", 0, NULL, "staging the change", err);
    return PGSTORE_OK;
}

/*
 * lock_and_compare - lock the records named, in key order, and compare
 * each with its expected value. In READ COMMITTED the comparison's
 * snapshot is taken after the locks were granted, so it sees the latest
 * committed version of every locked row.
 */
static int lock_and_compare(struct pgstore *db, char *err)
{
    PGresult *res;
    int rc;

    if ((rc = pg_run(db, "SELECT count(*) FROM (SELECT r.key FROM records r JOIN"
                     " coexist_staging s ON s.key = r.key WHERE s.kind <> 'n'"
                     " ORDER BY r.key FOR UPDATE OF r) locked", 0, NULL,
                     "locking the records", err)) != PGSTORE_OK)
        return rc;
    res = pg_exec(db, "SELECT s.key FROM coexist_staging s LEFT JOIN records r"
                  " ON r.key = s.key WHERE s.kind <> 'n' AND s.expect IS DISTINCT FROM"
                  " r.value ORDER BY s.key LIMIT 1", 0, NULL, "comparing the records",
                  &rc, err);
    if (res == NULL)
        return rc;
    if (PQntuples(res) > 0)
        rc = pg_fail(err, PGSTORE_CONFLICT, "%s changed since it was read; nothing applied",
                     PQgetvalue(res, 0, 0));
    PQclear(res);
    return rc;
}

/*
 * insert_conflict - a unique violation of the insert: another writer
 * created a key this change expected absent. The key is in the detail,
 * "Key (key)=(adam@corp.example) already exists.".
 */
static int insert_conflict(PGresult *res, char *err)
{
    const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    const char *start = detail ? strstr(detail, "=(") : NULL;
    const char *end = start ? strstr(start, ") already exists") : NULL;
    int rc;

    if (start != NULL && end != NULL)
        rc = pg_fail(err, PGSTORE_CONFLICT, "%.*s was created meanwhile; nothing applied",
                     (int) (end - start - 2), start + 2);
    else
        rc = pg_fail(err, PGSTORE_CONFLICT, "a record was created meanwhile; nothing applied");
    PQclear(res);
    return rc;
}

/* write_records - delete, update, insert, as the staging table says. */
static int write_records(struct pgstore *db, char *err)
{
    PGresult *res;
    const char *state;
    int rc;

    if ((rc = pg_run(db, "DELETE FROM records r USING coexist_staging s"
                     " WHERE r.key = s.key AND s.kind = 'd'", 0, NULL,
                     "deleting records", err)) != PGSTORE_OK
        || (rc = pg_run(db, "UPDATE records r SET value = s.value, alias = s.alias"
                        " FROM coexist_staging s WHERE r.key = s.key AND s.kind = 'p'"
                        " AND s.expect IS NOT NULL", 0, NULL,
                        "updating records", err)) != PGSTORE_OK)
        return rc;
    res = PQexec(db->conn, "INSERT INTO records (key, value, alias) SELECT key, value, alias"
                 " FROM coexist_staging WHERE kind = 'p' AND expect IS NULL ORDER BY key");
    if (res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK) {
        PQclear(res);
        return PGSTORE_OK;
    }
    state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (state != NULL && strcmp(state, "23505") == 0)
        return insert_conflict(res, err);
    return pg_error(db, res, "inserting records", err);
}

/*
 * journal - lock the meta row (journal ids visible in id order), check
 * the schema version once more under it, and journal every op with CH's
 * actor and node. *LAST_ID: the last id.
 */
static int journal(struct pgstore *db, const struct change *ch, long long *last_id,
                   char *err)
{
    const char *params[2] = {ch->actor, ch->node};
    PGresult *res;
    int rc;

    res = pg_exec(db, "SELECT schema_version FROM coexist_meta FOR UPDATE", 0, NULL,
                  "locking the journal", &rc, err);
    if (res == NULL)
        return rc;
    if (PQntuples(res) != 1 || atoi(PQgetvalue(res, 0, 0)) != PGSTORE_SCHEMA_VERSION) {
        rc = pg_fail(err, PGSTORE_ERROR, "the shared store's schema is at version %s, not"
                     " %d", PQntuples(res) ? PQgetvalue(res, 0, 0) : "(none)",
                     PGSTORE_SCHEMA_VERSION);
        PQclear(res);
        return rc;
    }
    PQclear(res);
    res = pg_exec(db, "WITH j AS (INSERT INTO journal (actor, node, key, old, new)"
                  " SELECT $1, $2, key, expect, value FROM coexist_staging ORDER BY seq"
                  " RETURNING id) SELECT max(id) FROM j", 2, params, "journaling", &rc, err);
    if (res == NULL)
        return rc;
    *last_id = pg_ll(res, 0, 0);
    PQclear(res);
    return PGSTORE_OK;
}

/* notify - wake the followers at commit with the last journal id. */
static int notify(struct pgstore *db, long long last_id, char *err)
{
    char id[32];
    const char *params[1] = {id};

    snprintf(id, sizeof(id), "%lld", last_id);
    return pg_run(db, "SELECT pg_notify('" PGSTORE_CHANNEL "', $1)", 1, params,
                  "notifying", err);
}

/*
 * commit_lost - a connection lost during COMMIT leaves the outcome
 * unknown: say so (a retry of a compare-and-set change is safe: applied,
 * it conflicts; not applied, it applies).
 */
static void commit_lost(char *err)
{
    char why[PGSTORE_ERR_MAX];

    snprintf(why, sizeof(why), "%s", err);
    pg_fail(err, PGSTORE_UNAVAILABLE, "%.400s (the change may or may not have been applied)",
            why);
}

int pgstore_apply(struct pgstore *db, const struct change *ch, long long *last_id,
                  char err[PGSTORE_ERR_MAX])
{
    char cerr[CHANGE_ERR_MAX];
    long long id = 0;
    size_t *order;
    int rc;

    if (last_id != NULL)
        *last_id = 0;
    if (ch->nops == 0)
        return PGSTORE_OK;
    if (change_order(ch, &order, cerr) < 0)
        return pg_fail(err, PGSTORE_ERROR, "%s", cerr);
    if ((rc = pg_run(db, "BEGIN", 0, NULL, "starting the change", err)) == PGSTORE_OK
        && (rc = prepare(db, ch, order, err)) == PGSTORE_OK
        && (rc = lock_and_compare(db, err)) == PGSTORE_OK
        && (rc = write_records(db, err)) == PGSTORE_OK
        && (rc = journal(db, ch, &id, err)) == PGSTORE_OK
        && (rc = notify(db, id, err)) == PGSTORE_OK) {
        rc = pg_run(db, "COMMIT", 0, NULL, "committing", err);
        db->staging_ready = rc == PGSTORE_OK;
        if (rc == PGSTORE_UNAVAILABLE)
            commit_lost(err);
    }
    free(order);
    if (rc != PGSTORE_OK) {
        pg_rollback(db);
        return rc;
    }
    if (last_id != NULL)
        *last_id = id;
    return PGSTORE_OK;
}
