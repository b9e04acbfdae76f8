/*
 * dbhandle.h - the milter's one handle on the state store.
 *
 * A tdb handle is not thread-safe and a process may open a tdb file only
 * once, so all libmilter worker threads share one struct store behind one
 * mutex. The handle opens lazily and heals itself: before each use it checks
 * whether the file on disk is still the one it has open (an admin may
 * replace it by rename, or delete it) and reopens; if the store cannot be
 * opened, the message gets the on_db_error treatment and the next message
 * tries again, so the daemon recovers without a restart.
 */
#ifndef COEXIST_DBHANDLE_H
#define COEXIST_DBHANDLE_H

#include <stddef.h>

#include "decide.h"

struct dbhandle;

/* dbh_new - a handle on the store at PATH, not opened yet; NULL if out of memory. */
struct dbhandle *dbh_new(const char *path);

/* dbh_free - close the store (if open) and free DBH; NULL is allowed. */
void dbh_free(struct dbhandle *dbh);

/*
 * dbh_open - open the store now (at start-up, after dropping privileges),
 * so that a missing store is reported at once. Returns 0, or -1 with the
 * reason in ERR; the handle stays usable and retries on the next use.
 */
int dbh_open(struct dbhandle *dbh, char err[DECIDE_ERR_MAX]);

/* dbh_close - close the store; the next use reopens it. */
void dbh_close(struct dbhandle *dbh);

/*
 * dbh_lookup - a decide_lookup_fn over the store; CTX is the struct
 * dbhandle. Only valid while the handle's lock is held, that is, inside
 * dbh_decide(); exposed for the lookup-function contract and for tests.
 */
int dbh_lookup(void *ctx, const char *key, struct record *rec,
               char err[DECIDE_ERR_MAX]);

/*
 * dbh_decide - decide_actions() for a whole message under one hold of the
 * lock, so that one message sees one state of the store. If ROUTES is not
 * NULL (NRCPT entries), ROUTES[i] is also filled, under the same lock hold,
 * for every recipient i that some action names (rule RULE_NONE for the
 * others): the normalized key and alias the log lines report. For every
 * recipient, key and routed keep decide_route()'s answer (routed 0 for one
 * settings->already_routed named): the loop guard's trace header names the
 * routed ones, merged bcc copies included. Returns 0, or
 * -1 with ERR set (store missing or unreadable, lookup error); then RESULT
 * holds no actions.
 */
int dbh_decide(struct dbhandle *dbh, const struct decide_rcpt *rcpts,
               size_t nrcpt, const struct decide_settings *settings,
               struct decide_result *result, struct decide_route *routes,
               char err[DECIDE_ERR_MAX]);

/*
 * dbh_any_managed - decide_any_managed() under one hold of the lock (the
 * reverse index included): 1, 0, or -1 with ERR (the store unusable).
 */
int dbh_any_managed(struct dbhandle *dbh, const struct decide_rcpt *rcpts, size_t nrcpt,
                    const struct decide_settings *settings, char err[DECIDE_ERR_MAX]);

/* The records of the store by kind (user, domain rule), state and mode. */
enum { DBH_UNMIGRATED, DBH_SCHEDULED, DBH_MIGRATED };
struct dbh_census {
    unsigned long records[2][3][2];     /* [domain][DBH_*][rewrite] */
    time_t now;                         /* effective states as of then */
    time_t next_cutover;                /* the earliest scheduled one, 0: none */
    unsigned long recounts;             /* traversals made so far */
    int valid, seqnum;
    const void *st;                     /* the handle counted */
};

/*
 * dbh_census - OUT gets the store's records counted by kind, effective
 * state ("scheduled": unmigrated with a cutover to come) and mode, as of
 * NOW. The count is a traversal under the handle's lock (lookups wait for
 * it), so it is redone only when the store changed or a cutover passed.
 * Returns 0, or -1 with ERR set (the store unavailable).
 */
int dbh_census(struct dbhandle *dbh, time_t now, struct dbh_census *out,
               char err[DECIDE_ERR_MAX]);

#endif
