/*
 * backend_int.h - what the backends of backend.h share; not for callers.
 */
#ifndef COEXIST_BACKEND_INT_H
#define COEXIST_BACKEND_INT_H

#include "backend.h"

struct backend_ops {
    const char *name;
    int (*apply)(struct backend *be, const struct change *ch, int bulk, long long *last_id,
                 char err[BACKEND_ERR_MAX]);
    int (*latest_id)(struct backend *be, long long *id, char err[BACKEND_ERR_MAX]);
    int (*history)(struct backend *be, const char *key, unsigned limit, journal_visit_fn fn,
                   void *ctx, char err[BACKEND_ERR_MAX]);
    void (*close)(struct backend *be);     /* NULL: nothing of its own */
    size_t commit_part;         /* backend_commit_part */
};

struct backend {
    const struct backend_ops *ops;
    struct store *st;           /* tdb: the caller's store */
    struct pgstore *db;         /* postgresql: the connection it owns */
};

#endif
