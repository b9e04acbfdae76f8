/*
 * stats.h - process-wide counters of what coexist-milter did.
 *
 * Callbacks on many libmilter worker threads bump these at once, so they
 * are atomics and need no lock. stats_log() writes them as one syslog line,
 * every stats_interval seconds (checked at the end of each message, so an
 * idle milter stays quiet) and at shutdown.
 */
#ifndef COEXIST_STATS_H
#define COEXIST_STATS_H

#include <time.h>

enum stats_counter {
    STATS_MESSAGES,             /* messages decided: accepted at DATA or at end of message */
    STATS_RECIPIENTS,           /* envelope recipients seen */
    STATS_LOOKUPS,              /* store reads */
    STATS_BCC,                  /* recipients copied to their alias */
    STATS_REWRITE,              /* recipients replaced by their alias */
    STATS_REVERSE,              /* legacy addresses sent back to their owner */
    STATS_ERRORS,               /* store, memory and smfi_* failures */
    STATS_TEMPFAILS,            /* messages answered with a tempfail */
    STATS_REOPENS,              /* the state store opened again (replaced, gone, back) */
    STATS_NCOUNTERS
};

/* stats_add - add N to counter WHICH. */
void stats_add(enum stats_counter which, unsigned long n);

/* stats_get - the current value of counter WHICH. */
unsigned long stats_get(enum stats_counter which);

/* stats_log - one "stats: messages=N ..." line at LOG_INFO. */
void stats_log(void);

/*
 * stats_tick - log the counters if INTERVAL seconds (0: never) passed since
 * the last periodic line; only one of several concurrent callers logs.
 */
void stats_tick(time_t now, unsigned interval);

#endif
