/*
 * metrics.c - the Prometheus text format of metrics_file (see metrics.h).
 *
 * One table names the stats counters, so a counter added to stats.h
 * without a line here is caught by test_metrics (every STATS_ value must
 * appear), and the naming rules are checked there too.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metrics.h"

/* The stats counters: name (after coexist_milter_) and help text. */
static const struct {
    enum stats_counter which;
    const char *name;
    const char *help;
} metrics_stats[] = {
    {STATS_MESSAGES, "messages_total", "Messages that reached end of message."},
    {STATS_RECIPIENTS, "recipients_total", "Envelope recipients seen."},
    {STATS_LOOKUPS, "lookups_total", "State store lookups."},
    {STATS_BCC, "bcc_total", "Recipients copied (bcc) to their legacy alias."},
    {STATS_REWRITE, "rewrites_total", "Recipients replaced by their legacy alias."},
    {STATS_REVERSE, "reverse_total",
     "Legacy addresses routed back to their migrated owner."},
    {STATS_ERRORS, "errors_total", "Store, memory and milter protocol failures."},
    {STATS_TEMPFAILS, "tempfails_total", "Messages answered with a temporary failure."},
    {STATS_REOPENS, "store_reopens_total",
     "Times the state store was opened again (replaced, gone, back)."},
};
#define NSTATS (sizeof(metrics_stats) / sizeof(metrics_stats[0]))

/* family - the HELP and TYPE lines of NAME. */
static void family(FILE *fp, const char *name, const char *type, const char *help)
{
    fprintf(fp, "# HELP coexist_milter_%s %s\n# TYPE coexist_milter_%s %s\n", name, help,
            name, type);
}

/* label_value - S with \, " and newline escaped as the format asks. */
static void label_value(FILE *fp, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', fp);
        if (*s == '\n')
            fputs("\\n", fp);
        else
            fputc(*s, fp);
    }
}

/* census - the records by kind, state and mode. */
static void census(FILE *fp, const struct dbh_census *c)
{
    static const char *const states[] = {"unmigrated", "scheduled", "migrated"};
    static const char *const modes[] = {"bcc", "rewrite"};

    family(fp, "store_up", "gauge", "Whether the state store could be read (1) or not (0).");
    fprintf(fp, "coexist_milter_store_up %d\n", c != NULL);
    if (c == NULL)
        return;
    for (int k = 0; k < 2; k++) {
        const char *name = k ? "domain_rules" : "users";

        family(fp, name, "gauge", k ? "Domain rules in the state store by effective state "
               "and mode." : "Users in the state store by effective state and mode.");
        for (int s = 0; s < 3; s++)
            for (int m = 0; m < 2; m++)
                fprintf(fp, "coexist_milter_%s{state=\"%s\",mode=\"%s\"} %lu\n", name,
                        states[s], modes[m], c->records[k][s][m]);
    }
    family(fp, "store_counted_timestamp_seconds", "gauge",
           "When the records were last counted (they are counted again when the store "
           "changes).");
    fprintf(fp, "coexist_milter_store_counted_timestamp_seconds %lld\n", (long long) c->now);
}

/* counting - the per-user counters and their flush into counters_db. */
static void counting(FILE *fp, const struct metrics_input *in)
{
    time_t since = in->last_flush ? in->last_flush : in->started;

    family(fp, "counters_enabled", "gauge", "Whether per-user counters are kept (counters_db).");
    fprintf(fp, "coexist_milter_counters_enabled %d\n", in->counting);
    if (!in->counting)
        return;
    family(fp, "counters_last_flush_timestamp_seconds", "gauge",
           "When counters_db was last brought up to date (0: not yet).");
    fprintf(fp, "coexist_milter_counters_last_flush_timestamp_seconds %lld\n",
            (long long) in->last_flush);
    family(fp, "counters_flush_age_seconds", "gauge",
           "Seconds since counters_db was last brought up to date (since start if never).");
    fprintf(fp, "coexist_milter_counters_flush_age_seconds %lld\n",
            (long long) (in->now > since ? in->now - since : 0));
    family(fp, "counters_flush_failures_total", "counter",
           "Flushes into counters_db that failed (their counts were kept for the next).");
    fprintf(fp, "coexist_milter_counters_flush_failures_total %lu\n", in->flush_failures);
    family(fp, "counters_pending", "gauge", "Per-user counts waiting for the next flush.");
    fprintf(fp, "coexist_milter_counters_pending %lu\n", in->pending);
    family(fp, "counters_lost_total", "counter", "Counts dropped for want of memory.");
    fprintf(fp, "coexist_milter_counters_lost_total %lu\n", in->lost);
}

int metrics_format(FILE *fp, const struct metrics_input *in)
{
    family(fp, "build_info", "gauge", "Version of coexist-milter and libmilter; always 1.");
    fputs("coexist_milter_build_info{version=\"", fp);
    label_value(fp, in->version);
    fputs("\",libmilter=\"", fp);
    label_value(fp, in->libmilter);
    fputs("\",instance=\"", fp);
    label_value(fp, in->instance);
    fputs("\"} 1\n", fp);
    family(fp, "start_time_seconds", "gauge", "When the daemon started, in seconds since the epoch.");
    fprintf(fp, "coexist_milter_start_time_seconds %lld\n", (long long) in->started);
    for (size_t i = 0; i < NSTATS; i++) {
        family(fp, metrics_stats[i].name, "counter", metrics_stats[i].help);
        fprintf(fp, "coexist_milter_%s %lu\n", metrics_stats[i].name,
                in->stats[metrics_stats[i].which]);
    }
    census(fp, in->census);
    counting(fp, in);
    return ferror(fp) ? -1 : 0;
}

int metrics_write(const char *path, const struct metrics_input *in, char err[METRICS_ERR_MAX])
{
    char tmp[4096];
    FILE *fp;
    int fd;

    if ((size_t) snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
        snprintf(err, METRICS_ERR_MAX, "metrics_file %.200s: path too long", path);
        return -1;
    }
    /* node_exporter's textfile collector ignores names not ending in .prom. */
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0
        || (fp = fdopen(fd, "w")) == NULL) {
        snprintf(err, METRICS_ERR_MAX, "metrics_file %.300s: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (metrics_format(fp, in) < 0 || fflush(fp) != 0 || fchmod(fd, 0644) < 0) {
        snprintf(err, METRICS_ERR_MAX, "metrics_file %.300s: %s", tmp, strerror(errno));
        fclose(fp);
        unlink(tmp);
        return -1;
    }
    if (fclose(fp) != 0 || rename(tmp, path) < 0) {
        snprintf(err, METRICS_ERR_MAX, "metrics_file %.300s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}
