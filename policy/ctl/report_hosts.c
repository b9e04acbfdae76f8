/*
 * report_hosts.c - the other hosts' counters for "coexistctl report" with
 * shared_store: every follower pushes its host's counters_db into the
 * shared store (follow_counters.c); report reads the rows of every node
 * but its own (its own file is fresher) and hands them on to be summed.
 * Without PostgreSQL in the build, a config with shared_store is refused
 * here like everywhere else.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "policy/config.h"   /* not autoconf's config.h */
#include "counters.h"
#include "report_hosts.h"

#ifndef HAVE_POSTGRESQL

int report_hosts_load(struct ctl *c, report_host_fn host, report_count_fn count, void *ctx)
{
    (void) host;
    (void) count;
    (void) ctx;
    fprintf(c->err, "coexistctl: report: this coexistctl was built without PostgreSQL "
            "(configure --without-postgresql): it cannot read the other hosts' counters "
            "from shared_store\n");
    return EX_UNAVAILABLE;
}

#else

#include "follow_counters.h"
#include "pgstore.h"

struct hosts_ctx {
    report_host_fn host;
    report_count_fn count;
    void *ctx;
    char err[COUNTERS_ERR_MAX + 300];
};

static int visit_row(const char *node, const char *key, const char *value, void *arg)
{
    struct hosts_ctx *hc = arg;
    struct counters_rec rec;
    char why[COUNTERS_ERR_MAX];

    if (strcmp(key, FOLLOW_COUNTERS_FLUSHED_KEY) == 0)
        return hc->host(node, value, hc->ctx);
    if (key[0] == '!')
        return 0;
    if (counters_decode(value, strlen(value), &rec, why) < 0) {
        snprintf(hc->err, sizeof(hc->err), "%.64s's counters for '%.200s' do not parse: %s",
                 node, key, why);
        return 1;
    }
    return hc->count(key, &rec, hc->ctx);
}

int report_hosts_load(struct ctl *c, report_host_fn host, report_count_fn count, void *ctx)
{
    struct hosts_ctx hc = {host, count, ctx, ""};
    char perr[PGSTORE_ERR_MAX], node[CONFIG_STR_MAX];
    struct pgstore *db = NULL;
    int rc;

    config_node_name(&c->cfg, node);
    if ((rc = pgstore_connect(c->cfg.shared_store, &db, perr)) == PGSTORE_OK
        && (rc = pgstore_check_schema(db, perr)) == PGSTORE_OK)
        rc = pgstore_counters_traverse(db, node, visit_row, &hc, perr);
    pgstore_close(db);
    if (rc >= 0)
        return EX_OK;
    /* A sum without some hosts could say "0 in 7 days" falsely: no report. */
    fprintf(c->err, "coexistctl: report: cannot read the other hosts' counters from the "
            "shared store: %s; nothing reported\n", hc.err[0] ? hc.err : perr);
    return rc == PGSTORE_UNAVAILABLE ? EX_TEMPFAIL : hc.err[0] ? EX_DATAERR : EX_CONFIG;
}

#endif
