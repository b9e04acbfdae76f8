/*
 * nullmilter.c - the floor for the coexist-milter benchmark: a libmilter
 * filter with the same callbacks, flags and protocol options as
 * coexist-milter (milter/mlfi.h), doing no work.
 *
 * It registers the callbacks coexist-milter registers (MAIL, RCPT, DATA,
 * header, end of message, abort, close, negotiate) and none of the others, asks
 * for the same actions (MLFI_ACTIONS), skips the same steps
 * (MLFI_SKIP_STEPS) and answers MAIL, RCPT and headers without a reply
 * (MLFI_NOREPLY_STEPS), exactly as coexist-milter's negotiate callback
 * does. Every callback "continues": SMFIS_NOREPLY for the no-reply steps
 * (their form of continue), SMFIS_CONTINUE for the rest. So the MTA or the
 * load client exchanges the same packets with both, and the difference in
 * a benchmark is coexist-milter's own work.
 *
 * With -b LEGACY it is the "minimal bcc milter" of DESIGN section 8: for
 * every recipient local@domain it adds local@LEGACY with NOTIFY=NEVER and
 * the trace header, with no lookup at all, as coexist-milter does for a
 * store where every user is an unmigrated bcc user.
 *
 * Usage: nullmilter -p unix:PATH|inet:PORT@ADDR [-b LEGACYDOMAIN] [-H HEADER]
 * Runs in the foreground until SIGTERM (libmilter's own handling).
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "mlfi.h"

#define NM_ADDR_MAX 330

static const char *nm_legacy;   /* -b: the bcc domain; NULL: do nothing */
static const char *nm_header = "X-Coexist-Milter";

/* Per connection in -b mode: the aliases of the current message. */
struct nm_msg {
    char (*aliases)[NM_ADDR_MAX + 2];
    size_t n, cap;
};

/* nm_negotiate - coexist-milter's negotiation, word for word in effect. */
static sfsistat nm_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
                             unsigned long f2, unsigned long f3,
                             unsigned long *pf0, unsigned long *pf1,
                             unsigned long *pf2, unsigned long *pf3)
{
    (void) ctx;
    (void) f2;
    (void) f3;
    if ((f0 & MLFI_ACTIONS) != MLFI_ACTIONS
        || (f1 & MLFI_NOREPLY_STEPS) != MLFI_NOREPLY_STEPS)
        return SMFIS_REJECT;
    *pf0 = MLFI_ACTIONS;
    *pf1 |= (f1 & MLFI_SKIP_STEPS) | MLFI_NOREPLY_STEPS;
    *pf2 = 0;
    *pf3 = 0;
    return SMFIS_CONTINUE;
}

/* nm_getmsg - the per-connection data, made on first use (-b only). */
static struct nm_msg *nm_getmsg(SMFICTX *ctx)
{
    struct nm_msg *m = smfi_getpriv(ctx);

    if (m == NULL && (m = calloc(1, sizeof(*m))) != NULL
        && smfi_setpriv(ctx, m) != MI_SUCCESS) {
        free(m);
        m = NULL;
    }
    return m;
}

static sfsistat nm_envfrom(SMFICTX *ctx, char **argv)
{
    struct nm_msg *m;

    (void) argv;
    if (nm_legacy != NULL && (m = nm_getmsg(ctx)) != NULL)
        m->n = 0;
    return SMFIS_NOREPLY;
}

/* nm_envrcpt - in -b mode, remember <local@LEGACY> for this recipient. */
static sfsistat nm_envrcpt(SMFICTX *ctx, char **argv)
{
    struct nm_msg *m;
    const char *a, *at;
    size_t len;

    if (nm_legacy == NULL || argv == NULL || argv[0] == NULL
        || (m = smfi_getpriv(ctx)) == NULL)
        return SMFIS_NOREPLY;
    a = argv[0] + (argv[0][0] == '<');
    if ((at = strchr(a, '@')) == NULL)
        return SMFIS_NOREPLY;
    len = (size_t) (at - a);
    if (len + strlen(nm_legacy) + 1 > NM_ADDR_MAX)
        return SMFIS_NOREPLY;
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 16;
        void *grown = realloc(m->aliases, cap * sizeof(*m->aliases));

        if (grown == NULL)
            return SMFIS_NOREPLY;
        m->aliases = grown;
        m->cap = cap;
    }
    snprintf(m->aliases[m->n++], NM_ADDR_MAX + 2, "<%.*s@%s>", (int) len, a, nm_legacy);
    return SMFIS_NOREPLY;
}

/* nm_data - coexist-milter's DATA step, always "continue" here. */
static sfsistat nm_data(SMFICTX *ctx)
{
    (void) ctx;
    return SMFIS_CONTINUE;
}

static sfsistat nm_header_cb(SMFICTX *ctx, char *name, char *value)
{
    (void) ctx;
    (void) name;
    (void) value;
    return SMFIS_NOREPLY;
}

/* nm_eom - nothing, or in -b mode the bcc of every recipient and the trace header. */
static sfsistat nm_eom(SMFICTX *ctx)
{
    static char notify_never[] = "NOTIFY=NEVER";
    struct nm_msg *m;

    if (nm_legacy == NULL || (m = smfi_getpriv(ctx)) == NULL)
        return SMFIS_CONTINUE;
    for (size_t i = 0; i < m->n; i++)
        if (smfi_addrcpt_par(ctx, m->aliases[i], notify_never) != MI_SUCCESS)
            return SMFIS_TEMPFAIL;
    if (m->n > 0 && smfi_addheader(ctx, (char *) nm_header, "bench") != MI_SUCCESS)
        return SMFIS_TEMPFAIL;
    m->n = 0;
    return SMFIS_CONTINUE;
}

static sfsistat nm_abort(SMFICTX *ctx)
{
    struct nm_msg *m = smfi_getpriv(ctx);

    if (m != NULL)
        m->n = 0;
    return SMFIS_CONTINUE;
}

static sfsistat nm_close(SMFICTX *ctx)
{
    struct nm_msg *m = smfi_getpriv(ctx);

    if (m != NULL) {
        free(m->aliases);
        free(m);
        smfi_setpriv(ctx, NULL);
    }
    return SMFIS_CONTINUE;
}

static struct smfiDesc nm_desc = {
    .xxfi_name = "nullmilter",
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = MLFI_ACTIONS,
    .xxfi_envfrom = nm_envfrom,
    .xxfi_envrcpt = nm_envrcpt,
    .xxfi_header = nm_header_cb,
    .xxfi_eom = nm_eom,
    .xxfi_data = nm_data,
    .xxfi_abort = nm_abort,
    .xxfi_close = nm_close,
    .xxfi_negotiate = nm_negotiate,
};

int main(int argc, char **argv)
{
    const char *sock = NULL;
    int ch;

    while ((ch = getopt(argc, argv, "p:b:H:")) != -1) {
        switch (ch) {
        case 'p': sock = optarg; break;
        case 'b': nm_legacy = optarg; break;
        case 'H': nm_header = optarg; break;
        default:
            fprintf(stderr, "usage: nullmilter -p SOCKET [-b LEGACYDOMAIN] [-H HEADER]\n");
            return 2;
        }
    }
    if (sock == NULL || optind != argc) {
        fprintf(stderr, "usage: nullmilter -p SOCKET [-b LEGACYDOMAIN] [-H HEADER]\n");
        return 2;
    }
    umask(0);
    if (smfi_setconn((char *) sock) != MI_SUCCESS || smfi_register(nm_desc) != MI_SUCCESS
        || smfi_opensocket(1) != MI_SUCCESS) {
        fprintf(stderr, "nullmilter: cannot listen on %s\n", sock);
        return 1;
    }
    return smfi_main() == MI_SUCCESS ? 0 : 1;
}
