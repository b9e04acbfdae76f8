/*
 * dbhandle.c - the milter's one handle on the state store (see dbhandle.h).
 *
 * Why a plain mutex and not a rwlock: a tdb read updates lock bookkeeping in
 * the handle and may remap the file, so even two readers must not overlap.
 * The lock is held for one message's lookups (a few microseconds each), not
 * across any smfi_* call, so it never waits on the MTA. Inside it one tdb
 * read lock covers all of the message's lookups (store_read_lock): the
 * message sees one committed state even while coexistctl commits, and a
 * lookup costs no lock system calls of its own.
 */
#include <config.h>

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbhandle.h"
#include "log.h"
#include "stats.h"
#include "store.h"

struct dbhandle {
    pthread_mutex_t lock;
    struct store *st;           /* NULL until opened, or after a failure */
    int failing;                /* the last open failed: log recovery once */
    int opened;                 /* opened once: a later open is a reopen */
    struct dbh_census census;   /* the last count of the records (dbh_census) */
    char path[];
};

/* dbh_new - remember PATH; the store opens on first use. */
struct dbhandle *dbh_new(const char *path)
{
    size_t len = strlen(path) + 1;
    struct dbhandle *dbh = calloc(1, sizeof(*dbh) + len);

    if (dbh == NULL)
        return NULL;
    if (pthread_mutex_init(&dbh->lock, NULL) != 0) {
        free(dbh);
        return NULL;
    }
    memcpy(dbh->path, path, len);
    return dbh;
}

/* dbh_free - close and free. */
void dbh_free(struct dbhandle *dbh)
{
    if (dbh == NULL)
        return;
    store_close(dbh->st);
    pthread_mutex_destroy(&dbh->lock);
    free(dbh);
}

/* dbh_drop - forget the open store (lock held). */
static void dbh_drop(struct dbhandle *dbh)
{
    store_close(dbh->st);
    dbh->st = NULL;
    dbh->census.valid = 0;      /* another file: count it again */
}

/*
 * dbh_ready - make sure the open store is the file now at the path (lock
 * held). Logs state changes only, not every failed retry: each message
 * that meets a missing store logs its own error line already.
 */
static int dbh_ready(struct dbhandle *dbh, char err[DECIDE_ERR_MAX])
{
    char why[STORE_ERR_MAX];
    int changed;

    if (dbh->st != NULL) {
        changed = store_changed_on_disk(dbh->st);
        if (changed == 0)
            return 0;
        log_msg(LOG_NOTICE, "state_db %s %s; reopening", dbh->path,
                changed == 2 ? "was truncated in place"
                : changed > 0 ? "was replaced on disk" : "is gone");
        dbh_drop(dbh);
    }
    dbh->st = store_open(dbh->path, STORE_OPEN_EXISTING, 0, why);
    if (dbh->st == NULL) {
        if (!dbh->failing)
            log_msg(LOG_ERR, "state_db unavailable: %s", why);
        dbh->failing = 1;
        snprintf(err, DECIDE_ERR_MAX, "state_db unavailable: %.480s", why);
        return -1;
    }
    log_msg(LOG_INFO, "state_db %s opened", dbh->path);
    if (dbh->opened)
        stats_add(STATS_REOPENS, 1);
    dbh->opened = 1;
    dbh->failing = 0;
    return 0;
}

/* dbh_open - open (or check) the store now. */
int dbh_open(struct dbhandle *dbh, char err[DECIDE_ERR_MAX])
{
    int rc;

    pthread_mutex_lock(&dbh->lock);
    rc = dbh_ready(dbh, err);
    pthread_mutex_unlock(&dbh->lock);
    return rc;
}

/* dbh_close - close the store; it reopens on the next use. */
void dbh_close(struct dbhandle *dbh)
{
    pthread_mutex_lock(&dbh->lock);
    dbh_drop(dbh);
    pthread_mutex_unlock(&dbh->lock);
}

/* dbh_lookup - store_get as a decide_lookup_fn (lock held by the caller). */
int dbh_lookup(void *ctx, const char *key, struct record *rec,
               char err[DECIDE_ERR_MAX])
{
    struct dbhandle *dbh = ctx;
    int rc;

    stats_add(STATS_LOOKUPS, 1);
    rc = store_get(dbh->st, key, rec);
    if (rc < 0)
        snprintf(err, DECIDE_ERR_MAX, "lookup of %s: %s", key, store_error(dbh->st));
    return rc;
}

/* dbh_owner - store_reverse_get as a decide_owner_fn (lock held by the caller). */
static int dbh_owner(void *ctx, const char *alias, char owner[ADDR_BUFSIZE],
                     char err[DECIDE_ERR_MAX])
{
    struct dbhandle *dbh = ctx;
    int rc;

    stats_add(STATS_LOOKUPS, 1);
    rc = store_reverse_get(dbh->st, alias, owner);
    if (rc < 0)
        snprintf(err, DECIDE_ERR_MAX, "reverse lookup of %s: %s", alias,
                 store_error(dbh->st));
    return rc;
}

/*
 * dbh_keep_named - keep ROUTES[i] only for the recipients some action
 * names, RULE_NONE for the others (migrated, unknown, or a bcc whose alias
 * another recipient added already), as dbh_decide() promises. The routes
 * themselves came from decide_actions_routes(): a log line needs the key
 * and the alias even when the add was merged away, and looking them up a
 * second time cost as much as the decision itself.
 */
static int dbh_keep_named(const struct decide_result *result, struct decide_route *routes,
                          size_t nrcpt, char err[DECIDE_ERR_MAX])
{
    unsigned char *named = calloc(nrcpt ? nrcpt : 1, 1);

    if (named == NULL) {
        snprintf(err, DECIDE_ERR_MAX, "out of memory");
        return -1;
    }
    for (size_t a = 0; a < result->count; a++)
        if (result->actions[a].rcpt_index < nrcpt)
            named[result->actions[a].rcpt_index] = 1;
    for (size_t i = 0; i < nrcpt; i++)
        if (!named[i])
            routes[i].rule = RULE_NONE;
    free(named);
    return 0;
}

int dbh_any_managed(struct dbhandle *dbh, const struct decide_rcpt *rcpts, size_t nrcpt,
                    const struct decide_settings *settings, char err[DECIDE_ERR_MAX])
{
    struct decide_settings with_index = *settings;
    int rc;

    with_index.owner = dbh_owner;
    pthread_mutex_lock(&dbh->lock);
    rc = dbh_ready(dbh, err);
    if (rc == 0 && (rc = store_read_lock(dbh->st)) < 0)
        snprintf(err, DECIDE_ERR_MAX, "%s", store_error(dbh->st));
    if (rc == 0) {
        rc = decide_any_managed(rcpts, nrcpt, &with_index, dbh_lookup, dbh, err);
        store_read_unlock(dbh->st);
    }
    pthread_mutex_unlock(&dbh->lock);
    return rc;
}

/* dbh_decide - the whole message's decision under one lock hold. */
int dbh_decide(struct dbhandle *dbh, const struct decide_rcpt *rcpts,
               size_t nrcpt, const struct decide_settings *settings,
               struct decide_result *result, struct decide_route *routes,
               char err[DECIDE_ERR_MAX])
{
    struct decide_settings with_index = *settings;
    int rc;

    /* Reverse routing needs the store's index: only this module has it. */
    with_index.owner = dbh_owner;
    result->count = 0;
    pthread_mutex_lock(&dbh->lock);
    rc = dbh_ready(dbh, err);
    if (rc == 0 && (rc = store_read_lock(dbh->st)) < 0)
        snprintf(err, DECIDE_ERR_MAX, "%s", store_error(dbh->st));
    if (rc == 0) {
        rc = decide_actions_routes(rcpts, nrcpt, &with_index, dbh_lookup, dbh, result,
                                   routes, err);
        store_read_unlock(dbh->st);
    }
    pthread_mutex_unlock(&dbh->lock);
    if (rc == 0 && routes != NULL)
        rc = dbh_keep_named(result, routes, nrcpt, err);
    if (rc < 0)
        result->count = 0;
    return rc;
}

/* census_visit - count one record into the census being made. */
static int census_visit(const char *key, const struct record *rec, void *ctx)
{
    struct dbh_census *c = ctx;
    int state = record_effective_state(rec, c->now) == STATE_MIGRATED ? DBH_MIGRATED
        : rec->cutover != 0 ? DBH_SCHEDULED : DBH_UNMIGRATED;

    (void) key;
    c->records[rec->kind == RECORD_DOMAIN][state][rec->mode == MODE_REWRITE]++;
    if (state == DBH_SCHEDULED && (c->next_cutover == 0 || rec->cutover < c->next_cutover))
        c->next_cutover = rec->cutover;
    return 0;
}

/* Records counted per hold of the lock: about a millisecond of lookups waiting. */
#define CENSUS_STEP 1000

/*
 * census_step - one step of the walk (lock not held): 1 done, 0 more, -1
 * error; RESTART set when the store changed since the walk began (a commit
 * or a reopen), so that the count would mix two states.
 */
static int census_step(struct dbhandle *dbh, struct store_cursor *cur, struct dbh_census *c,
                       int *restart, char err[DECIDE_ERR_MAX])
{
    int rc;

    pthread_mutex_lock(&dbh->lock);
    if ((rc = dbh_ready(dbh, err)) == 0) {
        if (!cur->sc_started) {
            c->seqnum = store_seqnum(dbh->st);
            c->st = dbh->st;
        }
        if (c->st != dbh->st || store_seqnum(dbh->st) != c->seqnum)
            *restart = 1;
        else if ((rc = store_read_lock(dbh->st)) < 0)
            snprintf(err, DECIDE_ERR_MAX, "%s", store_error(dbh->st));
        else {
            rc = store_walk_step(dbh->st, cur, CENSUS_STEP, census_visit, c);
            if (rc < 0)
                snprintf(err, DECIDE_ERR_MAX, "counting records: %s", store_error(dbh->st));
            store_read_unlock(dbh->st);
        }
    }
    pthread_mutex_unlock(&dbh->lock);
    return rc;
}

/* census_fresh - whether the last count still holds (lock not held). */
static int census_fresh(struct dbhandle *dbh, time_t now, struct dbh_census *out)
{
    const struct dbh_census *c = &dbh->census;
    int fresh;

    pthread_mutex_lock(&dbh->lock);
    fresh = c->valid && dbh->st != NULL && c->st == dbh->st
        && store_changed_on_disk(dbh->st) == 0 && store_seqnum(dbh->st) == c->seqnum
        && (c->next_cutover == 0 || now < c->next_cutover);
    if (fresh)
        *out = *c;
    pthread_mutex_unlock(&dbh->lock);
    return fresh;
}

/*
 * dbh_census - the records by kind, state and mode, counted again only when
 * the store changed (its seqnum) or a scheduled cutover passed since the
 * last count. The walk takes the lock CENSUS_STEP records at a time, so
 * lookups wait for a step, never for a whole traversal; a commit during the
 * walk starts it again (three times at most, then the error). One caller
 * at a time (the ticker thread).
 */
int dbh_census(struct dbhandle *dbh, time_t now, struct dbh_census *out,
               char err[DECIDE_ERR_MAX])
{
    struct dbh_census c;
    unsigned long recounts = dbh->census.recounts;

    if (census_fresh(dbh, now, out))
        return 0;
    for (int tries = 0; tries < 3; tries++) {
        struct store_cursor cur;
        int rc = 0, restart = 0;

        memset(&cur, 0, sizeof(cur));
        memset(&c, 0, sizeof(c));
        c.now = now;
        while (rc == 0 && !restart) {
            rc = census_step(dbh, &cur, &c, &restart, err);
            sched_yield();      /* the waiting lookups first */
        }
        if (rc < 0) {
            pthread_mutex_lock(&dbh->lock);
            dbh->census.valid = 0;
            pthread_mutex_unlock(&dbh->lock);
            return -1;
        }
        if (restart)
            continue;
        c.valid = 1;
        c.recounts = recounts + 1;
        pthread_mutex_lock(&dbh->lock);
        /* Kept only if the store is still the one counted. */
        if (dbh->st == c.st && store_seqnum(dbh->st) == c.seqnum)
            dbh->census = c;
        else
            restart = 1;
        pthread_mutex_unlock(&dbh->lock);
        if (!restart) {
            *out = c;
            return 0;
        }
    }
    snprintf(err, DECIDE_ERR_MAX, "counting records: the store kept changing");
    return -1;
}
