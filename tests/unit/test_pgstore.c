/*
 * test_pgstore.c - unit tests of the PostgreSQL shared store
 * (policy/pg*.c) against a real PostgreSQL 15, started for this run by
 * tests/cluster/pglib.sh in a temp dir (a unix socket there, no TCP) and
 * destroyed at the end. Each test gets a database of its own. If the
 * server cannot be started the run FAILS: it never skips.
 *
 * Covers: a conninfo that does not connect or does not parse; init, and
 * init refused on a database that has the schema or a foreign table of
 * our names; a schema newer than this build refused (check and apply), an
 * older one upgraded; apply (puts, deletes, notes, journal rows with actor
 * and node, the reverse index), compare-and-set conflicts that change
 * nothing, also when another writer creates a key while the change runs; NOTIFY seen by a second connection; the journal in id order
 * with limits; a snapshot that a concurrent change does not disturb, and
 * its position; owners; pruning and the oldest id; replica positions; the
 * server stopped (fast and immediate) and started again; and 10^5 ops in
 * one transaction (the time is printed, not asserted).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <libpq-fe.h>

#include "change.h"
#include "pg_cluster.h"
#include "pgstore.h"
#include "check.h"


#define USER_A "v=1 state=unmigrated mode=bcc alias=adam@pop.example"
#define USER_M "v=1 state=migrated mode=bcc alias=adam@pop.example"
#define USER_E "v=1 state=unmigrated mode=rewrite alias=eve@pop.example"
#define DOMAIN "v=1 state=unmigrated mode=rewrite legacy=pop.example"

static char cluster[PG_CLUSTER_DIR_MAX];                /* the server's dir: its socket is there */

struct fixture {
    char conninfo[256];
    PGconn *sql;                        /* the test's own eyes on its database */
    struct pgstore *db;
    char err[PGSTORE_ERR_MAX];
};

/* pglib - run a pglib.sh function (e.g. "pg_stop fast") on the cluster. */
static int pglib(const char *call)
{
    return pg_cluster_run(cluster, call);
}

/* group_setup - start the server; a failure fails every test. */
static int group_setup(void **state)
{
    (void) state;
    return pg_cluster_start("test_pgstore", cluster);
}

static int group_teardown(void **state)
{
    (void) state;
    return pglib("pg_destroy") == 0 ? 0 : -1;
}

/* sql_ok - run SQL (no result wanted) on the test's connection. */
static void sql_ok(struct fixture *fx, const char *sql)
{
    PGresult *res = PQexec(fx->sql, sql);
    ExecStatusType st = PQresultStatus(res);

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(fx->sql));
    PQclear(res);
}

/* sql_text - the first value of SQL's result ("(null)" for NULL) into BUF. */
static const char *sql_text(struct fixture *fx, const char *sql, char *buf, size_t len)
{
    PGresult *res = PQexec(fx->sql, sql);

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) < 1)
        fail_msg("%s: %s", sql, PQerrorMessage(fx->sql));
    snprintf(buf, len, "%s", PQgetisnull(res, 0, 0) ? "(null)" : PQgetvalue(res, 0, 0));
    PQclear(res);
    return buf;
}

/* sql_ll - the first value of SQL's result as a number. */
static long long sql_ll(struct fixture *fx, const char *sql)
{
    char buf[64];

    return strtoll(sql_text(fx, sql, buf, sizeof(buf)), NULL, 10);
}

/* setup - a new database for the test, and both connections to it. */
static int setup(void **state)
{
    static int serial;
    struct fixture *fx = calloc(1, sizeof(*fx));
    char conninfo[256], sql[128];
    PGconn *admin;
    PGresult *res;

    if (fx == NULL)
        return -1;
    snprintf(conninfo, sizeof(conninfo), "host=%s user=coexist dbname=postgres", cluster);
    admin = PQconnectdb(conninfo);
    snprintf(sql, sizeof(sql), "CREATE DATABASE t%d_%d", (int) getpid(), ++serial);
    res = PQexec(admin, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        fprintf(stderr, "setup: %s", PQerrorMessage(admin));
        return -1;
    }
    PQclear(res);
    PQfinish(admin);
    snprintf(fx->conninfo, sizeof(fx->conninfo), "host=%s user=coexist dbname=t%d_%d",
             cluster, (int) getpid(), serial);
    fx->sql = PQconnectdb(fx->conninfo);
    if (PQstatus(fx->sql) != CONNECTION_OK)
        return -1;
    if (pgstore_connect(fx->conninfo, &fx->db, fx->err) != PGSTORE_OK) {
        fprintf(stderr, "setup: %s\n", fx->err);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    pgstore_close(fx->db);
    PQfinish(fx->sql);
    free(fx);
    return 0;
}

/* init_db - the schema created and checked. */
static void init_db(struct fixture *fx)
{
    CHECK_RC(pgstore_init(fx->db, fx->err), PGSTORE_OK);
    CHECK_RC(pgstore_check_schema(fx->db, fx->err), PGSTORE_OK);
}

/* begin - a change by root/0 on mx1. */
static void begin(struct change *ch)
{
    char err[CHANGE_ERR_MAX];

    if (change_init(ch, "root/0", "mx1", err) < 0)
        fail_msg("change_init: %s", err);
}

/* put - add a put to CH or fail the test. */
static void put(struct change *ch, const char *key, const char *expected, const char *value)
{
    char err[CHANGE_ERR_MAX];

    if (change_put(ch, key, expected, value, err) < 0)
        fail_msg("change_put %s: %s", key, err);
}

/* apply1 - apply one put (or delete when VALUE is NULL) as its own change. */
static long long apply1(struct fixture *fx, const char *key, const char *expected,
                        const char *value)
{
    char err[CHANGE_ERR_MAX];
    struct change ch;
    long long id = -1;

    begin(&ch);
    if (value == NULL && change_delete(&ch, key, expected, err) < 0)
        fail_msg("change_delete %s: %s", key, err);
    if (value != NULL)
        put(&ch, key, expected, value);
    CHECK_RC(pgstore_apply(fx->db, &ch, &id, fx->err), PGSTORE_OK);
    change_free(&ch);
    return id;
}

static void test_connect_failures(void **state)
{
    struct fixture *fx = *state;
    struct pgstore *db = (struct pgstore *) 1;

    CHECK_RC(pgstore_connect("host=/nonexistent user=coexist dbname=postgres", &db,
                             fx->err), PGSTORE_UNAVAILABLE);
    assert_null(db);
    CHECK_CONTAINS(fx->err, "cannot connect to the shared store");
    CHECK_CONTAINS(fx->err, "/nonexistent");
    assert_null(strchr(fx->err, '\n'));
    CHECK_RC(pgstore_connect("hots=x", &db, fx->err), PGSTORE_ERROR);
    CHECK_CONTAINS(fx->err, "bad shared_store conninfo");
    CHECK_CONTAINS(fx->err, "hots");
    assert_null(db);
}

static void test_init_and_reinit(void **state)
{
    struct fixture *fx = *state;
    char buf[128];

    CHECK_RC(pgstore_check_schema(fx->db, fx->err), PGSTORE_ERROR);
    CHECK_CONTAINS(fx->err, "holds no coexist-milter schema");
    init_db(fx);
    assert_true(strlen(pgstore_database_id(fx->db)) >= 32);
    CHECK_STR(sql_text(fx, "SELECT database_id FROM coexist_meta", buf, sizeof(buf)),
              pgstore_database_id(fx->db));
    assert_int_equal(sql_ll(fx, "SELECT schema_version FROM coexist_meta"),
                     PGSTORE_SCHEMA_VERSION);
    CHECK_RC(pgstore_init(fx->db, fx->err), PGSTORE_ERROR);
    CHECK_CONTAINS(fx->err, "already holds a coexist-milter schema (version 2, id ");
    /* the refused init changed nothing, and the connection is usable */
    CHECK_RC(pgstore_check_schema(fx->db, fx->err), PGSTORE_OK);
    assert_int_equal(sql_ll(fx, "SELECT count(*) FROM coexist_meta"), 1);
}

static void test_foreign_tables_refused(void **state)
{
    struct fixture *fx = *state;

    sql_ok(fx, "CREATE TABLE records (id int, payload text)");
    CHECK_RC(pgstore_init(fx->db, fx->err), PGSTORE_ERROR);
    CHECK_STR(fx->err, "not a coexist-milter database: it has a table \"records\" that is"
              " not ours");
    CHECK_RC(pgstore_check_schema(fx->db, fx->err), PGSTORE_ERROR);
    CHECK_CONTAINS(fx->err, "not a coexist-milter database");
    assert_int_equal(sql_ll(fx, "SELECT count(*) FROM pg_tables WHERE tablename IN"
                            " ('coexist_meta', 'journal', 'replicas')"), 0);
    /* a meta table of our name but not our shape */
    sql_ok(fx, "DROP TABLE records; CREATE TABLE coexist_meta (k text, v text)");
    CHECK_RC(pgstore_init(fx->db, fx->err), PGSTORE_ERROR);
    CHECK_CONTAINS(fx->err, "not a coexist-milter database: it has a table \"coexist_meta\"");
    CHECK_RC(pgstore_check_schema(fx->db, fx->err), PGSTORE_ERROR);
    CHECK_CONTAINS(fx->err, "\"coexist_meta\" that is not ours");
}

static void test_newer_schema_refused(void **state)
{
    struct fixture *fx = *state;
    struct change ch;

    init_db(fx);
    sql_ok(fx, "UPDATE coexist_meta SET schema_version = 7");
    CHECK_RC(pgstore_check_schema(fx->db, fx->err), PGSTORE_ERROR);
    CHECK_STR(fx->err, "schema version 7 is newer than this coexistctl (2)");
    CHECK_RC(pgstore_upgrade(fx->db, fx->err), PGSTORE_ERROR);
    CHECK_STR(fx->err, "schema version 7 is newer than this coexistctl (2)");
    /* apply checks again under its lock: a host upgraded meanwhile */
    begin(&ch);
    put(&ch, "adam@corp.example", NULL, USER_A);
    CHECK_RC(pgstore_apply(fx->db, &ch, NULL, fx->err), PGSTORE_ERROR);
    CHECK_CONTAINS(fx->err, "schema is at version 7, not 2");
    change_free(&ch);
    assert_int_equal(sql_ll(fx, "SELECT count(*) FROM records"), 0);
    assert_int_equal(sql_ll(fx, "SELECT count(*) FROM journal"), 0);
}

static void test_older_schema_upgraded(void **state)
{
    struct fixture *fx = *state;

    /* version 0: the meta row alone, as init leaves it before its steps */
    init_db(fx);
    sql_ok(fx, "DROP TABLE records, journal, replicas, counters;"
           " UPDATE coexist_meta SET schema_version = 0");
    CHECK_RC(pgstore_check_schema(fx->db, fx->err), PGSTORE_OK);
    assert_int_equal(sql_ll(fx, "SELECT schema_version FROM coexist_meta"), 2);
    assert_int_equal(sql_ll(fx, "SELECT count(*) FROM pg_tables WHERE tablename IN"
                            " ('records', 'journal', 'replicas')"), 3);
    assert_int_equal(sql_ll(fx, "SELECT count(*) FROM pg_indexes WHERE"
                            " indexname = 'records_alias'"), 1);
    apply1(fx, "adam@corp.example", NULL, USER_A);
    /* current: a no-op */
    CHECK_RC(pgstore_upgrade(fx->db, fx->err), PGSTORE_OK);
    assert_int_equal(sql_ll(fx, "SELECT count(*) FROM records"), 1);
    /* version 1 (before the counters): step 2 alone, the records kept */
    sql_ok(fx, "DROP TABLE counters; UPDATE coexist_meta SET schema_version = 1");
    CHECK_RC(pgstore_check_schema(fx->db, fx->err), PGSTORE_OK);
    assert_int_equal(sql_ll(fx, "SELECT schema_version FROM coexist_meta"), 2);
    assert_int_equal(sql_ll(fx, "SELECT count(*) FROM counters"), 0);
    assert_int_equal(sql_ll(fx, "SELECT count(*) FROM records"), 1);
}

/* Each host's counters rows: pushed (replacing its own), read without one node. */
static int count_row(const char *node, const char *key, const char *value, void *ctx)
{
    char *seen = ctx;
    size_t len = strlen(seen);

    snprintf(seen + len, 512 - len, "%s %s %s;", node, key, value);
    return 0;
}

static void test_counters_rows(void **state)
{
    struct fixture *fx = *state;
    const char *keys[] = {"adam@corp.example", "@corp2.example"};
    const char *v1[] = {"A1", "D1"}, *v2[] = {"A2"};
    char seen[512] = "";

    init_db(fx);
    CHECK_RC(pgstore_counters_push(fx->db, "mx1", 2, keys, v1, fx->err), PGSTORE_OK);
    CHECK_RC(pgstore_counters_push(fx->db, "mx2", 1, keys, v1, fx->err), PGSTORE_OK);
    CHECK_RC(pgstore_counters_push(fx->db, "mx1", 1, keys, v2, fx->err), PGSTORE_OK);
    CHECK_RC(pgstore_counters_traverse(fx->db, "mx2", count_row, seen, fx->err), 2);
    assert_string_equal(seen, "mx1 @corp2.example D1;mx1 adam@corp.example A2;");
    seen[0] = '\0';
    CHECK_RC(pgstore_counters_traverse(fx->db, NULL, count_row, seen, fx->err), 3);
    assert_string_equal(seen, "mx1 @corp2.example D1;mx1 adam@corp.example A2;"
                        "mx2 adam@corp.example A1;");
}

static void test_apply_puts_deletes_notes(void **state)
{
    struct fixture *fx = *state;
    char buf[256], err[CHANGE_ERR_MAX];
    struct change ch;
    long long id, id2;

    init_db(fx);
    begin(&ch);
    put(&ch, "eve@corp.example", NULL, USER_E);
    put(&ch, "adam@corp.example", NULL, USER_A);
    put(&ch, "@corp.example", NULL, DOMAIN);
    assert_int_equal(change_note(&ch, "!import", NULL, "import:3-rows", err), 0);
    CHECK_RC(pgstore_apply(fx->db, &ch, &id, fx->err), PGSTORE_OK);
    change_free(&ch);
    assert_int_equal(id, sql_ll(fx, "SELECT max(id) FROM journal"));
    assert_int_equal(sql_ll(fx, "SELECT count(*) FROM records"), 3);
    CHECK_STR(sql_text(fx, "SELECT alias FROM records WHERE key = '@corp.example'", buf,
                       sizeof(buf)), "@pop.example");
    CHECK_STR(sql_text(fx, "SELECT alias FROM records WHERE key = 'eve@corp.example'", buf,
                       sizeof(buf)), "eve@pop.example");
    /* journal: in key order, the note last, each with actor and node */
    CHECK_STR(sql_text(fx, "SELECT string_agg(key || ' ' || coalesce(old, '-') || ' '"
                       " || actor || ' ' || node, ',' ORDER BY id) FROM journal", buf,
                       sizeof(buf)),
              "@corp.example - root/0 mx1,adam@corp.example - root/0 mx1,"
              "eve@corp.example - root/0 mx1,!import - root/0 mx1");
    CHECK_STR(sql_text(fx, "SELECT new FROM journal WHERE key = '!import'", buf,
                       sizeof(buf)), "import:3-rows");
    /* an update and a delete, with what they expect */
    begin(&ch);
    put(&ch, "adam@corp.example", USER_A, USER_M);
    assert_int_equal(change_delete(&ch, "eve@corp.example", USER_E, err), 0);
    CHECK_RC(pgstore_apply(fx->db, &ch, &id2, fx->err), PGSTORE_OK);
    change_free(&ch);
    assert_true(id2 > id);
    CHECK_STR(sql_text(fx, "SELECT value FROM records WHERE key = 'adam@corp.example'", buf,
                       sizeof(buf)), USER_M);
    assert_int_equal(sql_ll(fx, "SELECT count(*) FROM records WHERE key ="
                            " 'eve@corp.example'"), 0);
    CHECK_STR(sql_text(fx, "SELECT old || '|' || new FROM journal WHERE key ="
                       " 'adam@corp.example' ORDER BY id DESC LIMIT 1", buf, sizeof(buf)),
              USER_A "|" USER_M);
    CHECK_STR(sql_text(fx, "SELECT coalesce(new, '(deleted)') FROM journal WHERE key ="
                       " 'eve@corp.example' ORDER BY id DESC LIMIT 1", buf, sizeof(buf)),
              "(deleted)");
    /* an empty change writes nothing */
    begin(&ch);
    CHECK_RC(pgstore_apply(fx->db, &ch, &id, fx->err), PGSTORE_OK);
    assert_int_equal(id, 0);
    change_free(&ch);
    assert_int_equal(sql_ll(fx, "SELECT count(*) FROM journal"), 6);
}

/* check_conflict - CH conflicts naming KEY, and nothing changed. */
static void check_conflict(struct fixture *fx, struct change *ch, const char *key)
{
    char buf[256];
    long long id = -1;

    CHECK_RC(pgstore_apply(fx->db, ch, &id, fx->err), PGSTORE_CONFLICT);
    assert_int_equal(id, 0);
    CHECK_CONTAINS(fx->err, key);
    CHECK_CONTAINS(fx->err, "nothing applied");
    change_free(ch);
    assert_int_equal(sql_ll(fx, "SELECT count(*) FROM records"), 2);
    assert_int_equal(sql_ll(fx, "SELECT count(*) FROM journal"), 2);
    CHECK_STR(sql_text(fx, "SELECT value FROM records WHERE key = 'adam@corp.example'", buf,
                       sizeof(buf)), USER_A);
    assert_int_equal(sql_ll(fx, "SELECT count(*) FROM records WHERE key ="
                            " 'new@corp.example'"), 0);
}

static void test_apply_conflicts(void **state)
{
    struct fixture *fx = *state;
    char err[CHANGE_ERR_MAX];
    struct change ch;

    init_db(fx);
    apply1(fx, "adam@corp.example", NULL, USER_A);
    apply1(fx, "eve@corp.example", NULL, USER_E);
    /* one op expects a value another writer has changed */
    begin(&ch);
    put(&ch, "new@corp.example", NULL, USER_E);
    put(&ch, "adam@corp.example", USER_A, USER_M);
    put(&ch, "eve@corp.example", USER_A, USER_M);
    check_conflict(fx, &ch, "eve@corp.example changed since it was read");
    /* a put that expects absent a key another writer created */
    begin(&ch);
    put(&ch, "new@corp.example", NULL, USER_E);
    put(&ch, "adam@corp.example", NULL, USER_M);
    check_conflict(fx, &ch, "adam@corp.example");
    /* a delete of a key that is gone, an update of one never there */
    begin(&ch);
    assert_int_equal(change_delete(&ch, "gone@corp.example", USER_A, err), 0);
    check_conflict(fx, &ch, "gone@corp.example");
    begin(&ch);
    put(&ch, "adam@corp.example", USER_A, USER_M);
    put(&ch, "zed@corp.example", USER_A, USER_M);
    check_conflict(fx, &ch, "zed@corp.example");
    /* a key twice is refused before the database is asked */
    begin(&ch);
    put(&ch, "adam@corp.example", USER_A, USER_M);
    put(&ch, "adam@corp.example", USER_M, USER_A);
    CHECK_RC(pgstore_apply(fx->db, &ch, NULL, fx->err), PGSTORE_ERROR);
    CHECK_CONTAINS(fx->err, "named twice");
    change_free(&ch);
    /* the session is still usable after the rollbacks */
    apply1(fx, "adam@corp.example", USER_A, USER_M);
}

/*
 * test_insert_race - another writer creates a key this change expects
 * absent after the comparison and before the insert (its transaction
 * commits while ours waits on the key): a conflict, not an overwrite.
 */
static void test_insert_race(void **state)
{
    struct fixture *fx = *state;
    PGconn *other;
    PGresult *res;
    struct change ch;
    char buf[256];

    init_db(fx);
    other = PQconnectdb(fx->conninfo);
    assert_int_equal(PQstatus(other), CONNECTION_OK);
    /* sent, not waited for: the server holds the key for two seconds, then commits */
    assert_int_equal(PQsendQuery(other, "BEGIN; INSERT INTO records VALUES"
                                 " ('adam@corp.example', '" USER_E "', 'eve@pop.example');"
                                 " SELECT pg_sleep(2); COMMIT"), 1);
    usleep(500 * 1000);
    begin(&ch);
    put(&ch, "adam@corp.example", NULL, USER_A);
    put(&ch, "bob@corp.example", NULL, USER_A);
    CHECK_RC(pgstore_apply(fx->db, &ch, NULL, fx->err), PGSTORE_CONFLICT);
    CHECK_STR(fx->err, "adam@corp.example was created meanwhile; nothing applied");
    change_free(&ch);
    while ((res = PQgetResult(other)) != NULL)
        PQclear(res);
    PQfinish(other);
    CHECK_STR(sql_text(fx, "SELECT value FROM records WHERE key = 'adam@corp.example'", buf,
                       sizeof(buf)), USER_E);
    assert_int_equal(sql_ll(fx, "SELECT count(*) FROM records"), 1);
    assert_int_equal(sql_ll(fx, "SELECT count(*) FROM journal"), 0);
}

static void test_notify(void **state)
{
    struct fixture *fx = *state;
    struct pgstore *listener;
    long long got = -1, id;

    init_db(fx);
    CHECK_RC(pgstore_connect(fx->conninfo, &listener, fx->err), PGSTORE_OK);
    CHECK_RC(pgstore_listen(listener, fx->err), PGSTORE_OK);
    assert_true(pgstore_socket(listener) >= 0);
    CHECK_RC(pgstore_wait_notify(listener, 100, &got, fx->err), PGSTORE_OK);
    assert_int_equal(got, 0);
    id = apply1(fx, "adam@corp.example", NULL, USER_A);
    CHECK_RC(pgstore_wait_notify(listener, 5000, &got, fx->err), PGSTORE_OK);
    assert_int_equal(got, id);
    /* two changes before the listener looks: it sees the later id */
    apply1(fx, "adam@corp.example", USER_A, USER_M);
    id = apply1(fx, "adam@corp.example", USER_M, USER_A);
    usleep(200 * 1000);
    CHECK_RC(pgstore_wait_notify(listener, 5000, &got, fx->err), PGSTORE_OK);
    if (got != id) {            /* the second may come in a packet of its own */
        CHECK_RC(pgstore_wait_notify(listener, 5000, &got, fx->err), PGSTORE_OK);
    }
    assert_int_equal(got, id);
    /* a failed change notifies nobody */
    {
        struct change ch;

        begin(&ch);
        put(&ch, "adam@corp.example", NULL, USER_M);
        CHECK_RC(pgstore_apply(fx->db, &ch, NULL, fx->err), PGSTORE_CONFLICT);
        change_free(&ch);
    }
    CHECK_RC(pgstore_wait_notify(listener, 300, &got, fx->err), PGSTORE_OK);
    assert_int_equal(got, 0);
    pgstore_close(listener);
}

/* Journal rows collected by a visitor. */
struct rows {
    int n, stop_after;
    long long id[16];
    char key[16][64], node[16][16], actor[16][16];
    int old_null[16];
};

static int collect_row(const struct pgstore_row *row, void *ctx)
{
    struct rows *r = ctx;

    if (r->n < 16) {
        r->id[r->n] = row->id;
        snprintf(r->key[r->n], sizeof(r->key[0]), "%s", row->key);
        snprintf(r->node[r->n], sizeof(r->node[0]), "%s", row->node);
        snprintf(r->actor[r->n], sizeof(r->actor[0]), "%s", row->actor);
        r->old_null[r->n] = row->old_value == NULL;
        if (row->at < time(NULL) - 600 || row->at > time(NULL) + 600)
            fail_msg("journal row %lld: at %lld is not now", row->id, (long long) row->at);
    }
    r->n++;
    return r->stop_after && r->n >= r->stop_after;
}

static void test_journal_since(void **state)
{
    struct fixture *fx = *state;
    struct rows r = {0};
    long long ids[5], latest;
    char key[64];

    init_db(fx);
    CHECK_RC(pgstore_latest_id(fx->db, &latest, fx->err), PGSTORE_OK);
    assert_int_equal(latest, 0);
    for (int i = 0; i < 5; i++) {
        snprintf(key, sizeof(key), "u%d@corp.example", 5 - i);
        ids[i] = apply1(fx, key, NULL, USER_A);
    }
    CHECK_RC(pgstore_latest_id(fx->db, &latest, fx->err), PGSTORE_OK);
    assert_int_equal(latest, ids[4]);
    assert_int_equal(pgstore_journal_since(fx->db, 0, 3, collect_row, &r, fx->err), 3);
    assert_int_equal(r.n, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r.id[i], ids[i]);
        snprintf(key, sizeof(key), "u%d@corp.example", 5 - i);
        CHECK_STR(r.key[i], key);
        CHECK_STR(r.node[i], "mx1");
        CHECK_STR(r.actor[i], "root/0");
        assert_true(r.old_null[i]);
    }
    memset(&r, 0, sizeof(r));
    assert_int_equal(pgstore_journal_since(fx->db, ids[2], 100, collect_row, &r, fx->err), 2);
    assert_int_equal(r.id[0], ids[3]);
    assert_int_equal(r.id[1], ids[4]);
    memset(&r, 0, sizeof(r));
    r.stop_after = 1;
    assert_int_equal(pgstore_journal_since(fx->db, 0, 100, collect_row, &r, fx->err), 1);
    memset(&r, 0, sizeof(r));
    assert_int_equal(pgstore_journal_since(fx->db, ids[4], 100, collect_row, &r, fx->err), 0);
    CHECK_RC(pgstore_journal_since(fx->db, 0, 0, collect_row, &r, fx->err), PGSTORE_ERROR);
}

/* A snapshot being read, with a writer that changes the store meanwhile. */
struct snap {
    struct fixture *fx;
    struct pgstore *writer;
    long n;
    int seen_new, seen_deleted_value;
};

static int snap_row(const char *key, const char *value, void *ctx)
{
    struct snap *s = ctx;

    if (s->n++ == 0) {          /* while the snapshot is open: a change commits */
        char err[CHANGE_ERR_MAX];
        struct change ch;

        change_init(&ch, "root/0", "mx2", err);
        change_put(&ch, "late@corp.example", NULL, USER_E, err);
        change_delete(&ch, "u00001@corp.example", USER_A, err);
        if (pgstore_apply(s->writer, &ch, NULL, s->fx->err) != PGSTORE_OK)
            fail_msg("concurrent apply: %s", s->fx->err);
        change_free(&ch);
    }
    if (strcmp(key, "late@corp.example") == 0)
        s->seen_new = 1;
    if (strcmp(key, "u00001@corp.example") == 0 && strcmp(value, USER_A) == 0)
        s->seen_deleted_value = 1;
    return 0;
}

static void test_snapshot(void **state)
{
    struct fixture *fx = *state;
    struct snap s = {.fx = fx};
    struct change ch;
    long long id, pos, latest;
    char key[64];

    init_db(fx);
    /* more rows than one cursor batch, so the snapshot reads after the change */
    begin(&ch);
    for (int i = 0; i < 12000; i++) {
        snprintf(key, sizeof(key), "u%05d@corp.example", i);
        put(&ch, key, NULL, USER_A);
    }
    CHECK_RC(pgstore_apply(fx->db, &ch, &id, fx->err), PGSTORE_OK);
    change_free(&ch);
    CHECK_RC(pgstore_connect(fx->conninfo, &s.writer, fx->err), PGSTORE_OK);
    CHECK_RC(pgstore_snapshot(fx->db, snap_row, &s, &pos, fx->err), PGSTORE_OK);
    assert_int_equal(pos, id);
    assert_int_equal(s.n, 12000);
    assert_false(s.seen_new);
    assert_true(s.seen_deleted_value);
    CHECK_RC(pgstore_latest_id(fx->db, &latest, fx->err), PGSTORE_OK);
    assert_true(latest > pos);
    /* the next snapshot has both, at the later position */
    pgstore_close(s.writer);
    memset(&s, 0, sizeof(s));
    s.fx = fx;
    s.n = 1;                    /* no writer this time */
    CHECK_RC(pgstore_snapshot(fx->db, snap_row, &s, &pos, fx->err), PGSTORE_OK);
    assert_int_equal(pos, latest);
    assert_int_equal(s.n, 1 + 12000);
    assert_true(s.seen_new);
    assert_false(s.seen_deleted_value);
}

static int collect_key(const char *key, void *ctx)
{
    char *buf = ctx;

    strcat(buf, key);
    strcat(buf, ",");
    return 0;
}

static void test_owners(void **state)
{
    struct fixture *fx = *state;
    char buf[512] = "";

    init_db(fx);
    apply1(fx, "adam@corp.example", NULL, USER_A);
    apply1(fx, "adam2@corp.example", NULL, USER_A);
    apply1(fx, "eve@corp.example", NULL, USER_E);
    apply1(fx, "@corp.example", NULL, DOMAIN);
    assert_int_equal(pgstore_owners(fx->db, "adam@pop.example", collect_key, buf, fx->err), 2);
    CHECK_STR(buf, "adam2@corp.example,adam@corp.example,");
    buf[0] = '\0';
    assert_int_equal(pgstore_owners(fx->db, "@pop.example", collect_key, buf, fx->err), 1);
    CHECK_STR(buf, "@corp.example,");
    assert_int_equal(pgstore_owners(fx->db, "nobody@pop.example", NULL, NULL, fx->err), 0);
    /* the index follows a change of alias and a delete */
    apply1(fx, "adam2@corp.example", USER_A, USER_E);
    apply1(fx, "adam@corp.example", USER_A, NULL);
    assert_int_equal(pgstore_owners(fx->db, "adam@pop.example", NULL, NULL, fx->err), 0);
    assert_int_equal(pgstore_owners(fx->db, "eve@pop.example", NULL, NULL, fx->err), 2);
}

static void test_prune(void **state)
{
    struct fixture *fx = *state;
    struct rows r = {0};
    long long ids[3], oldest;

    init_db(fx);
    CHECK_RC(pgstore_oldest_id(fx->db, &oldest, fx->err), PGSTORE_OK);
    assert_int_equal(oldest, 1);
    ids[0] = apply1(fx, "a@corp.example", NULL, USER_A);
    ids[1] = apply1(fx, "b@corp.example", NULL, USER_A);
    ids[2] = apply1(fx, "c@corp.example", NULL, USER_A);
    CHECK_RC(pgstore_prune(fx->db, ids[2], fx->err), PGSTORE_OK);
    CHECK_RC(pgstore_oldest_id(fx->db, &oldest, fx->err), PGSTORE_OK);
    assert_int_equal(oldest, ids[2]);
    assert_int_equal(pgstore_journal_since(fx->db, 0, 10, collect_row, &r, fx->err), 1);
    assert_int_equal(r.id[0], ids[2]);
    /* pruning never moves back */
    CHECK_RC(pgstore_prune(fx->db, 1, fx->err), PGSTORE_OK);
    CHECK_RC(pgstore_oldest_id(fx->db, &oldest, fx->err), PGSTORE_OK);
    assert_int_equal(oldest, ids[2]);
}

struct positions {
    char text[128];
};

static int collect_position(const char *node, long long position, time_t at, void *ctx)
{
    struct positions *p = ctx;
    size_t n = strlen(p->text);

    if (at < time(NULL) - 600)
        fail_msg("%s: reported at %lld, not now", node, (long long) at);
    snprintf(p->text + n, sizeof(p->text) - n, "%s=%lld,", node, position);
    return 0;
}

static void test_positions(void **state)
{
    struct fixture *fx = *state;
    struct positions p = {""};

    init_db(fx);
    assert_int_equal(pgstore_positions(fx->db, collect_position, &p, fx->err), 0);
    CHECK_RC(pgstore_report_position(fx->db, "mx2", 5, fx->err), PGSTORE_OK);
    CHECK_RC(pgstore_report_position(fx->db, "mx1", 7, fx->err), PGSTORE_OK);
    CHECK_RC(pgstore_report_position(fx->db, "mx2", 9, fx->err), PGSTORE_OK);
    assert_int_equal(pgstore_positions(fx->db, collect_position, &p, fx->err), 2);
    CHECK_STR(p.text, "mx1=7,mx2=9,");
}

/* outage - stop the server with MODE: a write is refused, cleanly. */
static void outage(struct fixture *fx, const char *mode)
{
    struct pgstore *listener;
    struct change ch;
    long long got, id = -1;
    char call[64];

    CHECK_RC(pgstore_connect(fx->conninfo, &listener, fx->err), PGSTORE_OK);
    CHECK_RC(pgstore_listen(listener, fx->err), PGSTORE_OK);
    PQfinish(fx->sql);
    fx->sql = NULL;
    snprintf(call, sizeof(call), "pg_stop %s", mode);
    assert_int_equal(pglib(call), 0);
    begin(&ch);
    put(&ch, "eve@corp.example", NULL, USER_E);
    CHECK_RC(pgstore_apply(fx->db, &ch, &id, fx->err), PGSTORE_UNAVAILABLE);
    assert_int_equal(id, 0);
    CHECK_CONTAINS(fx->err, "the shared store is unavailable");
    assert_null(strchr(fx->err, '\n'));
    print_message("stopped (%s): %s\n", mode, fx->err);
    CHECK_RC(pgstore_latest_id(fx->db, &got, fx->err), PGSTORE_UNAVAILABLE);
    CHECK_RC(pgstore_wait_notify(listener, 1000, &got, fx->err), PGSTORE_UNAVAILABLE);
    CHECK_RC(pgstore_reset(fx->db, fx->err), PGSTORE_UNAVAILABLE);
    CHECK_CONTAINS(fx->err, "cannot reconnect to the shared store");
    assert_int_equal(pglib("pg_restart"), 0);
    fx->sql = PQconnectdb(fx->conninfo);
    assert_int_equal(PQstatus(fx->sql), CONNECTION_OK);
    assert_int_equal(sql_ll(fx, "SELECT count(*) FROM records WHERE key ="
                            " 'eve@corp.example'"), 0);
    /* after the restart: reset, and the same change goes through */
    CHECK_RC(pgstore_reset(fx->db, fx->err), PGSTORE_OK);
    CHECK_RC(pgstore_reset(listener, fx->err), PGSTORE_OK);
    CHECK_RC(pgstore_apply(fx->db, &ch, &id, fx->err), PGSTORE_OK);
    change_free(&ch);
    CHECK_RC(pgstore_wait_notify(listener, 5000, &got, fx->err), PGSTORE_OK);
    assert_int_equal(got, id);
    apply1(fx, "eve@corp.example", USER_E, NULL);
    pgstore_close(listener);
}

static void test_database_down(void **state)
{
    struct fixture *fx = *state;

    init_db(fx);
    apply1(fx, "adam@corp.example", NULL, USER_A);
    outage(fx, "fast");
    outage(fx, "immediate");
    assert_int_equal(sql_ll(fx, "SELECT count(*) FROM records"), 1);
}

/* seconds - a monotonic clock. */
static double seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

#define BULK 100000

static void test_bulk_apply(void **state)
{
    struct fixture *fx = *state;
    char key[64], err[CHANGE_ERR_MAX];
    struct change ch;
    double t0, t1, t2;
    long long id;

    init_db(fx);
    t0 = seconds();
    begin(&ch);
    for (int i = 0; i < BULK; i++) {
        snprintf(key, sizeof(key), "u%06d@corp.example", i);
        put(&ch, key, NULL, USER_A);
    }
    assert_int_equal(change_note(&ch, "!import", NULL, "import:100000-rows", err), 0);
    t1 = seconds();
    CHECK_RC(pgstore_apply(fx->db, &ch, &id, fx->err), PGSTORE_OK);
    t2 = seconds();
    change_free(&ch);
    print_message("bulk: %d puts: built in %.2f s, applied in %.2f s (%.0f ops/s)\n",
                  BULK, t1 - t0, t2 - t1, BULK / (t2 - t1));
    assert_int_equal(sql_ll(fx, "SELECT count(*) FROM records"), BULK);
    assert_int_equal(sql_ll(fx, "SELECT count(*) FROM journal"), BULK + 1);
    assert_int_equal(id, sql_ll(fx, "SELECT max(id) FROM journal"));
    /* the same keys again, each compared and updated */
    begin(&ch);
    for (int i = 0; i < BULK; i++) {
        snprintf(key, sizeof(key), "u%06d@corp.example", i);
        put(&ch, key, USER_A, USER_M);
    }
    t1 = seconds();
    CHECK_RC(pgstore_apply(fx->db, &ch, &id, fx->err), PGSTORE_OK);
    t2 = seconds();
    change_free(&ch);
    print_message("bulk: %d compared updates applied in %.2f s (%.0f ops/s)\n",
                  BULK, t2 - t1, BULK / (t2 - t1));
    assert_int_equal(sql_ll(fx, "SELECT count(*) FROM records WHERE value = '" USER_M "'"),
                     BULK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_connect_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_and_reinit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_tables_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_older_schema_upgraded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counters_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_puts_deletes_notes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_conflicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insert_race, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_journal_since, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owners, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_positions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_database_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bulk_apply, setup, teardown),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
