/*
 * fuzz_trace.c - libFuzzer target for the loop guard's trace header
 * (policy/trace.c).
 *
 * Input: lines. The first is the Message-ID, the second a header value to
 * verify, the rest (up to MAX_KEYS) routed keys. Properties: verifying
 * never crashes and a header that does not verify adds nothing to the set;
 * a header built from the keys verifies and covers every key (all of them
 * through "*" above the cap); the built header with one byte changed (the
 * first input byte picks which) does not verify.
 */
#include "fuzz.h"
#include "trace.h"

#define INSTANCE "mx1.fuzz.example"
#define MAX_KEYS 40

/* next_line - cut S at its first newline; the rest, or NULL. */
static char *next_line(char *s)
{
    char *nl = s ? strchr(s, '\n') : NULL;

    if (nl == NULL)
        return NULL;
    *nl = '\0';
    return nl + 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct trace_secret secret;
    struct trace_set set;
    const char *keys[MAX_KEYS];
    char *text, *msgid, *value, *rest, built[TRACE_VALUE_MAX], err[TRACE_ERR_MAX];
    size_t nkeys = 0, distinct = 0;
    enum trace_verdict v;

    if (size < 1)
        return 0;
    if (secret.ts_len == 0) {
        secret.ts_len = TRACE_SECRET_MIN;
        for (size_t i = 0; i < secret.ts_len; i++)
            secret.ts_bytes[i] = (unsigned char) (i * 37 + 11);
    }
    text = fuzz_strndup(data + 1, size - 1);
    msgid = text;
    value = next_line(msgid);
    rest = next_line(value);
    trace_set_init(&set);
    if (value != NULL) {
        v = trace_parse(&secret, INSTANCE, msgid, value, &set);
        FUZZ_CHECK(v == TRACE_OK || v == TRACE_BAD || v == TRACE_OTHER, "verdict %d", (int) v);
        FUZZ_CHECK(v == TRACE_OK || (set.tset_count == 0 && !set.tset_all),
                   "a header that did not verify added tags");
        FUZZ_CHECK(set.tset_count <= TRACE_TAGS_MAX, "%zu tags from one header", set.tset_count);
    }
    while (rest != NULL && nkeys < MAX_KEYS) {
        keys[nkeys] = rest;
        rest = next_line(rest);
        nkeys++;
    }
    for (size_t i = 0; i < nkeys; i++) {
        size_t j;

        for (j = 0; j < i && strcmp(keys[i], keys[j]) != 0; j++)
            ;
        distinct += j == i;
    }
    if (nkeys > 0) {
        struct trace_check tc = {&secret, INSTANCE, msgid, &set};
        size_t len, pos;

        FUZZ_CHECK(trace_build(&secret, INSTANCE, msgid, keys, nkeys, built, sizeof(built),
                               err) == 0, "build failed: %s", err);
        trace_set_init(&set);
        FUZZ_CHECK(trace_parse(&secret, INSTANCE, msgid, built, &set) == TRACE_OK,
                   "built '%s' does not verify", built);
        FUZZ_CHECK(set.tset_all == (distinct > TRACE_TAGS_MAX), "'%s': whole-message tag "
                   "for %zu keys", built, distinct);
        for (size_t i = 0; i < nkeys; i++)
            FUZZ_CHECK(trace_covers(&tc, keys[i]), "'%s' does not cover key '%s'", built, keys[i]);
        /* One byte changed: a different instance, form, tag or mac. */
        len = strlen(built);
        pos = data[0] % len;
        built[pos] ^= 1;
        trace_set_init(&set);
        FUZZ_CHECK(trace_parse(&secret, INSTANCE, msgid, built, &set) != TRACE_OK,
                   "'%s' (byte %zu changed) still verifies", built, pos);
    }
    free(text);
    return 0;
}
