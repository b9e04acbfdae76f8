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
    const char *want;
    const char *why;
};

static const struct norm_case norm_cases[] = {
    /* brackets and blanks */
    {"<adam.barr@corp.example>", "adam.barr@corp.example", NULL},
    {"adam.barr@corp.example", "adam.barr@corp.example", NULL},
    {"  <adam@corp.example>  ", "adam@corp.example", NULL},
    {" adam@corp.example ", "adam@corp.example", NULL},
    {"<adam@corp.example", NULL, "unbalanced"},
    {"adam@corp.example>", NULL, "unbalanced"},
    {"<<adam@corp.example>", NULL, "unbalanced"},
    {"<adam@corp.example>>", NULL, "unbalanced"},
    {"<", NULL, "unbalanced"},
    {"a<dam@corp.example", NULL, "unbalanced"},
    {"<>", NULL, "empty"},
    {"", NULL, "empty"},
    {"   ", NULL, "empty"},
    /* the local part is kept whole: an extension is no part of the key's
     * making (issue 10: "jean-luc" must not become "jean") */
    {"<Adam.Barr+News@Corp.Example>", "adam.barr+news@corp.example", NULL},
    {"adam+a+b@corp.example", "adam+a+b@corp.example", NULL},
    {"adam+@corp.example", "adam+@corp.example", NULL},
    {"jean-luc@corp.example", "jean-luc@corp.example", NULL},
    {"+adam@corp.example", "+adam@corp.example", NULL},
    {"adam.+news@corp.example", "adam.+news@corp.example", NULL},
    /* case */
    {"ADAM@CORP.EXAMPLE", "adam@corp.example", NULL},
    {"Adam.Barr@Corp.Example", "adam.barr@corp.example", NULL},
    /* quoting and escapes mean what they mean to the MTA */
    {"\"a.b\"@corp.example", "a.b@corp.example", NULL},
    {"<\"Adam\"@Corp.Example>", "adam@corp.example", NULL},
    {"<\"car\\ol\"@corp.example>", "carol@corp.example", NULL},
    {"<car\\ol@corp.example>", "carol@corp.example", NULL},
    {"\"a b\"@corp.example", NULL, "space"},
    {"\"a\\\"b\"@corp.example", NULL, "invalid character"},
    {"\"a\"b\"@corp.example", NULL, "quote"},
    {"\"ab@corp.example", NULL, "quote"},
    {"ab\\@corp.example", NULL, "backslash"},
    {"\"\"@corp.example", NULL, "empty local"},
    {"a\"b@corp.example", NULL, "invalid character"},
    /* a source route is accepted and ignored (RFC 5321 4.1.2) */
    {"<@relay.example:carol@corp.example>", "carol@corp.example", NULL},
    {"<@a.example,@b.example:Carol@Corp.Example>", "carol@corp.example", NULL},
    /* a trailing dot: the same domain, fully qualified */
    {"<carol@corp.example.>", "carol@corp.example", NULL},
    {"adam@corp.example..", NULL, "empty label"},
    {"adam@.", NULL, "empty label"},
    /* forms only the MTA can resolve: no key of our own making */
    {"<carol%corp.example@mx.local>", "carol%corp.example@mx.local", NULL},
    {"<\"carol@corp.example\"@mx.local>", NULL, "invalid character"},
    /* control characters, spaces, 8-bit */
    {"ad\001am@corp.example", NULL, "control"},
    {"adam@corp.example\177", NULL, "control"},
    {"ad\177am@corp.example", NULL, "control"},
    {"adam\t@corp.example", NULL, "control"},
    {"\tadam@corp.example", NULL, "control"},
    {"adam@corp.example\r\n", NULL, "control"},
    {"adam@corp.example\n", NULL, "control"},
    {"ad am@corp.example", NULL, "space"},
    {"adam@corp example", NULL, "space"},
    {"< adam@corp.example>", NULL, "space"},
    /* SMTPUTF8: a UTF-8 local part is case-folded, a U-label domain becomes
     * its A-label, so both spellings are one key */
    {"J\303\274rgen@dom.example", "j\303\274rgen@dom.example", NULL},
    {"J\303\234RGEN@DOM.EXAMPLE", "j\303\274rgen@dom.example", NULL},
    {"STRA\303\237E@dom.example", "strasse@dom.example", NULL},
    {"adam@d\303\266main.example", "adam@xn--dmain-jua.example", NULL},
    {"adam@D\303\226MAIN.example", "adam@xn--dmain-jua.example", NULL},
    {"adam@XN--DMAIN-JUA.example", "adam@xn--dmain-jua.example", NULL},
    {"\303\244dam@d\303\266main.example", "\303\244dam@xn--dmain-jua.example", NULL},
    {"\303x@corp.example", NULL, "UTF-8"},
    {"ab\303@corp.example", NULL, "UTF-8"},
    {"adam@d\303.example", NULL, "UTF-8"},
    {"a\302\205b@corp.example", NULL, "control"},
    {"\357\273\277adam@corp.example", NULL, "invisible"},     /* U+FEFF */
    {"ad\342\200\213am@corp.example", NULL, "invisible"},     /* U+200B */
    {"ad\302\240am@corp.example", NULL, "space"},              /* U+00A0 */
    {"adam@\342\230\203.example", NULL, "IDNA"},
    /* structure */
    {"adam", NULL, "missing @"},
    {"adam.corp.example", NULL, "missing @"},
    {"@corp.example", NULL, "empty local"},
    {"adam@", NULL, "empty domain"},
    {"adam@x@corp.example", NULL, "invalid character in local"},
    {"adam@[1.2.3.4]", NULL, "literal"},
    {"adam@corp_x.example", NULL, "invalid character in domain"},
    {"a(b)@corp.example", NULL, "invalid character in local"},
    {"a,b@corp.example", NULL, "invalid character in local"},
    {"o'brien@corp.example", "o'brien@corp.example", NULL},
    {"a!#$%&*/=?^_`{|}~b@corp.example", "a!#$%&*/=?^_`{|}~b@corp.example", NULL},
    /* dots */
    {"a..b@corp.example", NULL, "consecutive dots"},
    {".adam@corp.example", NULL, "dot"},
    {"adam.@corp.example", NULL, "dot"},
    {"adam@corp..example", NULL, "empty label"},
    {"adam@.corp.example", NULL, "empty label"},
    {"adam@localhost", "adam@localhost", NULL},
    /* hyphens */
    {"adam@-corp.example", NULL, "starts with a hyphen"},
    {"adam@corp.-example", NULL, "starts with a hyphen"},
    {"adam@corp-.example", NULL, "ends with a hyphen"},
    {"adam@corp.example-", NULL, "ends with a hyphen"},
    {"adam@co-rp.ex--ample", "adam@co-rp.ex--ample", NULL},
    {"adam@123.example", "adam@123.example", NULL},
};

/* check_norm - run one case; print and return 1 on a mismatch. */
static int check_norm(const char *label, const char *raw, const char *want,
                      const char *why)
{
    char out[ADDR_BUFSIZE];
    const char *err = NULL;
    int rc;

    memset(out, 'X', sizeof(out));
    out[ADDR_BUFSIZE - 1] = '\0';
    rc = addr_normalize(raw, out, &err);
    if (want != NULL) {
        if (rc != 0) {
            print_error("%s: addr_normalize('%s') failed: %s, want '%s'\n", label,
                        raw, err ? err : "(null)", want);
            return 1;
        }
        if (strcmp(out, want) != 0) {
            print_error("%s: addr_normalize('%s'): got '%s', want '%s'\n", label, raw,
                        out, want);
            return 1;
        }
        return 0;
    }
    if (rc != -1) {
        print_error("%s: addr_normalize('%s'): got rc %d '%s', want rejection (%s)\n",
                    label, raw, rc, rc == 0 ? out : "", why);
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
        failed += check_norm(label, norm_cases[i].raw, norm_cases[i].want,
                             norm_cases[i].why);
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
        failed += check_norm("idempotent", norm_cases[i].want, norm_cases[i].want, NULL);
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
    failed += check_norm("local 64", raw, raw, NULL);
    snprintf(raw, sizeof(raw), "%s@corp.example", local65);
    failed += check_norm("local 65", raw, NULL, "64");

    snprintf(raw, sizeof(raw), "a@%s", dom255);
    failed += check_norm("domain 255", raw, raw, NULL);
    snprintf(raw, sizeof(raw), "a@%s", dom256);
    failed += check_norm("domain 256", raw, NULL, "255");

    snprintf(raw, sizeof(raw), "a@%s.example", label63);
    failed += check_norm("label 63", raw, raw, NULL);
    snprintf(raw, sizeof(raw), "a@%s.example", label64);
    failed += check_norm("label 64", raw, NULL, "63");

    /* 64 + 1 + 255 = 320: the longest key, also inside brackets. */
    snprintf(want, sizeof(want), "%s@%s", local64, dom255);
    assert_int_equal(strlen(want), ADDR_MAX);
    failed += check_norm("total 320", want, want, NULL);
    snprintf(raw, sizeof(raw), "<%s>", want);
    failed += check_norm("total 320 bracketed", raw, want, NULL);

    /* Over 320 bytes: a quoted 64-byte local part and a 255-byte domain. */
    snprintf(raw, sizeof(raw), "\"%s\"@%s", local64, dom255);
    failed += check_norm("total 322 quoted", raw, NULL, "320");
    snprintf(raw, sizeof(raw), "%s%s@%s", local65, local65, dom255);
    failed += check_norm("total 386", raw, NULL, "320");
    snprintf(raw, sizeof(raw), "<%s%s@%s>", local65, local65, dom255);
    failed += check_norm("total 388 bracketed", raw, NULL, "320");
    repeat(raw, 'a', 900);
    failed += check_norm("900 bytes, no @", raw, NULL, "320");

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
    assert_int_equal(addr_normalize(raw, out, &err), 0);
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
    {"@corp example", NULL, "space"},
    {"@corp\001.example", NULL, "control"},
    {"@corp.example\n", NULL, "control"},
    {"@corp_x.example", NULL, "invalid character"},
    {"@corp.example.", "@corp.example", NULL},
    {"@D\303\266main.example", "@xn--dmain-jua.example", NULL},
    {"@xn--dmain-jua.example", "@xn--dmain-jua.example", NULL},
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

/* One addr_split_extension case: BARE and EXT, or NULL for "no split". */
struct split_case {
    const char *key;
    const char *delimiters;
    const char *bare;
    const char *ext;
};

/* Postfix's split_addr.c and strip_addr.c, case by case. */
static const struct split_case split_cases[] = {
    {"adam+news@corp.example", "+", "adam@corp.example", "+news"},
    {"adam+a+b@corp.example", "+", "adam@corp.example", "+a+b"},
    {"adam+@corp.example", "+", "adam@corp.example", "+"},
    {"adam-news@corp.example", "+", NULL, NULL},
    {"jean-luc@corp.example", "+-", "jean@corp.example", "-luc"},
    {"adam-x+y@corp.example", "+-", "adam@corp.example", "-x+y"},
    {"adam.b+x-y@corp.example", "-+", "adam.b@corp.example", "+x-y"},
    /* the first delimiter of any kind, not the first kind listed */
    {"a+b-c@corp.example", "-+", "a@corp.example", "+b-c"},
    /* never an empty local part */
    {"+adam@corp.example", "+", NULL, NULL},
    {"-adam-x@corp.example", "+-", NULL, NULL},
    {"+@corp.example", "+", NULL, NULL},
    /* no delimiters configured */
    {"adam+news@corp.example", "", NULL, NULL},
    /* a delimiter in the domain is not an extension */
    {"adam@a+b.example", "+", NULL, NULL},
    /* exempt local parts */
    {"postmaster+x@corp.example", "+", "postmaster@corp.example", "+x"},
    {"mailer-daemon@corp.example", "-", NULL, NULL},
    {"owner-list@corp.example", "-", NULL, NULL},
    {"list-request@corp.example", "+-", NULL, NULL},
    {"owner-list+x@corp.example", "+", "owner-list@corp.example", "+x"},
    {"adam.+news@corp.example", "+", "adam.@corp.example", "+news"},
    /* UTF-8 local parts split on the ASCII delimiter */
    {"j\303\274rgen+x@dom.example", "+", "j\303\274rgen@dom.example", "+x"},
};

/* test_split_extension - every row of split_cases. */
static void test_split_extension(void **state)
{
    char bare[ADDR_BUFSIZE];
    const char *ext;
    size_t extlen;
    int failed = 0;

    (void) state;
    for (size_t i = 0; i < NELEM(split_cases); i++) {
        const struct split_case *c = &split_cases[i];
        int rc = addr_split_extension(c->key, c->delimiters, bare, &ext, &extlen);

        if (c->bare == NULL && rc != 0) {
            print_error("split('%s', '%s'): got '%s', want no split\n", c->key,
                        c->delimiters, bare);
            failed++;
        } else if (c->bare != NULL
                   && (rc != 1 || strcmp(bare, c->bare) != 0 || extlen != strlen(c->ext)
                       || strncmp(ext, c->ext, extlen) != 0)) {
            print_error("split('%s', '%s'): got rc %d '%s' ext '%.*s', want '%s' '%s'\n",
                        c->key, c->delimiters, rc, rc ? bare : "", rc ? (int) extlen : 0,
                        rc ? ext : "", c->bare, c->ext);
            failed++;
        }
    }
    if (failed)
        fail_msg("%d of %zu split cases failed", failed, NELEM(split_cases));
}

/* test_utf8_fold_length - folding may grow a local part past 64 bytes. */
static void test_utf8_fold_length(void **state)
{
    char raw[400], out[ADDR_BUFSIZE];
    const char *err = NULL;
    size_t n = 0;

    (void) state;
    /* 32 x "\303\237" (sharp s, 2 bytes) = 64 bytes; folded "ss" x 32 = 64. */
    for (int i = 0; i < 32; i++) {
        raw[n++] = '\303';
        raw[n++] = '\237';
    }
    strcpy(raw + n, "@dom.example");
    assert_int_equal(addr_normalize(raw, out, &err), 0);
    assert_int_equal(strlen(out), 64 + strlen("@dom.example"));
    /* 31 x sharp s + "\304\260" (capital I with dot, folds to 3 bytes). */
    n = 62;
    raw[n++] = '\304';
    raw[n++] = '\260';
    strcpy(raw + n, "@dom.example");
    assert_int_equal(addr_normalize(raw, out, &err), -1);
    assert_non_null(strstr(err, "64"));
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
        cmocka_unit_test(test_split_extension),
        cmocka_unit_test(test_utf8_fold_length),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
