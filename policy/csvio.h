/*
 * csvio.h - the import/export formats of coexistctl: CSV (RFC 4180, via
 * libcsv) and JSON (via jansson).
 *
 * CSV header: address,alias,mode,state,wave,cutover,reverse (reverse is
 * yes, no or empty; a file with the six columns before it imports as "no").
 * JSON: the same names, reverse an optional boolean. Domain rules use
 * "@domain" in both address and alias. An import is parsed and validated
 * whole before anything is written: every bad line is reported as
 * "FILE:LINE: reason", and one bad line means the caller writes nothing.
 */
#ifndef COEXIST_CSVIO_H
#define COEXIST_CSVIO_H

#include <stdio.h>
#include <time.h>

#include "record.h"

/* One validated import row; strings are owned by the set. */
struct import_row {
    unsigned line;
    char *key;                  /* normalized address or "@domain" */
    char *alias;                /* normalized alias or legacy domain */
    char *wave;                 /* NULL when empty */
    enum record_state state;
    enum record_mode mode;
    time_t cutover;
    int reverse;                /* reverse routing once migrated */
};

struct import_set {
    struct import_row *rows;
    size_t count;
    size_t capacity;
};

typedef void (*import_problem_fn)(const char *message, void *ctx);

/*
 * import_read - parse FP (named NAME in messages) as CSV, or JSON when its
 * first non-blank byte is '['; a UTF-8 byte order mark before it (Excel's
 * "CSV UTF-8") is skipped. A problem in a row is reported at the line the
 * row starts on, also when a quoted field spans lines. Keys are kept whole
 * (no extension is stripped: see addr.h). Every problem goes to PROBLEM.
 * Returns the number of problems (0: SET is
 * complete and consistent), or -1 if the stream could not be read.
 */
int import_read(FILE *fp, const char *name, struct import_set *set,
                import_problem_fn problem, void *ctx);
void import_set_free(struct import_set *set);

/* import_row_record - the record to store for ROW. */
void import_row_record(const struct import_row *row, struct record *rec);

/*
 * import_find - the row whose key is KEY, or NULL. The set is sorted by key
 * after a successful import_read, so this is a binary search.
 */
const struct import_row *import_find(const struct import_set *set, const char *key);

/* Export: one row per record; the caller sorts or streams as it likes. */
int export_csv_header(FILE *fp);
int export_csv_row(FILE *fp, const char *key, const struct record *rec);
/* export_json_* - a JSON array; FIRST says whether a comma is needed. */
int export_json_begin(FILE *fp);
int export_json_row(FILE *fp, const char *key, const struct record *rec, int first);
int export_json_end(FILE *fp);

#endif
