/*
 * test_walk.c - store_walk_step (policy/store_walk.c): a walk in steps of
 * every size visits every record once and nothing else (not the journal,
 * not the reverse index); a record deleted under the cursor between two
 * steps neither stops the walk silently nor repeats a record (tdb keeps
 * its place, or the step says the store changed); a bad record is an
 * error.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <fcntl.h>
#include <tdb.h>
#include <unistd.h>

#include "check.h"
#include "store.h"

#define NREC 250

struct fx {
    char dir[64], path[128], err[STORE_ERR_MAX];
    struct store *st;
};

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    struct record rec;
    char key[64];

    strcpy(fx->dir, "/tmp/test_walk.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/state.tdb", fx->dir);
    fx->st = store_open(fx->path, STORE_CREATE, 101, fx->err);
    assert_non_null(fx->st);
    for (int i = 0; i < NREC; i++) {
        memset(&rec, 0, sizeof(rec));
        rec.kind = RECORD_USER;
        snprintf(rec.alias, sizeof(rec.alias), "u%d@pop.example", i);
        snprintf(key, sizeof(key), "u%d@corp.example", i);
        assert_int_equal(store_put(fx->st, key, &rec, "test"), 0);   /* journaled */
    }
    memset(&rec, 0, sizeof(rec));
    rec.kind = RECORD_DOMAIN;
    strcpy(rec.alias, "pop2.example");
    assert_int_equal(store_put(fx->st, "@corp2.example", &rec, "test"), 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;

    store_close(fx->st);
    unlink(fx->path);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

struct seen {
    unsigned char user[NREC];
    int domains, others, total;
};

static int visit(const char *key, const struct record *rec, void *ctx)
{
    struct seen *s = ctx;
    int n;

    s->total++;
    if (rec->kind == RECORD_DOMAIN)
        s->domains++;
    else if (sscanf(key, "u%d@corp.example", &n) == 1 && n >= 0 && n < NREC)
        s->user[n]++;
    else
        s->others++;
    return 0;
}

static void test_every_step_size(void **state)
{
    struct fx *fx = *state;
    static const size_t steps[] = {1, 7, 100, 1000};

    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct store_cursor cur;
        struct seen s;
        int rc, calls = 0;

        memset(&cur, 0, sizeof(cur));
        memset(&s, 0, sizeof(s));
        assert_int_equal(store_read_lock(fx->st), 0);
        while ((rc = store_walk_step(fx->st, &cur, steps[i], visit, &s)) == 0) {
            /* the lock may be dropped between steps */
            store_read_unlock(fx->st);
            assert_int_equal(store_read_lock(fx->st), 0);
            calls++;
        }
        store_read_unlock(fx->st);
        assert_int_equal(rc, 1);
        assert_int_equal(s.total, NREC + 1);
        assert_int_equal(s.domains, 1);
        assert_int_equal(s.others, 0);
        for (int n = 0; n < NREC; n++)
            if (s.user[n] != 1)
                fail_msg("step %zu: u%d seen %d times", steps[i], n, s.user[n]);
        if (steps[i] == 1)
            assert_true(calls >= NREC);
    }
}

static void test_cursor_deleted(void **state)
{
    struct fx *fx = *state;
    struct store_cursor cur;
    struct seen s;
    char key[ADDR_BUFSIZE + 1];
    int rc;

    memset(&cur, 0, sizeof(cur));
    memset(&s, 0, sizeof(s));
    /* Step until the cursor stands on a record, then delete it. */
    do {
        assert_int_equal(store_walk_step(fx->st, &cur, 1, visit, &s), 0);
    } while (cur.sc_key[0] == '!' || cur.sc_key[0] == '=');
    snprintf(key, sizeof(key), "%.*s", (int) cur.sc_len, cur.sc_key);
    assert_int_equal(store_delete(fx->st, key, "test"), 0);
    rc = store_walk_step(fx->st, &cur, 1000, visit, &s);
    if (rc < 0) {
        CHECK_CONTAINS(store_error(fx->st), "changed during the walk");
        return;
    }
    /* tdb kept its place: the walk goes on, every other record once. */
    assert_int_equal(rc, 1);
    assert_int_equal(s.domains, 1);
    for (int n = 0; n < NREC; n++)
        if (s.user[n] != 1)     /* the deleted one was seen before it went */
            fail_msg("u%d seen %d times", n, s.user[n]);
}

static void test_bad_record(void **state)
{
    struct fx *fx = *state;
    struct store_cursor cur;
    struct seen s;
    int rc;

    store_close(fx->st);
    {
        struct tdb_context *tdb = tdb_open(fx->path, 0, 0, O_RDWR, 0);
        TDB_DATA k = {(unsigned char *) "u3@corp.example", 15};
        TDB_DATA v = {(unsigned char *) "v=1 state=banana", 16};

        assert_non_null(tdb);
        assert_int_equal(tdb_store(tdb, k, v, TDB_REPLACE), 0);
        tdb_close(tdb);
    }
    fx->st = store_open(fx->path, STORE_OPEN_EXISTING, 0, fx->err);
    assert_non_null(fx->st);
    memset(&cur, 0, sizeof(cur));
    memset(&s, 0, sizeof(s));
    while ((rc = store_walk_step(fx->st, &cur, 10, visit, &s)) == 0)
        ;
    assert_int_equal(rc, -1);
    CHECK_CONTAINS(store_error(fx->st), "u3@corp.example");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_step_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursor_deleted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_record, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
