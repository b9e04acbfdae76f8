/*
 * fuzz_addr.c - libFuzzer target for policy/addr.c.
 *
 * Input: one byte choosing the recipient delimiter set, then the raw
 * address (up to the first NUL). Properties: a normalized key is at most
 * ADDR_MAX bytes, without ASCII upper case or control bytes, with one '@'
 * and an ASCII domain (A-labels), and normalizes to itself (case folding is
 * idempotent); its domain is a valid domain rule; addr_split_extension
 * cuts at a delimiter of the set and KEY is BARE's local part, the
 * extension and the domain again; a normalized domain rule normalizes to
 * itself; addr_strip_brackets never writes more than it is given.
 */
#include <ctype.h>

#include "addr.h"
#include "fuzz.h"

/* Delimiter sets the config accepts (punctuation other than '@'). */
static const char *const delimiter_sets[] = {
    "", "+", "+-", ".", "-+._=", "\"", "<>", "!#$%&'*+-/=?^_`{|}~.",
};
#define NSETS (sizeof(delimiter_sets) / sizeof(delimiter_sets[0]))

/* check_split - the properties of KEY's split with DELIMS. */
static void check_split(const char *key, const char *delims)
{
    char bare[ADDR_BUFSIZE], joined[2 * ADDR_BUFSIZE];
    const char *ext, *bare_at;
    size_t extlen;

    if (addr_split_extension(key, delims, bare, &ext, &extlen) == 0)
        return;
    FUZZ_CHECK(extlen > 0 && strchr(delims, *ext) != NULL && ext > key,
               "'%s' split at '%.*s' (delimiters '%s')", key, (int) extlen, ext, delims);
    bare_at = strrchr(bare, '@');
    FUZZ_CHECK(bare_at != NULL && bare_at > bare, "'%s' -> bare '%s'", key, bare);
    snprintf(joined, sizeof(joined), "%.*s%.*s%s", (int) (bare_at - bare), bare,
             (int) extlen, ext, bare_at);
    FUZZ_CHECK(strcmp(joined, key) == 0, "'%s' -> '%s' + '%.*s'", key, bare, (int) extlen,
               ext);
}

/* check_key - the properties of a key KEY. */
static void check_key(const char *raw, const char *delims, const char *key)
{
    char again[ADDR_BUFSIZE], dom[ADDR_BUFSIZE];
    const char *why = NULL, *at;
    size_t len = strlen(key);

    FUZZ_CHECK(len > 0 && len <= ADDR_MAX, "'%s' -> key of %zu bytes", raw, len);
    for (const char *p = key; *p; p++)
        FUZZ_CHECK(!isupper((unsigned char) *p) && (unsigned char) *p > ' '
                   && (unsigned char) *p != 0x7f, "'%s' -> '%s' has byte 0x%02x", raw, key,
                   (unsigned char) *p);
    at = strrchr(key, '@');
    FUZZ_CHECK(at != NULL && at != key, "'%s' -> '%s' is not local@domain", raw, key);
    for (const char *p = at; *p; p++)
        FUZZ_CHECK((unsigned char) *p < 0x80, "'%s' -> '%s': 8-bit domain", raw, key);
    FUZZ_CHECK(addr_normalize(key, again, &why) == 0,
               "'%s' -> '%s' does not normalize again: %s", raw, key, why);
    FUZZ_CHECK(strcmp(again, key) == 0, "'%s' -> '%s' -> '%s'", raw, key, again);
    FUZZ_CHECK(addr_normalize_domain(at, dom, &why) == 0 && strcmp(dom, at) == 0,
               "'%s' -> '%s': domain '%s' is not a rule key", raw, key, at);
    FUZZ_CHECK(strcmp(addr_domain(key), at + 1) == 0, "addr_domain('%s')", key);
    check_split(key, delims);
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

    if (addr_normalize(raw, out, &why) == 0)
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
