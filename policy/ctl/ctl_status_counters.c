/*
 * ctl_status_counters.c - what coexistctl status says about the milter's
 * per-user counters (counters_db) and its metrics_file: whether they are
 * there and how fresh, so an admin sees a milter that stopped flushing or
 * writing them without reading its log.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "counters.h"
#include "ctl.h"
#include "timefmt.h"

/* count_key - counters_traverse's visitor for the number of keys. */
static int count_key(const char *key, const struct counters_rec *rec, void *ctx)
{
    (void) key;
    (void) rec;
    (*(long *) ctx)++;
    return 0;
}

/* status_counters_db - the counters file beside the store (or as configured). */
static void status_counters_db(struct ctl *c)
{
    char path[CONFIG_STR_MAX * 2], err[COUNTERS_ERR_MAX], since[TIMEFMT_BUFSIZE];
    char flushed[TIMEFMT_BUFSIZE];
    struct counters_db *db;
    time_t t_since, t_flushed;
    long keys = 0;

    if (config_beside(c->cfg.counters_db, c->db_path, path, sizeof(path)) < 0
        || path[0] == '\0') {
        fprintf(c->out, "counters: off (counters_db is empty)\n");
        return;
    }
    if ((db = counters_open(path, 0, err)) == NULL) {
        fprintf(c->out, "counters: %s (%s)\n", path, errno == ENOENT
                ? "none yet: the milter makes it at its first flush" : err);
        return;
    }
    if (counters_times(db, &t_since, &t_flushed, err) < 0
        || counters_traverse(db, count_key, &keys, err) < 0)
        fprintf(c->out, "counters: %s (%s)\n", path, err);
    else {
        timefmt_format(t_since, since);
        timefmt_format(t_flushed, flushed);
        fprintf(c->out, "counters: %s (%ld key%s, counting since %s, last flush %s, "
                "%ld s ago)\n", path, keys, keys == 1 ? "" : "s", t_since ? since : "-",
                t_flushed ? flushed : "-",
                (long) (t_flushed && c->now > t_flushed ? c->now - t_flushed : 0));
    }
    counters_close(db);
}

/* status_metrics - metrics_file, and when the milter last wrote it. */
static void status_metrics(struct ctl *c)
{
    char when[TIMEFMT_BUFSIZE];
    struct stat sb;

    if (c->cfg.metrics_file[0] == '\0') {
        fprintf(c->out, "metrics: none (metrics_file is not set)\n");
        return;
    }
    if (stat(c->cfg.metrics_file, &sb) < 0) {
        fprintf(c->out, "metrics: %s (%s)\n", c->cfg.metrics_file, strerror(errno));
        return;
    }
    timefmt_format(sb.st_mtime, when);
    fprintf(c->out, "metrics: %s (written %s, %ld s ago)\n", c->cfg.metrics_file, when,
            (long) (c->now > sb.st_mtime ? c->now - sb.st_mtime : 0));
}

void ctl_status_counters(struct ctl *c)
{
    status_counters_db(c);
    status_metrics(c);
}
