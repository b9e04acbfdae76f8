/*
 * test_ctl.c - coexistctl end to end: every verb driven through ctl_main()
 * (the code the coexistctl binary runs) on a temp store, with stdout and
 * stderr captured in memory streams and the syslog lines captured by the
 * log callback.
 *
 * Covers: global options, usage and sysexits codes; init; add of users and
 * domain rules; migrate / unmigrate / mode / remove, by address and by
 * wave, now and at a time; show and explain for every kind of match (user
 * rule, domain rule, none; migrated, bcc, rewrite; scheduled cutovers);
 * list and export in every format; export then import --replace giving
 * identical state (CSV and JSON); import from stdin and merges; the journal
 * (history) entry of every change and the syslog line of every change;
 * check on a good store, on a record corrupted with tdb directly and on a
 * chain; and, for every kind of bad input (arguments, addresses, modes,
 * times, malformed CSV/JSON with FILE:LINE reports, conflicts, unknown
 * users in a multi-address command), a store that is byte-for-byte what it
 * was before. The issue's acceptance scenario is test_acceptance_scenario.
 * Reverse routing (issue 11): the reverse index in step after every writing
 * verb and unchanged by a failed import, both chain refusals, the one-owner
 * rule of reverse = yes, "reverse" by address and wave, the reverse column
 * through export and import (and the old six columns), the upgrade of a
 * store without index, check repairing a damaged one, and '=' addresses.
 */
#define _GNU_SOURCE             /* unshare(2) for the full-disk test */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>
#include <tdb.h>

#include "actor.h"
#include "ctl.h"
#include "record.h"
#include "store.h"
#include "timefmt.h"

#define CHECK_STR(got, want) do { \
        const char *got_ = (got), *want_ = (want); \
        if (got_ == NULL || strcmp(got_, want_) != 0) \
            fail_msg("%s:%d: %s:\n--- got ---\n%s\n--- want ---\n%s", __FILE__, __LINE__, \
                     #got, got_ ? got_ : "(null)", want_); \
    } while (0)
#define CHECK_CONTAINS(got, want) do { \
        const char *got_ = (got), *want_ = (want); \
        if (got_ == NULL || strstr(got_, want_) == NULL) \
            fail_msg("%s:%d: %s:\n--- got ---\n%s\n--- want it to contain ---\n%s", \
                     __FILE__, __LINE__, #got, got_ ? got_ : "(null)", want_); \
    } while (0)
#define CHECK_NOT_CONTAINS(got, want) do { \
        const char *got_ = (got), *want_ = (want); \
        if (got_ != NULL && strstr(got_, want_) != NULL) \
            fail_msg("%s:%d: %s:\n--- got ---\n%s\n--- want it NOT to contain ---\n%s", \
                     __FILE__, __LINE__, #got, got_, want_); \
    } while (0)

#define MAX_ARGS 32
#define LOG_MAX 65536

struct fx {
    char dir[64];
    char db[128];
    char conf[128];
    char actor[RECORD_ACTOR_MAX + 1];
    time_t t0;                  /* before the test's first command */
    char *out, *err;            /* of the last command */
    size_t out_len, err_len;
    char logs[LOG_MAX];         /* syslog lines of the last command */
    size_t nlogs;
};

/* ---- fixture ----------------------------------------------------------- */

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    if (fp == NULL)
        fail_msg("cannot create %s", path);
    fputs(text, fp);
    if (fclose(fp) != 0)
        fail_msg("cannot write %s", path);
}

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    char conf[512];

    if (fx == NULL)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_ctl.XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    snprintf(fx->db, sizeof(fx->db), "%s/state.tdb", fx->dir);
    snprintf(fx->conf, sizeof(fx->conf), "%s/coexist-milter.conf", fx->dir);
    /* The config names the store: coexistctl needs no -d, as an admin's. */
    snprintf(conf, sizeof(conf), "# test config\nstate_db = %s\nhash_size = 1009\n", fx->db);
    write_text(fx->conf, conf);
    actor_current(fx->actor);
    fx->t0 = time(NULL);
    *state = fx;
    return 0;
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        char p[512];
        struct stat sb;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            remove_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static int teardown(void **state)
{
    struct fx *fx = *state;

    remove_tree(fx->dir);
    free(fx->out);
    free(fx->err);
    free(fx);
    return 0;
}

/* ---- running coexistctl ------------------------------------------------ */

static void log_line(const char *message, void *ctx)
{
    struct fx *fx = ctx;
    size_t used = strlen(fx->logs);

    snprintf(fx->logs + used, sizeof(fx->logs) - used, "%s\n", message);
    fx->nlogs++;
}

/* run_argv - "coexistctl [-c CONF] ARGS..." with ARGS NULL-terminated. */
static int run_argv(struct fx *fx, int with_conf, const char *const *args)
{
    char *argv[MAX_ARGS + 4];
    int argc = 0, rc;
    FILE *out, *err;

    argv[argc++] = (char *) "coexistctl";
    if (with_conf) {
        argv[argc++] = (char *) "-c";
        argv[argc++] = fx->conf;
    }
    for (; *args; args++) {
        if (argc >= MAX_ARGS)
            fail_msg("too many arguments");
        argv[argc++] = (char *) *args;
    }
    argv[argc] = NULL;
    free(fx->out);
    free(fx->err);
    fx->out = fx->err = NULL;
    fx->logs[0] = '\0';
    fx->nlogs = 0;
    out = open_memstream(&fx->out, &fx->out_len);
    err = open_memstream(&fx->err, &fx->err_len);
    if (out == NULL || err == NULL)
        fail_msg("open_memstream failed");
    rc = ctl_main(argc, argv, out, err, log_line, fx);
    fclose(out);
    fclose(err);
    return rc;
}

static int run_va(struct fx *fx, int with_conf, const char *first, ...)
{
    const char *args[MAX_ARGS + 1];
    int n = 0;
    va_list ap;

    va_start(ap, first);
    for (const char *a = first; a != NULL; a = va_arg(ap, const char *)) {
        if (n >= MAX_ARGS)
            fail_msg("too many arguments");
        args[n++] = a;
    }
    va_end(ap);
    args[n] = NULL;
    return run_argv(fx, with_conf, args);
}

/* CTL - coexistctl -c CONF ARGS...; RAW - without the -c. */
#define CTL(fx, ...) run_va((fx), 1, __VA_ARGS__, (const char *) NULL)
#define RAW(fx, ...) run_va((fx), 0, __VA_ARGS__, (const char *) NULL)

static const char *exit_name(int rc)
{
    switch (rc) {
    case EX_OK: return "EX_OK";
    case EX_USAGE: return "EX_USAGE";
    case EX_DATAERR: return "EX_DATAERR";
    case EX_NOINPUT: return "EX_NOINPUT";
    case EX_NOUSER: return "EX_NOUSER";
    case EX_CANTCREAT: return "EX_CANTCREAT";
    case EX_IOERR: return "EX_IOERR";
    case EX_NOPERM: return "EX_NOPERM";
    case EX_CONFIG: return "EX_CONFIG";
    default: return "?";
    }
}

#define EXPECT_RC(fx, got, want) do { \
        int got2_ = (got), want2_ = (want); \
        if (got2_ != want2_) \
            fail_msg("%s:%d: exit %d (%s), want %d (%s)\nstdout:\n%s\nstderr:\n%s", \
                     __FILE__, __LINE__, got2_, exit_name(got2_), want2_, \
                     exit_name(want2_), (fx)->out ? (fx)->out : "", \
                     (fx)->err ? (fx)->err : ""); \
    } while (0)

/* OK - run and insist on success with nothing on stderr. */
#define OK(fx, ...) do { \
        EXPECT_RC(fx, CTL(fx, __VA_ARGS__), EX_OK); \
        CHECK_STR((fx)->err, ""); \
    } while (0)

/* ---- store bytes, files, journal --------------------------------------- */

struct blob {
    unsigned char *data;
    size_t len;
};

static struct blob slurp(const char *path)
{
    struct blob b = {NULL, 0};
    FILE *fp = fopen(path, "rb");
    struct stat sb;

    if (fp == NULL || fstat(fileno(fp), &sb) < 0)
        fail_msg("cannot read %s", path);
    b.len = (size_t) sb.st_size;
    b.data = malloc(b.len ? b.len : 1);
    if (b.data == NULL || fread(b.data, 1, b.len, fp) != b.len)
        fail_msg("cannot read %s", path);
    fclose(fp);
    return b;
}

/* expect_unchanged - the store file is byte for byte BEFORE. */
#define EXPECT_UNCHANGED(fx, before, what) \
    expect_unchanged_at(fx, before, what, __FILE__, __LINE__)
static void expect_unchanged_at(struct fx *fx, const struct blob *before, const char *what,
                                const char *file, int line)
{
    struct blob now = slurp(fx->db);

    if (now.len != before->len || memcmp(now.data, before->data, now.len) != 0) {
        size_t i = 0;

        while (i < now.len && i < before->len && now.data[i] == before->data[i])
            i++;
        free(now.data);
        fail_msg("%s:%d: %s changed the store (size %zu -> %zu, first difference at "
                 "byte %zu)\nstderr:\n%s", file, line, what, before->len, now.len, i,
                 fx->err ? fx->err : "");
    }
    free(now.data);
}

static void path_in(const struct fx *fx, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", fx->dir, name);
}

/* plant - write KEY = VALUE (LEN bytes) into the store with tdb itself. */
static void plant(const char *path, const char *key, const void *value, size_t len)
{
    struct tdb_context *tdb = tdb_open(path, 0, 0, O_RDWR, 0);
    TDB_DATA k = {(unsigned char *) key, strlen(key)};
    TDB_DATA v = {(unsigned char *) value, len};

    if (tdb == NULL)
        fail_msg("tdb_open('%s') failed", path);
    if (tdb_store(tdb, k, v, TDB_REPLACE) != 0)
        fail_msg("tdb_store('%s'): %s", key, tdb_errorstr(tdb));
    tdb_close(tdb);
}

static size_t count_of(const char *haystack, const char *needle)
{
    size_t n = 0;

    for (const char *p = haystack; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* One journal entry as "history" prints it. */
#define HIST_MAX 64
struct hist {
    size_t count;
    struct hist_entry {
        char when[TIMEFMT_BUFSIZE];
        char actor[RECORD_ACTOR_MAX + 1];
        char key[ADDR_BUFSIZE + 16];
        char old_value[RECORD_TEXT_MAX + 1];
        char new_value[RECORD_TEXT_MAX + 1];
    } e[HIST_MAX];
};

/* history - run "history ARGS..." and parse it; strict about the layout. */
static void parse_history(struct fx *fx, struct hist *h)
{
    char *text = strdup(fx->out), *save = NULL, *line;
    int field = 0;

    memset(h, 0, sizeof(*h));
    if (text == NULL)
        fail_msg("out of memory");
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        struct hist_entry *e = &h->e[h->count < HIST_MAX ? h->count : HIST_MAX - 1];

        if (field == 0) {
            if (sscanf(line, "%31s %64s %336s", e->when, e->actor, e->key) != 3)
                fail_msg("history head line '%s'", line);
        } else if (strncmp(line, field == 1 ? "    old: " : "    new: ", 9) != 0) {
            fail_msg("history line '%s' (field %d)", line, field);
        } else {
            snprintf(field == 1 ? e->old_value : e->new_value, RECORD_TEXT_MAX + 1, "%s",
                     line + 9);
        }
        if (++field == 3) {
            field = 0;
            h->count++;
        }
    }
    if (field != 0)
        fail_msg("history ended inside an entry:\n%s", fx->out);
    free(text);
}

static size_t journal_count(struct fx *fx)
{
    EXPECT_RC(fx, CTL(fx, "history"), EX_OK);
    return count_of(fx->out, "\n    old: ");
}

/* expect_recent - TEXT is a time between the test's start and now. */
static void expect_recent(const struct fx *fx, const char *text)
{
    time_t t;
    const char *why;

    if (timefmt_parse(text, &t, &why) < 0)
        fail_msg("'%s' is not a time: %s", text, why);
    if (t < fx->t0 || t > time(NULL))
        fail_msg("time '%s' is not between the test's start and now", text);
}

/* ---- expectations of show and explain ---------------------------------- */

struct show_case {
    const char *input;
    const char *key, *kind, *state, *effective, *mode, *alias, *wave, *cutover;
};

/* expect_show_reverse - show of SC, its reverse line REVERSE ("yes" or "no"). */
static void expect_show_reverse(struct fx *fx, const struct show_case *sc, const char *reverse)
{
    char want[2048], when[TIMEFMT_BUFSIZE], by[128];
    size_t n;

    EXPECT_RC(fx, CTL(fx, "show", sc->input), EX_OK);
    CHECK_STR(fx->err, "");
    n = (size_t) snprintf(want, sizeof(want),
                          "key:       %s\nkind:      %s\nstate:     %s\neffective: %s\n"
                          "mode:      %s\n%s %s\nreverse:   %s\nwave:      %s\ncutover:   %s\n"
                          "changed:   ", sc->key, sc->kind, sc->state, sc->effective, sc->mode,
                          strcmp(sc->kind, "domain") == 0 ? "legacy:   " : "alias:    ",
                          sc->alias, reverse, sc->wave, sc->cutover);
    if (strncmp(fx->out, want, n) != 0)
        fail_msg("show %s:\n--- got ---\n%s--- want (then the change time) ---\n%s",
                 sc->input, fx->out, want);
    if (sscanf(fx->out + n, "%31s by %127s", when, by) != 2)
        fail_msg("show %s: changed line '%s'", sc->input, fx->out + n);
    expect_recent(fx, when);
    CHECK_STR(by, fx->actor);
    snprintf(want, sizeof(want), "%s by %s\n", when, fx->actor);
    CHECK_STR(fx->out + n, want);
}

static void expect_show(struct fx *fx, const struct show_case *sc)
{
    expect_show_reverse(fx, sc, "no");
}

enum act {
    ACT_UNKNOWN, ACT_MIGRATED, ACT_BCC, ACT_REWRITE,
    /* a legacy address (MATCH is its owner): owner unmigrated, migrated
     * without reverse, migrated with reverse (ALIAS is where it goes) */
    ACT_LEGACY_UNMIGRATED, ACT_LEGACY_OFF, ACT_REVERSE
};

struct explain_case {
    const char *input, *key, *rule;
    enum act act;
    const char *alias;
    const char *match;          /* the record found, when it is not KEY itself */
};

static void expect_explain(struct fx *fx, const struct explain_case *ec)
{
    char want[2048];
    int n;

    EXPECT_RC(fx, CTL(fx, "explain", ec->input), EX_OK);
    CHECK_STR(fx->err, "");
    n = snprintf(want, sizeof(want), "address: %s\nkey:     %s\nrule:    %s\n", ec->input,
                 ec->key, ec->rule);
    if (ec->act >= ACT_LEGACY_UNMIGRATED)
        n += snprintf(want + n, sizeof(want) - (size_t) n, "owner:   %s (this is its legacy "
                      "%s)\n", ec->match, strcmp(ec->rule, "user") == 0 ? "alias" : "domain");
    else if (ec->match != NULL)
        n += snprintf(want + n, sizeof(want) - (size_t) n, "match:   %s\n", ec->match);
    switch (ec->act) {
    case ACT_UNKNOWN:
        snprintf(want + n, sizeof(want) - (size_t) n,
                 "action:  none (unknown address: mail is left alone)\n");
        break;
    case ACT_MIGRATED:
        snprintf(want + n, sizeof(want) - (size_t) n,
                 "state:   migrated\naction:  none (migrated: mail is left alone)\n");
        break;
    case ACT_BCC:
        snprintf(want + n, sizeof(want) - (size_t) n,
                 "state:   unmigrated\naction:  bcc: deliver to <%s> and add <%s>\n",
                 ec->key, ec->alias);
        break;
    case ACT_REWRITE:
        snprintf(want + n, sizeof(want) - (size_t) n,
                 "state:   unmigrated\naction:  rewrite: deliver to <%s> instead\n",
                 ec->alias);
        break;
    case ACT_LEGACY_UNMIGRATED:
        snprintf(want + n, sizeof(want) - (size_t) n, "state:   unmigrated\naction:  none "
                 "(the owner still reads the legacy mailbox: mail is left alone)\n");
        break;
    case ACT_LEGACY_OFF:
        snprintf(want + n, sizeof(want) - (size_t) n, "state:   migrated\naction:  none "
                 "(reverse routing is off for %s: mail is left alone)\n", ec->match);
        break;
    case ACT_REVERSE:
        snprintf(want + n, sizeof(want) - (size_t) n,
                 "state:   migrated\naction:  reverse: deliver to <%s> instead\n", ec->alias);
        break;
    }
    CHECK_STR(fx->out, want);
}

/* ---- the users of the acceptance scenario ------------------------------ */

struct user {
    const char *input;          /* as typed to add: case, brackets, +tag */
    const char *alias_input;
    const char *mode;           /* NULL: the default (bcc) */
    const char *wave;           /* NULL: none */
    const char *key, *alias;    /* normalized */
};

static const struct user users[10] = {
    {"Adam.Barr@Corp.Example", "adam@pop.example", "bcc", "w1",
     "adam.barr@corp.example", "adam@pop.example"},
    {"bea.cole@corp.example", "bea@pop.example", "rewrite", "w1",
     "bea.cole@corp.example", "bea@pop.example"},
    {"<carl.dahl@corp.example>", "carl@pop.example", NULL, "w1",
     "carl.dahl@corp.example", "carl@pop.example"},
    {"dora.eng@corp.example", "dora@pop.example", "bcc", "w2",
     "dora.eng@corp.example", "dora@pop.example"},
    {"eli.fox@corp.example", "Eli@POP.example", "rewrite", "w2",
     "eli.fox@corp.example", "eli@pop.example"},
    {"fay.gil+lists@corp.example", "fay@pop.example", NULL, "w2",
     "fay.gil+lists@corp.example", "fay@pop.example"},
    {"gus.hart@corp.example", "gus@pop.example", "bcc", NULL,
     "gus.hart@corp.example", "gus@pop.example"},
    {"hal.ivy@corp.example", "<hal@pop.example>", "rewrite", NULL,
     "hal.ivy@corp.example", "hal@pop.example"},
    {"IDA.JAY@corp.example", "ida@pop.example", "bcc", "w3",
     "ida.jay@corp.example", "ida@pop.example"},
    {"jon.kay@sales.example", "jon@pop.example", "rewrite", "w3",
     "jon.kay@sales.example", "jon@pop.example"},
};
#define NUSERS (sizeof(users) / sizeof(users[0]))

static void init_store(struct fx *fx)
{
    OK(fx, "init");
}

/* add_users - the ten users and the rule @corp.example -> @pop.example. */
static void add_users(struct fx *fx)
{
    for (size_t i = 0; i < NUSERS; i++) {
        const char *args[10] = {"add", users[i].input, users[i].alias_input};
        int n = 3;

        if (users[i].mode) {
            args[n++] = "--mode";
            args[n++] = users[i].mode;
        }
        if (users[i].wave) {
            args[n++] = "--wave";
            args[n++] = users[i].wave;
        }
        args[n] = NULL;
        EXPECT_RC(fx, run_argv(fx, 1, args), EX_OK);
        CHECK_STR(fx->err, "");
    }
    OK(fx, "add", "@Corp.Example", "@POP.example", "--mode", "rewrite");
}

/* migrated_after_wave - the state of user I after "migrate --wave w1". */
static int in_w1(size_t i)
{
    return users[i].wave && strcmp(users[i].wave, "w1") == 0;
}

/* The explain table of the scenario after "migrate --wave w1". */
static void expect_scenario_explains(struct fx *fx)
{
    static const struct explain_case extra[] = {
        /* the domain rule: same local part at the legacy domain, its mode */
        {"new.person@corp.example", "new.person@corp.example", "domain", ACT_REWRITE,
         "new.person@pop.example", NULL},
        {"<New.Person+Tag@CORP.example>", "new.person+tag@corp.example", "domain",
         ACT_REWRITE, "New.Person+Tag@pop.example", NULL},
        /* a user record wins over its domain rule, tags and case aside */
        {"<Dora.Eng+x@Corp.Example>", "dora.eng+x@corp.example", "user", ACT_BCC,
         "dora@pop.example", "dora.eng@corp.example"},
        {"ADAM.BARR+y@corp.example", "adam.barr+y@corp.example", "user", ACT_MIGRATED, NULL,
         "adam.barr@corp.example"},
        /* no rule: other domains, and the aliases themselves */
        {"nobody@sales.example", "nobody@sales.example", "none", ACT_UNKNOWN, NULL, NULL},
        /* adam migrated with wave w1, without reverse */
        {"adam@pop.example", "adam@pop.example", "user", ACT_LEGACY_OFF, NULL,
         "adam.barr@corp.example"},
        {"Someone@Elsewhere.Example", "someone@elsewhere.example", "none", ACT_UNKNOWN, NULL, NULL},
    };

    for (size_t i = 0; i < NUSERS; i++) {
        struct explain_case ec = {users[i].input, users[i].key, "user", ACT_BCC,
                                  users[i].alias, NULL};

        if (in_w1(i))
            ec.act = ACT_MIGRATED;
        else if (users[i].mode && strcmp(users[i].mode, "rewrite") == 0)
            ec.act = ACT_REWRITE;
        expect_explain(fx, &ec);
    }
    for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++)
        expect_explain(fx, &extra[i]);
}

static void expect_scenario_shows(struct fx *fx)
{
    static const struct show_case domain = {"@CORP.example", "@corp.example", "domain",
                                            "unmigrated", "unmigrated", "rewrite",
                                            "pop.example", "-", "-"};

    for (size_t i = 0; i < NUSERS; i++) {
        const char *state = in_w1(i) ? "migrated" : "unmigrated";
        struct show_case sc = {users[i].input, users[i].key, "user", state, state,
                               users[i].mode ? users[i].mode : "bcc", users[i].alias,
                               users[i].wave ? users[i].wave : "-", "-"};

        expect_show(fx, &sc);
    }
    expect_show(fx, &domain);
}

/* The CSV export of the scenario after "migrate --wave w1", sorted by key. */
static const char scenario_csv[] =
    "address,alias,mode,state,wave,cutover,reverse\n"
    "@corp.example,@pop.example,rewrite,unmigrated,,,no\n"
    "adam.barr@corp.example,adam@pop.example,bcc,migrated,w1,,no\n"
    "bea.cole@corp.example,bea@pop.example,rewrite,migrated,w1,,no\n"
    "carl.dahl@corp.example,carl@pop.example,bcc,migrated,w1,,no\n"
    "dora.eng@corp.example,dora@pop.example,bcc,unmigrated,w2,,no\n"
    "eli.fox@corp.example,eli@pop.example,rewrite,unmigrated,w2,,no\n"
    "fay.gil+lists@corp.example,fay@pop.example,bcc,unmigrated,w2,,no\n"
    "gus.hart@corp.example,gus@pop.example,bcc,unmigrated,,,no\n"
    "hal.ivy@corp.example,hal@pop.example,rewrite,unmigrated,,,no\n"
    "ida.jay@corp.example,ida@pop.example,bcc,unmigrated,w3,,no\n"
    "jon.kay@sales.example,jon@pop.example,rewrite,unmigrated,w3,,no\n";

/* ---- tests ------------------------------------------------------------- */

/*
 * The issue's acceptance scenario: create a store, add 10 users and a
 * domain rule, migrate a wave, export, re-import with --replace, explain
 * each address correctly; a malformed CSV changes nothing.
 */
static void test_acceptance_scenario(void **state)
{
    struct fx *fx = *state;
    char csv_path[256], bad_path[256], want[1024];
    char *exported;
    struct blob before;

    init_store(fx);
    add_users(fx);
    OK(fx, "migrate", "--wave", "w1");
    CHECK_STR(fx->out, "migrate: 3 records changed\n");

    OK(fx, "export");
    CHECK_STR(fx->out, scenario_csv);
    exported = strdup(fx->out);
    path_in(fx, "export.csv", csv_path, sizeof(csv_path));
    write_text(csv_path, exported);

    /* A change after the export, which --replace must undo. */
    OK(fx, "add", "zed.last@corp.example", "zed@pop.example");
    OK(fx, "migrate", "dora.eng@corp.example");
    OK(fx, "import", csv_path, "--replace");
    snprintf(want, sizeof(want), "imported 11 records from %s (store replaced)\n", csv_path);
    CHECK_STR(fx->out, want);
    OK(fx, "export");
    CHECK_STR(fx->out, exported);
    EXPECT_RC(fx, CTL(fx, "show", "zed.last@corp.example"), EX_NOUSER);

    expect_scenario_explains(fx);
    expect_scenario_shows(fx);
    OK(fx, "check");
    snprintf(want, sizeof(want), "%s: 11 records, 0 problems\n", fx->db);
    CHECK_STR(fx->out, want);

    /* A malformed CSV changes nothing, and says where it is wrong. */
    path_in(fx, "bad.csv", bad_path, sizeof(bad_path));
    write_text(bad_path, "address,alias,mode,state,wave,cutover\n"
                         "dora.eng@corp.example,dora@pop.example,bcc,migrated,w2,\n"
                         "not an address,x@pop.example,bcc,unmigrated,,\n"
                         "eli.fox@corp.example,eli@pop.example,sideways,migrated,w2,\n");
    before = slurp(fx->db);
    EXPECT_RC(fx, CTL(fx, "import", bad_path, "--replace"), EX_DATAERR);
    snprintf(want, sizeof(want),
             "%s:3: bad address 'not an address': missing @domain\n"
             "%s:4: bad mode 'sideways' (bcc or rewrite)\n"
             "coexistctl: 2 problems in %s; nothing imported\n", bad_path, bad_path, bad_path);
    CHECK_STR(fx->err, want);
    CHECK_STR(fx->out, "");
    CHECK_STR(fx->logs, "");
    EXPECT_UNCHANGED(fx, &before, "a malformed import --replace");
    OK(fx, "export");
    CHECK_STR(fx->out, exported);
    expect_scenario_explains(fx);
    free(before.data);
    free(exported);
}

/* Global options, usage, and the exit codes of a command line gone wrong. */
static void test_command_line_and_exit_codes(void **state)
{
    struct fx *fx = *state;
    char missing[256], bad_conf[256], want[512];
    static const struct {
        const char *args[8];
        int with_conf;
        int rc;
        const char *out_has, *err_has;
    } cases[] = {
        {{"-V"}, 0, EX_OK, "coexistctl ", ""},
        {{"--version"}, 0, EX_OK, "coexistctl ", ""},
        {{"-h"}, 0, EX_OK, "usage: coexistctl [-c CONFIG] [-d DB] VERB", ""},
        {{"add", "--help"}, 1, EX_OK, "usage: coexistctl add ADDRESS ALIAS", ""},
        {{NULL}, 1, EX_USAGE, "", "usage: coexistctl"},
        {{"frobnicate"}, 1, EX_USAGE, "", "coexistctl: unknown verb 'frobnicate'"},
        {{"-x", "list"}, 1, EX_USAGE, "", "coexistctl: unknown option '-x'"},
        {{"list", "-c"}, 0, EX_USAGE, "", "usage: coexistctl list"},
        {{"add", "a@corp.example"}, 1, EX_USAGE, "", "usage: coexistctl add"},
        {{"add", "a@corp.example", "b@pop.example", "c"}, 1, EX_USAGE, "",
         "usage: coexistctl add"},
        {{"add", "a@corp.example", "b@pop.example", "--bogus"}, 1, EX_USAGE, "",
         "coexistctl add: unknown option '--bogus'"},
        {{"add", "a@corp.example", "b@pop.example", "--mode"}, 1, EX_USAGE, "",
         "coexistctl add: option --mode needs a value"},
        {{"migrate", "--replace", "a@corp.example"}, 1, EX_USAGE, "",
         "coexistctl migrate: unknown option '--replace'"},
        {{"show"}, 1, EX_USAGE, "", "usage: coexistctl show ADDRESS"},
        {{"show", "a@corp.example", "b@corp.example"}, 1, EX_USAGE, "", "usage: coexistctl show"},
        {{"remove"}, 1, EX_USAGE, "", "usage: coexistctl remove"},
        {{"mode", "a@corp.example"}, 1, EX_USAGE, "", "usage: coexistctl mode"},
        {{"history", "a@corp.example", "b@corp.example"}, 1, EX_USAGE, "",
         "usage: coexistctl history"},
        {{"init", "extra"}, 1, EX_USAGE, "", "usage: coexistctl init"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = run_argv(fx, cases[i].with_conf, cases[i].args);

        if (rc != cases[i].rc)
            fail_msg("case %zu (%s ...): exit %d (%s), want %d (%s)\nerr: %s", i,
                     cases[i].args[0] ? cases[i].args[0] : "(none)", rc, exit_name(rc),
                     cases[i].rc, exit_name(cases[i].rc), fx->err);
        CHECK_CONTAINS(fx->out, cases[i].out_has);
        CHECK_CONTAINS(fx->err, cases[i].err_has);
        if (cases[i].rc == EX_OK)
            CHECK_STR(fx->err, "");
        else
            CHECK_STR(fx->out, "");
        CHECK_STR(fx->logs, "");
    }
    /* None of that created a store. */
    if (access(fx->db, F_OK) == 0)
        fail_msg("a failed command line created %s", fx->db);

    /* The store is missing: every verb but init says how to make one. */
    EXPECT_RC(fx, CTL(fx, "list"), EX_NOINPUT);
    CHECK_CONTAINS(fx->err, "(create it with 'coexistctl init')");
    CHECK_CONTAINS(fx->err, fx->db);

    /* -c names a file that must exist; a bad config is EX_CONFIG. */
    path_in(fx, "missing.conf", missing, sizeof(missing));
    EXPECT_RC(fx, RAW(fx, "-c", missing, "list"), EX_CONFIG);
    CHECK_CONTAINS(fx->err, missing);
    path_in(fx, "bad.conf", bad_conf, sizeof(bad_conf));
    write_text(bad_conf, "state_db = /tmp/x.tdb\nno_such_key = 1\n");
    EXPECT_RC(fx, RAW(fx, "-c", bad_conf, "list"), EX_CONFIG);
    snprintf(want, sizeof(want), "%s:2:", bad_conf);
    CHECK_CONTAINS(fx->err, want);

    /* -d overrides the config's state_db. */
    init_store(fx);
    OK(fx, "add", "a@corp.example", "a@pop.example");
    path_in(fx, "other.tdb", missing, sizeof(missing));
    EXPECT_RC(fx, RAW(fx, "-c", fx->conf, "-d", missing, "init", "--hash-size", "31"), EX_OK);
    EXPECT_RC(fx, RAW(fx, "-c", fx->conf, "-d", missing, "show", "a@corp.example"), EX_NOUSER);
    CHECK_STR(fx->err, "coexistctl: no record for 'a@corp.example'\n");
    EXPECT_RC(fx, RAW(fx, "-c", fx->conf, "-d", missing, "add", "b@corp.example",
                      "b@pop.example"), EX_OK);
    EXPECT_RC(fx, CTL(fx, "show", "b@corp.example"), EX_NOUSER);
    EXPECT_RC(fx, CTL(fx, "show", "a@corp.example"), EX_OK);
}

static void test_init(void **state)
{
    struct fx *fx = *state;
    char want[1024], small[256], key[256];
    struct blob before, keybytes;
    struct stat sb;

    /* A bad --hash-size creates nothing. */
    EXPECT_RC(fx, CTL(fx, "init", "--hash-size", "5"), EX_USAGE);
    CHECK_STR(fx->err, "coexistctl: --hash-size must be 31..100000007\n");
    EXPECT_RC(fx, CTL(fx, "init", "--hash-size", "12x"), EX_USAGE);
    EXPECT_RC(fx, CTL(fx, "init", "--hash-size=-1"), EX_USAGE);
    if (access(fx->db, F_OK) == 0)
        fail_msg("a refused init created %s", fx->db);

    OK(fx, "init");
    /* The store, and beside it the loop guard's secret (trace_secret_file). */
    path_in(fx, "trace.key", key, sizeof(key));
    snprintf(want, sizeof(want), "created %s\ncreated %s (the loop guard's secret)\n",
             fx->db, key);
    CHECK_STR(fx->out, want);
    snprintf(want, sizeof(want), "init %s actor=%s\ninit trace secret %s actor=%s\n",
             fx->db, fx->actor, key, fx->actor);
    CHECK_STR(fx->logs, want);
    if (stat(key, &sb) < 0 || (sb.st_mode & 07777) != 0600 || sb.st_size != 32)
        fail_msg("%s: want mode 0600 and 32 bytes", key);
    keybytes = slurp(key);

    /* An existing store is never recreated over, nor the secret. */
    before = slurp(fx->db);
    EXPECT_RC(fx, CTL(fx, "init"), EX_CANTCREAT);
    CHECK_CONTAINS(fx->err, "File exists");
    EXPECT_UNCHANGED(fx, &before, "init over an existing store");
    {
        struct blob k = slurp(key);

        if (k.len != keybytes.len || memcmp(k.data, keybytes.data, k.len) != 0)
            fail_msg("init over an existing store changed %s", key);
        free(k.data);
    }
    /* A second store in the same directory shares the secret: kept as it is. */
    path_in(fx, "second.tdb", small, sizeof(small));
    EXPECT_RC(fx, RAW(fx, "-c", fx->conf, "-d", small, "init"), EX_OK);
    snprintf(want, sizeof(want), "created %s\n", small);
    CHECK_STR(fx->out, want);
    free(keybytes.data);
    unlink(small);
    /* trace_secret_file = (empty): no secret made. */
    {
        char conf[256], sub[256], subdb[300], subkey[300];

        path_in(fx, "nokey.conf", conf, sizeof(conf));
        path_in(fx, "sub", sub, sizeof(sub));
        assert_int_equal(mkdir(sub, 0700), 0);
        snprintf(subdb, sizeof(subdb), "%s/state.tdb", sub);
        snprintf(subkey, sizeof(subkey), "%s/trace.key", sub);
        write_text(conf, "trace_secret_file =\n");
        EXPECT_RC(fx, RAW(fx, "-c", conf, "-d", subdb, "init"), EX_OK);
        if (access(subkey, F_OK) == 0)
            fail_msg("trace_secret_file = (empty), yet init made %s", subkey);
        /* An absolute trace_secret_file is used as it is. */
        write_text(conf, "trace_secret_file = /nonexistent-dir/trace.key\n");
        unlink(subdb);
        EXPECT_RC(fx, RAW(fx, "-c", conf, "-d", subdb, "init"), EX_CANTCREAT);
        CHECK_CONTAINS(fx->err, "coexistctl: trace_secret_file /nonexistent-dir/trace.key: ");
    }

    /* A fresh store is empty and sound. */
    OK(fx, "check");
    snprintf(want, sizeof(want), "%s: 0 records, 0 problems\n", fx->db);
    CHECK_STR(fx->out, want);
    OK(fx, "stats");
    CHECK_STR(fx->out, "users:      0\ndomains:    0\nunmigrated: 0\nmigrated:   0\n"
                       "bcc:        0\nrewrite:    0\nreverse:    0\n");
    OK(fx, "export");
    CHECK_STR(fx->out, "address,alias,mode,state,wave,cutover,reverse\n");
    OK(fx, "history");
    CHECK_STR(fx->out, "");

    /* --hash-size is honoured: a smaller table, a smaller file. */
    path_in(fx, "small.tdb", small, sizeof(small));
    EXPECT_RC(fx, RAW(fx, "-c", fx->conf, "-d", small, "init", "--hash-size=31"), EX_OK);
    {
        struct blob s = slurp(small);

        if (s.len >= before.len)
            fail_msg("--hash-size 31 made a file of %zu bytes, hash_size 1009 one of %zu",
                     s.len, before.len);
        free(s.data);
    }
    free(before.data);
}

static void test_add_users_and_domain_rule(void **state)
{
    struct fx *fx = *state;
    char want[512];

    init_store(fx);
    OK(fx, "add", "Adam.Barr@Corp.Example", "<ADAM@pop.example>", "--mode", "rewrite",
       "--wave", "w-1.a_b");
    CHECK_STR(fx->out, "");
    snprintf(want, sizeof(want), "add adam.barr@corp.example state=unmigrated mode=rewrite "
             "alias=adam@pop.example wave=w-1.a_b actor=%s\n", fx->actor);
    CHECK_STR(fx->logs, want);
    OK(fx, "add", "@Corp.Example", "@Pop.Example");
    snprintf(want, sizeof(want), "add @corp.example state=unmigrated mode=bcc "
             "alias=@pop.example actor=%s\n", fx->actor);
    CHECK_STR(fx->logs, want);
    OK(fx, "add", "bea@corp.example", "bea@pop.example", "--mode=bcc");

    {
        static const struct show_case cases[] = {
            {"adam.barr@corp.example", "adam.barr@corp.example", "user", "unmigrated",
             "unmigrated", "rewrite", "adam@pop.example", "w-1.a_b", "-"},
            {"<ADAM.BARR@CORP.EXAMPLE.>", "adam.barr@corp.example", "user",
             "unmigrated", "unmigrated", "rewrite", "adam@pop.example", "w-1.a_b", "-"},
            {"@corp.example", "@corp.example", "domain", "unmigrated", "unmigrated", "bcc",
             "pop.example", "-", "-"},
            {"bea@corp.example", "bea@corp.example", "user", "unmigrated", "unmigrated",
             "bcc", "bea@pop.example", "-", "-"},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
            expect_show(fx, &cases[i]);
    }

    /* add replaces: a migrated user added again is unmigrated again. */
    OK(fx, "migrate", "bea@corp.example");
    OK(fx, "add", "bea@corp.example", "bea2@pop.example", "--mode", "rewrite");
    {
        static const struct show_case sc = {"bea@corp.example", "bea@corp.example", "user",
                                            "unmigrated", "unmigrated", "rewrite",
                                            "bea2@pop.example", "-", "-"};
        expect_show(fx, &sc);
    }
    OK(fx, "stats");
    CHECK_STR(fx->out, "users:      2\ndomains:    1\nunmigrated: 3\nmigrated:   0\n"
                       "bcc:        1\nrewrite:    2\nreverse:    0\nwave w-1.a_b: 1\n");
}

/* Every refused add, mode, migrate...: the message, the code, no change. */
static void test_bad_input_changes_nothing(void **state)
{
    struct fx *fx = *state;
    static const struct {
        const char *args[8];
        int rc;
        const char *err;        /* the whole of stderr */
    } cases[] = {
        /* addresses */
        {{"add", "not an address@corp.example", "x@pop.example"}, EX_DATAERR,
         "coexistctl: bad address 'not an address@corp.example': space in address\n"},
        {{"add", "no-at-sign", "x@pop.example"}, EX_DATAERR,
         "coexistctl: bad address 'no-at-sign': missing @domain\n"},
        {{"add", "<a@corp.example", "x@pop.example"}, EX_DATAERR,
         "coexistctl: bad address '<a@corp.example': unbalanced angle brackets\n"},
        {{"add", "a\tb@corp.example", "x@pop.example"}, EX_DATAERR,
         "coexistctl: bad address 'a\tb@corp.example': control character in address\n"},
        {{"add", "a@corp.example", "x@pop..example"}, EX_DATAERR,
         "coexistctl: bad alias 'x@pop..example': empty label in domain\n"},
        {{"add", "a@corp.example", ""}, EX_DATAERR,
         "coexistctl: bad alias '': empty address\n"},
        {{"add", "a@corp.example", "@pop.example"}, EX_DATAERR,
         "coexistctl: a domain rule is 'add @DOMAIN @LEGACYDOMAIN'\n"},
        {{"add", "@corp.example", "x@pop.example"}, EX_DATAERR,
         "coexistctl: a domain rule is 'add @DOMAIN @LEGACYDOMAIN'\n"},
        {{"add", "a@corp.example", "A@Corp.Example"}, EX_DATAERR,
         "coexistctl: alias 'A@Corp.Example' is the address itself\n"},
        {{"add", "@corp.example", "@CORP.example"}, EX_DATAERR,
         "coexistctl: alias '@CORP.example' is the address itself\n"},
        /* no chaining: an alias that is itself managed */
        {{"add", "z@corp.example", "gus.hart@corp.example"}, EX_DATAERR,
         "coexistctl: alias 'gus.hart@corp.example' is itself a managed address (no chaining)\n"},
        {{"add", "z@corp.example", "someone@other.example"}, EX_DATAERR,
         "coexistctl: alias 'someone@other.example' is itself a managed address (no chaining)\n"},
        {{"add", "@new.example", "@other.example"}, EX_DATAERR,
         "coexistctl: alias 'other.example' is itself a managed address (no chaining)\n"},
        /* modes and waves */
        {{"add", "z@corp.example", "z@pop.example", "--mode", "sideways"}, EX_USAGE,
         "coexistctl: bad mode 'sideways' (bcc or rewrite)\n"},
        {{"add", "z@corp.example", "z@pop.example", "--mode", "BCC"}, EX_USAGE,
         "coexistctl: bad mode 'BCC' (bcc or rewrite)\n"},
        {{"add", "z@corp.example", "z@pop.example", "--wave", "w 1"}, EX_USAGE,
         "coexistctl: bad wave 'w 1' (1-64 of A-Z a-z 0-9 . _ -)\n"},
        {{"add", "z@corp.example", "z@pop.example", "--wave", ""}, EX_USAGE,
         "coexistctl: bad wave '' (1-64 of A-Z a-z 0-9 . _ -)\n"},
        {{"add", "@new.example", "@old.example", "--wave", "w1"}, EX_USAGE,
         "coexistctl: bad wave 'w1' (waves are for users)\n"},
        {{"mode", "gus.hart@corp.example", "sideways"}, EX_USAGE,
         "coexistctl: bad mode 'sideways' (bcc or rewrite)\n"},
        {{"mode", "nobody@corp.example", "rewrite"}, EX_NOUSER,
         "coexistctl: no record for 'nobody@corp.example'; nothing changed\n"},
        {{"mode", "bad address", "rewrite"}, EX_DATAERR,
         "coexistctl: bad address 'bad address': missing @domain\n"},
        /* migrate / unmigrate: targets, times, unknown users */
        {{"migrate"}, EX_USAGE, "usage: coexistctl migrate ADDRESS... | --wave W\n"},
        {{"migrate", "gus.hart@corp.example", "--wave", "w2"}, EX_USAGE,
         "usage: coexistctl migrate ADDRESS... | --wave W\n"},
        {{"unmigrate"}, EX_USAGE, "usage: coexistctl unmigrate ADDRESS... | --wave W\n"},
        {{"migrate", "--wave", "nosuch"}, EX_NOUSER, "coexistctl: no user in wave 'nosuch'\n"},
        {{"unmigrate", "--wave", "nosuch"}, EX_NOUSER, "coexistctl: no user in wave 'nosuch'\n"},
        {{"migrate", "gus.hart@corp.example", "nobody@corp.example"}, EX_NOUSER,
         "coexistctl: no record for 'nobody@corp.example'; nothing changed\n"},
        {{"migrate", "gus.hart@corp.example", "bad address"}, EX_DATAERR,
         "coexistctl: bad address 'bad address': missing @domain\n"},
        {{"migrate", "gus.hart@corp.example", "--at", "tomorrow"}, EX_DATAERR,
         "coexistctl: bad --at 'tomorrow': time must look like 2026-12-04T18:00:00Z or "
         "2026-12-04T18:00:00+01:00\n"},
        {{"migrate", "gus.hart@corp.example", "--at", "2026-12-04T18:00:00"}, EX_DATAERR,
         "coexistctl: bad --at '2026-12-04T18:00:00': time needs a zone: Z or +HH:MM\n"},
        {{"migrate", "gus.hart@corp.example", "--at", "2026-13-04T18:00:00Z"}, EX_DATAERR,
         "coexistctl: bad --at '2026-13-04T18:00:00Z': date or time field out of range\n"},
        {{"migrate", "--wave", "w2", "--at", "2026-12-04T18:00:00+25:00"}, EX_DATAERR,
         "coexistctl: bad --at '2026-12-04T18:00:00+25:00': time zone offset out of range\n"},
        {{"unmigrate", "gus.hart@corp.example", "nobody@corp.example"}, EX_NOUSER,
         "coexistctl: no record for 'nobody@corp.example'; nothing changed\n"},
        /* remove */
        {{"remove", "gus.hart@corp.example", "nobody@corp.example"}, EX_NOUSER,
         "coexistctl: no record for 'nobody@corp.example'; nothing changed\n"},
        {{"remove", "gus.hart@corp.example", "gus.hart@corp.example"}, EX_NOUSER,
         "coexistctl: no record for 'gus.hart@corp.example'; nothing changed\n"},
        {{"remove", "gus.hart@corp.example", "@"}, EX_DATAERR,
         "coexistctl: bad address '@': empty domain\n"},
        /* read-only verbs with bad arguments */
        {{"show", "nobody@corp.example"}, EX_NOUSER,
         "coexistctl: no record for 'nobody@corp.example'\n"},
        {{"show", "bad address"}, EX_DATAERR,
         "coexistctl: bad address 'bad address': missing @domain\n"},
        {{"explain", "bad address"}, EX_DATAERR,
         "coexistctl: bad address 'bad address': missing @domain\n"},
        {{"explain", "@corp.example"}, EX_DATAERR,
         "coexistctl: bad address '@corp.example': empty local part\n"},
        {{"list", "--format", "xml"}, EX_USAGE,
         "coexistctl: bad --format 'xml' (text, csv or json)\n"},
        {{"list", "--state", "gone"}, EX_USAGE,
         "coexistctl: bad --state 'gone' (unmigrated or migrated)\n"},
        {{"export", "--format", "text"}, EX_USAGE,
         "coexistctl: bad --format 'text' (csv or json)\n"},
        {{"history", "--limit", "-1"}, EX_USAGE, "coexistctl: bad --limit '-1'\n"},
        {{"history", "--limit", "ten"}, EX_USAGE, "coexistctl: bad --limit 'ten'\n"},
        {{"history", "bad address"}, EX_DATAERR,
         "coexistctl: bad address 'bad address': missing @domain\n"},
        {{"init"}, EX_CANTCREAT, NULL},
    };
    struct blob before;
    char *exported;
    size_t journal;

    init_store(fx);
    OK(fx, "add", "gus.hart@corp.example", "gus@pop.example", "--wave", "w2");
    OK(fx, "add", "hal.ivy@corp.example", "hal@pop.example", "--wave", "w2");
    OK(fx, "add", "someone@other.example", "someone@legacy.example");
    OK(fx, "add", "@other.example", "@legacy.example");
    OK(fx, "export");
    exported = strdup(fx->out);
    journal = journal_count(fx);
    before = slurp(fx->db);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char what[256];
        int rc = run_argv(fx, 1, cases[i].args);

        snprintf(what, sizeof(what), "case %zu (%s %s)", i, cases[i].args[0],
                 cases[i].args[1] ? cases[i].args[1] : "");
        if (rc != cases[i].rc)
            fail_msg("%s: exit %d (%s), want %d (%s)\nerr: %s", what, rc, exit_name(rc),
                     cases[i].rc, exit_name(cases[i].rc), fx->err);
        if (cases[i].err)
            CHECK_STR(fx->err, cases[i].err);
        else if (fx->err[0] == '\0')
            fail_msg("%s: failed without a message", what);
        if (fx->nlogs != 0)
            fail_msg("%s: nothing changed but syslog was told:\n%s", what, fx->logs);
        CHECK_NOT_CONTAINS(fx->out, "changed");
        CHECK_NOT_CONTAINS(fx->out, "removed");
        expect_unchanged_at(fx, &before, what, __FILE__, __LINE__);
    }
    OK(fx, "export");
    CHECK_STR(fx->out, exported);
    if (journal_count(fx) != journal)
        fail_msg("refused commands added journal entries");
    free(exported);
    free(before.data);
}

static void test_migrate_unmigrate_mode_remove(void **state)
{
    struct fx *fx = *state;
    char want[512];

    init_store(fx);
    OK(fx, "add", "a@corp.example", "a@pop.example");
    OK(fx, "add", "b@corp.example", "b@pop.example", "--mode", "rewrite");
    OK(fx, "add", "@corp.example", "@pop.example");

    OK(fx, "migrate", "A@Corp.Example.", "<b@corp.example>");
    CHECK_STR(fx->out, "migrate: 2 records changed\n");
    snprintf(want, sizeof(want),
             "migrate a@corp.example state=migrated mode=bcc alias=a@pop.example actor=%s\n"
             "migrate b@corp.example state=migrated mode=rewrite alias=b@pop.example actor=%s\n",
             fx->actor, fx->actor);
    CHECK_STR(fx->logs, want);
    {
        static const struct show_case sc = {"a@corp.example", "a@corp.example", "user",
                                            "migrated", "migrated", "bcc", "a@pop.example",
                                            "-", "-"};
        static const struct explain_case ec = {"b@corp.example", "b@corp.example", "user",
                                               ACT_MIGRATED, NULL, NULL};
        expect_show(fx, &sc);
        expect_explain(fx, &ec);
    }
    /* Migrating a migrated user is harmless. */
    OK(fx, "migrate", "a@corp.example");
    CHECK_STR(fx->out, "migrate: 1 record changed\n");

    OK(fx, "unmigrate", "b@corp.example");
    CHECK_STR(fx->out, "unmigrate: 1 record changed\n");
    {
        static const struct explain_case ec = {"b@corp.example", "b@corp.example", "user",
                                               ACT_REWRITE, "b@pop.example", NULL};
        expect_explain(fx, &ec);
    }

    OK(fx, "mode", "b@corp.example", "bcc");
    CHECK_STR(fx->out, "mode: 1 record changed\n");
    snprintf(want, sizeof(want),
             "mode b@corp.example state=unmigrated mode=bcc alias=b@pop.example actor=%s\n",
             fx->actor);
    CHECK_STR(fx->logs, want);
    {
        static const struct explain_case ec = {"b@corp.example", "b@corp.example", "user",
                                               ACT_BCC, "b@pop.example", NULL};
        expect_explain(fx, &ec);
    }
    /* The domain rule's mode and state change like a user's. */
    OK(fx, "mode", "@CORP.example", "rewrite");
    {
        static const struct explain_case ec = {"c@corp.example", "c@corp.example", "domain",
                                               ACT_REWRITE, "c@pop.example", NULL};
        expect_explain(fx, &ec);
    }
    OK(fx, "migrate", "@corp.example");
    {
        static const struct explain_case ec = {"c@corp.example", "c@corp.example", "domain",
                                               ACT_MIGRATED, NULL, NULL};
        expect_explain(fx, &ec);
    }

    /* remove: the user falls back to the domain rule, then to nothing. */
    OK(fx, "unmigrate", "@corp.example");
    OK(fx, "remove", "B@corp.example");
    CHECK_STR(fx->out, "remove: 1 record removed\n");
    snprintf(want, sizeof(want), "remove b@corp.example actor=%s\n", fx->actor);
    CHECK_STR(fx->logs, want);
    EXPECT_RC(fx, CTL(fx, "show", "b@corp.example"), EX_NOUSER);
    {
        static const struct explain_case ec = {"b@corp.example", "b@corp.example", "domain",
                                               ACT_REWRITE, "b@pop.example", NULL};
        expect_explain(fx, &ec);
    }
    OK(fx, "remove", "a@corp.example", "@corp.example");
    CHECK_STR(fx->out, "remove: 2 records removed\n");
    {
        static const struct explain_case ec = {"b@corp.example", "b@corp.example", "none",
                                               ACT_UNKNOWN, NULL, NULL};
        expect_explain(fx, &ec);
    }
    OK(fx, "export");
    CHECK_STR(fx->out, "address,alias,mode,state,wave,cutover,reverse\n");
}

static void test_wave_migrate(void **state)
{
    struct fx *fx = *state;

    init_store(fx);
    add_users(fx);
    OK(fx, "migrate", "--wave", "w2");
    CHECK_STR(fx->out, "migrate: 3 records changed\n");
    if (fx->nlogs != 3)
        fail_msg("migrate --wave w2 logged %zu lines, want 3:\n%s", fx->nlogs, fx->logs);
    CHECK_CONTAINS(fx->logs, "migrate dora.eng@corp.example state=migrated");
    CHECK_CONTAINS(fx->logs, "migrate eli.fox@corp.example state=migrated");
    CHECK_CONTAINS(fx->logs, "migrate fay.gil+lists@corp.example state=migrated");

    for (size_t i = 0; i < NUSERS; i++) {
        int w2 = users[i].wave && strcmp(users[i].wave, "w2") == 0;
        struct explain_case ec = {users[i].key, users[i].key, "user",
                                  w2 ? ACT_MIGRATED : ACT_BCC, users[i].alias, NULL};

        if (!w2 && users[i].mode && strcmp(users[i].mode, "rewrite") == 0)
            ec.act = ACT_REWRITE;
        expect_explain(fx, &ec);
    }
    OK(fx, "list", "--state", "migrated", "--format", "csv");
    CHECK_STR(fx->out, "address,alias,mode,state,wave,cutover,reverse\n"
                       "dora.eng@corp.example,dora@pop.example,bcc,migrated,w2,,no\n"
                       "eli.fox@corp.example,eli@pop.example,rewrite,migrated,w2,,no\n"
                       "fay.gil+lists@corp.example,fay@pop.example,bcc,migrated,w2,,no\n");
    OK(fx, "stats");
    CHECK_STR(fx->out, "users:      10\ndomains:    1\nunmigrated: 8\nmigrated:   3\n"
                       "bcc:        6\nrewrite:    5\nreverse:    0\nwave w1: 3\nwave w2: 3\n"
                       "wave w3: 2\n");

    OK(fx, "unmigrate", "--wave", "w2");
    CHECK_STR(fx->out, "unmigrate: 3 records changed\n");
    OK(fx, "list", "--state", "migrated", "--format", "csv");
    CHECK_STR(fx->out, "address,alias,mode,state,wave,cutover,reverse\n");
}

static void test_scheduled_cutover(void **state)
{
    struct fx *fx = *state;

    init_store(fx);
    OK(fx, "add", "past@corp.example", "past@pop.example", "--wave", "p");
    OK(fx, "add", "future@corp.example", "future@pop.example", "--mode", "rewrite");
    OK(fx, "add", "offset@corp.example", "offset@pop.example");

    OK(fx, "migrate", "--wave", "p", "--at", "2001-02-03T04:05:06Z");
    CHECK_STR(fx->out, "schedule: 1 record changed\n");
    CHECK_CONTAINS(fx->logs, "schedule past@corp.example state=unmigrated");
    OK(fx, "migrate", "future@corp.example", "--at=2999-12-04T18:00:00Z");
    OK(fx, "migrate", "offset@corp.example", "--at", "2999-12-04T18:00:00+01:00");
    {
        static const struct show_case shows[] = {
            {"past@corp.example", "past@corp.example", "user", "unmigrated", "migrated",
             "bcc", "past@pop.example", "p", "2001-02-03T04:05:06Z"},
            {"future@corp.example", "future@corp.example", "user", "unmigrated",
             "unmigrated", "rewrite", "future@pop.example", "-", "2999-12-04T18:00:00Z"},
            {"offset@corp.example", "offset@corp.example", "user", "unmigrated",
             "unmigrated", "bcc", "offset@pop.example", "-", "2999-12-04T17:00:00Z"},
        };
        static const struct explain_case explains[] = {
            {"past@corp.example", "past@corp.example", "user", ACT_MIGRATED, NULL, NULL},
            {"future@corp.example", "future@corp.example", "user", ACT_REWRITE,
             "future@pop.example", NULL},
            {"offset@corp.example", "offset@corp.example", "user", ACT_BCC,
             "offset@pop.example", NULL},
        };

        for (size_t i = 0; i < 3; i++) {
            expect_show(fx, &shows[i]);
            expect_explain(fx, &explains[i]);
        }
    }
    OK(fx, "list", "--state", "migrated");
    CHECK_CONTAINS(fx->out, "past@corp.example");
    CHECK_NOT_CONTAINS(fx->out, "future@corp.example");
    OK(fx, "list", "--state", "unmigrated", "--format", "csv");
    CHECK_STR(fx->out, "address,alias,mode,state,wave,cutover,reverse\n"
                       "future@corp.example,future@pop.example,rewrite,unmigrated,,"
                       "2999-12-04T18:00:00Z,no\n"
                       "offset@corp.example,offset@pop.example,bcc,unmigrated,,"
                       "2999-12-04T17:00:00Z,no\n");

    /* unmigrate cancels a scheduled cutover; migrate clears it. */
    OK(fx, "unmigrate", "past@corp.example");
    OK(fx, "migrate", "future@corp.example");
    {
        static const struct show_case shows[] = {
            {"past@corp.example", "past@corp.example", "user", "unmigrated", "unmigrated",
             "bcc", "past@pop.example", "p", "-"},
            {"future@corp.example", "future@corp.example", "user", "migrated", "migrated",
             "rewrite", "future@pop.example", "-", "-"},
        };

        expect_show(fx, &shows[0]);
        expect_show(fx, &shows[1]);
    }
}

/* A command naming several addresses changes all of them or none. */
static void test_multi_address_all_or_nothing(void **state)
{
    struct fx *fx = *state;
    struct blob before;
    size_t journal;

    init_store(fx);
    OK(fx, "add", "a@corp.example", "a@pop.example");
    OK(fx, "add", "b@corp.example", "b@pop.example");
    journal = journal_count(fx);
    before = slurp(fx->db);

    static const char *const verbs[][8] = {
        {"migrate", "a@corp.example", "b@corp.example", "nobody@corp.example"},
        {"migrate", "a@corp.example", "b@corp.example", "nobody@corp.example", "--at",
         "2001-01-01T00:00:00Z"},
        {"unmigrate", "a@corp.example", "nobody@corp.example"},
        {"remove", "a@corp.example", "b@corp.example", "nobody@corp.example"},
    };
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        EXPECT_RC(fx, run_argv(fx, 1, verbs[i]), EX_NOUSER);
        CHECK_STR(fx->err, "coexistctl: no record for 'nobody@corp.example'; nothing changed\n");
        /* syslog must not claim the changes that were rolled back */
        if (fx->nlogs != 0)
            fail_msg("'%s' changed nothing but logged:\n%s", verbs[i][0], fx->logs);
        EXPECT_UNCHANGED(fx, &before, verbs[i][0]);
    }
    if (journal_count(fx) != journal)
        fail_msg("rolled-back commands were journaled");
    {
        static const struct explain_case ec = {"a@corp.example", "a@corp.example", "user",
                                               ACT_BCC, "a@pop.example", NULL};
        expect_explain(fx, &ec);
    }
    free(before.data);
}

/* explain, for every kind of match. */
static void test_explain_table(void **state)
{
    struct fx *fx = *state;
    static const struct explain_case cases[] = {
        /* user rule: bcc, rewrite, migrated, scheduled in the past */
        {"u.bcc@corp.example", "u.bcc@corp.example", "user", ACT_BCC, "ub@pop.example", NULL},
        {"<U.Bcc+tag@CORP.EXAMPLE>", "u.bcc+tag@corp.example", "user", ACT_BCC,
         "ub@pop.example", "u.bcc@corp.example"},
        {"  <u.bcc@corp.example>  ", "u.bcc@corp.example", "user", ACT_BCC, "ub@pop.example", NULL},
        {"u.rw@corp.example", "u.rw@corp.example", "user", ACT_REWRITE, "ur@pop.example", NULL},
        {"u.mig@corp.example", "u.mig@corp.example", "user", ACT_MIGRATED, NULL, NULL},
        {"u.past@corp.example", "u.past@corp.example", "user", ACT_MIGRATED, NULL, NULL},
        {"u.future@corp.example", "u.future@corp.example", "user", ACT_BCC,
         "uf@pop.example", NULL},
        /* a user in a migrated domain is routed by its own record */
        {"u.in-mig@mig.example", "u.in-mig@mig.example", "user", ACT_REWRITE,
         "uim@pop.example", NULL},
        /* domain rules: bcc, rewrite, migrated */
        {"x@corp.example", "x@corp.example", "domain", ACT_BCC, "x@pop.example", NULL},
        {"X.Y+z@Corp.Example", "x.y+z@corp.example", "domain", ACT_BCC, "X.Y+z@pop.example",
         NULL},
        {"x@rw.example", "x@rw.example", "domain", ACT_REWRITE, "x@legacy-rw.example", NULL},
        {"x@mig.example", "x@mig.example", "domain", ACT_MIGRATED, NULL, NULL},
        /* no rule */
        {"x@sub.corp.example", "x@sub.corp.example", "none", ACT_UNKNOWN, NULL, NULL},
        {"ub@pop.example", "ub@pop.example", "user", ACT_LEGACY_UNMIGRATED, NULL,
         "u.bcc@corp.example"},
        /* reverse routing: a migrated user's alias, a migrated rule's legacy domain */
        {"URV@pop.example", "urv@pop.example", "user", ACT_REVERSE, "u.rev@corp.example",
         "u.rev@corp.example"},
        {"X.Y@legacy-revd.example", "x.y@legacy-revd.example", "domain", ACT_REVERSE,
         "X.Y@revd.example", "@revd.example"},
        {"x@nowhere.example", "x@nowhere.example", "none", ACT_UNKNOWN, NULL, NULL},
    };

    init_store(fx);
    OK(fx, "add", "@corp.example", "@pop.example");
    OK(fx, "add", "@rw.example", "@legacy-rw.example", "--mode", "rewrite");
    OK(fx, "add", "@mig.example", "@legacy-mig.example");
    OK(fx, "migrate", "@mig.example");
    OK(fx, "add", "u.bcc@corp.example", "ub@pop.example");
    OK(fx, "add", "u.rw@corp.example", "ur@pop.example", "--mode", "rewrite");
    OK(fx, "add", "u.mig@corp.example", "um@pop.example");
    OK(fx, "migrate", "u.mig@corp.example");
    OK(fx, "add", "u.past@corp.example", "up@pop.example");
    OK(fx, "migrate", "u.past@corp.example", "--at", "2000-01-01T00:00:00Z");
    OK(fx, "add", "u.future@corp.example", "uf@pop.example");
    OK(fx, "migrate", "u.future@corp.example", "--at", "2999-01-01T00:00:00Z");
    OK(fx, "add", "u.in-mig@mig.example", "uim@pop.example", "--mode", "rewrite");
    OK(fx, "add", "u.rev@corp.example", "urv@pop.example", "--mode", "rewrite", "--reverse");
    OK(fx, "migrate", "u.rev@corp.example");
    OK(fx, "add", "@revd.example", "@legacy-revd.example", "--reverse");
    OK(fx, "migrate", "@revd.example");

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_explain(fx, &cases[i]);
}

static void test_list_formats(void **state)
{
    struct fx *fx = *state;
    char line[256];

    init_store(fx);
    OK(fx, "add", "b@corp.example", "b@pop.example", "--wave", "w1");
    OK(fx, "add", "a@corp.example", "a@pop.example", "--mode", "rewrite", "--wave", "w2");
    OK(fx, "add", "@corp.example", "@pop.example");
    OK(fx, "migrate", "b@corp.example");
    OK(fx, "add", "c@corp.example", "c@pop.example", "--wave", "w1");
    OK(fx, "migrate", "c@corp.example", "--at", "2999-01-01T00:00:00Z");

    OK(fx, "list");
    {
        char want[2048];
        int n = 0;

        n += snprintf(want + n, sizeof(want) - (size_t) n, "%-32s %-10s %-10s %-7s %-32s %-10s %-7s %s\n",
                      "ADDRESS", "EFFECTIVE", "STATE", "MODE", "ALIAS", "WAVE", "REVERSE", "CUTOVER");
        n += snprintf(want + n, sizeof(want) - (size_t) n, "%-32s %-10s %-10s %-7s %-32s %-10s %-7s %s\n",
                      "@corp.example", "unmigrated", "unmigrated", "bcc", "@pop.example", "-", "no", "-");
        n += snprintf(want + n, sizeof(want) - (size_t) n, "%-32s %-10s %-10s %-7s %-32s %-10s %-7s %s\n",
                      "a@corp.example", "unmigrated", "unmigrated", "rewrite", "a@pop.example",
                      "w2", "no", "-");
        n += snprintf(want + n, sizeof(want) - (size_t) n, "%-32s %-10s %-10s %-7s %-32s %-10s %-7s %s\n",
                      "b@corp.example", "migrated", "migrated", "bcc", "b@pop.example", "w1", "no", "-");
        snprintf(want + n, sizeof(want) - (size_t) n, "%-32s %-10s %-10s %-7s %-32s %-10s %-7s %s\n",
                 "c@corp.example", "unmigrated", "unmigrated", "bcc", "c@pop.example", "w1",
                 "no", "2999-01-01T00:00:00Z");
        CHECK_STR(fx->out, want);
    }
    OK(fx, "list", "--wave", "w1", "--format", "csv");
    CHECK_STR(fx->out, "address,alias,mode,state,wave,cutover,reverse\n"
                       "b@corp.example,b@pop.example,bcc,migrated,w1,,no\n"
                       "c@corp.example,c@pop.example,bcc,unmigrated,w1,2999-01-01T00:00:00Z,no\n");
    OK(fx, "list", "--wave=w1", "--state=unmigrated", "--format=json");
    CHECK_STR(fx->out, "[\n{\"address\":\"c@corp.example\",\"alias\":\"c@pop.example\","
                       "\"mode\":\"bcc\",\"state\":\"unmigrated\",\"wave\":\"w1\","
                       "\"cutover\":\"2999-01-01T00:00:00Z\",\"reverse\":false}\n]\n");
    OK(fx, "list", "--wave", "none-such");
    snprintf(line, sizeof(line), "%-32s %-10s %-10s %-7s %-32s %-10s %-7s %s\n", "ADDRESS",
             "EFFECTIVE", "STATE", "MODE", "ALIAS", "WAVE", "REVERSE", "CUTOVER");
    CHECK_STR(fx->out, line);
    OK(fx, "export", "--format", "json");
    CHECK_STR(fx->out, "[\n"
              "{\"address\":\"@corp.example\",\"alias\":\"@pop.example\",\"mode\":\"bcc\","
              "\"state\":\"unmigrated\",\"wave\":\"\",\"cutover\":\"\",\"reverse\":false},\n"
              "{\"address\":\"a@corp.example\",\"alias\":\"a@pop.example\",\"mode\":\"rewrite\","
              "\"state\":\"unmigrated\",\"wave\":\"w2\",\"cutover\":\"\",\"reverse\":false},\n"
              "{\"address\":\"b@corp.example\",\"alias\":\"b@pop.example\",\"mode\":\"bcc\","
              "\"state\":\"migrated\",\"wave\":\"w1\",\"cutover\":\"\",\"reverse\":false},\n"
              "{\"address\":\"c@corp.example\",\"alias\":\"c@pop.example\",\"mode\":\"bcc\","
              "\"state\":\"unmigrated\",\"wave\":\"w1\",\"cutover\":\"2999-01-01T00:00:00Z\",\"reverse\":false}\n"
              "]\n");
}

/* export | import --replace reproduces the state, in both formats. */
static void test_export_import_round_trip(void **state)
{
    struct fx *fx = *state;
    char csv_path[256], json_path[256], part_path[256];
    char *csv, *json;

    init_store(fx);
    add_users(fx);
    OK(fx, "migrate", "--wave", "w1");
    OK(fx, "migrate", "gus.hart@corp.example", "--at", "2999-06-01T12:00:00Z");
    OK(fx, "add", "@sales.example", "@legacy-sales.example");
    OK(fx, "migrate", "@sales.example");
    OK(fx, "export");
    csv = strdup(fx->out);
    OK(fx, "export", "--format=json");
    json = strdup(fx->out);
    path_in(fx, "e.csv", csv_path, sizeof(csv_path));
    path_in(fx, "e.json", json_path, sizeof(json_path));
    write_text(csv_path, csv);
    write_text(json_path, json);

    /* Into a new store through -d, from CSV, then from JSON. */
    {
        char other[256];

        path_in(fx, "copy.tdb", other, sizeof(other));
        EXPECT_RC(fx, RAW(fx, "-c", fx->conf, "-d", other, "init"), EX_OK);
        EXPECT_RC(fx, RAW(fx, "-c", fx->conf, "-d", other, "import", csv_path), EX_OK);
        EXPECT_RC(fx, RAW(fx, "-c", fx->conf, "-d", other, "export"), EX_OK);
        CHECK_STR(fx->out, csv);
        EXPECT_RC(fx, RAW(fx, "-c", fx->conf, "-d", other, "import", json_path, "--replace"),
                  EX_OK);
        EXPECT_RC(fx, RAW(fx, "-c", fx->conf, "-d", other, "export", "--format", "json"), EX_OK);
        CHECK_STR(fx->out, json);
        EXPECT_RC(fx, RAW(fx, "-c", fx->conf, "-d", other, "check"), EX_OK);
    }

    /* --replace drops what the file does not have; a plain import merges. */
    path_in(fx, "part.csv", part_path, sizeof(part_path));
    write_text(part_path, "address,alias,mode,state,wave,cutover\n"
                          "dora.eng@corp.example,dora@pop.example,rewrite,migrated,w9,\n"
                          "new@corp.example,new@pop.example,,,,\n");
    OK(fx, "import", part_path);
    OK(fx, "list", "--format", "csv", "--wave", "w9");
    CHECK_STR(fx->out, "address,alias,mode,state,wave,cutover,reverse\n"
                       "dora.eng@corp.example,dora@pop.example,rewrite,migrated,w9,,no\n");
    OK(fx, "stats");
    CHECK_CONTAINS(fx->out, "users:      11\ndomains:    2\n");
    OK(fx, "import", part_path, "--replace");
    OK(fx, "export");
    CHECK_STR(fx->out, "address,alias,mode,state,wave,cutover,reverse\n"
                       "dora.eng@corp.example,dora@pop.example,rewrite,migrated,w9,,no\n"
                       "new@corp.example,new@pop.example,bcc,unmigrated,,,no\n");
    /* and back */
    OK(fx, "import", json_path, "--replace");
    OK(fx, "export");
    CHECK_STR(fx->out, csv);
    OK(fx, "import", csv_path, "--replace");
    OK(fx, "export", "--format", "json");
    CHECK_STR(fx->out, json);
    free(csv);
    free(json);
}

/* import - reads standard input. */
static void test_import_stdin(void **state)
{
    struct fx *fx = *state;
    char path[256];

    init_store(fx);
    path_in(fx, "in.csv", path, sizeof(path));
    write_text(path, "\n\naddress,alias,mode,state,wave,cutover\n"
                     "\"a@corp.example\",\"a@pop.example\",bcc,unmigrated,w1,\n");
    if (freopen(path, "r", stdin) == NULL)
        fail_msg("freopen stdin");
    OK(fx, "import", "-");
    CHECK_STR(fx->out, "imported 1 record from <stdin>\n");
    OK(fx, "export");
    CHECK_STR(fx->out, "address,alias,mode,state,wave,cutover,reverse\n"
                       "a@corp.example,a@pop.example,bcc,unmigrated,w1,,no\n");

    /* A bad stdin names <stdin> and its lines (blank lines counted). */
    write_text(path, "\naddress,alias,mode,state,wave,cutover\nb@corp.example,b@pop.example,x,,,\n");
    if (freopen(path, "r", stdin) == NULL)
        fail_msg("freopen stdin");
    EXPECT_RC(fx, CTL(fx, "import", "-"), EX_DATAERR);
    CHECK_STR(fx->err, "<stdin>:3: bad mode 'x' (bcc or rewrite)\n"
                       "coexistctl: 1 problem in <stdin>; nothing imported\n");
    if (freopen("/dev/null", "r", stdin) == NULL)
        fail_msg("freopen stdin");
}

/* Malformed imports: every bad line reported as FILE:LINE, nothing changes. */
static void test_import_malformed_changes_nothing(void **state)
{
    struct fx *fx = *state;
    static const struct {
        const char *name;
        const char *content;
        const char *problems[12];   /* "LINE: reason", in the order reported */
    } cases[] = {
        {"many-bad-lines.csv",
         "address,alias,mode,state,wave,cutover\n"
         "good@corp.example,good@pop.example,bcc,unmigrated,w1,\n"
         "bad address@corp.example,x@pop.example,bcc,unmigrated,,\n"
         "ok2@corp.example,ok2@pop.example,sideways,unmigrated,,\n"
         "ok3@corp.example,ok3@pop.example,bcc,gone,,\n"
         "ok4@corp.example,ok4@pop.example,bcc,unmigrated,w 1,\n"
         "ok5@corp.example,ok5@pop.example,bcc,unmigrated,,tomorrow\n"
         "ok6@corp.example,ok6@pop.example,bcc\n"
         "@new.example,new.example,bcc,unmigrated,,\n"
         "ok7@corp.example,ok7@corp.example,bcc,unmigrated,,\n"
         "\n"
         "GOOD@corp.example,other@pop.example,bcc,unmigrated,,\n"
         "ok8@corp.example,good@corp.example,bcc,unmigrated,,\n",
         {"3: bad address 'bad address@corp.example': space in address",
          "4: bad mode 'sideways' (bcc or rewrite)",
          "5: bad state 'gone' (unmigrated or migrated)",
          "6: bad wave 'w 1' (1-64 of A-Z a-z 0-9 . _ -)",
          "7: bad cutover 'tomorrow': time must look like 2026-12-04T18:00:00Z or "
          "2026-12-04T18:00:00+01:00",
          "8: expected 6 fields, found 3",
          "9: a domain rule needs @domain in both address and alias",
          "10: alias is the address itself",
          "12: duplicate address 'good@corp.example' (also on line 2)",
          "13: alias 'good@corp.example' is itself a managed address (no chaining)"}},
        {"bad-header.csv",
         "address,alias,mode,state,wave\n"
         "a@corp.example,a@pop.example,bcc,unmigrated,,\n",
         {"1: header must be address,alias,mode,state,wave,cutover[,reverse]"}},
        {"empty.csv", "", {"1: empty file: a header line address,alias,mode,state,wave,cutover[,reverse] "
                           "is required"}},
        {"unterminated-quote.csv",
         "address,alias,mode,state,wave,cutover\n"
         "a@corp.example,a@pop.example,bcc,unmigrated,,\n"
         "\"b@corp.example,b@pop.example,bcc,unmigrated,,\n"
         "c@corp.example,c@pop.example,bcc,unmigrated,,\n"
         "d@corp.example,d@pop.example,bcc,unmigrated,,\n",
         {"3: CSV syntax: error parsing data while strict checking enabled (quoted field "
          "still open at end of file)"}},
        {"bom-bad-row.csv",
         "\xEF\xBB\xBF" "address,alias,mode,state,wave,cutover\r\n"
         "a@corp.example,a@pop.example,bcc,unmigrated,,\r\n"
         "\"b\r\n@corp.example\",b@pop.example,bcc,unmigrated,,\r\n",
         {"3: bad address 'b\r\n@corp.example': control character in address"}},
        {"too-many-fields.csv",
         "address,alias,mode,state,wave,cutover\n"
         "a@corp.example,a@pop.example,bcc,unmigrated,,,extra\n",
         {"2: expected 6 fields, found 7"}},
        {"chain-in-file.csv",
         "address,alias,mode,state,wave,cutover\n"
         "@pop.example,@older.example,bcc,unmigrated,,\n"
         "a@corp.example,a@pop.example,bcc,unmigrated,,\n",
         {"3: alias 'a@pop.example' is itself a managed address (no chaining)"}},
        {"bad.json",
         "[{\"address\":\"a@corp.example\",\"alias\":\"a@pop.example\"},\n"
         " {\"address\":\"b@corp.example\",\"alias\":\"b@pop.example\",\"colour\":\"red\"},\n"
         " {\"address\":\"c@corp.example\",\"alias\":\"c@pop.example\",\"mode\":3},\n"
         " {\"address\":\"d@corp.example\",\"alias\":\"d@pop.example\",\"mode\":\"loud\"}]\n",
         {"2: unknown field 'colour' (element 2)",
          "3: field 'mode' must be a string",
          "4: bad mode 'loud' (bcc or rewrite)"}},
        {"broken.json", "[{\"address\": \"a@corp.example\",\n\"alias\": }]\n",
         {"2: JSON syntax: unexpected token"}},
    };
    struct blob before;
    char *exported;
    size_t journal;

    init_store(fx);
    add_users(fx);
    OK(fx, "migrate", "--wave", "w1");
    OK(fx, "export");
    exported = strdup(fx->out);
    journal = journal_count(fx);
    before = slurp(fx->db);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int replace = 0; replace <= 1; replace++) {
            char path[256], want[4096];
            size_t n = 0, nproblems = 0;
            int rc;

            path_in(fx, cases[i].name, path, sizeof(path));
            write_text(path, cases[i].content);
            rc = replace ? CTL(fx, "import", path, "--replace") : CTL(fx, "import", path);
            if (rc != EX_DATAERR)
                fail_msg("%s: exit %d (%s), want EX_DATAERR\nerr: %s", cases[i].name, rc,
                         exit_name(rc), fx->err);
            want[0] = '\0';
            for (; nproblems < 12 && cases[i].problems[nproblems]; nproblems++)
                n += (size_t) snprintf(want + n, sizeof(want) - n, "%s:%s\n", path,
                                       cases[i].problems[nproblems]);
            /* JSON syntax messages carry jansson's own wording after the token. */
            if (strstr(cases[i].name, "broken")) {
                CHECK_CONTAINS(fx->err, want[0] ? strtok(want, "\n") : "");
            } else {
                snprintf(want + n, sizeof(want) - n,
                         "coexistctl: %zu problem%s in %s; nothing imported\n", nproblems,
                         nproblems == 1 ? "" : "s", path);
                CHECK_STR(fx->err, want);
            }
            CHECK_STR(fx->out, "");
            if (fx->nlogs != 0)
                fail_msg("%s: nothing imported but syslog was told:\n%s", cases[i].name,
                         fx->logs);
            EXPECT_UNCHANGED(fx, &before, cases[i].name);
        }
    }
    OK(fx, "export");
    CHECK_STR(fx->out, exported);
    if (journal_count(fx) != journal)
        fail_msg("refused imports added journal entries");
    free(exported);
    free(before.data);
}

/* A row whose alias the store manages is refused, unless --replace. */
static void test_import_conflict_with_store(void **state)
{
    struct fx *fx = *state;
    char path[256], want[1024];
    struct blob before;

    init_store(fx);
    OK(fx, "add", "@pop.example", "@older.example");
    OK(fx, "add", "kept@corp.example", "kept@legacy.example");
    path_in(fx, "conflict.csv", path, sizeof(path));
    write_text(path, "address,alias,mode,state,wave,cutover\n"
                     "a@corp.example,a@pop.example,bcc,unmigrated,,\n"
                     "b@corp.example,kept@corp.example,bcc,unmigrated,,\n"
                     "c@corp.example,c@legacy.example,bcc,unmigrated,,\n");
    before = slurp(fx->db);
    EXPECT_RC(fx, CTL(fx, "import", path), EX_DATAERR);
    snprintf(want, sizeof(want),
             "%s:2: alias 'a@pop.example' is itself a managed address (no chaining)\n"
             "%s:3: alias 'kept@corp.example' is itself a managed address (no chaining)\n"
             "coexistctl: 2 problems in %s; nothing imported\n", path, path, path);
    CHECK_STR(fx->err, want);
    EXPECT_UNCHANGED(fx, &before, "a conflicting import");
    /* With --replace the store's records are gone: no conflict. */
    OK(fx, "import", path, "--replace");
    OK(fx, "export");
    CHECK_STR(fx->out, "address,alias,mode,state,wave,cutover,reverse\n"
                       "a@corp.example,a@pop.example,bcc,unmigrated,,,no\n"
                       "b@corp.example,kept@corp.example,bcc,unmigrated,,,no\n"
                       "c@corp.example,c@legacy.example,bcc,unmigrated,,,no\n");
    free(before.data);
}

/* import --replace of a file with no rows would empty the store: refused. */
static void test_import_replace_empty(void **state)
{
    struct fx *fx = *state;
    static const char *const empties[] = {
        "address,alias,mode,state,wave,cutover\n", "\xEF\xBB\xBF"
        "address,alias,mode,state,wave,cutover\r\n\r\n", "[]\n", " [ ]",
    };
    char path[256], want[1024];
    struct blob before;

    init_store(fx);
    OK(fx, "add", "a@corp.example", "a@pop.example");
    before = slurp(fx->db);
    path_in(fx, "empty.csv", path, sizeof(path));
    for (size_t i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
        write_text(path, empties[i]);
        EXPECT_RC(fx, CTL(fx, "import", path, "--replace"), EX_DATAERR);
        snprintf(want, sizeof(want), "coexistctl: %s has no rows: import --replace would "
                 "remove every record; add --allow-empty if that is what you want\n"
                 "coexistctl: 1 problem in %s; nothing imported\n", path, path);
        CHECK_STR(fx->err, want);
        CHECK_STR(fx->out, "");
        CHECK_STR(fx->logs, "");
        EXPECT_UNCHANGED(fx, &before, "import --replace of an empty file");
        /* Without --replace an empty file adds nothing: no problem (journaled). */
        OK(fx, "import", path);
        free(before.data);
        before = slurp(fx->db);
    }
    OK(fx, "show", "a@corp.example");
    /* --allow-empty alone is a usage error; it creates nothing. */
    EXPECT_RC(fx, CTL(fx, "import", path, "--allow-empty"), EX_USAGE);
    CHECK_STR(fx->err, "coexistctl import: --allow-empty goes with --replace\n");
    /* Meant: the store is emptied, the journal says so. */
    OK(fx, "import", path, "--replace", "--allow-empty");
    OK(fx, "export");
    CHECK_STR(fx->out, "address,alias,mode,state,wave,cutover,reverse\n");
    OK(fx, "import", "--help");
    CHECK_CONTAINS(fx->out, "import FILE|- [--replace [--allow-empty]]");
    free(before.data);
}

static void test_import_unreadable(void **state)
{
    struct fx *fx = *state;
    char path[256];
    struct blob before;

    init_store(fx);
    OK(fx, "add", "a@corp.example", "a@pop.example");
    before = slurp(fx->db);
    path_in(fx, "no-such.csv", path, sizeof(path));
    EXPECT_RC(fx, CTL(fx, "import", path), EX_NOINPUT);
    CHECK_CONTAINS(fx->err, path);
    CHECK_CONTAINS(fx->err, "No such file or directory");
    /* A directory opens but cannot be read: a message, not silence. */
    EXPECT_RC(fx, CTL(fx, "import", fx->dir, "--replace"), EX_IOERR);
    CHECK_CONTAINS(fx->err, fx->dir);
    EXPECT_UNCHANGED(fx, &before, "an unreadable import");
    free(before.data);
}

/* ---- a full file system ------------------------------------------------ */

/*
 * private_tmpfs - in this (child) process only, mount a 64 KiB tmpfs on
 * DIR: a mount namespace of its own keeps it from anyone else. As root a
 * mount namespace is enough; otherwise a user namespace maps us to root in
 * it. Returns NULL, or why it could not.
 */
static const char *private_tmpfs(const char *dir)
{
    static char why[512];
    uid_t uid = geteuid();
    gid_t gid = getegid();

    if (unshare(CLONE_NEWNS) < 0) {
        char map[64];
        int fd;

        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
            return snprintf(why, sizeof(why), "unshare: %s", strerror(errno)), why;
        snprintf(map, sizeof(map), "0 %lu 1\n", (unsigned long) uid);
        if ((fd = open("/proc/self/uid_map", O_WRONLY)) < 0 || write(fd, map, strlen(map)) < 0)
            return snprintf(why, sizeof(why), "uid_map: %s", strerror(errno)), why;
        close(fd);
        if ((fd = open("/proc/self/setgroups", O_WRONLY)) >= 0) {
            (void) write(fd, "deny", 4);
            close(fd);
        }
        snprintf(map, sizeof(map), "0 %lu 1\n", (unsigned long) gid);
        if ((fd = open("/proc/self/gid_map", O_WRONLY)) < 0 || write(fd, map, strlen(map)) < 0)
            return snprintf(why, sizeof(why), "gid_map: %s", strerror(errno)), why;
        close(fd);
    }
    if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0
        || mount("none", dir, "tmpfs", 0, "size=64k,mode=0755") < 0)
        return snprintf(why, sizeof(why), "mount tmpfs on %s: %s", dir, strerror(errno)), why;
    return NULL;
}

/* fill_fs - write zeros into DIR/filler until the file system is full. */
static void fill_fs(const char *dir)
{
    char path[512], block[1024] = {0};
    int fd;

    snprintf(path, sizeof(path), "%s/filler", dir);
    if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0)
        fail_msg("cannot create %s: %s", path, strerror(errno));
    while (write(fd, block, sizeof(block)) > 0)
        ;
    if (errno != ENOSPC)
        fail_msg("filling %s: %s, want ENOSPC", dir, strerror(errno));
    /* The last partial block too: nothing is left. */
    while (write(fd, block, 1) > 0)
        ;
    close(fd);
}

/* Child's check: a message down the pipe and exit, since cmocka is the parent's. */
#define CHILD_CHECK(cond, ...) do { \
        if (!(cond)) { \
            dprintf(pipefd[1], "%s:%d: ", __FILE__, __LINE__); \
            dprintf(pipefd[1], __VA_ARGS__); \
            dprintf(pipefd[1], "\nstdout:\n%s\nstderr:\n%s", fx->out ? fx->out : "", \
                    fx->err ? fx->err : ""); \
            _exit(1); \
        } \
    } while (0)

/* full_disk_child - the commands on a full file system, in the child. */
static void full_disk_child(struct fx *fx, const char *dir, int pipefd[2])
{
    char db[512], other[512], csv[512], want[1024];
    struct blob before, after;
    const char *why = private_tmpfs(dir);
    int rc;

    CHILD_CHECK(why == NULL, "cannot make a private tmpfs: %s", why ? why : "");
    snprintf(db, sizeof(db), "%s/state.tdb", dir);
    snprintf(other, sizeof(other), "%s/other.tdb", dir);
    snprintf(csv, sizeof(csv), "%s/users.csv", fx->dir);
    write_text(csv, "address,alias,mode,state,wave,cutover\n"
                    "b@corp.example,b@pop.example,bcc,unmigrated,,\n");
    rc = RAW(fx, "-c", fx->conf, "-d", db, "init", "--hash-size", "31");
    CHILD_CHECK(rc == EX_OK, "init on the empty tmpfs: exit %d", rc);
    fill_fs(dir);
    before = slurp(db);

    /* A change: tdb's commit fails; the message says why, the store is as it was. */
    rc = RAW(fx, "-c", fx->conf, "-d", db, "add", "a@corp.example", "a@pop.example");
    snprintf(want, sizeof(want), "coexistctl: %s: transaction commit: no space left on "
             "device", db);
    CHILD_CHECK(rc == EX_IOERR, "add on a full disk: exit %d, want EX_IOERR", rc);
    CHILD_CHECK(strncmp(fx->err, want, strlen(want)) == 0, "add: want '%s...'", want);
    rc = RAW(fx, "-c", fx->conf, "-d", db, "import", csv);
    CHILD_CHECK(rc == EX_IOERR, "import on a full disk: exit %d, want EX_IOERR", rc);
    CHILD_CHECK(strncmp(fx->err, want, strlen(want)) == 0
                && strstr(fx->err, "; nothing imported\n") != NULL,
                "import: want '%s...; nothing imported'", want);
    after = slurp(db);
    CHILD_CHECK(after.len == before.len && memcmp(after.data, before.data, after.len) == 0,
                "a failed commit changed the store");
    rc = RAW(fx, "-c", fx->conf, "-d", db, "check");
    CHILD_CHECK(rc == EX_OK, "check after the failed commits: exit %d", rc);

    /* init: EX_CANTCREAT, and no half-written file that blocks the next init. */
    rc = RAW(fx, "-c", fx->conf, "-d", other, "init", "--hash-size", "31");
    snprintf(want, sizeof(want), "coexistctl: %s: cannot create store: no space left on "
             "device\n", other);
    CHILD_CHECK(rc == EX_CANTCREAT, "init on a full disk: exit %d, want EX_CANTCREAT", rc);
    CHILD_CHECK(strcmp(fx->err, want) == 0, "init: want '%s'", want);
    CHILD_CHECK(access(other, F_OK) < 0, "a failed init left %s behind", other);
    free(before.data);
    free(after.data);
    _exit(0);
}

/* A full disk is named as such ("no space left on device"), not as tdb's IO error. */
static void test_full_disk(void **state)
{
    struct fx *fx = *state;
    char dir[256], msg[4096] = {0};
    int pipefd[2], status;
    ssize_t n;
    pid_t pid;

    path_in(fx, "full", dir, sizeof(dir));
    if (mkdir(dir, 0755) < 0 || pipe(pipefd) < 0)
        fail_msg("mkdir or pipe: %s", strerror(errno));
    fflush(NULL);
    if ((pid = fork()) < 0)
        fail_msg("fork: %s", strerror(errno));
    if (pid == 0) {
        close(pipefd[0]);
        full_disk_child(fx, dir, pipefd);
    }
    close(pipefd[1]);
    /* To the end: the child writes its message in pieces. */
    for (size_t used = 0; (n = read(pipefd[0], msg + used, sizeof(msg) - 1 - used)) > 0;)
        used += (size_t) n;
    close(pipefd[0]);
    if (waitpid(pid, &status, 0) != pid)
        fail_msg("waitpid: %s", strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("full disk (status %#x): %s", status, msg);
}

/* Every change leaves one journal entry: time, actor, key, old, new. */
static void test_history_per_change(void **state)
{
    struct fx *fx = *state;
    struct hist *h = calloc(1, sizeof(*h));
    char path[256], prev[RECORD_TEXT_MAX + 1];
    static const struct {
        const char *args[6];
        const char *new_prefix;     /* NULL: "-" (removed) */
    } steps[] = {
        {{"add", "A@corp.example", "a@pop.example", "--wave", "w1"},
         "v=1 state=unmigrated mode=bcc alias=a@pop.example wave=w1 changed="},
        {{"mode", "a@corp.example", "rewrite"},
         "v=1 state=unmigrated mode=rewrite alias=a@pop.example wave=w1 changed="},
        {{"migrate", "--wave", "w1"},
         "v=1 state=migrated mode=rewrite alias=a@pop.example wave=w1 changed="},
        {{"unmigrate", "a@corp.example"},
         "v=1 state=unmigrated mode=rewrite alias=a@pop.example wave=w1 changed="},
        {{"migrate", "a@corp.example", "--at", "2999-01-01T00:00:00Z"},
         "v=1 state=unmigrated mode=rewrite alias=a@pop.example wave=w1 "
         "cutover=2999-01-01T00:00:00Z changed="},
        {{"add", "a@corp.example", "a2@pop.example"},
         "v=1 state=unmigrated mode=bcc alias=a2@pop.example changed="},
        {{"remove", "a@corp.example"}, NULL},
    };

    if (h == NULL)
        fail_msg("out of memory");
    init_store(fx);
    OK(fx, "add", "other@corp.example", "other@pop.example");
    strcpy(prev, "-");
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        char want[RECORD_TEXT_MAX + 1];

        EXPECT_RC(fx, run_argv(fx, 1, steps[i].args), EX_OK);
        OK(fx, "history", "a@corp.example");
        parse_history(fx, h);
        if (h->count != i + 1)
            fail_msg("after step %zu (%s): %zu entries for a@corp.example, want %zu\n%s", i,
                     steps[i].args[0], h->count, i + 1, fx->out);
        /* the newest first: this step's change */
        expect_recent(fx, h->e[0].when);
        CHECK_STR(h->e[0].actor, fx->actor);
        CHECK_STR(h->e[0].key, "a@corp.example");
        CHECK_STR(h->e[0].old_value, prev);
        if (steps[i].new_prefix == NULL) {
            CHECK_STR(h->e[0].new_value, "-");
        } else {
            if (strncmp(h->e[0].new_value, steps[i].new_prefix,
                        strlen(steps[i].new_prefix)) != 0)
                fail_msg("step %zu (%s): new value '%s', want it to start '%s'", i,
                         steps[i].args[0], h->e[0].new_value, steps[i].new_prefix);
            snprintf(want, sizeof(want), " actor=%s", fx->actor);
            if (strlen(h->e[0].new_value) < strlen(want)
                || strcmp(h->e[0].new_value + strlen(h->e[0].new_value) - strlen(want),
                          want) != 0)
                fail_msg("step %zu: new value '%s' does not end with '%s'", i,
                         h->e[0].new_value, want);
        }
        snprintf(prev, sizeof(prev), "%s", h->e[0].new_value);
        /* the oldest entry is still the creation */
        CHECK_STR(h->e[h->count - 1].old_value, "-");
    }
    OK(fx, "history", "--limit", "2", "a@corp.example");
    parse_history(fx, h);
    if (h->count != 2)
        fail_msg("--limit 2 gave %zu entries", h->count);
    CHECK_STR(h->e[0].new_value, "-");
    OK(fx, "history", "--limit=1");
    parse_history(fx, h);
    if (h->count != 1)
        fail_msg("--limit=1 gave %zu entries", h->count);
    CHECK_STR(h->e[0].key, "a@corp.example");
    OK(fx, "history", "other@corp.example");
    parse_history(fx, h);
    if (h->count != 1)
        fail_msg("other@corp.example has %zu entries, want 1", h->count);
    OK(fx, "history");
    parse_history(fx, h);
    if (h->count != 1 + sizeof(steps) / sizeof(steps[0]))
        fail_msg("%zu journal entries in all, want %zu", h->count,
                 1 + sizeof(steps) / sizeof(steps[0]));

    /* An import journals each row and a summary. */
    path_in(fx, "two.csv", path, sizeof(path));
    write_text(path, "address,alias,mode,state,wave,cutover\n"
                     "b@corp.example,b@pop.example,bcc,unmigrated,,\n"
                     "@corp.example,@pop.example,rewrite,migrated,,\n");
    OK(fx, "import", path);
    OK(fx, "history", "--limit", "3");
    parse_history(fx, h);
    if (h->count != 3)
        fail_msg("after an import: %zu entries, want 3", h->count);
    CHECK_STR(h->e[0].key, "!import");
    CHECK_STR(h->e[0].old_value, "-");
    CHECK_STR(h->e[0].new_value, "import:2-rows");
    CHECK_STR(h->e[0].actor, fx->actor);
    {
        /* the two rows, in either order */
        int b = strcmp(h->e[1].key, "b@corp.example") == 0 ? 1 : 2;

        CHECK_STR(h->e[b].key, "b@corp.example");
        CHECK_STR(h->e[3 - b].key, "@corp.example");
        CHECK_CONTAINS(h->e[3 - b].new_value, "v=1 state=migrated mode=rewrite legacy=pop.example");
    }
    OK(fx, "history", "@CORP.example");
    parse_history(fx, h);
    if (h->count != 1)
        fail_msg("@corp.example has %zu entries, want 1", h->count);
    OK(fx, "import", path, "--replace");
    OK(fx, "history", "--limit", "1");
    parse_history(fx, h);
    CHECK_STR(h->e[0].new_value, "import:2-rows:replace");
    free(h);
}

/* One syslog line per change, with the actor; none for reads. */
static void test_log_lines(void **state)
{
    struct fx *fx = *state;
    char want[1024], path[256];
    static const char *const reads[][4] = {
        {"show", "a@corp.example"}, {"explain", "a@corp.example"}, {"list"}, {"export"},
        {"history"}, {"check"}, {"stats"},
    };

    init_store(fx);
    OK(fx, "add", "a@corp.example", "a@pop.example", "--wave", "w");
    OK(fx, "add", "b@corp.example", "b@pop.example", "--wave", "w");
    OK(fx, "migrate", "--wave", "w", "--at", "2999-01-01T00:00:00Z");
    snprintf(want, sizeof(want),
             "schedule a@corp.example state=unmigrated mode=bcc alias=a@pop.example wave=w "
             "actor=%s\n", fx->actor);
    CHECK_CONTAINS(fx->logs, want);
    if (fx->nlogs != 2)
        fail_msg("a wave of two logged %zu lines:\n%s", fx->nlogs, fx->logs);
    OK(fx, "remove", "a@corp.example", "b@corp.example");
    snprintf(want, sizeof(want), "remove a@corp.example actor=%s\nremove b@corp.example actor=%s\n",
             fx->actor, fx->actor);
    CHECK_STR(fx->logs, want);

    path_in(fx, "one.csv", path, sizeof(path));
    write_text(path, "address,alias,mode,state,wave,cutover\na@corp.example,a@pop.example,,,,\n");
    OK(fx, "import", path, "--replace");
    snprintf(want, sizeof(want), "import %s rows=1 replace actor=%s\n", path, fx->actor);
    CHECK_STR(fx->logs, want);

    for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
        struct blob before = slurp(fx->db);

        EXPECT_RC(fx, run_argv(fx, 1, reads[i]), EX_OK);
        if (fx->nlogs != 0)
            fail_msg("'%s' logged:\n%s", reads[i][0], fx->logs);
        EXPECT_UNCHANGED(fx, &before, reads[i][0]);
        free(before.data);
    }
}

static void test_check_good_store(void **state)
{
    struct fx *fx = *state;
    char want[512];

    init_store(fx);
    add_users(fx);
    OK(fx, "migrate", "--wave", "w2", "--at", "2001-01-01T00:00:00Z");
    OK(fx, "check");
    snprintf(want, sizeof(want), "%s: 11 records, 0 problems\n", fx->db);
    CHECK_STR(fx->out, want);
}

/* A record corrupted behind the CLI's back: check says so, and no verb
 * mistakes it for an unknown user or skips it. */
static void test_check_corrupt_record(void **state)
{
    struct fx *fx = *state;
    static const struct {
        const char *key;
        const char *value;
        size_t len;
        const char *why;
    } corruptions[] = {
        {"dora.eng@corp.example", "v=1 state=bogus mode=bcc alias=dora@pop.example", 0,
         "bad state 'bogus'"},
        {"eli.fox@corp.example", "\x01\xff garbage \x00 bytes",
         sizeof("\x01\xff garbage \x00 bytes") - 1, NULL},
        {"@corp.example", "v=2 state=unmigrated mode=bcc legacy=pop.example", 0,
         "unsupported record version '2'"},
        {"gus.hart@corp.example", "", 0, NULL},
    };

    for (size_t i = 0; i < sizeof(corruptions) / sizeof(corruptions[0]); i++) {
        char want[1024], what[128];
        struct blob before;
        size_t len = corruptions[i].len ? corruptions[i].len : strlen(corruptions[i].value);

        if (i > 0) {
            remove_tree(fx->dir);
            if (mkdir(fx->dir, 0700) < 0)
                fail_msg("mkdir %s", fx->dir);
            snprintf(want, sizeof(want), "state_db = %s\nhash_size = 1009\n", fx->db);
            write_text(fx->conf, want);
        }
        init_store(fx);
        add_users(fx);
        plant(fx->db, corruptions[i].key, corruptions[i].value, len);
        before = slurp(fx->db);
        snprintf(what, sizeof(what), "corruption %zu (%s)", i, corruptions[i].key);

        EXPECT_RC(fx, CTL(fx, "check"), EX_DATAERR);
        snprintf(want, sizeof(want), "coexistctl: check: '%s': ", corruptions[i].key);
        CHECK_CONTAINS(fx->err, want);
        if (corruptions[i].why)
            CHECK_CONTAINS(fx->err, corruptions[i].why);
        snprintf(want, sizeof(want), "coexistctl: check: 1 corrupt record in %s\n", fx->db);
        CHECK_CONTAINS(fx->err, want);
        if (count_of(fx->err, "coexistctl: check: '") != 1)
            fail_msg("%s: check reported other records too:\n%s", what, fx->err);

        /* Reads of it, and whole-store reads, fail loudly. */
        {
            const char *const reads[][4] = {
                {"show", corruptions[i].key}, {"list"}, {"export"}, {"stats"},
                {"export", "--format", "json"},
            };

            for (size_t r = 0; r < sizeof(reads) / sizeof(reads[0]); r++) {
                EXPECT_RC(fx, run_argv(fx, 1, reads[r]), EX_IOERR);
                CHECK_CONTAINS(fx->err, "corrupt record");
                CHECK_CONTAINS(fx->err, corruptions[i].key);
            }
        }
        if (corruptions[i].key[0] != '@') {
            EXPECT_RC(fx, CTL(fx, "explain", corruptions[i].key), EX_IOERR);
            CHECK_CONTAINS(fx->err, "corrupt record");
        } else {
            /* a user without a record falls through to the corrupt rule */
            EXPECT_RC(fx, CTL(fx, "explain", "nobody@corp.example"), EX_IOERR);
            CHECK_CONTAINS(fx->err, "corrupt record for '@corp.example'");
        }
        /* Writers that need it fail and change nothing. */
        EXPECT_RC(fx, CTL(fx, "migrate", corruptions[i].key), EX_IOERR);
        EXPECT_RC(fx, CTL(fx, "migrate", "--wave", "w3"), EX_IOERR);
        CHECK_CONTAINS(fx->err, "corrupt record");
        if (fx->nlogs != 0)
            fail_msg("%s: a failed migrate logged:\n%s", what, fx->logs);
        EXPECT_UNCHANGED(fx, &before, what);
        free(before.data);

        /* The way out: remove it (or add it again), and check is clean. */
        OK(fx, "remove", corruptions[i].key);
        OK(fx, "check");
        snprintf(want, sizeof(want), "%s: 10 records, 0 problems\n", fx->db);
        CHECK_STR(fx->out, want);
    }
}

/* A file that is not a store at all: every verb refuses it, none writes. */
static void test_not_a_store(void **state)
{
    struct fx *fx = *state;
    static const char *const verbs[][6] = {
        {"check"}, {"show", "a@corp.example"}, {"export"},
        {"add", "a@corp.example", "a@pop.example"}, {"import", "-", "--replace"},
        {"init"},
    };
    struct blob before;

    write_text(fx->db, "this is not a tdb file, and no store either\n");
    before = slurp(fx->db);
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        int rc = run_argv(fx, 1, verbs[i]);

        if (strcmp(verbs[i][0], "init") == 0) {
            EXPECT_RC(fx, rc, EX_CANTCREAT);
        } else {
            EXPECT_RC(fx, rc, EX_NOINPUT);
            CHECK_CONTAINS(fx->err, "cannot open store");
        }
        CHECK_CONTAINS(fx->err, fx->db);
        EXPECT_UNCHANGED(fx, &before, verbs[i][0]);
    }
    free(before.data);
}

/* A chain (an alias that is itself managed) that a hand-made store holds. */
static void test_check_reports_chain(void **state)
{
    struct fx *fx = *state;
    char err[STORE_ERR_MAX], want[512];
    struct store *st;
    struct record rec;

    init_store(fx);
    OK(fx, "add", "a@corp.example", "a@pop.example");
    OK(fx, "add", "b@corp.example", "b@pop.example");
    st = store_open(fx->db, STORE_OPEN_EXISTING, 0, err);
    if (st == NULL)
        fail_msg("store_open: %s", err);
    memset(&rec, 0, sizeof(rec));
    rec.kind = RECORD_USER;
    snprintf(rec.alias, sizeof(rec.alias), "b@corp.example");
    if (store_put(st, "c@corp.example", &rec, "test/0") < 0)
        fail_msg("store_put: %s", store_error(st));
    store_close(st);

    EXPECT_RC(fx, CTL(fx, "check"), EX_DATAERR);
    CHECK_STR(fx->err, "coexistctl: check: 'c@corp.example': alias 'b@corp.example' is itself "
                       "managed\n");
    snprintf(want, sizeof(want), "%s: 3 records, 1 problem\n", fx->db);
    CHECK_STR(fx->out, want);
}

/*
 * Chains from the other side: "add" refuses an ADDRESS that is already
 * some record's alias, and a domain rule for a domain that is some rule's
 * legacy domain: the reverse index makes each one lookup. A merged import
 * does the same, unless the file itself gives the owner another alias. A
 * chain made otherwise (a domain rule for the domain of a user's alias,
 * which the index does not answer) is still check's to report, and the
 * milter never chains: each address is routed by its own record.
 */
static void test_reverse_chain_refused(void **state)
{
    struct fx *fx = *state;
    static const struct explain_case explains[] = {
        {"adam.barr@corp.example", "adam.barr@corp.example", "user", ACT_BCC,
         "adam@pop.example", NULL},
        {"adam@pop.example", "adam@pop.example", "domain", ACT_BCC, "adam@older.example", NULL},
    };
    char want[1024], path[256];
    struct blob before;

    init_store(fx);
    OK(fx, "add", "adam.barr@corp.example", "adam@pop.example");
    OK(fx, "add", "@sales.example", "@legacy-sales.example");
    before = slurp(fx->db);
    EXPECT_RC(fx, CTL(fx, "add", "<ADAM@POP.example>", "adam@older.example"), EX_DATAERR);
    CHECK_STR(fx->err, "coexistctl: 'adam@pop.example' is already the alias of "
                       "'adam.barr@corp.example' (no chaining)\n");
    EXPECT_RC(fx, CTL(fx, "add", "@Legacy-Sales.example", "@older.example"), EX_DATAERR);
    CHECK_STR(fx->err, "coexistctl: '@legacy-sales.example' is already the legacy domain of "
                       "'@sales.example' (no chaining)\n");
    path_in(fx, "chain.csv", path, sizeof(path));
    write_text(path, "address,alias,mode,state,wave,cutover\n"
                     "adam@pop.example,adam@older.example,,,,\n");
    EXPECT_RC(fx, CTL(fx, "import", path), EX_DATAERR);
    snprintf(want, sizeof(want), "%s:2: 'adam@pop.example' is already the alias of "
             "'adam.barr@corp.example' (no chaining)\ncoexistctl: 1 problem in %s; nothing "
             "imported\n", path, path);
    CHECK_STR(fx->err, want);
    EXPECT_UNCHANGED(fx, &before, "a refused chain");
    free(before.data);

    /* The same row is no chain when the file moves adam.barr to another alias. */
    write_text(path, "address,alias,mode,state,wave,cutover\n"
                     "adam.barr@corp.example,adam@new.example,,,,\n"
                     "adam@pop.example,adam@older.example,,,,\n");
    OK(fx, "import", path);
    OK(fx, "check");
    OK(fx, "remove", "adam@pop.example");
    OK(fx, "add", "adam.barr@corp.example", "adam@pop.example");

    /* Made otherwise: a rule for the domain of a user's alias. */
    OK(fx, "add", "@pop.example", "@older.example");
    EXPECT_RC(fx, CTL(fx, "check"), EX_DATAERR);
    CHECK_STR(fx->err, "coexistctl: check: 'adam.barr@corp.example': alias "
                       "'adam@pop.example' is itself managed\n");
    snprintf(want, sizeof(want), "%s: 3 records, 1 problem\n", fx->db);
    CHECK_STR(fx->out, want);
    for (size_t e = 0; e < sizeof(explains) / sizeof(explains[0]); e++)
        expect_explain(fx, &explains[e]);
    OK(fx, "remove", "@pop.example");
    OK(fx, "check");
    snprintf(want, sizeof(want), "%s: 2 records, 0 problems\n", fx->db);
    CHECK_STR(fx->out, want);
}

/*
 * Issue 10: recipient_delimiter = +- no longer shapes the keys the CLI
 * makes. "jean-luc" is stored as jean-luc, "jean" is another person, and
 * adding jean-marie replaces neither; explain follows Postfix's lookup
 * order with the configured delimiters.
 */
static void test_recipient_delimiter_from_config(void **state)
{
    struct fx *fx = *state;
    char conf[512];

    snprintf(conf, sizeof(conf), "state_db = %s\nhash_size = 1009\nrecipient_delimiter = +-\n",
             fx->db);
    write_text(fx->conf, conf);
    init_store(fx);
    OK(fx, "add", "Jean-Luc@corp.example", "jl@pop.example");
    OK(fx, "add", "jean@corp.example", "jean@pop.example", "--mode", "rewrite");
    OK(fx, "add", "jean-marie@corp.example", "jm@pop.example");
    {
        static const struct show_case sc = {"jean-luc@corp.example", "jean-luc@corp.example",
                                            "user", "unmigrated", "unmigrated", "bcc",
                                            "jl@pop.example", "-", "-"};
        static const struct show_case sc2 = {"jean@corp.example", "jean@corp.example",
                                             "user", "unmigrated", "unmigrated", "rewrite",
                                             "jean@pop.example", "-", "-"};
        static const struct explain_case ec[] = {
            {"jean-luc@corp.example", "jean-luc@corp.example", "user", ACT_BCC,
             "jl@pop.example", NULL},
            {"jean@corp.example", "jean@corp.example", "user", ACT_REWRITE,
             "jean@pop.example", NULL},
            /* no record of its own: found without the extension "-paul" */
            {"jean-paul@corp.example", "jean-paul@corp.example", "user", ACT_REWRITE,
             "jean-paul@pop.example", "jean@corp.example"},
        };
        expect_show(fx, &sc);
        expect_show(fx, &sc2);
        for (size_t i = 0; i < sizeof(ec) / sizeof(ec[0]); i++)
            expect_explain(fx, &ec[i]);
    }
    OK(fx, "stats");
    CHECK_CONTAINS(fx->out, "3");
    /* The alias is never stripped: it is a mailbox at the legacy system. */
    OK(fx, "add", "bea@corp.example", "bea-old+x@pop.example");
    CHECK_CONTAINS(fx->logs, "alias=bea-old+x@pop.example");
}

/* ---- the reverse index and reverse routing (DESIGN section 9) ------------ */

#define DUMP_MAX 64

static int dump_one(struct tdb_context *tdb, TDB_DATA k, TDB_DATA v, void *ctx)
{
    char (*lines)[512] = ctx;
    size_t n = 0;

    (void) tdb;
    if (k.dsize == 0 || (k.dptr[0] != '=' && (k.dsize != strlen(STORE_REVERSE_MARKER)
        || memcmp(k.dptr, STORE_REVERSE_MARKER, k.dsize) != 0)))
        return 0;
    while (n < DUMP_MAX - 1 && lines[n][0])
        n++;
    snprintf(lines[n], sizeof(lines[n]), "%.*s=%.*s\n", (int) k.dsize, k.dptr,
             (int) v.dsize, v.dptr);
    return 0;
}

static int dump_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* index_dump - the '=' keys and the marker of the store, sorted, one a line. */
static const char *index_dump(struct fx *fx)
{
    static char text[DUMP_MAX * 512];
    char (*lines)[512] = calloc(DUMP_MAX, sizeof(*lines));
    struct tdb_context *tdb = tdb_open(fx->db, 0, 0, O_RDWR, 0);
    size_t n = 0;

    if (lines == NULL || tdb == NULL)
        fail_msg("index_dump: cannot open %s", fx->db);
    tdb_traverse_read(tdb, dump_one, lines);
    tdb_close(tdb);
    while (n < DUMP_MAX && lines[n][0])
        n++;
    qsort(lines, n, sizeof(lines[0]), dump_cmp);
    text[0] = '\0';
    for (size_t i = 0; i < n; i++)
        strcat(text, lines[i]);
    free(lines);
    return text;
}

/* raw_delete - delete KEY from the store with tdb itself. */
static void raw_delete(const char *path, const char *key)
{
    struct tdb_context *tdb = tdb_open(path, 0, 0, O_RDWR, 0);

    if (tdb == NULL || tdb_delete(tdb, (TDB_DATA) {(unsigned char *) key, strlen(key)}) != 0)
        fail_msg("tdb_delete('%s') failed", key);
    tdb_close(tdb);
}

#define MARKER_LINE STORE_REVERSE_MARKER "=v=1\n"

/* Every writing verb keeps the index in step; a failed one leaves it as it was. */
static void test_reverse_index_in_step(void **state)
{
    struct fx *fx = *state;
    char path[256], idx[4096];
    struct blob before;

    init_store(fx);
    CHECK_STR(index_dump(fx), MARKER_LINE);
    OK(fx, "add", "a@corp.example", "a@pop.example", "--wave", "w1");
    OK(fx, "add", "c@corp.example", "shared@pop.example");
    OK(fx, "add", "b@corp.example", "shared@pop.example", "--wave", "w1");
    OK(fx, "add", "@corp.example", "@pop.example");
    snprintf(idx, sizeof(idx), "%s", MARKER_LINE
             "=@pop.example=v=1 owners=@corp.example\n"
             "=a@pop.example=v=1 owners=a@corp.example\n"
             "=shared@pop.example=v=1 owners=b@corp.example,c@corp.example\n");
    CHECK_STR(index_dump(fx), idx);
    /* Verbs that keep the alias keep the index. */
    OK(fx, "mode", "a@corp.example", "rewrite");
    OK(fx, "migrate", "--wave", "w1");
    OK(fx, "unmigrate", "b@corp.example");
    OK(fx, "migrate", "c@corp.example", "--at", "2999-01-01T00:00:00Z");
    OK(fx, "reverse", "a@corp.example", "on");
    CHECK_STR(index_dump(fx), idx);
    /* A new alias moves the entry; remove drops the owner. */
    OK(fx, "add", "a@corp.example", "a2@pop.example");
    OK(fx, "remove", "c@corp.example");
    CHECK_STR(index_dump(fx), MARKER_LINE
              "=@pop.example=v=1 owners=@corp.example\n"
              "=a2@pop.example=v=1 owners=a@corp.example\n"
              "=shared@pop.example=v=1 owners=b@corp.example\n");
    /* import merges */
    path_in(fx, "m.csv", path, sizeof(path));
    write_text(path, "address,alias,mode,state,wave,cutover,reverse\n"
                     "d@corp.example,shared@pop.example,,,,,\n"
                     "a@corp.example,a3@pop.example,,,,,yes\n");
    OK(fx, "import", path);
    snprintf(idx, sizeof(idx), "%s", MARKER_LINE
             "=@pop.example=v=1 owners=@corp.example\n"
             "=a3@pop.example=v=1 owners=a@corp.example\n"
             "=shared@pop.example=v=1 owners=b@corp.example,d@corp.example\n");
    CHECK_STR(index_dump(fx), idx);
    /* failed imports: a bad row, a conflict with the store; nothing changes */
    before = slurp(fx->db);
    write_text(path, "address,alias,mode,state,wave,cutover,reverse\n"
                     "e@corp.example,e@pop.example,,,,,\n"
                     "f@corp.example,f@pop.example,,,,,maybe\n");
    EXPECT_RC(fx, CTL(fx, "import", path, "--replace"), EX_DATAERR);
    write_text(path, "address,alias,mode,state,wave,cutover,reverse\n"
                     "e@corp.example,e@pop.example,,,,,\n"
                     "g@corp.example,shared@pop.example,,,,,yes\n");
    EXPECT_RC(fx, CTL(fx, "import", path), EX_DATAERR);
    EXPECT_UNCHANGED(fx, &before, "a failed import");
    free(before.data);
    CHECK_STR(index_dump(fx), idx);
    /* import --replace: the index of the file only */
    write_text(path, "address,alias,mode,state,wave,cutover\n"
                     "x@corp.example,x@pop.example,,,,\n"
                     "@sales.example,@pop.example,,,,\n");
    OK(fx, "import", path, "--replace");
    CHECK_STR(index_dump(fx), MARKER_LINE
              "=@pop.example=v=1 owners=@sales.example\n"
              "=x@pop.example=v=1 owners=x@corp.example\n");
    OK(fx, "check");
    /* The journal holds records only. */
    OK(fx, "history");
    CHECK_NOT_CONTAINS(fx->out, " =");
}

/* --reverse, "reverse on|off", and the one-owner rule for reverse routing. */
static void test_reverse_flag(void **state)
{
    struct fx *fx = *state;
    static const struct show_case sc = {"a@corp.example", "a@corp.example", "user",
                                        "unmigrated", "unmigrated", "bcc", "a@pop.example",
                                        "-", "-"};
    struct blob before;

    init_store(fx);
    OK(fx, "add", "a@corp.example", "a@pop.example", "--reverse");
    CHECK_CONTAINS(fx->logs, "add a@corp.example state=unmigrated mode=bcc "
                   "alias=a@pop.example reverse=yes actor=");
    expect_show_reverse(fx, &sc, "yes");
    OK(fx, "add", "b@corp.example", "shared@pop.example", "--wave", "w1");
    OK(fx, "add", "c@corp.example", "shared@pop.example", "--wave", "w1");     /* bcc: fine */
    OK(fx, "stats");
    CHECK_CONTAINS(fx->out, "reverse:    1\n");

    before = slurp(fx->db);
    EXPECT_RC(fx, CTL(fx, "add", "b@corp.example", "shared@pop.example", "--reverse"),
              EX_DATAERR);
    CHECK_STR(fx->err, "coexistctl: alias 'shared@pop.example' is shared with "
                       "'c@corp.example': reverse routing needs one owner\n");
    EXPECT_RC(fx, CTL(fx, "reverse", "b@corp.example", "on"), EX_DATAERR);
    CHECK_STR(fx->err, "coexistctl: alias 'shared@pop.example' is shared with "
                       "'c@corp.example': reverse routing needs one owner\n"
                       "coexistctl: nothing changed\n");
    EXPECT_RC(fx, CTL(fx, "reverse", "--wave", "w1", "on"), EX_DATAERR);
    CHECK_CONTAINS(fx->err, "reverse routing needs one owner");
    EXPECT_RC(fx, CTL(fx, "add", "d@corp.example", "a@pop.example"), EX_DATAERR);
    CHECK_STR(fx->err, "coexistctl: alias 'a@pop.example' is routed back to 'a@corp.example' "
                       "(reverse = yes): it cannot have a second owner\n");
    EXPECT_RC(fx, CTL(fx, "reverse", "a@corp.example"), EX_USAGE);
    EXPECT_RC(fx, CTL(fx, "reverse", "on"), EX_USAGE);
    EXPECT_RC(fx, CTL(fx, "reverse", "a@corp.example", "yes"), EX_USAGE);
    EXPECT_RC(fx, CTL(fx, "reverse", "a@corp.example", "nobody@corp.example", "off"),
              EX_NOUSER);
    EXPECT_UNCHANGED(fx, &before, "refused reverse routing");
    free(before.data);

    /* off, then a second owner is fine, and on is refused again */
    OK(fx, "reverse", "a@corp.example", "off");
    CHECK_STR(fx->out, "reverse: 1 record changed\n");
    expect_show(fx, &sc);
    OK(fx, "add", "d@corp.example", "a@pop.example");
    EXPECT_RC(fx, CTL(fx, "reverse", "a@corp.example", "on"), EX_DATAERR);
    /* by wave, once the alias has one owner each */
    OK(fx, "add", "c@corp.example", "c@pop.example", "--wave", "w1");
    OK(fx, "reverse", "--wave", "w1", "on");
    CHECK_STR(fx->out, "reverse: 2 records changed\n");
    CHECK_CONTAINS(fx->logs, "reverse b@corp.example state=unmigrated mode=bcc "
                   "alias=shared@pop.example wave=w1 reverse=yes actor=");
    OK(fx, "history", "c@corp.example", "--limit", "1");
    CHECK_CONTAINS(fx->out, "reverse=yes");
    OK(fx, "list", "--wave", "w1");
    CHECK_CONTAINS(fx->out, " REVERSE ");
    CHECK_CONTAINS(fx->out, " w1         yes     -\n");
    OK(fx, "stats");
    CHECK_CONTAINS(fx->out, "reverse:    2\n");
    /* domain rules: the same rule, by legacy domain */
    OK(fx, "add", "@corp.example", "@pop.example", "--reverse");
    EXPECT_RC(fx, CTL(fx, "add", "@other.example", "@pop.example"), EX_DATAERR);
    CHECK_STR(fx->err, "coexistctl: alias '@pop.example' is routed back to '@corp.example' "
                       "(reverse = yes): it cannot have a second owner\n");
    OK(fx, "check");
}

/* export and import carry the column; the old six columns still import as "off". */
static void test_reverse_round_trip(void **state)
{
    struct fx *fx = *state;
    char csv_path[256], json_path[256], other[256], old_path[256];
    char *csv, *json;

    init_store(fx);
    OK(fx, "add", "a@corp.example", "a@pop.example", "--reverse");
    OK(fx, "add", "b@corp.example", "b@pop.example");
    OK(fx, "add", "@corp.example", "@pop.example", "--reverse", "--mode", "rewrite");
    OK(fx, "export");
    CHECK_STR(fx->out, "address,alias,mode,state,wave,cutover,reverse\n"
                       "@corp.example,@pop.example,rewrite,unmigrated,,,yes\n"
                       "a@corp.example,a@pop.example,bcc,unmigrated,,,yes\n"
                       "b@corp.example,b@pop.example,bcc,unmigrated,,,no\n");
    csv = strdup(fx->out);
    OK(fx, "export", "--format", "json");
    CHECK_CONTAINS(fx->out, "\"address\":\"a@corp.example\",\"alias\":\"a@pop.example\","
                   "\"mode\":\"bcc\",\"state\":\"unmigrated\",\"wave\":\"\",\"cutover\":\"\","
                   "\"reverse\":true}");
    json = strdup(fx->out);
    path_in(fx, "e.csv", csv_path, sizeof(csv_path));
    path_in(fx, "e.json", json_path, sizeof(json_path));
    path_in(fx, "copy.tdb", other, sizeof(other));
    write_text(csv_path, csv);
    write_text(json_path, json);
    EXPECT_RC(fx, RAW(fx, "-c", fx->conf, "-d", other, "init"), EX_OK);
    EXPECT_RC(fx, RAW(fx, "-c", fx->conf, "-d", other, "import", csv_path), EX_OK);
    EXPECT_RC(fx, RAW(fx, "-c", fx->conf, "-d", other, "export"), EX_OK);
    CHECK_STR(fx->out, csv);
    EXPECT_RC(fx, RAW(fx, "-c", fx->conf, "-d", other, "import", json_path, "--replace"),
              EX_OK);
    EXPECT_RC(fx, RAW(fx, "-c", fx->conf, "-d", other, "export", "--format", "json"), EX_OK);
    CHECK_STR(fx->out, json);
    /* A file of the previous version: six columns, reverse off. */
    path_in(fx, "old.csv", old_path, sizeof(old_path));
    write_text(old_path, "address,alias,mode,state,wave,cutover\n"
                         "a@corp.example,a@pop.example,bcc,unmigrated,,\n");
    OK(fx, "import", old_path);
    OK(fx, "export");
    CHECK_STR(fx->out, "address,alias,mode,state,wave,cutover,reverse\n"
                       "@corp.example,@pop.example,rewrite,unmigrated,,,yes\n"
                       "a@corp.example,a@pop.example,bcc,unmigrated,,,no\n"
                       "b@corp.example,b@pop.example,bcc,unmigrated,,,no\n");
    free(csv);
    free(json);
}

/* A store of the previous version gets its index from the first writer, or check. */
static void test_reverse_upgrade_and_repair(void **state)
{
    struct fx *fx = *state;
    char want[1024];
    const char *idx;
    static const char *const strip[] = {"=a@pop.example", "=shared@pop.example",
                                        STORE_REVERSE_MARKER};

    init_store(fx);
    OK(fx, "add", "a@corp.example", "a@pop.example");
    OK(fx, "add", "b@corp.example", "shared@pop.example");
    OK(fx, "add", "c@corp.example", "shared@pop.example");
    idx = strdup(index_dump(fx));
    for (size_t i = 0; i < 3; i++)
        raw_delete(fx->db, strip[i]);
    CHECK_STR(index_dump(fx), "");
    /* Readers neither build it nor miss it. */
    OK(fx, "export");
    CHECK_STR(index_dump(fx), "");
    /* The first writer builds it, says so once, then does its own change. */
    OK(fx, "add", "d@corp.example", "d@pop.example");
    snprintf(want, sizeof(want), "coexistctl: built the reverse index of %s for 3 records "
             "(a store of an earlier version)\n", fx->db);
    CHECK_STR(fx->out, want);
    CHECK_CONTAINS(fx->logs, "reverse index built for ");
    OK(fx, "remove", "d@corp.example");
    CHECK_STR(fx->out, "remove: 1 record removed\n");
    CHECK_STR(index_dump(fx), idx);
    /* check does the same on an older store, and passes */
    for (size_t i = 0; i < 3; i++)
        raw_delete(fx->db, strip[i]);
    OK(fx, "check");
    CHECK_CONTAINS(fx->out, "coexistctl: built the reverse index of ");
    CHECK_CONTAINS(fx->out, ": 3 records, 0 problems\n");
    CHECK_STR(index_dump(fx), idx);

    /* A damaged index: check names each mismatch, rebuilds it, and the next is clean. */
    plant(fx->db, "=shared@pop.example", "v=1 owners=b@corp.example,x@corp.example",
          strlen("v=1 owners=b@corp.example,x@corp.example"));
    raw_delete(fx->db, "=a@pop.example");
    EXPECT_RC(fx, CTL(fx, "check"), EX_OK);
    CHECK_STR(fx->err, "coexistctl: check: 'a@corp.example': not in the reverse index (entry "
                       "'=a@pop.example' does not name it)\n"
                       "coexistctl: check: 'c@corp.example': not in the reverse index (entry "
                       "'=shared@pop.example' does not name it)\n"
                       "coexistctl: check: '=shared@pop.example': reverse index names "
                       "'x@corp.example', which has no record with that alias\n");
    snprintf(want, sizeof(want), "rebuilt the reverse index of %s from all 3 records: 3 "
             "mismatches repaired\n%s: 3 records, 0 problems\n", fx->db, fx->db);
    CHECK_STR(fx->out, want);
    CHECK_STR(index_dump(fx), idx);
    OK(fx, "check");
    OK(fx, "history", "--limit", "1");
    CHECK_CONTAINS(fx->out, " !check\n    old: -\n    new: reverse index rebuilt\n");
    /* A value that does not parse: the milter's lookup would fail; check mends it. */
    plant(fx->db, "=a@pop.example", "owners=a@corp.example", strlen("owners=a@corp.example"));
    EXPECT_RC(fx, CTL(fx, "add", "e@corp.example", "a@pop.example"), EX_IOERR);
    CHECK_CONTAINS(fx->err, "corrupt reverse index entry '=a@pop.example'");
    EXPECT_RC(fx, CTL(fx, "check"), EX_OK);
    CHECK_CONTAINS(fx->err, "'=a@pop.example': does not start with 'v=1 owners='");
    CHECK_STR(index_dump(fx), idx);
    free((char *) idx);
}

/* '=' addresses are the index's: never managed, never found. */
static void test_reverse_equals_addresses(void **state)
{
    struct fx *fx = *state;
    static const struct explain_case ec = {"=a@pop.example", "=a@pop.example", "none",
                                           ACT_UNKNOWN, NULL, NULL};

    init_store(fx);
    OK(fx, "add", "a@corp.example", "a@pop.example");
    EXPECT_RC(fx, CTL(fx, "add", "=x@corp.example", "x@pop.example"), EX_DATAERR);
    CHECK_STR(fx->err, "coexistctl: '=x@corp.example': addresses starting with '=' cannot "
                       "be managed (the reverse index uses such keys)\n");
    /* the index key exists, and a recipient of that name is simply unknown */
    expect_explain(fx, &ec);
    EXPECT_RC(fx, CTL(fx, "show", "=a@pop.example"), EX_NOUSER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_acceptance_scenario),
        T(test_command_line_and_exit_codes),
        T(test_init),
        T(test_add_users_and_domain_rule),
        T(test_bad_input_changes_nothing),
        T(test_migrate_unmigrate_mode_remove),
        T(test_wave_migrate),
        T(test_scheduled_cutover),
        T(test_multi_address_all_or_nothing),
        T(test_explain_table),
        T(test_list_formats),
        T(test_export_import_round_trip),
        T(test_import_stdin),
        T(test_import_malformed_changes_nothing),
        T(test_import_conflict_with_store),
        T(test_import_unreadable),
        T(test_import_replace_empty),
        T(test_full_disk),
        T(test_history_per_change),
        T(test_log_lines),
        T(test_check_good_store),
        T(test_check_corrupt_record),
        T(test_not_a_store),
        T(test_check_reports_chain),
        T(test_reverse_chain_refused),
        T(test_recipient_delimiter_from_config),
        T(test_reverse_index_in_step),
        T(test_reverse_flag),
        T(test_reverse_round_trip),
        T(test_reverse_upgrade_and_repair),
        T(test_reverse_equals_addresses),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
