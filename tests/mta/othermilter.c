/*
 * othermilter.c - "another milter" beside coexist-milter in the MTA tier,
 * for what README's "What the milter cannot see" says about milter order:
 * it changes the recipients in the ways other filters do, and the tests
 * look at what coexist-milter made of the message before or after it.
 *
 *   othermilter -p unix:PATH [-R ADDR]... [-D ADDR]... [-A ADDR]...
 *     -R ADDR  reject RCPT TO:<ADDR> with 550 5.7.1 (as a policy milter does)
 *     -D ADDR  delete recipient <ADDR> at end of message (as a list or
 *              a content filter does)
 *     -A ADDR  add recipient <ADDR> at end of message
 *
 * ADDR is compared case-insensitively with RCPT's argument without <>.
 * Runs in the foreground until SIGTERM (libmilter's own handling).
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#define OM_MAX 16

struct om_list {
    char *addr[OM_MAX];
    int n;
};

static struct om_list om_reject, om_delete, om_add;

/* om_push - ADDR onto L; 0, or -1 when L is full. */
static int om_push(struct om_list *l, char *addr)
{
    if (l->n == OM_MAX)
        return -1;
    l->addr[l->n++] = addr;
    return 0;
}

/* om_listed - ARG (a RCPT argument, maybe in <>) is one of L. */
static int om_listed(const struct om_list *l, const char *arg)
{
    size_t len = strlen(arg);

    if (len >= 2 && arg[0] == '<' && arg[len - 1] == '>') {
        arg++;
        len -= 2;
    }
    for (int i = 0; i < l->n; i++)
        if (strlen(l->addr[i]) == len && strncasecmp(l->addr[i], arg, len) == 0)
            return 1;
    return 0;
}

static sfsistat om_envrcpt(SMFICTX *ctx, char **argv)
{
    if (argv != NULL && argv[0] != NULL && om_listed(&om_reject, argv[0])) {
        smfi_setreply(ctx, "550", "5.7.1", "othermilter: recipient refused");
        return SMFIS_REJECT;
    }
    return SMFIS_CONTINUE;
}

static sfsistat om_eom(SMFICTX *ctx)
{
    char with_brackets[600];

    for (int i = 0; i < om_delete.n; i++) {
        snprintf(with_brackets, sizeof(with_brackets), "<%s>", om_delete.addr[i]);
        if (smfi_delrcpt(ctx, with_brackets) != MI_SUCCESS)
            return SMFIS_TEMPFAIL;
    }
    for (int i = 0; i < om_add.n; i++) {
        snprintf(with_brackets, sizeof(with_brackets), "<%s>", om_add.addr[i]);
        if (smfi_addrcpt(ctx, with_brackets) != MI_SUCCESS)
            return SMFIS_TEMPFAIL;
    }
    return SMFIS_CONTINUE;
}

static struct smfiDesc om_desc = {
    .xxfi_name = "othermilter",
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = SMFIF_ADDRCPT | SMFIF_DELRCPT,
    .xxfi_envrcpt = om_envrcpt,
    .xxfi_eom = om_eom,
};

static int usage(void)
{
    fprintf(stderr, "usage: othermilter -p SOCKET [-R ADDR]... [-D ADDR]... [-A ADDR]...\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *sock = NULL;
    int ch, full = 0;

    while ((ch = getopt(argc, argv, "p:R:D:A:")) != -1) {
        switch (ch) {
        case 'p': sock = optarg; break;
        case 'R': full |= om_push(&om_reject, optarg); break;
        case 'D': full |= om_push(&om_delete, optarg); break;
        case 'A': full |= om_push(&om_add, optarg); break;
        default: return usage();
        }
    }
    if (sock == NULL || optind != argc || full)
        return usage();
    umask(0);
    if (smfi_setconn((char *) sock) != MI_SUCCESS || smfi_register(om_desc) != MI_SUCCESS
        || smfi_opensocket(1) != MI_SUCCESS) {
        fprintf(stderr, "othermilter: cannot listen on %s\n", sock);
        return 1;
    }
    return smfi_main() == MI_SUCCESS ? 0 : 1;
}
