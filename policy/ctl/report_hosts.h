/*
 * report_hosts.h - the other hosts' counters for coexistctl report, from
 * the shared store (report_hosts.c).
 */
#ifndef COEXIST_REPORT_HOSTS_H
#define COEXIST_REPORT_HOSTS_H

#include "counters.h"
#include "ctl.h"

/* A host other than this one and its last flush (text); non-zero stops. */
typedef int (*report_host_fn)(const char *node, const char *flushed, void *ctx);
/* One key's counters of another host (summed by the caller); non-zero stops. */
typedef int (*report_count_fn)(const char *key, const struct counters_rec *rec, void *ctx);

/*
 * report_hosts_load - HOST for every other host and COUNT for each of its
 * keys. EX_OK, or an exit code with the reason printed (the database
 * unreachable is EX_TEMPFAIL: a sum that misses a host is not reported).
 */
int report_hosts_load(struct ctl *c, report_host_fn host, report_count_fn count, void *ctx);

#endif
