/*
 * pg_cluster.c - a throw-away PostgreSQL for unit tests (see pg_cluster.h).
 */
#include <stdio.h>
#include <stdlib.h>

#include "pg_cluster.h"

#define PGLIB TOP_SRCDIR "/tests/cluster/pglib.sh"

int pg_cluster_start(const char *test, char dir[PG_CLUSTER_DIR_MAX])
{
    char cmd[512];

    snprintf(dir, PG_CLUSTER_DIR_MAX, "/tmp/%s.XXXXXX", test);
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(cmd, sizeof(cmd), "bash -c '. %s && pg_start %s'", PGLIB, dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "%s: cannot start PostgreSQL in %s\n", test, dir);
        return -1;
    }
    return 0;
}

int pg_cluster_run(const char *dir, const char *call)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "PG_DIR=%s bash -c '. %s && %s'", dir, PGLIB, call);
    return system(cmd);
}
