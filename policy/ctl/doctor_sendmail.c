/*
 * doctor_sendmail.c - does Sendmail send its mail through this milter, and
 * tempfail when it is down? In a sendmail.cf: an "X" line whose S= is the
 * milter's socket, with T among its F= flags (no flag: mail passes
 * unfiltered; R: it is rejected), named in "O InputMailFilters". In an .mc:
 * the INPUT_MAIL_FILTER line, which makes both.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "doctor.h"

#define SENDMAIL_CF_DEFAULT "/etc/mail/sendmail.cf"

/* copy_until - S up to one of STOP (white space around trimmed) into OUT. */
static const char *copy_until(const char *s, const char *stop, char *out, size_t len)
{
    size_t n = strcspn(s, stop);
    size_t b = 0, e = n;

    while (b < e && isspace((unsigned char) s[b]))
        b++;
    while (e > b && isspace((unsigned char) s[e - 1]))
        e--;
    if (e - b >= len)
        e = b + len - 1;
    memcpy(out, s + b, e - b);
    out[e - b] = '\0';
    return s + n;
}

/* equates - "S=..., F=..., T=..." from P: the S= and F= values. */
static void equates(const char *p, char *socket, size_t socketlen, char *flags,
                    size_t flagslen)
{
    char item[DOCTOR_PATH_MAX];

    while (*p != '\0' && *p != '\'') {
        p = copy_until(p, ",'", item, sizeof(item));
        if (item[0] == 'S' && item[1] == '=')
            copy_until(item + 2, "", socket, socketlen);
        else if (item[0] == 'F' && item[1] == '=')
            copy_until(item + 2, "", flags, flagslen);
        if (*p == ',')
            p++;
    }
}

int doctor_sendmail_line(const char *line, char *name, size_t namelen, char *socket,
                         size_t socketlen, char *flags, size_t flagslen)
{
    const char *p;

    socket[0] = flags[0] = name[0] = '\0';
    if (line[0] == 'X' && line[1] != '\0' && !isspace((unsigned char) line[1])) {
        p = copy_until(line + 1, ",\n", name, namelen);
        if (*p == ',')
            equates(p + 1, socket, socketlen, flags, flagslen);
        return 1;
    }
    p = line + strspn(line, " \t");
    if (strncmp(p, "INPUT_MAIL_FILTER(", 18) != 0 && strncmp(p, "MAIL_FILTER(", 12) != 0)
        return 0;
    p = strchr(p, '(') + 1;
    p += strspn(p, " \t`");
    p = copy_until(p, "',", name, namelen);
    p += strspn(p, "'");
    if (*p != ',')
        return 1;
    p++;
    p += strspn(p, " \t`");
    equates(p, socket, socketlen, flags, flagslen);
    return 1;
}

/* The option that lists the milters Sendmail calls, in a .cf. */
#define INPUT_FILTERS "O InputMailFilters="

/* Scan state of one file. */
struct sm_scan {
    int is_mc;
    int found;                  /* a milter line for our socket */
    char name[128], flags[64];
    char input_line[512];       /* the INPUT_FILTERS line, or "" */
};

/* scan_line - one line of the file into S. */
static void scan_line(struct sm_scan *s, const struct doctor_sock *mine, const char *line)
{
    char name[128], socket[DOCTOR_PATH_MAX], flags[64];
    struct doctor_sock theirs;

    if (!s->is_mc && strncmp(line, INPUT_FILTERS, strlen(INPUT_FILTERS)) == 0) {
        copy_until(line, "\n", s->input_line, sizeof(s->input_line));
        return;
    }
    if (s->found || !doctor_sendmail_line(line, name, sizeof(name), socket, sizeof(socket),
                                          flags, sizeof(flags)))
        return;
    if (doctor_sock_sendmail(socket, &theirs) < 0 || !doctor_sock_same(mine, &theirs))
        return;
    s->found = 1;
    doctor_fmt(s->name, sizeof(s->name), "%s", name);
    doctor_fmt(s->flags, sizeof(s->flags), "%s", flags);
}

/* judge - what S says about the file PATH. */
static void judge(struct doctor *d, const struct sm_scan *s, const char *path)
{
    char fix[DOCTOR_TEXT_MAX];

    if (!s->found) {
        doctor_fmt(fix, sizeof(fix), "add INPUT_MAIL_FILTER(`coexist', `S=%s, F=T, "
                 "T=C:5s;S:10s;R:10s;E:30s') to the .mc and rebuild sendmail.cf",
                 d->dr_cfg->socket);
        doctor_add(d, "sendmail.milter", fix, "%s has no milter with this milter's socket "
                   "%s: Sendmail does not route its mail", path, d->dr_cfg->socket);
        return;
    }
    if (strchr(s->flags, 'T') == NULL) {
        doctor_fmt(fix, sizeof(fix), "give %s F=T in its INPUT_MAIL_FILTER line and rebuild "
                 "sendmail.cf", s->name);
        doctor_add(d, "sendmail.flags", fix, "%s: milter %s has %s%s: when the milter is "
                   "down, mail %s", path, s->name, s->flags[0] ? "F=" : "no F= flag",
                   s->flags, strchr(s->flags, 'R') ? "is rejected (5xx)"
                   : "passes unfiltered, without the legacy copies");
    }
    if (!s->is_mc && (s->input_line[0] == '\0'
                      || !doctor_has_word(s->input_line + strlen(INPUT_FILTERS), s->name))) {
        doctor_fmt(fix, sizeof(fix), "use INPUT_MAIL_FILTER (not MAIL_FILTER) for %s, or add "
                 "it to confINPUT_MAIL_FILTERS, and rebuild sendmail.cf", s->name);
        doctor_add(d, "sendmail.input_filters", fix, "%s: milter %s is defined but not in "
                   "InputMailFilters: Sendmail never calls it", path, s->name);
    }
}

void doctor_sendmail_checks(struct doctor *d)
{
    const char *path = d->dr_sendmail_cf ? d->dr_sendmail_cf : SENDMAIL_CF_DEFAULT;
    struct doctor_sock mine;
    struct sm_scan s;
    char line[8192];
    FILE *fp;
    size_t n = strlen(path);

    if (d->dr_sendmail_cf == NULL && access(path, F_OK) < 0)
        return;     /* no Sendmail here */
    doctor_checked(d, "sendmail");
    if (doctor_sock_milter(d->dr_cfg->socket, &mine) < 0)
        return;     /* doctor_milter_checks says so */
    if ((fp = fopen(path, "r")) == NULL) {
        doctor_add(d, "sendmail.cf", "name Sendmail's config with --sendmail-cf FILE",
                   "%s: %s", path, strerror(errno));
        return;
    }
    memset(&s, 0, sizeof(s));
    s.is_mc = n > 3 && strcmp(path + n - 3, ".mc") == 0;
    while (fgets(line, sizeof(line), fp) != NULL)
        scan_line(&s, &mine, line);
    fclose(fp);
    judge(d, &s, path);
}
