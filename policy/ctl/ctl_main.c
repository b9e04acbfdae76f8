/*
 * ctl_main.c - coexistctl's command line: global options, the verb table,
 * per-verb options, and opening the store the config names.
 */
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "actor.h"
#include "policy/config.h"   /* not autoconf's config.h */
#include "ctl.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

/* Verb options: the letters name which ones a verb accepts. */
struct ctl_option {
    const char *name;
    char letter;
    int takes_value;
    size_t offset;
};

static const struct ctl_option ctl_options[] = {
    {"--mode", 'm', 1, offsetof(struct ctl, opt_mode)},
    {"--wave", 'w', 1, offsetof(struct ctl, opt_wave)},
    {"--at", 'a', 1, offsetof(struct ctl, opt_at)},
    {"--state", 's', 1, offsetof(struct ctl, opt_state)},
    {"--format", 'f', 1, offsetof(struct ctl, opt_format)},
    {"--limit", 'l', 1, offsetof(struct ctl, opt_limit)},
    {"--hash-size", 'h', 1, offsetof(struct ctl, opt_hash_size)},
    {"--replace", 'r', 0, offsetof(struct ctl, opt_replace)},
    {"--allow-empty", 'e', 0, offsetof(struct ctl, opt_allow_empty)},
    {"--reverse", 'v', 0, offsetof(struct ctl, opt_reverse)},
    {"--shared", 'S', 0, offsetof(struct ctl, opt_shared)},
    {"--once", 'o', 0, offsetof(struct ctl, opt_once)},
    {"--postfix-config", 'P', 1, offsetof(struct ctl, opt_postfix_config)},
    {"--sendmail-cf", 'M', 1, offsetof(struct ctl, opt_sendmail_cf)},
    {"--idle", 'i', 1, offsetof(struct ctl, opt_idle)},
    {"--since", 'n', 1, offsetof(struct ctl, opt_since)},
};

struct ctl_verb {
    const char *name;
    int (*run)(struct ctl *, int, char **);
    int min_args, max_args;     /* positional; -1: no limit */
    const char *options;        /* letters of ctl_options */
    const char *usage;
    int writes;                 /* changes the store: its owner only */
};

static const struct ctl_verb ctl_verbs[] = {
    {"init", ctl_init, 0, 0, "hS", "init [--hash-size N] | init --shared", 1},
    {"add", ctl_add, 2, 2, "mwv", "add ADDRESS ALIAS [--mode bcc|rewrite] [--wave W] [--reverse] | add @DOMAIN @LEGACYDOMAIN [--mode bcc|rewrite] [--reverse]", 1},
    {"migrate", ctl_migrate, 0, -1, "wa", "migrate ADDRESS... | --wave W [--at TIME]", 1},
    {"unmigrate", ctl_unmigrate, 0, -1, "w", "unmigrate ADDRESS... | --wave W", 1},
    {"mode", ctl_mode, 2, 2, "", "mode ADDRESS bcc|rewrite", 1},
    {"remove", ctl_remove, 1, -1, "", "remove ADDRESS...", 1},
    {"reverse", ctl_reverse, 1, -1, "w", "reverse ADDRESS... on|off | reverse --wave W on|off", 1},
    {"show", ctl_show, 1, 1, "", "show ADDRESS", 0},
    {"explain", ctl_explain, 1, 1, "", "explain ADDRESS", 0},
    {"list", ctl_list, 0, 0, "swf", "list [--state unmigrated|migrated] [--wave W] [--format text|csv|json]", 0},
    {"import", ctl_import, 1, 1, "re", "import FILE|- [--replace [--allow-empty]]", 1},
    {"export", ctl_export, 0, 0, "f", "export [--format csv|json]", 0},
    {"history", ctl_history, 0, 1, "l", "history [ADDRESS] [--limit N]", 0},
    {"check", ctl_check, 0, 0, "", "check", 0},
    {"stats", ctl_stats, 0, 0, "", "stats", 0},
    {"follow", ctl_follow, 0, 0, "o", "follow [--once]", 1},
    {"status", ctl_status, 0, 0, "", "status", 0},
    {"doctor", ctl_doctor, 0, 0, "fPM", "doctor [--postfix-config DIR] [--sendmail-cf FILE] [--format text|json]", 0},
    {"report", ctl_report, 0, 0, "winf", "report [--wave W] [--idle DAYS] [--since TIME] [--format text|csv|json]", 0},
};
#define NVERBS (sizeof(ctl_verbs) / sizeof(ctl_verbs[0]))

static void usage(FILE *fp)
{
    fprintf(fp, "usage: coexistctl [-c CONFIG] [-d DB] VERB [ARGS...]\n"
                "       coexistctl -V | -h\n\nverbs:\n");
    for (size_t i = 0; i < NVERBS; i++)
        fprintf(fp, "  %s\n", ctl_verbs[i].usage);
    fprintf(fp, "\nTIME is ISO 8601 with a zone, e.g. 2026-12-04T18:00:00Z.\n"
                "The store is state_db of the config (default %s).\n", CONFIG_DEFAULT_PATH);
}

/*
 * check_owner - only the store's owner (or root) may change it. The milter
 * opens the store read-write as its own user; a store written by someone
 * else, however the permissions allow it, is one chmod or one rename away
 * from a milter that can no longer open it and tempfails all mail.
 */
static int check_owner(struct ctl *c)
{
    struct stat sb;
    uid_t me = geteuid();

    if (stat(c->db_path, &sb) < 0 || me == 0 || sb.st_uid == me)
        return EX_OK;       /* a missing store is reported by store_open */
    const struct passwd *owner = getpwuid(sb.st_uid);
    fprintf(c->err, "coexistctl: %s is owned by %s (uid %lu), not by you (uid %lu): "
            "run coexistctl as %s or as root to change it\n", c->db_path,
            owner ? owner->pw_name : "another user", (unsigned long) sb.st_uid,
            (unsigned long) me, owner ? owner->pw_name : "its owner");
    return EX_NOPERM;
}

/*
 * own_store - the verbs that open (or make) the store themselves: init;
 * follow, whose snapshot replaces the file; status, which reads it when
 * it may not exist yet; doctor, which reports a missing store as a finding.
 */
static int own_store(const struct ctl_verb *verb)
{
    return verb->run == ctl_init || verb->run == ctl_follow || verb->run == ctl_status
           || verb->run == ctl_doctor;
}

/* parse_verb_args - split ARGV into options (into C) and positionals. */
static int parse_verb_args(struct ctl *c, const struct ctl_verb *verb, int argc,
                           char **argv, char **positional, int *npositional)
{
    *npositional = 0;
    for (int i = 0; i < argc; i++) {
        const struct ctl_option *opt = NULL;
        const char *eq = NULL;

        if (strncmp(argv[i], "--", 2) != 0 || argv[i][2] == '\0') {
            positional[(*npositional)++] = argv[i];
            continue;
        }
        for (size_t o = 0; o < sizeof(ctl_options) / sizeof(ctl_options[0]); o++) {
            size_t len = strlen(ctl_options[o].name);

            if (strncmp(argv[i], ctl_options[o].name, len) == 0
                && (argv[i][len] == '\0' || argv[i][len] == '=')) {
                opt = &ctl_options[o];
                eq = argv[i][len] == '=' ? argv[i] + len + 1 : NULL;
            }
        }
        if (opt == NULL || strchr(verb->options, opt->letter) == NULL) {
            fprintf(c->err, "coexistctl %s: unknown option '%s'\nusage: coexistctl %s\n",
                    verb->name, argv[i], verb->usage);
            return EX_USAGE;
        }
        if (!opt->takes_value) {
            *(int *) ((char *) c + opt->offset) = 1;
            continue;
        }
        if (eq == NULL && i + 1 >= argc) {
            fprintf(c->err, "coexistctl %s: option %s needs a value\n", verb->name, opt->name);
            return EX_USAGE;
        }
        *(const char **) ((char *) c + opt->offset) = eq ? eq : argv[++i];
    }
    if (*npositional < verb->min_args || (verb->max_args >= 0 && *npositional > verb->max_args)) {
        fprintf(c->err, "usage: coexistctl %s\n", verb->usage);
        return EX_USAGE;
    }
    return EX_OK;
}

/* load_config - -c FILE must exist; the default path may be absent. */
static int load_config(struct ctl *c, const char *path, int explicit)
{
    char err[CONFIG_ERR_MAX];

    config_defaults(&c->cfg);
    if (config_load(&c->cfg, path, !explicit, err) < 0) {
        fprintf(c->err, "coexistctl: %s\n", err);
        return EX_CONFIG;
    }
    return EX_OK;
}

/*
 * open_backend - where a writing verb's change goes, and whose journal
 * history reads: the local store, or with shared_store the database (the
 * local store is then its replica, read by the verbs, kept by "follow").
 */
static int open_backend(struct ctl *c, int writes)
{
    char err[BACKEND_ERR_MAX];
    int rc;

    if (c->cfg.shared_store[0] == '\0') {
        if ((c->be = backend_tdb(c->st)) != NULL)
            return EX_OK;
        fprintf(c->err, "coexistctl: out of memory\n");
        return EX_OSERR;
    }
    c->shared = 1;
    if ((c->be = backend_postgresql(c->cfg.shared_store, &rc, err)) != NULL)
        return EX_OK;
    fprintf(c->err, "coexistctl: shared_store: %s%s\n", err,
            writes ? "; nothing changed" : "");
    return rc == CHANGE_UNAVAILABLE ? EX_TEMPFAIL : EX_CONFIG;
}

/*
 * run_verb - VERB, again on the fresh state when its change lost a race
 * (compare-and-set found a record changed since it was read): writers
 * serialize in the store instead of one undoing the other.
 */
static int run_verb(struct ctl *c, const struct ctl_verb *verb, int npos, char **positional)
{
    int rc = EX_OK;

    for (int tries = 0; tries < CTL_CONFLICT_TRIES; tries++) {
        c->conflict = 0;
        if (verb->writes && (rc = ctl_replica_catch_up(c)) != EX_OK)
            break;
        rc = verb->run(c, npos, positional);
        if (!c->conflict)
            break;
        fprintf(c->err, "coexistctl: running %s again on the current state\n", verb->name);
    }
    return rc;
}

int ctl_main(int argc, char **argv, FILE *out, FILE *err, ctl_log_fn log, void *log_ctx)
{
    const char *config_path = CONFIG_DEFAULT_PATH, *db = NULL;
    int explicit_config = 0, i, rc, npos;
    struct ctl c;
    char **positional;
    const struct ctl_verb *verb = NULL;

    memset(&c, 0, sizeof(c));
    c.out = out;
    c.err = err;
    c.log = log;
    c.log_ctx = log_ctx;
    c.now = time(NULL);
    actor_current(c.actor);
    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-V") == 0 || strcmp(argv[i], "--version") == 0)
            return fprintf(out, "coexistctl %s\n", PACKAGE_VERSION), EX_OK;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return usage(out), EX_OK;
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "-d") == 0) && i + 1 < argc) {
            if (argv[i][1] == 'c')
                config_path = argv[++i], explicit_config = 1;
            else
                db = argv[++i];
            continue;
        }
        fprintf(err, "coexistctl: unknown option '%s'\n", argv[i]);
        usage(err);
        return EX_USAGE;
    }
    if (i >= argc)
        return usage(err), EX_USAGE;
    for (size_t v = 0; v < NVERBS; v++)
        if (strcmp(argv[i], ctl_verbs[v].name) == 0)
            verb = &ctl_verbs[v];
    if (verb == NULL) {
        fprintf(err, "coexistctl: unknown verb '%s'\n", argv[i]);
        usage(err);
        return EX_USAGE;
    }
    if (i + 1 < argc && (strcmp(argv[i + 1], "--help") == 0 || strcmp(argv[i + 1], "-h") == 0))
        return fprintf(out, "usage: coexistctl %s\n", verb->usage), EX_OK;
    if ((rc = load_config(&c, config_path, explicit_config)) != EX_OK)
        return rc;
    c.db_path = db ? db : c.cfg.state_db;
    positional = calloc((size_t) argc, sizeof(*positional));
    if (positional == NULL)
        return EX_OSERR;
    rc = parse_verb_args(&c, verb, argc - i - 1, argv + i + 1, positional, &npos);
    /* With the shared store a writing verb writes the database, not the store. */
    if (rc == EX_OK && verb->writes && verb->run != ctl_init && c.cfg.shared_store[0] == '\0')
        rc = check_owner(&c);
    if (rc == EX_OK && !own_store(verb)) {
        char serr[STORE_ERR_MAX];

        c.st = store_open(c.db_path, STORE_OPEN_EXISTING, 0, serr);
        if (c.st == NULL) {
            fprintf(err, "coexistctl: %s\n", serr);
            rc = EX_NOINPUT;
        }
    }
    /* Before its own change, every writing verb brings an older store's
     * index up (a replica gets its index from follow's snapshot). */
    if (rc == EX_OK && verb->writes && !own_store(verb) && c.cfg.shared_store[0] == '\0')
        rc = ctl_reverse_upgrade(&c);
    if (rc == EX_OK && (verb->writes || verb->run == ctl_history) && !own_store(verb))
        rc = open_backend(&c, verb->writes);
    if (rc == EX_OK)
        rc = run_verb(&c, verb, npos, positional);
    change_free(&c.change);
    backend_free(c.be);
    store_close(c.st);
    free(positional);
    return rc;
}

void ctl_logf(struct ctl *c, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;

    if (c->log == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    c->log(msg, c->log_ctx);
}

int ctl_reverse_upgrade(struct ctl *c)
{
    size_t n = 0;
    int built = store_reverse_ensure(c->st, &n);

    if (built < 0)
        return ctl_store_fail(c);
    if (built == 0)
        return EX_OK;
    fprintf(c->out, "coexistctl: built the reverse index of %s for %zu record%s "
            "(a store of an earlier version)\n", c->db_path, n, n == 1 ? "" : "s");
    ctl_logf(c, "reverse index built for %s, %zu records actor=%s", c->db_path, n, c->actor);
    return EX_OK;
}

int ctl_store_fail(struct ctl *c)
{
    fprintf(c->err, "coexistctl: %s\n", store_error(c->st));
    return EX_IOERR;
}

int ctl_key(struct ctl *c, const char *address, char key[ADDR_BUFSIZE])
{
    const char *why;

    if ((address[0] == '@' ? addr_normalize_domain(address, key, &why)
         : addr_normalize(address, key, &why)) < 0) {
        fprintf(c->err, "coexistctl: bad address '%s': %s\n", address, why);
        return EX_DATAERR;
    }
    return EX_OK;
}
