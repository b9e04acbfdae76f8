/*
 * ctl_write.c - how a writing verb's change reaches the state: the verb
 * reads the store as it is, records each change with ctl_put, ctl_delete
 * and ctl_note (each with the record it saw, for compare-and-set), and
 * ctl_commit hands the whole set to the backend: the local TDB, or the
 * shared database when shared_store is set (backend.h). No verb knows
 * which; none writes the store itself.
 */
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "ctl.h"
#include "replica.h"

/* ctl_change_begin - a new, empty change by this actor on this node. */
int ctl_change_begin(struct ctl *c)
{
    char err[CHANGE_ERR_MAX], node[CONFIG_STR_MAX];

    change_free(&c->change);
    config_node_name(&c->cfg, node);
    if (change_init(&c->change, c->actor, node, err) < 0) {
        fprintf(c->err, "coexistctl: %s\n", err);
        return EX_OSERR;
    }
    return EX_OK;
}

/*
 * current_text - KEY's record text as the store holds it (decoded or not:
 * a corrupt record can still be removed) into TEXT; 1, 0 if absent, or an
 * exit code (negative) on a store error.
 */
static int current_text(struct ctl *c, const char *key, char text[RECORD_TEXT_MAX + 1])
{
    int found = store_get_text(c->st, key, text, RECORD_TEXT_MAX + 1);

    return found < 0 ? -ctl_store_fail(c) : found;
}

/* ctl_put - change KEY to REC (stamped with now and the actor). */
int ctl_put(struct ctl *c, const char *key, struct record *rec)
{
    char old[RECORD_TEXT_MAX + 1], text[RECORD_TEXT_MAX + 1], err[CHANGE_ERR_MAX];
    int found;

    rec->changed = c->now;
    snprintf(rec->actor, sizeof(rec->actor), "%s", c->actor);
    if ((found = current_text(c, key, old)) < 0)
        return -found;
    if (record_encode(rec, text, sizeof(text)) < 0) {
        fprintf(c->err, "coexistctl: the record of '%s' would be too long\n", key);
        return EX_DATAERR;
    }
    if (change_put(&c->change, key, found ? old : NULL, text, err) < 0) {
        fprintf(c->err, "coexistctl: cannot record the change of %s: %s\n", key, err);
        return EX_DATAERR;
    }
    return EX_OK;
}

/* ctl_delete - remove KEY; EX_NOUSER (said) if there is no such record. */
int ctl_delete(struct ctl *c, const char *key)
{
    char old[RECORD_TEXT_MAX + 1], err[CHANGE_ERR_MAX];
    int found;

    if ((found = current_text(c, key, old)) < 0)
        return -found;
    if (found == 0) {
        fprintf(c->err, "coexistctl: no record for '%s'; nothing changed\n", key);
        return EX_NOUSER;
    }
    if (change_delete(&c->change, key, old, err) < 0) {
        fprintf(c->err, "coexistctl: %s\n", err);
        return EX_DATAERR;
    }
    return EX_OK;
}

/* ctl_note - a free-form journal entry in the same change (an import summary). */
int ctl_note(struct ctl *c, const char *key, const char *old_text, const char *new_text)
{
    char err[CHANGE_ERR_MAX];

    if (change_note(&c->change, key, old_text, new_text, err) < 0) {
        fprintf(c->err, "coexistctl: %s\n", err);
        return EX_SOFTWARE;
    }
    return EX_OK;
}

/*
 * ctl_commit_part - apply the change whole or not at all, without waiting
 * for this host's replica (one commit of a wave in parts: the wait comes
 * after the last). BULK journals it as its notes only (a big import on the
 * local store). A conflict (another writer changed a key since it was
 * read) sets c->conflict: ctl_main runs the verb again on the fresh state.
 * NOTHING (said to the user) names what was not done: "nothing changed",
 * "nothing imported".
 */
int ctl_commit_part(struct ctl *c, int bulk, const char *nothing)
{
    char err[BACKEND_ERR_MAX];
    int rc = backend_apply(c->be, &c->change, bulk, &c->last_id, err);

    switch (rc) {
    case CHANGE_OK:
        return EX_OK;
    case CHANGE_CONFLICT:
        c->conflict = 1;
        fprintf(c->err, "coexistctl: %s; %s\n", err, nothing);
        return EX_TEMPFAIL;
    case CHANGE_UNAVAILABLE:
        fprintf(c->err, "coexistctl: the shared store is unavailable: %s; %s\n", err,
                nothing);
        return EX_TEMPFAIL;
    default:
        fprintf(c->err, "coexistctl: %s; %s\n", err, nothing);
        return EX_IOERR;
    }
}

/* ctl_commit - ctl_commit_part, then wait until this host's replica has it. */
int ctl_commit(struct ctl *c, int bulk, const char *nothing)
{
    int rc = ctl_commit_part(c, bulk, nothing);

    return rc == EX_OK ? ctl_replica_sync(c, c->last_id, 1) : rc;
}

/*
 * reopen_if_replaced - the replica's follower replaces the file by rename
 * when it takes a snapshot: read the new one. Returns EX_OK or an exit code.
 */
static int reopen_if_replaced(struct ctl *c)
{
    char err[STORE_ERR_MAX];

    if (store_changed_on_disk(c->st) == 0)
        return EX_OK;
    store_close(c->st);
    if ((c->st = store_open(c->db_path, STORE_OPEN_EXISTING, 0, err)) == NULL) {
        fprintf(c->err, "coexistctl: %s\n", err);
        return EX_NOINPUT;
    }
    return EX_OK;
}

/*
 * ctl_replica_sync - with the shared store, wait (replica_wait seconds at
 * most) until this host's replica has applied the shared journal up to ID:
 * before a writing verb reads it, and after its commit, so that "the next
 * message sees it" holds where the admin typed the command. The local
 * store needs no wait: the change is in it. A replica that does not get
 * there says so and exits EX_UNAVAILABLE: no follower runs, or it is slow.
 */
int ctl_replica_sync(struct ctl *c, long long id, int after_write)
{
    struct replica_position pos = {0};
    char err[REPLICA_ERR_MAX];
    time_t deadline = time(NULL) + (time_t) c->cfg.replica_wait;
    int rc, have = 0;

    if (!c->shared)
        return EX_OK;
    for (;;) {
        if ((rc = reopen_if_replaced(c)) != EX_OK)
            return rc;
        if ((have = replica_position_read(c->st, &pos, err)) < 0) {
            fprintf(c->err, "coexistctl: %s\n", err);
            return EX_IOERR;
        }
        /*
         * No position: the store is not a replica yet (the records from
         * before shared_store was set, until the follower's first snapshot
         * replaces the file). A verb that read it would build its change on
         * records the database does not hold, and lose every race.
         */
        if (have == 1 && pos.position >= id)
            return EX_OK;
        if (time(NULL) >= deadline)
            break;
        usleep(20 * 1000);
    }
    if (have == 0) {
        fprintf(c->err, "coexistctl: %s is not yet a replica of the shared store (no "
                "position: coexist-follow makes it with its first snapshot; coexistctl "
                "status shows it): %s\n", c->db_path, after_write ? "the change is "
                "committed in the shared store but not yet seen by this host"
                : "nothing changed");
        return EX_UNAVAILABLE;
    }
    fprintf(c->err, "coexistctl: the local replica %s is at journal id %lld, the shared "
            "store at %lld: %s (is coexist-follow running?)\n", c->db_path, pos.position,
            id, after_write ? "the change is committed in the shared store but not yet "
            "seen by this host" : "nothing changed");
    return EX_UNAVAILABLE;
}

/*
 * ctl_replica_catch_up - with the shared store, a writing verb reads the local
 * replica: wait until it has applied the database's latest change, so the
 * verb decides on the state it will compare-and-set against.
 */
int ctl_replica_catch_up(struct ctl *c)
{
    char err[BACKEND_ERR_MAX];
    long long latest;
    int rc;

    if (!c->shared)
        return EX_OK;
    if ((rc = backend_latest_id(c->be, &latest, err)) != CHANGE_OK) {
        fprintf(c->err, "coexistctl: shared_store: %s; nothing changed\n", err);
        return rc == CHANGE_UNAVAILABLE ? EX_TEMPFAIL : EX_IOERR;
    }
    return ctl_replica_sync(c, latest, 0);
}
