/*
 * ctl_wave.c - a wave change (migrate/unmigrate/mode/reverse --wave) in
 * bounded commits, on the local store.
 *
 * One transaction for a wave of 100,000 users held every milter lookup for
 * the whole of its commit: about a second at 10^6 users (BENCHMARKS.md),
 * and a replica's follower applying it did the same on every other MX. So
 * the wave's keys are sorted and changed a part at a time, each part
 * one compare-and-set change applied whole by the backend. How large a
 * part may be is the backend's to say (backend_commit_part): the local TDB
 * says 1000; the shared store no limit, since its followers apply every
 * change in batches of their own. A reader sees the
 * wave advance part by part in key order, each part whole: the milter
 * looks up all recipients of a message under one read lock, so a message
 * sees one committed state, never a part half applied.
 *
 * The journal frames the parts with two notes on "!wave/W": "VERB begun:
 * N records in K commits" in the first part and "VERB done: ..." in the
 * last, so history shows the one wave change and, if it was interrupted,
 * how far it got. Running the same command again finishes it (a record
 * already changed is changed again to the same state, with a new stamp).
 * A part that loses a race to another writer is read again and made again
 * on the current state (CTL_CONFLICT_TRIES times); the parts before it stay
 * committed. The wait for this host's replica comes once, after the last.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ctl.h"

#define WAVE_NOTE_MAX 160

/* One wave change in progress. */
struct wave_run {
    const char *verb;
    char note_key[80];          /* "!wave/W" */
    size_t nkeys, nparts;
    ctl_change_fn fn;
    const void *arg;
};

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* wave_note - the journal note that opens ("begun") or closes ("done") the wave. */
static int wave_note(struct ctl *c, const struct wave_run *w, const char *what)
{
    char text[WAVE_NOTE_MAX];

    snprintf(text, sizeof(text), "%s %s: %zu records in %zu commits", w->verb, what,
             w->nkeys, w->nparts);
    return ctl_note(c, w->note_key, "-", text);
}

/*
 * wave_part - stage and commit part PART (KEYS[0..N)); on a lost race,
 * again on the current state. Returns an exit code.
 */
static int wave_part(struct ctl *c, const struct wave_run *w, size_t part, char **keys,
                     size_t n)
{
    char again[96];
    int rc = EX_OK;

    snprintf(again, sizeof(again), "commit %zu of %zu not applied", part + 1, w->nparts);
    for (int tries = 1;; tries++) {
        c->conflict = 0;
        rc = ctl_change_begin(c);
        if (rc == EX_OK && part == 0)
            rc = wave_note(c, w, "begun");
        if (rc == EX_OK)
            rc = ctl_stage_keys(c, keys, n, w->fn, w->arg);
        if (rc == EX_OK && part + 1 == w->nparts)
            rc = wave_note(c, w, "done");
        if (rc == EX_OK && (rc = ctl_commit_part(c, 0, again)) == EX_OK)
            return EX_OK;
        if (!c->conflict || tries == CTL_CONFLICT_TRIES)
            break;
        fprintf(c->err, "coexistctl: making commit %zu of %zu again on the current state\n",
                part + 1, w->nparts);
        if ((rc = ctl_replica_catch_up(c)) != EX_OK)
            break;
    }
    /* The parts before this one stay: not the whole verb again (run_verb). */
    c->conflict = 0;
    return rc;
}

int ctl_change_wave(struct ctl *c, const char *verb, const char *wave, char **keys,
                    size_t nkeys, size_t part_size, ctl_change_fn fn, const void *arg)
{
    struct wave_run w = {verb, "", nkeys, (nkeys + part_size - 1) / part_size, fn, arg};
    size_t done = 0;
    int rc = EX_OK;

    snprintf(w.note_key, sizeof(w.note_key), "!wave/%s", wave);
    qsort(keys, nkeys, sizeof(*keys), cmp_keys);
    for (size_t part = 0; part < w.nparts; part++) {
        size_t n = nkeys - done < part_size ? nkeys - done : part_size;

        if ((rc = wave_part(c, &w, part, keys + done, n)) != EX_OK)
            break;
        ctl_log_change(c, verb);
        done += n;
    }
    if (rc != EX_OK) {
        if (done > 0)
            fprintf(c->err, "coexistctl: %s --wave %s stopped after %zu of %zu commits "
                    "(%zu of %zu records changed); run it again to finish the wave\n",
                    verb, wave, done / part_size, w.nparts, done, nkeys);
        return rc;
    }
    ctl_logf(c, "%s --wave %s: %zu records in %zu commits", verb, wave, nkeys, w.nparts);
    if ((rc = ctl_replica_sync(c, c->last_id, 1)) != EX_OK)
        return rc;
    fprintf(c->out, "%s: %zu records changed in %zu commits\n", verb, nkeys, w.nparts);
    return EX_OK;
}
