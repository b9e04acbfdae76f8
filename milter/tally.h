/*
 * tally.h - the milter's per-key counts of routed mail, in memory, until
 * they are flushed into counters_db (policy/counters.h).
 *
 * End of message adds one count per routed recipient: no store write, no
 * system call, no lock but one of TALLY_SHARDS short mutexes chosen by the
 * key's hash (never the store's), held for a hash probe and an increment.
 * A flush takes every shard's counts away in one swap each, writes them in
 * one counters_db transaction outside any lock, and on a failure puts them
 * back, so the next flush writes them: nothing is counted twice or lost
 * but by a crash (at most one interval).
 */
#ifndef COEXIST_TALLY_H
#define COEXIST_TALLY_H

#include <stddef.h>
#include <time.h>

#include "counters.h"
#include "decide.h"

enum tally_kind { TALLY_COPY, TALLY_REWRITE, TALLY_REVERSE };

struct tally;

/* tally_new - an empty tally; NULL if out of memory. */
struct tally *tally_new(void);

/* tally_free - free T and what it still holds (NULL is allowed). */
void tally_free(struct tally *t);

/*
 * tally_add - count one KIND for KEY at NOW. Returns 0, or -1 when out of
 * memory for a key not seen in this interval (the count is then lost and
 * tally_lost() says how many were).
 */
int tally_add(struct tally *t, const char *key, enum tally_kind kind, time_t now);

/*
 * tally_routes - tally_add for each of NRCPT routes an action names (rule
 * not RULE_NONE), under the state key that routed it (route->match), as
 * the milter's log lines name them: what end of message calls.
 */
void tally_routes(struct tally *t, const struct decide_route *routes, size_t nrcpt,
                  time_t now);

/*
 * tally_flush - everything counted so far into counters_db at PATH
 * (created when missing), with NODE, as of NOW. Returns the number of keys
 * written (0: nothing to do, the file is not touched), or -1 with ERR set
 * and every count kept for the next flush. One flusher at a time.
 */
int tally_flush(struct tally *t, const char *path, const char *node, time_t now,
                char err[COUNTERS_ERR_MAX]);

/* tally_pending - the (key, day) entries waiting for a flush. */
size_t tally_pending(struct tally *t);

/* tally_last_flush - the time of the last successful flush (0: none yet). */
time_t tally_last_flush(struct tally *t);

/* tally_flush_failures - how many flushes failed. */
unsigned long tally_flush_failures(struct tally *t);

/* tally_lost - counts dropped for want of memory. */
unsigned long tally_lost(struct tally *t);

#endif
