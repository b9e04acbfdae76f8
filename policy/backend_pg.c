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

/* What pg_history hands on, row by row, as the store's journal would. */
struct pg_history_ctx {
    journal_visit_fn fn;
    void *ctx;
};

static int pg_history_row(const struct pgstore_row *row, void *ctx)
{
    const struct pg_history_ctx *h = ctx;
    struct journal_entry e = {
        .seq = (unsigned long long) row->id,
        .when = row->at,
        .actor = row->actor ? row->actor : "-",
        .key = row->key ? row->key : "-",
        .old_value = row->old_value ? row->old_value : "-",
        .new_value = row->new_value ? row->new_value : "-",
        .node = row->node,
    };

    return h->fn(&e, h->ctx);
}

static int pg_history(struct backend *be, const char *key, unsigned limit, journal_visit_fn fn,
                      void *ctx, char err[BACKEND_ERR_MAX])
{
    struct pg_history_ctx h = {fn, ctx};
    int n = pgstore_history(be->db, key, (long) limit, pg_history_row, &h, err);

    return n < 0 ? n : CHANGE_OK;
}

static void pg_close(struct backend *be)
{
    pgstore_close(be->db);
}

/* No part limit: see backend_commit_part. */
static const struct backend_ops pg_ops = {"postgresql", pg_apply, pg_latest_id, pg_history,
                                         pg_close, 0};

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

int backend_init_shared(const char *conninfo, char database_id[BACKEND_ERR_MAX],
                        char err[BACKEND_ERR_MAX])
{
    struct pgstore *db = NULL;
    int rc;

    database_id[0] = '\0';
    if ((rc = pgstore_connect(conninfo, &db, err)) != PGSTORE_OK)
        return rc;
    /* check_schema reads back what init made, the database id among it. */
    if ((rc = pgstore_init(db, err)) == PGSTORE_OK
        && (rc = pgstore_check_schema(db, err)) == PGSTORE_OK)
        snprintf(database_id, BACKEND_ERR_MAX, "%s", pgstore_database_id(db));
    pgstore_close(db);
    return rc;
}

#else

int backend_init_shared(const char *conninfo, char database_id[BACKEND_ERR_MAX],
                        char err[BACKEND_ERR_MAX])
{
    (void) conninfo;
    database_id[0] = '\0';
    snprintf(err, BACKEND_ERR_MAX, "this coexistctl was built without PostgreSQL "
             "(configure --without-postgresql)");
    return CHANGE_ERROR;
}

struct backend *backend_postgresql(const char *conninfo, int *rc, char err[BACKEND_ERR_MAX])
{
    (void) conninfo;
    snprintf(err, BACKEND_ERR_MAX, "shared_store is set, but this coexistctl was built "
             "without PostgreSQL (configure --without-postgresql)");
    *rc = CHANGE_ERROR;
    return NULL;
}

#endif
