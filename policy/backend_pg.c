/*
 * backend_pg.c - the shared-store backend of backend.h: a change becomes one
 * PostgreSQL transaction through pgstore_apply(), which journals each op
 * with this host's node name and NOTIFYs the followers. Without libpq the
 * constructor says so; the rest of coexistctl is the same.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>

#include "backend_int.h"

#ifdef HAVE_POSTGRESQL
#include "pgstore.h"

static int pg_apply(struct backend *be, const struct change *ch, int bulk, long long *last_id,
                    char err[BACKEND_ERR_MAX])
{
    /* Every op is journaled: the followers replicate from the journal. */
    (void) bulk;
    return pgstore_apply(be->db, ch, last_id, err);
}

static int pg_latest_id(struct backend *be, long long *id, char err[BACKEND_ERR_MAX])
{
    return pgstore_latest_id(be->db, id, err);
}

static void pg_close(struct backend *be)
{
    pgstore_close(be->db);
}

static const struct backend_ops pg_ops = {"postgresql", pg_apply, pg_latest_id, pg_close};

struct backend *backend_postgresql(const char *conninfo, int *rc, char err[BACKEND_ERR_MAX])
{
    struct backend *be = calloc(1, sizeof(*be));

    if (be == NULL) {
        snprintf(err, BACKEND_ERR_MAX, "out of memory");
        *rc = CHANGE_ERROR;
        return NULL;
    }
    be->ops = &pg_ops;
    if ((*rc = pgstore_connect(conninfo, &be->db, err)) != PGSTORE_OK
        || (*rc = pgstore_check_schema(be->db, err)) != PGSTORE_OK) {
        if (be->db != NULL)
            pgstore_close(be->db);
        free(be);
        return NULL;
    }
    return be;
}

#else

struct backend *backend_postgresql(const char *conninfo, int *rc, char err[BACKEND_ERR_MAX])
{
    (void) conninfo;
    snprintf(err, BACKEND_ERR_MAX, "shared_store is set, but this coexistctl was built "
             "without PostgreSQL (configure --without-postgresql)");
    *rc = CHANGE_ERROR;
    return NULL;
}

#endif
