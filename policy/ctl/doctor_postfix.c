/*
 * doctor_postfix.c - does Postfix send its mail through this milter?
 * Reads postconf (main.cf parameters expanded, master.cf's fields and -o
 * overrides) and judges, per smtpd and cleanup service as it is chrooted:
 * smtpd_milters and non_smtpd_milters name the milter's socket (a unix
 * path is relative to queue_directory, and absolute ones are inside the
 * chroot), milter_default_action, services that override the lists,
 * re-injection listeners of a content filter, milters switched off by
 * receive_override_options. Postfix's mail_owner is noted for the socket
 * check (doctor_milter.c).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "doctor.h"

#define POSTCONF_OUT_MAX (4 * 1024 * 1024)

/*
 * run_postconf - postconf [-c DIR] ARGS... with stdout and stderr in *OUT
 * (malloc'd; its warnings start "postconf: " and the parsers skip them).
 * Returns its exit status, or -1 when it cannot run (WHY says why).
 */
static int run_postconf(struct doctor *d, const char *const *args, char **out,
                        char why[DOCTOR_ERR_MAX])
{
    const char *argv[16];
    size_t len = 0, cap = 8192;
    int fds[2], status, n = 0;
    pid_t pid;

    argv[n++] = d->dr_postconf;
    if (d->dr_postfix_config != NULL) {
        argv[n++] = "-c";
        argv[n++] = d->dr_postfix_config;
    }
    while (*args != NULL && n < 15)
        argv[n++] = *args++;
    argv[n] = NULL;
    if ((*out = malloc(cap)) == NULL || pipe(fds) < 0) {
        doctor_fmt(why, DOCTOR_ERR_MAX, "%s", strerror(errno));
        return -1;
    }
    if ((pid = fork()) < 0) {
        doctor_fmt(why, DOCTOR_ERR_MAX, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execvp(argv[0], (char *const *) argv);
        fprintf(stderr, "postconf: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    for (;;) {
        ssize_t r;

        if (len + 1 >= cap && cap < POSTCONF_OUT_MAX) {
            char *bigger = realloc(*out, cap * 2);
            if (bigger == NULL)
                break;
            *out = bigger;
            cap *= 2;
        }
        if (len + 1 >= cap)
            break;
        r = read(fds[0], *out + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t) r;
    }
    (*out)[len] = '\0';
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        const char *nl = strchr(*out, '\n');
        doctor_fmt(why, DOCTOR_ERR_MAX, "%.*s", nl ? (int) (nl - *out) : (int) len, *out);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    }
    return 0;
}

/* read_postfix - postconf's view of main.cf and master.cf into PF; 0 or -1. */
static int read_postfix(struct doctor *d, struct doctor_postfix *pf)
{
    static const char *const params[] = {
        "-x", "smtpd_milters", "non_smtpd_milters", "milter_default_action",
        "queue_directory", "mail_owner", "content_filter", "receive_override_options", NULL
    };
    static const char *const fields[] = {"-F", NULL};
    static const char *const overrides[] = {"-P", "-x", NULL};
    const char *const *runs[] = {params, fields, overrides};
    int (*parse[])(struct doctor_postfix *, const char *) = {
        doctor_parse_params, doctor_parse_fields, doctor_parse_overrides
    };
    char why[DOCTOR_ERR_MAX], *text = NULL;

    for (size_t i = 0; i < 3; i++) {
        int rc = run_postconf(d, runs[i], &text, why);

        if (rc != 0) {
            doctor_add(d, "postfix.postconf", "fix what postconf says (postfix check), or "
                       "name the instance with --postfix-config DIR", "postconf%s%s %s "
                       "failed: %s", d->dr_postfix_config ? " -c " : "",
                       d->dr_postfix_config ? d->dr_postfix_config : "", runs[i][0], why);
            free(text);
            return -1;
        }
        if (parse[i](pf, text) < 0) {
            d->dr_nomem = 1;
            free(text);
            return -1;
        }
        free(text);
        text = NULL;
    }
    return 0;
}

/* A service's view of one of the lists. */
struct view {
    const struct doctor_postfix *pf;
    const struct doctor_service *sv;
    const struct doctor_sock *mine;
    const char *param;          /* "smtpd_milters" */
    const char *queue_dir;
};

/*
 * names_mine - whether milter list VALUE, as service V->sv reaches it,
 * names the milter's socket; ACTION its per-milter default_action ("" if
 * none). -1 when VALUE does not parse (WHY).
 */
static int names_mine(const struct view *v, const char *value, char action[32],
                      const char **why)
{
    struct doctor_milter list[DOCTOR_MILTERS_MAX];
    int n = doctor_milter_list(value ? value : "", list, DOCTOR_MILTERS_MAX, why);

    for (int i = 0; i < n; i++) {
        struct doctor_sock s;

        if (doctor_sock_postfix(list[i].dm_endpoint, &s) < 0)
            continue;
        if (s.ds_kind == DOCTOR_SOCK_UNIX) {
            char host[DOCTOR_PATH_MAX];
            if (doctor_chroot_path(s.ds_path, v->queue_dir, v->sv->ds_chroot, host,
                                   sizeof(host)) < 0)
                continue;
            doctor_fmt(s.ds_path, sizeof(s.ds_path), "%s", host);
        }
        if (doctor_sock_same(v->mine, &s)) {
            doctor_fmt(action, 32, "%s", list[i].dm_default_action);
            return 1;
        }
    }
    return n < 0 ? -1 : 0;
}

/* how_named - what V's service should write for the milter's socket (FIX). */
static void how_named(const struct view *v, char *name, size_t len, char *fix, size_t fixlen,
                      const char *where)
{
    if (v->mine->ds_kind != DOCTOR_SOCK_UNIX) {
        doctor_fmt(name, len, "inet:%s:%u", v->mine->ds_host[0] ? v->mine->ds_host
                 : "127.0.0.1", v->mine->ds_port);
        doctor_fmt(fix, fixlen, "add %s to %s %s", name, v->param, where);
    } else if (doctor_postfix_name(v->mine->ds_path, v->queue_dir, v->sv->ds_chroot, name,
                                   len) < 0)
        doctor_fmt(fix, fixlen, "service %s is chrooted in %s and cannot reach %s: put the "
                 "socket inside it (socket = unix:%s/coexist-milter/coexist-milter.sock) "
                 "and add unix:coexist-milter/coexist-milter.sock to %s %s",
                 v->sv->ds_name, v->queue_dir, v->mine->ds_path, v->queue_dir, v->param, where);
    else
        doctor_fmt(fix, fixlen, "add %s to %s %s", name, v->param, where);
}

/* check_action - a default_action (main.cf, -o, or the milter's own entry). */
static void check_action(struct doctor *d, const char *action, const char *where)
{
    static const struct { const char *action, *meaning; } means[] = {
        {"accept", "mail passes unrouted, without the legacy copies and rewrites"},
        {"reject", "mail is refused with 5xx, senders get bounces"},
        {"quarantine", "mail waits in the hold queue until released (postsuper -H)"},
    };
    const char *meaning = "Postfix does not know this action";

    if (action == NULL || action[0] == '\0' || strcasecmp(action, "tempfail") == 0)
        return;
    for (size_t i = 0; i < sizeof(means) / sizeof(means[0]); i++)
        if (strcasecmp(action, means[i].action) == 0)
            meaning = means[i].meaning;
    doctor_add(d, "postfix.milter_default_action", "set it to tempfail: mail then waits "
               "in the queue until the milter answers again",
               "%s is %s: when the milter is down or refuses, %s", where, action, meaning);
}

/* check_list - V's service and one list: named, overridden, default action. */
static void check_list(struct doctor *d, const struct view *v)
{
    const char *own = doctor_override(v->sv, v->param), *why = "";
    const char *value = own ? own : doctor_param(v->pf, v->param);
    char name[DOCTOR_PATH_MAX], fix[DOCTOR_TEXT_MAX], where[DOCTOR_PATH_MAX], action[32];
    int rc = names_mine(v, value, action, &why);

    if (rc < 0) {
        doctor_add(d, "postfix.milter_list", "fix its syntax (postconf(5), MILTER README)",
                   "%s%s%s does not parse: %s", v->param, own ? " of service " : "",
                   own ? v->sv->ds_name : "", why);
        return;
    }
    if (rc == 1) {
        doctor_fmt(where, sizeof(where), "the default_action of %s in %s", v->mine->ds_path,
                 v->param);
        check_action(d, action, where);
        return;
    }
    if (own != NULL) {
        doctor_fmt(where, sizeof(where), "in the -o %s= of %s in master.cf, or remove "
                 "that -o", v->param, v->sv->ds_name);
        how_named(v, name, sizeof(name), fix, sizeof(fix), where);
        doctor_add(d, "postfix.master_override", fix, "master.cf service %s/%s overrides "
                   "%s (%s) without this milter's socket %s: its mail is not routed",
                   v->sv->ds_name, v->sv->ds_type, v->param, own[0] ? own : "empty",
                   d->dr_cfg->socket);
        return;
    }
    how_named(v, name, sizeof(name), fix, sizeof(fix), "in main.cf");
    where[0] = '\0';
    if (v->sv->ds_chroot)
        doctor_fmt(where, sizeof(where), " (from service %s, chrooted in %s, where a unix: "
                   "path is taken inside the chroot)", v->sv->ds_name, v->queue_dir);
    doctor_add(d, strcmp(v->param, "smtpd_milters") == 0 ? "postfix.smtpd_milters"
               : "postfix.non_smtpd_milters", fix, "%s (%s) does not reach this milter's "
               "socket %s%s: mail %s is not routed", v->param, value && value[0] ? value
               : "empty", d->dr_cfg->socket, where, strcmp(v->param, "smtpd_milters") == 0
               ? "received over SMTP" : "submitted with sendmail(1)");
}

/* reinjection - a content filter's way back in: an smtpd with -o content_filter=. */
static int reinjection(const struct doctor_service *sv)
{
    const char *cf = doctor_override(sv, "content_filter");

    return strcmp(sv->ds_command, "smtpd") == 0 && cf != NULL && cf[0] == '\0';
}

/* check_reinjection - the re-injected mail must not pass the milter again. */
static void check_reinjection(struct doctor *d, const struct view *v)
{
    const char *opts = doctor_effective(v->pf, v->sv, "receive_override_options");
    const char *value = doctor_effective(v->pf, v->sv, "smtpd_milters"), *why;
    char fix[DOCTOR_TEXT_MAX], action[32];

    if (doctor_has_word(opts, "no_milters") || names_mine(v, value, action, &why) != 1)
        return;
    doctor_fmt(fix, sizeof(fix), "add -o receive_override_options=no_milters (or -o "
             "smtpd_milters=) to %s in master.cf", v->sv->ds_name);
    doctor_add(d, "postfix.reinjection", fix, "master.cf service %s (-o content_filter=, a "
               "content filter's re-injection listener) runs this milter again on mail it "
               "has seen", v->sv->ds_name);
}

/* check_no_milters - receive_override_options=no_milters where mail comes in. */
static void check_no_milters(struct doctor *d, const struct view *v)
{
    const char *own = doctor_override(v->sv, "receive_override_options");
    const char *opts = own ? own : doctor_param(v->pf, "receive_override_options");
    char fix[DOCTOR_TEXT_MAX];

    if (!doctor_has_word(opts, "no_milters"))
        return;
    if (own)
        doctor_fmt(fix, sizeof(fix), "drop no_milters from the -o receive_override_options "
                 "of %s in master.cf", v->sv->ds_name);
    else
        doctor_fmt(fix, sizeof(fix), "drop no_milters from receive_override_options in "
                 "main.cf (set it only on re-injection listeners)");
    doctor_add(d, "postfix.no_milters", fix, "receive_override_options%s%s has no_milters: "
               "the mail of %s never reaches the milter", own ? " of " : "",
               own ? v->sv->ds_name : "", v->sv->ds_name);
}

/* check_services - every smtpd (smtpd_milters) and cleanup (non_smtpd_milters). */
static void check_services(struct doctor *d, const struct doctor_postfix *pf,
                           const struct doctor_sock *mine, const char *queue_dir)
{
    int smtpd = 0, cleanup = 0;

    for (size_t i = 0; i < pf->pf_nservices; i++) {
        const struct doctor_service *sv = &pf->pf_services[i];
        struct view v = {pf, sv, mine, NULL, queue_dir};
        char where[DOCTOR_PATH_MAX];

        if (strcmp(sv->ds_command, "smtpd") == 0) {
            smtpd++;
            v.param = "smtpd_milters";
            if (reinjection(sv)) {
                check_reinjection(d, &v);
                continue;
            }
            check_no_milters(d, &v);
        } else if (strcmp(sv->ds_command, "cleanup") == 0) {
            cleanup++;
            v.param = "non_smtpd_milters";
        } else if (strcmp(sv->ds_command, "pickup") == 0) {
            check_no_milters(d, &v);
            continue;
        } else
            continue;
        check_list(d, &v);
        if (doctor_override(sv, "milter_default_action") != NULL) {
            doctor_fmt(where, sizeof(where), "milter_default_action of master.cf service %s",
                     sv->ds_name);
            check_action(d, doctor_override(sv, "milter_default_action"), where);
        }
    }
    if (smtpd == 0 && cleanup == 0)
        doctor_add(d, "postfix.master", "check master.cf (postconf -M)", "master.cf has no "
                   "smtpd and no cleanup service");
}

/* note_mail_owner - Postfix's account, for the socket check. */
static void note_mail_owner(struct doctor *d, const struct doctor_postfix *pf)
{
    const char *owner = doctor_param(pf, "mail_owner");

    if (owner == NULL || owner[0] == '\0')
        return;
    if (doctor_account(owner, &d->dr_mta_account) < 0) {
        doctor_add(d, "postfix.mail_owner", "create it or fix mail_owner in main.cf",
                   "mail_owner %s: no such user", owner);
        return;
    }
    d->dr_mta = &d->dr_mta_account;
}

void doctor_postfix_checks(struct doctor *d)
{
    struct doctor_postfix pf;
    struct doctor_sock mine;
    const char *queue_dir;

    memset(&pf, 0, sizeof(pf));
    doctor_checked(d, "postfix");
    if (read_postfix(d, &pf) < 0) {
        doctor_postfix_free(&pf);
        return;
    }
    note_mail_owner(d, &pf);
    queue_dir = doctor_param(&pf, "queue_directory");
    if (doctor_sock_milter(d->dr_cfg->socket, &mine) == 0)
        check_services(d, &pf, &mine, queue_dir ? queue_dir : "/var/spool/postfix");
    check_action(d, doctor_param(&pf, "milter_default_action"), "milter_default_action");
    doctor_postfix_free(&pf);
}
