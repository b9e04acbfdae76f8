/*
 * doctor_store.c - the milter's files: the store passes the check verb's
 * checks (store_check and store_reverse_check, read-only: doctor repairs
 * nothing, "coexistctl check" does) and the milter's account may open it
 * read-write; the loop guard's secret is one the milter loads (trace.c's
 * own rules) and no one else may read.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"
#include "trace.h"
#include "doctor.h"

/* Problems found by the store's checks: the first few are named. */
struct problems {
    int count;
    char first[DOCTOR_TEXT_MAX];
};

static void note_problem(const char *key, const char *why, void *ctx)
{
    struct problems *p = ctx;

    if (p->count++ == 0)
        doctor_fmt(p->first, sizeof(p->first), "%s: %s", key, why);
}

/* check_records - the check verb's record and index checks. */
static void check_records(struct doctor *d)
{
    char err[STORE_ERR_MAX];
    struct problems p = {0, ""};
    struct store *st = store_open(d->dr_db_path, STORE_OPEN_EXISTING, 0, err);
    int bad;

    if (st == NULL) {
        doctor_add(d, "store.open", "check state_db in coexist-milter.conf; a new store "
                   "is made with coexistctl init", "%s", err);
        return;
    }
    if ((bad = store_check(st, note_problem, &p)) < 0)
        doctor_add(d, "store.check", "run coexistctl check (it rebuilds what it can)",
                   "%s is damaged: %s", d->dr_db_path, store_error(st));
    else if (bad == 0 && store_reverse_check(st, note_problem, &p) < 0)
        doctor_add(d, "store.check", "run coexistctl check", "%s: %s", d->dr_db_path,
                   store_error(st));
    if (p.count > 0)
        doctor_add(d, "store.check", "run coexistctl check, then fix or remove the records "
                   "it names", "%s fails check: %d problem%s, the first %s", d->dr_db_path,
                   p.count, p.count == 1 ? "" : "s", p.first);
    store_close(st);
}

/*
 * milter_account - the account the milter runs as: user of the config, or
 * without one (systemd's User= starts it as its account) the owner of its
 * unix socket, which it made. NULL when it runs as root or is unknown.
 */
static const struct doctor_account *milter_account(struct doctor *d, struct doctor_account *a)
{
    const struct passwd *pw;
    struct doctor_sock s;
    struct stat sb;

    if (d->dr_cfg->user[0] != '\0') {
        if (doctor_account(d->dr_cfg->user, a) == 0)
            return a;
        doctor_add(d, "milter.user", "create the account or fix user in "
                   "coexist-milter.conf", "user %s: no such user", d->dr_cfg->user);
        return NULL;
    }
    if (doctor_sock_milter(d->dr_cfg->socket, &s) < 0 || s.ds_kind != DOCTOR_SOCK_UNIX
        || stat(s.ds_path, &sb) < 0 || sb.st_uid == 0 || (pw = getpwuid(sb.st_uid)) == NULL)
        return NULL;
    return doctor_account(pw->pw_name, a) == 0 ? a : NULL;
}

/* check_store_owner - the milter opens the store read-write as its user. */
static void check_store_owner(struct doctor *d, const struct doctor_account *a)
{
    char why[DOCTOR_ERR_MAX], fix[DOCTOR_TEXT_MAX];
    struct stat sb;

    if (a == NULL || stat(d->dr_db_path, &sb) < 0)
        return;
    doctor_fmt(fix, sizeof(fix), "chown %s %s", a->da_name, d->dr_db_path);
    if (sb.st_uid != a->da_uid) {
        const struct passwd *pw = getpwuid(sb.st_uid);
        doctor_add(d, "store.owner", fix, "%s is owned by %s, not by the milter's user %s: "
                   "the milter opens it read-write, and coexistctl run as %s refuses to "
                   "change it", d->dr_db_path, pw ? pw->pw_name : "another uid",
                   a->da_name, a->da_name);
    } else if (doctor_may(a, d->dr_db_path, R_OK | W_OK, why) == 0)
        doctor_add(d, "store.access", "give the milter's user read and write access (and "
                   "search on the directories above)", "the milter (user %s) cannot open "
                   "the store read-write: %s", a->da_name, why);
}

/*
 * other_member - a member of group GID other than the milter's user A
 * (Postfix's account, put in the milter's group for the socket, is the
 * usual one), or NULL.
 */
static const char *other_member(gid_t gid, const struct doctor_account *a)
{
    const struct group *gr = getgrgid(gid);

    if (gr == NULL)
        return NULL;
    for (char **m = gr->gr_mem; *m != NULL; m++)
        if (a == NULL || strcmp(*m, a->da_name) != 0)
            return *m;
    return NULL;
}

/* check_secret_access - only the milter's account (and root) may read the secret. */
static void check_secret_access(struct doctor *d, const struct doctor_account *a,
                                const char *path)
{
    char why[DOCTOR_ERR_MAX], fix[DOCTOR_TEXT_MAX];
    const char *other;
    struct stat sb;

    if (stat(path, &sb) < 0)
        return;
    doctor_fmt(fix, sizeof(fix), "chown %s %s; chmod 0600 %s", a ? a->da_name : "root",
             path, path);
    if (a != NULL && doctor_may(a, path, R_OK, why) == 0) {
        doctor_add(d, "trace.access", fix, "the milter (user %s) cannot read "
                   "trace_secret_file: %s", a->da_name, why);
        return;
    }
    if (sb.st_uid != 0 && (a == NULL || sb.st_uid != a->da_uid)) {
        const struct passwd *pw = getpwuid(sb.st_uid);
        doctor_add(d, "trace.owner", fix, "trace_secret_file %s is owned by %s, who can "
                   "forge the loop guard", path, pw ? pw->pw_name : "another uid");
    } else if ((sb.st_mode & S_IRGRP) != 0 && (other = other_member(sb.st_gid, a)) != NULL)
        doctor_add(d, "trace.mode", fix, "trace_secret_file %s is readable by its group "
                   "(mode %04o), which has %s in it: only the milter may read it", path,
                   (unsigned) (sb.st_mode & 07777), other);
}

/* check_secret - the loop guard's secret, as the milter loads it. */
static void check_secret(struct doctor *d, const struct doctor_account *a)
{
    char path[2 * CONFIG_STR_MAX + DOCTOR_PATH_MAX], err[TRACE_ERR_MAX];
    struct trace_secret secret;
    int rc;

    if (config_beside(d->dr_cfg->trace_secret_file, d->dr_db_path, path, sizeof(path)) < 0)
        return;
    if (path[0] == '\0') {
        doctor_add(d, "trace.secret", "set trace_secret_file (the default is trace.key "
                   "beside the store) and run coexistctl init, which makes it",
                   "no trace_secret_file: the loop guard's header is a constant anyone "
                   "can send to skip routing");
        return;
    }
    rc = trace_secret_load(path, &secret, err);
    memset(&secret, 0, sizeof(secret));
    if (rc == 1)
        doctor_add(d, "trace.secret", "run coexistctl init (it makes the secret and keeps "
                   "the store)", "trace_secret_file %s does not exist: the loop guard's "
                   "header is a constant anyone can forge", path);
    else if (rc < 0)
        doctor_add(d, "trace.secret", "fix it as said, then restart the milter (it refuses "
                   "to start with it)", "trace_secret_file %s", err);
    else
        check_secret_access(d, a, path);
}

void doctor_store_checks(struct doctor *d)
{
    struct doctor_account acct;
    const struct doctor_account *a = milter_account(d, &acct);

    doctor_checked(d, "store");
    check_records(d);
    check_store_owner(d, a);
    check_secret(d, a);
}
