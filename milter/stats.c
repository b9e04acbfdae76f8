/*
 * stats.c - process-wide counters of what coexist-milter did (see stats.h).
 *
 * The counters are the one global state of the daemon besides its
 * configuration: they describe the process, not a connection. Relaxed
 * atomics are enough, as no other memory is published through them.
 */
#include <config.h>

#include <stdatomic.h>
#include <syslog.h>

#include "log.h"
#include "stats.h"

static atomic_ulong stats_counters[STATS_NCOUNTERS];
static atomic_llong stats_last_tick;    /* time_t of the last periodic line */

/* stats_add - add N to counter WHICH. */
void stats_add(enum stats_counter which, unsigned long n)
{
    atomic_fetch_add_explicit(&stats_counters[which], n, memory_order_relaxed);
}

/* stats_get - the current value of counter WHICH. */
unsigned long stats_get(enum stats_counter which)
{
    return atomic_load_explicit(&stats_counters[which], memory_order_relaxed);
}

/* stats_log - one line with every counter. */
void stats_log(void)
{
    log_msg(LOG_INFO, "stats: messages=%lu recipients=%lu lookups=%lu bcc=%lu "
            "rewrite=%lu errors=%lu tempfail=%lu reverse=%lu",
            stats_get(STATS_MESSAGES), stats_get(STATS_RECIPIENTS),
            stats_get(STATS_LOOKUPS), stats_get(STATS_BCC),
            stats_get(STATS_REWRITE), stats_get(STATS_ERRORS),
            stats_get(STATS_TEMPFAILS), stats_get(STATS_REVERSE));
}

/* stats_tick - the periodic line, without a timer thread. */
void stats_tick(time_t now, unsigned interval)
{
    long long last = atomic_load_explicit(&stats_last_tick, memory_order_relaxed);

    if (interval == 0)
        return;
    if (last == 0) {
        /* First message: start the clock rather than log at once. */
        atomic_compare_exchange_strong(&stats_last_tick, &last, (long long) now);
        return;
    }
    if (now - last < (long long) interval)
        return;
    /* Whoever moves the clock forward logs; concurrent callers lose the race. */
    if (atomic_compare_exchange_strong(&stats_last_tick, &last, (long long) now))
        stats_log();
}
