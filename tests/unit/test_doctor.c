/*
 * test_doctor.c - the parsing pieces of "coexistctl doctor", on the text
 * Postfix 3.7's postconf prints (main.cf parameters, -F fields, -P
 * overrides), Postfix milter lists, the three socket syntaxes and the
 * chroot translation, Sendmail's X and INPUT_MAIL_FILTER lines, the
 * milter negotiation's packets (the one doctor sends, replies good, short,
 * refusing and lacking actions), and an account's access to files, as
 * tables with "got, want" messages.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "mlfi.h"
#include "ctl.h"
#include "doctor.h"
#include "check.h"

/* ---- milter lists ------------------------------------------------------- */

static void test_milter_list(void **state)
{
    static const struct {
        const char *value;
        int count;
        const char *first, *first_action, *last;
    } cases[] = {
        {"", 0, NULL, NULL, NULL},
        {"unix:coexist/x.sock", 1, "unix:coexist/x.sock", "", "unix:coexist/x.sock"},
        {"inet:127.0.0.1:8891, unix:/a.sock", 2, "inet:127.0.0.1:8891", "", "unix:/a.sock"},
        {"  unix:a   unix:b,,unix:c ", 3, "unix:a", "", "unix:c"},
        {"{ unix:coexist/x.sock, default_action=accept }, inet:127.0.0.1:8891", 2,
         "unix:coexist/x.sock", "accept", "inet:127.0.0.1:8891"},
        {"{unix:a,default_action = tempfail,command_timeout=10s}", 1, "unix:a", "tempfail",
         "unix:a"},
        {"{ unix:a", -1, NULL, NULL, NULL},
        {"{ }", -1, NULL, NULL, NULL},
        {"{ unix:a, nonsense }", -1, NULL, NULL, NULL},
    };
    struct doctor_milter list[DOCTOR_MILTERS_MAX];
    const char *why = NULL;

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int n = doctor_milter_list(cases[i].value, list, DOCTOR_MILTERS_MAX, &why);

        if (n != cases[i].count)
            fail_msg("'%s': got %d milters, want %d", cases[i].value, n, cases[i].count);
        if (n <= 0)
            continue;
        CHECK_STR(list[0].dm_endpoint, cases[i].first);
        CHECK_STR(list[0].dm_default_action, cases[i].first_action);
        CHECK_STR(list[n - 1].dm_endpoint, cases[i].last);
    }
}

/* ---- sockets -------------------------------------------------------------- */

static void test_sockets(void **state)
{
    static const struct {
        int syntax;     /* 0 libmilter, 1 Postfix, 2 Sendmail */
        const char *spec;
        int rc;
        enum doctor_sock_kind kind;
        const char *path_or_host;
        unsigned port;
    } cases[] = {
        {0, "unix:/run/coexist-milter/coexist-milter.sock", 0, DOCTOR_SOCK_UNIX,
         "/run/coexist-milter/coexist-milter.sock", 0},
        {0, "local:/tmp/x.sock", 0, DOCTOR_SOCK_UNIX, "/tmp/x.sock", 0},
        {0, "inet:8891@127.0.0.1", 0, DOCTOR_SOCK_INET, "127.0.0.1", 8891},
        {0, "inet:8891", 0, DOCTOR_SOCK_INET, "", 8891},
        {0, "inet6:8891@[::1]", 0, DOCTOR_SOCK_INET6, "::1", 8891},
        {0, "inet:99999@localhost", -1, 0, NULL, 0},
        {0, "tcp:1@x", -1, 0, NULL, 0},
        {0, "unix:", -1, 0, NULL, 0},
        {1, "unix:coexist-milter/coexist-milter.sock", 0, DOCTOR_SOCK_UNIX,
         "coexist-milter/coexist-milter.sock", 0},
        {1, "inet:127.0.0.1:8891", 0, DOCTOR_SOCK_INET, "127.0.0.1", 8891},
        {1, "inet:[::1]:8891", 0, DOCTOR_SOCK_INET, "::1", 8891},
        {1, "inet:localhost:x", -1, 0, NULL, 0},
        {1, "local:/x", -1, 0, NULL, 0},
        {2, "/run/x.sock", 0, DOCTOR_SOCK_UNIX, "/run/x.sock", 0},
        {2, "unix:/run/x.sock", 0, DOCTOR_SOCK_UNIX, "/run/x.sock", 0},
        {2, "inet:8891@localhost", 0, DOCTOR_SOCK_INET, "localhost", 8891},
    };
    struct doctor_sock s;

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = cases[i].syntax == 0 ? doctor_sock_milter(cases[i].spec, &s)
                 : cases[i].syntax == 1 ? doctor_sock_postfix(cases[i].spec, &s)
                 : doctor_sock_sendmail(cases[i].spec, &s);

        if (rc != cases[i].rc)
            fail_msg("'%s': got %d, want %d", cases[i].spec, rc, cases[i].rc);
        if (rc < 0)
            continue;
        if (s.ds_kind != cases[i].kind)
            fail_msg("'%s': kind %d, want %d", cases[i].spec, s.ds_kind, cases[i].kind);
        CHECK_STR(s.ds_kind == DOCTOR_SOCK_UNIX ? s.ds_path : s.ds_host,
                  cases[i].path_or_host);
        if (s.ds_port != cases[i].port)
            fail_msg("'%s': port %u, want %u", cases[i].spec, s.ds_port, cases[i].port);
    }
}

static void test_chroot_path(void **state)
{
    static const struct {
        const char *path, *queue;
        int chrooted;
        const char *want;
    } cases[] = {
        /* Debian: smtpd chrooted in /var/spool/postfix; relative is the same either way */
        {"coexist-milter/x.sock", "/var/spool/postfix", 1, "/var/spool/postfix/coexist-milter/x.sock"},
        {"coexist-milter/x.sock", "/var/spool/postfix", 0, "/var/spool/postfix/coexist-milter/x.sock"},
        /* an absolute path is looked up inside the chroot */
        {"/run/coexist-milter/x.sock", "/var/spool/postfix", 1,
         "/var/spool/postfix/run/coexist-milter/x.sock"},
        {"/run/coexist-milter/x.sock", "/var/spool/postfix", 0, "/run/coexist-milter/x.sock"},
        {"./a/../b//x.sock", "/q/", 0, "/q/b/x.sock"},
    };
    char out[DOCTOR_PATH_MAX];

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(doctor_chroot_path(cases[i].path, cases[i].queue, cases[i].chrooted,
                                            out, sizeof(out)), 0);
        CHECK_STR(out, cases[i].want);
    }
}

static void test_postfix_name(void **state)
{
    char out[DOCTOR_PATH_MAX];

    (void) state;
    assert_int_equal(doctor_postfix_name("/var/spool/postfix/coexist-milter/x.sock",
                                         "/var/spool/postfix", 1, out, sizeof(out)), 0);
    CHECK_STR(out, "unix:coexist-milter/x.sock");
    /* outside the queue directory: unreachable from a chroot, absolute without */
    assert_int_equal(doctor_postfix_name("/run/coexist-milter/x.sock", "/var/spool/postfix",
                                         1, out, sizeof(out)), -1);
    assert_int_equal(doctor_postfix_name("/run/coexist-milter/x.sock", "/var/spool/postfix",
                                         0, out, sizeof(out)), 0);
    CHECK_STR(out, "unix:/run/coexist-milter/x.sock");
    /* a prefix of the name is not the directory */
    assert_int_equal(doctor_postfix_name("/var/spool/postfix2/x.sock", "/var/spool/postfix",
                                         0, out, sizeof(out)), 0);
    CHECK_STR(out, "unix:/var/spool/postfix2/x.sock");
}

static void test_sock_same(void **state)
{
    static const struct {
        const char *milter, *postfix;
        int same;
    } cases[] = {
        {"unix:/q/coexist/x.sock", "unix:/q/coexist/x.sock", 1},
        {"unix:/q/coexist/x.sock", "unix:/q/coexist/./x.sock", 1},
        {"unix:/q/coexist/x.sock", "unix:/q/coexist/y.sock", 0},
        {"unix:/q/x.sock", "inet:127.0.0.1:8891", 0},
        {"inet:8891@127.0.0.1", "inet:127.0.0.1:8891", 1},
        {"inet:8891@localhost", "inet:127.0.0.1:8891", 1},
        {"inet:8891", "inet:192.0.2.1:8891", 1},
        {"inet:8891@127.0.0.1", "inet:127.0.0.1:8892", 0},
        {"inet:8891@192.0.2.1", "inet:127.0.0.1:8891", 0},
    };
    struct doctor_sock m, p;

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(doctor_sock_milter(cases[i].milter, &m), 0);
        assert_int_equal(doctor_sock_postfix(cases[i].postfix, &p), 0);
        if (doctor_sock_same(&m, &p) != cases[i].same)
            fail_msg("%s vs %s: got %d, want %d", cases[i].milter, cases[i].postfix,
                     !cases[i].same, cases[i].same);
    }
}

/* ---- postconf output --------------------------------------------------------- */

/* What postconf 3.7 prints for Debian's master.cf plus an amavis pair. */
static const char POSTCONF_PARAMS[] =
    "smtpd_milters = { unix:coexist/x.sock, default_action=accept }, inet:127.0.0.1:8891\n"
    "non_smtpd_milters = unix:coexist/x.sock\n"
    "postconf: warning: /etc/postfix/main.cf: unused parameter: foo=bar\n"
    "milter_default_action = tempfail\n"
    "queue_directory = /var/spool/postfix\n"
    "mail_owner = postfix\n"
    "content_filter =\n"
    "receive_override_options =\n";

static const char POSTCONF_FIELDS[] =
    "smtp/inet/service = smtp\n"
    "smtp/inet/type = inet\n"
    "smtp/inet/private = n\n"
    "smtp/inet/chroot = y\n"
    "smtp/inet/command = smtpd\n"
    "127.0.0.1:10025/inet/service = 127.0.0.1:10025\n"
    "127.0.0.1:10025/inet/chroot = n\n"
    "127.0.0.1:10025/inet/command = smtpd -o content_filter= -o smtpd_milters=\n"
    "cleanup/unix/chroot = -\n"
    "cleanup/unix/command = cleanup\n"
    "pickup/unix/chroot = y\n"
    "pickup/unix/command = pickup\n";

static const char POSTCONF_OVERRIDES[] =
    "127.0.0.1:10025/inet/content_filter =\n"
    "127.0.0.1:10025/inet/receive_override_options = no_unknown_recipient_checks,no_milters\n"
    "127.0.0.1:10025/inet/smtpd_milters =\n"
    "submission/inet/smtpd_milters = inet:x:1\n"
    "submission/inet/syslog_name = postfix/submission\n";

static void test_postconf(void **state)
{
    struct doctor_postfix pf;
    const struct doctor_service *smtp = NULL, *reinject = NULL, *cleanup = NULL, *sub = NULL;

    (void) state;
    memset(&pf, 0, sizeof(pf));
    assert_int_equal(doctor_parse_params(&pf, POSTCONF_PARAMS), 0);
    assert_int_equal(doctor_parse_fields(&pf, POSTCONF_FIELDS), 0);
    assert_int_equal(doctor_parse_overrides(&pf, POSTCONF_OVERRIDES), 0);
    CHECK_STR(doctor_param(&pf, "smtpd_milters"),
              "{ unix:coexist/x.sock, default_action=accept }, inet:127.0.0.1:8891");
    CHECK_STR(doctor_param(&pf, "content_filter"), "");
    CHECK_STR(doctor_param(&pf, "mail_owner"), "postfix");
    assert_null(doctor_param(&pf, "postconf: warning"));
    assert_int_equal(pf.pf_nparams, 7);
    /* services: four from -F, one more (submission) only from -P */
    assert_int_equal(pf.pf_nservices, 5);
    for (size_t i = 0; i < pf.pf_nservices; i++) {
        const struct doctor_service *sv = &pf.pf_services[i];
        if (strcmp(sv->ds_name, "smtp") == 0) smtp = sv;
        if (strcmp(sv->ds_name, "127.0.0.1:10025") == 0) reinject = sv;
        if (strcmp(sv->ds_name, "cleanup") == 0) cleanup = sv;
        if (strcmp(sv->ds_name, "submission") == 0) sub = sv;
    }
    assert_non_null(smtp);
    assert_non_null(reinject);
    assert_non_null(cleanup);
    assert_non_null(sub);
    CHECK_STR(smtp->ds_command, "smtpd");
    CHECK_STR(smtp->ds_type, "inet");
    assert_int_equal(smtp->ds_chroot, 1);
    assert_int_equal(cleanup->ds_chroot, 0);        /* "-" is n since Postfix 3.0 */
    CHECK_STR(reinject->ds_command, "smtpd");       /* the program, not its -o */
    CHECK_STR(doctor_override(reinject, "smtpd_milters"), "");
    CHECK_STR(doctor_override(reinject, "content_filter"), "");
    assert_null(doctor_override(smtp, "smtpd_milters"));
    CHECK_STR(doctor_effective(&pf, smtp, "smtpd_milters"),
              "{ unix:coexist/x.sock, default_action=accept }, inet:127.0.0.1:8891");
    CHECK_STR(doctor_effective(&pf, sub, "smtpd_milters"), "inet:x:1");
    assert_true(doctor_has_word(doctor_effective(&pf, reinject, "receive_override_options"),
                                "no_milters"));
    assert_false(doctor_has_word("no_unknown_recipient_checks", "no_milters"));
    assert_false(doctor_has_word("", "no_milters"));
    assert_true(doctor_has_word("a, b NO_MILTERS", "no_milters"));
    doctor_postfix_free(&pf);
}

/* ---- Sendmail ---------------------------------------------------------------- */

static void test_sendmail_lines(void **state)
{
    static const struct {
        const char *line;
        int rc;
        const char *name, *socket, *flags;
    } cases[] = {
        {"Xcoexist, S=unix:/run/x.sock, F=T, T=C:5s;S:10s;R:10s;E:30s\n", 1, "coexist",
         "unix:/run/x.sock", "T"},
        {"Xcoexist, S=unix:/run/x.sock, T=C:5s\n", 1, "coexist", "unix:/run/x.sock", ""},
        {"Xother, S=inet:8891@localhost, F=R\n", 1, "other", "inet:8891@localhost", "R"},
        {"INPUT_MAIL_FILTER(`coexist', `S=unix:/run/x.sock, F=T, T=C:5s;S:10s')dnl\n", 1,
         "coexist", "unix:/run/x.sock", "T"},
        {"MAIL_FILTER(`m', `S=local:/x')\n", 1, "m", "local:/x", ""},
        {"O InputMailFilters=coexist\n", 0, "", "", ""},
        {"dnl INPUT_MAIL_FILTER(`a', `S=unix:/x')\n", 0, "", "", ""},
        {"X\n", 0, "", "", ""},
    };
    char name[128], socket[DOCTOR_PATH_MAX], flags[64];

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = doctor_sendmail_line(cases[i].line, name, sizeof(name), socket,
                                      sizeof(socket), flags, sizeof(flags));
        if (rc != cases[i].rc)
            fail_msg("'%s': got %d, want %d", cases[i].line, rc, cases[i].rc);
        if (rc == 0)
            continue;
        CHECK_STR(name, cases[i].name);
        CHECK_STR(socket, cases[i].socket);
        CHECK_STR(flags, cases[i].flags);
    }
}

/* ---- the negotiation ---------------------------------------------------------- */

static void put32(unsigned char *p, unsigned long v)
{
    p[0] = (unsigned char) (v >> 24);
    p[1] = (unsigned char) (v >> 16);
    p[2] = (unsigned char) (v >> 8);
    p[3] = (unsigned char) v;
}

/* reply - an SMFIC_OPTNEG reply with ACTIONS into BUF (and EXTRA bytes of macros). */
static size_t reply(unsigned char *buf, unsigned long actions, size_t extra)
{
    put32(buf, 13 + extra);
    buf[4] = SMFIC_OPTNEG;
    put32(buf + 5, 6);
    put32(buf + 9, actions);
    put32(buf + 13, SMFIP_NOCONNECT | SMFIP_NR_RCPT);
    memset(buf + 17, 'm', extra);
    return 17 + extra;
}

static void test_optneg_packet(void **state)
{
    unsigned char pkt[32];

    (void) state;
    assert_int_equal(doctor_optneg_packet(pkt, 16), 0);
    assert_int_equal(doctor_optneg_packet(pkt, sizeof(pkt)), 17);
    assert_int_equal(pkt[3], 13);
    assert_int_equal(pkt[4], 'O');
    assert_int_equal(pkt[8], 6);                         /* protocol version 6 */
    assert_int_equal(pkt[11] << 8 | pkt[12], 0x1FF);     /* every action */
}

static void test_optneg_parse(void **state)
{
    unsigned char buf[64];
    struct doctor_optneg neg;
    char why[DOCTOR_ERR_MAX], missing[DOCTOR_TEXT_MAX];
    size_t n;

    (void) state;
    n = reply(buf, MLFI_ACTIONS | SMFIF_SETSYMLIST, 0);
    assert_int_equal(doctor_optneg_parse(buf, n, &neg, why), 0);
    assert_int_equal(neg.dn_version, 6);
    assert_int_equal(neg.dn_actions, MLFI_ACTIONS | SMFIF_SETSYMLIST);
    assert_int_equal(neg.dn_protocol, SMFIP_NOCONNECT | SMFIP_NR_RCPT);
    assert_int_equal(doctor_optneg_missing(neg.dn_actions, missing, sizeof(missing)), 0);
    /* the macro list a SETSYMLIST milter sends after the three words */
    n = reply(buf, MLFI_ACTIONS, 20);
    assert_int_equal(doctor_optneg_parse(buf, n, &neg, why), 0);
    /* a length word that is not the packet's */
    n = reply(buf, MLFI_ACTIONS, 0);
    assert_int_equal(doctor_optneg_parse(buf, n - 1, &neg, why), -1);
    CHECK_CONTAINS(why, "length 13");
    assert_int_equal(doctor_optneg_parse(buf, 3, &neg, why), -1);
    /* too short to hold the three words */
    put32(buf, 5);
    assert_int_equal(doctor_optneg_parse(buf, 9, &neg, why), -1);
    /* a milter that refuses: tempfail */
    put32(buf, 1);
    buf[4] = SMFIR_TEMPFAIL;
    assert_int_equal(doctor_optneg_parse(buf, 5, &neg, why), 1);
    CHECK_CONTAINS(why, "tempfail");
    /* a milter that does not ask to delete recipients and add headers */
    assert_int_equal(doctor_optneg_missing(SMFIF_ADDRCPT | SMFIF_ADDRCPT_PAR, missing,
                                           sizeof(missing)), SMFIF_DELRCPT | SMFIF_ADDHDRS);
    CHECK_STR(missing, "delete recipient (SMFIF_DELRCPT), add header (SMFIF_ADDHDRS)");
}

/* ---- an account's access ----------------------------------------------------- */

static void test_may(void **state)
{
    char dir[] = "/tmp/test_doctor.XXXXXX", file[128], sub[64], why[DOCTOR_ERR_MAX];
    struct doctor_account a;

    (void) state;
    if (geteuid() != 0)
        skip();     /* the files are given to other owners */
    assert_non_null(mkdtemp(dir));
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    snprintf(file, sizeof(file), "%s/sock", sub);
    assert_int_equal(mkdir(sub, 0750), 0);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(chmod(dir, 0755), 0);
    assert_int_equal(chmod(file, 0666), 0);
    /* uid 4242 in group 4243 only; the files belong to us */
    memset(&a, 0, sizeof(a));
    snprintf(a.da_name, sizeof(a.da_name), "tester");
    a.da_uid = 4242;
    a.da_gids[0] = 4243;
    a.da_ngids = 1;
    assert_int_equal(doctor_may(&a, file, W_OK, why), 0);     /* sub is 0750, not ours */
    CHECK_CONTAINS(why, "sub");
    CHECK_CONTAINS(why, "search (x)");
    assert_int_equal(chown(sub, 0, 4243), 0);
    assert_int_equal(doctor_may(&a, file, W_OK, why), 1);     /* now through the group */
    assert_int_equal(chmod(file, 0664), 0);
    assert_int_equal(doctor_may(&a, file, W_OK, why), 0);     /* others: r only */
    CHECK_CONTAINS(why, "as others, no write");
    assert_int_equal(doctor_may(&a, file, R_OK, why), 1);
    a.da_uid = 0;
    assert_int_equal(doctor_may(&a, file, W_OK, why), 1);     /* root may */
    a.da_uid = 4242;
    snprintf(file, sizeof(file), "%s/none", sub);
    assert_int_equal(doctor_may(&a, file, R_OK, why), -1);
    snprintf(file, sizeof(file), "%s/sock", sub);
    unlink(file);
    rmdir(sub);
    rmdir(dir);
}

/* ---- the verb through ctl_main ------------------------------------------------ */

/* run_ctl - coexistctl ARGV... into OUT (malloc'd); returns the exit code. */
static int run_ctl(char **out, int argc, char **argv)
{
    size_t len;
    FILE *fp = open_memstream(out, &len), *err = fopen("/dev/null", "w");
    int rc;

    assert_non_null(fp);
    assert_non_null(err);
    rc = ctl_main(argc, argv, fp, err, NULL, NULL);
    fclose(fp);
    fclose(err);
    return rc;
}

/*
 * test_verb - doctor on a store with no MTA and no milter: each finding
 * once, exit 78; the same as JSON; a bad --format is a usage error.
 */
static void test_verb(void **state)
{
    char dir[] = "/tmp/test_doctor.XXXXXX", conf[128], db[128], sock[128], *out = NULL;
    json_t *root, *f;
    json_error_t jerr;
    FILE *fp;

    (void) state;
    assert_non_null(mkdtemp(dir));
    snprintf(conf, sizeof(conf), "%s/c.conf", dir);
    snprintf(db, sizeof(db), "%s/state.tdb", dir);
    snprintf(sock, sizeof(sock), "%s/none.sock", dir);
    fp = fopen(conf, "w");
    assert_non_null(fp);
    fprintf(fp, "socket = unix:%s\nstate_db = %s\n", sock, db);
    fclose(fp);
    setenv("MAIL_CONFIG", dir, 1);      /* no main.cf there: no Postfix */
    char *init[] = {"coexistctl", "-c", conf, "init", NULL};
    assert_int_equal(run_ctl(&out, 4, init), 0);
    free(out);
    char *text[] = {"coexistctl", "-c", conf, "doctor", "--sendmail-cf", conf, NULL};
    assert_int_equal(run_ctl(&out, 6, text), 78);
    CHECK_CONTAINS(out, "[sendmail.milter] ");
    CHECK_CONTAINS(out, "[milter.socket] socket ");
    CHECK_CONTAINS(out, "; fix: ");
    CHECK_CONTAINS(out, "doctor: 2 problems (checked sendmail, milter, store)\n");
    free(out);
    char *json[] = {"coexistctl", "-c", conf, "doctor", "--format", "json", NULL};
    assert_int_equal(run_ctl(&out, 6, json), 78);
    root = json_loads(out, 0, &jerr);
    if (root == NULL)
        fail_msg("not JSON (%s): %s", jerr.text, out);
    assert_int_equal(json_integer_value(json_object_get(root, "problems")), 2);
    /* (the first is mta.none, or sendmail's on a host with /etc/mail/sendmail.cf) */
    f = json_array_get(json_object_get(root, "findings"), 1);
    CHECK_STR(json_string_value(json_object_get(f, "check")), "milter.socket");
    assert_non_null(json_string_value(json_object_get(f, "fix")));
    json_decref(root);
    free(out);
    char *bad[] = {"coexistctl", "-c", conf, "doctor", "--format", "csv", NULL};
    assert_int_equal(run_ctl(&out, 6, bad), 64);
    free(out);
    unsetenv("MAIL_CONFIG");
    snprintf(sock, sizeof(sock), "rm -rf '%s'", dir);
    assert_int_equal(system(sock), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_milter_list),
        cmocka_unit_test(test_sockets),
        cmocka_unit_test(test_chroot_path),
        cmocka_unit_test(test_postfix_name),
        cmocka_unit_test(test_sock_same),
        cmocka_unit_test(test_postconf),
        cmocka_unit_test(test_sendmail_lines),
        cmocka_unit_test(test_optneg_packet),
        cmocka_unit_test(test_optneg_parse),
        cmocka_unit_test(test_may),
        cmocka_unit_test(test_verb),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
