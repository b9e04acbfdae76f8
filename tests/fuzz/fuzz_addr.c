/*
 * fuzz_addr.c - libFuzzer target for policy/addr.c.
 *
 * Input: one byte choosing the recipient delimiter set, then the raw
 * address (up to the first NUL). Properties: a normalized key is at most
 * ADDR_MAX bytes, lower-case, with one '@', and normalizes to itself (with
 * the same delimiters and with none); its domain is a valid domain rule; a
 * normalized domain rule normalizes to itself; addr_strip_brackets never
 * writes more than it is given.
 */
#include <ctype.h>

#include "addr.h"
#include "fuzz.h"

/* Delimiter sets the config accepts (punctuation other than '@'). */
static const char *const delimiter_sets[] = {
    "", "+", "+-", ".", "-+._=", "\"", "<>", "!#$%&'*+-/=?^_`{|}~.",
};
#define NSETS (sizeof(delimiter_sets) / sizeof(delimiter_sets[0]))

/* check_key - the properties of a key KEY normalized with DELIMS. */
static void check_key(const char *raw, const char *delims, const char *key)
{
    char again[ADDR_BUFSIZE], dom[ADDR_BUFSIZE];
    const char *why = NULL, *at;
    size_t len = strlen(key);

    FUZZ_CHECK(len > 0 && len <= ADDR_MAX, "'%s' -> key of %zu bytes", raw, len);
    for (const char *p = key; *p; p++)
        FUZZ_CHECK(!isupper((unsigned char) *p) && (unsigned char) *p > ' '
                   && (unsigned char) *p < 0x7f, "'%s' -> '%s' has byte 0x%02x", raw, key,
                   (unsigned char) *p);
    at = strchr(key, '@');
    FUZZ_CHECK(at != NULL && at == strrchr(key, '@') && at != key,
               "'%s' -> '%s' is not local@domain", raw, key);
    FUZZ_CHECK(addr_normalize(key, delims, again, &why) == 0,
               "'%s' -> '%s' does not normalize again (delimiters '%s'): %s", raw, key,
               delims, why);
    FUZZ_CHECK(strcmp(again, key) == 0, "'%s' -> '%s' -> '%s' (delimiters '%s')", raw,
               key, again, delims);
    FUZZ_CHECK(addr_normalize(key, "", again, &why) == 0 && strcmp(again, key) == 0,
               "'%s' -> '%s' changes without delimiters", raw, key);
    FUZZ_CHECK(addr_normalize_domain(at, dom, &why) == 0 && strcmp(dom, at) == 0,
               "'%s' -> '%s': domain '%s' is not a rule key", raw, key, at);
    FUZZ_CHECK(strcmp(addr_domain(key), at + 1) == 0, "addr_domain('%s')", key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *out, dom[ADDR_BUFSIZE], again[ADDR_BUFSIZE], small[16];
    const char *delims, *why = NULL;
    char *raw;

    if (size < 1)
        return 0;
    delims = delimiter_sets[data[0] % NSETS];
    raw = fuzz_strndup(data + 1, size - 1);
    /* Exactly ADDR_BUFSIZE on the heap: ASan sees a write past its end. */
    out = malloc(ADDR_BUFSIZE);
    if (out == NULL)
        abort();

    if (addr_normalize(raw, delims, out, &why) == 0)
        check_key(raw, delims, out);
    else
        FUZZ_CHECK(why != NULL && *why != '\0', "'%s' rejected without a reason", raw);

    if (addr_normalize_domain(raw, dom, &why) == 0) {
        FUZZ_CHECK(dom[0] == '@' && addr_is_domain_key(dom), "'%s' -> '%s'", raw, dom);
        FUZZ_CHECK(addr_normalize_domain(dom, again, &why) == 0 && strcmp(dom, again) == 0,
                   "domain '%s' -> '%s' does not normalize to itself", raw, dom);
    }

    for (size_t outlen = 1; outlen <= sizeof(small); outlen += 5)
        if (addr_strip_brackets(raw, small, outlen) == 0)
            FUZZ_CHECK(strlen(small) < outlen, "strip '%s' into %zu", raw, outlen);
    free(out);
    free(raw);
    return 0;
}
