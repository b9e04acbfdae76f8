/*
 * ticker.c - the background thread of the counters flush and metrics_file
 * (see ticker.h).
 *
 * libmilter sigwaits SIGHUP, SIGTERM and SIGINT in a thread of its own,
 * made in smfi_main(); a thread started before that inherits a mask in
 * which they are open, and would take the signal (and its default action,
 * death) in libmilter's place. So the thread is made with them blocked.
 * Failures are logged when they start and when they end, not every time.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <libmilter/mfapi.h>

#include "log.h"
#include "metrics.h"
#include "ticker.h"

struct ticker {
    const struct config *cfg;
    struct tally *tally;
    struct dbhandle *dbh;
    time_t started;
    char node[CONFIG_STR_MAX];
    char libmilter[32];
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop;
    int flush_failing, metrics_failing;
    char counters_path[];
};

int ticker_flush(struct ticker *tk, time_t now)
{
    char err[COUNTERS_ERR_MAX];
    int n;

    if (tk->counters_path[0] == '\0' || tk->tally == NULL)
        return 0;
    n = tally_flush(tk->tally, tk->counters_path, tk->node, now, err);
    if (n < 0) {
        if (!tk->flush_failing)
            log_msg(LOG_ERR, "counters: flush failed: %s; %zu counts kept for the next "
                    "flush", err, tally_pending(tk->tally));
        tk->flush_failing = 1;
        return -1;
    }
    if (tk->flush_failing)
        log_msg(LOG_NOTICE, "counters: flush to %s works again (%d keys)",
                tk->counters_path, n);
    else if (n > 0)
        log_msg(LOG_DEBUG, "counters: %d keys flushed to %s", n, tk->counters_path);
    tk->flush_failing = 0;
    return n;
}

int ticker_metrics(struct ticker *tk, time_t now)
{
    struct metrics_input in = {
        .version = PACKAGE_VERSION,
        .libmilter = tk->libmilter,
        .instance = tk->cfg->instance,
        .started = tk->started,
        .counting = tk->counters_path[0] != '\0' && tk->tally != NULL,
        .now = now,
    };
    struct dbh_census census;
    char err[METRICS_ERR_MAX], why[DECIDE_ERR_MAX];

    if (tk->cfg->metrics_file[0] == '\0')
        return 0;
    for (int i = 0; i < STATS_NCOUNTERS; i++)
        in.stats[i] = stats_get((enum stats_counter) i);
    if (dbh_census(tk->dbh, now, &census, why) == 0)
        in.census = &census;
    if (in.counting) {
        in.last_flush = tally_last_flush(tk->tally);
        in.flush_failures = tally_flush_failures(tk->tally);
        in.pending = tally_pending(tk->tally);
        in.lost = tally_lost(tk->tally);
    }
    if (metrics_write(tk->cfg->metrics_file, &in, err) < 0) {
        if (!tk->metrics_failing)
            log_msg(LOG_ERR, "%s", err);
        tk->metrics_failing = 1;
        return -1;
    }
    if (tk->metrics_failing)
        log_msg(LOG_NOTICE, "metrics_file %s written again", tk->cfg->metrics_file);
    tk->metrics_failing = 0;
    return 0;
}

/* next_due - LAST plus INTERVAL, or never (0) for an interval of 0. */
static time_t next_due(time_t last, unsigned interval)
{
    return interval ? last + (time_t) interval : 0;
}

/* ticker_main - wake when something is due or when told to stop. */
static void *ticker_main(void *arg)
{
    struct ticker *tk = arg;
    time_t now = time(NULL);
    time_t flush_at = next_due(now, tk->cfg->counters_interval);
    time_t metrics_at = next_due(now, tk->cfg->stats_interval);

    pthread_mutex_lock(&tk->lock);
    while (!tk->stop) {
        time_t wake = flush_at && (!metrics_at || flush_at < metrics_at) ? flush_at
            : metrics_at;
        struct timespec ts = {wake ? wake : now + 3600, 0};

        if (pthread_cond_timedwait(&tk->wake, &tk->lock, &ts) != ETIMEDOUT && tk->stop)
            break;
        pthread_mutex_unlock(&tk->lock);
        now = time(NULL);
        if (flush_at && now >= flush_at) {
            (void) ticker_flush(tk, now);
            flush_at = next_due(now, tk->cfg->counters_interval);
        }
        if (metrics_at && now >= metrics_at) {
            (void) ticker_metrics(tk, now);
            metrics_at = next_due(now, tk->cfg->stats_interval);
        }
        pthread_mutex_lock(&tk->lock);
    }
    pthread_mutex_unlock(&tk->lock);
    return NULL;
}

struct ticker *ticker_start(const struct config *cfg, const char *counters_path,
                            struct tally *tally, struct dbhandle *dbh, time_t started)
{
    size_t len = strlen(counters_path) + 1;
    struct ticker *tk = calloc(1, sizeof(*tk) + len);
    unsigned major = 0, minor = 0, patch = 0;
    sigset_t block, old;
    int rc;

    if (tk == NULL)
        return NULL;
    tk->cfg = cfg;
    tk->tally = tally;
    tk->dbh = dbh;
    tk->started = started;
    memcpy(tk->counters_path, counters_path, len);
    config_node_name(cfg, tk->node);
    smfi_version(&major, &minor, &patch);
    snprintf(tk->libmilter, sizeof(tk->libmilter), "%u.%u.%u", major, minor, patch);
    pthread_mutex_init(&tk->lock, NULL);
    pthread_cond_init(&tk->wake, NULL);
    (void) ticker_metrics(tk, started);         /* the file exists from the start */
    sigemptyset(&block);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    rc = pthread_create(&tk->thread, NULL, ticker_main, tk);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&tk->wake);
        pthread_mutex_destroy(&tk->lock);
        free(tk);
        return NULL;
    }
    return tk;
}

void ticker_stop(struct ticker *tk)
{
    time_t now;

    if (tk == NULL)
        return;
    pthread_mutex_lock(&tk->lock);
    tk->stop = 1;
    pthread_cond_signal(&tk->wake);
    pthread_mutex_unlock(&tk->lock);
    pthread_join(tk->thread, NULL);
    now = time(NULL);
    if (ticker_flush(tk, now) < 0)
        log_msg(LOG_ERR, "counters: %zu counts not written at shutdown: lost",
                tally_pending(tk->tally));
    (void) ticker_metrics(tk, now);
    pthread_cond_destroy(&tk->wake);
    pthread_mutex_destroy(&tk->lock);
    free(tk);
}
