/*
 * test_tally.c - milter/tally.c: counting per key in memory and flushing
 * into counters_db. Covers: the kinds counted from the routes end of
 * message has (by the state key that routed them, RULE_NONE skipped); a
 * flush writing exactly what was counted and leaving nothing pending; a
 * flush that fails (the file's directory missing) keeping every count,
 * also those added meanwhile, for the next flush, which writes them once;
 * counts across midnight in two day buckets; eight threads counting at
 * once losing nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "counters.h"
#include "tally.h"
#include "timefmt.h"

struct fx {
    char dir[64], sub[96], path[160];
    struct tally *t;
    char err[COUNTERS_ERR_MAX];
};

static time_t T(const char *iso)
{
    const char *why;
    time_t t;

    assert_int_equal(timefmt_parse(iso, &t, &why), 0);
    return t;
}

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));

    strcpy(fx->dir, "/tmp/test_tally.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->sub, sizeof(fx->sub), "%s/sub", fx->dir);
    snprintf(fx->path, sizeof(fx->path), "%s/counters.tdb", fx->sub);
    assert_int_equal(mkdir(fx->sub, 0700), 0);
    fx->t = tally_new();
    assert_non_null(fx->t);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;

    tally_free(fx->t);
    unlink(fx->path);
    rmdir(fx->sub);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* stored - KEY's value in the file (it must be there). */
static struct counters_rec stored(struct fx *fx, const char *key)
{
    struct counters_db *db = counters_open(fx->path, 0, fx->err);
    struct counters_rec rec;

    if (db == NULL)
        fail_msg("open: %s", fx->err);
    if (counters_get(db, key, &rec, fx->err) != 1)
        fail_msg("%s: not in the file (%s)", key, fx->err);
    counters_close(db);
    return rec;
}

/* route - a route as dbh_decide leaves it for end of message. */
static struct decide_route route(enum decide_rule rule, enum record_mode mode, int reverse,
                                 const char *match)
{
    struct decide_route r;

    memset(&r, 0, sizeof(r));
    r.rule = rule;
    r.routed = rule != RULE_NONE;
    r.mode = mode;
    r.reverse = reverse;
    snprintf(r.match, sizeof(r.match), "%s", match);
    snprintf(r.key, sizeof(r.key), "%s", match[0] == '@' ? "x@corp2.example" : match);
    return r;
}

static void test_routes_and_flush(void **state)
{
    struct fx *fx = *state;
    time_t now = T("2026-12-01T12:00:00Z");
    struct decide_route routes[] = {
        route(RULE_USER, MODE_BCC, 0, "adam.barr@corp.example"),
        route(RULE_USER, MODE_REWRITE, 0, "rita@corp.example"),
        route(RULE_DOMAIN, MODE_REWRITE, 0, "@corp2.example"),
        route(RULE_USER, MODE_REWRITE, 1, "mig@corp.example"),
        route(RULE_NONE, MODE_BCC, 0, ""),
    };
    struct counters_rec rec;

    for (int i = 0; i < 3; i++)
        tally_routes(fx->t, routes, 5, now + i);
    assert_int_equal(tally_pending(fx->t), 4);
    assert_int_equal(tally_flush(fx->t, fx->path, "mx1", now + 60, fx->err), 4);
    assert_int_equal(tally_pending(fx->t), 0);
    assert_int_equal(tally_last_flush(fx->t), now + 60);
    rec = stored(fx, "adam.barr@corp.example");
    assert_int_equal(rec.copies, 3);
    assert_int_equal(rec.rewrites, 0);
    assert_int_equal(rec.first, now);
    assert_int_equal(rec.last, now + 2);
    CHECK_STR(rec.node, "mx1");
    assert_int_equal(stored(fx, "rita@corp.example").rewrites, 3);
    assert_int_equal(stored(fx, "@corp2.example").rewrites, 3);
    rec = stored(fx, "mig@corp.example");
    assert_int_equal(rec.reverse, 3);
    assert_int_equal(rec.rlast, now + 2);
    assert_int_equal(rec.days[0].legacy, 0);
    assert_int_equal(rec.days[0].reverse, 3);

    /* Nothing counted: a flush writes nothing, and is up to date. */
    assert_int_equal(tally_flush(fx->t, fx->path, "mx1", now + 120, fx->err), 0);
    assert_int_equal(tally_last_flush(fx->t), now + 120);
    assert_int_equal(stored(fx, "adam.barr@corp.example").copies, 3);
}

static void test_failing_flush_keeps_counts(void **state)
{
    struct fx *fx = *state;
    time_t now = T("2026-12-01T12:00:00Z");

    for (int i = 0; i < 5; i++)
        assert_int_equal(tally_add(fx->t, "adam.barr@corp.example", TALLY_COPY, now), 0);
    assert_int_equal(tally_add(fx->t, "rita@corp.example", TALLY_REWRITE, now), 0);
    /* The directory goes away: the flush cannot create the file. */
    assert_int_equal(rmdir(fx->sub), 0);
    assert_int_equal(tally_flush(fx->t, fx->path, "mx1", now + 60, fx->err), -1);
    CHECK_CONTAINS(fx->err, "counters.tdb");
    assert_int_equal(tally_flush_failures(fx->t), 1);
    assert_int_equal(tally_last_flush(fx->t), 0);
    assert_int_equal(tally_pending(fx->t), 2);
    /* Counted while it failed: merged with what was put back. */
    assert_int_equal(tally_add(fx->t, "adam.barr@corp.example", TALLY_COPY, now + 61), 0);
    assert_int_equal(tally_pending(fx->t), 2);
    assert_int_equal(tally_flush(fx->t, fx->path, "mx1", now + 90, fx->err), -1);
    assert_int_equal(mkdir(fx->sub, 0700), 0);
    assert_int_equal(tally_flush(fx->t, fx->path, "mx1", now + 120, fx->err), 2);
    assert_int_equal(stored(fx, "adam.barr@corp.example").copies, 6);
    assert_int_equal(stored(fx, "adam.barr@corp.example").last, now + 61);
    assert_int_equal(stored(fx, "rita@corp.example").rewrites, 1);
    /* Written once: the next flush has nothing. */
    assert_int_equal(tally_flush(fx->t, fx->path, "mx1", now + 180, fx->err), 0);
    assert_int_equal(stored(fx, "adam.barr@corp.example").copies, 6);
}

static void test_midnight(void **state)
{
    struct fx *fx = *state;
    time_t before = T("2026-12-01T23:59:59Z"), after = T("2026-12-02T00:00:01Z");
    struct counters_rec rec;

    assert_int_equal(tally_add(fx->t, "adam.barr@corp.example", TALLY_COPY, before), 0);
    assert_int_equal(tally_add(fx->t, "adam.barr@corp.example", TALLY_COPY, after), 0);
    assert_int_equal(tally_add(fx->t, "adam.barr@corp.example", TALLY_COPY, after), 0);
    assert_int_equal(tally_flush(fx->t, fx->path, "mx1", after, fx->err), 2);
    rec = stored(fx, "adam.barr@corp.example");
    assert_int_equal(rec.copies, 3);
    assert_int_equal(rec.ndays, 2);
    assert_int_equal(rec.days[0].day, counters_day_of(after));
    assert_int_equal(rec.days[0].legacy, 2);
    assert_int_equal(rec.days[1].legacy, 1);
    assert_int_equal(rec.first, before);
    assert_int_equal(rec.last, after);
}

#define THREADS 8
#define PER_THREAD 20000
#define KEYS 500

struct worker {
    struct tally *t;
    time_t now;
};

static void *count_many(void *arg)
{
    struct worker *w = arg;
    char key[64];

    for (int i = 0; i < PER_THREAD; i++) {
        snprintf(key, sizeof(key), "user%d@corp.example", i % KEYS);
        if (tally_add(w->t, key, TALLY_COPY, w->now) < 0)
            return (void *) 1;
    }
    return NULL;
}

static int sum_visit(const char *key, const struct counters_rec *rec, void *ctx)
{
    (void) key;
    *(unsigned long *) ctx += rec->copies;
    return 0;
}

static void test_threads(void **state)
{
    struct fx *fx = *state;
    struct worker w = {fx->t, T("2026-12-01T12:00:00Z")};
    pthread_t th[THREADS];
    struct counters_db *db;
    unsigned long total = 0;
    int flushed;

    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, count_many, &w), 0);
    /* Flushes while they count: every count lands in exactly one. */
    for (int i = 0; i < 5; i++)
        assert_true(tally_flush(fx->t, fx->path, "mx1", w.now, fx->err) >= 0);
    for (int i = 0; i < THREADS; i++) {
        void *rc;

        assert_int_equal(pthread_join(th[i], &rc), 0);
        assert_null(rc);
    }
    flushed = tally_flush(fx->t, fx->path, "mx1", w.now, fx->err);
    assert_true(flushed >= 0);
    assert_int_equal(tally_pending(fx->t), 0);
    db = counters_open(fx->path, 0, fx->err);
    assert_non_null(db);
    assert_int_equal(counters_traverse(db, sum_visit, &total, fx->err), 0);
    counters_close(db);
    assert_int_equal(total, (unsigned long) THREADS * PER_THREAD);
    assert_int_equal(tally_lost(fx->t), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_routes_and_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_flush_keeps_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_midnight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
