/*
 * ctl.h - coexistctl's verbs, callable without a process of their own so the
 * unit tests drive the real CLI code on a temp store.
 */
#ifndef COEXIST_CTL_H
#define COEXIST_CTL_H

#include <stdio.h>
#include <time.h>

#include "policy/config.h"   /* not autoconf's config.h */
#include "backend.h"
#include "change.h"
#include "record.h"
#include "store.h"

/* Where a change is reported (syslog in the real CLI). */
typedef void (*ctl_log_fn)(const char *message, void *ctx);

struct ctl {
    FILE *out;
    FILE *err;
    ctl_log_fn log;
    void *log_ctx;
    struct config cfg;
    const char *db_path;
    struct store *st;           /* open for every verb but init */
    /* Writing verbs: where changes go, and the change being built (ctl_write.c). */
    struct backend *be;
    int shared;                 /* be is the shared store; st its local replica */
    struct change change;
    long long last_id;          /* the shared journal id of the last commit */
    int conflict;               /* the last commit lost a race: run the verb again */
    char actor[RECORD_ACTOR_MAX + 1];
    time_t now;
    /* Parsed verb options; NULL or 0 when not given. */
    const char *opt_mode;
    const char *opt_wave;
    const char *opt_at;
    const char *opt_state;
    const char *opt_format;
    const char *opt_limit;
    const char *opt_hash_size;
    int opt_replace;
    int opt_allow_empty;
    int opt_reverse;
    int opt_shared;             /* init --shared */
    int opt_once;               /* follow --once */
    const char *opt_postfix_config;     /* doctor --postfix-config DIR */
    const char *opt_sendmail_cf;        /* doctor --sendmail-cf FILE */
    const char *opt_idle;       /* report --idle DAYS */
    const char *opt_since;      /* report --since TIME */
};

/*
 * ctl_main - run "coexistctl ARGV..." writing to OUT and ERR; returns a
 * sysexits.h code.
 */
int ctl_main(int argc, char **argv, FILE *out, FILE *err, ctl_log_fn log, void *log_ctx);

/* The verbs; ARGS are the positional arguments after the verb name. */
int ctl_init(struct ctl *c, int nargs, char **args);
int ctl_add(struct ctl *c, int nargs, char **args);
int ctl_migrate(struct ctl *c, int nargs, char **args);
int ctl_unmigrate(struct ctl *c, int nargs, char **args);
int ctl_mode(struct ctl *c, int nargs, char **args);
int ctl_remove(struct ctl *c, int nargs, char **args);
int ctl_import(struct ctl *c, int nargs, char **args);
int ctl_show(struct ctl *c, int nargs, char **args);
int ctl_explain(struct ctl *c, int nargs, char **args);
int ctl_list(struct ctl *c, int nargs, char **args);
int ctl_export(struct ctl *c, int nargs, char **args);
int ctl_history(struct ctl *c, int nargs, char **args);
int ctl_check(struct ctl *c, int nargs, char **args);
int ctl_stats(struct ctl *c, int nargs, char **args);
int ctl_reverse(struct ctl *c, int nargs, char **args);
/* The replica of the shared store (ctl_follow.c, ctl_status.c); they open
 * the store themselves: follow may have to make it, status reads it. */
int ctl_follow(struct ctl *c, int nargs, char **args);
int ctl_status(struct ctl *c, int nargs, char **args);
/* The deployment checked end to end (ctl_doctor.c); opens the store itself. */
int ctl_doctor(struct ctl *c, int nargs, char **args);
/* status: the milter's counters_db and metrics_file (ctl_status_counters.c). */
void ctl_status_counters(struct ctl *c);
/* status: whether the milter answers a negotiation on its socket (ctl_status_milter.c). */
void ctl_status_milter(struct ctl *c);
/* Legacy traffic per user and wave, from counters_db (ctl_report.c). */
int ctl_report(struct ctl *c, int nargs, char **args);

/*
 * Building and applying a verb's change (ctl_write.c). ctl_put/ctl_delete
 * take the record as the store holds it now for compare-and-set; ctl_commit
 * applies the whole change through c->be and returns an exit code (on a
 * conflict with c->conflict set). NOTHING is what the user is told was not
 * done ("nothing changed").
 */
int ctl_change_begin(struct ctl *c);
int ctl_put(struct ctl *c, const char *key, struct record *rec);
int ctl_delete(struct ctl *c, const char *key);
int ctl_note(struct ctl *c, const char *key, const char *old_text, const char *new_text);
int ctl_commit(struct ctl *c, int bulk, const char *nothing);
int ctl_commit_part(struct ctl *c, int bulk, const char *nothing);
int ctl_replica_sync(struct ctl *c, long long id, int after_write);
/* ctl_replica_catch_up - before a write: the replica at the database's latest change. */
int ctl_replica_catch_up(struct ctl *c);

/* How often a change that lost a race to another writer is made again. */
#define CTL_CONFLICT_TRIES 3

/*
 * A verb's change to one record: change REC of KEY, or return an exit code
 * (its message printed) to refuse. ctl_stage_keys applies it to every key
 * of KEYS into c->change (records read now, for compare-and-set).
 */
typedef int (*ctl_change_fn)(struct ctl *c, const char *key, struct record *rec,
                             const void *arg);
int ctl_stage_keys(struct ctl *c, char **keys, size_t nkeys, ctl_change_fn fn,
                   const void *arg);
/* ctl_log_change - the syslog lines of the committed c->change, one per record op. */
void ctl_log_change(struct ctl *c, const char *verb);

/*
 * ctl_change_wave - VERB's FN over the KEYS of wave WAVE in commits of at
 * most PART records (ctl_wave.c; PART is backend_commit_part's), so that no
 * commit holds the milter's lookups for long.
 */
int ctl_change_wave(struct ctl *c, const char *verb, const char *wave, char **keys,
                    size_t nkeys, size_t part, ctl_change_fn fn, const void *arg);

/* Helpers shared by the verb files. */
int ctl_key(struct ctl *c, const char *address, char key[ADDR_BUFSIZE]);
int ctl_store_fail(struct ctl *c);
void ctl_logf(struct ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * ctl_reverse_upgrade - build the reverse index of a store written by an
 * earlier version (no marker), saying so once; EX_OK or an exit code.
 */
int ctl_reverse_upgrade(struct ctl *c);

/* What the reverse index says about the other owners of an alias (ctl_chain.c). */
struct ctl_owners {
    int count;                          /* owners but SELF and the skipped */
    char first[ADDR_BUFSIZE];           /* the first of them */
    char reverse[ADDR_BUFSIZE];         /* one of them with reverse = yes, or "" */
};
typedef int (*ctl_skip_fn)(const char *owner, void *ctx);

/*
 * ctl_other_owners - the owners of ALIAS (as store_reverse_get takes it)
 * other than SELF and those SKIP (if not NULL) says to leave out. Returns
 * EX_OK or an exit code (the store error printed).
 */
int ctl_other_owners(struct ctl *c, const char *alias, const char *self, ctl_skip_fn skip,
                     void *skip_ctx, struct ctl_owners *out);

/*
 * ctl_refuse_links - the checks of add for KEY with REC, each with one
 * message: its alias is itself managed, KEY is already someone's alias, or
 * the alias is shared while reverse routing is on for it. EX_OK or
 * EX_DATAERR (or a store error's code).
 */
int ctl_refuse_links(struct ctl *c, const char *key, const struct record *rec);

/* ctl_refuse_shared - only the last of those: for "reverse on". */
int ctl_refuse_shared(struct ctl *c, const char *key, const struct record *rec);

#endif
