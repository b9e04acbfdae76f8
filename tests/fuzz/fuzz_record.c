/*
 * fuzz_record.c - libFuzzer target for the record codec (policy/record.c).
 *
 * Input: one byte whose low bit chooses a user or a domain record, then
 * the stored text (record_decode takes bytes and a length, NULs included).
 * Properties: whatever decodes encodes within RECORD_TEXT_MAX, and that
 * text decodes to the very same record (decode -> encode -> decode is
 * stable), and encodes to the same text again.
 */
#include "fuzz.h"
#include "record.h"

/* record_same - field by field: padding bytes are nobody's business. */
static int record_same(const struct record *a, const struct record *b)
{
    return a->kind == b->kind && a->state == b->state && a->mode == b->mode
        && strcmp(a->alias, b->alias) == 0 && strcmp(a->wave, b->wave) == 0
        && a->cutover == b->cutover && a->changed == b->changed
        && strcmp(a->actor, b->actor) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum record_kind kind;
    struct record rec, again;
    char text[RECORD_TEXT_MAX + 1], text2[RECORD_TEXT_MAX + 1], err[256], *copy;
    int n, n2;

    if (size < 1)
        return 0;
    kind = (data[0] & 1) ? RECORD_DOMAIN : RECORD_USER;
    /* A heap copy of the exact length: ASan catches a read past LEN. */
    copy = malloc(size - 1 ? size - 1 : 1);
    if (copy == NULL)
        abort();
    memcpy(copy, data + 1, size - 1);
    if (record_decode(kind, copy, size - 1, &rec, err, sizeof(err)) < 0) {
        FUZZ_CHECK(err[0] != '\0', "rejected without a reason");
        free(copy);
        return 0;
    }
    free(copy);
    FUZZ_CHECK(rec.kind == kind, "kind");
    (void) record_effective_state(&rec, 0);
    n = record_encode(&rec, text, sizeof(text));
    FUZZ_CHECK(n > 0 && (size_t) n == strlen(text), "encode failed (%d)", n);
    FUZZ_CHECK(record_decode(kind, text, (size_t) n, &again, err, sizeof(err)) == 0,
               "re-encoded '%s' does not decode: %s", text, err);
    FUZZ_CHECK(record_same(&rec, &again),
               "'%s' decodes to another record", text);
    n2 = record_encode(&again, text2, sizeof(text2));
    FUZZ_CHECK(n2 == n && strcmp(text, text2) == 0, "'%s' re-encodes as '%s'", text, text2);
    return 0;
}
