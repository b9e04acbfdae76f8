/*
 * ctl_follow.c - "coexistctl follow": the long-running keeper of this
 * host's replica of the shared store (DESIGN section 11, replica.h).
 *
 * It connects, LISTENs, brings the replica up to date (a snapshot if rows
 * cannot), then applies the journal whenever a NOTIFY arrives or the poll
 * interval passes (the fallback for a lost NOTIFY), and reports its
 * position to the database. When the database goes away the replica stays
 * as it is -- the milter keeps routing by the last state -- and follow
 * reconnects with a backoff. It logs one line per change of state
 * (connected, lost, snapshot, caught up, stopped), never one per retry or
 * per row: a database down for an hour must not flood syslog.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "policy/config.h"   /* not autoconf's config.h */
#include "ctl.h"

#ifndef HAVE_POSTGRESQL

int ctl_follow(struct ctl *c, int nargs, char **args)
{
    (void) nargs;
    (void) args;
    fprintf(c->err, "coexistctl follow: this coexistctl was built without PostgreSQL "
            "(configure --without-postgresql): it cannot keep a replica of a shared store\n");
    return EX_UNAVAILABLE;
}

#else

#include "follow_counters.h"
#include "pgstore.h"
#include "replica.h"

#define FOLLOW_POLL_MS 5000             /* a lost NOTIFY costs at most this */
#define FOLLOW_WATCH_MS 1000            /* a removed or damaged replica, at most this */
#define FOLLOW_BUDGET_MS 1000           /* apply this long, then report and look again */
#define FOLLOW_BACKOFF_MAX 30           /* seconds between reconnects, at most */

static volatile sig_atomic_t follow_stop;

struct follow {
    struct ctl *c;
    struct pgstore *db;
    struct replica r;
    char node[CONFIG_STR_MAX];
    int once;
    int connected;                      /* as last logged */
    int local_failing;                  /* a local error was logged */
    int behind;                         /* log "caught up" when it is */
    long long reported;                 /* position last reported, -1: none */
    long long applied;                  /* rows applied by this run */
    long long snapshots;
    time_t lost_at;
    time_t counters_pushed;             /* the milter's last flush pushed, 0: none */
    int counters_failing;               /* a failed push was logged */
    char err[REPLICA_ERR_MAX];
};

/* on_signal - stop after the batch in progress. */
static void on_signal(int sig)
{
    follow_stop = sig;
}

/* catch_signals - SIGTERM and SIGINT interrupt waits (no SA_RESTART). */
static void catch_signals(struct sigaction old[2])
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, &old[0]);
    sigaction(SIGINT, &sa, &old[1]);
}

/*
 * hold_replica - one follower per replica: two would apply the same rows
 * and race each other's snapshots. An exclusive flock on STATE_DB.follow
 * (kept open until exit, released by the kernel even on kill -9). Then
 * the snapshot files a killed follower left behind ("STATE_DB.snapshot.PID"
 * of a process that is gone) are removed: no one else can be writing them.
 * Returns the lock's descriptor, or -1 (said).
 */
static int hold_replica(struct ctl *c)
{
    char path[4200], dir[4200], prefix[4200];
    struct dirent *e;
    DIR *d;
    int fd;

    snprintf(path, sizeof(path), "%s.follow", c->db_path);
    if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640)) < 0) {
        fprintf(c->err, "coexistctl follow: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        fprintf(c->err, "coexistctl follow: another follow keeps %s already (%s is locked)\n",
                c->db_path, path);
        close(fd);
        return -1;
    }
    /* libgen's basename and dirname may change their argument: copies each */
    snprintf(dir, sizeof(dir), "%s", c->db_path);
    snprintf(prefix, sizeof(prefix), "%s.snapshot.", basename(dir));
    snprintf(dir, sizeof(dir), "%s", c->db_path);
    if ((d = opendir(dirname(dir))) == NULL)
        return fd;
    while ((e = readdir(d)) != NULL) {
        char stale[8400];
        long pid;

        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0
            || (pid = strtol(e->d_name + strlen(prefix), NULL, 10)) <= 0
            || (kill((pid_t) pid, 0) == 0 || errno != ESRCH))
            continue;
        snprintf(stale, sizeof(stale), "%s/%s", dir, e->d_name);
        if (unlink(stale) == 0)
            ctl_logf(c, "follow removed %s, left by a follower that is gone", stale);
    }
    closedir(d);
    return fd;
}

/*
 * refuse_root - as root, follow would leave a replica the milter's account
 * cannot open (a snapshot's new file is the runner's): it runs as the
 * store's owner, or as root only where root owns the store (or, before the
 * first snapshot, its directory).
 */
static int refuse_root(struct ctl *c)
{
    char dir[4096];
    struct stat sb;
    const char *what = c->db_path;

    if (geteuid() != 0)
        return EX_OK;
    if (stat(c->db_path, &sb) < 0) {
        snprintf(dir, sizeof(dir), "%s", c->db_path);
        what = dirname(dir);
        if (stat(what, &sb) < 0)
            return EX_OK;       /* reported when the snapshot is made */
    }
    if (sb.st_uid == 0)
        return EX_OK;
    const struct passwd *owner = getpwuid(sb.st_uid);
    fprintf(c->err, "coexistctl follow: %s is owned by %s (uid %lu): run follow as that "
            "user, not as root, so that the milter can open the replica it writes\n", what,
            owner ? owner->pw_name : "another user", (unsigned long) sb.st_uid);
    return EX_NOPERM;
}

/* follow_nap - sleep SECONDS unless a stop signal comes first. */
static void follow_nap(unsigned seconds)
{
    struct timespec ts = {(time_t) seconds, 0};

    if (!follow_stop)
        nanosleep(&ts, NULL);
}

/* connect_db - connect (or reconnect), check the schema, LISTEN. */
static int connect_db(struct follow *f)
{
    char perr[PGSTORE_ERR_MAX];
    int rc;

    if (f->db == NULL)
        rc = pgstore_connect(f->c->cfg.shared_store, &f->db, perr);
    else
        rc = pgstore_reset(f->db, perr);
    if (rc == PGSTORE_OK && (rc = pgstore_check_schema(f->db, perr)) == PGSTORE_OK)
        rc = pgstore_listen(f->db, perr);
    if (rc != PGSTORE_OK)
        snprintf(f->err, sizeof(f->err), "%s", perr);
    return rc;
}

/* follow_report - tell the database where this replica is, when that changed. */
static int follow_report(struct follow *f)
{
    char perr[PGSTORE_ERR_MAX];
    int rc;

    if (f->r.damaged[0] || f->r.pos.position == f->reported)
        return REPLICA_OK;
    rc = pgstore_report_position(f->db, f->node, f->r.pos.position, perr);
    if (rc != PGSTORE_OK) {
        snprintf(f->err, sizeof(f->err), "%s", perr);
        return rc;
    }
    f->reported = f->r.pos.position;
    return REPLICA_OK;
}

/* follow_snapshot - replace the replica, saying why and how it went. */
static int follow_snapshot(struct follow *f, const char *why)
{
    long long records = 0;
    time_t start = time(NULL);
    int rc;

    ctl_logf(f->c, "replica %s needs a snapshot: %s", f->c->db_path, why);
    rc = replica_snapshot(&f->r, f->db, &records, f->err);
    if (rc != REPLICA_OK)
        return rc;
    f->snapshots++;
    f->behind = 1;
    ctl_logf(f->c, "snapshot taken: %s has %lld record%s at position %lld of database %s "
             "(%ld s)", f->c->db_path, records, records == 1 ? "" : "s",
             f->r.pos.position, f->r.pos.database_id, (long) (time(NULL) - start));
    return REPLICA_OK;
}

/* follow_sync - apply everything past the position (snapshots as needed), report. */
static int follow_sync(struct follow *f)
{
    long long n;
    int rc;

    for (;;) {
        rc = replica_apply_since(&f->r, f->db, 0, FOLLOW_BUDGET_MS, &n, f->err);
        f->applied += n;
        if (rc == REPLICA_NEEDS_SNAPSHOT) {
            char why[REPLICA_ERR_MAX];

            snprintf(why, sizeof(why), "%s", f->err);
            if ((rc = follow_snapshot(f, why)) != REPLICA_OK)
                return rc;
            continue;
        }
        if (rc != REPLICA_OK)
            return rc;
        /* Report between budgets too: a long catch-up shows its progress. */
        if ((rc = follow_report(f)) != REPLICA_OK)
            return rc;
        if (n == 0 || follow_stop)
            break;
    }
    if (f->behind) {
        ctl_logf(f->c, "replica %s caught up at position %lld", f->c->db_path,
                 f->r.pos.position);
        f->behind = 0;
    }
    if (f->local_failing) {
        ctl_logf(f->c, "replica %s is written again", f->c->db_path);
        f->local_failing = 0;
    }
    return REPLICA_OK;
}

/*
 * follow_counters - this host's counters_db into the shared store when the
 * milter flushed it since the last push. A local problem is logged once
 * and does not stop the follower; a lost database is follow_lost's.
 */
static int follow_counters(struct follow *f)
{
    char perr[PGSTORE_ERR_MAX];
    int rc = follow_counters_push(f->c, f->db, f->node, &f->counters_pushed, perr);

    if (rc == PGSTORE_UNAVAILABLE) {
        snprintf(f->err, sizeof(f->err), "%s", perr);
        return REPLICA_UNAVAILABLE;
    }
    if (rc != PGSTORE_OK && !f->counters_failing)
        ctl_logf(f->c, "counters not pushed to the shared store: %s; retrying", perr);
    else if (rc == PGSTORE_OK && f->counters_failing)
        ctl_logf(f->c, "counters pushed to the shared store again");
    f->counters_failing = rc != PGSTORE_OK;
    return REPLICA_OK;
}

/* follow_lost - the database went away: say so once, keep the replica serving. */
static void follow_lost(struct follow *f)
{
    if (f->connected)
        ctl_logf(f->c, "lost the shared store: %s; the milter keeps routing by the replica "
                 "at position %lld; reconnecting", f->err, f->r.pos.position);
    else if (f->lost_at == 0)
        ctl_logf(f->c, "cannot reach the shared store: %s; retrying", f->err);
    f->connected = 0;
    if (f->lost_at == 0)
        f->lost_at = time(NULL);
}

/* follow_connected - log the (re)connection once. */
static void follow_connected(struct follow *f)
{
    if (f->lost_at != 0 && f->reported >= 0)
        ctl_logf(f->c, "reconnected to the shared store after %ld s", (long) (time(NULL)
                 - f->lost_at));
    else
        ctl_logf(f->c, "following the shared store (database %s) as node %s into %s",
                 pgstore_database_id(f->db), f->node, f->c->db_path);
    f->connected = 1;
    f->lost_at = 0;
    f->behind = f->behind || f->reported >= 0;
    f->reported = -1;       /* a new session reports at once */
}

/* monotonic_ms - a clock for the poll deadline. */
static long long monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * follow_wait - until a NOTIFY, the poll interval, a stop signal, or the
 * replica file removed, replaced or damaged under us: every second costs a
 * stat and one fetch, not a query, and the milter (which tempfails while
 * its store is gone) waits at most that long for the snapshot to begin.
 */
static int follow_wait(struct follow *f)
{
    long long poll_at = monotonic_ms() + FOLLOW_POLL_MS, got;
    int rc;

    while (!follow_stop) {
        rc = pgstore_wait_notify(f->db, FOLLOW_WATCH_MS, &got, f->err);
        if (rc != PGSTORE_OK || got > 0 || monotonic_ms() >= poll_at)
            return rc;
        if (replica_watch(&f->r))
            return PGSTORE_OK;
    }
    return PGSTORE_OK;
}

/* follow_run - the loop; returns an exit code when it stops. */
static int follow_run(struct follow *f)
{
    unsigned backoff = 1;
    int rc, was_sound;

    while (!follow_stop) {
        if (!f->connected) {
            if ((rc = connect_db(f)) == PGSTORE_ERROR) {
                ctl_logf(f->c, "follow stops: %s", f->err);
                fprintf(f->c->err, "coexistctl follow: %s\n", f->err);
                return EX_CONFIG;       /* not our schema, or a newer one: no retry helps */
            }
            if (rc != PGSTORE_OK) {
                follow_lost(f);
                if (f->once)
                    return fprintf(f->c->err, "coexistctl follow: %s\n", f->err), EX_TEMPFAIL;
                follow_nap(backoff);
                backoff = backoff * 2 > FOLLOW_BACKOFF_MAX ? FOLLOW_BACKOFF_MAX : backoff * 2;
                continue;
            }
            follow_connected(f);
            backoff = 1;
        }
        was_sound = f->r.damaged[0] == '\0';
        rc = follow_sync(f);
        if (rc == REPLICA_UNAVAILABLE) {
            follow_lost(f);
            continue;
        }
        if (rc == REPLICA_LOCAL && was_sound && replica_recheck(&f->r)) {
            /* damaged in place: a snapshot now, not a retry that fails
             * forever (a snapshot that fails backs off like any error) */
            continue;
        }
        if (rc != REPLICA_OK) {
            if (!f->local_failing)
                ctl_logf(f->c, "replica %s not updated: %s; retrying", f->c->db_path, f->err);
            f->local_failing = 1;
            if (f->once)
                return fprintf(f->c->err, "coexistctl follow: %s\n", f->err), EX_IOERR;
            follow_nap(backoff);
            backoff = backoff * 2 > FOLLOW_BACKOFF_MAX ? FOLLOW_BACKOFF_MAX : backoff * 2;
            continue;
        }
        backoff = 1;
        if (follow_counters(f) == REPLICA_UNAVAILABLE) {
            follow_lost(f);
            continue;
        }
        if (f->once)
            return EX_OK;
        if (follow_wait(f) == PGSTORE_UNAVAILABLE)
            follow_lost(f);
    }
    return EX_OK;
}

int ctl_follow(struct ctl *c, int nargs, char **args)
{
    struct follow f;
    struct sigaction old[2];
    char err[REPLICA_ERR_MAX];
    int rc;

    int lock;

    (void) nargs;
    (void) args;
    if (c->cfg.shared_store[0] == '\0') {
        fprintf(c->err, "coexistctl follow: no shared_store in the config: there is no "
                "shared store to follow\n");
        return EX_CONFIG;
    }
    if ((rc = refuse_root(c)) != EX_OK)
        return rc;
    if ((lock = hold_replica(c)) < 0)
        return EX_TEMPFAIL;
    memset(&f, 0, sizeof(f));
    f.c = c;
    f.once = c->opt_once;
    f.reported = -1;
    config_node_name(&c->cfg, f.node);
    if (replica_open(&f.r, c->db_path, c->cfg.hash_size, 1, err) < 0) {
        fprintf(c->err, "coexistctl follow: %s\n", err);
        close(lock);
        return EX_CONFIG;
    }
    follow_stop = 0;
    catch_signals(old);
    rc = follow_run(&f);
    if (follow_stop)
        ctl_logf(c, "follow stops on signal %d at position %lld", (int) follow_stop,
                 f.r.pos.position);
    if (f.once && rc == EX_OK)
        fprintf(c->out, "replica %s at position %lld of database %s: %lld row%s applied%s\n",
                c->db_path, f.r.pos.position, f.r.pos.database_id, f.applied,
                f.applied == 1 ? "" : "s", f.snapshots ? " after a snapshot" : "");
    sigaction(SIGTERM, &old[0], NULL);
    sigaction(SIGINT, &old[1], NULL);
    replica_close(&f.r);
    pgstore_close(f.db);
    close(lock);
    return rc;
}

#endif
