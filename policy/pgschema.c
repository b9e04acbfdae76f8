/*
 * pgschema.c - the shared store's schema: creating it, recognizing it,
 * upgrading it (see pgstore.h).
 *
 * coexist_meta is the part that never changes shape: one row with our
 * marker, the schema version, the database id (gen_random_uuid() at init)
 * and how far the journal was pruned. Everything else is made by the
 * upgrade steps below, from version 0 up: init creates coexist_meta at
 * version 0 and runs the same steps an upgrade runs, so there is one path
 * that builds a schema, and a newer build adds a step rather than editing
 * one. Each run of steps is one transaction with the meta row locked: two
 * hosts upgrading at once serialize, and an upgrade that fails leaves the
 * old schema whole.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgstore_int.h"

#define SCHEMA_MARKER "coexist-milter"

/* One upgrade step: the SQL that takes the schema from VERSION - 1 to VERSION. */
struct schema_step {
    int version;
    const char *sql;
};

static const struct schema_step schema_steps[] = {
    {1,
     /* alias: the reverse-index key (change_alias), for chain checks.
      * fillfactor 70: a flip rewrites the row in place on its page (a HOT
      * update, no index entries): a 10^5-user wave's UPDATE at 10^6
      * records took 1.7 s instead of 4.1 s. Storage only, not a schema
      * change: a store made before keeps working (ALTER TABLE records
      * SET (fillfactor = 70); VACUUM FULL records gives it the same). */
     "CREATE TABLE records (key text PRIMARY KEY, value text NOT NULL, alias text)"
     " WITH (fillfactor = 70);"
     "CREATE INDEX records_alias ON records (alias);"
     "CREATE TABLE journal (id bigserial PRIMARY KEY,"
     " at timestamptz NOT NULL DEFAULT now(), actor text, node text,"
     " key text NOT NULL, old text, new text);"
     "CREATE TABLE replicas (node text PRIMARY KEY, position bigint NOT NULL,"
     " at timestamptz NOT NULL DEFAULT now());"},
    {2,
     /* each host's counters_db, pushed by its follower, summed by report
      * (DESIGN section 12): the same counters text as in the file */
     "CREATE TABLE counters (node text NOT NULL, key text NOT NULL, value text NOT NULL,"
     " at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (node, key));"},
};

#define SCHEMA_NSTEPS (sizeof(schema_steps) / sizeof(schema_steps[0]))

/* The names a schema of ours uses: any of them without our meta row is foreign. */
static const char *const schema_tables[] = {"coexist_meta", "records", "journal", "replicas",
                                            "counters"};

/* run_script - SQL of several statements (no parameters), in the open transaction. */
static int run_script(struct pgstore *db, const char *sql, const char *what, char *err)
{
    PGresult *res = PQexec(db->conn, sql);

    if (res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK) {
        PQclear(res);
        return PGSTORE_OK;
    }
    return pg_error(db, res, what, err);
}

/*
 * find_tables - which of schema_tables exist (bit i for table i), as the
 * connection's search_path resolves them.
 */
static int find_tables(struct pgstore *db, unsigned *found, char *err)
{
    int rc;
    PGresult *res;

    *found = 0;
    res = pg_exec(db, "SELECT to_regclass('coexist_meta') IS NOT NULL,"
                  " to_regclass('records') IS NOT NULL, to_regclass('journal') IS NOT NULL,"
                  " to_regclass('replicas') IS NOT NULL, to_regclass('counters') IS NOT NULL",
                  0, NULL, "reading the schema",
                  &rc, err);
    if (res == NULL)
        return rc;
    for (int i = 0; i < PQnfields(res); i++)
        if (strcmp(PQgetvalue(res, 0, i), "t") == 0)
            *found |= 1u << i;
    PQclear(res);
    return PGSTORE_OK;
}

/* not_ours - the refusal of a database whose table NAME is not ours. */
static int not_ours(const char *name, char *err)
{
    return pg_fail(err, PGSTORE_ERROR, "not a coexist-milter database: it has a table"
                   " \"%s\" that is not ours", name);
}

/*
 * read_meta - the schema version and database id, after find_tables saw
 * coexist_meta. LOCK appends FOR UPDATE (inside a transaction). A table of
 * that name with other columns, other rows or another marker is foreign.
 */
static int read_meta(struct pgstore *db, int lock, int *version, char *id, char *err)
{
    PGresult *res = PQexec(db->conn, lock
                           ? "SELECT marker, schema_version, database_id FROM coexist_meta FOR UPDATE"
                           : "SELECT marker, schema_version, database_id FROM coexist_meta");
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    if (res != NULL && PQresultStatus(res) != PGRES_TUPLES_OK && state != NULL
        && strcmp(state, "42703") == 0) {       /* undefined column */
        PQclear(res);
        return not_ours("coexist_meta", err);
    }
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
        return pg_error(db, res, "reading coexist_meta", err);
    if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), SCHEMA_MARKER) != 0) {
        PQclear(res);
        return not_ours("coexist_meta", err);
    }
    *version = atoi(PQgetvalue(res, 0, 1));
    snprintf(id, PGSTORE_ID_MAX, "%s", PQgetvalue(res, 0, 2));
    PQclear(res);
    return PGSTORE_OK;
}

/* run_steps - upgrade from FROM to PGSTORE_SCHEMA_VERSION, in the open transaction. */
static int run_steps(struct pgstore *db, int from, char *err)
{
    char what[64], version[16];
    const char *params[1] = {version};

    int rc;

    for (size_t i = 0; i < SCHEMA_NSTEPS; i++) {
        if (schema_steps[i].version <= from)
            continue;
        snprintf(what, sizeof(what), "schema upgrade to version %d", schema_steps[i].version);
        if ((rc = run_script(db, schema_steps[i].sql, what, err)) != PGSTORE_OK)
            return rc;
    }
    snprintf(version, sizeof(version), "%d", PGSTORE_SCHEMA_VERSION);
    return pg_run(db, "UPDATE coexist_meta SET schema_version = $1", 1, params,
                  "recording the schema version", err);
}

/* fail_txn - roll the open transaction back; returns RC. */
static int fail_txn(struct pgstore *db, int rc)
{
    pg_rollback(db);
    return rc;
}

/* commit - end the transaction of WHAT. */
static int commit(struct pgstore *db, const char *what, char *err)
{
    int rc = pg_run(db, "COMMIT", 0, NULL, what, err);

    return rc == PGSTORE_OK ? rc : fail_txn(db, rc);
}

/*
 * refuse_existing - why init must not touch a database whose tables FOUND
 * (find_tables) are not none: ours already, or a foreign one.
 */
static int refuse_existing(struct pgstore *db, unsigned found, char *err)
{
    char id[PGSTORE_ID_MAX];
    int version, rc;

    if (found & 1) {
        if ((rc = read_meta(db, 0, &version, id, err)) != PGSTORE_OK)
            return rc;
        return pg_fail(err, PGSTORE_ERROR, "the database already holds a coexist-milter"
                       " schema (version %d, id %s)", version, id);
    }
    for (size_t i = 1; i < sizeof(schema_tables) / sizeof(schema_tables[0]); i++)
        if (found & (1u << i))
            return not_ours(schema_tables[i], err);
    return PGSTORE_OK;
}

int pgstore_init(struct pgstore *db, char err[PGSTORE_ERR_MAX])
{
    unsigned found;
    int rc;

    if ((rc = pg_run(db, "BEGIN", 0, NULL, "init", err)) != PGSTORE_OK)
        return rc;
    if ((rc = find_tables(db, &found, err)) != PGSTORE_OK
        || (rc = refuse_existing(db, found, err)) != PGSTORE_OK)
        return fail_txn(db, rc);
    rc = run_script(db, "CREATE TABLE coexist_meta (one boolean PRIMARY KEY DEFAULT true"
                    " CHECK (one), marker text NOT NULL, schema_version integer NOT NULL,"
                    " database_id text NOT NULL, pruned_before bigint NOT NULL DEFAULT 0,"
                    " created timestamptz NOT NULL DEFAULT now());"
                    "INSERT INTO coexist_meta (marker, schema_version, database_id)"
                    " VALUES ('" SCHEMA_MARKER "', 0, gen_random_uuid()::text)",
                    "init", err);
    if (rc != PGSTORE_OK || (rc = run_steps(db, 0, err)) != PGSTORE_OK)
        return fail_txn(db, rc);
    return commit(db, "init", err);
}

/*
 * probe - the version of the schema in the database (LOCK: FOR UPDATE),
 * refusing a database with none or a foreign one.
 */
static int probe(struct pgstore *db, int lock, int *version, char *err)
{
    unsigned found;
    int rc;

    if ((rc = find_tables(db, &found, err)) != PGSTORE_OK)
        return rc;
    if (!(found & 1)) {
        if ((rc = refuse_existing(db, found, err)) != PGSTORE_OK)
            return rc;
        return pg_fail(err, PGSTORE_ERROR, "the database holds no coexist-milter schema"
                       " (coexistctl init --shared creates it)");
    }
    if ((rc = read_meta(db, lock, version, db->database_id, err)) != PGSTORE_OK)
        return rc;
    if (*version > PGSTORE_SCHEMA_VERSION)
        return pg_fail(err, PGSTORE_ERROR, "schema version %d is newer than this"
                       " coexistctl (%d)", *version, PGSTORE_SCHEMA_VERSION);
    return PGSTORE_OK;
}

int pgstore_upgrade(struct pgstore *db, char err[PGSTORE_ERR_MAX])
{
    int version, rc;

    if ((rc = pg_run(db, "BEGIN", 0, NULL, "schema upgrade", err)) != PGSTORE_OK)
        return rc;
    /* Locked and read again: another host may have upgraded meanwhile. */
    if ((rc = probe(db, 1, &version, err)) != PGSTORE_OK)
        return fail_txn(db, rc);
    if (version == PGSTORE_SCHEMA_VERSION)
        return commit(db, "schema upgrade", err);
    if ((rc = run_steps(db, version, err)) != PGSTORE_OK)
        return fail_txn(db, rc);
    return commit(db, "schema upgrade", err);
}

int pgstore_check_schema(struct pgstore *db, char err[PGSTORE_ERR_MAX])
{
    int version, rc;

    if ((rc = probe(db, 0, &version, err)) != PGSTORE_OK)
        return rc;
    return version == PGSTORE_SCHEMA_VERSION ? PGSTORE_OK : pgstore_upgrade(db, err);
}

const char *pgstore_database_id(const struct pgstore *db)
{
    return db->database_id;
}
