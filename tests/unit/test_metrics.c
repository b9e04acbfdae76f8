/*
 * test_metrics.c - milter/metrics.c: the Prometheus text of metrics_file.
 *
 * The values written are the ones given; and the names keep Prometheus'
 * conventions, checked by lint() over the whole text: every name
 * coexist_milter_ and snake case, a HELP and a TYPE line before a family's
 * first sample and never twice, counters and only counters ending in
 * _total, times in _seconds, label values quoted, each family's samples
 * together, every stats counter (STATS_NCOUNTERS) exported. lint() is
 * shown to catch each rule on a broken text, so the test can fail. The
 * file is written by rename (no .tmp left, mode 0644). promtool checks a
 * file the real daemon wrote in tests/milter/run.sh.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "metrics.h"

/* format - IN as text, in a malloc'd string. */
static char *format(const struct metrics_input *in)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);

    assert_non_null(fp);
    assert_int_equal(metrics_format(fp, in), 0);
    fclose(fp);
    return buf;
}

static struct dbh_census census(void)
{
    struct dbh_census c;

    memset(&c, 0, sizeof(c));
    c.records[0][DBH_UNMIGRATED][0] = 7;        /* users, bcc */
    c.records[0][DBH_SCHEDULED][1] = 2;         /* users, rewrite */
    c.records[0][DBH_MIGRATED][0] = 5;
    c.records[1][DBH_UNMIGRATED][1] = 1;        /* a domain rule */
    c.now = 1764590400;
    c.valid = 1;
    return c;
}

static struct metrics_input input(const struct dbh_census *c)
{
    struct metrics_input in = {
        .version = "0.1.0", .libmilter = "1.0.1", .instance = "mx\"1",
        .started = 1764590000, .census = c, .counting = 1, .now = 1764590460,
        .last_flush = 1764590400, .flush_failures = 2, .pending = 3,
    };

    for (int i = 0; i < STATS_NCOUNTERS; i++)
        in.stats[i] = 100 + (unsigned long) i;
    return in;
}

/* ---- the conventions ------------------------------------------------------- */

#define LINT_MAX 64

struct family {
    char name[128], type[16];
    int help, samples, closed;
};

/* find - the family NAME, added when new. */
static struct family *find(struct family *fams, int *n, const char *name)
{
    for (int i = 0; i < *n; i++)
        if (strcmp(fams[i].name, name) == 0)
            return &fams[i];
    if (*n == LINT_MAX)
        return NULL;
    memset(&fams[*n], 0, sizeof(fams[0]));
    snprintf(fams[*n].name, sizeof(fams[0].name), "%s", name);
    return &fams[(*n)++];
}

/* good_name - coexist_milter_ then [a-z0-9_], no "__", not ending in '_'. */
static int good_name(const char *name)
{
    size_t len = strlen(name);

    if (strncmp(name, "coexist_milter_", 15) != 0 || len <= 15 || name[len - 1] == '_'
        || strstr(name, "__") != NULL)
        return 0;
    for (const char *p = name; *p; p++)
        if (!islower((unsigned char) *p) && !isdigit((unsigned char) *p) && *p != '_')
            return 0;
    return 1;
}

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);

    return n >= m && strcmp(s + n - m, tail) == 0;
}

/* sample_ok - NAME{k="v",...} VALUE; *NAME_END where the name ends. */
static int sample_ok(const char *line, char name[128])
{
    size_t n = strcspn(line, "{ ");
    const char *p = line + n;

    if (n == 0 || n >= 128)
        return 0;
    memcpy(name, line, n);
    name[n] = '\0';
    if (*p == '{') {
        for (p++; *p != '}';) {
            while (islower((unsigned char) *p) || *p == '_')
                p++;
            if (*p++ != '=' || *p++ != '"')
                return 0;
            for (; *p != '"'; p++) {
                if (*p == '\0' || *p == '\n')
                    return 0;
                if (*p == '\\' && (p[1] == '"' || p[1] == '\\' || p[1] == 'n'))
                    p++;
            }
            p++;
            if (*p == ',')
                p++;
            else if (*p != '}')
                return 0;
        }
        p++;
    }
    if (*p++ != ' ')
        return 0;
    if (!isdigit((unsigned char) *p))
        return 0;
    while (isdigit((unsigned char) *p) || *p == '.')
        p++;
    return *p == '\0';
}

/*
 * lint - the first convention TEXT breaks, in WHY; 0 if none. NCOUNTERS
 * gets the number of counter families.
 */
static int lint(const char *text, char why[256], int *ncounters)
{
    struct family fams[LINT_MAX];
    struct family *last = NULL, *f;
    int n = 0, lineno = 0;
    char *copy = strdup(text), *save = NULL, name[128], kind[16];

    *ncounters = 0;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0) {
            int help = line[2] == 'H';

            if (sscanf(line + 7, "%127s %15s", name, kind) < (help ? 1 : 2)
                || (f = find(fams, &n, name)) == NULL)
                return snprintf(why, 256, "line %d: bad %s line", lineno, help ? "HELP" : "TYPE"), free(copy), 1;
            if (!good_name(name))
                return snprintf(why, 256, "line %d: bad name %s", lineno, name), free(copy), 1;
            if (f->samples)
                return snprintf(why, 256, "line %d: %s after its samples", lineno, line), free(copy), 1;
            if (help && f->help++)
                return snprintf(why, 256, "line %d: HELP twice for %s", lineno, name), free(copy), 1;
            if (!help) {
                if (f->type[0])
                    return snprintf(why, 256, "line %d: TYPE twice for %s", lineno, name), free(copy), 1;
                snprintf(f->type, sizeof(f->type), "%s", kind);
                if (strcmp(kind, "counter") && strcmp(kind, "gauge"))
                    return snprintf(why, 256, "line %d: type %s", lineno, kind), free(copy), 1;
                if (strcmp(kind, "counter") == 0)
                    ++*ncounters;
                if ((strcmp(kind, "counter") == 0) != ends_with(name, "_total"))
                    return snprintf(why, 256, "line %d: %s: a counter and only a counter "
                                    "ends in _total", lineno, name), free(copy), 1;
                if ((strstr(name, "time") || strstr(name, "age")) && !ends_with(name, "_seconds")
                    && !ends_with(name, "_total"))
                    return snprintf(why, 256, "line %d: %s: a time is in _seconds", lineno,
                                    name), free(copy), 1;
            }
            continue;
        }
        if (line[0] == '#')
            continue;
        if (!sample_ok(line, name))
            return snprintf(why, 256, "line %d: bad sample '%s'", lineno, line), free(copy), 1;
        if ((f = find(fams, &n, name)) == NULL || !f->help || !f->type[0])
            return snprintf(why, 256, "line %d: %s without HELP and TYPE before it", lineno,
                            name), free(copy), 1;
        if (f->closed || (last != NULL && last != f && f->samples))
            return snprintf(why, 256, "line %d: %s's samples are not together", lineno, name),
                free(copy), 1;
        if (last != NULL && last != f)
            last->closed = 1;
        f->samples++;
        last = f;
    }
    free(copy);
    for (int i = 0; i < n; i++)
        if (fams[i].samples == 0)
            return snprintf(why, 256, "%s has no sample", fams[i].name), 1;
    return 0;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_values(void **state)
{
    struct dbh_census c = census();
    struct metrics_input in = input(&c);
    char *text = format(&in);

    (void) state;
    CHECK_CONTAINS(text, "coexist_milter_build_info{version=\"0.1.0\",libmilter=\"1.0.1\","
                   "instance=\"mx\\\"1\"} 1\n");
    CHECK_CONTAINS(text, "\ncoexist_milter_messages_total 100\n");
    CHECK_CONTAINS(text, "\ncoexist_milter_tempfails_total 107\n");
    CHECK_CONTAINS(text, "\ncoexist_milter_store_reopens_total 108\n");
    CHECK_CONTAINS(text, "# TYPE coexist_milter_bcc_total counter\n");
    CHECK_CONTAINS(text, "\ncoexist_milter_users{state=\"unmigrated\",mode=\"bcc\"} 7\n");
    CHECK_CONTAINS(text, "\ncoexist_milter_users{state=\"scheduled\",mode=\"rewrite\"} 2\n");
    CHECK_CONTAINS(text, "\ncoexist_milter_users{state=\"migrated\",mode=\"bcc\"} 5\n");
    CHECK_CONTAINS(text, "\ncoexist_milter_users{state=\"migrated\",mode=\"rewrite\"} 0\n");
    CHECK_CONTAINS(text, "\ncoexist_milter_domain_rules{state=\"unmigrated\",mode=\"rewrite\"} 1\n");
    CHECK_CONTAINS(text, "\ncoexist_milter_store_up 1\n");
    CHECK_CONTAINS(text, "\ncoexist_milter_counters_flush_age_seconds 60\n");
    CHECK_CONTAINS(text, "\ncoexist_milter_counters_last_flush_timestamp_seconds 1764590400\n");
    CHECK_CONTAINS(text, "\ncoexist_milter_counters_flush_failures_total 2\n");
    CHECK_CONTAINS(text, "\ncoexist_milter_counters_pending 3\n");
    free(text);

    /* The store unavailable, no counting, never flushed. */
    in.census = NULL;
    in.counting = 0;
    text = format(&in);
    CHECK_CONTAINS(text, "\ncoexist_milter_store_up 0\n");
    CHECK_CONTAINS(text, "\ncoexist_milter_counters_enabled 0\n");
    assert_null(strstr(text, "coexist_milter_users{"));
    assert_null(strstr(text, "flush_age"));
    free(text);
    in.counting = 1;
    in.last_flush = 0;
    text = format(&in);
    CHECK_CONTAINS(text, "\ncoexist_milter_counters_flush_age_seconds 460\n");
    free(text);
}

static void test_conventions(void **state)
{
    struct dbh_census c = census();
    struct metrics_input in = input(&c);
    char *text = format(&in), why[256];
    int ncounters;

    (void) state;
    if (lint(text, why, &ncounters) != 0)
        fail_msg("metrics text breaks a convention: %s\n%s", why, text);
    /* every stats counter, the flush failures and the lost counts */
    assert_int_equal(ncounters, STATS_NCOUNTERS + 2);
    free(text);
    in.census = NULL;
    in.counting = 0;
    text = format(&in);
    if (lint(text, why, &ncounters) != 0)
        fail_msg("metrics text breaks a convention: %s\n%s", why, text);
    free(text);
}

/* The checker itself: each rule caught, so test_conventions can fail. */
static void test_lint_catches(void **state)
{
    static const char *const bad[] = {
        "# HELP coexist_milter_Bad x\n# TYPE coexist_milter_Bad gauge\ncoexist_milter_Bad 1\n",
        "# HELP other_thing x\n# TYPE other_thing gauge\nother_thing 1\n",
        "# HELP coexist_milter_msgs x\n# TYPE coexist_milter_msgs counter\ncoexist_milter_msgs 1\n",
        "# HELP coexist_milter_x_total x\n# TYPE coexist_milter_x_total gauge\ncoexist_milter_x_total 1\n",
        "coexist_milter_up 1\n",
        "# HELP coexist_milter_flush_age x\n# TYPE coexist_milter_flush_age gauge\n"
        "coexist_milter_flush_age 1\n",
        "# HELP coexist_milter_a x\n# TYPE coexist_milter_a gauge\ncoexist_milter_a{x=1} 1\n",
        "# HELP coexist_milter_a x\n# TYPE coexist_milter_a gauge\n"
        "# HELP coexist_milter_b x\n# TYPE coexist_milter_b gauge\n"
        "coexist_milter_a 1\ncoexist_milter_b 1\ncoexist_milter_a 2\n",
        "# HELP coexist_milter_a x\n# HELP coexist_milter_a y\n# TYPE coexist_milter_a gauge\n"
        "coexist_milter_a 1\n",
    };
    char why[256];
    int ncounters;

    (void) state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (lint(bad[i], why, &ncounters) == 0)
            fail_msg("lint passed a broken text:\n%s", bad[i]);
}

static void test_write(void **state)
{
    struct dbh_census c = census();
    struct metrics_input in = input(&c);
    char dir[] = "/tmp/test_metrics.XXXXXX", path[128], tmp[160], err[METRICS_ERR_MAX];
    char buf[8192];
    struct stat sb;
    FILE *fp;
    size_t n;

    (void) state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/coexist-milter.prom", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (metrics_write(path, &in, err) < 0)
        fail_msg("metrics_write: %s", err);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0644);
    assert_int_equal(access(tmp, F_OK), -1);
    fp = fopen(path, "r");
    assert_non_null(fp);
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    CHECK_CONTAINS(buf, "coexist_milter_messages_total 100\n");
    /* A directory that is not there: an error, nothing left behind. */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
    assert_int_equal(metrics_write(path, &in, err), -1);
    CHECK_CONTAINS(err, "No such file");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_conventions),
        cmocka_unit_test(test_lint_catches),
        cmocka_unit_test(test_write),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
