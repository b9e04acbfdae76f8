/*
 * fuzz_csvio.c - libFuzzer target for the import reader (policy/csvio.c):
 * CSV through libcsv, or JSON through jansson when the first non-blank
 * byte is '['.
 *
 * Input: the file, read through fmemopen() as coexistctl reads a FILE *.
 * Properties: every problem is one "NAME:LINE: reason" line; a clean
 * import is sorted, has no duplicate and no chained alias, holds only keys
 * and aliases in normal form; and it survives a round trip through both
 * export formats: exported as CSV, and as JSON, it imports to the same rows.
 */
#define _GNU_SOURCE
#include "addr.h"
#include "csvio.h"
#include "fuzz.h"
#include "record.h"

#define NAME "fuzz.csv"

/* problem - each message must name the file and a line. */
static void problem(const char *message, void *ctx)
{
    unsigned line = 0;
    char colon = 0;

    ++*(int *) ctx;
    FUZZ_CHECK(strncmp(message, NAME ":", strlen(NAME ":")) == 0
               && sscanf(message + strlen(NAME ":"), "%u%c", &line, &colon) == 2
               && colon == ':' && line > 0, "problem '%s' names no line", message);
}

/* read_buf - import_read of LEN bytes of TEXT; returns its result. */
static int read_buf(const void *text, size_t len, struct import_set *set)
{
    int problems = 0, rc;
    FILE *fp = fmemopen((void *) text, len, "r");

    if (fp == NULL)
        abort();
    memset(set, 0, sizeof(*set));
    rc = import_read(fp, NAME, set, problem, &problems);
    fclose(fp);
    FUZZ_CHECK(rc == -1 || rc == problems, "returned %d with %d problems", rc, problems);
    return rc;
}

/* check_row - the invariants of one imported row. */
static void check_row(const struct import_set *set, const struct import_row *row)
{
    char norm[ADDR_BUFSIZE], dkey[ADDR_BUFSIZE + 1];
    const char *why;
    int domain = row->key[0] == '@';

    if (domain) {
        FUZZ_CHECK(addr_normalize_domain(row->key, norm, &why) == 0
                   && strcmp(norm, row->key) == 0, "key '%s'", row->key);
        FUZZ_CHECK(row->alias[0] != '@' && addr_normalize_domain(row->alias, norm, &why) == 0
                   && strcmp(norm + 1, row->alias) == 0, "legacy '%s'", row->alias);
    } else {
        FUZZ_CHECK(addr_normalize(row->key, norm, &why) == 0
                   && strcmp(norm, row->key) == 0, "key '%s' is not normal", row->key);
        FUZZ_CHECK(addr_normalize(row->alias, norm, &why) == 0
                   && strcmp(norm, row->alias) == 0, "alias '%s' is not normal", row->alias);
        FUZZ_CHECK(import_find(set, row->alias) == NULL, "chained alias '%s'", row->alias);
    }
    snprintf(dkey, sizeof(dkey), "@%s", domain ? row->alias : addr_domain(row->alias));
    FUZZ_CHECK(import_find(set, dkey) == NULL, "alias '%s' under a managed domain", row->alias);
    FUZZ_CHECK(import_find(set, row->key) == row, "import_find('%s')", row->key);
    FUZZ_CHECK(row->wave == NULL || record_wave_valid(row->wave), "wave");
    FUZZ_CHECK(row->cutover >= 0, "cutover %lld before 1970", (long long) row->cutover);
}

/* export - SET in FORMAT ('c' CSV, 'j' JSON) into a malloc'd buffer. */
static char *export(const struct import_set *set, int format, size_t *len)
{
    char *text = NULL;
    FILE *fp = open_memstream(&text, len);
    struct record rec;
    int rc;

    if (fp == NULL)
        abort();
    rc = format == 'c' ? export_csv_header(fp) : export_json_begin(fp);
    for (size_t i = 0; rc == 0 && i < set->count; i++) {
        import_row_record(&set->rows[i], &rec);
        rc = format == 'c' ? export_csv_row(fp, set->rows[i].key, &rec)
            : export_json_row(fp, set->rows[i].key, &rec, i == 0);
    }
    if (rc == 0 && format == 'j')
        rc = export_json_end(fp);
    FUZZ_CHECK(rc == 0, "export %c failed", format);
    if (fclose(fp) != 0)
        abort();
    return text;
}

/* same_rows - A and B hold the same rows (line numbers aside). */
static void same_rows(const struct import_set *a, const struct import_set *b, int format,
                      const char *text)
{
    FUZZ_CHECK(a->count == b->count, "%zu rows, %zu after export %c:\n%s", a->count,
               b->count, format, text);
    for (size_t i = 0; i < a->count; i++) {
        const struct import_row *x = &a->rows[i], *y = &b->rows[i];

        FUZZ_CHECK(strcmp(x->key, y->key) == 0 && strcmp(x->alias, y->alias) == 0
                   && (x->wave == NULL) == (y->wave == NULL)
                   && (x->wave == NULL || strcmp(x->wave, y->wave) == 0)
                   && x->state == y->state && x->mode == y->mode
                   && x->cutover == y->cutover,
                   "row '%s' changes through export %c:\n%s", x->key, format, text);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct import_set set, again;
    char *copy, *text;
    size_t len;
    int rc;

    if (size == 0)
        return 0;
    copy = malloc(size);
    if (copy == NULL)
        abort();
    memcpy(copy, data, size);
    rc = read_buf(copy, size, &set);
    free(copy);
    if (rc == 0) {
        for (size_t i = 0; i < set.count; i++) {
            check_row(&set, &set.rows[i]);
            if (i > 0)
                FUZZ_CHECK(strcmp(set.rows[i - 1].key, set.rows[i].key) < 0,
                           "not sorted, or duplicate '%s'", set.rows[i].key);
        }
        for (const char *f = "cj"; *f; f++) {
            text = export(&set, *f, &len);
            FUZZ_CHECK(read_buf(text, len, &again) == 0, "export %c does not import:\n%s",
                       *f, text);
            same_rows(&set, &again, *f, text);
            import_set_free(&again);
            free(text);
        }
    }
    import_set_free(&set);
    return 0;
}
