/*
 * test_counters.c - policy/counters.c: the counters_db value codec (round
 * trips, strict refusals), counters_add (sums, times, day buckets kept and
 * dropped, the node of a sum of hosts), counters_window ("the last N
 * days"), and the file: merge in one transaction, a repeated key, the
 * start and flush times, a bad value refusing the whole merge.
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
#include "counters.h"
#include "timefmt.h"

/* T - an ISO time as time_t (the tests' clock). */
static time_t T(const char *iso)
{
    const char *why;
    time_t t;

    assert_int_equal(timefmt_parse(iso, &t, &why), 0);
    return t;
}

static void test_codec_round_trip(void **state)
{
    struct counters_rec rec = {.copies = 3, .rewrites = 1, .reverse = 2}, back;
    char text[COUNTERS_TEXT_MAX], err[COUNTERS_ERR_MAX];

    (void) state;
    strcpy(rec.node, "mx1");
    rec.first = T("2026-11-30T10:00:00Z");
    rec.last = T("2026-12-01T11:00:00Z");
    rec.rlast = T("2026-12-01T09:00:00Z");
    rec.days[0] = (struct counters_day) {counters_day_of(rec.last), 2, 1};
    rec.days[1] = (struct counters_day) {counters_day_of(rec.first), 2, 1};
    rec.ndays = 2;
    assert_true(counters_encode(&rec, text, sizeof(text)) > 0);
    CHECK_STR(text, "v=1 node=mx1 copies=3 rewrites=1 reverse=2 first=2026-11-30T10:00:00Z "
              "last=2026-12-01T11:00:00Z rlast=2026-12-01T09:00:00Z "
              "days=2026-12-01:2:1,2026-11-30:2:1");
    if (counters_decode(text, strlen(text), &back, err) < 0)
        fail_msg("decode: %s", err);
    assert_memory_equal(&rec, &back, sizeof(rec));

    memset(&rec, 0, sizeof(rec));
    assert_true(counters_encode(&rec, text, sizeof(text)) > 0);
    CHECK_STR(text, "v=1 node=- copies=0 rewrites=0 reverse=0 first=- last=- rlast=- days=-");
    assert_int_equal(counters_decode(text, strlen(text), &back, err), 0);
    assert_memory_equal(&rec, &back, sizeof(rec));
}

static void test_codec_refuses(void **state)
{
    static const char *const bad[] = {
        "",
        "v=2 node=- copies=0 rewrites=0 reverse=0 first=- last=- rlast=- days=-",
        "v=1 node=- copies=0 rewrites=0 reverse=0 first=- last=- rlast=-",
        "v=1 node=- copies=0 rewrites=0 reverse=0 first=- last=- rlast=- days=- x=1",
        "v=1 node=- copies=0 copies=0 rewrites=0 reverse=0 first=- last=- rlast=- days=-",
        "v=1 node=- copies=-1 rewrites=0 reverse=0 first=- last=- rlast=- days=-",
        "v=1 node=- copies=1x rewrites=0 reverse=0 first=- last=- rlast=- days=-",
        "v=1 node=- copies=0 rewrites=0 reverse=0 first=yesterday last=- rlast=- days=-",
        "v=1 node=- copies=0 rewrites=0 reverse=0 first=- last=- rlast=- days=2026-13-01:1:0",
        "v=1 node=- copies=0 rewrites=0 reverse=0 first=- last=- rlast=- days=2026-12-01:1",
        /* not newest first, or a day twice */
        "v=1 node=- copies=0 rewrites=0 reverse=0 first=- last=- rlast=- "
        "days=2026-11-30:1:0,2026-12-01:1:0",
        "v=1 node=- copies=0 rewrites=0 reverse=0 first=- last=- rlast=- "
        "days=2026-12-01:1:0,2026-12-01:1:0",
    };
    struct counters_rec rec;
    char err[COUNTERS_ERR_MAX];

    (void) state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (counters_decode(bad[i], strlen(bad[i]), &rec, err) == 0)
            fail_msg("decoded '%s', want a refusal", bad[i]);
}

/* delta - one day's counts at T. */
static struct counters_rec delta(const char *node, unsigned long copies,
                                 unsigned long rewrites, unsigned long reverse, time_t t)
{
    struct counters_rec d = {.copies = copies, .rewrites = rewrites, .reverse = reverse};

    snprintf(d.node, sizeof(d.node), "%s", node);
    d.first = d.last = t;
    d.rlast = reverse ? t : 0;
    d.days[0] = (struct counters_day) {counters_day_of(t), copies + rewrites, reverse};
    d.ndays = 1;
    return d;
}

static void test_add_and_window(void **state)
{
    time_t now = T("2026-12-10T12:00:00Z");
    long today = counters_day_of(now);
    struct counters_rec sum = {0}, d;
    unsigned long legacy, reverse;

    (void) state;
    /* 20 days of mail, 1 copy a day, 1 reverse every other day, oldest first. */
    for (int ago = 19; ago >= 0; ago--) {
        d = delta("mx1", 1, 0, ago % 2 == 0, now - (time_t) ago * 86400);
        counters_add(&sum, &d, counters_day_of(now - (time_t) ago * 86400));
    }
    assert_int_equal(sum.copies, 20);
    assert_int_equal(sum.reverse, 10);
    assert_int_equal(sum.first, now - 19 * 86400);
    assert_int_equal(sum.last, now);
    assert_int_equal(sum.rlast, now);
    CHECK_STR(sum.node, "mx1");
    assert_int_equal(sum.ndays, COUNTERS_DAYS);
    assert_int_equal(sum.days[0].day, today);
    assert_int_equal(sum.days[COUNTERS_DAYS - 1].day, today - (COUNTERS_DAYS - 1));
    /* today and the day before; today and the 7 before */
    counters_window(&sum, today, 1, &legacy, &reverse);
    assert_int_equal(legacy, 2);
    assert_int_equal(reverse, 1);
    counters_window(&sum, today, 7, &legacy, &reverse);
    assert_int_equal(legacy, 8);
    assert_int_equal(reverse, 4);
    /* Ten days later nothing is within 7 days, and the old buckets go. */
    counters_window(&sum, today + 10, 7, &legacy, &reverse);
    assert_int_equal(legacy, 0);
    memset(&d, 0, sizeof(d));
    strcpy(d.node, "mx1");
    counters_add(&sum, &d, today + 10);
    assert_int_equal(sum.ndays, 0);
    assert_int_equal(sum.copies, 20);

    /* A delta of a day older than the kept window counts in the totals only. */
    d = delta("mx1", 5, 0, 0, now - 30 * 86400);
    counters_add(&sum, &d, today);
    assert_int_equal(sum.copies, 25);
    assert_int_equal(sum.ndays, 0);
    assert_int_equal(sum.first, now - 30 * 86400);

    /* The sum of two hosts names no single node. */
    d = delta("mx2", 1, 0, 0, now);
    counters_add(&sum, &d, today);
    CHECK_STR(sum.node, "");
}

struct fx {
    char dir[64], path[128];
    struct counters_db *db;
    char err[COUNTERS_ERR_MAX];
};

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));

    strcpy(fx->dir, "/tmp/test_counters.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/counters.tdb", fx->dir);
    fx->db = counters_open(fx->path, 1, fx->err);
    assert_non_null(fx->db);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;

    counters_close(fx->db);
    unlink(fx->path);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static void test_merge(void **state)
{
    struct fx *fx = *state;
    time_t now = T("2026-12-01T12:00:00Z"), since, flushed;
    const char *keys[] = {"adam.barr@corp.example", "rita@corp.example",
                          "adam.barr@corp.example"};
    struct counters_rec d[3], got;

    d[0] = delta("", 2, 0, 0, now - 60);
    d[1] = delta("", 0, 3, 0, now - 30);
    d[2] = delta("", 1, 0, 0, now - 86400);     /* yesterday's, flushed late */
    CHECK_RC(counters_merge(fx->db, keys, d, 3, "mx1", now, fx->err), 0);
    CHECK_RC(counters_get(fx->db, "adam.barr@corp.example", &got, fx->err), 1);
    assert_int_equal(got.copies, 3);
    assert_int_equal(got.first, now - 86400);
    assert_int_equal(got.last, now - 60);
    assert_int_equal(got.ndays, 2);
    CHECK_STR(got.node, "mx1");
    CHECK_RC(counters_get(fx->db, "rita@corp.example", &got, fx->err), 1);
    assert_int_equal(got.rewrites, 3);
    CHECK_RC(counters_get(fx->db, "nobody@corp.example", &got, fx->err), 0);
    CHECK_RC(counters_times(fx->db, &since, &flushed, fx->err), 0);
    assert_int_equal(since, now);
    assert_int_equal(flushed, now);

    /* A second flush adds; counting started at the first. */
    CHECK_RC(counters_merge(fx->db, keys, d, 1, "mx1", now + 60, fx->err), 0);
    CHECK_RC(counters_get(fx->db, "adam.barr@corp.example", &got, fx->err), 1);
    assert_int_equal(got.copies, 5);
    CHECK_RC(counters_times(fx->db, &since, &flushed, fx->err), 0);
    assert_int_equal(since, now);
    assert_int_equal(flushed, now + 60);
}

static void test_merge_all_or_nothing(void **state)
{
    struct fx *fx = *state;
    time_t now = T("2026-12-01T12:00:00Z");
    const char *keys[] = {"adam.barr@corp.example", "bad@corp.example"};
    struct counters_rec d[2], got;
    struct tdb_context *tdb;
    TDB_DATA k = {(unsigned char *) "bad@corp.example", 16};
    TDB_DATA v = {(unsigned char *) "v=1 garbage", 11};

    d[0] = delta("", 2, 0, 0, now);
    d[1] = delta("", 1, 0, 0, now);
    /* A value that does not parse, put there behind the library's back. */
    counters_close(fx->db);
    tdb = tdb_open(fx->path, 0, 0, O_RDWR, 0);
    assert_non_null(tdb);
    assert_int_equal(tdb_store(tdb, k, v, TDB_REPLACE), 0);
    tdb_close(tdb);
    fx->db = counters_open(fx->path, 0, fx->err);
    assert_non_null(fx->db);
    CHECK_RC(counters_merge(fx->db, keys, d, 2, "mx1", now, fx->err), -1);
    CHECK_CONTAINS(fx->err, "bad@corp.example");
    /* adam's part of the transaction was rolled back with it. */
    CHECK_RC(counters_get(fx->db, "adam.barr@corp.example", &got, fx->err), 0);
    /* A reserved key is never counted into. */
    keys[0] = "!counters-since";
    CHECK_RC(counters_merge(fx->db, keys, d, 1, "mx1", now, fx->err), -1);
}

static int count_visit(const char *key, const struct counters_rec *rec, void *ctx)
{
    (void) key;
    *(unsigned long *) ctx += rec->copies;
    return 0;
}

static void test_traverse_skips_own_keys(void **state)
{
    struct fx *fx = *state;
    time_t now = T("2026-12-01T12:00:00Z");
    const char *keys[] = {"a@corp.example", "b@corp.example"};
    struct counters_rec d[2];
    unsigned long copies = 0;

    d[0] = delta("", 2, 0, 0, now);
    d[1] = delta("", 5, 0, 0, now);
    CHECK_RC(counters_merge(fx->db, keys, d, 2, "mx1", now, fx->err), 0);
    CHECK_RC(counters_traverse(fx->db, count_visit, &copies, fx->err), 0);
    assert_int_equal(copies, 7);
}

static void test_open_missing(void **state)
{
    char err[COUNTERS_ERR_MAX];

    (void) state;
    assert_null(counters_open("/nonexistent/dir/counters.tdb", 0, err));
    CHECK_CONTAINS(err, "No such file");
    assert_null(counters_open("/nonexistent/dir/counters.tdb", 1, err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_round_trip),
        cmocka_unit_test(test_codec_refuses),
        cmocka_unit_test(test_add_and_window),
        cmocka_unit_test_setup_teardown(test_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_all_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_traverse_skips_own_keys, setup, teardown),
        cmocka_unit_test(test_open_missing),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
