/*
 * test_report.c - coexistctl report through ctl_main() over a state store
 * made with coexistctl and a counters_db made by hand (counters_put with
 * times relative to now), so every figure is known:
 *
 *   adam   w1  unmigrated bcc      3 copies today, 4 five days ago, 2 twenty days ago
 *   bea    w1  migrated   bcc      reverse on: 2 reverse two days ago
 *   carl   w1  scheduled  rewrite  1 rewrite 40 days ago (last), nothing since
 *   dora   w2  unmigrated bcc      never routed
 *   gone@  -   (removed)           5 copies today, no record any more
 *   @corp2.example domain rule     1 rewrite yesterday
 *
 * Covers: the per-user rows, the per-wave totals, the last line's 1 and 7
 * days, --wave, --since, --idle (idle, never routed only when counting ran
 * that long, a migrated user's alias still in use), csv and json, a
 * missing counters_db (EX_NOINPUT, never "0 in 7 days"), bad options, and
 * what status says of counters_db and metrics_file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "check.h"
#include "counters.h"
#include "ctl.h"

#define DAY 86400

struct fx {
    char dir[64], db[128], conf[128], counters[128];
    char *out, *err;
    size_t out_len, err_len;
    time_t now;
};

static void nolog(const char *message, void *ctx)
{
    (void) message;
    (void) ctx;
}

/* run - coexistctl -c CONF -d DB ARGS...; returns the exit code. */
static int run(struct fx *fx, const char *args)
{
    char *argv[32], *copy = strdup(args), *save = NULL;
    int argc = 0, rc;
    FILE *out, *err;

    argv[argc++] = "coexistctl";
    argv[argc++] = "-c";
    argv[argc++] = fx->conf;
    argv[argc++] = "-d";
    argv[argc++] = fx->db;
    for (char *w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save))
        argv[argc++] = w;
    argv[argc] = NULL;
    free(fx->out);
    free(fx->err);
    out = open_memstream(&fx->out, &fx->out_len);
    err = open_memstream(&fx->err, &fx->err_len);
    rc = ctl_main(argc, argv, out, err, nolog, NULL);
    fclose(out);
    fclose(err);
    free(copy);
    return rc;
}

#define RUN_OK(fx, args) do { \
        int rc_ = run((fx), (args)); \
        if (rc_ != EX_OK) \
            fail_msg("coexistctl %s: exit %d: %s", (args), rc_, (fx)->err); \
    } while (0)

/* put - KEY's counters: COPIES/REWRITES/REVERSE on the day AGO days back. */
static void put(struct counters_db *db, struct fx *fx, const char *key, int ago,
                unsigned long copies, unsigned long rewrites, unsigned long reverse)
{
    struct counters_rec rec, d;
    char err[COUNTERS_ERR_MAX];
    time_t t = fx->now - (time_t) ago * DAY;

    memset(&d, 0, sizeof(d));
    d.copies = copies;
    d.rewrites = rewrites;
    d.reverse = reverse;
    d.first = d.last = t;
    d.rlast = reverse ? t : 0;
    d.days[0] = (struct counters_day) {counters_day_of(t), copies + rewrites, reverse};
    d.ndays = 1;
    if (counters_get(db, key, &rec, err) != 1)
        memset(&rec, 0, sizeof(rec));
    counters_add(&rec, &d, counters_day_of(fx->now));
    strcpy(rec.node, "mx1");
    if (counters_put(db, key, &rec, err) < 0)
        fail_msg("counters_put: %s", err);
}

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    struct counters_db *db;
    char err[COUNTERS_ERR_MAX];
    FILE *fp;

    strcpy(fx->dir, "/tmp/test_report.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->db, sizeof(fx->db), "%s/state.tdb", fx->dir);
    snprintf(fx->conf, sizeof(fx->conf), "%s/test.conf", fx->dir);
    snprintf(fx->counters, sizeof(fx->counters), "%s/counters.tdb", fx->dir);
    fp = fopen(fx->conf, "w");
    assert_non_null(fp);
    fprintf(fp, "state_db = %s\ntrace_secret_file =\n", fx->db);
    fclose(fp);
    fx->now = time(NULL);
    *state = fx;
    RUN_OK(fx, "init");
    RUN_OK(fx, "add adam@corp.example adam@pop.example --wave w1");
    RUN_OK(fx, "add bea@corp.example bea@pop.example --wave w1 --reverse");
    RUN_OK(fx, "migrate bea@corp.example");
    RUN_OK(fx, "add carl@corp.example carl@pop.example --wave w1 --mode rewrite");
    RUN_OK(fx, "migrate carl@corp.example --at 2099-01-01T00:00:00Z");
    RUN_OK(fx, "add dora@corp.example dora@pop.example --wave w2");
    RUN_OK(fx, "add @corp2.example @pop2.example --mode rewrite");
    db = counters_open(fx->counters, 1, err);
    assert_non_null(db);
    put(db, fx, "adam@corp.example", 0, 3, 0, 0);
    put(db, fx, "adam@corp.example", 5, 4, 0, 0);
    put(db, fx, "adam@corp.example", 20, 2, 0, 0);
    put(db, fx, "bea@corp.example", 2, 0, 0, 2);
    put(db, fx, "carl@corp.example", 40, 0, 1, 0);
    put(db, fx, "gone@corp.example", 0, 5, 0, 0);
    put(db, fx, "@corp2.example", 1, 0, 1, 0);
    assert_int_equal(counters_set_times(db, fx->now - 60 * DAY, fx->now - 30, err), 0);
    counters_close(db);
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    char cmd[256];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx->out);
    free(fx->err);
    free(fx);
    return 0;
}

/* row - the text line of KEY in the output (must be there). */
static const char *row(struct fx *fx, const char *key, char line[512])
{
    const char *p = fx->out;
    size_t klen = strlen(key);

    while ((p = strstr(p, key)) != NULL) {
        if ((p == fx->out || p[-1] == '\n') && p[klen] == ' ') {
            size_t n = strcspn(p, "\n");

            snprintf(line, 512, "%.*s", (int) n, p);
            return line;
        }
        p += klen;
    }
    fail_msg("no row for %s in:\n%s", key, fx->out);
    return NULL;
}

/* words - LINE split on blanks; returns how many. */
static int words(const char *line, char w[16][64])
{
    int n = 0;

    while (*line && n < 16) {
        int len;

        while (*line == ' ')
            line++;
        if (*line == '\0')
            break;
        len = (int) strcspn(line, " ");
        snprintf(w[n++], 64, "%.*s", len, line);
        line += len;
    }
    return n;
}

static void test_text(void **state)
{
    struct fx *fx = *state;
    char line[512], w[16][64];

    RUN_OK(fx, "report");
    /* ADDRESS STATE MODE WAVE COPIES REWRITES REVERSE LAST-ROUTED LEGACY-7D */
    assert_int_equal(words(row(fx, "adam@corp.example", line), w), 9);
    CHECK_STR(w[1], "unmigrated");
    CHECK_STR(w[2], "bcc");
    CHECK_STR(w[3], "w1");
    CHECK_STR(w[4], "9");
    CHECK_STR(w[8], "7");
    words(row(fx, "bea@corp.example", line), w);
    CHECK_STR(w[1], "migrated");
    CHECK_STR(w[6], "2");
    CHECK_STR(w[8], "0");
    words(row(fx, "carl@corp.example", line), w);
    CHECK_STR(w[1], "scheduled");
    CHECK_STR(w[5], "1");
    words(row(fx, "dora@corp.example", line), w);
    CHECK_STR(w[1], "unmigrated");
    CHECK_STR(w[4], "0");
    CHECK_STR(w[7], "-");
    words(row(fx, "gone@corp.example", line), w);
    CHECK_STR(w[1], "removed");
    CHECK_STR(w[2], "-");
    CHECK_STR(w[4], "5");
    words(row(fx, "@corp2.example", line), w);
    CHECK_STR(w[5], "1");
    /* WAVE UNMIGRATED SCHEDULED MIGRATED REMOVED DONE LEGACY-1D LEGACY-7D */
    assert_int_equal(words(row(fx, "w1", line), w), 8);
    CHECK_STR(w[1], "1");
    CHECK_STR(w[2], "1");
    CHECK_STR(w[3], "1");
    CHECK_STR(w[5], "33%");
    CHECK_STR(w[6], "3");
    CHECK_STR(w[7], "7");
    words(row(fx, "w2", line), w);
    CHECK_STR(w[1], "1");
    CHECK_STR(w[7], "0");
    words(row(fx, "(removed)", line), w);
    CHECK_STR(w[4], "1");
    CHECK_STR(w[7], "5");
    /* today: adam 3 + gone 5; yesterday: the domain rule's 1. 7 days: + adam's 4. */
    CHECK_CONTAINS(fx->out, "\nlegacy traffic: 9 in the last 1 day, 13 in the last 7 days; "
                   "reverse: 0 in the last 1 day, 2 in the last 7 days\n");
    {
        const char *last = strstr(fx->out, "\nlegacy traffic:");

        assert_non_null(last);
        assert_ptr_equal(strchr(last + 1, '\n') + 1, fx->out + fx->out_len);
    }
}

static void test_wave_and_since(void **state)
{
    struct fx *fx = *state;
    char args[128], since[32];
    struct tm tm;
    time_t t = fx->now - 3 * DAY;

    RUN_OK(fx, "report --wave w2");
    CHECK_CONTAINS(fx->out, "dora@corp.example");
    assert_null(strstr(fx->out, "adam@corp.example"));
    assert_null(strstr(fx->out, "gone@corp.example"));
    CHECK_CONTAINS(fx->out, "legacy traffic: 0 in the last 1 day, 0 in the last 7 days;");

    gmtime_r(&t, &tm);
    strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(args, sizeof(args), "report --since %s", since);
    RUN_OK(fx, args);
    CHECK_CONTAINS(fx->out, "adam@corp.example");
    CHECK_CONTAINS(fx->out, "gone@corp.example");
    CHECK_CONTAINS(fx->out, "@corp2.example");
    CHECK_CONTAINS(fx->out, "bea@corp.example");        /* 2 days ago */
    assert_null(strstr(fx->out, "\ncarl@corp.example"));  /* 40 days ago */
    assert_null(strstr(fx->out, "\ndora@corp.example"));  /* never */
}

static void test_idle(void **state)
{
    struct fx *fx = *state;
    char line[512], w[16][64];

    RUN_OK(fx, "report --idle 30");
    /* carl's last mail 40 days ago; dora never, counting for 60 days. */
    words(row(fx, "carl@corp.example", line), w);
    CHECK_STR(w[9], "idle");
    words(row(fx, "dora@corp.example", line), w);
    CHECK_STR(w[9], "never-routed");
    /* bea migrated, reverse on, her alias got mail 2 days ago. */
    words(row(fx, "bea@corp.example", line), w);
    CHECK_STR(w[9], "alias-in-use");
    assert_null(strstr(fx->out, "\nadam@corp.example"));
    assert_null(strstr(fx->out, "\ngone@corp.example"));

    /* 50 days: carl is not idle that long; dora still (60 days of counting). */
    RUN_OK(fx, "report --idle 50");
    assert_null(strstr(fx->out, "\ncarl@corp.example"));
    CHECK_CONTAINS(fx->out, "\ndora@corp.example");
    CHECK_CONTAINS(fx->out, "\nbea@corp.example");
    /* 90 days: counting has not run that long: dora is not known idle. */
    RUN_OK(fx, "report --idle 90");
    assert_null(strstr(fx->out, "\ndora@corp.example"));
}

static void test_csv_json(void **state)
{
    struct fx *fx = *state;
    json_t *top, *users, *legacy;
    json_error_t jerr;
    size_t i;

    RUN_OK(fx, "report --format csv");
    CHECK_CONTAINS(fx->out, "address,state,mode,wave,copies,rewrites,reverse,first,last,"
                   "last_reverse,legacy_1d,legacy_7d,reverse_7d\n");
    CHECK_CONTAINS(fx->out, "\ndora@corp.example,unmigrated,bcc,w2,0,0,0,,,,0,0,0\n");
    CHECK_CONTAINS(fx->out, "\ngone@corp.example,removed,-,,5,0,0,");
    /* The signal goes to stderr: the CSV stays one table. */
    CHECK_CONTAINS(fx->err, "legacy traffic: 9 in the last 1 day, 13 in the last 7 days");
    assert_null(strstr(fx->out, "legacy traffic"));

    RUN_OK(fx, "report --format json");
    top = json_loads(fx->out, 0, &jerr);
    if (top == NULL)
        fail_msg("json: %s\n%s", jerr.text, fx->out);
    legacy = json_object_get(top, "legacy");
    assert_int_equal(json_integer_value(json_object_get(legacy, "last_1d")), 9);
    assert_int_equal(json_integer_value(json_object_get(legacy, "last_7d")), 13);
    assert_int_equal(json_integer_value(json_object_get(legacy, "reverse_7d")), 2);
    users = json_object_get(top, "users");
    assert_int_equal(json_array_size(users), 6);
    for (i = 0; i < json_array_size(users); i++) {
        json_t *u = json_array_get(users, i);

        if (strcmp(json_string_value(json_object_get(u, "address")), "adam@corp.example") == 0) {
            assert_int_equal(json_integer_value(json_object_get(u, "copies")), 9);
            assert_int_equal(json_integer_value(json_object_get(u, "legacy_7d")), 7);
            CHECK_STR(json_string_value(json_object_get(u, "wave")), "w1");
        }
    }
    assert_int_equal(json_array_size(json_object_get(top, "waves")), 4);
    json_decref(top);
}

static void test_no_counters_and_bad_options(void **state)
{
    struct fx *fx = *state;

    assert_int_equal(run(fx, "report --idle 0"), EX_USAGE);
    assert_int_equal(run(fx, "report --idle x"), EX_USAGE);
    assert_int_equal(run(fx, "report --since yesterday"), EX_USAGE);
    assert_int_equal(run(fx, "report --format xml"), EX_USAGE);
    assert_int_equal(unlink(fx->counters), 0);
    assert_int_equal(run(fx, "report"), EX_NOINPUT);
    CHECK_CONTAINS(fx->err, "counters.tdb");
    CHECK_CONTAINS(fx->err, "first flush");
    assert_null(strstr(fx->out, "legacy traffic"));
}

/* status names the counters file with its keys and last flush, and the metrics file. */
static void test_status(void **state)
{
    struct fx *fx = *state;
    char want[256];

    RUN_OK(fx, "status");
    snprintf(want, sizeof(want), "counters: %s (5 keys, counting since ", fx->counters);
    CHECK_CONTAINS(fx->out, want);
    CHECK_CONTAINS(fx->out, ", last flush ");   /* set 30 s before setup */
    CHECK_CONTAINS(fx->out, " s ago)\n");
    CHECK_CONTAINS(fx->out, "metrics: none (metrics_file is not set)\n");
    assert_int_equal(unlink(fx->counters), 0);
    RUN_OK(fx, "status");
    CHECK_CONTAINS(fx->out, "(none yet: the milter makes it at its first flush)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wave_and_since, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csv_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_counters_and_bad_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
