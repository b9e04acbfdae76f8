/*
 * test_mlfi.c - the libmilter callbacks, driven directly, against a real
 * temporary TDB store and fake smfi_* calls (fake_smfi.c).
 *
 * Each test plays an MTA: MAIL, RCPT, header and end of message through
 * mlfi_desc, then checks what the milter asked the MTA to change (the
 * recorded smfi_* calls), what it answered, and the log lines it wrote
 * (the log goes to stderr in tests, captured into a file).
 */
#include <config.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "dbhandle.h"
#include "fake_smfi.h"
#include "mlfi.h"
#include "policy/config.h"
#include "stats.h"
#include "store.h"
#include "trace.h"

#define INSTANCE "test-instance"
#define TRACE "X-Coexist-Milter"

struct fixture {
    char dir[64];
    char path[128];             /* the store */
    char logpath[128];          /* captured stderr */
    struct config cfg;
    struct dbhandle *dbh;
    SMFICTX *ctx;
    struct trace_secret secret; /* given to the milter by use_secret() */
};

/* ---- the store ------------------------------------------------------------ */

/* put - one record into the store at PATH (which nothing else has open). */
static void put(const char *path, const char *key, const char *alias,
                enum record_mode mode, enum record_state state)
{
    char err[STORE_ERR_MAX];
    struct record rec;
    struct store *st = store_open(path, STORE_OPEN_EXISTING, 0, err);

    if (st == NULL)
        fail_msg("store_open %s: %s", path, err);
    memset(&rec, 0, sizeof(rec));
    rec.kind = key[0] == '@' ? RECORD_DOMAIN : RECORD_USER;
    rec.state = state;
    rec.mode = mode;
    snprintf(rec.alias, sizeof(rec.alias), "%s", alias);
    if (store_put(st, key, &rec, "test_mlfi") < 0)
        fail_msg("store_put %s: %s", key, store_error(st));
    store_close(st);
}

/* create_store - a new store at PATH with the users every test knows. */
static void create_store(const char *path)
{
    char err[STORE_ERR_MAX];
    struct store *st = store_open(path, STORE_CREATE, 0, err);

    if (st == NULL)
        fail_msg("store_open create %s: %s", path, err);
    store_close(st);
    put(path, "adam.barr@corp.example", "adam@pop.example", MODE_BCC, STATE_UNMIGRATED);
    put(path, "bob.smith@corp.example", "bob@pop.example", MODE_REWRITE, STATE_UNMIGRATED);
    put(path, "carol@corp.example", "carol@pop.example", MODE_BCC, STATE_MIGRATED);
    put(path, "@domain.example", "legacy.example", MODE_BCC, STATE_UNMIGRATED);
}

/*
 * put_while_open - change a record while the milter holds the store open,
 * as coexistctl does: from another process (a process may open a tdb file
 * only once, so the child first drops its copy of the milter's handle).
 */
static void put_while_open(struct fixture *f, const char *key, const char *alias,
                           enum record_mode mode, enum record_state state)
{
    int status;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        dbh_close(f->dbh);
        put(f->path, key, alias, mode, state);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* ---- fixture -------------------------------------------------------------- */

/* stderr while a test captures the log; restored by teardown if a test failed. */
static int saved_stderr = -1;

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_mlfi.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/state.tdb", f->dir);
    snprintf(f->logpath, sizeof(f->logpath), "%s/log", f->dir);
    create_store(f->path);
    config_defaults(&f->cfg);
    snprintf(f->cfg.state_db, sizeof(f->cfg.state_db), "%s", f->path);
    snprintf(f->cfg.instance, sizeof(f->cfg.instance), INSTANCE);
    snprintf(f->cfg.trace_header, sizeof(f->cfg.trace_header), TRACE);
    f->cfg.on_db_error = ON_DB_ERROR_TEMPFAIL;
    f->cfg.dry_run = 0;
    f->dbh = dbh_new(f->path);
    assert_non_null(f->dbh);
    mlfi_init(&f->cfg, f->dbh);
    /* The guard of old unless a test gives a secret (use_secret). */
    mlfi_set_secret(NULL);
    f->ctx = fake_ctx_new();
    fake_ctx_set_macro(f->ctx, "i", "QID1");
    fake_smfi_reset();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    if (saved_stderr >= 0) {
        dup2(saved_stderr, STDERR_FILENO);
        close(saved_stderr);
        saved_stderr = -1;
    }
    if (mlfi_desc.xxfi_close(f->ctx) != SMFIS_CONTINUE)
        return -1;
    fake_ctx_free(f->ctx);
    dbh_free(f->dbh);
    unlink(f->path);
    unlink(f->logpath);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- playing the MTA ------------------------------------------------------ */

static void mail(struct fixture *f)
{
    char *argv[] = {"<sender@example.org>", NULL};

    assert_int_equal(mlfi_desc.xxfi_envfrom(f->ctx, argv), SMFIS_NOREPLY);
}

/* rcpt - RCPT TO:RAW with up to one ESMTP argument (NULL for none). */
static void rcpt(struct fixture *f, const char *raw, const char *arg)
{
    char *argv[] = {(char *) raw, (char *) arg, NULL};
    sfsistat rc = mlfi_desc.xxfi_envrcpt(f->ctx, argv);

    /* Never ACCEPT: that would skip end of message for the whole message. */
    assert_int_equal(rc, SMFIS_NOREPLY);
}

static void header(struct fixture *f, const char *name, const char *value)
{
    assert_int_equal(mlfi_desc.xxfi_header(f->ctx, (char *) name, (char *) value),
                     SMFIS_NOREPLY);
}

static sfsistat eom(struct fixture *f)
{
    return mlfi_desc.xxfi_eom(f->ctx);
}

static sfsistat data(struct fixture *f)
{
    return mlfi_desc.xxfi_data(f->ctx);
}

/* message - MAIL, one RCPT, a Subject header, end of message. */
static sfsistat message(struct fixture *f, const char *raw, const char *arg)
{
    mail(f);
    rcpt(f, raw, arg);
    header(f, "Subject", "hello");
    return eom(f);
}

/* ---- checking what the milter asked for --------------------------------- */

/* expect_call - call I was CALL(ARG1, ARG2); ARG2 NULL: not checked. */
static void expect_call(size_t i, enum fake_call call, const char *arg1,
                        const char *arg2)
{
    const struct fake_record *r = fake_smfi_get(i);

    if (r == NULL)
        fail_msg("call %zu: got none, want %s(%s, %s)", i, fake_call_name(call),
                 arg1, arg2 ? arg2 : "*");
    if (r->call != call || strcmp(r->arg1, arg1) != 0
        || (arg2 != NULL && strcmp(r->arg2, arg2) != 0))
        fail_msg("call %zu: got %s(%s, %s), want %s(%s, %s)", i,
                 fake_call_name(r->call), r->arg1, r->arg2, fake_call_name(call),
                 arg1, arg2 ? arg2 : "*");
}

static void expect_ncalls(size_t want)
{
    size_t got = fake_smfi_count();

    if (got != want) {
        for (size_t i = 0; i < got; i++)
            print_message("  call %zu: %s(%s, %s)\n", i,
                          fake_call_name(fake_smfi_get(i)->call),
                          fake_smfi_get(i)->arg1, fake_smfi_get(i)->arg2);
        fail_msg("got %zu smfi calls, want %zu", got, want);
    }
}

static void expect_trace_header(size_t i)
{
    expect_call(i, FAKE_ADDHEADER, TRACE, INSTANCE);
}

static void expect_tempfail_reply(size_t i)
{
    expect_call(i, FAKE_SETREPLY, "451", NULL);
    if (strncmp(fake_smfi_get(i)->arg2, "4.3.0 ", 6) != 0)
        fail_msg("reply: got '%s', want '4.3.0 ...'", fake_smfi_get(i)->arg2);
}

/* ---- capturing the log ---------------------------------------------------- */

static void capture_start(struct fixture *f)
{
    FILE *fp;

    fflush(stderr);
    saved_stderr = dup(STDERR_FILENO);
    assert_true(saved_stderr >= 0);
    assert_non_null(fp = fopen(f->logpath, "w"));
    assert_true(dup2(fileno(fp), STDERR_FILENO) >= 0);
    fclose(fp);
}

/* capture_stop - the captured text (static buffer); echoed for the reader. */
static const char *capture_stop(struct fixture *f)
{
    static char text[8192];
    FILE *fp;
    size_t n;

    fflush(stderr);
    assert_true(dup2(saved_stderr, STDERR_FILENO) >= 0);
    close(saved_stderr);
    saved_stderr = -1;
    assert_non_null(fp = fopen(f->logpath, "r"));
    n = fread(text, 1, sizeof(text) - 1, fp);
    text[n] = '\0';
    fclose(fp);
    fputs(text, stderr);
    return text;
}

static void expect_log(const char *log, const char *line)
{
    if (strstr(log, line) == NULL)
        fail_msg("log: got '%s', want a line containing '%s'", log, line);
}

/* ---- the cases ------------------------------------------------------------ */

static void test_negotiate(void **state)
{
    const unsigned long all_actions = 0x1ff;
    const unsigned long offered = SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL
        | SMFIP_NORCPT | SMFIP_NOBODY | SMFIP_NOHDRS | SMFIP_NOEOH | SMFIP_NR_HDR
        | SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_SKIP | SMFIP_NR_MAIL | SMFIP_NR_RCPT;
    unsigned long pf0 = all_actions, pf1 = SMFIP_SKIP, pf2 = 7, pf3 = 7;
    struct fixture *f = *state;

    assert_int_equal(mlfi_desc.xxfi_negotiate(f->ctx, all_actions, offered, 0, 0,
                                              &pf0, &pf1, &pf2, &pf3),
                     SMFIS_CONTINUE);
    assert_int_equal(pf0, SMFIF_ADDRCPT | SMFIF_ADDRCPT_PAR | SMFIF_DELRCPT
                     | SMFIF_ADDHDRS | SMFIF_SETSYMLIST);
    /* The MTA's resolved recipient is asked for at RCPT. */
    assert_int_equal(fake_smfi_count_of(FAKE_SETSYMLIST), 1);
    expect_call(0, FAKE_SETSYMLIST, "3", "{rcpt_addr}");  /* SMFIM_ENVRCPT */
    /* What libmilter pre-filled stays; the body and other steps are skipped. */
    assert_true(pf1 & SMFIP_SKIP);
    assert_true(pf1 & SMFIP_NOBODY);
    assert_true(pf1 & SMFIP_NOHELO);
    assert_true(pf1 & SMFIP_NOUNKNOWN);
    assert_true(pf1 & SMFIP_NR_RCPT);
    /* Steps the milter needs are not skipped: DATA is where mail nobody
     * manages is accepted, without headers and body. */
    assert_false(pf1 & (SMFIP_NOMAIL | SMFIP_NORCPT | SMFIP_NOHDRS | SMFIP_NODATA));
    assert_int_equal(pf2, 0);
    assert_int_equal(pf3, 0);

    /* A "skip" flag the MTA does not offer is not asked for. */
    pf1 = 0;
    assert_int_equal(mlfi_desc.xxfi_negotiate(f->ctx, all_actions,
                                              offered & ~SMFIP_NOBODY, 0, 0,
                                              &pf0, &pf1, &pf2, &pf3),
                     SMFIS_CONTINUE);
    assert_false(pf1 & SMFIP_NOBODY);

    /* An MTA that cannot delete recipients is refused (it then tempfails). */
    assert_int_equal(mlfi_desc.xxfi_negotiate(f->ctx, all_actions & ~SMFIF_DELRCPT,
                                              offered, 0, 0, &pf0, &pf1, &pf2, &pf3),
                     SMFIS_REJECT);
}

static void test_bcc_adds_alias_with_notify_never(void **state)
{
    struct fixture *f = *state;
    unsigned long bcc = stats_get(STATS_BCC);
    const char *log;

    capture_start(f);
    assert_int_equal(message(f, "<Adam.Barr@Corp.Example>", NULL), SMFIS_CONTINUE);
    log = capture_stop(f);
    expect_ncalls(2);
    expect_call(0, FAKE_ADDRCPT_PAR, "<adam@pop.example>", "NOTIFY=NEVER");
    expect_trace_header(1);
    assert_int_equal(fake_smfi_count_of(FAKE_DELRCPT), 0);
    expect_log(log, "QID1: bcc rcpt=<adam.barr@corp.example> "
               "alias=<adam@pop.example> rule=user\n");
    assert_int_equal(stats_get(STATS_BCC), bcc + 1);
}

static void test_rewrite_adds_then_deletes_raw(void **state)
{
    struct fixture *f = *state;
    const char *raw = "<Bob.Smith+news@corp.example>";
    const char *log;

    capture_start(f);
    assert_int_equal(message(f, raw, "NOTIFY=SUCCESS,FAILURE"), SMFIS_CONTINUE);
    log = capture_stop(f);
    expect_ncalls(3);
    /* The unmatched extension goes with the rewrite, as virtual(5) does it. */
    expect_call(0, FAKE_ADDRCPT_PAR, "<bob+news@pop.example>", NULL);
    /* The original's NOTIFY is kept and ORCPT names what the sender typed. */
    assert_non_null(strstr(fake_smfi_get(0)->arg2, "NOTIFY=SUCCESS,FAILURE"));
    assert_non_null(strstr(fake_smfi_get(0)->arg2, "ORCPT=rfc822;"));
    /* Deleted by its raw form: Postfix compares case-sensitively. */
    expect_call(1, FAKE_DELRCPT, raw, NULL);
    expect_trace_header(2);
    expect_log(log, "QID1: rewrite rcpt=<bob.smith+news@corp.example> "
               "alias=<bob+news@pop.example> rule=user\n");
}

/*
 * test_rcpt_addr_macro - the address the MTA resolved ({rcpt_addr} at RCPT)
 * is routed; the raw argv[0] is what the delete names. Postfix resolves
 * "<bob.smith%corp.example@mx.local>" to bob.smith@corp.example itself.
 */
static void test_rcpt_addr_macro(void **state)
{
    struct fixture *f = *state;
    const char *raw = "<bob.smith%corp.example@mx.local>";
    const char *log;

    capture_start(f);
    mail(f);
    fake_ctx_set_macro(f->ctx, "{rcpt_addr}", "bob.smith@corp.example");
    rcpt(f, raw, NULL);
    fake_ctx_set_macro(f->ctx, "i", "QID1");
    header(f, "Subject", "hello");
    assert_int_equal(eom(f), SMFIS_CONTINUE);
    log = capture_stop(f);
    expect_ncalls(3);
    expect_call(0, FAKE_ADDRCPT_PAR, "<bob@pop.example>", NULL);
    expect_call(1, FAKE_DELRCPT, raw, NULL);
    expect_log(log, "QID1: rewrite rcpt=<bob.smith@corp.example> alias=<bob@pop.example>");
}

/* test_unresolved_logged - a recipient nobody could resolve is logged, not skipped silently. */
static void test_unresolved_logged(void **state)
{
    struct fixture *f = *state;
    const char *log;

    capture_start(f);
    assert_int_equal(message(f, "<\"bob.smith@corp.example\"@mx.local>", NULL),
                     SMFIS_CONTINUE);
    log = capture_stop(f);
    expect_ncalls(0);
    expect_log(log, "QID1: unresolved rcpt=<\"bob.smith@corp.example\"@mx.local>: "
               "invalid character in local part; left alone\n");
}

static void test_domain_rule(void **state)
{
    struct fixture *f = *state;
    const char *log;

    capture_start(f);
    assert_int_equal(message(f, "<dave@domain.example>", NULL), SMFIS_CONTINUE);
    log = capture_stop(f);
    expect_ncalls(2);
    expect_call(0, FAKE_ADDRCPT_PAR, "<dave@legacy.example>", "NOTIFY=NEVER");
    expect_trace_header(1);
    expect_log(log, "QID1: bcc rcpt=<dave@domain.example> "
               "alias=<dave@legacy.example> rule=domain\n");
}

static void test_unknown_and_migrated_left_alone(void **state)
{
    struct fixture *f = *state;

    mail(f);
    rcpt(f, "<nobody@elsewhere.example>", NULL);
    rcpt(f, "<carol@corp.example>", NULL);
    rcpt(f, "not an address", NULL);
    assert_int_equal(eom(f), SMFIS_CONTINUE);
    expect_ncalls(0);
}

/*
 * Only recipients an action names get a log line: not the migrated or the
 * unknown one, not a bcc user whose alias is itself a recipient. (The routes
 * logged come from the decision itself, not from a second lookup.)
 */
static void test_log_names_only_routed(void **state)
{
    struct fixture *f = *state;
    const char *log;

    capture_start(f);
    mail(f);
    rcpt(f, "<adam.barr@corp.example>", NULL);
    rcpt(f, "<adam@pop.example>", NULL);
    rcpt(f, "<carol@corp.example>", NULL);
    rcpt(f, "<nobody@elsewhere.example>", NULL);
    rcpt(f, "<dave@domain.example>", NULL);
    assert_int_equal(eom(f), SMFIS_CONTINUE);
    log = capture_stop(f);
    expect_ncalls(2);
    expect_call(0, FAKE_ADDRCPT_PAR, "<dave@legacy.example>", "NOTIFY=NEVER");
    expect_trace_header(1);
    expect_log(log, "QID1: bcc rcpt=<dave@domain.example> "
               "alias=<dave@legacy.example> rule=domain\n");
    if (strstr(log, "adam") != NULL || strstr(log, "carol") != NULL
        || strstr(log, "nobody") != NULL)
        fail_msg("log: got '%s', want only dave's line", log);
}

static void test_several_recipients_one_alias(void **state)
{
    struct fixture *f = *state;

    mail(f);
    rcpt(f, "<adam.barr@corp.example>", NULL);
    rcpt(f, "<adam.barr+tag@corp.example>", NULL);
    rcpt(f, "<someone@elsewhere.example>", NULL);
    assert_int_equal(eom(f), SMFIS_CONTINUE);
    expect_ncalls(2);
    expect_call(0, FAKE_ADDRCPT_PAR, "<adam@pop.example>", "NOTIFY=NEVER");
    expect_trace_header(1);
}

static void test_two_messages_are_independent(void **state)
{
    struct fixture *f = *state;
    unsigned long messages = stats_get(STATS_MESSAGES);

    assert_int_equal(message(f, "<adam.barr@corp.example>", NULL), SMFIS_CONTINUE);
    expect_ncalls(2);
    fake_smfi_reset();
    /* A leftover adam.barr would be routed again here. */
    assert_int_equal(message(f, "<nobody@elsewhere.example>", NULL), SMFIS_CONTINUE);
    expect_ncalls(0);
    assert_int_equal(stats_get(STATS_MESSAGES), messages + 2);
}

static void test_mail_resets(void **state)
{
    struct fixture *f = *state;

    /* RSET after RCPT: no end of message, no abort, only a new MAIL. */
    mail(f);
    rcpt(f, "<adam.barr@corp.example>", NULL);
    mail(f);
    rcpt(f, "<nobody@elsewhere.example>", NULL);
    assert_int_equal(eom(f), SMFIS_CONTINUE);
    expect_ncalls(0);
}

static void test_eom_resets(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(message(f, "<adam.barr@corp.example>", NULL), SMFIS_CONTINUE);
    fake_smfi_reset();
    /* No MAIL this time: only the reset at end of message can have cleared. */
    rcpt(f, "<nobody@elsewhere.example>", NULL);
    assert_int_equal(eom(f), SMFIS_CONTINUE);
    expect_ncalls(0);
}

static void test_abort_resets(void **state)
{
    struct fixture *f = *state;

    mail(f);
    rcpt(f, "<adam.barr@corp.example>", NULL);
    assert_int_equal(mlfi_desc.xxfi_abort(f->ctx), SMFIS_CONTINUE);
    /* No MAIL this time: only the reset at abort can have cleared. */
    rcpt(f, "<nobody@elsewhere.example>", NULL);
    assert_int_equal(eom(f), SMFIS_CONTINUE);
    expect_ncalls(0);
}

static void test_close_before_connect(void **state)
{
    struct fixture *f = *state;
    SMFICTX *ctx = fake_ctx_new();

    /* A connection that ended before anything: no private data at all. */
    assert_int_equal(mlfi_desc.xxfi_close(ctx), SMFIS_CONTINUE);
    assert_null(smfi_getpriv(ctx));
    assert_int_equal(mlfi_desc.xxfi_abort(ctx), SMFIS_CONTINUE);
    fake_ctx_free(ctx);
    /* The fixture's context still works after that. */
    assert_int_equal(message(f, "<adam.barr@corp.example>", NULL), SMFIS_CONTINUE);
    expect_ncalls(2);
}

static void test_close_with_null_priv(void **state)
{
    struct fixture *f = *state;

    mail(f);
    rcpt(f, "<adam.barr@corp.example>", NULL);
    assert_non_null(smfi_getpriv(f->ctx));
    /* Closed mid-message: everything freed (ASan checks), private data gone. */
    assert_int_equal(mlfi_desc.xxfi_close(f->ctx), SMFIS_CONTINUE);
    assert_null(smfi_getpriv(f->ctx));
    /* A second close (libmilter after a new-connection quit) finds NULL. */
    assert_int_equal(mlfi_desc.xxfi_close(f->ctx), SMFIS_CONTINUE);
    expect_ncalls(0);
}

static void test_addrcpt_failure_tempfails(void **state)
{
    struct fixture *f = *state;
    unsigned long tempfails = stats_get(STATS_TEMPFAILS);
    const char *log;

    fake_smfi_fail(FAKE_ADDRCPT_PAR);
    capture_start(f);
    assert_int_equal(message(f, "<bob.smith@corp.example>", NULL), SMFIS_TEMPFAIL);
    log = capture_stop(f);
    /* The failed add, then the reply: no delete without its replacement. */
    expect_ncalls(2);
    expect_call(0, FAKE_ADDRCPT_PAR, "<bob@pop.example>", NULL);
    assert_true(fake_smfi_get(0)->failed);
    expect_tempfail_reply(1);
    expect_log(log, "QID1: error: smfi_addrcpt_par <bob@pop.example> failed; "
               "answering tempfail\n");
    assert_int_equal(stats_get(STATS_TEMPFAILS), tempfails + 1);
}

static void test_delrcpt_failure_tempfails(void **state)
{
    struct fixture *f = *state;

    fake_smfi_fail(FAKE_DELRCPT);
    assert_int_equal(message(f, "<bob.smith@corp.example>", NULL), SMFIS_TEMPFAIL);
    expect_ncalls(3);
    expect_call(1, FAKE_DELRCPT, "<bob.smith@corp.example>", NULL);
    expect_tempfail_reply(2);
}

static void test_addheader_failure_tempfails(void **state)
{
    struct fixture *f = *state;

    fake_smfi_fail(FAKE_ADDHEADER);
    assert_int_equal(message(f, "<adam.barr@corp.example>", NULL), SMFIS_TEMPFAIL);
    expect_ncalls(3);
    expect_trace_header(1);
    expect_tempfail_reply(2);
}

static void test_missing_store_tempfails(void **state)
{
    struct fixture *f = *state;
    const char *log;

    assert_int_equal(unlink(f->path), 0);
    capture_start(f);
    assert_int_equal(message(f, "<adam.barr@corp.example>", NULL), SMFIS_TEMPFAIL);
    log = capture_stop(f);
    expect_ncalls(1);
    expect_tempfail_reply(0);
    expect_log(log, "QID1: error: state_db unavailable: ");
    expect_log(log, "; answering tempfail\n");
}

static void test_missing_store_accept(void **state)
{
    struct fixture *f = *state;
    const char *log;

    f->cfg.on_db_error = ON_DB_ERROR_ACCEPT;
    assert_int_equal(unlink(f->path), 0);
    capture_start(f);
    assert_int_equal(message(f, "<adam.barr@corp.example>", NULL), SMFIS_CONTINUE);
    log = capture_stop(f);
    expect_ncalls(0);
    expect_log(log, "; accepting unchanged\n");
}

static void test_store_appears_without_restart(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(unlink(f->path), 0);
    assert_int_equal(message(f, "<adam.barr@corp.example>", NULL), SMFIS_TEMPFAIL);
    fake_smfi_reset();
    create_store(f->path);
    assert_int_equal(message(f, "<adam.barr@corp.example>", NULL), SMFIS_CONTINUE);
    expect_ncalls(2);
    expect_call(0, FAKE_ADDRCPT_PAR, "<adam@pop.example>", "NOTIFY=NEVER");
}

static void test_store_deleted_while_open(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(message(f, "<adam.barr@corp.example>", NULL), SMFIS_CONTINUE);
    fake_smfi_reset();
    assert_int_equal(unlink(f->path), 0);
    /* The open handle would still answer: the milter must notice the unlink. */
    assert_int_equal(message(f, "<adam.barr@corp.example>", NULL), SMFIS_TEMPFAIL);
    expect_ncalls(1);
    expect_tempfail_reply(0);
}

static void test_store_replaced_by_rename(void **state)
{
    struct fixture *f = *state;
    char fresh[160];

    assert_int_equal(message(f, "<adam.barr@corp.example>", NULL), SMFIS_CONTINUE);
    fake_smfi_reset();
    snprintf(fresh, sizeof(fresh), "%s.new", f->path);
    create_store(fresh);
    put(fresh, "adam.barr@corp.example", "adam@pop.example", MODE_REWRITE,
        STATE_UNMIGRATED);
    assert_int_equal(rename(fresh, f->path), 0);
    assert_int_equal(message(f, "<adam.barr@corp.example>", NULL), SMFIS_CONTINUE);
    expect_ncalls(3);
    expect_call(1, FAKE_DELRCPT, "<adam.barr@corp.example>", NULL);
}

static void test_state_flip_between_messages(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(message(f, "<adam.barr@corp.example>", NULL), SMFIS_CONTINUE);
    expect_ncalls(2);
    fake_smfi_reset();
    put_while_open(f, "adam.barr@corp.example", "adam@pop.example", MODE_BCC,
                   STATE_MIGRATED);
    assert_int_equal(message(f, "<adam.barr@corp.example>", NULL), SMFIS_CONTINUE);
    expect_ncalls(0);
    put_while_open(f, "adam.barr@corp.example", "adam@pop.example", MODE_REWRITE,
                   STATE_UNMIGRATED);
    assert_int_equal(message(f, "<adam.barr@corp.example>", NULL), SMFIS_CONTINUE);
    expect_ncalls(3);
    expect_call(1, FAKE_DELRCPT, "<adam.barr@corp.example>", NULL);
}

/* DATA: ACCEPT when no recipient is managed, on one connection, message by message. */
static void test_data_accepts_unmanaged(void **state)
{
    struct fixture *f = *state;

    /* nobody manages these: accepted at DATA, no change asked for */
    mail(f);
    rcpt(f, "<nobody@corp.example>", NULL);
    rcpt(f, "<someone@elsewhere.example>", NULL);
    assert_int_equal(data(f), SMFIS_ACCEPT);
    expect_ncalls(0);
    /* the next message on the connection has a bcc user: it continues */
    mail(f);
    rcpt(f, "<nobody@corp.example>", NULL);
    rcpt(f, "<adam.barr@corp.example>", NULL);
    assert_int_equal(data(f), SMFIS_CONTINUE);
    header(f, "Subject", "hello");
    assert_int_equal(eom(f), SMFIS_CONTINUE);
    expect_ncalls(2);
    expect_call(0, FAKE_ADDRCPT_PAR, "<adam@pop.example>", "NOTIFY=NEVER");
    fake_smfi_reset();
    /* a migrated user continues too (it may flip before end of message),
     * a domain rule and an address that does not normalize as well */
    mail(f);
    rcpt(f, "<carol@corp.example>", NULL);
    assert_int_equal(data(f), SMFIS_CONTINUE);
    assert_int_equal(eom(f), SMFIS_CONTINUE);
    expect_ncalls(0);
    mail(f);
    rcpt(f, "<anyone@domain.example>", NULL);
    assert_int_equal(data(f), SMFIS_CONTINUE);
    assert_int_equal(eom(f), SMFIS_CONTINUE);
    fake_smfi_reset();
    mail(f);
    rcpt(f, "<no at sign>", NULL);
    assert_int_equal(data(f), SMFIS_CONTINUE);
    assert_int_equal(eom(f), SMFIS_CONTINUE);
    /* and an unmanaged message again after all that */
    mail(f);
    rcpt(f, "<nobody@corp.example>", NULL);
    assert_int_equal(data(f), SMFIS_ACCEPT);
}

/* A flip between DATA and end of message is honoured: end of message decides. */
static void test_data_then_flip_before_eom(void **state)
{
    struct fixture *f = *state;

    mail(f);
    rcpt(f, "<carol@corp.example>", NULL);          /* migrated at DATA */
    assert_int_equal(data(f), SMFIS_CONTINUE);
    put_while_open(f, "carol@corp.example", "carol@pop.example", MODE_BCC, STATE_UNMIGRATED);
    header(f, "Subject", "hello");
    assert_int_equal(eom(f), SMFIS_CONTINUE);
    expect_call(0, FAKE_ADDRCPT_PAR, "<carol@pop.example>", "NOTIFY=NEVER");
    fake_smfi_reset();
    mail(f);
    rcpt(f, "<adam.barr@corp.example>", NULL);      /* unmigrated at DATA */
    assert_int_equal(data(f), SMFIS_CONTINUE);
    put_while_open(f, "adam.barr@corp.example", "adam@pop.example", MODE_BCC, STATE_MIGRATED);
    assert_int_equal(eom(f), SMFIS_CONTINUE);
    expect_ncalls(0);
}

/* A store that cannot be read at DATA: continue, end of message answers it. */
static void test_data_store_error_continues(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(unlink(f->path), 0);
    mail(f);
    rcpt(f, "<nobody@corp.example>", NULL);
    assert_int_equal(data(f), SMFIS_CONTINUE);
    assert_int_equal(eom(f), SMFIS_TEMPFAIL);
}

static void test_loop_header_leaves_alone(void **state)
{
    struct fixture *f = *state;

    mail(f);
    rcpt(f, "<adam.barr@corp.example>", NULL);
    header(f, "x-coexist-MILTER", " " INSTANCE " ");
    assert_int_equal(eom(f), SMFIS_CONTINUE);
    expect_ncalls(0);
    /* The guard is per message: the next one is routed. */
    assert_int_equal(message(f, "<adam.barr@corp.example>", NULL), SMFIS_CONTINUE);
    expect_ncalls(2);
}

static void test_other_instance_header_routes(void **state)
{
    struct fixture *f = *state;

    mail(f);
    rcpt(f, "<adam.barr@corp.example>", NULL);
    header(f, TRACE, "another-instance");
    header(f, "X-Other", INSTANCE);
    assert_int_equal(eom(f), SMFIS_CONTINUE);
    expect_ncalls(2);
}

static void test_dry_run_changes_nothing(void **state)
{
    struct fixture *f = *state;
    const char *log;

    f->cfg.dry_run = 1;
    capture_start(f);
    mail(f);
    rcpt(f, "<adam.barr@corp.example>", NULL);
    rcpt(f, "<bob.smith@corp.example>", NULL);
    assert_int_equal(eom(f), SMFIS_CONTINUE);
    log = capture_stop(f);
    expect_ncalls(0);
    expect_log(log, "QID1: dry-run bcc rcpt=<adam.barr@corp.example> "
               "alias=<adam@pop.example> rule=user\n");
    expect_log(log, "QID1: dry-run rewrite rcpt=<bob.smith@corp.example> "
               "alias=<bob@pop.example> rule=user\n");
}

static void test_no_queue_id(void **state)
{
    struct fixture *f = *state;
    SMFICTX *ctx = fake_ctx_new();
    char *from[] = {"<s@example.org>", NULL}, *to[] = {"<adam.barr@corp.example>", NULL};
    const char *log;

    capture_start(f);
    mlfi_desc.xxfi_envfrom(ctx, from);
    mlfi_desc.xxfi_envrcpt(ctx, to);
    assert_int_equal(mlfi_desc.xxfi_eom(ctx), SMFIS_CONTINUE);
    log = capture_stop(f);
    mlfi_desc.xxfi_close(ctx);
    fake_ctx_free(ctx);
    expect_log(log, "NOQUEUE: bcc rcpt=<adam.barr@corp.example>");
}

static void test_recipients_kept_verbatim(void **state)
{
    struct fixture *f = *state;
    char raw[] = "<Bob.Smith@corp.example>", arg[] = "NOTIFY=DELAY";
    char *argv[] = {raw, arg, NULL};

    mail(f);
    assert_int_equal(mlfi_desc.xxfi_envrcpt(f->ctx, argv), SMFIS_NOREPLY);
    /* libmilter reuses its buffers after the callback returns. */
    memset(raw, 'x', sizeof(raw) - 1);
    memset(arg, 'y', sizeof(arg) - 1);
    assert_int_equal(eom(f), SMFIS_CONTINUE);
    expect_call(0, FAKE_ADDRCPT_PAR, "<bob@pop.example>", NULL);
    assert_non_null(strstr(fake_smfi_get(0)->arg2, "NOTIFY=DELAY"));
    expect_call(1, FAKE_DELRCPT, "<Bob.Smith@corp.example>", NULL);
}

/* ---- the loop guard with a secret ---------------------------------------- */

#define MSGID "<guard-1@example.org>"

/* use_secret - the milter gets a fixed trace secret. */
static void use_secret(struct fixture *f)
{
    f->secret.ts_len = TRACE_SECRET_MIN;
    for (size_t i = 0; i < TRACE_SECRET_MIN; i++)
        f->secret.ts_bytes[i] = (unsigned char) (0xa5 ^ i);
    mlfi_set_secret(&f->secret);
}

/*
 * guarded - MAIL, the NRCPT recipients RCPTS, a Message-ID (MSGID_VALUE,
 * NULL for none), the trace headers TRACES (NULL-ended, may be NULL) and
 * end of message.
 */
static sfsistat guarded(struct fixture *f, const char *const *rcpts, size_t nrcpt,
                        const char *msgid_value, const char *const *traces)
{
    mail(f);
    for (size_t i = 0; i < nrcpt; i++)
        rcpt(f, rcpts[i], NULL);
    header(f, "Subject", "hello");
    /* One trace header before the Message-ID: end of message binds them. */
    if (traces != NULL && traces[0] != NULL)
        header(f, TRACE, traces[0]);
    if (msgid_value != NULL)
        header(f, "Message-Id", msgid_value);
    for (size_t i = 1; traces != NULL && traces[0] != NULL && traces[i] != NULL; i++)
        header(f, TRACE, traces[i]);
    return eom(f);
}

/* last_trace - the value of the trace header the milter added last (copied). */
static const char *last_trace(void)
{
    static char value[FAKE_ARG_MAX];

    value[0] = '\0';
    for (size_t i = 0; i < fake_smfi_count(); i++)
        if (fake_smfi_get(i)->call == FAKE_ADDHEADER
            && strcmp(fake_smfi_get(i)->arg1, TRACE) == 0)
            snprintf(value, sizeof(value), "%s", fake_smfi_get(i)->arg2);
    if (value[0] == '\0')
        fail_msg("no %s header added", TRACE);
    return value;
}

/* trace_names - whether VALUE verifies for MSGID_VALUE and names KEY. */
static int trace_names(struct fixture *f, const char *value, const char *msgid_value,
                       const char *key)
{
    struct trace_set set;
    struct trace_check tc = {&f->secret, INSTANCE, msgid_value, &set};

    trace_set_init(&set);
    if (trace_parse(&f->secret, INSTANCE, msgid_value, value, &set) != TRACE_OK)
        fail_msg("trace header '%s' does not verify for '%s'", value, msgid_value);
    return trace_covers(&tc, key);
}

static void test_guard_forged_constant_header_routes(void **state)
{
    static const char *const adam[] = {"<adam.barr@corp.example>"};
    static const char *const forged[] = {" " INSTANCE " ", NULL};
    struct fixture *f = *state;
    const char *log, *value;

    use_secret(f);
    capture_start(f);
    assert_int_equal(guarded(f, adam, 1, MSGID, forged), SMFIS_CONTINUE);
    log = capture_stop(f);
    /* The header of old no longer skips routing: anyone could write it. */
    expect_ncalls(2);
    expect_call(0, FAKE_ADDRCPT_PAR, "<adam@pop.example>", "NOTIFY=NEVER");
    expect_log(log, "QID1: loop guard: trace header with a bad mac; routing\n");
    expect_log(log, "QID1: bcc rcpt=<adam.barr@corp.example>");
    value = last_trace();
    if (strncmp(value, INSTANCE "; r=", strlen(INSTANCE) + 4) != 0)
        fail_msg("trace header: got '%s', want '%s; r=...; mac=...'", value, INSTANCE);
    assert_true(trace_names(f, value, MSGID, "adam.barr@corp.example"));
}

static void test_guard_bad_mac_logged_once(void **state)
{
    static const char *const adam[] = {"<adam.barr@corp.example>"};
    static const char *const forged[] = {
        INSTANCE "; r=AAAAAAAAAAA; mac=AAAAAAAAAAAAAAAAAAAAAA", INSTANCE, NULL};
    struct fixture *f = *state;
    const char *log, *first;

    use_secret(f);
    capture_start(f);
    assert_int_equal(guarded(f, adam, 1, MSGID, forged), SMFIS_CONTINUE);
    log = capture_stop(f);
    expect_ncalls(2);
    first = strstr(log, "loop guard: trace header with a bad mac");
    assert_non_null(first);
    if (strstr(first + 1, "loop guard: trace header with a bad mac") != NULL)
        fail_msg("log: got '%s', want the bad mac line once", log);
}

static void test_guard_returning_message_not_routed_again(void **state)
{
    static const char *const adam[] = {"<adam.barr@corp.example>"};
    const char *traces[2] = {NULL, NULL};
    char value[FAKE_ARG_MAX];
    struct fixture *f = *state;
    const char *log;

    use_secret(f);
    assert_int_equal(guarded(f, adam, 1, MSGID, NULL), SMFIS_CONTINUE);
    expect_ncalls(2);
    snprintf(value, sizeof(value), "%s", last_trace());
    /* The routed copy comes back (a forward, a list) with its headers. */
    fake_smfi_reset();
    traces[0] = value;
    capture_start(f);
    assert_int_equal(guarded(f, adam, 1, " " MSGID " ", traces), SMFIS_CONTINUE);
    log = capture_stop(f);
    expect_ncalls(0);
    expect_log(log, "QID1: loop guard: rcpt=<adam.barr@corp.example> routed already "
               "for this message; not again\n");
    if (strstr(log, "bad mac") != NULL || strstr(log, ": bcc ") != NULL)
        fail_msg("log: got '%s', want neither a bad mac nor a bcc line", log);
    /* The same header on a message with another Message-ID proves nothing. */
    fake_smfi_reset();
    capture_start(f);
    assert_int_equal(guarded(f, adam, 1, "<guard-2@example.org>", traces), SMFIS_CONTINUE);
    log = capture_stop(f);
    expect_ncalls(2);
    expect_log(log, "QID1: loop guard: trace header with a bad mac; routing\n");
}

static void test_guard_repost_to_other_recipient_routed(void **state)
{
    static const char *const adam[] = {"<adam.barr@corp.example>"};
    static const char *const both[] = {"<adam.barr@corp.example>", "<bob.smith@corp.example>"};
    const char *traces[3] = {NULL, NULL, NULL};
    char first[FAKE_ARG_MAX], second[FAKE_ARG_MAX];
    struct fixture *f = *state;

    use_secret(f);
    assert_int_equal(guarded(f, adam, 1, MSGID, NULL), SMFIS_CONTINUE);
    snprintf(first, sizeof(first), "%s", last_trace());
    /* A list server re-posts it, headers kept, to adam and bob. */
    fake_smfi_reset();
    traces[0] = first;
    assert_int_equal(guarded(f, both, 2, MSGID, traces), SMFIS_CONTINUE);
    expect_ncalls(3);
    expect_call(0, FAKE_ADDRCPT_PAR, "<bob@pop.example>", NULL);
    expect_call(1, FAKE_DELRCPT, "<bob.smith@corp.example>", NULL);
    snprintf(second, sizeof(second), "%s", last_trace());
    /* The new header names bob only: adam was routed by the first. */
    assert_true(trace_names(f, second, MSGID, "bob.smith@corp.example"));
    assert_false(trace_names(f, second, MSGID, "adam.barr@corp.example"));
    /* Both headers back: nobody is routed a third time. */
    fake_smfi_reset();
    traces[1] = second;
    assert_int_equal(guarded(f, both, 2, MSGID, traces), SMFIS_CONTINUE);
    expect_ncalls(0);
}

static void test_guard_no_message_id(void **state)
{
    static const char *const adam[] = {"<adam.barr@corp.example>"};
    const char *traces[2] = {NULL, NULL};
    char value[FAKE_ARG_MAX];
    struct fixture *f = *state;

    use_secret(f);
    assert_int_equal(guarded(f, adam, 1, NULL, NULL), SMFIS_CONTINUE);
    snprintf(value, sizeof(value), "%s", last_trace());
    /* No Message-ID is the empty one. */
    assert_true(trace_names(f, value, "", "adam.barr@corp.example"));
    fake_smfi_reset();
    traces[0] = value;
    assert_int_equal(guarded(f, adam, 1, NULL, traces), SMFIS_CONTINUE);
    expect_ncalls(0);
}

static void test_guard_many_recipients_whole_message(void **state)
{
    char names[TRACE_TAGS_MAX + 1][64], value[FAKE_ARG_MAX];
    const char *rcpts[TRACE_TAGS_MAX + 2], *traces[2] = {NULL, NULL};
    struct fixture *f = *state;
    const char *log;

    use_secret(f);
    for (size_t i = 0; i <= TRACE_TAGS_MAX; i++) {
        snprintf(names[i], sizeof(names[i]), "<user%zu@domain.example>", i);
        rcpts[i] = names[i];
    }
    assert_int_equal(guarded(f, rcpts, TRACE_TAGS_MAX + 1, MSGID, NULL), SMFIS_CONTINUE);
    expect_ncalls(TRACE_TAGS_MAX + 2);
    snprintf(value, sizeof(value), "%s", last_trace());
    assert_non_null(strstr(value, "; r=*; mac="));
    /* Back with it, and a new managed recipient: r=* covers the message. */
    fake_smfi_reset();
    traces[0] = value;
    rcpts[TRACE_TAGS_MAX + 1] = "<adam.barr@corp.example>";
    capture_start(f);
    assert_int_equal(guarded(f, rcpts, TRACE_TAGS_MAX + 2, MSGID, traces), SMFIS_CONTINUE);
    log = capture_stop(f);
    expect_ncalls(0);
    expect_log(log, "QID1: loop guard: " INSTANCE " routed it for every recipient (r=*)");
}

static void test_guard_other_instance_header_ignored(void **state)
{
    static const char *const adam[] = {"<adam.barr@corp.example>"};
    static const char *const other[] = {"another-instance; r=AAAAAAAAAAA; mac=x", NULL};
    struct fixture *f = *state;
    const char *log;

    use_secret(f);
    capture_start(f);
    assert_int_equal(guarded(f, adam, 1, MSGID, other), SMFIS_CONTINUE);
    log = capture_stop(f);
    expect_ncalls(2);
    /* Not ours: neither verified nor a bad mac of ours. */
    if (strstr(log, "bad mac") != NULL)
        fail_msg("log: got '%s', want no bad mac line for another instance", log);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_negotiate),
        T(test_bcc_adds_alias_with_notify_never),
        T(test_rewrite_adds_then_deletes_raw),
        T(test_rcpt_addr_macro),
        T(test_unresolved_logged),
        T(test_domain_rule),
        T(test_unknown_and_migrated_left_alone),
        T(test_log_names_only_routed),
        T(test_several_recipients_one_alias),
        T(test_two_messages_are_independent),
        T(test_mail_resets),
        T(test_eom_resets),
        T(test_abort_resets),
        T(test_close_before_connect),
        T(test_close_with_null_priv),
        T(test_addrcpt_failure_tempfails),
        T(test_delrcpt_failure_tempfails),
        T(test_addheader_failure_tempfails),
        T(test_missing_store_tempfails),
        T(test_missing_store_accept),
        T(test_store_appears_without_restart),
        T(test_store_deleted_while_open),
        T(test_store_replaced_by_rename),
        T(test_state_flip_between_messages),
        T(test_data_accepts_unmanaged),
        T(test_data_then_flip_before_eom),
        T(test_data_store_error_continues),
        T(test_loop_header_leaves_alone),
        T(test_other_instance_header_routes),
        T(test_dry_run_changes_nothing),
        T(test_no_queue_id),
        T(test_recipients_kept_verbatim),
        T(test_guard_forged_constant_header_routes),
        T(test_guard_bad_mac_logged_once),
        T(test_guard_returning_message_not_routed_again),
        T(test_guard_repost_to_other_recipient_routed),
        T(test_guard_no_message_id),
        T(test_guard_many_recipients_whole_message),
        T(test_guard_other_instance_header_ignored),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
