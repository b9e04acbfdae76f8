/*
 * ctl_status.c - "coexistctl status": where this host's state comes from
 * and how fresh it is. Without shared_store: the store and its record
 * count. With it: the local replica's position and database, then what
 * the database says (its latest journal id, this replica's lag in rows and
 * seconds, every node's reported position). The local part is printed
 * first and always: when the database is down, that is what the milter
 * routes by, and the exit status (EX_TEMPFAIL) says the rest is missing.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "policy/config.h"   /* not autoconf's config.h */
#include "ctl.h"
#include "doctor.h"
#include "replica.h"
#include "timefmt.h"

#ifdef HAVE_POSTGRESQL
#include "pgstore.h"
#endif

/* count_one - store_traverse's visitor for the record count. */
static int count_one(const char *key, const struct record *rec, void *ctx)
{
    (void) key;
    (void) rec;
    (*(long long *) ctx)++;
    return 0;
}

/* status_local - the store without a shared store: its path and size. */
static int status_local(struct ctl *c)
{
    char err[STORE_ERR_MAX];
    struct store *st = store_open(c->db_path, STORE_OPEN_EXISTING, 0, err);
    long long n = 0;
    int rc;

    fprintf(c->out, "store: %s\n", c->db_path);
    if (st == NULL) {
        fprintf(c->err, "coexistctl: %s\n", err);
        return EX_NOINPUT;
    }
    rc = store_traverse(st, count_one, &n);
    if (rc < 0)
        fprintf(c->err, "coexistctl: %s\n", store_error(st));
    else
        fprintf(c->out, "records: %lld\nshared store: none (this host's store is its own)\n", n);
    store_close(st);
    return rc < 0 ? EX_IOERR : EX_OK;
}

#ifdef HAVE_POSTGRESQL

/* print_node - one line per node that reported its replica's position. */
static int print_node(const char *node, long long position, time_t at, void *ctx)
{
    struct ctl *c = ctx;
    char when[TIMEFMT_BUFSIZE];

    timefmt_format(at, when);
    fprintf(c->out, "node %s: position %lld, reported %s\n", node, position, when);
    return 0;
}

/* status_shared - what the database says about this replica and the others. */
static int status_shared(struct ctl *c, const struct replica_position *pos, int have_pos)
{
    char err[PGSTORE_ERR_MAX];
    struct pgstore *db = NULL;
    long long latest, rows;
    time_t oldest;
    int rc;

    if ((rc = pgstore_connect(c->cfg.shared_store, &db, err)) == PGSTORE_OK
        && (rc = pgstore_check_schema(db, err)) == PGSTORE_OK
        && (rc = pgstore_latest_id(db, &latest, err)) == PGSTORE_OK
        && (rc = pgstore_lag(db, have_pos ? pos->position : 0, &rows, &oldest, err))
           == PGSTORE_OK) {
        fprintf(c->out, "database id: %s%s\n", pgstore_database_id(db),
                have_pos && strcmp(pos->database_id, pgstore_database_id(db)) != 0
                ? " (not the replica's: follow will take a snapshot)" : "");
        fprintf(c->out, "latest journal id: %lld\n", latest);
        fprintf(c->out, "lag: %lld row%s, %ld s\n", rows, rows == 1 ? "" : "s",
                (long) (rows > 0 && oldest > 0 && c->now > oldest ? c->now - oldest : 0));
        rc = pgstore_positions(db, print_node, c, err);
        rc = rc < 0 ? rc : PGSTORE_OK;
    }
    pgstore_close(db);
    if (rc == PGSTORE_OK)
        return EX_OK;
    fprintf(c->out, "shared store: unreachable\n");
    fprintf(c->err, "coexistctl status: %s\n", err);
    return rc == PGSTORE_UNAVAILABLE ? EX_TEMPFAIL : EX_CONFIG;
}

/* status_replica - the local replica first, then what the database says. */
static int status_replica(struct ctl *c)
{
    struct replica_position pos;
    char err[REPLICA_ERR_MAX];
    int have;

    fprintf(c->out, "store: %s\n", c->db_path);
    have = replica_status(c->db_path, &pos, err);
    if (have == 1)
        fprintf(c->out, "replica position: %lld\nreplica of database: %s\n", pos.position,
                pos.database_id);
    else if (have == 0 || access(c->db_path, F_OK) < 0)
        fprintf(c->out, "replica position: none (no replica yet: coexistctl follow makes "
                "it)\n");
    else
        fprintf(c->out, "replica position: none (%s)\n", err);
    return status_shared(c, &pos, have == 1);
}

#endif

int ctl_status(struct ctl *c, int nargs, char **args)
{
    int rc;

    (void) nargs;
    (void) args;
    if (c->cfg.shared_store[0] == '\0')
        rc = status_local(c);
    else {
#ifndef HAVE_POSTGRESQL
        fprintf(c->err, "coexistctl status: the config names a shared_store, but this "
                "coexistctl was built without PostgreSQL (configure --without-postgresql)\n");
        return EX_UNAVAILABLE;
#else
        rc = status_replica(c);
#endif
    }
    ctl_status_milter(c);       /* the milter and its files last: they never fail status */
    ctl_status_counters(c);
    return rc;
}

/*
 * ctl_replica_lag - status's numbers for doctor: how far the replica at
 * DB_PATH is behind the shared store of CFG, in journal rows and in
 * seconds since the oldest change it lacks (at NOW). 0; 1 when there is no
 * replica (position) yet; -1 with ERR when the database cannot tell.
 */
int ctl_replica_lag(const struct config *cfg, const char *db_path, time_t now,
                    long long *rows, long *secs, char *err, size_t errlen)
{
#ifndef HAVE_POSTGRESQL
    (void) cfg, (void) db_path, (void) now, (void) rows, (void) secs;
    snprintf(err, errlen, "this coexistctl was built without PostgreSQL");
    return -1;
#else
    struct replica_position pos;
    char rerr[REPLICA_ERR_MAX], perr[PGSTORE_ERR_MAX];
    struct pgstore *db = NULL;
    time_t oldest = 0;
    int have, rc;

    if ((have = replica_status(db_path, &pos, rerr)) != 1) {
        snprintf(err, errlen, "%s", have == 0 ? "no position" : rerr);
        return 1;
    }
    if ((rc = pgstore_connect(cfg->shared_store, &db, perr)) == PGSTORE_OK
        && (rc = pgstore_check_schema(db, perr)) == PGSTORE_OK)
        rc = pgstore_lag(db, pos.position, rows, &oldest, perr);
    pgstore_close(db);
    if (rc != PGSTORE_OK) {
        snprintf(err, errlen, "%s", perr);
        return -1;
    }
    *secs = *rows > 0 && oldest > 0 && now > oldest ? (long) (now - oldest) : 0;
    return 0;
#endif
}
