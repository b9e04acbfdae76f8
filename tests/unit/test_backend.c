/*
 * test_backend.c - unit tests of the change-set seam's local backend
 * (policy/backend.c) on a temp store.
 *
 * Covers: a change applied whole (puts, deletes, a note; the journal and
 * the reverse index kept by the store in the same transaction);
 * compare-and-set: an expected old value that is not what the store holds
 * (another writer came first), a key expected absent that exists, either
 * way CHANGE_CONFLICT and the store byte-for-byte as before; a bulk change
 * journals its notes only; a record that does not decode can be removed by
 * the text store_get_text gives for it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <tdb.h>
#include <unistd.h>

#include "backend.h"
#include "store.h"

#define ADAM "v=1 state=unmigrated mode=bcc alias=adam@pop.example"
#define ADAM_M "v=1 state=migrated mode=bcc alias=adam@pop.example"
#define BEA "v=1 state=unmigrated mode=rewrite alias=bea@pop.example"

struct fx {
    char dir[64], path[128];
    struct store *st;
    struct backend *be;
};

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    char err[STORE_ERR_MAX];

    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_backend.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/state.tdb", fx->dir);
    fx->st = store_open(fx->path, STORE_CREATE, 1009, err);
    assert_non_null(fx->st);
    fx->be = backend_tdb(fx->st);
    assert_non_null(fx->be);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;

    backend_free(fx->be);
    store_close(fx->st);
    unlink(fx->path);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* apply - build a change from OPS ("put KEY OLD|- NEW", "del KEY OLD") and apply it. */
static int apply(struct fx *fx, const char *const *ops, size_t n, int bulk, char *err)
{
    struct change ch;
    char cerr[CHANGE_ERR_MAX];
    long long id = -1;
    int rc;

    assert_int_equal(change_init(&ch, "root/0", "mx1", cerr), 0);
    for (size_t i = 0; i < n; i += 3) {
        const char *old = strcmp(ops[i + 2], "-") == 0 ? NULL : ops[i + 2];

        if (strncmp(ops[i], "put ", 4) == 0)
            assert_int_equal(change_put(&ch, ops[i] + 4, old, ops[i + 1], cerr), 0);
        else
            assert_int_equal(change_delete(&ch, ops[i] + 4, old, cerr), 0);
    }
    assert_int_equal(change_note(&ch, "!test", "-", "note", cerr), 0);
    rc = backend_apply(fx->be, &ch, bulk, &id, err);
    assert_int_equal(id, 0);
    change_free(&ch);
    return rc;
}

/* count_journal - journal entries, and whether one is for KEY. */
struct jcount {
    const char *key;
    int all, of_key;
};

static int count_entry(const struct journal_entry *e, void *ctx)
{
    struct jcount *j = ctx;

    j->all++;
    j->of_key += strcmp(e->key, j->key) == 0;
    return 0;
}

static void test_apply_whole(void **state)
{
    struct fx *fx = *state;
    static const char *const first[] = {
        "put adam@corp.example", ADAM, "-",
        "put bea@corp.example", BEA, "-",
    };
    static const char *const second[] = {
        "put adam@corp.example", ADAM_M, ADAM,
        "del bea@corp.example", "", BEA,
    };
    char err[BACKEND_ERR_MAX], owner[ADDR_BUFSIZE];
    struct jcount j = {"adam@corp.example", 0, 0};
    struct record rec;

    assert_string_equal(backend_name(fx->be), "tdb");
    assert_int_equal(apply(fx, first, 6, 0, err), CHANGE_OK);
    assert_int_equal(apply(fx, second, 6, 0, err), CHANGE_OK);
    assert_int_equal(store_get(fx->st, "adam@corp.example", &rec), 1);
    assert_int_equal(rec.state, STATE_MIGRATED);
    assert_int_equal(store_get(fx->st, "bea@corp.example", &rec), 0);
    /* the store's own upkeep happened in the same transaction */
    assert_int_equal(store_reverse_get(fx->st, "adam@pop.example", owner), 1);
    assert_string_equal(owner, "adam@corp.example");
    assert_int_equal(store_reverse_get(fx->st, "bea@pop.example", owner), 0);
    assert_int_equal(store_journal(fx->st, NULL, 0, count_entry, &j), 0);
    assert_int_equal(j.of_key, 2);
    assert_int_equal(j.all, 6);         /* 4 records ops, 2 notes */
}

/* file_bytes - the store file, to compare before and after. */
static char *file_bytes(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *buf = malloc(1 << 20);

    assert_non_null(fp);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 20, fp);
    fclose(fp);
    return buf;
}

static void test_conflict_changes_nothing(void **state)
{
    struct fx *fx = *state;
    static const char *const first[] = {"put adam@corp.example", ADAM, "-"};
    /* another writer migrated adam after we read ADAM: our change is stale */
    static const char *const other[] = {"put adam@corp.example", ADAM_M, ADAM};
    static const char *const stale[] = {
        "put bea@corp.example", BEA, "-",
        "put adam@corp.example", BEA, ADAM,
    };
    static const char *const exists[] = {"put adam@corp.example", ADAM, "-"};
    char err[BACKEND_ERR_MAX], *before, *after;
    size_t nb, na;
    struct record rec;

    assert_int_equal(apply(fx, first, 3, 0, err), CHANGE_OK);
    assert_int_equal(apply(fx, other, 3, 0, err), CHANGE_OK);
    before = file_bytes(fx->path, &nb);
    assert_int_equal(apply(fx, stale, 6, 0, err), CHANGE_CONFLICT);
    assert_non_null(strstr(err, "adam@corp.example"));
    assert_int_equal(apply(fx, exists, 3, 0, err), CHANGE_CONFLICT);
    after = file_bytes(fx->path, &na);
    assert_int_equal(nb, na);
    assert_memory_equal(before, after, nb);
    assert_int_equal(store_get(fx->st, "bea@corp.example", &rec), 0);
    assert_int_equal(store_get(fx->st, "adam@corp.example", &rec), 1);
    assert_int_equal(rec.state, STATE_MIGRATED);
    free(before);
    free(after);
}

static void test_bulk_journals_notes_only(void **state)
{
    struct fx *fx = *state;
    static const char *const ops[] = {
        "put adam@corp.example", ADAM, "-",
        "put bea@corp.example", BEA, "-",
    };
    char err[BACKEND_ERR_MAX];
    struct jcount j = {"!test", 0, 0};

    assert_int_equal(apply(fx, ops, 6, 1, err), CHANGE_OK);
    assert_int_equal(store_journal(fx->st, NULL, 0, count_entry, &j), 0);
    assert_int_equal(j.all, 1);
    assert_int_equal(j.of_key, 1);
}

static void test_undecodable_record_removed(void **state)
{
    struct fx *fx = *state;
    static const char raw[] = "v=1 state=bogus\0junk";
    char err[BACKEND_ERR_MAX], text[RECORD_TEXT_MAX + 1];
    struct tdb_context *tdb;
    struct record rec;
    TDB_DATA key = {(unsigned char *) "adam@corp.example", 17};
    TDB_DATA val = {(unsigned char *) raw, sizeof(raw) - 1};
    const char *del[3] = {"del adam@corp.example", "", text};

    /* a damaged record, written behind the store's back */
    store_close(fx->st);
    tdb = tdb_open(fx->path, 0, 0, O_RDWR, 0);
    assert_non_null(tdb);
    assert_int_equal(tdb_store(tdb, key, val, TDB_REPLACE), 0);
    tdb_close(tdb);
    fx->st = store_open(fx->path, STORE_OPEN_EXISTING, 0, err);
    assert_non_null(fx->st);
    backend_free(fx->be);
    fx->be = backend_tdb(fx->st);
    assert_int_equal(store_get(fx->st, "adam@corp.example", &rec), -1);
    assert_int_equal(store_get_text(fx->st, "adam@corp.example", text, sizeof(text)), 1);
    assert_int_equal(text[0], '!');
    assert_int_equal(apply(fx, del, 3, 0, err), CHANGE_OK);
    assert_int_equal(store_get_text(fx->st, "adam@corp.example", text, sizeof(text)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_apply_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflict_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bulk_journals_notes_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_undecodable_record_removed, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
