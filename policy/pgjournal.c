/*
 * pgjournal.c - the shared journal as the followers read it, its pruning,
 * and the replicas' positions (see pgstore.h).
 *
 * Pruning records how far it went in coexist_meta, so that a follower can
 * tell "rows were deleted past my position" (take a snapshot) from "ids
 * were skipped by rolled-back transactions" (nothing missing).
 */
#include <stdio.h>
#include <stdlib.h>

#include "pgstore_int.h"

/* text_or_null - a column as a string, NULL when SQL NULL. */
static const char *text_or_null(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

/* visit_rows - call FN for each journal row of RES; the number visited. */
static int visit_rows(const PGresult *res, pgstore_row_fn fn, void *ctx)
{
    int n = PQntuples(res), i;

    for (i = 0; i < n; i++) {
        struct pgstore_row row = {
            .id = pg_ll(res, i, 0),
            .at = (time_t) pg_ll(res, i, 1),
            .actor = text_or_null(res, i, 2),
            .node = text_or_null(res, i, 3),
            .key = text_or_null(res, i, 4),
            .old_value = text_or_null(res, i, 5),
            .new_value = text_or_null(res, i, 6),
        };

        if (fn(&row, ctx) != 0)
            return i + 1;
    }
    return n;
}

int pgstore_journal_since(struct pgstore *db, long long position, long limit,
                          pgstore_row_fn fn, void *ctx, char err[PGSTORE_ERR_MAX])
{
    char pos[32], lim[32];
    const char *params[2] = {pos, lim};
    PGresult *res;
    int rc;

    if (limit <= 0)
        return pg_fail(err, PGSTORE_ERROR, "journal: the limit must be positive");
    snprintf(pos, sizeof(pos), "%lld", position);
    snprintf(lim, sizeof(lim), "%ld", limit);
    res = pg_exec(db, "SELECT id, extract(epoch FROM at)::bigint, actor, node, key, old, new"
                  " FROM journal WHERE id > $1 ORDER BY id LIMIT $2", 2, params,
                  "reading the journal", &rc, err);
    if (res == NULL)
        return rc;
    rc = visit_rows(res, fn, ctx);
    PQclear(res);
    return rc;
}

int pgstore_history(struct pgstore *db, const char *key, long limit, pgstore_row_fn fn,
                    void *ctx, char err[PGSTORE_ERR_MAX])
{
    char lim[32];
    const char *params[2] = {key, limit > 0 ? lim : NULL};
    PGresult *res;
    int rc;

    snprintf(lim, sizeof(lim), "%ld", limit);
    /* LIMIT NULL is no limit; a NULL key is every key. */
    res = pg_exec(db, "SELECT id, extract(epoch FROM at)::bigint, actor, node, key, old, new"
                  " FROM journal WHERE $1::text IS NULL OR key = $1"
                  " ORDER BY id DESC LIMIT $2::bigint", 2, params, "reading the journal",
                  &rc, err);
    if (res == NULL)
        return rc;
    rc = visit_rows(res, fn, ctx);
    PQclear(res);
    return rc;
}

/* one_value - the bigint of a one-row, one-column query. */
static int one_value(struct pgstore *db, const char *sql, const char *what,
                     long long *value, char *err)
{
    PGresult *res;
    int rc;

    *value = 0;
    if ((res = pg_exec(db, sql, 0, NULL, what, &rc, err)) == NULL)
        return rc;
    if (PQntuples(res) != 1)
        rc = pg_fail(err, PGSTORE_ERROR, "%s: no row", what);
    else
        *value = pg_ll(res, 0, 0);
    PQclear(res);
    return rc;
}

int pgstore_latest_id(struct pgstore *db, long long *id, char err[PGSTORE_ERR_MAX])
{
    return one_value(db, "SELECT coalesce(max(id), 0) FROM journal",
                     "reading the latest journal id", id, err);
}

int pgstore_oldest_id(struct pgstore *db, long long *id, char err[PGSTORE_ERR_MAX])
{
    return one_value(db, "SELECT greatest(pruned_before, 1) FROM coexist_meta",
                     "reading the oldest journal id", id, err);
}

int pgstore_prune(struct pgstore *db, long long before_id, char err[PGSTORE_ERR_MAX])
{
    char before[32];
    const char *params[1] = {before};
    int rc;

    snprintf(before, sizeof(before), "%lld", before_id);
    /* The meta row first: the lock writers take, so no id moves meanwhile. */
    if ((rc = pg_run(db, "BEGIN", 0, NULL, "pruning the journal", err)) != PGSTORE_OK)
        return rc;
    if ((rc = pg_run(db, "UPDATE coexist_meta SET pruned_before ="
                     " greatest(pruned_before, $1::bigint)", 1, params,
                     "pruning the journal", err)) != PGSTORE_OK
        || (rc = pg_run(db, "DELETE FROM journal WHERE id < $1", 1, params,
                        "pruning the journal", err)) != PGSTORE_OK
        || (rc = pg_run(db, "COMMIT", 0, NULL, "pruning the journal", err)) != PGSTORE_OK) {
        pg_rollback(db);
        return rc;
    }
    return PGSTORE_OK;
}

int pgstore_report_position(struct pgstore *db, const char *node, long long position,
                            char err[PGSTORE_ERR_MAX])
{
    char pos[32];
    const char *params[2] = {node, pos};

    snprintf(pos, sizeof(pos), "%lld", position);
    return pg_run(db, "INSERT INTO replicas (node, position, at) VALUES ($1, $2, now())"
                  " ON CONFLICT (node) DO UPDATE SET position = excluded.position,"
                  " at = excluded.at", 2, params, "reporting the replica position", err);
}

int pgstore_positions(struct pgstore *db, pgstore_position_fn fn, void *ctx,
                      char err[PGSTORE_ERR_MAX])
{
    PGresult *res;
    int rc, n, i;

    res = pg_exec(db, "SELECT node, position, extract(epoch FROM at)::bigint FROM replicas"
                  " ORDER BY node", 0, NULL, "reading the replica positions", &rc, err);
    if (res == NULL)
        return rc;
    n = PQntuples(res);
    for (i = 0; i < n; i++)
        if (fn(PQgetvalue(res, i, 0), pg_ll(res, i, 1), (time_t) pg_ll(res, i, 2), ctx) != 0) {
            i++;
            break;
        }
    PQclear(res);
    return i;
}
