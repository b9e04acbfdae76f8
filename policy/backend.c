/*
 * backend.c - the change-set seam and its local backend (see backend.h).
 *
 * The tdb backend applies a change in one store transaction: each op's
 * expected old value is compared with the record as it is inside the
 * transaction, so a second coexistctl that changed a key between this
 * one's read and its write makes this one conflict instead of silently
 * undoing the other's change. The reverse index is kept by store_put and
 * store_delete themselves, inside the same transaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_int.h"
#include "record.h"

/* tdb_current_matches - whether KEY holds EXPECTED now (NULL: absent); 1, 0 or -1. */
static int tdb_current_matches(struct store *st, const char *key, const char *expected)
{
    char text[RECORD_TEXT_MAX + 1];
    int found = store_get_text(st, key, text, sizeof(text));

    if (found <= 0)
        return found < 0 ? -1 : expected == NULL;
    return expected != NULL && strcmp(text, expected) == 0;
}

/* tdb_apply_op - one op inside the transaction; a change_result. */
static int tdb_apply_op(struct store *st, const struct change_op *op, const char *actor,
                        char err[BACKEND_ERR_MAX])
{
    struct record rec;
    char why[256];
    int match;

    if (op->kind == CHANGE_OP_NOTE)
        return store_journal_note(st, op->key, op->old_value ? op->old_value : "-",
                                  op->new_value ? op->new_value : "-", actor) < 0
            ? CHANGE_ERROR : CHANGE_OK;
    if ((match = tdb_current_matches(st, op->key, op->old_value)) <= 0) {
        if (match == 0)
            snprintf(err, BACKEND_ERR_MAX, "'%s' was changed by another writer since it "
                     "was read", op->key);
        return match == 0 ? CHANGE_CONFLICT : CHANGE_ERROR;
    }
    if (op->kind == CHANGE_OP_DELETE)
        return store_delete(st, op->key, actor) < 0 ? CHANGE_ERROR : CHANGE_OK;
    if (record_decode(op->key[0] == '@' ? RECORD_DOMAIN : RECORD_USER, op->new_value,
                      strlen(op->new_value), &rec, why, sizeof(why)) < 0) {
        snprintf(err, BACKEND_ERR_MAX, "record for '%s': %s", op->key, why);
        return CHANGE_ERROR;
    }
    return store_put(st, op->key, &rec, actor) < 0 ? CHANGE_ERROR : CHANGE_OK;
}

/* tdb_apply - the whole change in one transaction. */
static int tdb_apply(struct backend *be, const struct change *ch, int bulk,
                     long long *last_id, char err[BACKEND_ERR_MAX])
{
    int rc = CHANGE_OK;

    *last_id = 0;
    err[0] = '\0';
    if (store_begin(be->st) < 0) {
        snprintf(err, BACKEND_ERR_MAX, "%s", store_error(be->st));
        return CHANGE_ERROR;
    }
    for (size_t i = 0; i < ch->nops && rc == CHANGE_OK; i++) {
        const struct change_op *op = &ch->ops[i];

        /* A bulk change journals its notes only: one entry for an import. */
        rc = tdb_apply_op(be->st, op, bulk && op->kind != CHANGE_OP_NOTE ? NULL : ch->actor,
                          err);
    }
    if (rc != CHANGE_OK) {
        if (err[0] == '\0')
            snprintf(err, BACKEND_ERR_MAX, "%s", store_error(be->st));
        store_cancel(be->st);
        return rc;
    }
    /* A failed commit (a full disk) has undone the transaction itself. */
    if (store_commit(be->st) < 0) {
        snprintf(err, BACKEND_ERR_MAX, "%s", store_error(be->st));
        return CHANGE_ERROR;
    }
    return CHANGE_OK;
}

static int tdb_latest_id(struct backend *be, long long *id, char err[BACKEND_ERR_MAX])
{
    (void) be;
    (void) err;
    *id = 0;
    return CHANGE_OK;
}

static int tdb_history(struct backend *be, const char *key, unsigned limit,
                       journal_visit_fn fn, void *ctx, char err[BACKEND_ERR_MAX])
{
    if (store_journal(be->st, key, limit, fn, ctx) < 0) {
        snprintf(err, BACKEND_ERR_MAX, "%s", store_error(be->st));
        return CHANGE_ERROR;
    }
    return CHANGE_OK;
}

static const struct backend_ops tdb_ops = {"tdb", tdb_apply, tdb_latest_id, tdb_history, NULL,
                                           BACKEND_TDB_PART};

struct backend *backend_tdb(struct store *st)
{
    struct backend *be = calloc(1, sizeof(*be));

    if (be != NULL) {
        be->ops = &tdb_ops;
        be->st = st;
    }
    return be;
}

const char *backend_name(const struct backend *be)
{
    return be->ops->name;
}

size_t backend_commit_part(const struct backend *be)
{
    return be->ops->commit_part;
}

int backend_apply(struct backend *be, const struct change *ch, int bulk, long long *last_id,
                  char err[BACKEND_ERR_MAX])
{
    return be->ops->apply(be, ch, bulk, last_id, err);
}

int backend_latest_id(struct backend *be, long long *id, char err[BACKEND_ERR_MAX])
{
    return be->ops->latest_id(be, id, err);
}

int backend_history(struct backend *be, const char *key, unsigned limit, journal_visit_fn fn,
                    void *ctx, char err[BACKEND_ERR_MAX])
{
    return be->ops->history(be, key, limit, fn, ctx, err);
}

void backend_free(struct backend *be)
{
    if (be == NULL)
        return;
    if (be->ops->close != NULL)
        be->ops->close(be);
    free(be);
}
