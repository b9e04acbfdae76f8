/*
 * metrics.h - metrics_file: the milter's counters in the Prometheus text
 * exposition format, for node_exporter's textfile collector (Debian:
 * /var/lib/prometheus/node-exporter, files named *.prom).
 *
 * Every name is coexist_milter_*, counters end in _total, times are
 * seconds (_seconds, _timestamp_seconds), each family has its HELP and
 * TYPE lines. The file is written to a temp file beside it and renamed
 * over it, so a scrape never reads half of one.
 */
#ifndef COEXIST_METRICS_H
#define COEXIST_METRICS_H

#include <stdio.h>
#include <time.h>

#include "dbhandle.h"
#include "stats.h"

#define METRICS_ERR_MAX 512

/* What one metrics file says; filled by the caller (ticker.c). */
struct metrics_input {
    const char *version;                /* PACKAGE_VERSION */
    const char *libmilter;              /* "1.0.1" */
    const char *instance;
    time_t started;
    unsigned long stats[STATS_NCOUNTERS];
    const struct dbh_census *census;    /* NULL: the store is unavailable */
    int counting;                       /* counters_db is configured */
    time_t now;
    time_t last_flush;                  /* 0: none yet */
    unsigned long flush_failures;
    unsigned long pending;              /* entries waiting for the next flush */
    unsigned long lost;                 /* counts dropped for want of memory */
};

/* metrics_format - IN as Prometheus text to FP; 0, or -1 on a write error. */
int metrics_format(FILE *fp, const struct metrics_input *in);

/*
 * metrics_write - metrics_format into PATH.tmp, then rename it over PATH
 * (mode 0644: node_exporter runs as another user). 0, or -1 with ERR.
 */
int metrics_write(const char *path, const struct metrics_input *in,
                  char err[METRICS_ERR_MAX]);

#endif
