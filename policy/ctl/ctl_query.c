/*
 * ctl_query.c - coexistctl's verbs that read the store: show, explain,
 * list, export, history, check, stats (check also rebuilds a store whose
 * structure is damaged while every record is intact, and a reverse index
 * that disagrees with sound records). Output is sorted by key so that two
 * exports of the same state are byte-identical and diffable.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "csvio.h"
#include "ctl.h"
#include "decide.h"
#include "timefmt.h"

/* A sorted snapshot of the records, as compact (key, record text) pairs. */
struct snapshot {
    struct snap_entry {
        char *key;
        struct record rec;
    } *entries;
    size_t count, capacity;
    struct ctl *c;
    int use_filter;
};

/* keep - whether --state/--wave let REC through. */
static int keep(struct ctl *c, const struct record *rec)
{
    enum record_state want;

    if (c->opt_wave && strcmp(rec->wave, c->opt_wave) != 0)
        return 0;
    if (c->opt_state && (record_state_parse(c->opt_state, &want) < 0
                         || record_effective_state(rec, c->now) != want))
        return 0;
    return 1;
}

static int snap_add(const char *key, const struct record *rec, void *ctx)
{
    struct snapshot *snap = ctx;

    if (snap->use_filter && !keep(snap->c, rec))
        return 0;
    if (snap->count == snap->capacity) {
        size_t cap = snap->capacity ? snap->capacity * 2 : 256;
        struct snap_entry *grown = realloc(snap->entries, cap * sizeof(*grown));

        if (grown == NULL)
            return -1;
        snap->entries = grown;
        snap->capacity = cap;
    }
    snap->entries[snap->count].rec = *rec;
    if ((snap->entries[snap->count].key = strdup(key)) == NULL)
        return -1;
    snap->count++;
    return 0;
}

static int snap_cmp(const void *a, const void *b)
{
    return strcmp(((const struct snap_entry *) a)->key, ((const struct snap_entry *) b)->key);
}

static void snap_free(struct snapshot *snap)
{
    for (size_t i = 0; i < snap->count; i++)
        free(snap->entries[i].key);
    free(snap->entries);
}

/* snapshot - traverse and sort; EX_OK or an exit code. */
static int snapshot(struct ctl *c, struct snapshot *snap, int use_filter)
{
    memset(snap, 0, sizeof(*snap));
    snap->c = c;
    snap->use_filter = use_filter;
    if (store_traverse(c->st, snap_add, snap) < 0) {
        snap_free(snap);
        return ctl_store_fail(c);
    }
    if (snap->count > 1)        /* an empty store has no array: qsort(NULL) is UB */
        qsort(snap->entries, snap->count, sizeof(snap->entries[0]), snap_cmp);
    return EX_OK;
}

/* print_record - the text form of one record, as show and list use it. */
static void print_record(struct ctl *c, const char *key, const struct record *rec)
{
    char cutover[TIMEFMT_BUFSIZE] = "-", changed[TIMEFMT_BUFSIZE] = "-";
    char alias[ADDR_BUFSIZE + 1];

    if (rec->cutover)
        timefmt_format(rec->cutover, cutover);
    if (rec->changed)
        timefmt_format(rec->changed, changed);
    /* A domain rule's legacy domain is shown as export writes it: @domain. */
    snprintf(alias, sizeof(alias), "%s%s", rec->kind == RECORD_DOMAIN ? "@" : "", rec->alias);
    fprintf(c->out, "%-32s %-10s %-10s %-7s %-32s %-10s %-7s %s\n", key,
            record_state_name(record_effective_state(rec, c->now)),
            record_state_name(rec->state), record_mode_name(rec->mode), alias,
            rec->wave[0] ? rec->wave : "-", rec->reverse ? "yes" : "no", cutover);
    (void) changed;
}

int ctl_show(struct ctl *c, int nargs, char **args)
{
    char key[ADDR_BUFSIZE], cutover[TIMEFMT_BUFSIZE], changed[TIMEFMT_BUFSIZE];
    struct record rec;
    int found, rc;

    (void) nargs;
    if ((rc = ctl_key(c, args[0], key)) != EX_OK)
        return rc;
    if ((found = store_get(c->st, key, &rec)) < 0)
        return ctl_store_fail(c);
    if (found == 0) {
        fprintf(c->err, "coexistctl: no record for '%s'\n", key);
        return EX_NOUSER;
    }
    timefmt_format(rec.cutover, cutover);
    timefmt_format(rec.changed, changed);
    fprintf(c->out, "key:       %s\nkind:      %s\nstate:     %s\neffective: %s\nmode:      %s\n"
                    "%s %s\nreverse:   %s\nwave:      %s\ncutover:   %s\nchanged:   %s by %s\n",
            key, rec.kind == RECORD_DOMAIN ? "domain" : "user", record_state_name(rec.state),
            record_state_name(record_effective_state(&rec, c->now)), record_mode_name(rec.mode),
            rec.kind == RECORD_DOMAIN ? "legacy:   " : "alias:    ", rec.alias,
            rec.reverse ? "yes" : "no",
            rec.wave[0] ? rec.wave : "-", rec.cutover ? cutover : "-",
            rec.changed ? changed : "-", rec.actor[0] ? rec.actor : "-");
    return EX_OK;
}

/* lookup_store - decide_lookup_fn over the CLI's store handle. */
static int lookup_store(void *ctx, const char *key, struct record *rec,
                        char err[DECIDE_ERR_MAX])
{
    struct store *st = ctx;
    int found = store_get(st, key, rec);

    if (found < 0)
        snprintf(err, DECIDE_ERR_MAX, "%s", store_error(st));
    return found;
}

/* owner_store - decide_owner_fn over the CLI's store handle. */
static int owner_store(void *ctx, const char *alias, char owner[ADDR_BUFSIZE],
                       char err[DECIDE_ERR_MAX])
{
    struct store *st = ctx;
    int n = store_reverse_get(st, alias, owner);

    if (n < 0)
        snprintf(err, DECIDE_ERR_MAX, "%s", store_error(st));
    return n;
}

/* explain_reverse - explain's last lines for a legacy address (ROUTE->reverse). */
static void explain_reverse(struct ctl *c, const struct decide_route *route)
{
    fprintf(c->out, "owner:   %s (this is its legacy %s)\n", route->match,
            route->rule == RULE_USER ? "alias" : "domain");
    if (route->routed)
        fprintf(c->out, "state:   migrated\naction:  reverse: deliver to <%s> instead\n",
                route->alias);
    else if (route->effective == STATE_MIGRATED)
        fprintf(c->out, "state:   migrated\naction:  none (reverse routing is off for "
                "%s: mail is left alone)\n", route->match);
    else
        fprintf(c->out, "state:   unmigrated\naction:  none (the owner still reads the "
                "legacy mailbox: mail is left alone)\n");
}

int ctl_explain(struct ctl *c, int nargs, char **args)
{
    struct decide_settings settings = {
        .delimiters = c->cfg.recipient_delimiter,
        .now = c->now,
        .propagate_extension = c->cfg.propagate_extension,
        .owner = owner_store,
    };
    struct decide_rcpt rcpt = {.raw = args[0]};
    struct decide_route route;
    char err[DECIDE_ERR_MAX];

    (void) nargs;
    if (decide_route(&rcpt, &settings, lookup_store, c->st, 0, &route, err) < 0) {
        fprintf(c->err, "coexistctl: %s\n", err);
        return strncmp(err, "bad address", 11) == 0 ? EX_DATAERR : EX_IOERR;
    }
    fprintf(c->out, "address: %s\nkey:     %s\nrule:    %s\n", args[0], route.key,
            decide_rule_name(route.rule));
    if (route.rule == RULE_USER && !route.reverse && strcmp(route.match, route.key) != 0)
        fprintf(c->out, "match:   %s\n", route.match);
    if (route.rule == RULE_NONE)
        fprintf(c->out, "action:  none (unknown address: mail is left alone)\n");
    else if (route.reverse)
        explain_reverse(c, &route);
    else if (!route.routed)
        fprintf(c->out, "state:   migrated\naction:  none (migrated: mail is left alone)\n");
    else if (route.mode == MODE_BCC)
        fprintf(c->out, "state:   unmigrated\naction:  bcc: deliver to <%s> and add <%s>\n",
                route.key, route.alias);
    else
        fprintf(c->out, "state:   unmigrated\naction:  rewrite: deliver to <%s> instead\n",
                route.alias);
    return EX_OK;
}

int ctl_list(struct ctl *c, int nargs, char **args)
{
    const char *format = c->opt_format ? c->opt_format : "text";
    enum record_state ignored;
    struct snapshot snap;
    int rc;

    (void) nargs;
    (void) args;
    if (strcmp(format, "text") && strcmp(format, "csv") && strcmp(format, "json")) {
        fprintf(c->err, "coexistctl: bad --format '%s' (text, csv or json)\n", format);
        return EX_USAGE;
    }
    if (c->opt_state && record_state_parse(c->opt_state, &ignored) < 0) {
        fprintf(c->err, "coexistctl: bad --state '%s' (unmigrated or migrated)\n", c->opt_state);
        return EX_USAGE;
    }
    if ((rc = snapshot(c, &snap, 1)) != EX_OK)
        return rc;
    if (strcmp(format, "text") == 0)
        fprintf(c->out, "%-32s %-10s %-10s %-7s %-32s %-10s %-7s %s\n", "ADDRESS",
                "EFFECTIVE", "STATE", "MODE", "ALIAS", "WAVE", "REVERSE", "CUTOVER");
    else if (strcmp(format, "csv") == 0)
        export_csv_header(c->out);
    else
        export_json_begin(c->out);
    for (size_t i = 0; i < snap.count; i++) {
        if (strcmp(format, "text") == 0)
            print_record(c, snap.entries[i].key, &snap.entries[i].rec);
        else if (strcmp(format, "csv") == 0)
            export_csv_row(c->out, snap.entries[i].key, &snap.entries[i].rec);
        else
            export_json_row(c->out, snap.entries[i].key, &snap.entries[i].rec, i == 0);
    }
    if (strcmp(format, "json") == 0)
        export_json_end(c->out);
    snap_free(&snap);
    return ferror(c->out) ? EX_IOERR : EX_OK;
}

int ctl_export(struct ctl *c, int nargs, char **args)
{
    if (c->opt_format && strcmp(c->opt_format, "csv") && strcmp(c->opt_format, "json")) {
        fprintf(c->err, "coexistctl: bad --format '%s' (csv or json)\n", c->opt_format);
        return EX_USAGE;
    }
    if (c->opt_format == NULL)
        c->opt_format = "csv";
    return ctl_list(c, nargs, args);
}

static int print_entry(const struct journal_entry *e, void *ctx)
{
    struct ctl *c = ctx;
    char when[TIMEFMT_BUFSIZE];

    timefmt_format(e->when, when);
    fprintf(c->out, "%s %s%s%s %s\n    old: %s\n    new: %s\n", when, e->actor,
            e->node ? " node=" : "", e->node ? e->node : "", e->key, e->old_value,
            e->new_value);
    return 0;
}

int ctl_history(struct ctl *c, int nargs, char **args)
{
    char key[ADDR_BUFSIZE], *end, err[BACKEND_ERR_MAX];
    unsigned long limit = 0;
    int rc;

    if (c->opt_limit) {
        limit = strtoul(c->opt_limit, &end, 10);
        if (*end || c->opt_limit[0] == '-' || limit > 1000000000UL) {
            fprintf(c->err, "coexistctl: bad --limit '%s'\n", c->opt_limit);
            return EX_USAGE;
        }
    }
    if (nargs == 1 && (rc = ctl_key(c, args[0], key)) != EX_OK)
        return rc;
    /* The journal of where changes go: the store's, or the shared one. */
    if ((rc = backend_history(c->be, nargs == 1 ? key : NULL, (unsigned) limit, print_entry,
                              c, err)) != CHANGE_OK) {
        fprintf(c->err, "coexistctl: %s\n", err);
        return rc == CHANGE_UNAVAILABLE ? EX_TEMPFAIL : EX_IOERR;
    }
    return EX_OK;
}

static void print_check_problem(const char *key, const char *why, void *ctx)
{
    fprintf(((struct ctl *) ctx)->err, "coexistctl: check: '%s': %s\n", key, why);
}

/* chain_problems - aliases that are themselves managed (the CLI refuses
 * them, but a hand-made store or an old import could hold one). */
static int chain_problems(struct ctl *c, const struct snapshot *snap)
{
    int problems = 0;

    for (size_t i = 0; i < snap->count; i++) {
        const struct snap_entry *e = &snap->entries[i];
        char domain_key[ADDR_BUFSIZE + 1];
        struct snap_entry probe = {.key = (char *) e->rec.alias};

        snprintf(domain_key, sizeof(domain_key), "@%s", e->rec.kind == RECORD_DOMAIN
                 ? e->rec.alias : addr_domain(e->rec.alias));
        if ((e->rec.kind == RECORD_USER
             && bsearch(&probe, snap->entries, snap->count, sizeof(probe), snap_cmp))
            || (probe.key = domain_key,
                bsearch(&probe, snap->entries, snap->count, sizeof(probe), snap_cmp))) {
            fprintf(c->err, "coexistctl: check: '%s': alias '%s' is itself managed\n", e->key,
                    e->rec.alias);
            problems++;
        }
    }
    return problems;
}

/* copy_file - a private (0600) copy of FROM as the new file TO. */
static int copy_file(const char *from, const char *to)
{
    char buf[65536];
    ssize_t n = 0;
    int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, saved;

    if (in >= 0)
        out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    while (out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t) n) != n) {
            n = -1;
            break;
        }
    saved = errno;
    if (out >= 0 && (close(out) != 0 || n < 0)) {
        saved = n < 0 ? saved : errno;
        unlink(to);
        n = -1;
    }
    if (in >= 0)
        close(in);
    errno = saved;
    return in < 0 || out < 0 || n < 0 ? -1 : 0;
}

/*
 * rebuild_damaged - tdb_check failed. If every record can still be read,
 * keep a copy of the damaged file and rebuild the store in one transaction,
 * as fsck -p mends what it can mend safely; the commonest cause is a write
 * killed mid-way, which leaves space tdb never formatted but no record
 * harmed. Otherwise report the damage and change nothing.
 */
static int rebuild_damaged(struct ctl *c)
{
    char damage[STORE_ERR_MAX], backup[4200];
    struct snapshot snap;

    snprintf(damage, sizeof(damage), "%s", store_error(c->st));
    if (snapshot(c, &snap, 0) != EX_OK) {
        fprintf(c->err, "coexistctl: %s\ncoexistctl: check: records unreadable too: "
                "restore the store from an export or a backup\n", damage);
        return EX_DATAERR;
    }
    /* time and pid: two checks in one second must not collide */
    snprintf(backup, sizeof(backup), "%s.damaged-%ld-%ld", c->db_path, (long) time(NULL),
             (long) getpid());
    if (copy_file(c->db_path, backup) < 0) {
        fprintf(c->err, "coexistctl: %s\ncoexistctl: check: cannot keep a copy as %s (%s): "
                "not rebuilding\n", damage, backup, strerror(errno));
        snap_free(&snap);
        return EX_CANTCREAT;
    }
    if (store_rebuild(c->st) < 0) {
        fprintf(c->err, "coexistctl: %s\ncoexistctl: check: rebuild failed: %s\n", damage,
                store_error(c->st));
        snap_free(&snap);
        return EX_DATAERR;
    }
    fprintf(c->out, "rebuilt %s: %s; all %zu records were readable and were kept; "
            "the damaged file was saved as %s\n", c->db_path, damage, snap.count, backup);
    ctl_logf(c, "check rebuilt %s (%s), %zu records kept, damaged copy %s actor=%s",
             c->db_path, damage, snap.count, backup, c->actor);
    store_journal_note(c->st, "!check", "", "rebuilt after damage", c->actor);
    snap_free(&snap);
    return EX_OK;
}

/*
 * shared_reverse_problems - records with reverse = yes whose alias has
 * another owner (add, reverse and import refuse them; a hand-made store
 * could hold one). Run once the index is known to be right.
 */
static int shared_reverse_problems(struct ctl *c, const struct snapshot *snap)
{
    int problems = 0;

    for (size_t i = 0; i < snap->count; i++) {
        const struct snap_entry *e = &snap->entries[i];
        char alias[ADDR_BUFSIZE + 1];
        struct ctl_owners o;

        if (!e->rec.reverse)
            continue;
        store_reverse_alias(&e->rec, alias);
        if (ctl_other_owners(c, alias, e->key, NULL, NULL, &o) != EX_OK)
            return -1;
        if (o.count > 0 && ++problems)
            fprintf(c->err, "coexistctl: check: '%s': reverse = yes, but alias '%s' is shared "
                    "with '%s'\n", e->key, alias, o.first);
    }
    return problems;
}

/*
 * rebuild_index - the records are sound and the index disagrees with them
 * (MISMATCHES reported already): write it anew from the records in one
 * transaction, as the upgrade of an older store does, and check it again.
 */
static int rebuild_index(struct ctl *c, int mismatches)
{
    size_t n = 0;

    if (store_begin(c->st) < 0)
        return ctl_store_fail(c);
    if (store_reverse_build(c->st, &n) < 0
        || store_journal_note(c->st, "!check", "-", "reverse index rebuilt", c->actor) < 0) {
        store_cancel(c->st);
        return ctl_store_fail(c);
    }
    if (store_commit(c->st) < 0)
        return ctl_store_fail(c);
    fprintf(c->out, "rebuilt the reverse index of %s from all %zu records: %d mismatch%s "
            "repaired\n", c->db_path, n, mismatches, mismatches == 1 ? "" : "es");
    ctl_logf(c, "check rebuilt the reverse index of %s (%d mismatches, %zu records) actor=%s",
             c->db_path, mismatches, n, c->actor);
    if ((mismatches = store_reverse_check(c->st, print_check_problem, c)) != 0) {
        if (mismatches > 0)
            fprintf(c->err, "coexistctl: check: the rebuilt reverse index still has %d "
                    "mismatch%s\n", mismatches, mismatches == 1 ? "" : "es");
        return mismatches < 0 ? ctl_store_fail(c) : EX_SOFTWARE;
    }
    return EX_OK;
}

int ctl_check(struct ctl *c, int nargs, char **args)
{
    struct snapshot snap;
    int bad, rc, shared;

    (void) nargs;
    (void) args;
    bad = store_check(c->st, print_check_problem, c);
    if (bad < 0 && (rc = rebuild_damaged(c)) != EX_OK)
        return rc;
    if (bad < 0 && (bad = store_check(c->st, print_check_problem, c)) < 0)
        return ctl_store_fail(c);
    if (bad > 0) {
        fprintf(c->err, "coexistctl: check: %d corrupt record%s in %s\n", bad,
                bad == 1 ? "" : "s", c->db_path);
        return EX_DATAERR;
    }
    /* The records are sound: an older store's index is built, a damaged one rebuilt. */
    if ((rc = ctl_reverse_upgrade(c)) != EX_OK)
        return rc;
    if ((bad = store_reverse_check(c->st, print_check_problem, c)) < 0)
        return ctl_store_fail(c);
    if (bad > 0 && (rc = rebuild_index(c, bad)) != EX_OK)
        return rc;
    if ((rc = snapshot(c, &snap, 0)) != EX_OK)
        return rc;
    bad = chain_problems(c, &snap);
    if ((shared = shared_reverse_problems(c, &snap)) < 0) {
        snap_free(&snap);
        return EX_IOERR;
    }
    bad += shared;
    fprintf(c->out, "%s: %zu records, %d problem%s\n", c->db_path, snap.count, bad,
            bad == 1 ? "" : "s");
    snap_free(&snap);
    return bad ? EX_DATAERR : EX_OK;
}

struct stats_acc {
    struct ctl *c;
    size_t users, domains, by_state[2], by_mode[2], reverse;
    struct wave_count {
        char wave[RECORD_WAVE_MAX + 1];
        size_t count;
    } *waves;
    size_t nwaves;
};

static int stats_add(const char *key, const struct record *rec, void *ctx)
{
    struct stats_acc *acc = ctx;
    size_t i;

    (void) key;
    *(rec->kind == RECORD_DOMAIN ? &acc->domains : &acc->users) += 1;
    acc->by_state[record_effective_state(rec, acc->c->now)]++;
    acc->by_mode[rec->mode]++;
    acc->reverse += rec->reverse != 0;
    if (rec->wave[0] == '\0')
        return 0;
    for (i = 0; i < acc->nwaves; i++)
        if (strcmp(acc->waves[i].wave, rec->wave) == 0)
            return (acc->waves[i].count++), 0;
    struct wave_count *grown = realloc(acc->waves, (acc->nwaves + 1) * sizeof(*grown));

    if (grown == NULL)
        return -1;
    acc->waves = grown;
    strcpy(acc->waves[acc->nwaves].wave, rec->wave);
    acc->waves[acc->nwaves++].count = 1;
    return 0;
}

static int wave_cmp(const void *a, const void *b)
{
    return strcmp(((const struct wave_count *) a)->wave, ((const struct wave_count *) b)->wave);
}

int ctl_stats(struct ctl *c, int nargs, char **args)
{
    struct stats_acc acc = {.c = c};

    (void) nargs;
    (void) args;
    if (store_traverse(c->st, stats_add, &acc) < 0) {
        free(acc.waves);
        return ctl_store_fail(c);
    }
    if (acc.nwaves > 1)
        qsort(acc.waves, acc.nwaves, sizeof(acc.waves[0]), wave_cmp);
    fprintf(c->out, "users:      %zu\ndomains:    %zu\nunmigrated: %zu\nmigrated:   %zu\n"
                    "bcc:        %zu\nrewrite:    %zu\nreverse:    %zu\n", acc.users,
            acc.domains, acc.by_state[STATE_UNMIGRATED], acc.by_state[STATE_MIGRATED],
            acc.by_mode[MODE_BCC], acc.by_mode[MODE_REWRITE], acc.reverse);
    for (size_t i = 0; i < acc.nwaves; i++)
        fprintf(c->out, "wave %s: %zu\n", acc.waves[i].wave, acc.waves[i].count);
    free(acc.waves);
    return EX_OK;
}
