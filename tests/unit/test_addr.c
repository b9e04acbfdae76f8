/*
 * test_addr.c - unit tests of policy/addr.c, the address normalization that
 * makes store keys.
 *
 * Covers addr_normalize (angle brackets and blanks, subaddress stripping with
 * the default and custom delimiter sets, case folding, quoted local parts,
 * the RFC 5321 length limits, and every rejection with its reason),
 * addr_normalize_domain, addr_is_domain_key, addr_domain and
 * addr_strip_brackets. Each table row is checked on its exact output; a
 * rejection must name its cause (a keyword of the error string).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "addr.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* One addr_normalize case: WANT is the key, or NULL with WHY in the error. */
struct norm_case {
    const char *raw;
    const char *delimiters;
    const char *want;
    const char *why;
};

static const struct norm_case norm_cases[] = {
    /* brackets and blanks */
    {"<adam.barr@corp.example>", "+", "adam.barr@corp.example", NULL},
    {"adam.barr@corp.example", "+", "adam.barr@corp.example", NULL},
    {"  <adam@corp.example>  ", "+", "adam@corp.example", NULL},
    {" adam@corp.example ", "+", "adam@corp.example", NULL},
    {"<adam@corp.example", "+", NULL, "unbalanced"},
    {"adam@corp.example>", "+", NULL, "unbalanced"},
    {"<<adam@corp.example>", "+", NULL, "unbalanced"},
    {"<adam@corp.example>>", "+", NULL, "unbalanced"},
    {"<", "+", NULL, "unbalanced"},
    {"a<dam@corp.example", "+", NULL, "unbalanced"},
    {"<>", "+", NULL, "empty"},
    {"", "+", NULL, "empty"},
    {"   ", "+", NULL, "empty"},
    /* subaddress extensions */
    {"<Adam.Barr+News@Corp.Example>", "+", "adam.barr@corp.example", NULL},
    {"adam+a+b@corp.example", "+", "adam@corp.example", NULL},
    {"adam+@corp.example", "+", "adam@corp.example", NULL},
    {"adam-news@corp.example", "+", "adam-news@corp.example", NULL},
    {"adam-news@corp.example", "+-", "adam@corp.example", NULL},
    {"adam+news@corp.example", "+-", "adam@corp.example", NULL},
    {"adam-x+y@corp.example", "+-", "adam@corp.example", NULL},
    {"adam.b+x-y@corp.example", "-+", "adam.b@corp.example", NULL},
    {"+adam@corp.example", "+", "+adam@corp.example", NULL},
    {"-adam-x@corp.example", "+-", "-adam@corp.example", NULL},
    {"+@corp.example", "+", "+@corp.example", NULL},
    {"adam+news@corp.example", "", "adam+news@corp.example", NULL},
    {"adam-news@corp.example", "", "adam-news@corp.example", NULL},
    /* case folding */
    {"ADAM@CORP.EXAMPLE", "+", "adam@corp.example", NULL},
    {"Adam.Barr@Corp.Example", "", "adam.barr@corp.example", NULL},
    /* quoted local parts */
    {"\"a.b\"@corp.example", "+", "a.b@corp.example", NULL},
    {"<\"Adam\"@Corp.Example>", "+", "adam@corp.example", NULL},
    {"\"a b\"@corp.example", "+", NULL, "space"},
    {"\"a\\\"b\"@corp.example", "+", NULL, "quoted"},
    {"\"ab@corp.example", "+", NULL, "quote"},
    {"\"\"@corp.example", "+", NULL, "empty local"},
    {"a\"b@corp.example", "+", NULL, "invalid character"},
    /* control characters, spaces, 8-bit */
    {"ad\001am@corp.example", "+", NULL, "control"},
    {"adam@corp.example\177", "+", NULL, "control"},
    {"ad\177am@corp.example", "+", NULL, "control"},
    {"adam\t@corp.example", "+", NULL, "control"},
    {"\tadam@corp.example", "+", NULL, "control"},
    {"adam@corp.example\r\n", "+", NULL, "control"},
    {"adam@corp.example\n", "+", NULL, "control"},
    {"ad am@corp.example", "+", NULL, "space"},
    {"adam@corp example", "+", NULL, "space"},
    {"< adam@corp.example>", "+", NULL, "space"},
    {"\303\244dam@corp.example", "+", NULL, "non-ASCII"},
    {"adam@\303\244.example", "+", NULL, "invalid character"},
    /* structure */
    {"adam", "+", NULL, "missing @"},
    {"adam.corp.example", "+", NULL, "missing @"},
    {"@corp.example", "+", NULL, "empty local"},
    {"adam@", "+", NULL, "empty domain"},
    {"adam@x@corp.example", "+", NULL, "invalid character in local"},
    {"adam@[1.2.3.4]", "+", NULL, "literal"},
    {"adam@corp_x.example", "+", NULL, "invalid character in domain"},
    {"a(b)@corp.example", "+", NULL, "invalid character in local"},
    {"a,b@corp.example", "+", NULL, "invalid character in local"},
    {"o'brien@corp.example", "+", "o'brien@corp.example", NULL},
    {"a!#$%&*/=?^_`{|}~b@corp.example", "", "a!#$%&*/=?^_`{|}~b@corp.example", NULL},
    /* dots */
    {"a..b@corp.example", "+", NULL, "consecutive dots"},
    {".adam@corp.example", "+", NULL, "dot"},
    {"adam.@corp.example", "+", NULL, "dot"},
    {"adam@corp..example", "+", NULL, "empty label"},
    {"adam@.corp.example", "+", NULL, "empty label"},
    {"adam@corp.example.", "+", NULL, "ends with a dot"},
    {"adam@localhost", "+", "adam@localhost", NULL},
    /* hyphens */
    {"adam@-corp.example", "+", NULL, "starts with a hyphen"},
    {"adam@corp.-example", "+", NULL, "starts with a hyphen"},
    {"adam@corp-.example", "+", NULL, "ends with a hyphen"},
    {"adam@corp.example-", "+", NULL, "ends with a hyphen"},
    {"adam@co-rp.ex--ample", "+", "adam@co-rp.ex--ample", NULL},
    {"adam@123.example", "+", "adam@123.example", NULL},
    /* fuzz (tests/fuzz/corpus/addr/regress-dot-before-delimiter): the key
     * "adam.@..." would not normalize again */
    {"adam.+news@corp.example", "+", NULL, "ending with a dot"},
    {"\"AaAa.+\"@b", "+-", NULL, "ending with a dot"},
    {"adam.+news@corp.example", "", "adam.+news@corp.example", NULL},
    {"adam.+news@corp.example", ".+", "adam@corp.example", NULL},
};

/* check_norm - run one case; print and return 1 on a mismatch. */
static int check_norm(const char *label, const char *raw, const char *delimiters,
                      const char *want, const char *why)
{
    char out[ADDR_BUFSIZE];
    const char *err = NULL;
    int rc;

    memset(out, 'X', sizeof(out));
    out[ADDR_BUFSIZE - 1] = '\0';
    rc = addr_normalize(raw, delimiters, out, &err);
    if (want != NULL) {
        if (rc != 0) {
            print_error("%s: addr_normalize('%s', '%s') failed: %s, want '%s'\n", label,
                        raw, delimiters, err ? err : "(null)", want);
            return 1;
        }
        if (strcmp(out, want) != 0) {
            print_error("%s: addr_normalize('%s', '%s'): got '%s', want '%s'\n", label, raw,
                        delimiters, out, want);
            return 1;
        }
        return 0;
    }
    if (rc != -1) {
        print_error("%s: addr_normalize('%s', '%s'): got rc %d '%s', want rejection (%s)\n",
                    label, raw, delimiters, rc, rc == 0 ? out : "", why);
        return 1;
    }
    if (err == NULL || *err == '\0' || strstr(err, why) == NULL) {
        print_error("%s: addr_normalize('%s'): error '%s' does not mention '%s'\n", label,
                    raw, err ? err : "(null)", why);
        return 1;
    }
    return 0;
}

/* test_normalize_table - every row of norm_cases. */
static void test_normalize_table(void **state)
{
    int failed = 0;
    char label[32];

    (void) state;
    for (size_t i = 0; i < NELEM(norm_cases); i++) {
        snprintf(label, sizeof(label), "case %zu", i);
        failed += check_norm(label, norm_cases[i].raw, norm_cases[i].delimiters,
                             norm_cases[i].want, norm_cases[i].why);
    }
    if (failed)
        fail_msg("%d of %zu normalize cases failed", failed, NELEM(norm_cases));
}

/* test_normalize_idempotent - a key normalizes to itself. */
static void test_normalize_idempotent(void **state)
{
    int failed = 0;

    (void) state;
    for (size_t i = 0; i < NELEM(norm_cases); i++) {
        if (norm_cases[i].want == NULL)
            continue;
        failed += check_norm("idempotent", norm_cases[i].want, norm_cases[i].delimiters,
                             norm_cases[i].want, NULL);
    }
    if (failed)
        fail_msg("%d keys did not normalize to themselves", failed);
}

/* repeat - N copies of C, NUL-terminated, into a static-size buffer. */
static char *repeat(char *buf, char c, size_t n)
{
    memset(buf, c, n);
    buf[n] = '\0';
    return buf;
}

/* make_domain - a LEN-byte domain of labels of at most LABEL bytes. */
static char *make_domain(char *buf, size_t len, size_t label)
{
    size_t i, run = 0;

    for (i = 0; i < len; i++) {
        if (run == label && i + 1 < len) {
            buf[i] = '.';
            run = 0;
        } else {
            buf[i] = 'd';
            run++;
        }
    }
    buf[len] = '\0';
    return buf;
}

/* test_length_limits - 64 local, 255 domain, 63 label, 320 total. */
static void test_length_limits(void **state)
{
    char local64[65], local65[66], dom255[256], dom256[257], label63[64], label64[65];
    char raw[1024], want[1024];
    int failed = 0;

    (void) state;
    repeat(local64, 'l', 64);
    repeat(local65, 'l', 65);
    make_domain(dom255, 255, 63);
    make_domain(dom256, 256, 62);
    repeat(label63, 'd', 63);
    repeat(label64, 'd', 64);
    assert_int_equal(strlen(dom255), 255);
    assert_int_equal(strlen(dom256), 256);
    assert_non_null(strstr(dom255, ".")); /* several labels, each <= 63 */

    snprintf(raw, sizeof(raw), "%s@corp.example", local64);
    failed += check_norm("local 64", raw, "+", raw, NULL);
    snprintf(raw, sizeof(raw), "%s@corp.example", local65);
    failed += check_norm("local 65", raw, "+", NULL, "64");

    snprintf(raw, sizeof(raw), "a@%s", dom255);
    failed += check_norm("domain 255", raw, "+", raw, NULL);
    snprintf(raw, sizeof(raw), "a@%s", dom256);
    failed += check_norm("domain 256", raw, "+", NULL, "255");

    snprintf(raw, sizeof(raw), "a@%s.example", label63);
    failed += check_norm("label 63", raw, "+", raw, NULL);
    snprintf(raw, sizeof(raw), "a@%s.example", label64);
    failed += check_norm("label 64", raw, "+", NULL, "63");

    /* 64 + 1 + 255 = 320: the longest key, also inside brackets. */
    snprintf(want, sizeof(want), "%s@%s", local64, dom255);
    assert_int_equal(strlen(want), ADDR_MAX);
    failed += check_norm("total 320", want, "+", want, NULL);
    snprintf(raw, sizeof(raw), "<%s>", want);
    failed += check_norm("total 320 bracketed", raw, "+", want, NULL);

    /* Over 320 bytes: a quoted 64-byte local part and a 255-byte domain. */
    snprintf(raw, sizeof(raw), "\"%s\"@%s", local64, dom255);
    failed += check_norm("total 322 quoted", raw, "+", NULL, "320");
    snprintf(raw, sizeof(raw), "%s%s@%s", local65, local65, dom255);
    failed += check_norm("total 386", raw, "+", NULL, "320");
    snprintf(raw, sizeof(raw), "<%s%s@%s>", local65, local65, dom255);
    failed += check_norm("total 388 bracketed", raw, "+", NULL, "320");
    repeat(raw, 'a', 900);
    failed += check_norm("900 bytes, no @", raw, "+", NULL, "320");

    if (failed)
        fail_msg("%d length cases failed", failed);
}

/* The output buffer is exactly ADDR_BUFSIZE: a 320-byte key must fit. */
static void test_output_buffer_exact(void **state)
{
    char local64[65], dom255[256], raw[400];
    char *out = malloc(ADDR_BUFSIZE);   /* heap, so ASan sees an overrun */
    const char *err = NULL;

    (void) state;
    assert_non_null(out);
    repeat(local64, 'L', 64);
    make_domain(dom255, 255, 63);
    snprintf(raw, sizeof(raw), "<%s@%s>", local64, dom255);
    assert_int_equal(addr_normalize(raw, "+", out, &err), 0);
    assert_int_equal(strlen(out), ADDR_MAX);
    assert_int_equal(out[0], 'l');
    free(out);
}

/* One addr_normalize_domain case. */
struct domain_case {
    const char *raw;
    const char *want;
    const char *why;
};

static const struct domain_case domain_cases[] = {
    {"@Corp.Example", "@corp.example", NULL},
    {"corp.example", "@corp.example", NULL},
    {"@pop.example", "@pop.example", NULL},
    {"LOCALHOST", "@localhost", NULL},
    {"@", NULL, "empty domain"},
    {"", NULL, "empty domain"},
    {"adam@corp.example", NULL, "@domain"},
    {"@@corp.example", NULL, "@domain"},
    {"@[1.2.3.4]", NULL, "literal"},
    {"@-corp.example", NULL, "hyphen"},
    {"@corp-.example", NULL, "hyphen"},
    {"@corp..example", NULL, "empty label"},
    {"@corp.example.", NULL, "dot"},
    {"@corp example", NULL, "space"},
    {"@corp\001.example", NULL, "control"},
    {"@corp.example\n", NULL, "control"},
    {"@corp_x.example", NULL, "invalid character"},
};

static void test_normalize_domain_table(void **state)
{
    char out[ADDR_BUFSIZE];
    int failed = 0;

    (void) state;
    for (size_t i = 0; i < NELEM(domain_cases); i++) {
        const struct domain_case *c = &domain_cases[i];
        const char *err = NULL;
        int rc = addr_normalize_domain(c->raw, out, &err);

        if (c->want && (rc != 0 || strcmp(out, c->want) != 0)) {
            print_error("domain case %zu: addr_normalize_domain('%s'): got %s '%s', "
                        "want '%s'\n", i, c->raw, rc ? "error" : "", rc ? err : out, c->want);
            failed++;
        } else if (!c->want && (rc != -1 || err == NULL || strstr(err, c->why) == NULL)) {
            print_error("domain case %zu: addr_normalize_domain('%s'): got rc %d err '%s', "
                        "want rejection mentioning '%s'\n", i, c->raw, rc,
                        err ? err : "(null)", c->why);
            failed++;
        }
    }
    if (failed)
        fail_msg("%d of %zu domain cases failed", failed, NELEM(domain_cases));
}

static void test_normalize_domain_lengths(void **state)
{
    char dom255[256], dom256[257], raw[300], out[ADDR_BUFSIZE];
    const char *err = NULL;

    (void) state;
    make_domain(dom255, 255, 63);
    make_domain(dom256, 256, 62);
    snprintf(raw, sizeof(raw), "@%s", dom255);
    assert_int_equal(addr_normalize_domain(raw, out, &err), 0);
    assert_string_equal(out, raw);
    assert_int_equal(addr_normalize_domain(dom255, out, &err), 0);
    assert_string_equal(out, raw);
    snprintf(raw, sizeof(raw), "@%s", dom256);
    assert_int_equal(addr_normalize_domain(raw, out, &err), -1);
    assert_non_null(strstr(err, "255"));
}

static void test_is_domain_key(void **state)
{
    (void) state;
    assert_true(addr_is_domain_key("@corp.example"));
    assert_false(addr_is_domain_key("adam@corp.example"));
    assert_false(addr_is_domain_key(""));
}

/* One addr_domain case. */
struct part_case {
    const char *key;
    const char *want;
};

static const struct part_case domain_of_cases[] = {
    {"adam@corp.example", "corp.example"},
    {"@pop.example", "pop.example"},
    {"a@b@c.example", "c.example"},
    {"nodomain", ""},
    {"", ""},
};

static void test_domain_of(void **state)
{
    int failed = 0;

    (void) state;
    for (size_t i = 0; i < NELEM(domain_of_cases); i++) {
        const char *got = addr_domain(domain_of_cases[i].key);

        if (strcmp(got, domain_of_cases[i].want) != 0) {
            print_error("addr_domain('%s'): got '%s', want '%s'\n", domain_of_cases[i].key,
                        got, domain_of_cases[i].want);
            failed++;
        }
    }
    if (failed)
        fail_msg("%d addr_domain cases failed", failed);
}

/* One addr_strip_brackets case: WANT NULL means -1. */
struct strip_case {
    const char *raw;
    size_t outlen;
    const char *want;
};

static const struct strip_case strip_cases[] = {
    {"<a@b>", 64, "a@b"},
    {" \t<a@b> \t", 64, "a@b"},
    {"a@b", 64, "a@b"},
    {"  a@b  ", 64, "a@b"},
    {"<>", 64, ""},
    {"", 64, ""},
    {"<a@b", 64, NULL},
    {"a@b>", 64, NULL},
    {"<", 64, NULL},
    {">", 64, NULL},
    {"<a@b>", 4, "a@b"},
    {"<a@b>", 3, NULL},
    {"abcd", 4, NULL},
};

static void test_strip_brackets(void **state)
{
    char out[64];
    int failed = 0;

    (void) state;
    for (size_t i = 0; i < NELEM(strip_cases); i++) {
        const struct strip_case *c = &strip_cases[i];
        int rc = addr_strip_brackets(c->raw, out, c->outlen);

        if (c->want ? (rc != 0 || strcmp(out, c->want) != 0) : rc != -1) {
            print_error("addr_strip_brackets('%s', %zu): got rc %d '%s', want %s'%s'\n",
                        c->raw, c->outlen, rc, rc == 0 ? out : "", c->want ? "" : "-1 ",
                        c->want ? c->want : "");
            failed++;
        }
    }
    if (failed)
        fail_msg("%d strip cases failed", failed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize_table),
        cmocka_unit_test(test_normalize_idempotent),
        cmocka_unit_test(test_length_limits),
        cmocka_unit_test(test_output_buffer_exact),
        cmocka_unit_test(test_normalize_domain_table),
        cmocka_unit_test(test_normalize_domain_lengths),
        cmocka_unit_test(test_is_domain_key),
        cmocka_unit_test(test_domain_of),
        cmocka_unit_test(test_strip_brackets),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
