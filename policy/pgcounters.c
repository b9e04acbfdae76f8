/*
 * pgcounters.c - every host's counters in the shared store (DESIGN
 * section 12, schema version 2): each follower pushes what its milter
 * flushed into counters_db under its node name, and "coexistctl report"
 * sums the other hosts' rows with its own file (see pgstore.h).
 *
 * The values are the counters text of counters.h, stored as they are:
 * the database neither parses nor sums them, so one codec serves both.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgstore_int.h"

int pgstore_counters_push(struct pgstore *db, const char *node, size_t n,
                          const char *const *keys, const char *const *values,
                          char err[PGSTORE_ERR_MAX])
{
    const char *params[3];
    PGresult *res;
    int rc;

    if (n == 0)
        return PGSTORE_OK;
    if ((rc = pg_run(db, "BEGIN", 0, NULL, "pushing the counters", err)) != PGSTORE_OK)
        return rc;
    params[0] = node;
    for (size_t i = 0; i < n; i++) {
        params[1] = keys[i];
        params[2] = values[i];
        /* one statement, prepared once by libpq's unnamed statement cache:
         * a push carries the keys routed since the last one, not all */
        res = PQexecParams(db->conn, "INSERT INTO counters (node, key, value) VALUES"
                           " ($1, $2, $3) ON CONFLICT (node, key) DO UPDATE SET"
                           " value = EXCLUDED.value, at = now()", 3, NULL, params,
                           NULL, NULL, 0);
        if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
            rc = pg_error(db, res, "pushing the counters", err);
            pg_rollback(db);
            return rc;
        }
        PQclear(res);
    }
    return pg_run(db, "COMMIT", 0, NULL, "pushing the counters", err);
}

int pgstore_counters_traverse(struct pgstore *db, const char *except_node,
                              pgstore_counters_fn fn, void *ctx, char err[PGSTORE_ERR_MAX])
{
    const char *params[1] = {except_node ? except_node : ""};
    PGresult *res;
    int rc, n;

    res = pg_exec(db, "SELECT node, key, value FROM counters WHERE node <> $1"
                  " ORDER BY key COLLATE \"C\", node COLLATE \"C\"", 1, params, "reading the counters", &rc, err);
    if (res == NULL)
        return rc;
    n = PQntuples(res);
    for (int i = 0; i < n; i++)
        if (fn(PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), ctx)) {
            rc = pg_fail(err, PGSTORE_ERROR, "reading the counters: stopped at '%.200s' of"
                         " %.64s", PQgetvalue(res, i, 1), PQgetvalue(res, i, 0));
            PQclear(res);
            return rc;
        }
    PQclear(res);
    return n;
}
