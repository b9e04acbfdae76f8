/*
 * fake_smfi.h - link-time fakes of the libmilter calls the callbacks make.
 *
 * test_mlfi links milter/mlfi.c against fake_smfi.c instead of libmilter.
 * Each fake records its call (name and arguments, copied) in a log the test
 * inspects; a chosen call can be made to fail, to test the error paths.
 */
#ifndef COEXIST_FAKE_SMFI_H
#define COEXIST_FAKE_SMFI_H

#include <stddef.h>

#include <libmilter/mfapi.h>

#define FAKE_ARG_MAX 1100

enum fake_call {
    FAKE_ADDRCPT,
    FAKE_ADDRCPT_PAR,
    FAKE_DELRCPT,
    FAKE_ADDHEADER,
    FAKE_SETREPLY,
    FAKE_SETSYMLIST,            /* arg1: the stage number, arg2: the macros */
    FAKE_NCALLS
};

struct fake_record {
    enum fake_call call;
    int failed;                 /* the fake answered MI_FAILURE */
    char arg1[FAKE_ARG_MAX];    /* recipient, header name, reply code */
    char arg2[FAKE_ARG_MAX];    /* ESMTP args ("(null)" for NULL), value, text */
};

/* fake_ctx_new - a context with no private data and no macros. */
SMFICTX *fake_ctx_new(void);
void fake_ctx_free(SMFICTX *ctx);

/* fake_ctx_set_macro - what smfi_getsymval(ctx, NAME) returns (one macro). */
void fake_ctx_set_macro(SMFICTX *ctx, const char *name, const char *value);

/* fake_smfi_reset - forget recorded calls and planned failures. */
void fake_smfi_reset(void);

/* fake_smfi_fail - the next call of kind CALL answers MI_FAILURE. */
void fake_smfi_fail(enum fake_call call);

size_t fake_smfi_count(void);
const struct fake_record *fake_smfi_get(size_t i);

/* fake_smfi_count_of - how many recorded calls were of kind CALL. */
size_t fake_smfi_count_of(enum fake_call call);

const char *fake_call_name(enum fake_call call);

#endif
