/*
 * test_trace.c - the loop guard's trace header (policy/trace.c): build and
 * verify round trips, forgeries and near misses refused, the cap, broken
 * values refused cleanly, and the secret file's checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trace.h"

#define INSTANCE "mx1.corp.example"
#define MSGID "<20261201.abc@example.net>"
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* secret_of - a fixed test secret; SEED makes a different one. */
static void secret_of(struct trace_secret *s, unsigned char seed)
{
    s->ts_len = TRACE_SECRET_MIN;
    for (size_t i = 0; i < s->ts_len; i++)
        s->ts_bytes[i] = (unsigned char) (seed + 7 * i);
}

/* build - trace_build or fail. */
static void build(const struct trace_secret *s, const char *instance, const char *msgid,
                  const char *const *keys, size_t n, char out[TRACE_VALUE_MAX])
{
    char err[TRACE_ERR_MAX];

    if (trace_build(s, instance, msgid, keys, n, out, TRACE_VALUE_MAX, err) < 0)
        fail_msg("trace_build: %s", err);
}

/* covers - whether KEY is covered after parsing VALUE (which must verify). */
static int covers(const struct trace_secret *s, const char *msgid, const struct trace_set *set,
                  const char *key)
{
    struct trace_check tc = {s, INSTANCE, msgid, set};

    return trace_covers(&tc, key);
}

static void test_round_trip(void **state)
{
    static const char *const keys[] = {"adam.barr@corp.example", "bob@corp.example",
                                       "adam.barr@corp.example"};
    struct trace_secret s;
    struct trace_set set;
    char value[TRACE_VALUE_MAX];
    const char *r;
    (void) state;

    secret_of(&s, 1);
    build(&s, INSTANCE, MSGID, keys, NELEM(keys), value);
    /* "INSTANCE; r=TAG,TAG; mac=MAC": the duplicate named once. */
    if (strncmp(value, INSTANCE "; r=", strlen(INSTANCE) + 4) != 0)
        fail_msg("got '%s', want it to start with '%s; r='", value, INSTANCE);
    r = value + strlen(INSTANCE) + 4;
    assert_int_equal(strcspn(r, ";"), 2 * TRACE_TAG_CHARS + 1);
    assert_string_equal(r + 2 * TRACE_TAG_CHARS + 1 + 2 + 4 + TRACE_MAC_CHARS, "");
    trace_set_init(&set);
    assert_int_equal(trace_parse(&s, INSTANCE, MSGID, value, &set), TRACE_OK);
    assert_int_equal(set.tset_count, 2);
    assert_int_equal(set.tset_all, 0);
    assert_true(covers(&s, MSGID, &set, "adam.barr@corp.example"));
    assert_true(covers(&s, MSGID, &set, "bob@corp.example"));
    assert_false(covers(&s, MSGID, &set, "carol@corp.example"));
    /* Deterministic: the same inputs give the same header. */
    {
        char again[TRACE_VALUE_MAX];

        build(&s, INSTANCE, MSGID, keys, NELEM(keys), again);
        assert_string_equal(value, again);
    }
}

static void test_empty_message_id(void **state)
{
    static const char *const keys[] = {"adam.barr@corp.example"};
    struct trace_secret s;
    struct trace_set set;
    char value[TRACE_VALUE_MAX];
    (void) state;

    secret_of(&s, 1);
    build(&s, INSTANCE, "", keys, 1, value);
    trace_set_init(&set);
    assert_int_equal(trace_parse(&s, INSTANCE, "", value, &set), TRACE_OK);
    assert_true(covers(&s, "", &set, "adam.barr@corp.example"));
    /* The message got a Message-ID since: the header no longer verifies. */
    trace_set_init(&set);
    assert_int_equal(trace_parse(&s, INSTANCE, MSGID, value, &set), TRACE_BAD);
}

/* flip - VALUE with the character at POS changed to another base64url one. */
static void flip(char *value, size_t pos)
{
    value[pos] = value[pos] == 'A' ? 'B' : 'A';
}

static void test_forged(void **state)
{
    static const char *const keys[] = {"adam.barr@corp.example"};
    struct trace_secret s, other;
    struct trace_set set;
    char value[TRACE_VALUE_MAX], forged[TRACE_VALUE_MAX];
    size_t tagpos = strlen(INSTANCE "; r=");
    (void) state;

    secret_of(&s, 1);
    secret_of(&other, 2);
    build(&s, INSTANCE, MSGID, keys, 1, value);
    /* The constant header of the old guard, or a forger without the secret. */
    trace_set_init(&set);
    assert_int_equal(trace_parse(&s, INSTANCE, MSGID, INSTANCE, &set), TRACE_BAD);
    assert_int_equal(trace_parse(&s, INSTANCE, MSGID, "  " INSTANCE " \r\n", &set), TRACE_BAD);
    build(&other, INSTANCE, MSGID, keys, 1, forged);
    assert_int_equal(trace_parse(&s, INSTANCE, MSGID, forged, &set), TRACE_BAD);
    /* One tag character changed: the mac no longer covers the list. */
    strcpy(forged, value);
    flip(forged, tagpos);
    assert_int_equal(trace_parse(&s, INSTANCE, MSGID, forged, &set), TRACE_BAD);
    /* One mac character changed. */
    strcpy(forged, value);
    flip(forged, strlen(forged) - 1);
    assert_int_equal(trace_parse(&s, INSTANCE, MSGID, forged, &set), TRACE_BAD);
    /* A real list, its mac swapped for the whole-message tag. */
    snprintf(forged, sizeof(forged), "%s; r=*; mac=%s", INSTANCE, strstr(value, "mac=") + 4);
    assert_int_equal(trace_parse(&s, INSTANCE, MSGID, forged, &set), TRACE_BAD);
    assert_int_equal(set.tset_count, 0);
    assert_int_equal(set.tset_all, 0);
    assert_false(covers(&s, MSGID, &set, "adam.barr@corp.example"));
}

static void test_other_key_message_instance(void **state)
{
    static const char *const keys[] = {"adam.barr@corp.example"};
    struct trace_secret s;
    struct trace_set set;
    char value[TRACE_VALUE_MAX], moved[TRACE_VALUE_MAX];
    (void) state;

    secret_of(&s, 1);
    build(&s, INSTANCE, MSGID, keys, 1, value);
    /* Another recipient of the same message is not covered. */
    trace_set_init(&set);
    assert_int_equal(trace_parse(&s, INSTANCE, MSGID, value, &set), TRACE_OK);
    assert_false(covers(&s, MSGID, &set, "adam.barr+x@corp.example"));
    assert_false(covers(&s, MSGID, &set, "Adam.Barr@corp.example"));
    /* The header copied onto another message does not verify there. */
    trace_set_init(&set);
    assert_int_equal(trace_parse(&s, INSTANCE, "<other@example.net>", value, &set), TRACE_BAD);
    /* Another instance's header is not ours: neither good nor bad. */
    assert_int_equal(trace_parse(&s, "mx2.corp.example", MSGID, value, &set), TRACE_OTHER);
    assert_int_equal(trace_parse(&s, "mx1", MSGID, value, &set), TRACE_OTHER);
    /* Renamed to another instance by hand: the mac covers the name. */
    snprintf(moved, sizeof(moved), "mx2.corp.example%s", value + strlen(INSTANCE));
    assert_int_equal(trace_parse(&s, "mx2.corp.example", MSGID, moved, &set), TRACE_BAD);
    /* A tag made for another message, with a valid mac for this one, is no use. */
    {
        char elsewhere[TRACE_VALUE_MAX];
        struct trace_check tc = {&s, INSTANCE, MSGID, &set};

        build(&s, INSTANCE, "<other@example.net>", keys, 1, elsewhere);
        trace_set_init(&set);
        assert_int_equal(trace_parse(&s, INSTANCE, "<other@example.net>", elsewhere, &set),
                         TRACE_OK);
        assert_false(trace_covers(&tc, "adam.barr@corp.example"));
    }
}

static void test_cap(void **state)
{
    char names[TRACE_TAGS_MAX + 1][64], value[TRACE_VALUE_MAX];
    const char *keys[TRACE_TAGS_MAX + 1];
    struct trace_secret s;
    struct trace_set set;
    (void) state;

    secret_of(&s, 1);
    for (size_t i = 0; i < NELEM(keys); i++) {
        snprintf(names[i], sizeof(names[i]), "user%zu@corp.example", i);
        keys[i] = names[i];
    }
    /* TRACE_TAGS_MAX recipients: named one by one. */
    build(&s, INSTANCE, MSGID, keys, TRACE_TAGS_MAX, value);
    assert_null(strstr(value, "r=*"));
    trace_set_init(&set);
    assert_int_equal(trace_parse(&s, INSTANCE, MSGID, value, &set), TRACE_OK);
    assert_int_equal(set.tset_count, TRACE_TAGS_MAX);
    assert_false(covers(&s, MSGID, &set, "someone@corp.example"));
    /* One more: the whole-message tag, which covers everyone. */
    build(&s, INSTANCE, MSGID, keys, TRACE_TAGS_MAX + 1, value);
    assert_non_null(strstr(value, "; r=*; mac="));
    trace_set_init(&set);
    assert_int_equal(trace_parse(&s, INSTANCE, MSGID, value, &set), TRACE_OK);
    assert_int_equal(set.tset_all, 1);
    assert_true(covers(&s, MSGID, &set, "someone@corp.example"));
}

static void test_folded(void **state)
{
    static const char *const keys[] = {"a@corp.example", "b@corp.example"};
    struct trace_secret s;
    struct trace_set set;
    char value[TRACE_VALUE_MAX], folded[TRACE_VALUE_MAX + 16];
    char *comma;
    (void) state;

    secret_of(&s, 1);
    build(&s, INSTANCE, MSGID, keys, 2, value);
    /* An MTA may fold the long line between tags and before the mac. */
    comma = strchr(value, ',');
    snprintf(folded, sizeof(folded), " %.*s,\r\n\t%s", (int) (comma - value), value, comma + 1);
    trace_set_init(&set);
    assert_int_equal(trace_parse(&s, INSTANCE, MSGID, folded, &set), TRACE_OK);
    assert_true(covers(&s, MSGID, &set, "b@corp.example"));
}

static void test_malformed(void **state)
{
    static const char *const keys[] = {"adam.barr@corp.example"};
    struct trace_secret s, none = {.ts_len = 0};
    struct trace_set set;
    char value[TRACE_VALUE_MAX], bad[2 * TRACE_VALUE_MAX];
    char tag[TRACE_TAG_CHARS + 1], mac[TRACE_MAC_CHARS + 1];
    const char *cases[16];
    size_t n = 0;
    (void) state;

    secret_of(&s, 1);
    build(&s, INSTANCE, MSGID, keys, 1, value);
    memcpy(tag, value + strlen(INSTANCE "; r="), TRACE_TAG_CHARS);
    tag[TRACE_TAG_CHARS] = '\0';
    snprintf(mac, sizeof(mac), "%s", strstr(value, "mac=") + 4);
    cases[n++] = INSTANCE ";";
    cases[n++] = INSTANCE "; r=";
    cases[n++] = INSTANCE "; r=; mac=";
    cases[n++] = INSTANCE "; mac=AAAAAAAAAAAAAAAAAAAAAA";
    cases[n++] = INSTANCE "; r=*";
    cases[n++] = INSTANCE "; r=*,*; mac=AAAAAAAAAAAAAAAAAAAAAA";
    cases[n++] = INSTANCE "; r=AAAAAAAAAA; mac=AAAAAAAAAAAAAAAAAAAAAA";     /* short tag */
    cases[n++] = INSTANCE "; r=AAAAAAAAAAA,; mac=AAAAAAAAAAAAAAAAAAAAAA";
    cases[n++] = INSTANCE "; r=AAAAAAAAAAA; mac=AAAA";
    cases[n++] = INSTANCE "; r=AAAAAAAAAAA; mac=AAAAAAAAAAAAAAAAAAAAAA; x=1";
    cases[n++] = INSTANCE "; r=AAAAAAAAAA=; mac=AAAAAAAAAAAAAAAAAAAAAA";
    cases[n++] = INSTANCE "; R=AAAAAAAAAAA; MAC=AAAAAAAAAAAAAAAAAAAAAA";
    for (size_t i = 0; i < n; i++) {
        trace_set_init(&set);
        if (trace_parse(&s, INSTANCE, MSGID, cases[i], &set) != TRACE_BAD)
            fail_msg("case '%s': got not TRACE_BAD", cases[i]);
        assert_int_equal(set.tset_count + (size_t) set.tset_all, 0);
    }
    /* The real tag and mac, with junk after or between. */
    snprintf(bad, sizeof(bad), "%s; r=%s; mac=%s x", INSTANCE, tag, mac);
    assert_int_equal(trace_parse(&s, INSTANCE, MSGID, bad, &set), TRACE_BAD);
    snprintf(bad, sizeof(bad), "%s; r=%s ; ; mac=%s", INSTANCE, tag, mac);
    assert_int_equal(trace_parse(&s, INSTANCE, MSGID, bad, &set), TRACE_BAD);
    /* ... and exactly them: good, so the two above failed for the junk alone. */
    snprintf(bad, sizeof(bad), "%s; r=%s; mac=%s", INSTANCE, tag, mac);
    assert_int_equal(trace_parse(&s, INSTANCE, MSGID, bad, &set), TRACE_OK);
    /* Too many tags for one header. */
    {
        size_t used = (size_t) snprintf(bad, sizeof(bad), "%s; r=", INSTANCE);

        for (int i = 0; i <= TRACE_TAGS_MAX; i++)
            used += (size_t) snprintf(bad + used, sizeof(bad) - used, "%s%s", i ? "," : "", tag);
        snprintf(bad + used, sizeof(bad) - used, "; mac=%s", mac);
        trace_set_init(&set);
        assert_int_equal(trace_parse(&s, INSTANCE, MSGID, bad, &set), TRACE_BAD);
    }
    /* A value far too long. */
    memset(bad, ' ', sizeof(bad) - 1);
    bad[sizeof(bad) - 1] = '\0';
    memcpy(bad, INSTANCE ";", strlen(INSTANCE) + 1);
    assert_int_equal(trace_parse(&s, INSTANCE, MSGID, bad, &set), TRACE_BAD);
    /* Empty and blank values are nobody's. */
    assert_int_equal(trace_parse(&s, INSTANCE, MSGID, "", &set), TRACE_OTHER);
    assert_int_equal(trace_parse(&s, INSTANCE, MSGID, "  ", &set), TRACE_OTHER);
    /* Without a secret nothing verifies, and nothing is built. */
    assert_int_equal(trace_parse(&none, INSTANCE, MSGID, value, &set), TRACE_BAD);
    {
        char err[TRACE_ERR_MAX];

        assert_int_equal(trace_build(&none, INSTANCE, MSGID, keys, 1, bad, sizeof(bad), err), -1);
        assert_int_equal(trace_build(&s, INSTANCE, MSGID, keys, 0, bad, sizeof(bad), err), -1);
        assert_int_equal(trace_build(&s, INSTANCE, MSGID, keys, 1, bad, 20, err), -1);
    }
}

static void test_is_ours(void **state)
{
    (void) state;
    assert_true(trace_is_ours(INSTANCE, INSTANCE));
    assert_true(trace_is_ours(INSTANCE, " " INSTANCE " ; r=x"));
    assert_false(trace_is_ours(INSTANCE, INSTANCE "x; r=x"));
    assert_false(trace_is_ours(INSTANCE, "mx1"));
    assert_false(trace_is_ours(INSTANCE, ""));
}

/* ---- the secret file ----------------------------------------------------- */

/* write_file - PATH with LEN bytes, mode MODE. */
static void write_file(const char *path, size_t len, mode_t mode)
{
    unsigned char buf[2 * TRACE_SECRET_MAX];
    int fd;

    memset(buf, 0x5a, sizeof(buf));
    unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, len), (ssize_t) len);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void test_secret_file(void **state)
{
    char dir[] = "/tmp/test_trace.XXXXXX", path[64], err[TRACE_ERR_MAX];
    struct trace_secret s, t;
    struct stat sb;
    (void) state;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/trace.key", dir);
    /* Missing: 1, for the caller to decide. */
    assert_int_equal(trace_secret_load(path, &s, err), 1);
    /* Created 0600 with TRACE_SECRET_MIN bytes, and loads. */
    assert_int_equal(trace_secret_create(path, err), 0);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0600);
    assert_int_equal(sb.st_size, TRACE_SECRET_MIN);
    assert_int_equal(trace_secret_load(path, &s, err), 0);
    assert_int_equal(s.ts_len, TRACE_SECRET_MIN);
    /* Never replaced. */
    assert_int_equal(trace_secret_create(path, err), 1);
    assert_int_equal(trace_secret_load(path, &t, err), 0);
    assert_memory_equal(s.ts_bytes, t.ts_bytes, s.ts_len);
    /* Two secrets are not the same bytes (getrandom). */
    unlink(path);
    assert_int_equal(trace_secret_create(path, err), 0);
    assert_int_equal(trace_secret_load(path, &t, err), 0);
    assert_memory_not_equal(s.ts_bytes, t.ts_bytes, s.ts_len);
    /* Too short, refused. */
    write_file(path, TRACE_SECRET_MIN - 1, 0600);
    assert_int_equal(trace_secret_load(path, &s, err), -1);
    assert_non_null(strstr(err, "31 bytes, at least 32"));
    assert_int_equal(s.ts_len, 0);
    write_file(path, 0, 0600);
    assert_int_equal(trace_secret_load(path, &s, err), -1);
    /* Readable (or writable) by others, refused. */
    write_file(path, TRACE_SECRET_MIN, 0644);
    assert_int_equal(trace_secret_load(path, &s, err), -1);
    assert_non_null(strstr(err, "mode 0644 gives others access"));
    write_file(path, TRACE_SECRET_MIN, 0602);
    assert_int_equal(trace_secret_load(path, &s, err), -1);
    /* Too long, refused; the longest allowed loads. */
    write_file(path, TRACE_SECRET_MAX + 1, 0600);
    assert_int_equal(trace_secret_load(path, &s, err), -1);
    write_file(path, TRACE_SECRET_MAX, 0600);
    assert_int_equal(trace_secret_load(path, &s, err), 0);
    assert_int_equal(s.ts_len, TRACE_SECRET_MAX);
    /* Not a regular file. */
    assert_int_equal(trace_secret_load(dir, &s, err), -1);
    unlink(path);
    /* Cannot create in a missing directory. */
    snprintf(path, sizeof(path), "%s/no/trace.key", dir);
    assert_int_equal(trace_secret_create(path, err), -1);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_empty_message_id),
        cmocka_unit_test(test_forged),
        cmocka_unit_test(test_other_key_message_instance),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_folded),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_is_ours),
        cmocka_unit_test(test_secret_file),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
