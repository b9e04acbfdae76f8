/*
 * test_timefmt.c - unit tests of policy/timefmt.c, the ISO 8601 times of
 * cutovers and change stamps.
 *
 * Covers timefmt_parse (Z and numeric offsets, optional seconds, leap days,
 * the required zone, trailing garbage, out-of-range fields) against exact
 * time_t values computed with `date -u -d TIME +%s`, and timefmt_format with
 * its round trip through timefmt_parse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "timefmt.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* One parse case: WHY NULL means accepted with value WANT. */
struct parse_case {
    const char *text;
    long long want;
    const char *why;
};

static const struct parse_case parse_cases[] = {
    {"2026-12-04T18:00:00Z", 1796407200LL, NULL},
    {"2026-12-04T18:00:00z", 1796407200LL, NULL},
    {"2026-12-04t18:00:00Z", 1796407200LL, NULL},
    {"2026-12-04 18:00:00Z", 1796407200LL, NULL},
    {"2026-12-04T18:00:00+00:00", 1796407200LL, NULL},
    {"2026-12-04T18:00:00-00:00", 1796407200LL, NULL},
    {"2026-12-04T18:00:00+01:00", 1796403600LL, NULL},
    {"2026-12-04T18:00:00+0100", 1796403600LL, NULL},
    {"2026-12-04T18:00:00-05:30", 1796427000LL, NULL},
    {"2026-12-04T18:00Z", 1796407200LL, NULL},
    {"2026-12-04T18:00+01:00", 1796403600LL, NULL},
    {"2026-12-31T23:59:59+14:00", 1798711199LL, NULL},
    {"2024-02-29T00:00:00-00:30", 1709166600LL, NULL},
    {"2028-02-29T12:00:00Z", 1835438400LL, NULL},
    {"2000-03-01T00:00:00Z", 951868800LL, NULL},
    {"2100-03-01T00:00:00Z", 4107542400LL, NULL},
    {"1970-01-01T00:00:00Z", 0LL, NULL},
    {"2038-01-19T03:14:08Z", 2147483648LL, NULL},
    {"9999-12-31T23:59:59Z", 253402300799LL, NULL},
    /* leap years: divisible by 4, not by 100 unless by 400 */
    {"2000-02-29T00:00:00Z", 951782400LL, NULL},
    {"2027-02-29T00:00:00Z", 0, "range"},
    {"2100-02-29T00:00:00Z", 0, "range"},
    {"2026-02-28T00:00:00Z", 1772236800LL, NULL},
    /* a zone is required */
    {"2026-12-04T18:00:00", 0, "zone"},
    {"2026-12-04T18:00", 0, "zone"},
    {"2026-12-04T18:00:00.5Z", 0, "zone"},
    /* syntax */
    {"2026-12-04T18:00:00Zjunk", 0, "look like"},
    {"2026-12-04T18:00:00Z ", 0, "look like"},
    {"2026-12-04T18:00:00+01:00x", 0, "look like"},
    {"2026-12-04T18:00:00+1", 0, "look like"},
    {"2026-12-04T18:00:00+01:0", 0, "look like"},
    {" 2026-12-04T18:00:00Z", 0, "look like"},
    {"2026-12-04", 0, "look like"},
    {"2026-12-04T", 0, "look like"},
    {"2026-12-04T18", 0, "look like"},
    {"26-12-04T18:00:00Z", 0, "look like"},
    {"2026-1-04T18:00:00Z", 0, "look like"},
    {"2026/12/04T18:00:00Z", 0, "look like"},
    {"2026-12-04X18:00:00Z", 0, "look like"},
    {"2026-12-04T18:00:0Z", 0, "look like"},
    {"", 0, "look like"},
    {"now", 0, "look like"},
    /* out of range */
    {"2026-13-01T00:00:00Z", 0, "range"},
    {"2026-00-01T00:00:00Z", 0, "range"},
    {"2026-12-00T00:00:00Z", 0, "range"},
    {"2026-12-32T00:00:00Z", 0, "range"},
    {"2026-04-31T00:00:00Z", 0, "range"},
    {"2026-12-04T24:00:00Z", 0, "range"},
    {"2026-12-04T18:60:00Z", 0, "range"},
    {"2026-12-04T18:00:61Z", 0, "range"},
    {"1969-12-31T23:59:59Z", 0, "range"},
    {"2026-12-04T18:00:00+24:00", 0, "offset"},
    {"2026-12-04T18:00:00+01:60", 0, "offset"},
    /* fuzz (tests/fuzz/corpus/record/regress-*): instants an offset or a
     * leap second carries outside 1970..9999 would be formatted as
     * "1969-..." or "10000-...", which no longer parse */
    {"1970-01-01T00:00:00+01:00", 0, "range"},
    {"1970-01-01T00:59:59+01:00", 0, "range"},
    {"1970-01-01T01:00:00+01:00", 0LL, NULL},
    {"9999-12-31T23:59:60Z", 0, "range"},
    {"9999-12-31T23:00:00-01:00", 0, "range"},
    {"9999-12-31T23:59:59+00:01", 253402300739LL, NULL},
};

static void test_parse_table(void **state)
{
    int failed = 0;

    (void) state;
    for (size_t i = 0; i < NELEM(parse_cases); i++) {
        const struct parse_case *c = &parse_cases[i];
        time_t got = (time_t) -12345;
        const char *err = NULL;
        int rc = timefmt_parse(c->text, &got, &err);

        if (c->why == NULL && (rc != 0 || (long long) got != c->want)) {
            print_error("timefmt_parse('%s'): got rc %d %lld (%s), want %lld\n", c->text, rc,
                        (long long) got, rc ? err : "", c->want);
            failed++;
        } else if (c->why != NULL && rc != -1) {
            print_error("timefmt_parse('%s'): got rc %d %lld, want rejection (%s)\n",
                        c->text, rc, (long long) got, c->why);
            failed++;
        } else if (c->why != NULL && (err == NULL || strstr(err, c->why) == NULL)) {
            print_error("timefmt_parse('%s'): error '%s' does not mention '%s'\n", c->text,
                        err ? err : "(null)", c->why);
            failed++;
        }
    }
    if (failed)
        fail_msg("%d of %zu parse cases failed", failed, NELEM(parse_cases));
}

/* One format case: T and its text. */
struct format_case {
    long long t;
    const char *want;
};

static const struct format_case format_cases[] = {
    {0LL, "1970-01-01T00:00:00Z"},
    {1796407200LL, "2026-12-04T18:00:00Z"},
    {1796403600LL, "2026-12-04T17:00:00Z"},
    {1796427000LL, "2026-12-04T23:30:00Z"},
    {1835438400LL, "2028-02-29T12:00:00Z"},
    {2147483648LL, "2038-01-19T03:14:08Z"},
    {253402300799LL, "9999-12-31T23:59:59Z"},
    {1798711199LL, "2026-12-31T09:59:59Z"},
};

static void test_format_table(void **state)
{
    char out[TIMEFMT_BUFSIZE];
    int failed = 0;

    (void) state;
    for (size_t i = 0; i < NELEM(format_cases); i++) {
        timefmt_format((time_t) format_cases[i].t, out);
        if (strcmp(out, format_cases[i].want) != 0) {
            print_error("timefmt_format(%lld): got '%s', want '%s'\n", format_cases[i].t,
                        out, format_cases[i].want);
            failed++;
        }
    }
    if (failed)
        fail_msg("%d format cases failed", failed);
}

/* test_round_trip - parse(format(t)) == t, and format(parse(s)) is canonical. */
static void test_round_trip(void **state)
{
    static const long long times[] = {0, 1, 59, 86399, 86400, 951782400LL, 1709166600LL,
                                      1796407200LL, 1835438400LL, 2147483647LL,
                                      2147483648LL, 4107542400LL, 253402300799LL};
    char text[TIMEFMT_BUFSIZE];
    int failed = 0;

    (void) state;
    for (size_t i = 0; i < NELEM(times); i++) {
        time_t back = 0;
        const char *err = NULL;

        timefmt_format((time_t) times[i], text);
        if (timefmt_parse(text, &back, &err) != 0 || (long long) back != times[i]) {
            print_error("round trip of %lld via '%s': got %lld, want %lld\n", times[i], text,
                        (long long) back, times[i]);
            failed++;
        }
    }
    /* Every accepted parse case formats to a text that parses to the same value. */
    for (size_t i = 0; i < NELEM(parse_cases); i++) {
        time_t t = 0, back = 1;
        const char *err = NULL;

        if (parse_cases[i].why != NULL)
            continue;
        assert_int_equal(timefmt_parse(parse_cases[i].text, &t, &err), 0);
        timefmt_format(t, text);
        if (timefmt_parse(text, &back, &err) != 0 || back != t) {
            print_error("'%s' formatted as '%s' does not parse back\n", parse_cases[i].text,
                        text);
            failed++;
        }
    }
    if (failed)
        fail_msg("%d round trips failed", failed);
}

/* test_parse_leaves_output_on_error - a failed parse does not write *OUT. */
static void test_parse_leaves_output_on_error(void **state)
{
    time_t t = 42;
    const char *err = NULL;

    (void) state;
    assert_int_equal(timefmt_parse("2027-02-29T00:00:00Z", &t, &err), -1);
    assert_int_equal(t, 42);
    assert_non_null(err);
    assert_true(strlen(err) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_format_table),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_parse_leaves_output_on_error),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
