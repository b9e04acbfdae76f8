/*
 * ticker.h - the milter's one background thread: it flushes the per-user
 * counters (tally.h) into counters_db every counters_interval, and writes
 * metrics_file every stats_interval, so that both happen on time also when
 * no mail comes; and once more at shutdown.
 */
#ifndef COEXIST_TICKER_H
#define COEXIST_TICKER_H

#include <time.h>

#include "dbhandle.h"
#include "policy/config.h"
#include "tally.h"

struct ticker;

/*
 * ticker_start - start the thread (after daemon(): a fork keeps no
 * threads). COUNTERS_PATH "" means no counting (TALLY may then be NULL);
 * CFG, TALLY and DBH must outlive ticker_stop. NULL if the thread could
 * not be made (the caller treats that as fatal).
 */
struct ticker *ticker_start(const struct config *cfg, const char *counters_path,
                            struct tally *tally, struct dbhandle *dbh, time_t started);

/* ticker_stop - stop the thread, then flush and write the metrics a last time. */
void ticker_stop(struct ticker *tk);

/* ticker_flush - one counters flush now, logged; what the thread calls. */
int ticker_flush(struct ticker *tk, time_t now);

/* ticker_metrics - write metrics_file now (if configured), logged. */
int ticker_metrics(struct ticker *tk, time_t now);

#endif
