/*
 * csvio.c - import parsing and validation, export writing (see csvio.h).
 *
 * Rows are kept compact (a few malloc'd strings each) because an import of
 * a million users is held whole in memory until it has been validated.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <csv.h>
#include <jansson.h>

#include "addr.h"
#include "csvio.h"
#include "timefmt.h"

/* The seventh column, reverse, is optional: a file of 0.2's six imports as "off". */
#define NFIELDS 7
#define NFIELDS_OLD 6
#define FIELD_REVERSE 6
#define FIELD_MAX 512
#define HEADER_WORDS "address,alias,mode,state,wave,cutover[,reverse]"
static const char *const field_names[NFIELDS] = {"address", "alias", "mode", "state",
                                                 "wave", "cutover", "reverse"};

struct reader {
    const char *name;
    struct import_set *set;
    import_problem_fn problem;
    void *ctx;
    int problems;
    unsigned line;              /* physical line being fed to libcsv */
    unsigned row_line;          /* line the current row started on */
    unsigned rows;              /* rows seen, header included */
    int ncols;                  /* columns of the header: 6 or 7; -1 when bad */
    int nfields;
    int field_too_long;
    char fields[NFIELDS][FIELD_MAX];
};

static void report(struct reader *rd, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* report - one "FILE:LINE: reason" problem. */
static void report(struct reader *rd, unsigned line, const char *fmt, ...)
{
    char msg[1024];
    int n = snprintf(msg, sizeof(msg), "%s:%u: ", rd->name, line);
    va_list ap;

    /* A file name of 1 KB or more fills the buffer: the reason is cut. */
    if (n < 0 || (size_t) n >= sizeof(msg))
        n = (int) sizeof(msg) - 1;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof(msg) - (size_t) n, fmt, ap);
    va_end(ap);
    rd->problems++;
    rd->problem(msg, rd->ctx);
}

/* validate_row - check the fields of LINE (a missing reverse is "") and append the row. */
static void validate_row(struct reader *rd, unsigned line, char fields[NFIELDS][FIELD_MAX])
{
    struct import_row row = {.line = line};
    char key[ADDR_BUFSIZE], alias[ADDR_BUFSIZE];
    int domain = fields[0][0] == '@';
    const char *why;

    if ((domain ? addr_normalize_domain(fields[0], key, &why)
         : addr_normalize(fields[0], key, &why)) < 0)
        return report(rd, line, "bad address '%s': %s", fields[0], why);
    if (key[0] == '=')
        return report(rd, line, "'%s': addresses starting with '=' cannot be managed "
                      "(the reverse index uses such keys)", key);
    if (domain != (fields[1][0] == '@'))
        return report(rd, line, "a domain rule needs @domain in both address and alias");
    if ((domain ? addr_normalize_domain(fields[1], alias, &why)
         : addr_normalize(fields[1], alias, &why)) < 0)
        return report(rd, line, "bad alias '%s': %s", fields[1], why);
    if (strcmp(key, alias) == 0)
        return report(rd, line, "alias is the address itself");
    if (record_mode_parse(fields[2][0] ? fields[2] : "bcc", &row.mode) < 0)
        return report(rd, line, "bad mode '%s' (bcc or rewrite)", fields[2]);
    if (record_state_parse(fields[3][0] ? fields[3] : "unmigrated", &row.state) < 0)
        return report(rd, line, "bad state '%s' (unmigrated or migrated)", fields[3]);
    if (fields[4][0] && !record_wave_valid(fields[4]))
        return report(rd, line, "bad wave '%s' (1-64 of A-Z a-z 0-9 . _ -)", fields[4]);
    if (fields[5][0] && timefmt_parse(fields[5], &row.cutover, &why) < 0)
        return report(rd, line, "bad cutover '%s': %s", fields[5], why);
    if (strcmp(fields[FIELD_REVERSE], "yes") == 0)
        row.reverse = 1;
    else if (fields[FIELD_REVERSE][0] && strcmp(fields[FIELD_REVERSE], "no") != 0)
        return report(rd, line, "bad reverse '%s' (yes, no or empty)", fields[FIELD_REVERSE]);
    if (rd->set->count == rd->set->capacity) {
        size_t cap = rd->set->capacity ? 2 * rd->set->capacity : 1024;
        struct import_row *grown = realloc(rd->set->rows, cap * sizeof(*grown));

        if (grown == NULL)
            return report(rd, line, "out of memory");
        rd->set->rows = grown;
        rd->set->capacity = cap;
    }
    row.key = strdup(key);
    row.alias = strdup(domain ? alias + 1 : alias);
    row.wave = fields[4][0] ? strdup(fields[4]) : NULL;
    if (row.key == NULL || row.alias == NULL || (fields[4][0] && row.wave == NULL)) {
        free(row.key);
        free(row.alias);
        free(row.wave);
        return report(rd, line, "out of memory");
    }
    rd->set->rows[rd->set->count++] = row;
}

/* csv_field - libcsv's end-of-field callback. */
static void csv_field(void *data, size_t len, void *arg)
{
    struct reader *rd = arg;

    /* A row not started by read_csv: one that follows a bare CR on its line. */
    if (rd->row_line == 0)
        rd->row_line = rd->line;
    if (rd->nfields < NFIELDS) {
        if (len >= FIELD_MAX || memchr(data, '\0', len))
            rd->field_too_long = 1;
        else {
            memcpy(rd->fields[rd->nfields], data, len);
            rd->fields[rd->nfields][len] = '\0';
        }
    }
    rd->nfields++;
}

/* csv_row - libcsv's end-of-row callback: the header, or a data row. */
static void csv_row(int c, void *arg)
{
    struct reader *rd = arg;
    unsigned line = rd->row_line ? rd->row_line : rd->line;
    (void) c;

    if (rd->rows++ == 0) {
        rd->ncols = rd->nfields == NFIELDS_OLD ? NFIELDS_OLD : NFIELDS;
        for (int i = 0; i < rd->ncols; i++)
            if (rd->nfields != rd->ncols || strcmp(rd->fields[i], field_names[i]) != 0) {
                report(rd, line, "header must be " HEADER_WORDS);
                /* The rows are still checked, against either width. */
                rd->ncols = -1;
                break;
            }
    } else if (rd->field_too_long) {
        report(rd, line, "field longer than %d bytes or with a NUL byte", FIELD_MAX - 1);
    } else if (rd->ncols < 0 && rd->nfields != NFIELDS_OLD && rd->nfields != NFIELDS) {
        report(rd, line, "expected %d or %d fields, found %d", NFIELDS_OLD, NFIELDS,
               rd->nfields);
    } else if (rd->ncols > 0 && rd->nfields != rd->ncols) {
        report(rd, line, "expected %d fields, found %d", rd->ncols, rd->nfields);
    } else {
        validate_row(rd, line, rd->fields);
    }
    rd->nfields = 0;
    rd->row_line = 0;
    rd->field_too_long = 0;
    memset(rd->fields, 0, sizeof(rd->fields));
}

/* blank_line - whether BUF (N bytes) is only a line terminator: no row. */
static int blank_line(const char *buf, size_t n)
{
    return strspn(buf, "\r\n") == n;
}

/*
 * syntax_error - a CSV syntax problem, at the line its row starts on: a
 * quoted field may span lines (an open quote swallows the rest of the
 * file), and the start of the row is what the administrator can find.
 */
static void syntax_error(struct reader *rd, struct csv_parser *parser, const char *where)
{
    unsigned start = rd->row_line ? rd->row_line : rd->line;

    if (where != NULL)
        report(rd, start, "CSV syntax: %s (%s)", csv_strerror(csv_error(parser)), where);
    else if (start != rd->line)
        report(rd, start, "CSV syntax: %s (in the row starting here, on line %u)",
               csv_strerror(csv_error(parser)), rd->line);
    else
        report(rd, start, "CSV syntax: %s", csv_strerror(csv_error(parser)));
}

/* read_csv - feed FP to libcsv line by line, so rows know their line. */
static int read_csv(FILE *fp, struct reader *rd)
{
    struct csv_parser parser;
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    int failed = 0;

    if (csv_init(&parser, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0)
        return -1;
    while ((n = getline(&buf, &cap, fp)) > 0) {
        rd->line++;
        if (rd->row_line == 0 && !blank_line(buf, (size_t) n))
            rd->row_line = rd->line;
        if (csv_parse(&parser, buf, (size_t) n, csv_field, csv_row, rd) != (size_t) n) {
            syntax_error(rd, &parser, NULL);
            failed = 1;
            break;
        }
    }
    /* After a syntax error the half-parsed row is no row: no more problems. */
    if (failed)
        (void) csv_fini(&parser, NULL, NULL, NULL);
    else if (csv_fini(&parser, csv_field, csv_row, rd) != 0)
        syntax_error(rd, &parser, "quoted field still open at end of file");
    csv_free(&parser);
    free(buf);
    if (ferror(fp))
        return -1;
    if (rd->rows == 0)
        report(rd, 1, "empty file: a header line " HEADER_WORDS " is required");
    return 0;
}

/* json_field - the string value of a field, "" when absent or null. */
static int json_field(json_t *obj, const char *name, char out[FIELD_MAX])
{
    json_t *v = json_object_get(obj, name);

    out[0] = '\0';
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v) || json_string_length(v) >= FIELD_MAX
        || strlen(json_string_value(v)) != json_string_length(v))
        return -1;
    strcpy(out, json_string_value(v));
    return 0;
}

/* json_reverse - the optional boolean "reverse" as the CSV's yes/no/"". */
static int json_reverse(json_t *obj, char out[FIELD_MAX])
{
    json_t *v = json_object_get(obj, field_names[FIELD_REVERSE]);

    snprintf(out, FIELD_MAX, "%s", v == NULL || json_is_null(v) ? ""
             : json_is_true(v) ? "yes" : "no");
    return v == NULL || json_is_null(v) || json_is_boolean(v) ? 0 : -1;
}

/* read_json - an array of objects with the CSV's field names. */
static int read_json(FILE *fp, struct reader *rd)
{
    json_error_t jerr;
    json_t *root = json_loadf(fp, 0, &jerr);
    size_t i;
    json_t *obj;

    if (root == NULL) {
        report(rd, (unsigned) (jerr.line > 0 ? jerr.line : 1), "JSON syntax: %s", jerr.text);
        return 0;
    }
    if (!json_is_array(root))
        report(rd, 1, "JSON import must be an array of objects");
    json_array_foreach(root, i, obj) {
        const char *key;
        json_t *value;
        int bad = !json_is_object(obj);

        if (bad)
            report(rd, (unsigned) i + 1, "element %zu is not an object", i + 1);

        /* JSON has no line numbers to speak of: name the element. */
        json_object_foreach(bad ? NULL : obj, key, value) {
            int known = 0;

            for (int f = 0; f < NFIELDS; f++)
                known |= strcmp(key, field_names[f]) == 0;
            if (!known) {
                report(rd, (unsigned) i + 1, "unknown field '%s' (element %zu)", key, i + 1);
                bad = 1;
            }
        }
        for (int f = 0; !bad && f < NFIELDS_OLD; f++)
            if (json_field(obj, field_names[f], rd->fields[f]) < 0) {
                report(rd, (unsigned) i + 1, "field '%s' must be a string", field_names[f]);
                bad = 1;
            }
        if (!bad && json_reverse(obj, rd->fields[FIELD_REVERSE]) < 0) {
            report(rd, (unsigned) i + 1, "field 'reverse' must be true or false");
            bad = 1;
        }
        if (!bad)
            validate_row(rd, (unsigned) i + 1, rd->fields);
    }
    json_decref(root);
    return 0;
}

static int row_cmp(const void *a, const void *b)
{
    return strcmp(((const struct import_row *) a)->key, ((const struct import_row *) b)->key);
}

const struct import_row *import_find(const struct import_set *set, const char *key)
{
    struct import_row probe = {.key = (char *) key};

    if (set->count == 0)
        return NULL;
    return bsearch(&probe, set->rows, set->count, sizeof(probe), row_cmp);
}

/* alias_cmp - rows by alias (a user's alias always has an '@', a legacy domain none). */
static int alias_cmp(const void *a, const void *b)
{
    const struct import_row *x = *(const struct import_row *const *) a;
    const struct import_row *y = *(const struct import_row *const *) b;
    int c = strcmp(x->alias, y->alias);

    return c ? c : (x->line > y->line) - (x->line < y->line);
}

/*
 * check_shared - an alias that two rows share is fine for bcc, but not when
 * either routes it back: reported at each row with reverse = yes.
 */
static void check_shared(struct reader *rd)
{
    struct import_set *set = rd->set;
    const struct import_row **by_alias;

    if (set->count < 2)
        return;
    if ((by_alias = malloc(set->count * sizeof(*by_alias))) == NULL)
        return report(rd, 1, "out of memory");
    for (size_t i = 0; i < set->count; i++)
        by_alias[i] = &set->rows[i];
    qsort(by_alias, set->count, sizeof(*by_alias), alias_cmp);
    for (size_t i = 0, j; i < set->count; i = j) {
        for (j = i + 1; j < set->count && strcmp(by_alias[j]->alias, by_alias[i]->alias) == 0;)
            j++;
        for (size_t k = i; j - i > 1 && k < j; k++) {
            const struct import_row *other = by_alias[k == i ? i + 1 : i];

            if (by_alias[k]->reverse)
                report(rd, by_alias[k]->line, "alias '%s%s' is shared with '%s' (line %u): "
                       "reverse routing needs one owner", by_alias[k]->key[0] == '@' ? "@"
                       : "", by_alias[k]->alias, other->key, other->line);
        }
    }
    free(by_alias);
}

/* check_set - duplicates, aliases that are themselves managed, shared aliases. */
static void check_set(struct reader *rd)
{
    struct import_set *set = rd->set;
    char domain_key[ADDR_BUFSIZE + 1];

    if (set->count > 1)
        qsort(set->rows, set->count, sizeof(set->rows[0]), row_cmp);
    for (size_t i = 1; i < set->count; i++)
        if (strcmp(set->rows[i].key, set->rows[i - 1].key) == 0)
            report(rd, set->rows[i].line, "duplicate address '%s' (also on line %u)",
                   set->rows[i].key, set->rows[i - 1].line);
    for (size_t i = 0; i < set->count; i++) {
        const struct import_row *row = &set->rows[i];
        int domain = row->key[0] == '@';

        snprintf(domain_key, sizeof(domain_key), "@%s",
                 domain ? row->alias : addr_domain(row->alias));
        if ((!domain && import_find(set, row->alias)) || import_find(set, domain_key))
            report(rd, row->line, "alias '%s' is itself a managed address (no chaining)",
                   row->alias);
    }
    check_shared(rd);
}

/*
 * skip_bom - skip a UTF-8 byte order mark at the start of FP: Excel's
 * "CSV UTF-8" writes one, and some editors put one before JSON. Returns 0,
 * or -1 if the file starts with 0xEF but not a BOM: no byte can be pushed
 * back past one, and such a file is neither CSV with our header nor JSON.
 */
static int skip_bom(FILE *fp)
{
    int c = getc(fp);

    if (c != 0xEF) {
        if (c != EOF)
            ungetc(c, fp);
        return 0;
    }
    return getc(fp) == 0xBB && getc(fp) == 0xBF ? 0 : -1;
}

int import_read(FILE *fp, const char *name, struct import_set *set,
                import_problem_fn problem, void *ctx)
{
    struct reader *rd = calloc(1, sizeof(*rd));
    int c, rc;

    if (rd == NULL)
        return -1;
    rd->name = name;
    rd->set = set;
    rd->problem = problem;
    rd->ctx = ctx;
    if (skip_bom(fp) < 0) {
        report(rd, 1, "header must be " HEADER_WORDS);
        rc = rd->problems;
        free(rd);
        return rc;
    }
    /* Skipped newlines still count: CSV problems name the file's lines. */
    while ((c = getc(fp)) != EOF && isspace(c))
        if (c == '\n')
            rd->line++;
    if (c != EOF)
        ungetc(c, fp);
    rc = c == '[' ? read_json(fp, rd) : read_csv(fp, rd);
    if (rc == 0)
        check_set(rd);
    rc = rc < 0 ? -1 : rd->problems;
    free(rd);
    return rc;
}

void import_set_free(struct import_set *set)
{
    for (size_t i = 0; i < set->count; i++) {
        free(set->rows[i].key);
        free(set->rows[i].alias);
        free(set->rows[i].wave);
    }
    free(set->rows);
    memset(set, 0, sizeof(*set));
}

void import_row_record(const struct import_row *row, struct record *rec)
{
    memset(rec, 0, sizeof(*rec));
    rec->kind = row->key[0] == '@' ? RECORD_DOMAIN : RECORD_USER;
    rec->state = row->state;
    rec->mode = row->mode;
    snprintf(rec->alias, sizeof(rec->alias), "%s", row->alias);
    if (row->wave)
        snprintf(rec->wave, sizeof(rec->wave), "%s", row->wave);
    rec->cutover = row->cutover;
    rec->reverse = row->reverse;
}

/* export_fields - the alias and cutover fields of a record. */
static void export_fields(const char *key, const struct record *rec,
                          char alias[ADDR_BUFSIZE + 1], char cutover[TIMEFMT_BUFSIZE])
{
    snprintf(alias, ADDR_BUFSIZE + 1, "%s%s", rec->kind == RECORD_DOMAIN ? "@" : "",
             rec->alias);
    cutover[0] = '\0';
    if (rec->cutover)
        timefmt_format(rec->cutover, cutover);
    (void) key;
}

int export_csv_header(FILE *fp)
{
    return fprintf(fp, "address,alias,mode,state,wave,cutover,reverse\n") < 0 ? -1 : 0;
}

int export_csv_row(FILE *fp, const char *key, const struct record *rec)
{
    char alias[ADDR_BUFSIZE + 1], cutover[TIMEFMT_BUFSIZE];
    const char *fields[NFIELDS];

    export_fields(key, rec, alias, cutover);
    fields[0] = key;
    fields[1] = alias;
    fields[2] = record_mode_name(rec->mode);
    fields[3] = record_state_name(rec->state);
    fields[4] = rec->wave;
    fields[5] = cutover;
    fields[FIELD_REVERSE] = rec->reverse ? "yes" : "no";
    for (int i = 0; i < NFIELDS; i++) {
        /* Quote only when needed, so plain rows stay plain to read. */
        if (i > 0 && putc(',', fp) == EOF)
            return -1;
        if (strpbrk(fields[i], ",\"\r\n") ? csv_fwrite(fp, fields[i], strlen(fields[i]))
            : (fputs(fields[i], fp) == EOF))
            return -1;
    }
    return putc('\n', fp) == EOF ? -1 : 0;
}

int export_json_begin(FILE *fp)
{
    return fputs("[", fp) == EOF ? -1 : 0;
}

int export_json_row(FILE *fp, const char *key, const struct record *rec, int first)
{
    char alias[ADDR_BUFSIZE + 1], cutover[TIMEFMT_BUFSIZE];
    json_t *obj;
    char *text;
    int rc;

    export_fields(key, rec, alias, cutover);
    obj = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "address", key, "alias", alias,
                    "mode", record_mode_name(rec->mode), "state",
                    record_state_name(rec->state), "wave", rec->wave, "cutover", cutover,
                    "reverse", rec->reverse);
    if (obj == NULL)
        return -1;
    text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    if (text == NULL)
        return -1;
    rc = fprintf(fp, "%s\n%s", first ? "" : ",", text) < 0 ? -1 : 0;
    free(text);
    return rc;
}

int export_json_end(FILE *fp)
{
    return fputs("\n]\n", fp) == EOF ? -1 : 0;
}
