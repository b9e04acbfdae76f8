/*
 * pgconn.c - the connection to the shared store and the helpers every
 * pg*.c file uses to run a statement and turn a failure into a result code
 * and one line of text (see pgstore.h).
 *
 * The line between "try again later" (PGSTORE_UNAVAILABLE, EX_TEMPFAIL)
 * and "this is wrong" (PGSTORE_ERROR) is drawn here, once: a lost or
 * refused connection, a server shutting down and a server short of
 * resources are temporary; everything else is an error.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgstore_int.h"

int pg_fail(char *err, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, PGSTORE_ERR_MAX, fmt, ap);
    va_end(ap);
    return code;
}

/*
 * one_line - MSG without its newlines and tabs: libpq's messages span
 * lines ("...failed: No such file or directory\n\tIs the server running
 * locally...?\n"), the caller prints one.
 */
static void one_line(const char *msg, char *out, size_t outlen)
{
    size_t n = 0;
    int space = 0;

    for (; *msg && n + 1 < outlen; msg++) {
        if (*msg == '\n' || *msg == '\t' || *msg == '\r' || *msg == ' ') {
            space = n > 0;
            continue;
        }
        if (space && n + 2 < outlen)
            out[n++] = ' ';
        space = 0;
        out[n++] = *msg;
    }
    out[n] = '\0';
}

/* classify - the result code of a failure with SQLSTATE STATE (NULL: none). */
static int classify(struct pgstore *db, const char *state)
{
    /* No SQLSTATE: libpq made the error itself, talking to the server
     * ("server closed the connection unexpectedly" comes before the
     * connection's status turns bad). */
    if (PQstatus(db->conn) != CONNECTION_OK || state == NULL)
        return PGSTORE_UNAVAILABLE;
    /* 08: connection exception; 57P0x: shutting down, crashed, starting up;
     * 53: disk full, out of memory, too many connections. */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0
        || strncmp(state, "53", 2) == 0)
        return PGSTORE_UNAVAILABLE;
    /* serialization failure, deadlock: the transaction lost a race */
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
        return PGSTORE_CONFLICT;
    return PGSTORE_ERROR;
}

int pg_error(struct pgstore *db, PGresult *res, const char *what, char *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : "";
    char line[PGSTORE_ERR_MAX];
    int rc = classify(db, state);

    if (*msg == '\0')
        msg = PQerrorMessage(db->conn);
    one_line(*msg ? msg : "unknown error", line, sizeof(line));
    if (rc == PGSTORE_UNAVAILABLE)
        pg_fail(err, rc, "%s: the shared store is unavailable: %s", what, line);
    else
        pg_fail(err, rc, "%s: %s", what, line);
    PQclear(res);
    return rc;
}

PGresult *pg_exec(struct pgstore *db, const char *sql, int nparams,
                  const char *const *params, const char *what, int *rc, char *err)
{
    PGresult *res = PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        *rc = PGSTORE_OK;
        return res;
    }
    *rc = pg_error(db, res, what, err);
    return NULL;
}

int pg_run(struct pgstore *db, const char *sql, int nparams,
           const char *const *params, const char *what, char *err)
{
    int rc;
    PGresult *res = pg_exec(db, sql, nparams, params, what, &rc, err);

    PQclear(res);
    return rc;
}

void pg_rollback(struct pgstore *db)
{
    if (PQstatus(db->conn) == CONNECTION_OK)
        PQclear(PQexec(db->conn, "ROLLBACK"));
}

long long pg_ll(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* quiet - libpq's notice processor would print to stderr; a library must not. */
static void quiet(void *ctx, const char *message)
{
    (void) ctx;
    (void) message;
}

/* connect_failed - the reason CONN did not connect; finishes it. */
static int connect_failed(PGconn *conn, char *err)
{
    char line[PGSTORE_ERR_MAX];

    one_line(conn ? PQerrorMessage(conn) : "out of memory", line, sizeof(line));
    PQfinish(conn);
    return pg_fail(err, PGSTORE_UNAVAILABLE, "cannot connect to the shared store: %s", line);
}

int pgstore_connect(const char *conninfo, struct pgstore **dbp, char err[PGSTORE_ERR_MAX])
{
    /* dbname expands the conninfo; the application name is only a fallback */
    const char *const keys[] = {"dbname", "fallback_application_name", NULL};
    const char *const vals[] = {conninfo, "coexist-milter", NULL};
    PQconninfoOption *opts;
    struct pgstore *db;
    char *why = NULL;
    PGconn *conn;

    *dbp = NULL;
    if ((opts = PQconninfoParse(conninfo, &why)) == NULL) {
        char line[PGSTORE_ERR_MAX];

        one_line(why ? why : "out of memory", line, sizeof(line));
        PQfreemem(why);
        return pg_fail(err, PGSTORE_ERROR, "bad shared_store conninfo: %s", line);
    }
    PQconninfoFree(opts);
    conn = PQconnectdbParams(keys, vals, 1);
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
        return connect_failed(conn, err);
    PQsetNoticeProcessor(conn, quiet, NULL);
    if ((db = calloc(1, sizeof(*db))) == NULL) {
        PQfinish(conn);
        return pg_fail(err, PGSTORE_ERROR, "pgstore: out of memory");
    }
    db->conn = conn;
    *dbp = db;
    return PGSTORE_OK;
}

void pgstore_close(struct pgstore *db)
{
    if (db == NULL)
        return;
    PQfinish(db->conn);
    free(db);
}

int pgstore_reset(struct pgstore *db, char err[PGSTORE_ERR_MAX])
{
    char line[PGSTORE_ERR_MAX];

    /* A new session: its temp table and its LISTEN are gone. */
    db->staging_ready = 0;
    PQreset(db->conn);
    if (PQstatus(db->conn) != CONNECTION_OK) {
        one_line(PQerrorMessage(db->conn), line, sizeof(line));
        return pg_fail(err, PGSTORE_UNAVAILABLE, "cannot reconnect to the shared store: %s",
                       line);
    }
    return db->listening ? pgstore_listen(db, err) : PGSTORE_OK;
}
