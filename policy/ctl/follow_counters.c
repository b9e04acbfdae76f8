/*
 * follow_counters.c - the follower pushes this host's counters_db into the
 * shared store, so that "coexistctl report" on any host sums every host
 * (DESIGN section 12). The milter never talks to the database: it flushes
 * its file, and the follower, which runs as the same account beside it,
 * carries what changed on. A push is one transaction; one that fails is
 * made again whole at the next look (the rows are values, not deltas, so a
 * repeat does no harm).
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/config.h"   /* not autoconf's config.h */
#include "counters.h"
#include "follow_counters.h"
#include "timefmt.h"

/* local_fail - a counters_db problem: PGSTORE_ERROR with WHY. */
static int local_fail(char err[PGSTORE_ERR_MAX], const char *why)
{
    snprintf(err, PGSTORE_ERR_MAX, "counters_db: %.400s", why);
    return PGSTORE_ERROR;
}

struct push_set {
    time_t changed_since;       /* keys last routed at or after this */
    char **keys, **values;
    size_t n, cap;
    int failed;
};

static void push_set_free(struct push_set *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        free(ps->keys[i]);
        free(ps->values[i]);
    }
    free(ps->keys);
    free(ps->values);
}

/* push_add - KEY and VALUE onto PS; -1 when out of memory. */
static int push_add(struct push_set *ps, const char *key, const char *value)
{
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? 2 * ps->cap : 256;
        char **k = realloc(ps->keys, cap * sizeof(*k));

        if (k == NULL)
            return -1;
        ps->keys = k;
        char **v = realloc(ps->values, cap * sizeof(*v));

        if (v == NULL)
            return -1;
        ps->values = v;
        ps->cap = cap;
    }
    if ((ps->keys[ps->n] = strdup(key)) == NULL)
        return -1;
    if ((ps->values[ps->n] = strdup(value)) == NULL) {
        free(ps->keys[ps->n]);
        return -1;
    }
    ps->n++;
    return 0;
}

/* collect - a key routed since the last push: its value goes again. */
static int collect(const char *key, const struct counters_rec *rec, void *ctx)
{
    struct push_set *ps = ctx;
    char text[COUNTERS_TEXT_MAX];

    /* A flush at second F holds routings up to F; one at F itself may
     * have come after that flush: >= sends it again, never misses it. */
    if (rec->last < ps->changed_since && rec->rlast < ps->changed_since)
        return 0;
    if (counters_encode(rec, text, sizeof(text)) < 0 || push_add(ps, key, text) < 0) {
        ps->failed = 1;
        return 1;
    }
    return 0;
}

int follow_counters_push(struct ctl *c, struct pgstore *db, const char *node,
                         time_t *pushed, char err[PGSTORE_ERR_MAX])
{
    char path[CONFIG_STR_MAX * 2], cerr[COUNTERS_ERR_MAX], when[TIMEFMT_BUFSIZE];
    struct push_set ps = {.changed_since = *pushed};
    struct counters_db *cdb;
    time_t since, flushed;
    int rc;

    if (config_beside(c->cfg.counters_db, c->db_path, path, sizeof(path)) < 0
        || path[0] == '\0' || access(path, F_OK) < 0)
        return PGSTORE_OK;
    if ((cdb = counters_open(path, 0, cerr)) == NULL)
        return local_fail(err, cerr);
    if (counters_times(cdb, &since, &flushed, cerr) < 0) {
        counters_close(cdb);
        return local_fail(err, cerr);
    }
    if (flushed == 0 || flushed == *pushed) {
        counters_close(cdb);
        return PGSTORE_OK;
    }
    rc = counters_traverse(cdb, collect, &ps, cerr);
    counters_close(cdb);
    timefmt_format(flushed, when);
    if (rc < 0 || ps.failed || push_add(&ps, FOLLOW_COUNTERS_FLUSHED_KEY, when) < 0) {
        push_set_free(&ps);
        return local_fail(err, rc < 0 ? cerr : strerror(ENOMEM));
    }
    rc = pgstore_counters_push(db, node, ps.n, (const char *const *) ps.keys,
                               (const char *const *) ps.values, err);
    push_set_free(&ps);
    if (rc == PGSTORE_OK)
        *pushed = flushed;
    return rc;
}
