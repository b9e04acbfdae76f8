/*
 * follow_counters.h - the follower's second job: this host's counters_db
 * into the shared store (ctl_follow.c calls it; follow_counters.c).
 */
#ifndef COEXIST_FOLLOW_COUNTERS_H
#define COEXIST_FOLLOW_COUNTERS_H

#include <time.h>

#include "ctl.h"
#include "pgstore.h"

/* The key of a host's last flush time among its counters rows. */
#define FOLLOW_COUNTERS_FLUSHED_KEY "!counters-flushed"

/*
 * follow_counters_push - when the milter flushed counters_db since
 * *PUSHED (its last flush time that was pushed; 0: none yet), push the
 * keys routed since then (all of them the first time) and the flush time
 * as NODE's rows, and advance *PUSHED. No counters_db (not configured, or
 * not made yet) is nothing to do. PGSTORE_OK, or a result code with ERR
 * (PGSTORE_ERROR also for a local file that cannot be read).
 */
int follow_counters_push(struct ctl *c, struct pgstore *db, const char *node,
                         time_t *pushed, char err[PGSTORE_ERR_MAX]);

#endif
