/*
 * ctl_doctor.c - "coexistctl doctor": the deployment checked end to end
 * (DESIGN section 12). Runs the checks of the MTAs found here (Postfix when
 * postconf and its main.cf exist or --postfix-config names an instance;
 * Sendmail when /etc/mail/sendmail.cf exists or --sendmail-cf names a .cf
 * or .mc), then the milter's socket and negotiation, the store, the trace
 * secret and the replica; prints one line per finding (what is wrong, what
 * to do), or with --format json the findings as JSON. Exit 0 only when
 * nothing is wrong, EX_CONFIG otherwise.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl.h"
#include "doctor.h"

void doctor_add(struct doctor *d, const char *check, const char *fix, const char *fmt, ...)
{
    struct doctor_finding f;
    va_list ap;

    memset(&f, 0, sizeof(f));
    snprintf(f.df_check, sizeof(f.df_check), "%s", check);
    snprintf(f.df_fix, sizeof(f.df_fix), "%s", fix);
    va_start(ap, fmt);
    vsnprintf(f.df_problem, sizeof(f.df_problem), fmt, ap);
    va_end(ap);
    for (size_t i = 0; i < d->dr_count; i++)
        if (strcmp(d->dr_findings[i].df_check, f.df_check) == 0
            && strcmp(d->dr_findings[i].df_problem, f.df_problem) == 0)
            return;
    if (d->dr_count == d->dr_alloc) {
        size_t n = d->dr_alloc ? 2 * d->dr_alloc : 8;
        struct doctor_finding *more = realloc(d->dr_findings, n * sizeof(*more));

        if (more == NULL) {
            d->dr_nomem = 1;
            return;
        }
        d->dr_findings = more;
        d->dr_alloc = n;
    }
    d->dr_findings[d->dr_count++] = f;
}

void doctor_fmt(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

void doctor_checked(struct doctor *d, const char *name)
{
    for (size_t i = 0; i < d->dr_nchecked; i++)
        if (strcmp(d->dr_checked[i], name) == 0)
            return;
    if (d->dr_nchecked < sizeof(d->dr_checked) / sizeof(d->dr_checked[0]))
        d->dr_checked[d->dr_nchecked++] = name;
}

/* in_path - whether program NAME is in $PATH (or in /usr/sbin, Postfix's home). */
static int in_path(const char *name)
{
    const char *path = getenv("PATH");
    char buf[DOCTOR_PATH_MAX];
    char *copy, *dir, *save = NULL;
    int found = 0;

    snprintf(buf, sizeof(buf), "/usr/sbin/%s", name);
    if (access(buf, X_OK) == 0)
        return 1;
    if (path == NULL || (copy = strdup(path)) == NULL)
        return 0;
    for (dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
        snprintf(buf, sizeof(buf), "%s/%s", dir, name);
        found = access(buf, X_OK) == 0;
    }
    free(copy);
    return found;
}

/* postfix_here - the Postfix checks run: an instance named, or one configured here. */
static int postfix_here(const struct doctor *d)
{
    const char *dir = getenv("MAIL_CONFIG");
    char main_cf[DOCTOR_PATH_MAX];

    if (d->dr_postfix_config != NULL)
        return 1;
    if (!in_path(d->dr_postconf))
        return 0;
    snprintf(main_cf, sizeof(main_cf), "%s/main.cf", dir ? dir : "/etc/postfix");
    return access(main_cf, F_OK) == 0;
}

/* print_text - one line per finding, then a summary. */
static void print_text(struct ctl *c, const struct doctor *d)
{
    for (size_t i = 0; i < d->dr_count; i++)
        fprintf(c->out, "[%s] %s; fix: %s\n", d->dr_findings[i].df_check,
                d->dr_findings[i].df_problem, d->dr_findings[i].df_fix);
    fprintf(c->out, "doctor: %zu problem%s", d->dr_count, d->dr_count == 1 ? "" : "s");
    for (size_t i = 0; i < d->dr_nchecked; i++)
        fprintf(c->out, "%s%s", i ? ", " : " (checked ", d->dr_checked[i]);
    fprintf(c->out, "%s\n", d->dr_nchecked ? ")" : "");
}

/* print_json - {"problems": N, "checked": [...], "findings": [{check, problem, fix}]}. */
static int print_json(struct ctl *c, const struct doctor *d)
{
    json_t *root = json_object(), *list = json_array(), *checked = json_array();
    int rc = -1;

    if (root == NULL || list == NULL || checked == NULL)
        goto out;
    for (size_t i = 0; i < d->dr_count; i++) {
        json_t *f = json_pack("{s:s, s:s, s:s}", "check", d->dr_findings[i].df_check,
                              "problem", d->dr_findings[i].df_problem,
                              "fix", d->dr_findings[i].df_fix);
        if (f == NULL || json_array_append_new(list, f) < 0)
            goto out;
    }
    for (size_t i = 0; i < d->dr_nchecked; i++)
        if (json_array_append_new(checked, json_string(d->dr_checked[i])) < 0)
            goto out;
    if (json_object_set_new(root, "problems", json_integer((json_int_t) d->dr_count)) < 0
        || json_object_set(root, "checked", checked) < 0
        || json_object_set(root, "findings", list) < 0)
        goto out;
    rc = json_dumpf(root, c->out, JSON_INDENT(2)) < 0 ? -1 : 0;
    fputc('\n', c->out);
out:
    json_decref(root);
    json_decref(list);
    json_decref(checked);
    return rc;
}

int ctl_doctor(struct ctl *c, int nargs, char **args)
{
    const char *format = c->opt_format ? c->opt_format : "text";
    struct doctor d;
    int rc;

    (void) nargs;
    (void) args;
    if (strcmp(format, "text") != 0 && strcmp(format, "json") != 0) {
        fprintf(c->err, "coexistctl: bad --format '%s' (text or json)\n", format);
        return EX_USAGE;
    }
    memset(&d, 0, sizeof(d));
    d.dr_cfg = &c->cfg;
    d.dr_db_path = c->db_path;
    d.dr_postfix_config = c->opt_postfix_config;
    d.dr_sendmail_cf = c->opt_sendmail_cf;
    d.dr_postconf = "postconf";
    if (postfix_here(&d))
        doctor_postfix_checks(&d);
    doctor_sendmail_checks(&d);
    if (d.dr_nchecked == 0)
        doctor_add(&d, "mta.none", "name the MTA's config: --postfix-config DIR or "
                   "--sendmail-cf FILE", "found neither Postfix (postconf, main.cf) nor "
                   "Sendmail (/etc/mail/sendmail.cf): nothing here is known to send mail "
                   "through the milter");
    doctor_milter_checks(&d);
    doctor_store_checks(&d);
    doctor_replica_checks(&d);
    if (d.dr_nomem) {
        free(d.dr_findings);
        fprintf(c->err, "coexistctl: out of memory\n");
        return EX_OSERR;
    }
    if (strcmp(format, "json") == 0 ? print_json(c, &d) < 0 : (print_text(c, &d), 0)) {
        free(d.dr_findings);
        fprintf(c->err, "coexistctl: out of memory\n");
        return EX_OSERR;
    }
    rc = d.dr_count == 0 ? EX_OK : EX_CONFIG;
    free(d.dr_findings);
    return rc;
}
