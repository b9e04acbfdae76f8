/*
 * test_csvio.c - unit tests of policy/csvio.c, the CSV and JSON import and
 * export of coexistctl.
 *
 * Covers import_read on CSV text (the exact header, user and domain rows,
 * RFC 4180 quoting with embedded quotes, commas and newlines, empty wave and
 * cutover, defaults for empty mode and state, CRLF, blank lines), every
 * problem with its exact "NAME:LINE: reason" (several problems in one file
 * all reported, with the right lines), the whole-set checks (duplicates after
 * normalization, no chaining), JSON import, import_find and
 * import_row_record, the exact text of export_csv_row and export_json_row,
 * the round trip export -> import for CSV and JSON, a UTF-8 BOM before CSV
 * or JSON, and rows whose quoted fields span lines (reported where the row
 * starts).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "csvio.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_PROBLEMS 16
#define T_CUTOVER 1796407200LL  /* 2026-12-04T18:00:00Z */

#define HEADER "address,alias,mode,state,wave,cutover\n"
#define HEADER7 "address,alias,mode,state,wave,cutover,reverse\n"

/* The problems an import reported, in order. */
struct problems {
    int count;
    char msg[MAX_PROBLEMS][512];
};

static void collect(const char *message, void *ctx)
{
    struct problems *p = ctx;

    if (p->count < MAX_PROBLEMS)
        snprintf(p->msg[p->count], sizeof(p->msg[0]), "%s", message);
    p->count++;
}

/* run_import - import_read of TEXT as NAME; returns its result. */
static int run_import(const char *text, const char *name, struct import_set *set,
                      struct problems *probs)
{
    size_t len = strlen(text);
    FILE *fp = len ? fmemopen((void *) text, len, "r") : fopen("/dev/null", "r");
    int rc;

    assert_non_null(fp);
    memset(set, 0, sizeof(*set));
    memset(probs, 0, sizeof(*probs));
    rc = import_read(fp, name, set, collect, probs);
    fclose(fp);
    return rc;
}

/* print_problems - show what an import reported, for a failing case. */
static void print_problems(const struct problems *probs)
{
    for (int i = 0; i < probs->count && i < MAX_PROBLEMS; i++)
        print_error("    reported: %s\n", probs->msg[i]);
}

/* An expected row: strings NULL-safe, wave NULL for none. */
struct want_row {
    const char *key;
    const char *alias;
    const char *wave;
    enum record_state state;
    enum record_mode mode;
    long long cutover;
    unsigned line;
};

/* check_rows - SET holds exactly WANT (sorted by key); count mismatches. */
static int check_rows(const char *label, const struct import_set *set,
                      const struct want_row *want, size_t n)
{
    int failed = 0;

    if (set->count != n) {
        print_error("%s: got %zu rows, want %zu\n", label, set->count, n);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        const struct import_row *r = &set->rows[i];
        const struct want_row *w = &want[i];

        if (strcmp(r->key, w->key) != 0 || strcmp(r->alias, w->alias) != 0
            || (r->wave == NULL) != (w->wave == NULL)
            || (w->wave && strcmp(r->wave, w->wave) != 0) || r->state != w->state
            || r->mode != w->mode || (long long) r->cutover != w->cutover
            || (w->line && r->line != w->line)) {
            print_error("%s: row %zu: got key='%s' alias='%s' wave='%s' state=%s mode=%s "
                        "cutover=%lld line=%u, want key='%s' alias='%s' wave='%s' state=%s "
                        "mode=%s cutover=%lld line=%u\n", label, i, r->key, r->alias,
                        r->wave ? r->wave : "(none)", record_state_name(r->state),
                        record_mode_name(r->mode), (long long) r->cutover, r->line, w->key,
                        w->alias, w->wave ? w->wave : "(none)", record_state_name(w->state),
                        record_mode_name(w->mode), w->cutover, w->line);
            failed++;
        }
    }
    return failed;
}

/* A valid file with user and domain rows, quoting, defaults and empty fields. */
static const char valid_csv[] =
    HEADER
    "Adam.Barr@Corp.Example,adam@pop.example,bcc,unmigrated,w1,\n"
    "\"eve@corp.example\",\"eve@pop.example\",\"rewrite\",\"migrated\",\"\",\"\"\n"
    "bob+news@corp.example,bob+legacy@pop.example,,,,2026-12-04T18:00:00Z\n"
    "@Corp.Example,@Pop.Example,rewrite,,dom-1,\n"
    "\"\"\"carol\"\"@corp.example\",<carol@pop.example>,bcc,unmigrated,,"
    "2026-12-04T19:00:00+01:00\n"
    "  dave@corp.example ,  dave@pop.example,bcc,migrated,w1,\n";

static const struct want_row valid_rows[] = {
    {"@corp.example", "pop.example", "dom-1", STATE_UNMIGRATED, MODE_REWRITE, 0, 5},
    {"adam.barr@corp.example", "adam@pop.example", "w1", STATE_UNMIGRATED, MODE_BCC, 0, 2},
    {"bob+news@corp.example", "bob+legacy@pop.example", NULL, STATE_UNMIGRATED, MODE_BCC,
     T_CUTOVER, 4},
    {"carol@corp.example", "carol@pop.example", NULL, STATE_UNMIGRATED, MODE_BCC, T_CUTOVER,
     6},
    {"dave@corp.example", "dave@pop.example", "w1", STATE_MIGRATED, MODE_BCC, 0, 7},
    {"eve@corp.example", "eve@pop.example", NULL, STATE_MIGRATED, MODE_REWRITE, 0, 3},
};

static void test_csv_valid(void **state)
{
    struct import_set set;
    struct problems probs;
    int rc;

    (void) state;
    rc = run_import(valid_csv, "t.csv", &set, &probs);
    if (rc != 0)
        print_problems(&probs);
    assert_int_equal(rc, 0);
    assert_int_equal(probs.count, 0);
    assert_int_equal(check_rows("valid csv", &set, valid_rows, NELEM(valid_rows)), 0);
    import_set_free(&set);
    assert_int_equal(set.count, 0);
    assert_null(set.rows);
}

/* replace_all - TEXT with every FROM replaced by TO, malloc'd. */
static char *replace_all(const char *text, const char *from, const char *to)
{
    size_t n = 0, lf = strlen(from), lt = strlen(to);
    char *out, *o;

    for (const char *p = strstr(text, from); p; p = strstr(p + lf, from))
        n++;
    out = malloc(strlen(text) + n * lt + 1);
    assert_non_null(out);
    for (o = out; *text;) {
        if (strncmp(text, from, lf) == 0) {
            memcpy(o, to, lt);
            o += lt;
            text += lf;
        } else {
            *o++ = *text++;
        }
    }
    *o = '\0';
    return out;
}

static void test_csv_crlf(void **state)
{
    struct import_set set;
    struct problems probs;
    char *crlf = replace_all(valid_csv, "\n", "\r\n");
    int rc, failed;

    (void) state;
    rc = run_import(crlf, "t.csv", &set, &probs);
    free(crlf);
    if (rc != 0)
        print_problems(&probs);
    assert_int_equal(rc, 0);
    failed = check_rows("crlf csv", &set, valid_rows, NELEM(valid_rows));
    import_set_free(&set);
    assert_int_equal(failed, 0);
}

/* test_csv_no_final_newline - the last row counts without its LF. */
static void test_csv_no_final_newline(void **state)
{
    static const struct want_row want[] = {
        {"adam@corp.example", "adam@pop.example", NULL, STATE_UNMIGRATED, MODE_BCC, 0, 2},
    };
    struct import_set set;
    struct problems probs;
    int rc, failed;

    (void) state;
    rc = run_import(HEADER "adam@corp.example,adam@pop.example,,,,", "t.csv", &set,
                    &probs);
    if (rc != 0)
        print_problems(&probs);
    assert_int_equal(rc, 0);
    failed = check_rows("no final newline", &set, want, NELEM(want));
    import_set_free(&set);
    assert_int_equal(failed, 0);
}

/* test_csv_header_only - a file with the header and nothing else is empty, not bad. */
static void test_csv_header_only(void **state)
{
    struct import_set set;
    struct problems probs;

    (void) state;
    assert_int_equal(run_import(HEADER, "t.csv", &set, &probs), 0);
    assert_int_equal(set.count, 0);
    import_set_free(&set);
}

/* test_csv_keys_whole - an address is imported as written, extension and
 * all: "jean-luc" stays jean-luc, whatever recipient_delimiter says. */
static void test_csv_keys_whole(void **state)
{
    static const struct want_row want[] = {   /* sorted by key */
        {"adam+x@corp.example", "adam@pop.example", NULL, STATE_UNMIGRATED, MODE_BCC, 0, 3},
        {"jean-luc@corp.example", "jl@pop.example", NULL, STATE_UNMIGRATED, MODE_BCC, 0, 2},
    };
    struct import_set set;
    struct problems probs;
    int failed;

    (void) state;
    assert_int_equal(run_import(HEADER "Jean-Luc@corp.example,jl@pop.example,,,,\n"
                                "adam+x@corp.example,adam@pop.example,,,,\n", "t.csv",
                                &set, &probs), 0);
    failed = check_rows("keys whole", &set, want, NELEM(want));
    import_set_free(&set);
    assert_int_equal(failed, 0);
}

/* One bad file: its text and the exact messages, in order. */
struct error_case {
    const char *text;
    const char *want[4];
};

#define GOOD "adam@corp.example,adam@pop.example,bcc,unmigrated,,\n"
static const struct error_case error_cases[] = {
    /* two bad lines, each reported with its own line */
    {HEADER GOOD "bob@corp.example,bob@pop.example,copy,unmigrated,,\n"
     "carol@corp.example,carol@pop.example,,,,\n"
     "dave@corp.example,dave@pop.example,bcc,unmigrated,\n",
     {"t.csv:3: bad mode 'copy' (bcc or rewrite)", "t.csv:5: expected 6 fields, found 5"}},
    {HEADER "adam@corp.example,adam@pop.example,bcc,unmigrated,,,\n",
     {"t.csv:2: expected 6 fields, found 7"}},
    {HEADER "adam@corp.example\n", {"t.csv:2: expected 6 fields, found 1"}},
    {HEADER "adam,adam@pop.example,,,,\n", {"t.csv:2: bad address 'adam': missing @domain"}},
    {HEADER "\"a,b@corp.example\",ab@pop.example,,,,\n",
     {"t.csv:2: bad address 'a,b@corp.example': invalid character in local part"}},
    {HEADER "\"\"\"a b\"\"@corp.example\",ab@pop.example,,,,\n",
     {"t.csv:2: bad address '\"a b\"@corp.example': space in address"}},
    {HEADER "adam@corp.example,adam@,,,,\n", {"t.csv:2: bad alias 'adam@': empty domain"}},
    {HEADER "adam@corp.example,,,,,\n", {"t.csv:2: bad alias '': empty address"}},
    {HEADER "adam@corp.example,adam@pop.example,copy,,,\n",
     {"t.csv:2: bad mode 'copy' (bcc or rewrite)"}},
    {HEADER "adam@corp.example,adam@pop.example,,gone,,\n",
     {"t.csv:2: bad state 'gone' (unmigrated or migrated)"}},
    {HEADER "adam@corp.example,adam@pop.example,,,w 1,\n",
     {"t.csv:2: bad wave 'w 1' (1-64 of A-Z a-z 0-9 . _ -)"}},
    {HEADER "adam@corp.example,adam@pop.example,,,,tomorrow\n",
     {"t.csv:2: bad cutover 'tomorrow': time must look like 2026-12-04T18:00:00Z or "
      "2026-12-04T18:00:00+01:00"}},
    {HEADER "adam@corp.example,adam@pop.example,,,,2026-12-04T18:00:00\n",
     {"t.csv:2: bad cutover '2026-12-04T18:00:00': time needs a zone: Z or +HH:MM"}},
    {HEADER "Adam+x@Corp.Example,adam+X@corp.example,,,,\n",
     {"t.csv:2: alias is the address itself"}},
    {HEADER "@corp.example,@Corp.Example,,,,\n", {"t.csv:2: alias is the address itself"}},
    {HEADER "@corp.example,adam@pop.example,,,,\n",
     {"t.csv:2: a domain rule needs @domain in both address and alias"}},
    {HEADER "adam@corp.example,@pop.example,,,,\n",
     {"t.csv:2: a domain rule needs @domain in both address and alias"}},
    {HEADER "@corp..example,@pop.example,,,,\n",
     {"t.csv:2: bad address '@corp..example': empty label in domain"}},
    /* duplicates after normalization: the later line is the one reported */
    {HEADER "Adam@corp.example,a1@pop.example,,,,\n"
     "adam@CORP.example.,a2@pop.example,,,,\n",
     {"t.csv:3: duplicate address 'adam@corp.example' (also on line 2)"}},
    {HEADER "@corp.example,@pop.example,,,,\n" GOOD "@CORP.example,@pop2.example,,,,\n",
     {"t.csv:4: duplicate address '@corp.example' (also on line 2)"}},
    /* no chaining: an alias may not be managed itself, by user or domain rule */
    {HEADER "adam@corp.example,bob@corp.example,,,,\n"
     "bob@corp.example,bob@pop.example,,,,\n",
     {"t.csv:2: alias 'bob@corp.example' is itself a managed address (no chaining)"}},
    {HEADER "@pop.example,@legacy.example,,,,\n" GOOD,
     {"t.csv:3: alias 'adam@pop.example' is itself a managed address (no chaining)"}},
    {HEADER "@corp.example,@pop.example,,,,\n@pop.example,@legacy.example,,,,\n",
     {"t.csv:2: alias 'pop.example' is itself a managed address (no chaining)"}},
    /* the header */
    {"", {"t.csv:1: empty file: a header line address,alias,mode,state,wave,cutover[,reverse] "
          "is required"}},
    {GOOD, {"t.csv:1: header must be address,alias,mode,state,wave,cutover[,reverse]"}},
    {"Address,Alias,Mode,State,Wave,Cutover\n" GOOD,
     {"t.csv:1: header must be address,alias,mode,state,wave,cutover[,reverse]"}},
    {"address,alias,mode,state,wave\n" GOOD,
     {"t.csv:1: header must be address,alias,mode,state,wave,cutover[,reverse]"}},
    {"address,alias,mode,state,wave,cutover,extra\n" GOOD,
     {"t.csv:1: header must be address,alias,mode,state,wave,cutover[,reverse]"}},
    {"alias,address,mode,state,wave,cutover\n" GOOD,
     {"t.csv:1: header must be address,alias,mode,state,wave,cutover[,reverse]"}},
    /* line numbers survive blank lines and quoted newlines */
    {HEADER "\n" GOOD "\n\nbob@corp.example,bob,,,,\n",
     {"t.csv:6: bad alias 'bob': missing @domain"}},
    {"\n\n" HEADER "bob@corp.example,bob,,,,\n", {"t.csv:4: bad alias 'bob': missing @domain"}},
    {HEADER "bob@corp.example,bob@pop.example,,,\"w\n1\",\nbob,x@pop.example,,,,\n",
     {"t.csv:2: bad wave 'w\n1' (1-64 of A-Z a-z 0-9 . _ -)",
      "t.csv:4: bad address 'bob': missing @domain"}},
    {HEADER "bob@corp.example,bob@pop.example,,,,\r\nbob,x@pop.example,,,,\r\n",
     {"t.csv:3: bad address 'bob': missing @domain"}},
    /* a row whose first field spans lines is reported where the row starts */
    {HEADER GOOD "\"bob\n@corp.example\",bob@pop.example,,,,\n",
     {"t.csv:3: bad address 'bob\n@corp.example': control character in address"}},
    {HEADER "\"a\n\nb@corp.example\",x@pop.example,,,\n" GOOD,
     {"t.csv:2: expected 6 fields, found 5"}},
    {HEADER "\n\n\"x\ny\",\"1\n2\",\"3\n4\"\n",
     {"t.csv:4: expected 6 fields, found 3"}},
    /* syntax errors too, even when the error is lines further on */
    {HEADER GOOD "\"bob@corp.example\nmore\"x,bob@pop.example,,,,\n" GOOD,
     {"t.csv:3: CSV syntax: error parsing data while strict checking enabled (in the row "
      "starting here, on line 4)"}},
    {HEADER GOOD "bob@corp.example,\"bob@pop.example,,,,\n" GOOD GOOD,
     {"t.csv:3: CSV syntax: error parsing data while strict checking enabled (quoted "
      "field still open at end of file)"}},
    /* fuzz (tests/fuzz/corpus/csvio/regress-pre-epoch-cutover.csv): 1969 in UTC
     * would be exported as a cutover that no longer imports */
    {HEADER "adam@corp.example,adam@pop.example,,,,1970-01-01T00:30:00+01:00\n",
     {"t.csv:2: bad cutover '1970-01-01T00:30:00+01:00': time out of range (1970 to "
      "9999 in UTC)"}},
};

static void test_csv_errors(void **state)
{
    int failed = 0;

    (void) state;
    for (size_t i = 0; i < NELEM(error_cases); i++) {
        const struct error_case *c = &error_cases[i];
        struct import_set set;
        struct problems probs;
        int nwant = 0, bad = 0;
        int rc = run_import(c->text, "t.csv", &set, &probs);

        while (nwant < 4 && c->want[nwant])
            nwant++;
        if (rc != nwant || probs.count != nwant) {
            print_error("error case %zu: got rc %d and %d problems, want %d\n", i, rc,
                        probs.count, nwant);
            bad = 1;
        }
        for (int k = 0; !bad && k < nwant; k++)
            if (strcmp(probs.msg[k], c->want[k]) != 0) {
                print_error("error case %zu: problem %d: got '%s', want '%s'\n", i, k,
                            probs.msg[k], c->want[k]);
                bad = 1;
            }
        if (bad) {
            print_error("  text: %s", c->text);
            print_problems(&probs);
            failed++;
        }
        import_set_free(&set);
    }
    if (failed)
        fail_msg("%d of %zu error cases failed", failed, NELEM(error_cases));
}

/* test_csv_syntax - RFC 4180 violations are reported with their line. */
static void test_csv_syntax(void **state)
{
    static const struct {
        const char *text;
        const char *prefix;
    } cases[] = {
        {HEADER GOOD "bob@corp.example,\"bob@pop.example\"x,,,,\n" GOOD, "t.csv:3: CSV syntax"},
        {HEADER GOOD "bob@corp.example,bob@pop.example,,,,\"open\n", "t.csv:3: CSV syntax"},
        {HEADER "bob@corp.ex\"ample,bob@pop.example,,,,\n", "t.csv:2: CSV syntax"},
    };
    int failed = 0;

    (void) state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        struct import_set set;
        struct problems probs;
        int rc = run_import(cases[i].text, "t.csv", &set, &probs);

        if (rc < 1 || probs.count != rc
            || strncmp(probs.msg[0], cases[i].prefix, strlen(cases[i].prefix)) != 0) {
            print_error("syntax case %zu: got rc %d, first problem '%s', want '%s...'\n", i,
                        rc, probs.count ? probs.msg[0] : "(none)", cases[i].prefix);
            print_problems(&probs);
            failed++;
        }
        import_set_free(&set);
    }
    if (failed)
        fail_msg("%d syntax cases failed", failed);
}

/* test_csv_long_field - a field over the reader's limit is one clear problem. */
static void test_csv_long_field(void **state)
{
    char text[2048];
    struct import_set set;
    struct problems probs;
    int n = snprintf(text, sizeof(text), HEADER "adam@corp.example,adam@pop.example,,,");

    (void) state;
    memset(text + n, 'w', 600);
    strcpy(text + n + 600, ",\n");
    assert_int_equal(run_import(text, "t.csv", &set, &probs), 1);
    assert_string_equal(probs.msg[0], "t.csv:2: field longer than 511 bytes or with a NUL byte");
    import_set_free(&set);
}

/* test_long_name - a file name that fills the message buffer is cut, not
 * written past it (coexistctl import with a path of 1 KB or more). */
static void test_long_name(void **state)
{
    static const size_t lens[] = {1010, 1017, 1022, 1023, 1024, 1025, 4095};
    char name[4096];
    struct import_set set;
    struct problems probs;

    (void) state;
    for (size_t i = 0; i < NELEM(lens); i++) {
        memset(name, 'n', lens[i]);
        name[lens[i]] = '\0';
        assert_int_equal(run_import(HEADER "bob,bob@pop.example,,,,\n", name, &set,
                                    &probs), 1);
        assert_int_equal(strncmp(probs.msg[0], name, 500), 0);
        import_set_free(&set);
    }
}

/* test_import_find - binary search over the sorted set. */
static void test_import_find(void **state)
{
    struct import_set set;
    struct problems probs;
    const struct import_row *row;
    struct record rec;

    (void) state;
    assert_int_equal(run_import(valid_csv, "t.csv", &set, &probs), 0);
    for (size_t i = 0; i < NELEM(valid_rows); i++) {
        row = import_find(&set, valid_rows[i].key);
        assert_non_null(row);
        assert_string_equal(row->key, valid_rows[i].key);
    }
    assert_null(import_find(&set, "nobody@corp.example"));
    assert_null(import_find(&set, "Adam.Barr@Corp.Example"));
    assert_null(import_find(&set, "@pop.example"));

    row = import_find(&set, "@corp.example");
    import_row_record(row, &rec);
    assert_int_equal(rec.kind, RECORD_DOMAIN);
    assert_int_equal(rec.mode, MODE_REWRITE);
    assert_int_equal(rec.state, STATE_UNMIGRATED);
    assert_string_equal(rec.alias, "pop.example");
    assert_string_equal(rec.wave, "dom-1");
    assert_int_equal(rec.cutover, 0);
    assert_int_equal(rec.changed, 0);
    assert_string_equal(rec.actor, "");

    row = import_find(&set, "bob+news@corp.example");
    import_row_record(row, &rec);
    assert_int_equal(rec.kind, RECORD_USER);
    assert_string_equal(rec.alias, "bob+legacy@pop.example");
    assert_string_equal(rec.wave, "");
    assert_int_equal(rec.cutover, T_CUTOVER);
    import_set_free(&set);
}

/* JSON: an array of objects with the CSV's field names. */
static const char valid_json[] =
    "  \n[\n"
    " {\"address\": \"Adam.Barr@Corp.Example\", \"alias\": \"adam@pop.example\","
    " \"mode\": \"bcc\", \"state\": \"unmigrated\", \"wave\": \"w1\", \"cutover\": \"\"},\n"
    " {\"address\": \"@Corp.Example\", \"alias\": \"@Pop.Example\", \"mode\": \"rewrite\","
    " \"wave\": \"dom-1\"},\n"
    " {\"address\": \"bob+news@corp.example\", \"alias\": \"bob+legacy@pop.example\","
    " \"cutover\": \"2026-12-04T18:00:00Z\", \"wave\": null},\n"
    " {\"cutover\": null, \"state\": \"migrated\", \"mode\": \"rewrite\","
    " \"alias\": \"eve@pop.example\", \"address\": \"<eve@corp.example>\"}\n"
    "]\n";

static const struct want_row valid_json_rows[] = {
    {"@corp.example", "pop.example", "dom-1", STATE_UNMIGRATED, MODE_REWRITE, 0, 2},
    {"adam.barr@corp.example", "adam@pop.example", "w1", STATE_UNMIGRATED, MODE_BCC, 0, 1},
    {"bob+news@corp.example", "bob+legacy@pop.example", NULL, STATE_UNMIGRATED, MODE_BCC,
     T_CUTOVER, 3},
    {"eve@corp.example", "eve@pop.example", NULL, STATE_MIGRATED, MODE_REWRITE, 0, 4},
};

static void test_json_valid(void **state)
{
    struct import_set set;
    struct problems probs;
    int rc, failed;

    (void) state;
    rc = run_import(valid_json, "t.json", &set, &probs);
    if (rc != 0)
        print_problems(&probs);
    assert_int_equal(rc, 0);
    failed = check_rows("valid json", &set, valid_json_rows, NELEM(valid_json_rows));
    import_set_free(&set);
    assert_int_equal(failed, 0);

    assert_int_equal(run_import("[]", "t.json", &set, &probs), 0);
    assert_int_equal(set.count, 0);
    import_set_free(&set);
}

#define BOM "\xEF\xBB\xBF"

/* check_bom_import - TEXT with a UTF-8 BOM before it imports as WANT does. */
static int check_bom_import(const char *label, const char *text, const char *name,
                            const struct want_row *want, size_t n)
{
    char *with_bom = malloc(strlen(text) + 4);
    struct import_set set;
    struct problems probs;
    int rc, failed;

    assert_non_null(with_bom);
    strcpy(with_bom, BOM);
    strcat(with_bom, text);
    rc = run_import(with_bom, name, &set, &probs);
    free(with_bom);
    if (rc != 0) {
        print_error("%s: rc %d, want 0\n", label, rc);
        print_problems(&probs);
        import_set_free(&set);
        return 1;
    }
    failed = check_rows(label, &set, want, n);
    import_set_free(&set);
    return failed;
}

/* test_bom - Excel's "CSV UTF-8" starts with a BOM: skipped, lines intact. */
static void test_bom(void **state)
{
    static const struct want_row one[] = {
        {"adam@corp.example", "adam@pop.example", NULL, STATE_UNMIGRATED, MODE_BCC, 0, 4},
    };
    char *crlf = replace_all(valid_csv, "\n", "\r\n");
    struct import_set set;
    struct problems probs;
    int failed = 0;

    (void) state;
    failed += check_bom_import("bom csv", valid_csv, "t.csv", valid_rows, NELEM(valid_rows));
    failed += check_bom_import("bom crlf csv", crlf, "t.csv", valid_rows, NELEM(valid_rows));
    failed += check_bom_import("bom blank lines", "\n\n" HEADER GOOD, "t.csv", one,
                               NELEM(one));
    failed += check_bom_import("bom json", valid_json, "t.json", valid_json_rows,
                               NELEM(valid_json_rows));
    free(crlf);
    assert_int_equal(failed, 0);

    /* Only a BOM: an empty file. Half a BOM: not our header. */
    assert_int_equal(run_import(BOM, "t.csv", &set, &probs), 1);
    assert_string_equal(probs.msg[0], "t.csv:1: empty file: a header line "
                        "address,alias,mode,state,wave,cutover[,reverse] is required");
    import_set_free(&set);
    assert_int_equal(run_import("\xEF\xBB" HEADER GOOD, "t.csv", &set, &probs), 1);
    assert_string_equal(probs.msg[0], "t.csv:1: header must be "
                        "address,alias,mode,state,wave,cutover[,reverse]");
    import_set_free(&set);
    /* A BOM anywhere but at the start is data, and not a valid one. */
    assert_int_equal(run_import(HEADER BOM GOOD, "t.csv", &set, &probs), 1);
    assert_string_equal(probs.msg[0], "t.csv:2: bad address '" BOM "adam@corp.example': "
                        "invisible or space character in address");
    import_set_free(&set);
}

#define JGOOD "{\"address\": \"adam@corp.example\", \"alias\": \"adam@pop.example\"}"
static const struct error_case json_error_cases[] = {
    {"[" JGOOD ", {\"address\": \"bob\", \"alias\": \"bob@pop.example\"}]",
     {"t.json:2: bad address 'bob': missing @domain"}},
    {"[" JGOOD ", {\"address\": \"bob@corp.example\", \"alias\": \"bob@pop.example\","
     " \"color\": \"red\"}]",
     {"t.json:2: unknown field 'color' (element 2)"}},
    {"[{\"address\": \"bob@corp.example\", \"alias\": \"bob@pop.example\", \"mode\": 1}]",
     {"t.json:1: field 'mode' must be a string"}},
    {"[{\"address\": \"bob@corp.example\", \"alias\": \"bob@pop.example\", \"wave\": true}]",
     {"t.json:1: field 'wave' must be a string"}},
    {"[{\"address\": \"bob@corp.example\\u0000x\", \"alias\": \"bob@pop.example\"}]",
     {"t.json:1: JSON syntax: \\u0000 is not allowed without JSON_ALLOW_NUL"}},
    {"[{\"alias\": \"bob@pop.example\"}]", {"t.json:1: bad address '': empty address"}},
    {"[" JGOOD ", {\"address\": \"ADAM@corp.example\", \"alias\": \"a2@pop.example\"}]",
     {"t.json:2: duplicate address 'adam@corp.example' (also on line 1)"}},
    {"[" JGOOD ", {\"address\": \"bob@corp.example\", \"alias\": \"bob@pop.example\","
     " \"mode\": \"copy\", \"state\": \"gone\"}]",
     {"t.json:2: bad mode 'copy' (bcc or rewrite)"}},
    {"[" JGOOD ", 42]", {"t.json:2: element 2 is not an object"}},
    {"[\"adam@corp.example\"]", {"t.json:1: element 1 is not an object"}},
};

static void test_json_errors(void **state)
{
    int failed = 0;

    (void) state;
    for (size_t i = 0; i < NELEM(json_error_cases); i++) {
        const struct error_case *c = &json_error_cases[i];
        struct import_set set;
        struct problems probs;
        int nwant = 0, bad = 0;
        int rc = run_import(c->text, "t.json", &set, &probs);

        while (nwant < 4 && c->want[nwant])
            nwant++;
        if (rc != nwant || probs.count != nwant) {
            print_error("json case %zu: got rc %d and %d problems, want %d\n", i, rc,
                        probs.count, nwant);
            bad = 1;
        }
        for (int k = 0; !bad && k < nwant; k++)
            if (strcmp(probs.msg[k], c->want[k]) != 0) {
                print_error("json case %zu: problem %d: got '%s', want '%s'\n", i, k,
                            probs.msg[k], c->want[k]);
                bad = 1;
            }
        if (bad) {
            print_error("  text: %s\n", c->text);
            print_problems(&probs);
            failed++;
        }
        import_set_free(&set);
    }
    if (failed)
        fail_msg("%d of %zu json error cases failed", failed, NELEM(json_error_cases));
}

/* test_json_syntax - a JSON parse error is one problem naming the file. */
static void test_json_syntax(void **state)
{
    static const char *const texts[] = {"[", "[{\"address\": }]", "[" JGOOD "] trailing",
                                        "[" JGOOD ",]"};
    int failed = 0;

    (void) state;
    for (size_t i = 0; i < NELEM(texts); i++) {
        struct import_set set;
        struct problems probs;
        int rc = run_import(texts[i], "t.json", &set, &probs);

        if (rc != 1 || probs.count != 1 || strncmp(probs.msg[0], "t.json:", 7) != 0
            || strstr(probs.msg[0], ": JSON syntax: ") == NULL) {
            print_error("json syntax case '%s': got rc %d, first problem '%s'\n", texts[i],
                        rc, probs.count ? probs.msg[0] : "(none)");
            failed++;
        }
        import_set_free(&set);
    }
    if (failed)
        fail_msg("%d json syntax cases failed", failed);
}

/* Records for the export tests, with the exact export lines. */
struct export_case {
    const char *key;
    enum record_kind kind;
    enum record_state state;
    enum record_mode mode;
    const char *alias;
    const char *wave;
    long long cutover;
    const char *csv;
    const char *json;
    int reverse;
};

static const struct export_case export_cases[] = {
    {"@corp.example", RECORD_DOMAIN, STATE_UNMIGRATED, MODE_REWRITE, "pop.example", "dom-1",
     T_CUTOVER, "@corp.example,@pop.example,rewrite,unmigrated,dom-1,2026-12-04T18:00:00Z,no\n",
     "{\"address\":\"@corp.example\",\"alias\":\"@pop.example\",\"mode\":\"rewrite\","
     "\"state\":\"unmigrated\",\"wave\":\"dom-1\",\"cutover\":\"2026-12-04T18:00:00Z\",\"reverse\":false}", 0},
    {"adam.barr@corp.example", RECORD_USER, STATE_UNMIGRATED, MODE_BCC, "adam@pop.example",
     "w1", 0, "adam.barr@corp.example,adam@pop.example,bcc,unmigrated,w1,,no\n",
     "{\"address\":\"adam.barr@corp.example\",\"alias\":\"adam@pop.example\","
     "\"mode\":\"bcc\",\"state\":\"unmigrated\",\"wave\":\"w1\",\"cutover\":\"\",\"reverse\":false}", 0},
    {"eve@corp.example", RECORD_USER, STATE_MIGRATED, MODE_REWRITE, "eve+legacy@pop.example",
     "", 0, "eve@corp.example,eve+legacy@pop.example,rewrite,migrated,,,no\n",
     "{\"address\":\"eve@corp.example\",\"alias\":\"eve+legacy@pop.example\","
     "\"mode\":\"rewrite\",\"state\":\"migrated\",\"wave\":\"\",\"cutover\":\"\",\"reverse\":false}", 0},
    {"o'brien@corp.example", RECORD_USER, STATE_UNMIGRATED, MODE_BCC, "obrien@pop.example",
     "", T_CUTOVER + 1,
     "o'brien@corp.example,obrien@pop.example,bcc,unmigrated,,2026-12-04T18:00:01Z,no\n",
     "{\"address\":\"o'brien@corp.example\",\"alias\":\"obrien@pop.example\","
     "\"mode\":\"bcc\",\"state\":\"unmigrated\",\"wave\":\"\","
     "\"cutover\":\"2026-12-04T18:00:01Z\",\"reverse\":false}", 0},
    {"zed@corp.example", RECORD_USER, STATE_MIGRATED, MODE_BCC, "zed@pop.example",
     "2026.12-wave_3", T_CUTOVER,
     "zed@corp.example,zed@pop.example,bcc,migrated,2026.12-wave_3,2026-12-04T18:00:00Z,no\n",
     "{\"address\":\"zed@corp.example\",\"alias\":\"zed@pop.example\",\"mode\":\"bcc\","
     "\"state\":\"migrated\",\"wave\":\"2026.12-wave_3\","
     "\"cutover\":\"2026-12-04T18:00:00Z\",\"reverse\":false}", 0},
    /* reverse routing on: "yes", and a JSON true */
    {"@sales.example", RECORD_DOMAIN, STATE_MIGRATED, MODE_REWRITE, "legacy-sales.example", "",
     0, "@sales.example,@legacy-sales.example,rewrite,migrated,,,yes\n",
     "{\"address\":\"@sales.example\",\"alias\":\"@legacy-sales.example\","
     "\"mode\":\"rewrite\",\"state\":\"migrated\",\"wave\":\"\",\"cutover\":\"\","
     "\"reverse\":true}", 1},
    {"ulf@corp.example", RECORD_USER, STATE_MIGRATED, MODE_BCC, "ulf@pop.example", "w1",
     0, "ulf@corp.example,ulf@pop.example,bcc,migrated,w1,,yes\n",
     "{\"address\":\"ulf@corp.example\",\"alias\":\"ulf@pop.example\","
     "\"mode\":\"bcc\",\"state\":\"migrated\",\"wave\":\"w1\",\"cutover\":\"\","
     "\"reverse\":true}", 1},
};

static struct record export_record(const struct export_case *c)
{
    struct record rec;

    memset(&rec, 0, sizeof(rec));
    rec.kind = c->kind;
    rec.state = c->state;
    rec.mode = c->mode;
    snprintf(rec.alias, sizeof(rec.alias), "%s", c->alias);
    snprintf(rec.wave, sizeof(rec.wave), "%s", c->wave);
    rec.cutover = (time_t) c->cutover;
    rec.reverse = c->reverse;
    return rec;
}

/* export_all - the whole export of export_cases in FORMAT, malloc'd. */
static char *export_all(int json)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);

    assert_non_null(fp);
    assert_int_equal(json ? export_json_begin(fp) : export_csv_header(fp), 0);
    for (size_t i = 0; i < NELEM(export_cases); i++) {
        struct record rec = export_record(&export_cases[i]);

        assert_int_equal(json ? export_json_row(fp, export_cases[i].key, &rec, i == 0)
                         : export_csv_row(fp, export_cases[i].key, &rec), 0);
    }
    if (json)
        assert_int_equal(export_json_end(fp), 0);
    assert_int_equal(fclose(fp), 0);
    return buf;
}

/* test_export_exact - the exact text of every row, both formats. */
static void test_export_exact(void **state)
{
    char want[8192];
    char *got;
    size_t n;
    int same;

    (void) state;
    n = (size_t) snprintf(want, sizeof(want), HEADER7);
    for (size_t i = 0; i < NELEM(export_cases); i++)
        n += (size_t) snprintf(want + n, sizeof(want) - n, "%s", export_cases[i].csv);
    got = export_all(0);
    same = strcmp(got, want) == 0;
    if (!same)
        print_error("csv export: got\n%s\nwant\n%s\n", got, want);
    free(got);
    assert_true(same);

    n = (size_t) snprintf(want, sizeof(want), "[");
    for (size_t i = 0; i < NELEM(export_cases); i++)
        n += (size_t) snprintf(want + n, sizeof(want) - n, "%s\n%s", i ? "," : "",
                               export_cases[i].json);
    snprintf(want + n, sizeof(want) - n, "\n]\n");
    got = export_all(1);
    same = strcmp(got, want) == 0;
    if (!same)
        print_error("json export: got\n%s\nwant\n%s\n", got, want);
    free(got);
    assert_true(same);
}

/* test_export_csv_quoting - a field with a comma or quote is RFC 4180 quoted. */
static void test_export_csv_quoting(void **state)
{
    struct record rec;
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    int same;

    (void) state;
    assert_non_null(fp);
    memset(&rec, 0, sizeof(rec));
    rec.kind = RECORD_USER;
    strcpy(rec.alias, "x,\"y\"@pop.example");
    assert_int_equal(export_csv_row(fp, "a@corp.example", &rec), 0);
    assert_int_equal(fclose(fp), 0);
    same = strcmp(buf, "a@corp.example,\"x,\"\"y\"\"@pop.example\",bcc,unmigrated,,,no\n") == 0;
    if (!same)
        print_error("quoted export: got '%s'\n", buf);
    free(buf);
    assert_true(same);
}

/* check_reimport - import TEXT and compare each row with its export case. */
static void check_reimport(const char *text, const char *name)
{
    struct import_set set;
    struct problems probs;
    int rc = run_import(text, name, &set, &probs), failed = 0;

    if (rc != 0) {
        print_error("%s: re-import of\n%s\nfailed:\n", name, text);
        print_problems(&probs);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(set.count, NELEM(export_cases));
    for (size_t i = 0; i < NELEM(export_cases); i++) {
        const struct import_row *row = import_find(&set, export_cases[i].key);
        struct record want = export_record(&export_cases[i]), got;

        if (row == NULL) {
            print_error("%s: '%s' missing after re-import\n", name, export_cases[i].key);
            failed++;
            continue;
        }
        import_row_record(row, &got);
        if (memcmp(&got, &want, sizeof(got)) != 0) {
            print_error("%s: '%s' came back as alias='%s' wave='%s' state=%s mode=%s "
                        "cutover=%lld\n", name, row->key, got.alias, got.wave,
                        record_state_name(got.state), record_mode_name(got.mode),
                        (long long) got.cutover);
            failed++;
        }
    }
    import_set_free(&set);
    assert_int_equal(failed, 0);
}

static void test_round_trip(void **state)
{
    char *text;

    (void) state;
    text = export_all(0);
    check_reimport(text, "export.csv");
    free(text);
    text = export_all(1);
    check_reimport(text, "export.json");
    free(text);
}

/* test_reverse_column - the optional seventh column, in CSV and JSON. */
static void test_reverse_column(void **state)
{
    static const struct {
        const char *text, *name;
        const char *want_reverse;   /* per row sorted by key: '1' or '0' */
    } good[] = {
        {HEADER7 "a@corp.example,a@pop.example,,,,,yes\n"
                 "b@corp.example,b@pop.example,,,,,no\n"
                 "c@corp.example,c@pop.example,,,,,\n"
                 "@corp.example,@pop.example,rewrite,migrated,,,yes\n", "t.csv", "1100"},
        /* the six columns of 0.2: reverse off */
        {HEADER "a@corp.example,a@pop.example,,,,\n", "t.csv", "0"},
        {"[{\"address\":\"a@corp.example\",\"alias\":\"a@pop.example\",\"reverse\":true},"
         "{\"address\":\"b@corp.example\",\"alias\":\"b@pop.example\",\"reverse\":false},"
         "{\"address\":\"c@corp.example\",\"alias\":\"c@pop.example\",\"reverse\":null},"
         "{\"address\":\"d@corp.example\",\"alias\":\"d@pop.example\"}]", "t.json", "1000"},
        /* a shared alias is fine while nobody routes it back */
        {HEADER7 "a@corp.example,x@pop.example,,,,,no\nb@corp.example,x@pop.example,,,,,\n",
         "t.csv", "00"},
    };
    static const struct {
        const char *text, *name, *want;
    } bad[] = {
        {HEADER7 "a@corp.example,a@pop.example,,,,,Yes\n", "t.csv",
         "t.csv:2: bad reverse 'Yes' (yes, no or empty)"},
        {HEADER7 "a@corp.example,a@pop.example,,,,,1\n", "t.csv",
         "t.csv:2: bad reverse '1' (yes, no or empty)"},
        /* each row as wide as its header */
        {HEADER7 "a@corp.example,a@pop.example,,,,\n", "t.csv",
         "t.csv:2: expected 7 fields, found 6"},
        {HEADER "a@corp.example,a@pop.example,,,,,yes\n", "t.csv",
         "t.csv:2: expected 6 fields, found 7"},
        {"[{\"address\":\"a@corp.example\",\"alias\":\"a@pop.example\",\"reverse\":\"yes\"}]",
         "t.json", "t.json:1: field 'reverse' must be true or false"},
        /* two owners of one alias, one routing it back */
        {HEADER7 "a@corp.example,x@pop.example,,,,,\nb@corp.example,x@pop.example,,,,,yes\n",
         "t.csv", "t.csv:3: alias 'x@pop.example' is shared with 'a@corp.example' (line 2): "
         "reverse routing needs one owner"},
        {HEADER7 "@a.example,@pop.example,,,,,yes\n@b.example,@pop.example,,,,,\n", "t.csv",
         "t.csv:2: alias '@pop.example' is shared with '@b.example' (line 3): reverse "
         "routing needs one owner"},
        /* '=' keys are the reverse index's */
        {HEADER7 "=a@corp.example,a@pop.example,,,,,\n", "t.csv",
         "t.csv:2: '=a@corp.example': addresses starting with '=' cannot be managed (the "
         "reverse index uses such keys)"},
    };
    int failed = 0;

    (void) state;
    for (size_t i = 0; i < NELEM(good); i++) {
        struct import_set set;
        struct problems probs;
        int rc = run_import(good[i].text, good[i].name, &set, &probs);
        char got[16] = "";

        for (size_t r = 0; r < set.count && r < sizeof(got) - 1; r++)
            got[r] = set.rows[r].reverse ? '1' : '0';
        if (rc != 0 || strcmp(got, good[i].want_reverse) != 0) {
            print_error("good case %zu: rc %d, reverse '%s', want '%s'\n", i, rc, got,
                        good[i].want_reverse);
            print_problems(&probs);
            failed++;
        }
        for (size_t r = 0; r < set.count; r++) {
            struct record rec;

            import_row_record(&set.rows[r], &rec);
            if (rec.reverse != set.rows[r].reverse) {
                print_error("good case %zu: row %zu: record reverse %d\n", i, r, rec.reverse);
                failed++;
            }
        }
        import_set_free(&set);
    }
    for (size_t i = 0; i < NELEM(bad); i++) {
        struct import_set set;
        struct problems probs;
        int rc = run_import(bad[i].text, bad[i].name, &set, &probs);

        if (rc != 1 || strcmp(probs.msg[0], bad[i].want) != 0) {
            print_error("bad case %zu: rc %d, want 1 problem '%s'\n", i, rc, bad[i].want);
            print_problems(&probs);
            failed++;
        }
        import_set_free(&set);
    }
    if (failed)
        fail_msg("%d reverse column cases failed", failed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_valid),
        cmocka_unit_test(test_csv_crlf),
        cmocka_unit_test(test_csv_no_final_newline),
        cmocka_unit_test(test_csv_header_only),
        cmocka_unit_test(test_csv_keys_whole),
        cmocka_unit_test(test_csv_errors),
        cmocka_unit_test(test_csv_syntax),
        cmocka_unit_test(test_csv_long_field),
        cmocka_unit_test(test_long_name),
        cmocka_unit_test(test_import_find),
        cmocka_unit_test(test_json_valid),
        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_json_syntax),
        cmocka_unit_test(test_bom),
        cmocka_unit_test(test_export_exact),
        cmocka_unit_test(test_export_csv_quoting),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_reverse_column),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
