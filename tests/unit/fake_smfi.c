/*
 * fake_smfi.c - link-time fakes of libmilter for test_mlfi (see fake_smfi.h).
 *
 * Only the calls milter/mlfi.c makes are defined: a new smfi_* call in the
 * callbacks then fails to link here, and gets a fake with a recorded call.
 * Tests run single-threaded, so the log is a plain static array.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_smfi.h"

#define FAKE_LOG_MAX 256

struct smfi_str {
    void *priv;
    char macro_name[32];
    char macro_value[128];
    int has_macro;
};

static struct {
    struct fake_record log[FAKE_LOG_MAX];
    size_t count;
    int fail[FAKE_NCALLS];
} fake;

SMFICTX *fake_ctx_new(void)
{
    SMFICTX *ctx = calloc(1, sizeof(*ctx));

    if (ctx == NULL)
        abort();
    return ctx;
}

void fake_ctx_free(SMFICTX *ctx)
{
    free(ctx);
}

void fake_ctx_set_macro(SMFICTX *ctx, const char *name, const char *value)
{
    snprintf(ctx->macro_name, sizeof(ctx->macro_name), "%s", name);
    snprintf(ctx->macro_value, sizeof(ctx->macro_value), "%s", value);
    ctx->has_macro = 1;
}

void fake_smfi_reset(void)
{
    memset(&fake, 0, sizeof(fake));
}

void fake_smfi_fail(enum fake_call call)
{
    fake.fail[call] = 1;
}

size_t fake_smfi_count(void)
{
    return fake.count;
}

const struct fake_record *fake_smfi_get(size_t i)
{
    return i < fake.count ? &fake.log[i] : NULL;
}

size_t fake_smfi_count_of(enum fake_call call)
{
    size_t n = 0;

    for (size_t i = 0; i < fake.count; i++)
        n += fake.log[i].call == call;
    return n;
}

const char *fake_call_name(enum fake_call call)
{
    static const char *const names[] = {
        "smfi_addrcpt", "smfi_addrcpt_par", "smfi_delrcpt", "smfi_addheader",
        "smfi_setreply", "smfi_setsymlist",
    };

    return call < FAKE_NCALLS ? names[call] : "?";
}

/* record - log one call; answer MI_FAILURE if a failure was planned for it. */
static int record(enum fake_call call, const char *arg1, const char *arg2)
{
    struct fake_record *rec;
    int failed = fake.fail[call];

    fake.fail[call] = 0;
    if (fake.count == FAKE_LOG_MAX)
        abort();
    rec = &fake.log[fake.count++];
    rec->call = call;
    rec->failed = failed;
    snprintf(rec->arg1, sizeof(rec->arg1), "%s", arg1 ? arg1 : "(null)");
    snprintf(rec->arg2, sizeof(rec->arg2), "%s", arg2 ? arg2 : "(null)");
    return failed ? MI_FAILURE : MI_SUCCESS;
}

/* ---- the libmilter API, as far as mlfi.c uses it ---------------------- */

void *smfi_getpriv(SMFICTX *ctx)
{
    return ctx->priv;
}

int smfi_setpriv(SMFICTX *ctx, void *priv)
{
    ctx->priv = priv;
    return MI_SUCCESS;
}

char *smfi_getsymval(SMFICTX *ctx, char *name)
{
    if (ctx->has_macro && strcmp(name, ctx->macro_name) == 0)
        return ctx->macro_value;
    return NULL;
}

int smfi_addrcpt(SMFICTX *ctx, char *rcpt)
{
    (void) ctx;
    return record(FAKE_ADDRCPT, rcpt, NULL);
}

int smfi_addrcpt_par(SMFICTX *ctx, char *rcpt, char *args)
{
    (void) ctx;
    return record(FAKE_ADDRCPT_PAR, rcpt, args);
}

int smfi_delrcpt(SMFICTX *ctx, char *rcpt)
{
    (void) ctx;
    return record(FAKE_DELRCPT, rcpt, NULL);
}

int smfi_addheader(SMFICTX *ctx, char *name, char *value)
{
    (void) ctx;
    return record(FAKE_ADDHEADER, name, value);
}

int smfi_setsymlist(SMFICTX *ctx, int where, char *macros)
{
    char stage[16];

    (void) ctx;
    snprintf(stage, sizeof(stage), "%d", where);
    return record(FAKE_SETSYMLIST, stage, macros);
}

int smfi_setreply(SMFICTX *ctx, char *rcode, char *xcode, char *message)
{
    char text[FAKE_ARG_MAX];

    (void) ctx;
    snprintf(text, sizeof(text), "%s %s", xcode ? xcode : "", message ? message : "");
    return record(FAKE_SETREPLY, rcode, text);
}
