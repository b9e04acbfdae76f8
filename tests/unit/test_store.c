/*
 * test_store.c - unit tests of the state store (policy/store.c, journal.c)
 * on a real TDB file in a temp directory.
 *
 * Covers: create and open (and their failures: existing file, missing
 * file, a file that is not a tdb), put/get/delete round trips, refused
 * journal-like keys, transactions (cancel, commit, a failing step inside a
 * multi-key transaction), the journal written in the same transaction
 * (newest first, filtered by key, limited), traversal skipping the journal,
 * a corrupt record planted with tdb directly (store_get, store_traverse,
 * store_check), replacement and deletion of the file on disk, wiping the
 * records but not the journal, and the sequence number; the reverse
 * index: kept by put, delete and wipe, undone with its transaction, its
 * '=' keys neither got nor put as records, the upgrade of a store written
 * without it, and check finding and rebuilding a damaged one.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <tdb.h>

#include "record.h"
#include "store.h"
#include "timefmt.h"
#include "check.h"

/* Compare strings with a message naming both, like Postfix's ptest. */

struct fixture {
    char dir[64];
    char path[128];
    struct store *st;
    char err[STORE_ERR_MAX];
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    if (fx == NULL)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_store.XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    snprintf(fx->path, sizeof(fx->path), "%s/state.tdb", fx->dir);
    *state = fx;
    return 0;
}

/* teardown - close the store and remove every file of the temp dir. */
static int teardown(void **state)
{
    struct fixture *fx = *state;
    DIR *d;
    struct dirent *de;

    store_close(fx->st);
    if ((d = opendir(fx->dir)) != NULL) {
        while ((de = readdir(d)) != NULL) {
            char p[512];

            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof(p), "%s/%s", fx->dir, de->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* create - a fresh store at the fixture's path. */
static struct store *create(struct fixture *fx)
{
    fx->st = store_open(fx->path, STORE_CREATE, 31, fx->err);
    if (fx->st == NULL)
        fail_msg("store_open(CREATE): %s", fx->err);
    return fx->st;
}

/* user_rec - an unmigrated user record with ALIAS and WAVE. */
static struct record user_rec(const char *alias, const char *wave, enum record_mode mode)
{
    struct record rec;

    memset(&rec, 0, sizeof(rec));
    rec.kind = RECORD_USER;
    rec.state = STATE_UNMIGRATED;
    rec.mode = mode;
    snprintf(rec.alias, sizeof(rec.alias), "%s", alias);
    snprintf(rec.wave, sizeof(rec.wave), "%s", wave);
    return rec;
}

static struct record domain_rec(const char *legacy)
{
    struct record rec = user_rec(legacy, "", MODE_BCC);

    rec.kind = RECORD_DOMAIN;
    return rec;
}

/* encoded - REC's stored text, for journal old/new values. */
static const char *encoded(const struct record *rec, char buf[RECORD_TEXT_MAX + 1])
{
    if (record_encode(rec, buf, RECORD_TEXT_MAX + 1) < 0)
        fail_msg("record_encode failed");
    return buf;
}

static void put_ok(struct store *st, const char *key, const struct record *rec,
                   const char *actor)
{
    if (store_put(st, key, rec, actor) != 0)
        fail_msg("store_put('%s'): %s", key, store_error(st));
}

/* expect_absent / expect_alias - what store_get says about KEY. */
static void expect_absent(struct store *st, const char *key)
{
    struct record rec;
    int rc = store_get(st, key, &rec);

    if (rc != 0)
        fail_msg("store_get('%s'): got %d, want 0 (absent); error '%s'", key, rc,
                 store_error(st));
}

static void expect_alias(struct store *st, const char *key, const char *alias)
{
    struct record rec;
    int rc = store_get(st, key, &rec);

    if (rc != 1)
        fail_msg("store_get('%s'): got %d, want 1; error '%s'", key, rc, store_error(st));
    CHECK_STR(rec.alias, alias);
}

/* ---- collecting journal entries and traversed keys -------------------- */

#define MAX_SEEN 64

struct seen {
    size_t count;
    int stop_after;             /* visitor returns 1 after this many; 0: never */
    char line[MAX_SEEN][3 * RECORD_TEXT_MAX + 128];
    unsigned long long seq[MAX_SEEN];
    time_t when[MAX_SEEN];
};

static int journal_visit(const struct journal_entry *e, void *ctx)
{
    struct seen *s = ctx;

    if (s->count < MAX_SEEN) {
        snprintf(s->line[s->count], sizeof(s->line[0]), "%s %s %s -> %s", e->actor, e->key,
                 e->old_value, e->new_value);
        s->seq[s->count] = e->seq;
        s->when[s->count] = e->when;
    }
    s->count++;
    return s->stop_after && s->count >= (size_t) s->stop_after;
}

static int traverse_visit(const char *key, const struct record *rec, void *ctx)
{
    struct seen *s = ctx;

    if (s->count < MAX_SEEN)
        snprintf(s->line[s->count], sizeof(s->line[0]), "%s=%s", key, rec->alias);
    s->count++;
    return s->stop_after && s->count >= (size_t) s->stop_after;
}

static int line_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* joined - the seen lines as one "a|b|c" string (sorted if asked). */
static const char *joined(struct seen *s, int sorted, char *buf, size_t len)
{
    size_t n = s->count < MAX_SEEN ? s->count : MAX_SEEN;

    if (sorted)
        qsort(s->line, n, sizeof(s->line[0]), line_cmp);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        strncat(buf, s->line[i], len - strlen(buf) - 1);
        if (i + 1 < n)
            strncat(buf, "|", len - strlen(buf) - 1);
    }
    return buf;
}

static size_t journal_count(struct store *st, const char *key)
{
    struct seen *s = calloc(1, sizeof(*s));
    size_t n;

    assert_non_null(s);
    if (store_journal(st, key, 0, journal_visit, s) != 0)
        fail_msg("store_journal: %s", store_error(st));
    n = s->count;
    free(s);
    return n;
}

/* ---- open and create ---------------------------------------------------- */

static void test_create_then_create_again_fails(void **state)
{
    struct fixture *fx = *state;
    char want[512];
    struct stat sb;

    create(fx);
    store_close(fx->st);
    fx->st = NULL;
    assert_int_equal(stat(fx->path, &sb), 0);
    fx->st = store_open(fx->path, STORE_CREATE, 31, fx->err);
    assert_null(fx->st);
    /* The reason, then tdb's own diagnostic. */
    snprintf(want, sizeof(want), "%s: cannot open store: File exists: tdb_open_ex: "
             "could not open file %s: File exists", fx->path, fx->path);
    CHECK_STR(fx->err, want);
}

static void test_open_existing(void **state)
{
    struct fixture *fx = *state;
    struct record rec = user_rec("adam@pop.example", "", MODE_BCC);

    put_ok(create(fx), "adam.barr@corp.example", &rec, "tester/0");
    store_close(fx->st);
    fx->st = store_open(fx->path, STORE_OPEN_EXISTING, 0, fx->err);
    if (fx->st == NULL)
        fail_msg("store_open(EXISTING): %s", fx->err);
    CHECK_STR(store_path(fx->st), fx->path);
    expect_alias(fx->st, "adam.barr@corp.example", "adam@pop.example");
}

static void test_open_missing_fails(void **state)
{
    struct fixture *fx = *state;
    char want[512];

    fx->st = store_open(fx->path, STORE_OPEN_EXISTING, 0, fx->err);
    assert_null(fx->st);
    snprintf(want, sizeof(want),
             "%s: No such file or directory (create it with 'coexistctl init')", fx->path);
    CHECK_STR(fx->err, want);
    CHECK_CONTAINS(fx->err, "coexistctl init");
}

static void test_garbage_file_fails(void **state)
{
    static const char *const contents[] = {
        "this is not a tdb file\n",
        "",                                     /* empty: not a store either */
    };
    struct fixture *fx = *state;

    for (size_t i = 0; i < sizeof(contents) / sizeof(contents[0]); i++) {
        FILE *fp = fopen(fx->path, "w");
        char want[512];

        assert_non_null(fp);
        for (int n = 0; contents[i][0] && n < 200; n++)
            fputs(contents[i], fp);
        assert_int_equal(fclose(fp), 0);
        fx->st = store_open(fx->path, STORE_OPEN_EXISTING, 0, fx->err);
        if (fx->st != NULL)
            fail_msg("case %zu: store_open of a non-tdb file succeeded", i);
        /* tdb says EIO for a file without its magic. */
        snprintf(want, sizeof(want), "%s: cannot open store: not a tdb file or damaged: "
                 "Input/output error", fx->path);
        CHECK_STR(fx->err, want);
        unlink(fx->path);
    }
}

/* ---- records ------------------------------------------------------------- */

static void test_put_get_delete_round_trip(void **state)
{
    struct fixture *fx = *state;
    struct record in = user_rec("adam@pop.example", "wave-1", MODE_REWRITE), out;
    struct record din = domain_rec("pop.example");
    const char *why;

    create(fx);
    in.state = STATE_MIGRATED;
    assert_int_equal(timefmt_parse("2026-12-04T18:00:00Z", &in.cutover, &why), 0);
    assert_int_equal(timefmt_parse("2026-11-25T10:00:00Z", &in.changed, &why), 0);
    snprintf(in.actor, sizeof(in.actor), "alice/1000");
    put_ok(fx->st, "adam.barr@corp.example", &in, "alice/1000");
    put_ok(fx->st, "@corp.example", &din, "alice/1000");

    assert_int_equal(store_get(fx->st, "adam.barr@corp.example", &out), 1);
    assert_int_equal(out.kind, RECORD_USER);
    assert_int_equal(out.state, STATE_MIGRATED);
    assert_int_equal(out.mode, MODE_REWRITE);
    CHECK_STR(out.alias, "adam@pop.example");
    CHECK_STR(out.wave, "wave-1");
    assert_int_equal(out.cutover, in.cutover);
    assert_int_equal(out.changed, in.changed);
    CHECK_STR(out.actor, "alice/1000");

    assert_int_equal(store_get(fx->st, "@corp.example", &out), 1);
    assert_int_equal(out.kind, RECORD_DOMAIN);
    assert_int_equal(out.state, STATE_UNMIGRATED);
    assert_int_equal(out.mode, MODE_BCC);
    CHECK_STR(out.alias, "pop.example");
    CHECK_STR(out.wave, "");
    assert_int_equal(out.cutover, 0);

    /* Replace, then delete. */
    in = user_rec("adam2@pop.example", "", MODE_BCC);
    put_ok(fx->st, "adam.barr@corp.example", &in, "alice/1000");
    expect_alias(fx->st, "adam.barr@corp.example", "adam2@pop.example");
    assert_int_equal(store_delete(fx->st, "adam.barr@corp.example", "alice/1000"), 0);
    expect_absent(fx->st, "adam.barr@corp.example");
    expect_alias(fx->st, "@corp.example", "pop.example");
}

static void test_get_absent_is_zero(void **state)
{
    static const char *const keys[] = {"nobody@corp.example", "@nowhere.example", "x@y"};
    struct fixture *fx = *state;

    create(fx);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        expect_absent(fx->st, keys[i]);
}

static void test_delete_absent_is_error(void **state)
{
    struct fixture *fx = *state;

    create(fx);
    assert_int_equal(store_delete(fx->st, "nobody@corp.example", "alice/1000"), -1);
    CHECK_STR(store_error(fx->st), "no record for 'nobody@corp.example'");
    assert_int_equal(journal_count(fx->st, NULL), 0);
}

static void test_journal_keys_refused(void **state)
{
    static const char *const keys[] = {
        "!x", STORE_JOURNAL_SEQ_KEY, STORE_JOURNAL_PREFIX "00000000000000000001", "",
    };
    struct fixture *fx = *state;
    struct record rec = user_rec("adam@pop.example", "", MODE_BCC);

    create(fx);
    put_ok(fx->st, "adam.barr@corp.example", &rec, "alice/1000");
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char want[256];

        snprintf(want, sizeof(want), "'%s' is not a record key", keys[i]);
        if (store_put(fx->st, keys[i], &rec, "alice/1000") != -1)
            fail_msg("store_put('%s') succeeded, want -1", keys[i]);
        CHECK_STR(store_error(fx->st), want);
        if (store_delete(fx->st, keys[i], "alice/1000") != -1)
            fail_msg("store_delete('%s') succeeded, want -1", keys[i]);
        CHECK_STR(store_error(fx->st), want);
    }
    /* The journal is intact: one entry, and its sequence still readable. */
    assert_int_equal(journal_count(fx->st, NULL), 1);
}

/* ---- transactions --------------------------------------------------------- */

static void test_txn_cancel_leaves_nothing(void **state)
{
    struct fixture *fx = *state;
    struct record rec = user_rec("adam@pop.example", "", MODE_BCC);

    create(fx);
    assert_int_equal(store_begin(fx->st), 0);
    put_ok(fx->st, "adam.barr@corp.example", &rec, "alice/1000");
    put_ok(fx->st, "bob@corp.example", &rec, "alice/1000");
    store_cancel(fx->st);
    expect_absent(fx->st, "adam.barr@corp.example");
    expect_absent(fx->st, "bob@corp.example");
    assert_int_equal(journal_count(fx->st, NULL), 0);
    /* A cancel without a transaction is harmless. */
    store_cancel(fx->st);
    put_ok(fx->st, "adam.barr@corp.example", &rec, "alice/1000");
    expect_alias(fx->st, "adam.barr@corp.example", "adam@pop.example");
}

static void test_txn_commit_persists(void **state)
{
    struct fixture *fx = *state;
    struct record a = user_rec("adam@pop.example", "", MODE_BCC);
    struct record b = user_rec("bob@pop.example", "", MODE_BCC);

    create(fx);
    assert_int_equal(store_begin(fx->st), 0);
    assert_int_equal(store_begin(fx->st), -1);
    CHECK_STR(store_error(fx->st), "transaction already open");
    put_ok(fx->st, "adam.barr@corp.example", &a, "alice/1000");
    put_ok(fx->st, "bob@corp.example", &b, "alice/1000");
    assert_int_equal(store_commit(fx->st), 0);
    store_close(fx->st);
    fx->st = store_open(fx->path, STORE_OPEN_EXISTING, 0, fx->err);
    assert_non_null(fx->st);
    expect_alias(fx->st, "adam.barr@corp.example", "adam@pop.example");
    expect_alias(fx->st, "bob@corp.example", "bob@pop.example");
    assert_int_equal(journal_count(fx->st, NULL), 2);
}

static void test_txn_failing_step_then_cancel(void **state)
{
    struct fixture *fx = *state;
    struct record v1 = user_rec("adam@pop.example", "", MODE_BCC);
    struct record v2 = user_rec("adam2@pop.example", "", MODE_REWRITE);
    struct record c = user_rec("carol@pop.example", "", MODE_BCC);
    int seq;

    create(fx);
    put_ok(fx->st, "adam.barr@corp.example", &v1, "alice/1000");
    put_ok(fx->st, "carol@corp.example", &c, "alice/1000");
    seq = store_seqnum(fx->st);

    /* A failing put of a bad key in the middle. */
    assert_int_equal(store_begin(fx->st), 0);
    put_ok(fx->st, "adam.barr@corp.example", &v2, "bob/1001");
    assert_int_equal(store_delete(fx->st, "carol@corp.example", "bob/1001"), 0);
    put_ok(fx->st, "new@corp.example", &v1, "bob/1001");
    assert_int_equal(store_put(fx->st, "!evil", &v1, "bob/1001"), -1);
    store_cancel(fx->st);
    expect_alias(fx->st, "adam.barr@corp.example", "adam@pop.example");
    expect_alias(fx->st, "carol@corp.example", "carol@pop.example");
    expect_absent(fx->st, "new@corp.example");
    assert_int_equal(journal_count(fx->st, NULL), 2);
    assert_int_equal(store_seqnum(fx->st), seq);

    /* A failing delete of an absent key in the middle. */
    assert_int_equal(store_begin(fx->st), 0);
    put_ok(fx->st, "adam.barr@corp.example", &v2, "bob/1001");
    assert_int_equal(store_delete(fx->st, "nobody@corp.example", "bob/1001"), -1);
    store_cancel(fx->st);
    expect_alias(fx->st, "adam.barr@corp.example", "adam@pop.example");
    assert_int_equal(journal_count(fx->st, NULL), 2);
}

static void test_seqnum_increases_on_commit(void **state)
{
    struct fixture *fx = *state;
    struct record rec = user_rec("adam@pop.example", "", MODE_BCC);
    int s0, s1, s2;

    create(fx);
    s0 = store_seqnum(fx->st);
    put_ok(fx->st, "adam.barr@corp.example", &rec, "alice/1000");
    s1 = store_seqnum(fx->st);
    if (!(s1 > s0))
        fail_msg("seqnum after a put: got %d, want > %d", s1, s0);
    assert_int_equal(store_begin(fx->st), 0);
    put_ok(fx->st, "bob@corp.example", &rec, "alice/1000");
    assert_int_equal(store_delete(fx->st, "adam.barr@corp.example", "alice/1000"), 0);
    assert_int_equal(store_commit(fx->st), 0);
    s2 = store_seqnum(fx->st);
    if (!(s2 > s1))
        fail_msg("seqnum after a commit: got %d, want > %d", s2, s1);
    /* Reads do not change it. */
    expect_alias(fx->st, "bob@corp.example", "adam@pop.example");
    assert_int_equal(store_seqnum(fx->st), s2);
}

/* ---- journal -------------------------------------------------------------- */

static void test_journal_newest_first_filter_limit(void **state)
{
    struct fixture *fx = *state;
    struct record a1 = user_rec("adam@pop.example", "", MODE_BCC);
    struct record a2 = user_rec("adam@pop.example", "w2", MODE_REWRITE);
    struct record b = user_rec("bob@pop.example", "", MODE_BCC);
    char t1[RECORD_TEXT_MAX + 1], t2[RECORD_TEXT_MAX + 1], tb[RECORD_TEXT_MAX + 1];
    char want[8 * RECORD_TEXT_MAX], got[8 * RECORD_TEXT_MAX];
    struct seen *s = calloc(1, sizeof(*s));
    time_t before = time(NULL), after;

    assert_non_null(s);
    create(fx);
    put_ok(fx->st, "adam.barr@corp.example", &a1, "alice/1000");
    put_ok(fx->st, "adam.barr@corp.example", &a2, "bob/1001");
    put_ok(fx->st, "bob@corp.example", &b, "alice/1000");
    put_ok(fx->st, "nojournal@corp.example", &b, NULL);       /* not journaled */
    assert_int_equal(store_delete(fx->st, "adam.barr@corp.example", "carol/1002"), 0);
    assert_int_equal(store_journal_note(fx->st, "!import", "-", "import:3-rows", "dave/1003"),
                     0);
    after = time(NULL);
    encoded(&a1, t1);
    encoded(&a2, t2);
    encoded(&b, tb);

    /* All, newest first. */
    assert_int_equal(store_journal(fx->st, NULL, 0, journal_visit, s), 0);
    snprintf(want, sizeof(want),
             "dave/1003 !import - -> import:3-rows"
             "|carol/1002 adam.barr@corp.example %s -> -"
             "|alice/1000 bob@corp.example - -> %s"
             "|bob/1001 adam.barr@corp.example %s -> %s"
             "|alice/1000 adam.barr@corp.example - -> %s", t2, tb, t1, t2, t1);
    CHECK_STR(joined(s, 0, got, sizeof(got)), want);
    for (size_t i = 0; i < s->count; i++) {
        if (i > 0 && !(s->seq[i] < s->seq[i - 1]))
            fail_msg("entry %zu: seq %llu not below %llu", i, s->seq[i], s->seq[i - 1]);
        if (s->when[i] < before || s->when[i] > after)
            fail_msg("entry %zu: time %lld outside [%lld, %lld]", i, (long long) s->when[i],
                     (long long) before, (long long) after);
    }

    /* Filtered by key. */
    memset(s, 0, sizeof(*s));
    assert_int_equal(store_journal(fx->st, "adam.barr@corp.example", 0, journal_visit, s), 0);
    snprintf(want, sizeof(want),
             "carol/1002 adam.barr@corp.example %s -> -"
             "|bob/1001 adam.barr@corp.example %s -> %s"
             "|alice/1000 adam.barr@corp.example - -> %s", t2, t1, t2, t1);
    CHECK_STR(joined(s, 0, got, sizeof(got)), want);

    /* Limited, and limited with a filter: the newest ones. */
    memset(s, 0, sizeof(*s));
    assert_int_equal(store_journal(fx->st, NULL, 2, journal_visit, s), 0);
    snprintf(want, sizeof(want), "dave/1003 !import - -> import:3-rows"
             "|carol/1002 adam.barr@corp.example %s -> -", t2);
    CHECK_STR(joined(s, 0, got, sizeof(got)), want);
    memset(s, 0, sizeof(*s));
    assert_int_equal(store_journal(fx->st, "adam.barr@corp.example", 2, journal_visit, s), 0);
    snprintf(want, sizeof(want), "carol/1002 adam.barr@corp.example %s -> -"
             "|bob/1001 adam.barr@corp.example %s -> %s", t2, t1, t2);
    CHECK_STR(joined(s, 0, got, sizeof(got)), want);

    /* A visitor that stops. */
    memset(s, 0, sizeof(*s));
    s->stop_after = 1;
    assert_int_equal(store_journal(fx->st, NULL, 0, journal_visit, s), 0);
    assert_int_equal(s->count, 1);

    /* No entries for an unknown key. */
    assert_int_equal(journal_count(fx->st, "nobody@corp.example"), 0);
    free(s);
}

static void test_journal_empty_store(void **state)
{
    struct fixture *fx = *state;

    create(fx);
    assert_int_equal(journal_count(fx->st, NULL), 0);
}

static void test_journal_in_same_transaction(void **state)
{
    struct fixture *fx = *state;
    struct record rec = user_rec("adam@pop.example", "", MODE_BCC);

    create(fx);
    assert_int_equal(store_begin(fx->st), 0);
    put_ok(fx->st, "adam.barr@corp.example", &rec, "alice/1000");
    put_ok(fx->st, "bob@corp.example", &rec, "alice/1000");
    assert_int_equal(store_journal_note(fx->st, "!import", "-", "x", "alice/1000"), 0);
    /* Visible inside the transaction... */
    assert_int_equal(journal_count(fx->st, NULL), 3);
    store_cancel(fx->st);
    /* ...and gone with it. */
    assert_int_equal(journal_count(fx->st, NULL), 0);

    assert_int_equal(store_begin(fx->st), 0);
    put_ok(fx->st, "adam.barr@corp.example", &rec, "alice/1000");
    put_ok(fx->st, "bob@corp.example", &rec, "alice/1000");
    assert_int_equal(store_commit(fx->st), 0);
    assert_int_equal(journal_count(fx->st, NULL), 2);
    assert_int_equal(journal_count(fx->st, "bob@corp.example"), 1);
}

/* ---- traversal, corruption, check ------------------------------------------ */

static void test_traverse_skips_journal(void **state)
{
    struct fixture *fx = *state;
    struct record a = user_rec("adam@pop.example", "", MODE_BCC);
    struct record b = user_rec("bob@pop.example", "", MODE_BCC);
    struct record d = domain_rec("pop.example");
    struct seen *s = calloc(1, sizeof(*s));
    char got[1024];

    assert_non_null(s);
    create(fx);
    put_ok(fx->st, "adam.barr@corp.example", &a, "alice/1000");
    put_ok(fx->st, "bob@corp.example", &b, "alice/1000");
    put_ok(fx->st, "@corp.example", &d, "alice/1000");
    assert_int_equal(store_journal_note(fx->st, "!import", "-", "x", "alice/1000"), 0);
    assert_int_equal(store_traverse(fx->st, traverse_visit, s), 0);
    CHECK_STR(joined(s, 1, got, sizeof(got)),
              "@corp.example=pop.example|adam.barr@corp.example=adam@pop.example"
              "|bob@corp.example=bob@pop.example");

    /* A visitor that stops after one record. */
    memset(s, 0, sizeof(*s));
    s->stop_after = 1;
    assert_int_equal(store_traverse(fx->st, traverse_visit, s), 0);
    assert_int_equal(s->count, 1);
    free(s);
}

/* plant - write KEY = VALUE with tdb itself, behind the store's back. */
static void plant(const char *path, const char *key, const char *value)
{
    struct tdb_context *tdb = tdb_open(path, 0, 0, O_RDWR, 0);
    TDB_DATA k = {(unsigned char *) key, strlen(key)};
    TDB_DATA v = {(unsigned char *) value, strlen(value)};

    if (tdb == NULL)
        fail_msg("tdb_open('%s') failed", path);
    if (tdb_store(tdb, k, v, TDB_REPLACE) != 0)
        fail_msg("tdb_store('%s'): %s", key, tdb_errorstr(tdb));
    tdb_close(tdb);
}

struct problems {
    size_t count;
    char text[2048];
};

static void problem_visit(const char *key, const char *why, void *ctx)
{
    struct problems *p = ctx;
    size_t len = strlen(p->text);

    snprintf(p->text + len, sizeof(p->text) - len, "%s%s: %s", p->count ? "|" : "", key, why);
    p->count++;
}

static void test_corrupt_record(void **state)
{
    static const struct {
        const char *key, *value, *why;
    } cases[] = {
        {"bad@corp.example", "v=1 state=bogus mode=bcc alias=a@b.example", "bad state 'bogus'"},
        {"old@corp.example", "v=2 state=migrated mode=bcc alias=a@b.example",
         "unsupported record version '2'"},
        {"junk@corp.example", "garbage", "record does not start with a version"},
        {"@junk.example", "v=1 state=migrated mode=bcc alias=a@b.example",
         "field 'alias' does not belong in a domain record"},
        {"short@corp.example", "v=1 state=migrated mode=bcc",
         "missing field (v, state, mode and alias are required)"},
    };
    struct fixture *fx = *state;
    struct record good = user_rec("adam@pop.example", "", MODE_BCC), rec;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct problems p = {0};
        char want[1024];

        create(fx);
        put_ok(fx->st, "adam.barr@corp.example", &good, "alice/1000");
        store_close(fx->st);
        fx->st = NULL;
        plant(fx->path, cases[i].key, cases[i].value);
        fx->st = store_open(fx->path, STORE_OPEN_EXISTING, 0, fx->err);
        assert_non_null(fx->st);

        if (store_get(fx->st, cases[i].key, &rec) != -1)
            fail_msg("case %zu: store_get of a corrupt record did not fail", i);
        snprintf(want, sizeof(want), "%s: corrupt record for '%s': %s", fx->path,
                 cases[i].key, cases[i].why);
        CHECK_STR(store_error(fx->st), want);
        CHECK_CONTAINS(store_error(fx->st), "corrupt");
        expect_alias(fx->st, "adam.barr@corp.example", "adam@pop.example");

        assert_int_equal(store_traverse(fx->st, NULL, NULL), -1);
        CHECK_STR(store_error(fx->st), want);

        if (store_check(fx->st, problem_visit, &p) != 1)
            fail_msg("case %zu: store_check did not return 1", i);
        snprintf(want, sizeof(want), "%s: %s", cases[i].key, cases[i].why);
        CHECK_STR(p.text, want);
        assert_int_equal(store_check(fx->st, NULL, NULL), 1);

        store_close(fx->st);
        fx->st = NULL;
        unlink(fx->path);
    }
}

static void test_check_clean_store(void **state)
{
    struct fixture *fx = *state;
    struct record a = user_rec("adam@pop.example", "", MODE_BCC);
    struct problems p = {0};

    create(fx);
    assert_int_equal(store_check(fx->st, problem_visit, &p), 0);
    put_ok(fx->st, "adam.barr@corp.example", &a, "alice/1000");
    assert_int_equal(store_journal_note(fx->st, "!import", "-", "x", "alice/1000"), 0);
    assert_int_equal(store_check(fx->st, problem_visit, &p), 0);
    CHECK_STR(p.text, "");
}

/* ---- the file on disk ------------------------------------------------------ */

static void test_changed_on_disk(void **state)
{
    struct fixture *fx = *state;
    char other[256], err[STORE_ERR_MAX];
    struct store *st2;

    create(fx);
    assert_int_equal(store_changed_on_disk(fx->st), 0);
    /* Grown by writes: the same store. */
    for (int i = 0; i < 200; i++) {
        struct record rec = user_rec("a@pop.example", "w1", MODE_BCC);
        char key[64];

        snprintf(key, sizeof(key), "user%d@corp.example", i);
        assert_int_equal(store_put(fx->st, key, &rec, NULL), 0);
    }
    assert_int_equal(store_changed_on_disk(fx->st), 0);
    /* Truncated in place (the same inode): reading the mapping would fault. */
    assert_int_equal(truncate(fx->path, 0), 0);
    assert_int_equal(store_changed_on_disk(fx->st), 2);
    assert_int_equal(store_changed_on_disk(fx->st), 2);
    /* Replaced by rename, as an import into a copy would do. */
    snprintf(other, sizeof(other), "%s/other.tdb", fx->dir);
    st2 = store_open(other, STORE_CREATE, 31, err);
    if (st2 == NULL)
        fail_msg("store_open('%s'): %s", other, err);
    store_close(st2);
    assert_int_equal(rename(other, fx->path), 0);
    assert_int_equal(store_changed_on_disk(fx->st), 1);
    /* Deleted. */
    assert_int_equal(unlink(fx->path), 0);
    assert_int_equal(store_changed_on_disk(fx->st), -1);
}

static void test_wipe_records_keeps_journal(void **state)
{
    struct fixture *fx = *state;
    struct record a = user_rec("adam@pop.example", "", MODE_BCC);
    struct seen *s = calloc(1, sizeof(*s));

    assert_non_null(s);
    create(fx);
    put_ok(fx->st, "adam.barr@corp.example", &a, "alice/1000");
    put_ok(fx->st, "bob@corp.example", &a, "alice/1000");
    put_ok(fx->st, "@corp.example", &(struct record) {.kind = RECORD_DOMAIN,
                                                       .alias = "pop.example"}, "alice/1000");

    /* Inside a transaction that is cancelled: nothing lost. */
    assert_int_equal(store_begin(fx->st), 0);
    assert_int_equal(store_wipe_records(fx->st), 0);
    expect_absent(fx->st, "bob@corp.example");
    store_cancel(fx->st);
    expect_alias(fx->st, "bob@corp.example", "adam@pop.example");

    /* On its own. */
    assert_int_equal(store_wipe_records(fx->st), 0);
    assert_int_equal(store_traverse(fx->st, traverse_visit, s), 0);
    assert_int_equal(s->count, 0);
    expect_absent(fx->st, "adam.barr@corp.example");
    expect_absent(fx->st, "@corp.example");
    assert_int_equal(journal_count(fx->st, NULL), 3);
    /* And the journal goes on numbering after it. */
    put_ok(fx->st, "carol@corp.example", &a, "alice/1000");
    memset(s, 0, sizeof(*s));
    assert_int_equal(store_journal(fx->st, NULL, 0, journal_visit, s), 0);
    assert_int_equal(s->count, 4);
    assert_int_equal(s->seq[0], 4);
    free(s);
}

/* ---- the reverse index (DESIGN section 9) ------------------------------------ */

/* raw - the stored value of KEY read with tdb itself ("-" when absent); the
 * store is closed around it, as one process cannot open a tdb twice. */
static const char *raw(struct fixture *fx, const char *key, char *buf, size_t len)
{
    struct tdb_context *tdb;
    TDB_DATA v;

    store_close(fx->st);
    if ((tdb = tdb_open(fx->path, 0, 0, O_RDWR, 0)) == NULL)
        fail_msg("tdb_open('%s') failed", fx->path);
    v = tdb_fetch(tdb, (TDB_DATA) {(unsigned char *) key, strlen(key)});
    snprintf(buf, len, "%.*s", v.dptr ? (int) v.dsize : 1, v.dptr ? (char *) v.dptr : "-");
    free(v.dptr);
    tdb_close(tdb);
    fx->st = store_open(fx->path, STORE_OPEN_EXISTING, 0, fx->err);
    if (fx->st == NULL)
        fail_msg("store_open: %s", fx->err);
    return buf;
}

/* raw_delete - delete KEY with tdb itself, behind the store's back. */
static void raw_delete(struct fixture *fx, const char *key)
{
    struct tdb_context *tdb;

    store_close(fx->st);
    if ((tdb = tdb_open(fx->path, 0, 0, O_RDWR, 0)) == NULL)
        fail_msg("tdb_open('%s') failed", fx->path);
    if (tdb_delete(tdb, (TDB_DATA) {(unsigned char *) key, strlen(key)}) != 0)
        fail_msg("tdb_delete('%s'): %s", key, tdb_errorstr(tdb));
    tdb_close(tdb);
    fx->st = store_open(fx->path, STORE_OPEN_EXISTING, 0, fx->err);
    if (fx->st == NULL)
        fail_msg("store_open: %s", fx->err);
}

/* index_keys - every '=' key and the marker, "k=v|k=v" sorted. */
static int collect_index(struct tdb_context *tdb, TDB_DATA k, TDB_DATA v, void *ctx)
{
    struct seen *s = ctx;

    (void) tdb;
    if ((k.dptr[0] == '=' || (k.dsize == strlen(STORE_REVERSE_MARKER)
                              && memcmp(k.dptr, STORE_REVERSE_MARKER, k.dsize) == 0))
        && s->count < MAX_SEEN)
        snprintf(s->line[s->count++], sizeof(s->line[0]), "%.*s=%.*s", (int) k.dsize,
                 k.dptr, (int) v.dsize, v.dptr);
    return 0;
}

static const char *index_keys(struct fixture *fx, char *buf, size_t len)
{
    struct seen *s = calloc(1, sizeof(*s));
    struct tdb_context *tdb;

    assert_non_null(s);
    store_close(fx->st);
    if ((tdb = tdb_open(fx->path, 0, 0, O_RDWR, 0)) == NULL)
        fail_msg("tdb_open('%s') failed", fx->path);
    tdb_traverse_read(tdb, collect_index, s);
    tdb_close(tdb);
    joined(s, 1, buf, len);
    free(s);
    fx->st = store_open(fx->path, STORE_OPEN_EXISTING, 0, fx->err);
    if (fx->st == NULL)
        fail_msg("store_open: %s", fx->err);
    return buf;
}

/* expect_owners - store_reverse_get of ALIAS gives N and FIRST. */
static void expect_owners(struct store *st, const char *alias, int n, const char *first)
{
    char owner[ADDR_BUFSIZE];
    int got = store_reverse_get(st, alias, owner);

    if (got != n)
        fail_msg("store_reverse_get('%s'): got %d, want %d; error '%s'", alias, got, n,
                 store_error(st));
    CHECK_STR(owner, first);
}

#define MARK STORE_REVERSE_MARKER "=v=1"

/* The index follows put, change of alias, delete and wipe, in byte order. */
static void test_reverse_index_follows_records(void **state)
{
    struct fixture *fx = *state;
    struct record x = user_rec("x@pop.example", "", MODE_BCC);
    struct record y = user_rec("y@pop.example", "", MODE_BCC);
    struct record d = domain_rec("pop.example");
    char got[4096];

    create(fx);
    CHECK_STR(index_keys(fx, got, sizeof(got)), MARK);
    expect_owners(fx->st, "x@pop.example", 0, "");
    put_ok(fx->st, "zed@corp.example", &x, "alice/1000");
    put_ok(fx->st, "amy@corp.example", &x, NULL);
    put_ok(fx->st, "@corp.example", &d, "alice/1000");
    put_ok(fx->st, "@sales.example", &d, "alice/1000");
    CHECK_STR(index_keys(fx, got, sizeof(got)),
              "!reverse-index=v=1|=@pop.example=v=1 owners=@corp.example,@sales.example"
              "|=x@pop.example=v=1 owners=amy@corp.example,zed@corp.example");
    expect_owners(fx->st, "x@pop.example", 2, "amy@corp.example");
    expect_owners(fx->st, "@pop.example", 2, "@corp.example");
    expect_owners(fx->st, "pop.example", 0, "");

    /* A new alias moves the owner; the same alias again writes nothing new. */
    put_ok(fx->st, "amy@corp.example", &y, "alice/1000");
    put_ok(fx->st, "zed@corp.example", &x, "alice/1000");
    CHECK_STR(index_keys(fx, got, sizeof(got)),
              "!reverse-index=v=1|=@pop.example=v=1 owners=@corp.example,@sales.example"
              "|=x@pop.example=v=1 owners=zed@corp.example"
              "|=y@pop.example=v=1 owners=amy@corp.example");
    expect_owners(fx->st, "x@pop.example", 1, "zed@corp.example");

    /* Delete: the last owner takes the entry with it. */
    assert_int_equal(store_delete(fx->st, "zed@corp.example", "alice/1000"), 0);
    assert_int_equal(store_delete(fx->st, "@corp.example", "alice/1000"), 0);
    CHECK_STR(index_keys(fx, got, sizeof(got)),
              "!reverse-index=v=1|=@pop.example=v=1 owners=@sales.example"
              "|=y@pop.example=v=1 owners=amy@corp.example");
    /* The journal has records only. */
    assert_int_equal(journal_count(fx->st, NULL), 7);
    assert_int_equal(journal_count(fx->st, "=x@pop.example"), 0);

    /* Inside a read lock, as the milter asks. */
    assert_int_equal(store_read_lock(fx->st), 0);
    expect_owners(fx->st, "y@pop.example", 1, "amy@corp.example");
    store_read_unlock(fx->st);

    /* Wipe: records and index go, the marker and the journal stay. */
    assert_int_equal(store_wipe_records(fx->st), 0);
    CHECK_STR(index_keys(fx, got, sizeof(got)), MARK);
    assert_int_equal(journal_count(fx->st, NULL), 7);
    assert_int_equal(store_reverse_check(fx->st, NULL, NULL), 0);
}

/* A cancelled transaction leaves the index as it was, a failed step too. */
static void test_reverse_index_cancel(void **state)
{
    struct fixture *fx = *state;
    struct record x = user_rec("x@pop.example", "", MODE_BCC);
    struct record y = user_rec("y@pop.example", "", MODE_BCC);
    char before[4096], after[4096];

    create(fx);
    put_ok(fx->st, "amy@corp.example", &x, "alice/1000");
    index_keys(fx, before, sizeof(before));
    assert_int_equal(store_begin(fx->st), 0);
    put_ok(fx->st, "amy@corp.example", &y, "alice/1000");
    put_ok(fx->st, "bob@corp.example", &x, "alice/1000");
    expect_owners(fx->st, "y@pop.example", 1, "amy@corp.example");
    expect_owners(fx->st, "x@pop.example", 1, "bob@corp.example");
    assert_int_equal(store_delete(fx->st, "nobody@corp.example", "alice/1000"), -1);
    store_cancel(fx->st);
    CHECK_STR(index_keys(fx, after, sizeof(after)), before);
    CHECK_STR(before, MARK "|=x@pop.example=v=1 owners=amy@corp.example");
}

/* '=' keys: never a record to get, never a record to put. */
static void test_reverse_keys_not_records(void **state)
{
    struct fixture *fx = *state;
    struct record x = user_rec("x@pop.example", "", MODE_BCC);
    char want[256];

    create(fx);
    put_ok(fx->st, "amy@corp.example", &x, "alice/1000");
    /* The index key exists, yet a lookup of it is "absent", not an error. */
    CHECK_STR(raw(fx, "=x@pop.example", want, sizeof(want)), "v=1 owners=amy@corp.example");
    expect_absent(fx->st, "=x@pop.example");
    expect_absent(fx->st, "=y@pop.example");
    if (store_put(fx->st, "=x@pop.example", &x, "alice/1000") != -1)
        fail_msg("store_put of an '=' key succeeded");
    snprintf(want, sizeof(want), "'=x@pop.example': addresses starting with '=' cannot be "
             "managed (the reverse index uses such keys)");
    CHECK_STR(store_error(fx->st), want);
    assert_int_equal(store_delete(fx->st, "=x@pop.example", "alice/1000"), -1);
    CHECK_STR(store_error(fx->st), want);
    expect_owners(fx->st, "x@pop.example", 1, "amy@corp.example");
    assert_int_equal(journal_count(fx->st, NULL), 1);
}

/* A store of the previous version (no index, no marker) is built in one transaction. */
static void test_reverse_upgrade(void **state)
{
    struct fixture *fx = *state;
    struct record x = user_rec("x@pop.example", "", MODE_BCC);
    struct problems p = {0};
    char got[4096];
    size_t n = 0;

    create(fx);
    put_ok(fx->st, "zed@corp.example", &x, "alice/1000");
    put_ok(fx->st, "amy@corp.example", &x, "alice/1000");
    put_ok(fx->st, "@corp.example", &(struct record) {.kind = RECORD_DOMAIN,
                                                       .alias = "pop.example"}, "alice/1000");
    raw_delete(fx, "=x@pop.example");
    raw_delete(fx, "=@pop.example");
    raw_delete(fx, STORE_REVERSE_MARKER);
    CHECK_STR(index_keys(fx, got, sizeof(got)), "");
    /* Readers work without it: they find no owner. */
    expect_owners(fx->st, "x@pop.example", 0, "");
    assert_int_equal(store_reverse_check(fx->st, problem_visit, &p), 4);
    CHECK_CONTAINS(p.text, "!reverse-index: missing");

    /* Inside a transaction that is cancelled: built, then undone. */
    assert_int_equal(store_begin(fx->st), 0);
    assert_int_equal(store_reverse_ensure(fx->st, &n), 1);
    expect_owners(fx->st, "x@pop.example", 2, "amy@corp.example");
    store_cancel(fx->st);
    CHECK_STR(index_keys(fx, got, sizeof(got)), "");

    assert_int_equal(store_reverse_ensure(fx->st, &n), 1);
    assert_int_equal(n, 3);
    CHECK_STR(index_keys(fx, got, sizeof(got)),
              MARK "|=@pop.example=v=1 owners=@corp.example"
              "|=x@pop.example=v=1 owners=amy@corp.example,zed@corp.example");
    assert_int_equal(store_reverse_ensure(fx->st, &n), 0);
    assert_int_equal(store_reverse_check(fx->st, NULL, NULL), 0);
    assert_int_equal(journal_count(fx->st, NULL), 3);

    /* A marker of another version is an error, not a rebuild. */
    store_close(fx->st);
    fx->st = NULL;
    plant(fx->path, STORE_REVERSE_MARKER, "v=2");
    fx->st = store_open(fx->path, STORE_OPEN_EXISTING, 0, fx->err);
    assert_non_null(fx->st);
    assert_int_equal(store_reverse_ensure(fx->st, &n), -1);
    CHECK_CONTAINS(store_error(fx->st), "reverse index marker '!reverse-index' has an "
                   "unknown value 'v=2'");
}

/* check finds a damaged index both ways, and a rebuild mends it. */
static void test_reverse_check_and_rebuild(void **state)
{
    static const struct {
        const char *key, *value, *want;
    } cases[] = {
        /* an entry gone: the record is not named */
        {"=x@pop.example", NULL,
         "amy@corp.example: not in the reverse index (entry '=x@pop.example' does not name "
         "it)|zed@corp.example: not in the reverse index (entry '=x@pop.example' does not "
         "name it)"},
        /* a wrong owner, and a missing one */
        {"=x@pop.example", "v=1 owners=amy@corp.example,bob@corp.example",
         "=x@pop.example: reverse index names 'bob@corp.example', which has no record with "
         "that alias|zed@corp.example: not in the reverse index (entry '=x@pop.example' "
         "does not name it)"},
        /* an entry for an alias nobody has */
        {"=q@pop.example", "v=1 owners=amy@corp.example",
         "=q@pop.example: reverse index names 'amy@corp.example', which has no record with "
         "that alias"},
        /* values that do not parse */
        {"=@pop.example", "v=1 owners=@corp.example,@corp.example",
         "=@pop.example: owners not sorted or repeated at '@corp.example'"
         "|@corp.example: not in the reverse index (entry '=@pop.example' does not name it)"},
        {"=@pop.example", "v=1 owners=corp.example",
         "=@pop.example: bad owner 'corp.example'"
         "|@corp.example: not in the reverse index (entry '=@pop.example' does not name it)"},
        {"=x@pop.example", "v=2 owners=amy@corp.example,zed@corp.example",
         "=x@pop.example: does not start with 'v=1 owners='"
         "|amy@corp.example: not in the reverse index (entry '=x@pop.example' does not name "
         "it)|zed@corp.example: not in the reverse index (entry '=x@pop.example' does not "
         "name it)"},
        {"=x@pop.example", "v=1 owners=zed@corp.example,amy@corp.example",
         "=x@pop.example: owners not sorted or repeated at 'amy@corp.example'"
         "|amy@corp.example: not in the reverse index (entry '=x@pop.example' does not name "
         "it)|zed@corp.example: not in the reverse index (entry '=x@pop.example' does not "
         "name it)"},
    };
    struct fixture *fx = *state;
    struct record x = user_rec("x@pop.example", "", MODE_BCC);
    char owner[ADDR_BUFSIZE], good[4096], got[4096];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct problems p = {0};
        size_t n;

        create(fx);
        put_ok(fx->st, "zed@corp.example", &x, "alice/1000");
        put_ok(fx->st, "amy@corp.example", &x, "alice/1000");
        put_ok(fx->st, "@corp.example", &(struct record) {.kind = RECORD_DOMAIN,
                                                           .alias = "pop.example"}, "a/1");
        assert_int_equal(store_reverse_check(fx->st, problem_visit, &p), 0);
        index_keys(fx, good, sizeof(good));
        if (cases[i].value) {
            store_close(fx->st);
            fx->st = NULL;
            plant(fx->path, cases[i].key, cases[i].value);
            fx->st = store_open(fx->path, STORE_OPEN_EXISTING, 0, fx->err);
            assert_non_null(fx->st);
        } else {
            raw_delete(fx, cases[i].key);
        }
        if (store_reverse_check(fx->st, problem_visit, &p) <= 0)
            fail_msg("case %zu: store_reverse_check found nothing", i);
        CHECK_STR(p.text, cases[i].want);
        /* A value that does not parse is a store error for its readers. */
        if (strstr(cases[i].want, "owners") || strstr(cases[i].want, "owner '")) {
            const char *alias = cases[i].key + 1;

            assert_int_equal(store_reverse_get(fx->st, alias, owner), -1);
            CHECK_CONTAINS(store_error(fx->st), "corrupt reverse index entry");
        }
        /* The records are fine: rebuilding the index mends it. */
        assert_int_equal(store_check(fx->st, NULL, NULL), 0);
        assert_int_equal(store_reverse_build(fx->st, &n), 0);
        assert_int_equal(n, 3);
        assert_int_equal(store_reverse_check(fx->st, NULL, NULL), 0);
        CHECK_STR(index_keys(fx, got, sizeof(got)), good);
        store_close(fx->st);
        fx->st = NULL;
        unlink(fx->path);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_create_then_create_again_fails),
        T(test_open_existing),
        T(test_open_missing_fails),
        T(test_garbage_file_fails),
        T(test_put_get_delete_round_trip),
        T(test_get_absent_is_zero),
        T(test_delete_absent_is_error),
        T(test_journal_keys_refused),
        T(test_txn_cancel_leaves_nothing),
        T(test_txn_commit_persists),
        T(test_txn_failing_step_then_cancel),
        T(test_seqnum_increases_on_commit),
        T(test_journal_newest_first_filter_limit),
        T(test_journal_empty_store),
        T(test_journal_in_same_transaction),
        T(test_traverse_skips_journal),
        T(test_corrupt_record),
        T(test_check_clean_store),
        T(test_changed_on_disk),
        T(test_wipe_records_keeps_journal),
        T(test_reverse_index_follows_records),
        T(test_reverse_index_cancel),
        T(test_reverse_keys_not_records),
        T(test_reverse_upgrade),
        T(test_reverse_check_and_rebuild),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
