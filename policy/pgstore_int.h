/*
 * pgstore_int.h - what the pg*.c files share; not for other modules.
 */
#ifndef COEXIST_PGSTORE_INT_H
#define COEXIST_PGSTORE_INT_H

#include <libpq-fe.h>

#include "pgstore.h"

struct pgstore {
    PGconn *conn;
    int listening;              /* pgstore_listen was called: reset listens again */
    int staging_ready;          /* this session has the temp table of pgapply.c */
    char database_id[PGSTORE_ID_MAX];
};

/* pg_fail - format a reason into ERR; returns CODE. */
int pg_fail(char *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * pg_error - the result for failed RES (NULL: no result at all) with
 * "WHAT: <server message on one line>" in ERR. Clears RES.
 */
int pg_error(struct pgstore *db, PGresult *res, const char *what, char *err);

/*
 * pg_exec - run SQL with NPARAMS text PARAMS (may be 0, NULL). Returns the
 * result if it succeeded (COMMAND_OK or TUPLES_OK; the caller clears it),
 * else NULL with *RC and ERR set by pg_error.
 */
PGresult *pg_exec(struct pgstore *db, const char *sql, int nparams,
                  const char *const *params, const char *what, int *rc, char *err);

/* pg_run - pg_exec for a statement whose result is not needed. */
int pg_run(struct pgstore *db, const char *sql, int nparams,
           const char *const *params, const char *what, char *err);

/* pg_rollback - end a failed transaction; harmless on a lost connection. */
void pg_rollback(struct pgstore *db);

/* pg_ll - a bigint column as long long (0 when NULL). */
long long pg_ll(const PGresult *res, int row, int col);

#endif
