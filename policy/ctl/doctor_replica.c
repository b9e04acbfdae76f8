/*
 * doctor_replica.c - with shared_store, the local replica the milter
 * routes by must keep up with the database: status's lag (ctl_status.c),
 * judged against a bound. A replica minutes behind routes migrated users
 * by their old state.
 */
#include <stdio.h>
#include <time.h>

#include "doctor.h"

/* A replica further behind than this is a finding (follow applies within 1 s). */
#define DOCTOR_LAG_MAX_SECONDS 60

void doctor_replica_checks(struct doctor *d)
{
    char err[DOCTOR_ERR_MAX];
    long long rows = 0;
    long secs = 0;
    int rc;

    if (d->dr_cfg->shared_store[0] == '\0')
        return;
    doctor_checked(d, "replica");
    rc = ctl_replica_lag(d->dr_cfg, d->dr_db_path, time(NULL), &rows, &secs, err,
                         sizeof(err));
    if (rc == 1)
        doctor_add(d, "replica.position", "start coexistctl follow (systemctl enable --now "
                   "coexist-follow)", "%s is no replica of the shared store yet (%s)",
                   d->dr_db_path, err);
    else if (rc < 0)
        doctor_add(d, "replica.database", "check shared_store and the database (coexistctl "
                   "status); mail routes by the replica's last state meanwhile",
                   "the shared store cannot say the replica's lag: %s", err);
    else if (secs > DOCTOR_LAG_MAX_SECONDS)
        doctor_add(d, "replica.lag", "check that coexistctl follow runs (systemctl status "
                   "coexist-follow; coexistctl status)", "the replica %s is %lld journal "
                   "row%s and %ld s behind the shared store", d->dr_db_path, rows,
                   rows == 1 ? "" : "s", secs);
}
