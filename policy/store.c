/*
 * store.c - the state store over one TDB file (see store.h).
 *
 * Every write runs inside a TDB transaction, so a reader (the milter) never
 * sees half of a change and a crashed writer leaves the previous state. The
 * file is created with a prime hash size and Jenkins hashing, because the
 * default 131 chains make a million-user store unusably slow.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "store_int.h"

int store_fail(struct store *st, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(st->err, sizeof(st->err), fmt, ap);
    va_end(ap);
    return -1;
}

/*
 * full_disk - the words for errno E if it means the file system is full,
 * else NULL. tdb reports a failed write as "IO Error" or as a failed
 * recovery area ("damaged file" by its error code), its log names the
 * expansion that failed; what the administrator must do is free space.
 */
static const char *full_disk(int e)
{
    if (e == ENOSPC)
        return "no space left on device";
#ifdef EDQUOT
    if (e == EDQUOT)
        return "disk quota exceeded";
#endif
    return NULL;
}

/*
 * space_short - whether the store's file system has too little room left
 * for tdb to grow the file: less than a quarter of the file (tdb grows a
 * file by a quarter, and a commit's recovery area by what the transaction
 * rewrites) plus 1 MiB. Needed because tdb does not always leave ENOSPC in
 * errno: a failed posix_fallocate of the recovery area returns its error
 * code, which tdb drops, and the commit fails with no error code at all.
 * Root may use the blocks reserved for it, so they count for root.
 */
static int space_short(struct store *st, unsigned long long *left)
{
    struct statvfs vfs;
    struct stat sb;

    if (fstatvfs(tdb_fd(st->tdb), &vfs) < 0 || fstat(tdb_fd(st->tdb), &sb) < 0)
        return 0;
    *left = (unsigned long long) (geteuid() == 0 ? vfs.f_bfree : vfs.f_bavail)
            * vfs.f_frsize;
    return *left < (unsigned long long) sb.st_size / 4 + 1024 * 1024;
}

int store_tdb_fail(struct store *st, const char *what)
{
    /* tdb_check leaves the error code at "Success": say what it found. */
    const char *why = tdb_error(st->tdb) == TDB_SUCCESS ? "damaged file"
                      : tdb_errorstr(st->tdb);

    if (st->tdb_msg[0])
        return store_fail(st, "%s: %s: %s (%s)", st->path, what, why, st->tdb_msg);
    return store_fail(st, "%s: %s: %s", st->path, what, why);
}

int store_tdb_write_fail(struct store *st, const char *what)
{
    /* Callers clear errno before the tdb call: a full disk is left in it. */
    const char *full = full_disk(errno);
    enum TDB_ERROR ecode = tdb_error(st->tdb);
    unsigned long long left;

    /* tdb leaves the code of the last lookup when a commit fails (its
     * recovery area could not grow): "does not exist" is never a write's. */
    if (ecode == TDB_ERR_NOEXIST)
        ecode = TDB_SUCCESS;
    if (full != NULL)
        return store_fail(st, "%s: %s: %s", st->path, what, full);
    /* A write that failed for want of room: say so, not "IO Error". */
    if ((ecode == TDB_ERR_IO || ecode == TDB_SUCCESS) && space_short(st, &left))
        return store_fail(st, "%s: %s: no space left on device (%llu bytes free)",
                          st->path, what, left);
    /* A failed write is no damaged file, whatever tdb's error code says. */
    if (ecode == TDB_SUCCESS)
        return store_fail(st, "%s: %s: write failed%s%s", st->path, what,
                          st->tdb_msg[0] ? ": " : "", st->tdb_msg);
    return store_tdb_fail(st, what);
}

/* tdb_log - keep tdb's own diagnostics for the next error message. */
static void tdb_log(struct tdb_context *tdb, enum tdb_debug_level level,
                    const char *fmt, ...)
{
    struct store *st = tdb_get_logging_private(tdb);
    va_list ap;
    size_t n;

    if (st == NULL || level > TDB_DEBUG_WARNING)
        return;
    va_start(ap, fmt);
    vsnprintf(st->tdb_msg, sizeof(st->tdb_msg), fmt, ap);
    va_end(ap);
    n = strlen(st->tdb_msg);
    while (n > 0 && st->tdb_msg[n - 1] == '\n')
        st->tdb_msg[--n] = '\0';
}

/* next_prime - the smallest prime >= N, for the hash table size. */
static unsigned next_prime(unsigned n)
{
    if (n < 3)
        return 3;
    for (n |= 1;; n += 2) {
        unsigned d;

        for (d = 3; d * d <= n; d += 2)
            if (n % d == 0)
                break;
        if (d * d > n)
            return n;
    }
}

struct store *store_open(const char *path, enum store_open_mode mode,
                         unsigned hash_size, char err[STORE_ERR_MAX])
{
    struct tdb_logging_context log = {tdb_log, NULL};
    struct store *st = calloc(1, sizeof(*st));
    struct stat sb;
    int flags = O_RDWR, tdb_flags = TDB_SEQNUM;

    if (st == NULL) {
        snprintf(err, STORE_ERR_MAX, "%s: out of memory", path);
        return NULL;
    }
    if (strlen(path) >= sizeof(st->path)) {
        snprintf(err, STORE_ERR_MAX, "store path too long");
        free(st);
        return NULL;
    }
    strcpy(st->path, path);
    log.log_private = st;
    if (mode == STORE_CREATE) {
        flags |= O_CREAT | O_EXCL;
        tdb_flags |= TDB_INCOMPATIBLE_HASH;
    } else if (stat(path, &sb) < 0) {
        /* tdb_open would say "No such file" too, but less plainly. */
        snprintf(err, STORE_ERR_MAX, "%.300s: %.80s%s", path, strerror(errno),
                 errno == ENOENT ? " (create it with 'coexistctl init')" : "");
        free(st);
        return NULL;
    }
    errno = 0;
    st->tdb = tdb_open_ex(path, (int) next_prime(hash_size ? hash_size
                                                 : STORE_DEFAULT_HASH_SIZE),
                          tdb_flags, flags, 0640, &log, NULL);
    if (st->tdb == NULL) {
        const char *full = full_disk(errno);

        /* tdb says EIO for a file without its magic (garbage, empty). */
        if (full != NULL)
            snprintf(err, STORE_ERR_MAX, "%.300s: cannot %s store: %s", path,
                     mode == STORE_CREATE ? "create" : "open", full);
        else
            snprintf(err, STORE_ERR_MAX, "%.200s: cannot open store: %s%.80s%s%.150s",
                     path, errno == EIO ? "not a tdb file or damaged: " : "",
                     errno ? strerror(errno) : "not a valid tdb file",
                     st->tdb_msg[0] ? ": " : "", st->tdb_msg);
        /* O_EXCL made the file ours: a half-written one would block the next init. */
        if (full != NULL && mode == STORE_CREATE)
            (void) unlink(path);
        free(st);
        return NULL;
    }
    /* A new store has a complete (empty) reverse index: mark it so. */
    if (mode == STORE_CREATE && reverse_mark(st) < 0) {
        snprintf(err, STORE_ERR_MAX, "%s", st->err);
        tdb_close(st->tdb);
        (void) unlink(path);
        free(st);
        return NULL;
    }
    if (fstat(tdb_fd(st->tdb), &sb) == 0)
        st->size_seen = sb.st_size;
    return st;
}

void store_close(struct store *st)
{
    if (st == NULL)
        return;
    if (st->in_txn)
        tdb_transaction_cancel(st->tdb);
    tdb_close(st->tdb);
    free(st);
}

const char *store_error(const struct store *st)
{
    return st->err;
}

const char *store_path(const struct store *st)
{
    return st->path;
}

int store_changed_on_disk(struct store *st)
{
    struct stat on_disk, open_file;

    if (stat(st->path, &on_disk) < 0)
        return -1;
    if (fstat(tdb_fd(st->tdb), &open_file) < 0)
        return 1;
    if (on_disk.st_ino != open_file.st_ino || on_disk.st_dev != open_file.st_dev)
        return 1;
    if (open_file.st_size < st->size_seen)
        return 2;
    st->size_seen = open_file.st_size;
    return 0;
}

int store_seqnum(struct store *st)
{
    return tdb_get_seqnum(st->tdb);
}

int store_key_kind(const char *key, size_t len)
{
    if (len == 0 || key[0] == '!')
        return STORE_KEY_RESERVED;
    if (key[0] == STORE_REVERSE_PREFIX)
        return STORE_KEY_INDEX;
    return key[0] == '@' ? RECORD_DOMAIN : RECORD_USER;
}

/*
 * fetch_value - KEY's value into *VAL (the caller frees dptr): 1, 0 if
 * absent, -1 on an error. An index entry is no record, whatever a remote
 * client asks for.
 */
static int fetch_value(struct store *st, const char *key, TDB_DATA *val)
{
    if (key[0] == STORE_REVERSE_PREFIX)
        return 0;
    st->tdb_msg[0] = '\0';
    *val = tdb_fetch(st->tdb, store_key(key));
    if (val->dptr != NULL)
        return 1;
    return tdb_error(st->tdb) == TDB_ERR_NOEXIST ? 0 : store_tdb_fail(st, "fetch");
}

/* What store_get's parser decodes the record into. */
struct get_ctx {
    enum record_kind kind;
    struct record *rec;
    int rc;
    char why[256];
};

static int decode_in_place(TDB_DATA key, TDB_DATA val, void *arg)
{
    struct get_ctx *g = arg;

    (void) key;
    g->rc = record_decode(g->kind, (const char *) val.dptr, val.dsize, g->rec, g->why,
                          sizeof(g->why));
    return 0;
}

/*
 * store_get - decoded where tdb holds the record (tdb_parse_record), not
 * from a malloc'd copy: this is the milter's lookup, one per recipient.
 */
int store_get(struct store *st, const char *key, struct record *rec)
{
    struct get_ctx g = {addr_is_domain_key(key) ? RECORD_DOMAIN : RECORD_USER, rec, -1, ""};

    if (key[0] == STORE_REVERSE_PREFIX)
        return 0;
    st->tdb_msg[0] = '\0';
    if (tdb_parse_record(st->tdb, store_key(key), decode_in_place, &g) != 0)
        return tdb_error(st->tdb) == TDB_ERR_NOEXIST ? 0 : store_tdb_fail(st, "fetch");
    if (g.rc < 0)
        return store_fail(st, "%s: corrupt record for '%s': %s", st->path, key, g.why);
    return 1;
}

int store_get_text(struct store *st, const char *key, char *text, size_t len)
{
    TDB_DATA val;
    int rc;

    if ((rc = fetch_value(st, key, &val)) <= 0)
        return rc;
    if (val.dsize >= len || memchr(val.dptr, '\0', val.dsize) != NULL) {
        /* No text at all: a stand-in that is stable for the same bytes and
         * can be no record ("v=" starts every one), so a damaged record can
         * still be compared, and removed. */
        unsigned long long h = 1469598103934665603ULL;

        for (size_t i = 0; i < val.dsize; i++)
            h = (h ^ val.dptr[i]) * 1099511628211ULL;
        snprintf(text, len, "!undecodable len=%zu fnv=%016llx", val.dsize, h);
    } else {
        memcpy(text, val.dptr, val.dsize);
        text[val.dsize] = '\0';
    }
    free(val.dptr);
    return 1;
}

int store_read_lock(struct store *st)
{
    st->tdb_msg[0] = '\0';
    if (tdb_lockall_read(st->tdb) != 0)
        return store_tdb_fail(st, "read lock");
    return 0;
}

void store_read_unlock(struct store *st)
{
    tdb_unlockall_read(st->tdb);
}

int store_begin(struct store *st)
{
    st->tdb_msg[0] = '\0';
    if (st->in_txn)
        return store_fail(st, "transaction already open");
    if (tdb_transaction_start(st->tdb) != 0)
        return store_tdb_fail(st, "transaction start");
    st->in_txn = 1;
    st->txn_seq_loaded = st->txn_seq_dirty = 0;
    return 0;
}

int store_commit(struct store *st)
{
    if (journal_seq_flush(st) < 0) {
        store_cancel(st);
        return -1;
    }
    st->in_txn = 0;
    st->txn_seq_loaded = 0;
    errno = 0;
    if (tdb_transaction_commit(st->tdb) != 0)
        return store_tdb_write_fail(st, "transaction commit");
    return 0;
}

void store_cancel(struct store *st)
{
    if (st->in_txn)
        tdb_transaction_cancel(st->tdb);
    st->in_txn = 0;
    st->txn_seq_loaded = st->txn_seq_dirty = 0;
}

/* old_value - the current text of KEY into BUF, "-" when absent. */
static int old_value(struct store *st, const char *key, char *buf, size_t len)
{
    TDB_DATA val = tdb_fetch(st->tdb, store_key(key));

    if (val.dptr == NULL) {
        if (tdb_error(st->tdb) != TDB_ERR_NOEXIST)
            return store_tdb_fail(st, "fetch");
        snprintf(buf, len, "-");
        return 0;
    }
    snprintf(buf, len, "%.*s", (int) (val.dsize < len ? val.dsize : len - 1), val.dptr);
    free(val.dptr);
    return 1;
}

/*
 * old_record - decode BEFORE, the text KEY held, for the index to forget
 * its alias. A record that does not parse has no alias to trust: the
 * caller then looks for KEY in every entry (overwriting or removing such a
 * record must stay possible: it is how an administrator mends one).
 */
static const struct record *old_record(const char *key, const char *before,
                                       struct record *rec)
{
    char why[256];

    if (record_decode(addr_is_domain_key(key) ? RECORD_DOMAIN : RECORD_USER, before,
                      strlen(before), rec, why, sizeof(why)) < 0)
        return NULL;
    return rec;
}

/* write_change - store or delete KEY (REC NULL), index and journal it. */
static int write_change(struct store *st, const char *key, const struct record *rec,
                        const char *actor)
{
    char text[RECORD_TEXT_MAX + 1], before[RECORD_TEXT_MAX + 1];
    int own_txn = !st->in_txn, found;
    const struct record *old;
    struct record was;

    if (rec && record_encode(rec, text, sizeof(text)) < 0)
        return store_fail(st, "record for '%s' too long", key);
    if (own_txn && store_begin(st) < 0)
        return -1;
    /* Always read: the index must drop the old alias. */
    found = old_value(st, key, before, sizeof(before));
    if (found < 0)
        goto fail;
    if (rec == NULL && found == 0) {
        store_fail(st, "no record for '%s'", key);
        goto fail;
    }
    errno = 0;
    if (rec ? tdb_store(st->tdb, store_key(key),
                        (TDB_DATA) {(unsigned char *) text, strlen(text)}, 0)
        : tdb_delete(st->tdb, store_key(key))) {
        store_tdb_write_fail(st, rec ? "store" : "delete");
        goto fail;
    }
    old = found ? old_record(key, before, &was) : NULL;
    if ((found && old == NULL && reverse_forget(st, key) < 0)
        || reverse_update(st, key, old, rec) < 0)
        goto fail;
    if (actor != NULL && journal_append(st, key, before, rec ? text : "-", actor) < 0)
        goto fail;
    if (own_txn)
        return store_commit(st);
    return 0;
fail:
    if (own_txn)
        store_cancel(st);
    return -1;
}

/* not_record_key - the error for a KEY store_put/store_delete refuse. */
static int not_record_key(struct store *st, const char *key)
{
    if (key[0] == STORE_REVERSE_PREFIX)
        return store_fail(st, "'%s': addresses starting with '=' cannot be managed "
                          "(the reverse index uses such keys)", key);
    return store_fail(st, "'%s' is not a record key", key);
}

int store_put(struct store *st, const char *key, const struct record *rec,
              const char *actor)
{
    if (store_key_kind(key, strlen(key)) < 0)
        return not_record_key(st, key);
    return write_change(st, key, rec, actor);
}

int store_delete(struct store *st, const char *key, const char *actor)
{
    if (store_key_kind(key, strlen(key)) < 0)
        return not_record_key(st, key);
    return write_change(st, key, NULL, actor);
}

struct traverse_ctx {
    struct store *st;
    store_visit_fn visit;
    store_problem_fn problem;
    void *ctx;
    int bad;
    int wipe;
};

/* visit_one - decode one record and hand it on, or report it; skip the
 * journal and the index. */
static int visit_one(struct tdb_context *tdb, TDB_DATA k, TDB_DATA v, void *arg)
{
    struct traverse_ctx *tc = arg;
    char key[ADDR_BUFSIZE + 1], why[256];
    struct record rec;
    int kind = store_key_kind((const char *) k.dptr, k.dsize);

    /* A wipe takes the index with the records; the journal stays. */
    if (tc->wipe && kind != STORE_KEY_RESERVED)
        return tdb_delete(tdb, k) != 0 ? (tc->bad++, -1) : 0;
    if (kind < 0)
        return 0;
    snprintf(key, sizeof(key), "%.*s", (int) (k.dsize < ADDR_BUFSIZE ? k.dsize : ADDR_BUFSIZE),
             k.dptr);
    if (k.dsize > ADDR_MAX || memchr(k.dptr, '\0', k.dsize)) {
        snprintf(why, sizeof(why), "key is not an address");
    } else if (record_decode((enum record_kind) kind, (const char *) v.dptr, v.dsize,
                             &rec, why, sizeof(why)) == 0) {
        return tc->visit ? tc->visit(key, &rec, tc->ctx) : 0;
    }
    tc->bad++;
    if (tc->problem) {
        tc->problem(key, why, tc->ctx);
        return 0;
    }
    store_fail(tc->st, "%s: corrupt record for '%s': %s", tc->st->path, key, why);
    return -1;
}

int store_traverse_read(struct store *st, tdb_traverse_func fn, void *ctx)
{
    int rc;

    if (st->in_txn)
        return tdb_traverse_read(st->tdb, fn, ctx);
    if (tdb_lockall_read(st->tdb) != 0)
        return -1;
    rc = tdb_traverse_read(st->tdb, fn, ctx);
    tdb_unlockall_read(st->tdb);
    return rc;
}

int store_traverse(struct store *st, store_visit_fn fn, void *ctx)
{
    struct traverse_ctx tc = {st, fn, NULL, ctx, 0, 0};

    st->err[0] = '\0';
    /* A callback that returns -1 only stops tdb's traversal (which then
     * returns a count, not -1): a bad record must be reported by tc.bad. */
    if (store_traverse_read(st, visit_one, &tc) < 0 || tc.bad) {
        if (st->err[0] == '\0' && tc.bad == 0)
            store_tdb_fail(st, "traverse");
        return -1;
    }
    return 0;
}

int store_check(struct store *st, store_problem_fn fn, void *ctx)
{
    struct traverse_ctx tc = {st, NULL, fn, ctx, 0, 0};

    st->tdb_msg[0] = '\0';
    if (tdb_check(st->tdb, NULL, NULL) != 0)
        return store_tdb_fail(st, "tdb_check");
    if (store_traverse_read(st, visit_one, &tc) < 0)
        return store_tdb_fail(st, "traverse");
    return tc.bad;
}

int store_rebuild(struct store *st)
{
    st->tdb_msg[0] = '\0';
    if (st->in_txn) {
        snprintf(st->err, sizeof(st->err), "%.300s: rebuild inside a transaction", st->path);
        return -1;
    }
    errno = 0;
    if (tdb_repack(st->tdb) != 0)
        return store_tdb_write_fail(st, "rebuild");
    return 0;
}

int store_wipe_records(struct store *st)
{
    struct traverse_ctx tc = {st, NULL, NULL, NULL, 0, 1};
    int own_txn = !st->in_txn;

    if (own_txn && store_begin(st) < 0)
        return -1;
    errno = 0;
    if (tdb_traverse(st->tdb, visit_one, &tc) < 0 || tc.bad) {
        store_tdb_write_fail(st, "wipe");
        if (own_txn)
            store_cancel(st);
        return -1;
    }
    return own_txn ? store_commit(st) : 0;
}
