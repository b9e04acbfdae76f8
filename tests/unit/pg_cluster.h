/*
 * pg_cluster.h - a throw-away PostgreSQL 15 for the unit tests that need a
 * real database (test_pgstore, test_replica), started and stopped through
 * tests/cluster/pglib.sh, as the cluster tier does it. A server that does
 * not start fails the group, never skips it.
 */
#ifndef COEXIST_PG_CLUSTER_H
#define COEXIST_PG_CLUSTER_H

#define PG_CLUSTER_DIR_MAX 64

/* pg_cluster_start - a new server in a temp dir named after TEST into DIR; 0 or -1. */
int pg_cluster_start(const char *test, char dir[PG_CLUSTER_DIR_MAX]);

/* pg_cluster_run - a pglib.sh call ("pg_stop fast") on the server in DIR; its status. */
int pg_cluster_run(const char *dir, const char *call);

#endif
