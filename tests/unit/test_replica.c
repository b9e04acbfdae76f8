/*
 * test_replica.c - unit tests of the local replica of the shared store
 * (policy/replica.c, replica_local.c) and of "coexistctl follow", against
 * a real PostgreSQL 15 started for this run by tests/cluster/pglib.sh (as
 * test_pgstore does). If the server cannot be started the run FAILS: it
 * never skips.
 *
 * Covers: apply_since brings a replica to the database's records and
 * position, and a second apply is a no-op; a follower SIGKILLed at random
 * points while it applies, several times: at every restart the records
 * are exactly the replay of the journal up to the stored position (no row
 * lost, none applied twice), and the end state equals the database; a
 * journal pruned past the position, a replica of another database, a
 * replica without a position, and a file of garbage each lead to a
 * snapshot installed by rename (a new inode) at the right position;
 * replica_wait_for reached, timed out, and reached while another process
 * holds the store open; and the follow verb end to end: a change reaches
 * the replica within 1 s (the time is printed), the database stopped and
 * started again and the follower catches up without a restart, SIGTERM
 * stops it cleanly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <libpq-fe.h>

#include "change.h"
#include "pg_cluster.h"
#include "pgstore.h"
#include "replica.h"
#include "store.h"
#include "check.h"


#define NKEYS 60

static char cluster[PG_CLUSTER_DIR_MAX];

struct fixture {
    char conninfo[256];
    char dir[64];
    char path[128];                     /* the replica's state_db */
    struct pgstore *db;
    char err[REPLICA_ERR_MAX];
};

/* pglib - run a pglib.sh function (e.g. "pg_stop fast") on the cluster. */
static int pglib(const char *call)
{
    return pg_cluster_run(cluster, call);
}

static int group_setup(void **state)
{
    (void) state;
    return pg_cluster_start("test_replica", cluster);
}

static int group_teardown(void **state)
{
    (void) state;
    return pglib("pg_destroy") == 0 ? 0 : -1;
}

/* new_database - create an empty database; its conninfo into OUT. */
static int new_database(char out[256])
{
    static int serial;
    char conninfo[256], sql[128];
    PGconn *admin;
    PGresult *res;
    int ok;

    snprintf(conninfo, sizeof(conninfo), "host=%s user=coexist dbname=postgres", cluster);
    admin = PQconnectdb(conninfo);
    snprintf(sql, sizeof(sql), "CREATE DATABASE r%d_%d", (int) getpid(), ++serial);
    res = PQexec(admin, sql);
    ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "new_database: %s", PQerrorMessage(admin));
    PQclear(res);
    PQfinish(admin);
    snprintf(out, 256, "host=%s user=coexist dbname=r%d_%d", cluster, (int) getpid(), serial);
    return ok ? 0 : -1;
}

/* setup - a database with our schema, a connection, an empty temp dir. */
static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    char err[PGSTORE_ERR_MAX];

    if (fx == NULL || new_database(fx->conninfo) < 0)
        return -1;
    if (pgstore_connect(fx->conninfo, &fx->db, err) != PGSTORE_OK
        || pgstore_init(fx->db, err) != PGSTORE_OK
        || pgstore_check_schema(fx->db, err) != PGSTORE_OK) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_replica_st.XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    snprintf(fx->path, sizeof(fx->path), "%s/state.tdb", fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    char cmd[128];

    pgstore_close(fx->db);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", fx->dir);
    if (system(cmd) != 0)
        return -1;
    free(fx);
    return 0;
}

/* user_value - the record text of user I in state MIGRATED. */
static void user_value(int i, int migrated, char *out, size_t len)
{
    snprintf(out, len, "v=1 state=%s mode=bcc alias=u%d@pop.example",
             migrated ? "migrated" : "unmigrated", i);
}

/* State of the test's model of the database: value of u<i>, "" absent. */
struct model {
    char value[NKEYS][128];
};

/* change_one - put (VALUE) or delete (NULL) u<I>@corp.example, CAS on M. */
static long long change_one(struct fixture *fx, struct model *m, int i, const char *value)
{
    char key[64], cerr[CHANGE_ERR_MAX], perr[PGSTORE_ERR_MAX];
    struct change ch;
    long long id = 0;

    snprintf(key, sizeof(key), "u%d@corp.example", i);
    if (change_init(&ch, "test/0", "mx1", cerr) < 0)
        fail_msg("change_init: %s", cerr);
    if ((value ? change_put(&ch, key, m->value[i][0] ? m->value[i] : NULL, value, cerr)
         : change_delete(&ch, key, m->value[i], cerr)) < 0)
        fail_msg("change %s: %s", key, cerr);
    if (pgstore_apply(fx->db, &ch, &id, perr) != PGSTORE_OK)
        fail_msg("pgstore_apply %s: %s", key, perr);
    change_free(&ch);
    snprintf(m->value[i], sizeof(m->value[i]), "%s", value ? value : "");
    return id;
}

/* churn - N changes of random kinds on M (creates, flips, deletes, a note). */
static long long churn(struct fixture *fx, struct model *m, int n, unsigned seed)
{
    char value[128], cerr[CHANGE_ERR_MAX], perr[PGSTORE_ERR_MAX];
    long long id = 0;

    srand(seed);
    for (int k = 0; k < n; k++) {
        int i = rand() % NKEYS;

        if (k % 97 == 0) {
            struct change ch;

            if (change_init(&ch, "test/0", "mx1", cerr) < 0
                || change_note(&ch, "!import", NULL, "a note", cerr) < 0)
                fail_msg("note: %s", cerr);
            if (pgstore_apply(fx->db, &ch, &id, perr) != PGSTORE_OK)
                fail_msg("note: %s", perr);
            change_free(&ch);
            continue;
        }
        if (m->value[i][0] && rand() % 4 == 0) {
            id = change_one(fx, m, i, NULL);
            continue;
        }
        user_value(i, m->value[i][0] && strstr(m->value[i], "=unmigrated") != NULL, value,
                   sizeof(value));
        id = change_one(fx, m, i, value);
    }
    return id;
}

/* Sorted "key value" lines, to compare a replica with the database. */
struct lines {
    char **line;
    size_t n, cap;
};

static void lines_add(struct lines *l, const char *key, const char *value)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->line = realloc(l->line, l->cap * sizeof(*l->line));
        assert_non_null(l->line);
    }
    l->line[l->n] = malloc(strlen(key) + strlen(value) + 2);
    assert_non_null(l->line[l->n]);
    sprintf(l->line[l->n++], "%s %s", key, value);
}

static int cmp_line(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static void lines_free(struct lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->line[i]);
    free(l->line);
}

static int db_line(const char *key, const char *value, void *ctx)
{
    lines_add(ctx, key, value);
    return 0;
}

static int tdb_line(const char *key, const struct record *rec, void *ctx)
{
    char text[RECORD_TEXT_MAX + 1];

    assert_true(record_encode(rec, text, sizeof(text)) > 0);
    lines_add(ctx, key, text);
    return 0;
}

/* check_lines - WANT and GOT hold the same lines (both get sorted). */
static void check_lines(struct lines *want, struct lines *got, const char *what)
{
    /* qsort() of a NULL array is undefined even for 0 elements (C11 7.22.5):
     * a follower killed before its first batch leaves an empty replica. */
    if (want->n > 0)
        qsort(want->line, want->n, sizeof(char *), cmp_line);
    if (got->n > 0)
        qsort(got->line, got->n, sizeof(char *), cmp_line);
    for (size_t i = 0; i < want->n && i < got->n; i++)
        if (strcmp(want->line[i], got->line[i]) != 0)
            fail_msg("%s: line %zu: got '%s', want '%s'", what, i, got->line[i],
                     want->line[i]);
    if (want->n != got->n)
        fail_msg("%s: got %zu records, want %zu", what, got->n, want->n);
}

/* check_equal - the replica at fx->path holds exactly the database's records. */
static void check_equal(struct fixture *fx)
{
    struct lines want = {0}, got = {0};
    char serr[STORE_ERR_MAX], perr[PGSTORE_ERR_MAX];
    struct store *st = store_open(fx->path, STORE_OPEN_EXISTING, 0, serr);
    long long pos;

    if (st == NULL)
        fail_msg("store_open: %s", serr);
    if (pgstore_snapshot(fx->db, db_line, &want, &pos, perr) != PGSTORE_OK)
        fail_msg("pgstore_snapshot: %s", perr);
    assert_int_equal(store_traverse(st, tdb_line, &got), 0);
    assert_int_equal(store_reverse_check(st, NULL, NULL), 0);
    store_close(st);
    check_lines(&want, &got, "replica vs database");
    lines_free(&want);
    lines_free(&got);
}

/* position_of - the replica's stored position (fails the test if none). */
static long long position_of(struct fixture *fx)
{
    struct replica_position pos;

    CHECK_RC(replica_status(fx->path, &pos, fx->err), 1);
    return pos.position;
}

static long long latest(struct fixture *fx)
{
    char perr[PGSTORE_ERR_MAX];
    long long id;

    if (pgstore_latest_id(fx->db, &id, perr) != PGSTORE_OK)
        fail_msg("latest: %s", perr);
    return id;
}

static ino_t inode_of(const char *path)
{
    struct stat sb;

    assert_int_equal(stat(path, &sb), 0);
    return sb.st_ino;
}

/* fresh_replica - a replica made by a snapshot of the database as it is now. */
static void fresh_replica(struct fixture *fx, struct replica *r)
{
    CHECK_RC(replica_open(r, fx->path, 1009, 1, fx->err), 0);
    CHECK_RC(replica_apply_since(r, fx->db, 0, 0, NULL, fx->err), REPLICA_NEEDS_SNAPSHOT);
    CHECK_RC(replica_snapshot(r, fx->db, NULL, fx->err), REPLICA_OK);
    assert_string_equal(r->damaged, "");
}

static void test_apply_since(void **state)
{
    struct fixture *fx = *state;
    struct model m = {0};
    struct replica r;
    long long n = -1, last;
    int seq;

    fresh_replica(fx, &r);
    assert_int_equal(r.pos.position, 0);
    assert_string_equal(r.pos.database_id, pgstore_database_id(fx->db));
    last = churn(fx, &m, 300, 1);
    CHECK_RC(replica_apply_since(&r, fx->db, 50, 0, &n, fx->err), REPLICA_OK);
    assert_true(n >= 299);
    assert_int_equal(r.pos.position, last);
    seq = store_seqnum(r.st);
    /* again: nothing to do, nothing written */
    CHECK_RC(replica_apply_since(&r, fx->db, 50, 0, &n, fx->err), REPLICA_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_seqnum(r.st), seq);
    replica_close(&r);
    assert_int_equal(position_of(fx), last);
    check_equal(fx);
}

/* replay - the model of the database after the journal rows up to POS. */
struct replay_ctx {
    long long upto;                     /* ids are not dense: stop past it */
    struct model m;
};

static int replay_row(const struct pgstore_row *row, void *arg)
{
    struct replay_ctx *rc = arg;
    int i;

    if (row->id > rc->upto)
        return 1;
    if (row->key[0] == '!')
        return 0;
    assert_int_equal(sscanf(row->key, "u%d@", &i), 1);
    snprintf(rc->m.value[i], sizeof(rc->m.value[i]), "%s", row->new_value ? row->new_value
             : "");
    return 0;
}

/* check_consistent - the replica's records are the journal replayed to its position. */
static void check_consistent(struct fixture *fx, long long *pos_out)
{
    struct replay_ctx rc = {0};
    struct lines want = {0}, got = {0};
    char serr[STORE_ERR_MAX], perr[PGSTORE_ERR_MAX], key[64];
    struct store *st = store_open(fx->path, STORE_OPEN_EXISTING, 0, serr);
    struct replica_position pos;

    if (st == NULL)
        fail_msg("store_open after a kill: %s", serr);
    assert_int_equal(replica_position_read(st, &pos, fx->err), 1);
    rc.upto = pos.position;
    if (pos.position > 0
        && pgstore_journal_since(fx->db, 0, (long) pos.position, replay_row, &rc, perr) < 0)
        fail_msg("journal: %s", perr);
    for (int i = 0; i < NKEYS; i++)
        if (rc.m.value[i][0]) {
            snprintf(key, sizeof(key), "u%d@corp.example", i);
            lines_add(&want, key, rc.m.value[i]);
        }
    assert_int_equal(store_traverse(st, tdb_line, &got), 0);
    store_close(st);
    check_lines(&want, &got, "replica vs the journal up to its position");
    lines_free(&want);
    lines_free(&got);
    *pos_out = pos.position;
}

/* follower_child - apply everything, slowly (small batches), then exit. */
static void follower_child(struct fixture *fx)
{
    struct pgstore *db;
    struct replica r;
    char err[REPLICA_ERR_MAX], perr[PGSTORE_ERR_MAX];

    if (pgstore_connect(fx->conninfo, &db, perr) != PGSTORE_OK
        || pgstore_check_schema(db, perr) != PGSTORE_OK)
        _exit(2);
    if (replica_open(&r, fx->path, 1009, 0, err) < 0)
        _exit(3);
    _exit(replica_apply_since(&r, db, 7, 0, NULL, err) == REPLICA_OK ? 0 : 4);
}

static void test_kill_safety(void **state)
{
    struct fixture *fx = *state;
    struct model m = {0};
    struct replica r;
    long long last, pos = 0, prev = 0;
    ino_t ino;
    int kills = 0;

    fresh_replica(fx, &r);
    replica_close(&r);          /* a process opens a tdb once: the children do */
    ino = inode_of(fx->path);
    last = churn(fx, &m, 1500, 2);
    srand((unsigned) time(NULL));
    for (int round = 0; round < 12 && pos < last; round++) {
        pid_t pid = fork();
        /* round 0 kills at once: a replica that applied nothing yet is
         * consistent too (and an empty one, which CI once met by chance) */
        struct timespec ts = {0, round == 0 ? 0 : (long) (rand() % 80 + 1) * 1000 * 1000};
        int status;

        assert_true(pid >= 0);
        if (pid == 0)
            follower_child(fx);
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (WIFSIGNALED(status))
            kills++;
        else
            assert_int_equal(WEXITSTATUS(status), 0);
        check_consistent(fx, &pos);
        assert_true(pos >= prev);
        prev = pos;
    }
    printf("test_kill_safety: %d kills, reached position %lld of %lld before the last run\n",
           kills, pos, last);
    assert_true(kills >= 3);
    CHECK_RC(replica_open(&r, fx->path, 1009, 1, fx->err), 0);
    if (r.damaged[0] != '\0') {
        /* A kill met tdb between growing the file and arming its recovery
         * area (tdb_check fails, the records above were consistent): the
         * follower's way out is a snapshot (test_grown_replica_snapshot). */
        printf("test_kill_safety: the replica needs a snapshot: %s\n", r.damaged);
        CHECK_CONTAINS(r.damaged, "tdb_check");
        CHECK_RC(replica_apply_since(&r, fx->db, 0, 0, NULL, fx->err), REPLICA_NEEDS_SNAPSHOT);
        CHECK_RC(replica_snapshot(&r, fx->db, NULL, fx->err), REPLICA_OK);
        ino = inode_of(fx->path);
    }
    CHECK_RC(replica_apply_since(&r, fx->db, 0, 0, NULL, fx->err), REPLICA_OK);
    assert_int_equal(r.pos.position, last);
    replica_close(&r);
    /* every row applied exactly once, on one file (or on the snapshot's) */
    assert_int_equal(inode_of(fx->path), ino);
    check_equal(fx);
}

/* overwrite_in_place - random bytes over the whole of PATH, same inode and size. */
static void overwrite_in_place(const char *path)
{
    struct stat sb;
    int fd = open(path, O_WRONLY);
    char junk[4096];

    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &sb), 0);
    for (off_t at = 0; at < sb.st_size; at += (off_t) sizeof(junk)) {
        for (size_t i = 0; i < sizeof(junk); i++)
            junk[i] = (char) rand();
        size_t n = sb.st_size - at < (off_t) sizeof(junk) ? (size_t) (sb.st_size - at)
                   : sizeof(junk);
        assert_int_equal(pwrite(fd, junk, n, at), (ssize_t) n);
    }
    close(fd);
}

/* The follower's one-second look at its file: removed, overwritten, or fine. */
static void test_watch(void **state)
{
    struct fixture *fx = *state;
    struct model m = {0};
    struct replica r;

    churn(fx, &m, 30, 7);
    fresh_replica(fx, &r);
    assert_int_equal(replica_watch(&r), 0);
    /* removed: damaged, and the next apply asks for a snapshot */
    assert_int_equal(unlink(fx->path), 0);
    assert_int_equal(replica_watch(&r), 1);
    CHECK_RC(replica_apply_since(&r, fx->db, 0, 0, NULL, fx->err), REPLICA_NEEDS_SNAPSHOT);
    CHECK_RC(replica_snapshot(&r, fx->db, NULL, fx->err), REPLICA_OK);
    assert_int_equal(replica_watch(&r), 0);
    /* overwritten in place: same inode, so only reading it back can tell */
    ino_t ino = inode_of(fx->path);
    overwrite_in_place(fx->path);
    assert_int_equal(inode_of(fx->path), ino);
    assert_int_equal(replica_watch(&r), 1);
    assert_true(r.damaged[0] != '\0');
    CHECK_RC(replica_apply_since(&r, fx->db, 0, 0, NULL, fx->err), REPLICA_NEEDS_SNAPSHOT);
    CHECK_RC(replica_snapshot(&r, fx->db, NULL, fx->err), REPLICA_OK);
    assert_int_equal(replica_watch(&r), 0);
    /* a write that fails on a sound replica, checked again: still sound */
    assert_int_equal(replica_recheck(&r), 0);
    assert_int_equal(r.pos.position, latest(fx));
    replica_close(&r);
    check_equal(fx);
}

static void test_pruned_journal_snapshot(void **state)
{
    struct fixture *fx = *state;
    char perr[PGSTORE_ERR_MAX];
    struct model m = {0};
    struct replica r;
    long long last;
    ino_t ino;

    fresh_replica(fx, &r);
    ino = inode_of(fx->path);
    last = churn(fx, &m, 40, 3);
    if (pgstore_prune(fx->db, last, perr) != PGSTORE_OK)
        fail_msg("prune: %s", perr);
    CHECK_RC(replica_apply_since(&r, fx->db, 0, 0, NULL, fx->err), REPLICA_NEEDS_SNAPSHOT);
    CHECK_CONTAINS(fx->err, "pruned past the replica's position 0");
    CHECK_RC(replica_snapshot(&r, fx->db, NULL, fx->err), REPLICA_OK);
    assert_int_equal(r.pos.position, last);
    assert_true(inode_of(fx->path) != ino);
    /* the new file is a replica like any other: rows apply to it */
    last = churn(fx, &m, 5, 4);
    CHECK_RC(replica_apply_since(&r, fx->db, 0, 0, NULL, fx->err), REPLICA_OK);
    assert_int_equal(r.pos.position, last);
    replica_close(&r);
    check_equal(fx);
}

static void test_other_database_snapshot(void **state)
{
    struct fixture *fx = *state;
    char other[256], perr[PGSTORE_ERR_MAX], id1[REPLICA_ID_MAX];
    struct model m = {0};
    struct pgstore *db2;
    struct replica r;
    ino_t ino;

    churn(fx, &m, 10, 5);
    fresh_replica(fx, &r);
    snprintf(id1, sizeof(id1), "%s", r.pos.database_id);
    ino = inode_of(fx->path);
    /* the same config pointed at another of our databases */
    assert_int_equal(new_database(other), 0);
    if (pgstore_connect(other, &db2, perr) != PGSTORE_OK || pgstore_init(db2, perr) != 0
        || pgstore_check_schema(db2, perr) != PGSTORE_OK)
        fail_msg("other database: %s", perr);
    pgstore_close(fx->db);
    fx->db = db2;
    CHECK_RC(replica_apply_since(&r, fx->db, 0, 0, NULL, fx->err), REPLICA_NEEDS_SNAPSHOT);
    CHECK_CONTAINS(fx->err, id1);
    CHECK_CONTAINS(fx->err, "is a replica of database");
    memset(&m, 0, sizeof(m));
    churn(fx, &m, 3, 6);
    CHECK_RC(replica_snapshot(&r, fx->db, NULL, fx->err), REPLICA_OK);
    assert_string_equal(r.pos.database_id, pgstore_database_id(db2));
    assert_int_equal(r.pos.position, latest(fx));
    assert_true(inode_of(fx->path) != ino);
    replica_close(&r);
    check_equal(fx);
}

static void test_damaged_replica_snapshot(void **state)
{
    struct fixture *fx = *state;
    char serr[STORE_ERR_MAX];
    struct model m = {0};
    struct replica r;
    struct store *st;
    int fd;

    churn(fx, &m, 20, 7);
    /* a store of its own (no position): not a replica yet */
    st = store_open(fx->path, STORE_CREATE, 1009, serr);
    assert_non_null(st);
    store_close(st);
    CHECK_RC(replica_open(&r, fx->path, 1009, 1, fx->err), 0);
    CHECK_CONTAINS(r.damaged, "holds no replica position");
    replica_close(&r);
    /* garbage in the file */
    fd = open(fx->path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not a tdb file at all, sorry\n", 29), 29);
    close(fd);
    CHECK_RC(replica_open(&r, fx->path, 1009, 1, fx->err), 0);
    assert_true(r.damaged[0] != '\0');
    CHECK_RC(replica_apply_since(&r, fx->db, 0, 0, NULL, fx->err), REPLICA_NEEDS_SNAPSHOT);
    CHECK_RC(replica_snapshot(&r, fx->db, NULL, fx->err), REPLICA_OK);
    assert_int_equal(r.pos.position, latest(fx));
    replica_close(&r);
    check_equal(fx);
}

/*
 * grow_unformatted - what a kill between tdb growing the file and arming
 * its recovery area leaves (see tests/faults/check-rebuild.sh): 64 KiB
 * nobody formatted past the end, and the header's recovery pointer beyond
 * it. tdb_check fails; every record is intact.
 */
static void grow_unformatted(const char *path)
{
    static char fill[131072];
    uint32_t recovery;
    off_t size;
    int fd = open(path, O_RDWR);

    assert_true(fd >= 0);
    size = lseek(fd, 0, SEEK_END);
    memset(fill, 'B', sizeof(fill));
    assert_int_equal(write(fd, fill, sizeof(fill)), (ssize_t) sizeof(fill));
    recovery = (uint32_t) size + 65536;
    assert_int_equal(pwrite(fd, &recovery, sizeof(recovery), 44), (ssize_t) sizeof(recovery));
    close(fd);
}

/*
 * test_grown_replica_snapshot - such a replica (a kill met that window:
 * the ASan build of test_kill_safety did once) is damage: the follower
 * replaces it by a snapshot, with every row and the latest position.
 */
static void test_grown_replica_snapshot(void **state)
{
    struct fixture *fx = *state;
    struct model m = {0};
    struct replica r;
    ino_t ino;

    fresh_replica(fx, &r);
    churn(fx, &m, 100, 3);
    CHECK_RC(replica_apply_since(&r, fx->db, 0, 0, NULL, fx->err), REPLICA_OK);
    replica_close(&r);
    ino = inode_of(fx->path);
    grow_unformatted(fx->path);
    CHECK_RC(replica_open(&r, fx->path, 1009, 1, fx->err), 0);
    CHECK_CONTAINS(r.damaged, "tdb_check");
    CHECK_RC(replica_apply_since(&r, fx->db, 0, 0, NULL, fx->err), REPLICA_NEEDS_SNAPSHOT);
    CHECK_RC(replica_snapshot(&r, fx->db, NULL, fx->err), REPLICA_OK);
    assert_int_equal(r.pos.position, latest(fx));
    replica_close(&r);
    assert_true(inode_of(fx->path) != ino);
    check_equal(fx);
}

static void test_wait_for(void **state)
{
    struct fixture *fx = *state;
    struct model m = {0};
    struct timespec t0, t1;
    struct replica r;
    long long seen, last;
    pid_t pid;
    int status;

    /* no replica yet: times out, nothing seen */
    CHECK_RC(replica_wait_for(fx->path, 1, 0, &seen, fx->err), 0);
    assert_int_equal(seen, -1);
    churn(fx, &m, 5, 8);
    fresh_replica(fx, &r);
    last = r.pos.position;
    replica_close(&r);
    CHECK_RC(replica_wait_for(fx->path, last, 5, &seen, fx->err), 1);
    assert_int_equal(seen, last);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_RC(replica_wait_for(fx->path, last + 1, 1, &seen, fx->err), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(seen, last);
    assert_true(t1.tv_sec - t0.tv_sec >= 1 && t1.tv_sec - t0.tv_sec <= 3);
    CHECK_CONTAINS(fx->err, "has not applied journal id");
    /* another process holds the store open and applies later */
    last = churn(fx, &m, 3, 9);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct pgstore *db;
        char err[REPLICA_ERR_MAX], perr[PGSTORE_ERR_MAX];
        struct timespec ts = {0, 300 * 1000 * 1000};

        if (pgstore_connect(fx->conninfo, &db, perr) != PGSTORE_OK
            || pgstore_check_schema(db, perr) != PGSTORE_OK
            || replica_open(&r, fx->path, 1009, 0, err) < 0)
            _exit(2);
        nanosleep(&ts, NULL);
        if (replica_apply_since(&r, db, 0, 0, NULL, err) != REPLICA_OK)
            _exit(3);
        nanosleep(&ts, NULL);
        nanosleep(&ts, NULL);
        _exit(0);
    }
    CHECK_RC(replica_wait_for(fx->path, last, 10, &seen, fx->err), 1);
    assert_int_equal(seen, last);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* start_follow - coexistctl follow on CONFIG in a child; its pid. */
static pid_t start_follow(const char *config)
{
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);

        dup2(null, 1);
        execl(COEXISTCTL_BIN, "coexistctl", "-c", config, "follow", (char *) NULL);
        _exit(127);
    }
    return pid;
}

/* ms_since - milliseconds since T0. */
static long ms_since(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

static void test_follow_end_to_end(void **state)
{
    struct fixture *fx = *state;
    char config[128], value[128];
    struct model m = {0};
    struct timespec t0;
    long long id, seen;
    long worst = 0, ms;
    pid_t pid;
    FILE *fp;
    int status;

    snprintf(config, sizeof(config), "%s/coexist-milter.conf", fx->dir);
    fp = fopen(config, "w");
    assert_non_null(fp);
    fprintf(fp, "state_db = %s\nshared_store = %s\nnode_name = mx-test\nhash_size = 1009\n",
            fx->path, fx->conninfo);
    fclose(fp);
    churn(fx, &m, 20, 10);
    pid = start_follow(config);
    /* the first start takes a snapshot */
    CHECK_RC(replica_wait_for(fx->path, latest(fx), 10, &seen, fx->err), 1);
    for (int k = 0; k < 20; k++) {
        user_value(k, k % 2, value, sizeof(value));
        clock_gettime(CLOCK_MONOTONIC, &t0);
        id = change_one(fx, &m, k, value);
        CHECK_RC(replica_wait_for(fx->path, id, 5, &seen, fx->err), 1);
        ms = ms_since(&t0);
        worst = ms > worst ? ms : worst;
    }
    printf("test_follow_end_to_end: 20 changes, slowest reached the replica in %ld ms\n",
           worst);
    assert_true(worst < 1000);
    /* the database stopped and started: the same follower catches up */
    assert_int_equal(pglib("pg_stop fast"), 0);
    sleep(2);
    assert_int_equal(pglib("pg_restart"), 0);
    {
        char err[PGSTORE_ERR_MAX];

        assert_int_equal(pgstore_reset(fx->db, err), PGSTORE_OK);
    }
    id = change_one(fx, &m, 0, "v=1 state=migrated mode=rewrite alias=u0@pop.example");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_RC(replica_wait_for(fx->path, id, 40, &seen, fx->err), 1);
    printf("test_follow_end_to_end: caught up %ld ms after the restart's first change\n",
           ms_since(&t0));
    assert_int_equal(waitpid(pid, &status, WNOHANG), 0);       /* never restarted */
    kill(pid, SIGTERM);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    check_equal(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_apply_since, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_safety, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pruned_journal_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_database_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_replica_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grown_replica_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_for, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow_end_to_end, setup, teardown),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
