/*
 * replica.c - keeping the local TDB a replica of the shared store (see
 * replica.h): journal rows applied in tdb transactions that also store the
 * position, and the snapshot that replaces the file when rows cannot.
 *
 * Why a transaction per batch and not per row: a commit costs an fsync and
 * holds off the milter's readers for a few ms; a batch of a thousand rows
 * amortizes both, and a kill -9 loses at most the batch in flight, which
 * the next run applies again from the position the last commit stored.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pgstore.h"
#include "replica.h"

/* elapsed_ms - milliseconds since START (monotonic). */
static int64_t elapsed_ms(const struct timespec *start)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) (ts.tv_sec - start->tv_sec) * 1000
           + (ts.tv_nsec - start->tv_nsec) / 1000000;
}

int replica_open(struct replica *r, const char *state_db, unsigned hash_size, int check,
                 char err[REPLICA_ERR_MAX])
{
    char serr[STORE_ERR_MAX], why[REPLICA_ERR_MAX];
    int rc = 0;

    memset(r, 0, sizeof(*r));
    if (strlen(state_db) + 32 >= sizeof(r->path)) {
        snprintf(err, REPLICA_ERR_MAX, "state_db path too long");
        return -1;
    }
    strcpy(r->path, state_db);
    r->hash_size = hash_size;
    if ((r->st = store_open(state_db, STORE_OPEN_EXISTING, 0, serr)) == NULL) {
        snprintf(r->damaged, sizeof(r->damaged), "%s", serr);
        return 0;
    }
    /*
     * A kill between tdb growing the file and arming its recovery area
     * leaves space tdb never formatted: tdb_check fails though every
     * record is intact. A replica has a better way out than repair: a
     * snapshot from the database (tdb_repack refuses such a file).
     */
    if (check && (rc = store_check(r->st, NULL, NULL)) != 0) {
        if (rc < 0)
            snprintf(r->damaged, sizeof(r->damaged), "%s", store_error(r->st));
        else
            snprintf(r->damaged, sizeof(r->damaged), "%.300s: %d record%s that do%s not "
                     "parse", state_db, rc, rc == 1 ? "" : "s", rc == 1 ? "es" : "");
        return 0;
    }
    rc = replica_position_read(r->st, &r->pos, why);
    if (rc < 0)
        snprintf(r->damaged, sizeof(r->damaged), "%s", why);
    else if (rc == 0)
        snprintf(r->damaged, sizeof(r->damaged), "%.300s holds no replica position "
                 "(not yet a replica of the shared store)", state_db);
    return 0;
}

void replica_close(struct replica *r)
{
    store_close(r->st);
    r->st = NULL;
}

/* reopen_if_replaced - R's store again if its file was replaced or removed. */
static void reopen_if_replaced(struct replica *r)
{
    char err[REPLICA_ERR_MAX], path[sizeof(r->path)];
    unsigned hash_size = r->hash_size;

    if (r->st == NULL || store_changed_on_disk(r->st) == 0)
        return;
    strcpy(path, r->path);
    replica_close(r);
    (void) replica_open(r, path, hash_size, 1, err);
}

int replica_recheck(struct replica *r)
{
    char err[REPLICA_ERR_MAX], path[sizeof(r->path)];
    unsigned hash_size = r->hash_size;

    strcpy(path, r->path);
    replica_close(r);
    (void) replica_open(r, path, hash_size, 1, err);
    return r->damaged[0] != '\0';
}

int replica_watch(struct replica *r)
{
    struct replica_position now;
    char why[REPLICA_ERR_MAX];

    if (r->damaged[0] != '\0')
        return 1;
    reopen_if_replaced(r);
    if (r->damaged[0] != '\0')
        return 1;
    /*
     * Overwritten in place (same inode, same size): tdb cannot tell, so
     * read our own position back. A stranger's bytes over the hash table
     * break that chain, and then the whole file is checked.
     */
    if (replica_position_read(r->st, &now, why) != 1 || now.position != r->pos.position
        || strcmp(now.database_id, r->pos.database_id) != 0)
        return replica_recheck(r) ? 1 : 0;
    return 0;
}

/*
 * needs_snapshot - REPLICA_NEEDS_SNAPSHOT with the reason if rows cannot
 * bring R up to DB's state, REPLICA_OK if they can, or a database result.
 */
static int needs_snapshot(struct replica *r, struct pgstore *db, char err[REPLICA_ERR_MAX])
{
    char perr[PGSTORE_ERR_MAX];
    long long oldest;
    int rc;

    if (r->st == NULL || r->damaged[0]) {
        snprintf(err, REPLICA_ERR_MAX, "%s", r->damaged[0] ? r->damaged : "no replica");
        return REPLICA_NEEDS_SNAPSHOT;
    }
    if (strcmp(r->pos.database_id, pgstore_database_id(db)) != 0) {
        snprintf(err, REPLICA_ERR_MAX, "%.300s is a replica of database %s, the shared "
                 "store is %s", r->path, r->pos.database_id, pgstore_database_id(db));
        return REPLICA_NEEDS_SNAPSHOT;
    }
    if ((rc = pgstore_oldest_id(db, &oldest, perr)) != PGSTORE_OK) {
        snprintf(err, REPLICA_ERR_MAX, "%s", perr);
        return rc;
    }
    if (r->pos.position + 1 < oldest) {
        snprintf(err, REPLICA_ERR_MAX, "the journal was pruned past the replica's position "
                 "%lld (it starts at %lld)", r->pos.position, oldest);
        return REPLICA_NEEDS_SNAPSHOT;
    }
    return REPLICA_OK;
}

struct apply_ctx {
    struct store *st;
    long long last;                     /* id of the last row applied */
    char err[REPLICA_ERR_MAX];          /* "" unless a row did not apply */
};

/* apply_row - one journal row to the open transaction; non-zero stops. */
static int apply_row(const struct pgstore_row *row, void *arg)
{
    struct apply_ctx *ac = arg;
    char why[256];
    struct record rec;

    if (row->key == NULL || row->key[0] == '!') {
        ac->last = row->id;             /* a note: nothing to store */
        return 0;
    }
    if (row->new_value == NULL) {
        if (store_delete(ac->st, row->key, NULL) < 0)
            goto fail;
    } else {
        if (record_decode(addr_is_domain_key(row->key) ? RECORD_DOMAIN : RECORD_USER,
                          row->new_value, strlen(row->new_value), &rec, why,
                          sizeof(why)) < 0) {
            snprintf(ac->err, sizeof(ac->err), "journal row %lld for '%.200s' does not "
                     "decode: %s", row->id, row->key, why);
            return 1;
        }
        if (store_put(ac->st, row->key, &rec, NULL) < 0)
            goto fail;
    }
    ac->last = row->id;
    return 0;
fail:
    snprintf(ac->err, sizeof(ac->err), "journal row %lld does not apply: %s", row->id,
             store_error(ac->st));
    return 1;
}

/* apply_batch - one transaction of up to BATCH rows; the number applied. */
static int apply_batch(struct replica *r, struct pgstore *db, long batch, long long *n,
                       char err[REPLICA_ERR_MAX])
{
    struct apply_ctx ac = {r->st, r->pos.position, ""};
    struct replica_position next = r->pos;
    char perr[PGSTORE_ERR_MAX];
    int rc;

    *n = 0;
    if (store_begin(r->st) < 0) {
        snprintf(err, REPLICA_ERR_MAX, "%s", store_error(r->st));
        return REPLICA_LOCAL;
    }
    rc = pgstore_journal_since(db, r->pos.position, batch, apply_row, &ac, perr);
    if (rc < 0 || ac.err[0] || rc == 0) {
        store_cancel(r->st);
        if (rc < 0) {
            snprintf(err, REPLICA_ERR_MAX, "%s", perr);
            return rc;
        }
        if (ac.err[0]) {
            /* A row that does not apply: the replica disagrees with the journal. */
            snprintf(r->damaged, sizeof(r->damaged), "%s", ac.err);
            snprintf(err, REPLICA_ERR_MAX, "%s", ac.err);
            return REPLICA_NEEDS_SNAPSHOT;
        }
        return REPLICA_OK;
    }
    next.position = ac.last;
    if (replica_position_write(r->st, &next, err) < 0) {
        store_cancel(r->st);
        return REPLICA_LOCAL;
    }
    if (store_commit(r->st) < 0) {
        snprintf(err, REPLICA_ERR_MAX, "%s", store_error(r->st));
        return REPLICA_LOCAL;
    }
    r->pos = next;
    *n = rc;
    return REPLICA_OK;
}

int replica_apply_since(struct replica *r, struct pgstore *db, long batch,
                        unsigned budget_ms, long long *applied, char err[REPLICA_ERR_MAX])
{
    struct timespec start;
    long long n, total = 0;
    int rc;

    clock_gettime(CLOCK_MONOTONIC, &start);
    if (applied != NULL)
        *applied = 0;
    if (batch <= 0)
        batch = REPLICA_BATCH;
    reopen_if_replaced(r);
    if ((rc = needs_snapshot(r, db, err)) != REPLICA_OK)
        return rc;
    do {
        rc = apply_batch(r, db, batch, &n, err);
        total += n;
        if (applied != NULL)
            *applied = total;
    } while (rc == REPLICA_OK && n == batch
             && (budget_ms == 0 || elapsed_ms(&start) < (int64_t) budget_ms));
    return rc;
}

struct snap_ctx {
    struct store *st;
    long long records;
    char err[REPLICA_ERR_MAX];
};

/* snap_record - one record of the snapshot into the new file. */
static int snap_record(const char *key, const char *value, void *arg)
{
    struct snap_ctx *sc = arg;
    char why[256];
    struct record rec;

    if (record_decode(addr_is_domain_key(key) ? RECORD_DOMAIN : RECORD_USER, value,
                      strlen(value), &rec, why, sizeof(why)) < 0) {
        snprintf(sc->err, sizeof(sc->err), "the shared store's record for '%.200s' does "
                 "not decode: %s", key, why);
        return 1;
    }
    if (store_put(sc->st, key, &rec, NULL) < 0) {
        snprintf(sc->err, sizeof(sc->err), "%s", store_error(sc->st));
        return 1;
    }
    sc->records++;
    return 0;
}

/*
 * sync_path - fsync PATH (a file, or a directory after a rename), so that
 * what a rename installs is on disk before and after it.
 */
static int sync_path(const char *path, int directory)
{
    int fd = open(path, O_RDONLY | (directory ? O_DIRECTORY : 0));
    int rc;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

/* snapshot_fill - the new store at TMP filled from DB in one transaction. */
static int snapshot_fill(struct replica *r, struct pgstore *db, const char *tmp,
                         long long *records, char err[REPLICA_ERR_MAX])
{
    char serr[STORE_ERR_MAX], perr[PGSTORE_ERR_MAX];
    struct snap_ctx sc = {NULL, 0, ""};
    struct replica_position pos;
    int rc;

    if (unlink(tmp) < 0 && errno != ENOENT) {
        snprintf(err, REPLICA_ERR_MAX, "%.300s: %s", tmp, strerror(errno));
        return REPLICA_LOCAL;
    }
    if ((sc.st = store_open(tmp, STORE_CREATE, r->hash_size, serr)) == NULL) {
        snprintf(err, REPLICA_ERR_MAX, "%s", serr);
        return REPLICA_LOCAL;
    }
    if (store_begin(sc.st) < 0) {
        snprintf(err, REPLICA_ERR_MAX, "%s", store_error(sc.st));
        rc = REPLICA_LOCAL;
        goto out;
    }
    rc = pgstore_snapshot(db, snap_record, &sc, &pos.position, perr);
    if (rc != PGSTORE_OK) {
        snprintf(err, REPLICA_ERR_MAX, "%s", sc.err[0] ? sc.err : perr);
        store_cancel(sc.st);
        rc = sc.err[0] ? REPLICA_LOCAL : rc;
        goto out;
    }
    snprintf(pos.database_id, sizeof(pos.database_id), "%s", pgstore_database_id(db));
    if (replica_position_write(sc.st, &pos, err) < 0) {
        store_cancel(sc.st);
        rc = REPLICA_LOCAL;
        goto out;
    }
    if (store_commit(sc.st) < 0) {
        snprintf(err, REPLICA_ERR_MAX, "%s", store_error(sc.st));
        rc = REPLICA_LOCAL;
        goto out;
    }
    *records = sc.records;
out:
    store_close(sc.st);
    return rc;
}

int replica_snapshot(struct replica *r, struct pgstore *db, long long *records,
                     char err[REPLICA_ERR_MAX])
{
    char tmp[sizeof(r->path) + 32], dir[sizeof(r->path)], why[REPLICA_ERR_MAX];
    long long n = 0;
    int rc;

    snprintf(tmp, sizeof(tmp), "%s.snapshot.%ld", r->path, (long) getpid());
    if ((rc = snapshot_fill(r, db, tmp, &n, err)) != REPLICA_OK) {
        (void) unlink(tmp);
        return rc;
    }
    snprintf(dir, sizeof(dir), "%s", r->path);
    if (sync_path(tmp, 0) < 0 || rename(tmp, r->path) < 0) {
        snprintf(err, REPLICA_ERR_MAX, "%.300s: cannot install the snapshot: %s", r->path,
                 strerror(errno));
        (void) unlink(tmp);
        return REPLICA_LOCAL;
    }
    (void) sync_path(dirname(dir), 1);
    /* replica_open starts from a clean R: keep what it is given apart. */
    snprintf(dir, sizeof(dir), "%s", r->path);
    replica_close(r);
    if (replica_open(r, dir, r->hash_size, 0, why) < 0 || r->damaged[0]) {
        snprintf(err, REPLICA_ERR_MAX, "the snapshot installed at %.300s does not open: %.600s",
                 r->path, r->damaged[0] ? r->damaged : why);
        return REPLICA_LOCAL;
    }
    if (records != NULL)
        *records = n;
    return REPLICA_OK;
}
