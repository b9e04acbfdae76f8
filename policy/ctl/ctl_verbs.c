/*
 * ctl_verbs.c - coexistctl's verbs that change the store. Each verb runs as
 * one transaction: a command naming five addresses, one of them unknown,
 * changes none of them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "csvio.h"
#include "ctl.h"
#include "timefmt.h"
#include "trace.h"

/*
 * give_to_directory_owner - root creating the store (or the trace secret)
 * in the milter's state directory (owned by the milter's user) hands the
 * new file PATH to that user: a root-owned 0640 store would be one the
 * milter cannot open read-write, a root-owned secret one it cannot read.
 */
static void give_to_directory_owner(struct ctl *c, const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    struct stat sb;

    if (geteuid() != 0)
        return;
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int) (slash - path), path);
    if (stat(dir, &sb) < 0 || sb.st_uid == 0)
        return;
    if (chown(path, sb.st_uid, sb.st_gid) < 0)
        fprintf(c->err, "coexistctl: warning: cannot give %s to uid %lu: %s\n", path,
                (unsigned long) sb.st_uid, strerror(errno));
    else
        fprintf(c->out, "%s owned by uid %lu, the owner of %s\n", path,
                (unsigned long) sb.st_uid, dir);
}

/*
 * init_secret - the loop guard's secret beside the store (trace_secret_file),
 * made once: an existing one is kept, as rotating it is the admin's call.
 */
static int init_secret(struct ctl *c)
{
    char path[2 * CONFIG_STR_MAX + 4096], err[TRACE_ERR_MAX];
    int rc;

    if (config_beside(c->cfg.trace_secret_file, c->db_path, path, sizeof(path)) < 0) {
        fprintf(c->err, "coexistctl: trace_secret_file: path too long\n");
        return EX_CANTCREAT;
    }
    if (path[0] == '\0')
        return EX_OK;
    if ((rc = trace_secret_create(path, err)) < 0) {
        fprintf(c->err, "coexistctl: trace_secret_file %s (the store was created; make "
                "the secret with: head -c 32 /dev/urandom >%s; chmod 0640 %s)\n", err,
                path, path);
        return EX_CANTCREAT;
    }
    if (rc == 1)
        return EX_OK;
    ctl_logf(c, "init trace secret %s actor=%s", path, c->actor);
    fprintf(c->out, "created %s (the loop guard's secret)\n", path);
    give_to_directory_owner(c, path);
    return EX_OK;
}

/*
 * init_shared - "init --shared": the shared store's schema in the database
 * shared_store names. Each host's local replica is made by its "follow".
 */
static int init_shared(struct ctl *c)
{
    char id[BACKEND_ERR_MAX], err[BACKEND_ERR_MAX];
    int rc;

    if (c->cfg.shared_store[0] == '\0') {
        fprintf(c->err, "coexistctl: init --shared needs shared_store in %s\n",
                "the configuration");
        return EX_CONFIG;
    }
    if ((rc = backend_init_shared(c->cfg.shared_store, id, err)) != CHANGE_OK) {
        fprintf(c->err, "coexistctl: shared_store: %s; nothing created\n", err);
        return rc == CHANGE_UNAVAILABLE ? EX_TEMPFAIL : EX_CANTCREAT;
    }
    ctl_logf(c, "init shared store %s actor=%s", id, c->actor);
    fprintf(c->out, "created the shared store %s\n", id);
    return EX_OK;
}

int ctl_init(struct ctl *c, int nargs, char **args)
{
    unsigned long hash = c->cfg.hash_size;
    char err[STORE_ERR_MAX], *end;

    (void) nargs;
    (void) args;
    if (c->opt_shared)
        return c->opt_hash_size ? (fprintf(c->err, "coexistctl: --shared takes no "
                                           "--hash-size\n"), EX_USAGE) : init_shared(c);
    if (c->opt_hash_size) {
        hash = strtoul(c->opt_hash_size, &end, 10);
        if (*end || hash < 31 || hash > 100000007) {
            fprintf(c->err, "coexistctl: --hash-size must be 31..100000007\n");
            return EX_USAGE;
        }
    }
    c->st = store_open(c->db_path, STORE_CREATE, (unsigned) hash, err);
    if (c->st == NULL) {
        fprintf(c->err, "coexistctl: %s\n", err);
        return EX_CANTCREAT;
    }
    ctl_logf(c, "init %s actor=%s", c->db_path, c->actor);
    fprintf(c->out, "created %s\n", c->db_path);
    give_to_directory_owner(c, c->db_path);
    return init_secret(c);
}

/* log_put - the syslog line of a committed change of KEY to REC. */
static void log_put(struct ctl *c, const char *verb, const char *key, const struct record *rec)
{
    ctl_logf(c, "%s %s state=%s mode=%s alias=%s%s%s%s%s actor=%s", verb, key,
             record_state_name(rec->state), record_mode_name(rec->mode),
             rec->kind == RECORD_DOMAIN ? "@" : "", rec->alias,
             rec->wave[0] ? " wave=" : "", rec->wave, rec->reverse ? " reverse=yes" : "",
             c->actor);
}

/*
 * ctl_log_change - the syslog lines of a committed change, one per record op,
 * from what was applied: a command rolled back must not be in syslog.
 */
void ctl_log_change(struct ctl *c, const char *verb)
{
    for (size_t i = 0; i < c->change.nops; i++) {
        const struct change_op *op = &c->change.ops[i];
        struct record rec;
        char why[256];

        if (op->kind == CHANGE_OP_DELETE)
            ctl_logf(c, "%s %s actor=%s", verb, op->key, c->actor);
        else if (op->kind == CHANGE_OP_PUT
                 && record_decode(op->key[0] == '@' ? RECORD_DOMAIN : RECORD_USER,
                                  op->new_value, strlen(op->new_value), &rec, why,
                                  sizeof(why)) == 0)
            log_put(c, verb, op->key, &rec);
    }
}

int ctl_add(struct ctl *c, int nargs, char **args)
{
    char key[ADDR_BUFSIZE], alias[ADDR_BUFSIZE];
    struct record rec;
    const char *why;
    int domain = args[0][0] == '@', rc;

    (void) nargs;
    memset(&rec, 0, sizeof(rec));
    rec.kind = domain ? RECORD_DOMAIN : RECORD_USER;
    if ((rc = ctl_key(c, args[0], key)) != EX_OK)
        return rc;
    if (key[0] == STORE_REVERSE_PREFIX) {
        fprintf(c->err, "coexistctl: '%s': addresses starting with '=' cannot be managed "
                "(the reverse index uses such keys)\n", key);
        return EX_DATAERR;
    }
    if (domain != (args[1][0] == '@')) {
        fprintf(c->err, "coexistctl: a domain rule is 'add @DOMAIN @LEGACYDOMAIN'\n");
        return EX_DATAERR;
    }
    if ((domain ? addr_normalize_domain(args[1], alias, &why)
         : addr_normalize(args[1], alias, &why)) < 0) {
        fprintf(c->err, "coexistctl: bad alias '%s': %s\n", args[1], why);
        return EX_DATAERR;
    }
    if (strcmp(alias, key) == 0) {
        fprintf(c->err, "coexistctl: alias '%s' is the address itself\n", args[1]);
        return EX_DATAERR;
    }
    if (c->opt_mode && record_mode_parse(c->opt_mode, &rec.mode) < 0) {
        fprintf(c->err, "coexistctl: bad mode '%s' (bcc or rewrite)\n", c->opt_mode);
        return EX_USAGE;
    }
    if (c->opt_wave && (domain || !record_wave_valid(c->opt_wave))) {
        fprintf(c->err, "coexistctl: bad wave '%s'%s\n", c->opt_wave,
                domain ? " (waves are for users)" : " (1-64 of A-Z a-z 0-9 . _ -)");
        return EX_USAGE;
    }
    snprintf(rec.alias, sizeof(rec.alias), "%s", domain ? alias + 1 : alias);
    snprintf(rec.wave, sizeof(rec.wave), "%s", c->opt_wave ? c->opt_wave : "");
    rec.reverse = c->opt_reverse;
    if ((rc = ctl_refuse_links(c, key, &rec)) != EX_OK)
        return rc;
    if ((rc = ctl_change_begin(c)) != EX_OK || (rc = ctl_put(c, key, &rec)) != EX_OK
        || (rc = ctl_commit(c, 0, "nothing changed")) != EX_OK)
        return rc;
    ctl_log_change(c, "add");
    return EX_OK;
}

/* collect_wave - the keys whose record has wave W. */
struct wave_keys {
    const char *wave;
    char **keys;
    size_t count, capacity;
};

static int collect_wave_key(const char *key, const struct record *rec, void *ctx)
{
    struct wave_keys *wk = ctx;

    if (strcmp(rec->wave, wk->wave) != 0)
        return 0;
    if (wk->count == wk->capacity) {
        size_t cap = wk->capacity ? wk->capacity * 2 : 64;
        char **grown = realloc(wk->keys, cap * sizeof(*grown));

        if (grown == NULL)
            return -1;
        wk->keys = grown;
        wk->capacity = cap;
    }
    return (wk->keys[wk->count++] = strdup(key)) == NULL ? -1 : 0;
}

int ctl_stage_keys(struct ctl *c, char **keys, size_t nkeys, ctl_change_fn fn,
                   const void *arg)
{
    struct record rec;
    int rc = EX_OK;

    /* One read lock for all the reads: two fcntl calls, not two per key. */
    if (store_read_lock(c->st) < 0)
        return ctl_store_fail(c);
    for (size_t i = 0; i < nkeys && rc == EX_OK; i++) {
        int found = store_get(c->st, keys[i], &rec);

        if (found < 0)
            rc = ctl_store_fail(c);
        else if (found == 0) {
            fprintf(c->err, "coexistctl: no record for '%s'; nothing changed\n", keys[i]);
            rc = EX_NOUSER;
        } else if ((rc = fn(c, keys[i], &rec, arg)) == EX_OK) {
            rc = ctl_put(c, keys[i], &rec);
        }
    }
    store_read_unlock(c->st);
    return rc;
}

/* change_keys - apply FN to every named key, as one change. */
static int change_keys(struct ctl *c, const char *verb, char **keys, size_t nkeys,
                       ctl_change_fn fn, const void *arg)
{
    int rc = ctl_change_begin(c);

    if (rc == EX_OK)
        rc = ctl_stage_keys(c, keys, nkeys, fn, arg);
    if (rc != EX_OK || (rc = ctl_commit(c, 0, "nothing changed")) != EX_OK)
        return rc;
    ctl_log_change(c, verb);
    fprintf(c->out, "%s: %zu record%s changed\n", verb, nkeys, nkeys == 1 ? "" : "s");
    return EX_OK;
}

/* named_before - whether KEY is one of the first N of ARGS (normalized). */
static int named_before(struct ctl *c, char **args, int n, const char *key)
{
    char other[ADDR_BUFSIZE];

    for (int i = 0; i < n; i++)
        if (ctl_key(c, args[i], other) == EX_OK && strcmp(other, key) == 0)
            return 1;
    return 0;
}

/* for_targets - run change_keys over ARGS or over --wave. */
static int for_targets(struct ctl *c, const char *verb, int nargs, char **args,
                       ctl_change_fn fn, const void *arg)
{
    struct wave_keys wk = {c->opt_wave, NULL, 0, 0};
    size_t part;
    int rc = EX_OK;

    if ((nargs == 0) == (c->opt_wave == NULL)) {
        fprintf(c->err, "usage: coexistctl %s ADDRESS... | --wave W\n", verb);
        return EX_USAGE;
    }
    if (c->opt_wave) {
        if (store_traverse(c->st, collect_wave_key, &wk) < 0)
            rc = ctl_store_fail(c);
        else if (wk.count == 0) {
            fprintf(c->err, "coexistctl: no user in wave '%s'\n", c->opt_wave);
            rc = EX_NOUSER;
        }
    } else {
        wk.keys = calloc((size_t) nargs, sizeof(*wk.keys));
        for (int i = 0; wk.keys && i < nargs && rc == EX_OK; i++) {
            char key[ADDR_BUFSIZE];

            /* A key named twice is changed once: one change names a key once. */
            if ((rc = ctl_key(c, args[i], key)) == EX_OK && !named_before(c, args, i, key))
                wk.keys[wk.count++] = strdup(key);
        }
    }
    part = backend_commit_part(c->be);
    if (rc == EX_OK && c->opt_wave && part > 0 && wk.count > part)
        rc = ctl_change_wave(c, verb, c->opt_wave, wk.keys, wk.count, part, fn, arg);
    else if (rc == EX_OK)
        rc = change_keys(c, verb, wk.keys, wk.count, fn, arg);
    for (size_t i = 0; i < wk.count; i++)
        free(wk.keys[i]);
    free(wk.keys);
    return rc;
}

static int set_migrated(struct ctl *c, const char *key, struct record *rec, const void *arg)
{
    (void) c;
    (void) key;
    if (arg) {
        rec->cutover = *(const time_t *) arg;
    } else {
        rec->state = STATE_MIGRATED;
        rec->cutover = 0;
    }
    return EX_OK;
}

static int set_unmigrated(struct ctl *c, const char *key, struct record *rec,
                          const void *arg)
{
    (void) c;
    (void) key;
    (void) arg;
    rec->state = STATE_UNMIGRATED;
    rec->cutover = 0;
    return EX_OK;
}

static int set_mode(struct ctl *c, const char *key, struct record *rec, const void *arg)
{
    (void) c;
    (void) key;
    rec->mode = *(const enum record_mode *) arg;
    return EX_OK;
}

/* set_reverse - on refuses an alias with other owners: nothing changes then. */
static int set_reverse(struct ctl *c, const char *key, struct record *rec, const void *arg)
{
    int rc;

    rec->reverse = *(const int *) arg;
    if (rec->reverse && (rc = ctl_refuse_shared(c, key, rec)) != EX_OK) {
        fprintf(c->err, "coexistctl: nothing changed\n");
        return rc;
    }
    return EX_OK;
}

int ctl_migrate(struct ctl *c, int nargs, char **args)
{
    time_t at;
    const char *why;

    if (c->opt_at == NULL)
        return for_targets(c, "migrate", nargs, args, set_migrated, NULL);
    if (timefmt_parse(c->opt_at, &at, &why) < 0) {
        fprintf(c->err, "coexistctl: bad --at '%s': %s\n", c->opt_at, why);
        return EX_DATAERR;
    }
    return for_targets(c, "schedule", nargs, args, set_migrated, &at);
}

int ctl_unmigrate(struct ctl *c, int nargs, char **args)
{
    return for_targets(c, "unmigrate", nargs, args, set_unmigrated, NULL);
}

int ctl_mode(struct ctl *c, int nargs, char **args)
{
    enum record_mode mode;

    (void) nargs;
    if (record_mode_parse(args[1], &mode) < 0) {
        fprintf(c->err, "coexistctl: bad mode '%s' (bcc or rewrite)\n", args[1]);
        return EX_USAGE;
    }
    c->opt_wave = NULL;
    return for_targets(c, "mode", 1, args, set_mode, &mode);
}

int ctl_reverse(struct ctl *c, int nargs, char **args)
{
    const char *word = args[nargs - 1];
    int on;

    if (strcmp(word, "on") != 0 && strcmp(word, "off") != 0) {
        fprintf(c->err, "coexistctl: reverse ends with on or off, not '%s'\n"
                "usage: coexistctl reverse ADDRESS... on|off | reverse --wave W on|off\n",
                word);
        return EX_USAGE;
    }
    if ((nargs == 1) == (c->opt_wave == NULL)) {
        fprintf(c->err, "usage: coexistctl reverse ADDRESS... on|off | reverse --wave W "
                "on|off\n");
        return EX_USAGE;
    }
    on = word[1] == 'n';
    return for_targets(c, "reverse", nargs - 1, args, set_reverse, &on);
}

int ctl_remove(struct ctl *c, int nargs, char **args)
{
    char key[ADDR_BUFSIZE];
    int rc = ctl_change_begin(c);

    for (int i = 0; i < nargs && rc == EX_OK; i++) {
        if ((rc = ctl_key(c, args[i], key)) != EX_OK)
            break;
        /* Named twice: the second finds nothing left, as one by one would. */
        if (named_before(c, args, i, key)) {
            fprintf(c->err, "coexistctl: no record for '%s'; nothing changed\n", key);
            rc = EX_NOUSER;
        } else {
            rc = ctl_delete(c, key);
        }
    }
    if (rc != EX_OK || (rc = ctl_commit(c, 0, "nothing changed")) != EX_OK)
        return rc;
    ctl_log_change(c, "remove");
    fprintf(c->out, "remove: %d record%s removed\n", nargs, nargs == 1 ? "" : "s");
    return EX_OK;
}

/* print_problem - import problems go to stderr, one per line. */
static void print_problem(const char *message, void *ctx)
{
    fprintf(((struct ctl *) ctx)->err, "%s\n", message);
}

/* in_file - ctl_skip_fn: an owner the import rewrites is judged by its row. */
static int in_file(const char *owner, void *ctx)
{
    return import_find(ctx, owner) != NULL;
}

/*
 * row_links - the links of one merged row with the records the file does
 * not name: its alias managed by the store, its address already the alias
 * of a record, its alias shared while reverse routing is on for it. Each
 * is one problem at FILE:LINE. Returns the number, or minus an exit code.
 */
static int row_links(struct ctl *c, const struct import_set *set, const char *name,
                     const struct import_row *row)
{
    char key[ADDR_BUFSIZE + 1], alias[ADDR_BUFSIZE + 1];
    struct ctl_owners o;
    struct record rec;
    int domain = row->key[0] == '@', found = 0, problems = 0, rc;

    if (!domain)
        found = store_get(c->st, row->alias, &rec);
    if (found == 0) {
        snprintf(key, sizeof(key), "@%s", domain ? row->alias : addr_domain(row->alias));
        found = store_get(c->st, key, &rec);
    }
    if (found < 0)
        return -ctl_store_fail(c);
    if (found > 0 && ++problems)
        fprintf(c->err, "%s:%u: alias '%s' is itself a managed address (no chaining)\n",
                name, row->line, row->alias);
    if ((rc = ctl_other_owners(c, row->key, NULL, in_file, (void *) set, &o)) != EX_OK)
        return -rc;
    if (o.count > 0 && ++problems)
        fprintf(c->err, "%s:%u: '%s' is already the %s of '%s' (no chaining)\n", name,
                row->line, row->key, domain ? "legacy domain" : "alias", o.first);
    snprintf(alias, sizeof(alias), "%s%s", domain ? "@" : "", row->alias);
    if ((rc = ctl_other_owners(c, alias, row->key, in_file, (void *) set, &o)) != EX_OK)
        return -rc;
    if (o.count > 0 && row->reverse && ++problems)
        fprintf(c->err, "%s:%u: alias '%s' is shared with '%s': reverse routing needs one "
                "owner\n", name, row->line, alias, o.first);
    else if (o.reverse[0] && ++problems)
        fprintf(c->err, "%s:%u: alias '%s' is routed back to '%s' (reverse = yes): it "
                "cannot have a second owner\n", name, row->line, alias, o.reverse);
    return problems;
}

/* import_conflicts - the rows of a merge that the store (not the file) contradicts. */
static int import_conflicts(struct ctl *c, const struct import_set *set, const char *name)
{
    int problems = 0;

    for (size_t i = 0; i < set->count && !c->opt_replace; i++) {
        int n = row_links(c, set, name, &set->rows[i]);

        if (n < 0)
            return n;
        problems += n;
    }
    return problems;
}

/*
 * import_empty_replace - --replace with a file of no rows would empty the
 * store: most likely a wrong or truncated file, and every user's routing
 * would silently stop. Only --allow-empty says it is meant. Returns the
 * number of problems (0 or 1), as import_conflicts does.
 */
static int import_empty_replace(struct ctl *c, const struct import_set *set,
                                const char *name)
{
    if (set->count > 0 || !c->opt_replace || c->opt_allow_empty)
        return 0;
    fprintf(c->err, "coexistctl: %s has no rows: import --replace would remove every "
            "record; add --allow-empty if that is what you want\n", name);
    return 1;
}

/* Imports this small journal each row; larger ones one summary entry. */
#define IMPORT_JOURNAL_ROWS_MAX 1000

/* What drop_unlisted needs, and what it ran into. */
struct unlisted {
    struct ctl *c;
    const struct import_set *set;
    int rc;
};

/* drop_unlisted - --replace: delete every record the file does not name. */
static int drop_unlisted(const char *key, const struct record *rec, void *ctx)
{
    struct unlisted *u = ctx;

    (void) rec;
    if (import_find(u->set, key) != NULL)
        return 0;
    return (u->rc = ctl_delete(u->c, key)) != EX_OK;
}

/* import_write - the whole set as one change: one transaction wherever it goes. */
static int import_write(struct ctl *c, const struct import_set *set, const char *name)
{
    struct unlisted u = {c, set, EX_OK};
    char summary[512];
    struct record rec;
    int rc = ctl_change_begin(c);

    if (rc == EX_OK && c->opt_replace && store_traverse(c->st, drop_unlisted, &u) < 0) {
        if (u.rc == EX_OK)
            fprintf(c->err, "coexistctl: %s; nothing imported\n", store_error(c->st));
        return u.rc == EX_OK ? EX_IOERR : u.rc;
    }
    for (size_t i = 0; i < set->count && rc == EX_OK; i++) {
        import_row_record(&set->rows[i], &rec);
        rc = ctl_put(c, set->rows[i].key, &rec);
    }
    snprintf(summary, sizeof(summary), "import:%zu-rows%s", set->count,
             c->opt_replace ? ":replace" : "");
    if (rc == EX_OK)
        rc = ctl_note(c, "!import", "-", summary);
    /* A big import is journaled on the local store as its summary only. */
    if (rc != EX_OK
        || (rc = ctl_commit(c, set->count > IMPORT_JOURNAL_ROWS_MAX, "nothing imported")) != EX_OK)
        return rc;
    ctl_logf(c, "import %s rows=%zu%s actor=%s", name, set->count,
             c->opt_replace ? " replace" : "", c->actor);
    fprintf(c->out, "imported %zu record%s from %s%s\n", set->count,
            set->count == 1 ? "" : "s", name, c->opt_replace ? " (store replaced)" : "");
    return EX_OK;
}

int ctl_import(struct ctl *c, int nargs, char **args)
{
    struct import_set set = {0};
    const char *name = strcmp(args[0], "-") == 0 ? "<stdin>" : args[0];
    FILE *fp = strcmp(args[0], "-") == 0 ? stdin : fopen(args[0], "r");
    int problems, rc;

    (void) nargs;
    if (c->opt_allow_empty && !c->opt_replace) {
        if (fp != NULL && fp != stdin)
            fclose(fp);
        fprintf(c->err, "coexistctl import: --allow-empty goes with --replace\n");
        return EX_USAGE;
    }
    if (fp == NULL) {
        fprintf(c->err, "coexistctl: %s: %m\n", args[0]);
        return EX_NOINPUT;
    }
    problems = import_read(fp, name, &set, print_problem, c);
    if (problems == -1)
        fprintf(c->err, "coexistctl: %s: cannot read: %s; nothing imported\n", name,
                ferror(fp) && errno ? strerror(errno) : "read error");
    if (fp != stdin)
        fclose(fp);
    if (problems == 0)
        problems = import_conflicts(c, &set, name);
    if (problems == 0)
        problems = import_empty_replace(c, &set, name);
    if (problems < 0)
        rc = problems == -1 ? EX_IOERR : -problems;
    else if (problems > 0) {
        fprintf(c->err, "coexistctl: %d problem%s in %s; nothing imported\n", problems,
                problems == 1 ? "" : "s", name);
        rc = EX_DATAERR;
    } else {
        rc = import_write(c, &set, name);
    }
    import_set_free(&set);
    return rc;
}
