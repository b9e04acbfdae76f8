/*
 * pglag.c - how far a replica is behind the shared journal (see
 * pgstore.h): for `coexistctl status` and monitoring, counted by the
 * database rather than from ids, which rolled-back transactions skip.
 */
#include <stdio.h>

#include "pgstore_int.h"

int pgstore_lag(struct pgstore *db, long long position, long long *rows, time_t *oldest,
                char err[PGSTORE_ERR_MAX])
{
    char pos[32];
    const char *params[1] = {pos};
    PGresult *res;
    int rc;

    *rows = 0;
    *oldest = 0;
    snprintf(pos, sizeof(pos), "%lld", position);
    res = pg_exec(db, "SELECT count(*), coalesce(extract(epoch FROM min(at))::bigint, 0)"
                  " FROM journal WHERE id > $1", 1, params, "reading the replica lag",
                  &rc, err);
    if (res == NULL)
        return rc;
    *rows = pg_ll(res, 0, 0);
    *oldest = (time_t) pg_ll(res, 0, 1);
    PQclear(res);
    return PGSTORE_OK;
}
