/*
 * pgread.c - reading records from the shared store: the reverse lookup of
 * chain checks and the snapshot a replica is built from (see pgstore.h).
 *
 * The snapshot reads through a cursor, a batch at a time, so that 10^6
 * records never sit in client memory at once; the cursor lives in a
 * REPEATABLE READ transaction whose first statement reads the journal's
 * latest id, so the records are the state at exactly that position.
 */
#include <stdio.h>
#include <string.h>

#include "pgstore_int.h"

#define SNAPSHOT_BATCH "5000"

int pgstore_owners(struct pgstore *db, const char *alias, pgstore_key_fn fn, void *ctx,
                   char err[PGSTORE_ERR_MAX])
{
    const char *params[1] = {alias};
    PGresult *res;
    int rc, n, i;

    res = pg_exec(db, "SELECT key FROM records WHERE alias = $1 ORDER BY key", 1, params,
                  "looking up owners", &rc, err);
    if (res == NULL)
        return rc;
    n = PQntuples(res);
    for (i = 0; i < n; i++)
        if (fn != NULL && fn(PQgetvalue(res, i, 0), ctx) != 0) {
            i++;
            break;
        }
    PQclear(res);
    return i;
}

/* snapshot_rows - fetch and visit batches until the cursor is exhausted. */
static int snapshot_rows(struct pgstore *db, pgstore_record_fn fn, void *ctx, char *err)
{
    PGresult *res;
    int rc, n;

    do {
        res = pg_exec(db, "FETCH FORWARD " SNAPSHOT_BATCH " FROM coexist_snapshot", 0, NULL,
                      "reading the snapshot", &rc, err);
        if (res == NULL)
            return rc;
        n = PQntuples(res);
        for (int i = 0; i < n; i++)
            if (fn(PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), ctx) != 0) {
                PQclear(res);
                return pg_fail(err, PGSTORE_ERROR, "snapshot: stopped");
            }
        PQclear(res);
    } while (n > 0);
    return PGSTORE_OK;
}

int pgstore_snapshot(struct pgstore *db, pgstore_record_fn fn, void *ctx,
                     long long *position, char err[PGSTORE_ERR_MAX])
{
    PGresult *res;
    int rc;

    *position = 0;
    if ((rc = pg_run(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL,
                     "starting the snapshot", err)) != PGSTORE_OK)
        return rc;
    /* The first statement fixes the transaction's snapshot for both reads. */
    res = pg_exec(db, "SELECT coalesce(max(id), 0) FROM journal", 0, NULL,
                  "reading the snapshot's position", &rc, err);
    if (res == NULL)
        goto fail;
    *position = pg_ll(res, 0, 0);
    PQclear(res);
    if ((rc = pg_run(db, "DECLARE coexist_snapshot NO SCROLL CURSOR FOR"
                     " SELECT key, value FROM records", 0, NULL,
                     "starting the snapshot", err)) != PGSTORE_OK
        || (rc = snapshot_rows(db, fn, ctx, err)) != PGSTORE_OK)
        goto fail;
    /* Read only: the end of the transaction changes nothing either way. */
    if ((rc = pg_run(db, "COMMIT", 0, NULL, "ending the snapshot", err)) != PGSTORE_OK)
        goto fail;
    return PGSTORE_OK;
fail:
    pg_rollback(db);
    *position = 0;
    return rc;
}
