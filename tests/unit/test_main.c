/*
 * test_main.c - the coexist-milter binary's start-up checks, run as the
 * administrator runs them: "coexist-milter -n -c FILE" on temp configs, and
 * a real start in the foreground (-f) on the same bad configs, which must
 * exit with the very code -n gave, before it listens.
 *
 * Covers: a good config ("configuration OK", 0); group without user, root
 * without user (when run as root), a missing socket or pid_file directory,
 * an inet port out of range and a BOM (EX_CONFIG, EX_CANTCREAT); an unknown
 * user or group (EX_NOUSER). MILTER_BIN is the built daemon (Makefile.am).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#ifndef MILTER_BIN
#error "MILTER_BIN must name the built coexist-milter"
#endif

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

struct fx {
    char dir[64];
    char conf[128];
    char out[4096];             /* stdout and stderr of the last run */
};

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));

    if (fx == NULL)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_main.XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    snprintf(fx->conf, sizeof(fx->conf), "%s/coexist-milter.conf", fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    char path[256];

    /* Only what the tests make: the config, a secret, a socket, a pid file. */
    unlink(fx->conf);
    snprintf(path, sizeof(path), "%s/trace.key", fx->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/s.sock", fx->dir);
    unlink(path);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* write_conf - the config file, with @DIR@ replaced by the temp dir. */
static void write_conf(struct fx *fx, const char *text)
{
    FILE *fp = fopen(fx->conf, "w");

    assert_non_null(fp);
    for (const char *p = text; *p; p++) {
        if (strncmp(p, "@DIR@", 5) == 0) {
            fputs(fx->dir, fp);
            p += 4;
        } else {
            putc(*p, fp);
        }
    }
    assert_int_equal(fclose(fp), 0);
}

/*
 * run_milter - MILTER_BIN with FLAG ("-n" or "-f") and -c CONF; its output
 * into fx->out, its exit status returned. A daemon still running after 10 s
 * started when it should not have: killed, and -1 returned.
 */
static int run_milter(struct fx *fx, const char *flag)
{
    int pipefd[2], status = 0;
    size_t used = 0;
    ssize_t n;
    pid_t pid;

    assert_int_equal(pipe(pipefd), 0);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pipefd[1], 1);
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        close(pipefd[1]);
        alarm(10);              /* SIGALRM ends a daemon that started */
        execl(MILTER_BIN, "coexist-milter", flag, "-c", fx->conf, (char *) NULL);
        fprintf(stderr, "exec %s: %s\n", MILTER_BIN, strerror(errno));
        _exit(127);
    }
    close(pipefd[1]);
    while (used < sizeof(fx->out) - 1
           && (n = read(pipefd[0], fx->out + used, sizeof(fx->out) - 1 - used)) > 0)
        used += (size_t) n;
    fx->out[used] = '\0';
    close(pipefd[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A config each check refuses: -n and a real start agree on code and reason. */
struct refusal {
    const char *label;
    const char *text;           /* @DIR@ is the temp dir */
    int rc;
    const char *reason;         /* in the output of both */
};

/* check_refusal - -n, then -f, on R. */
static int check_refusal(struct fx *fx, const struct refusal *r)
{
    const char *mode[2] = {"-n", "-f"};
    int failed = 0;

    write_conf(fx, r->text);
    for (int m = 0; m < 2; m++) {
        int rc = run_milter(fx, mode[m]);

        if (rc != r->rc || strstr(fx->out, r->reason) == NULL
            || strstr(fx->out, "configuration OK") != NULL) {
            print_error("%s (%s): exit %d, want %d with '%s'; output:\n%s\n", r->label,
                        mode[m], rc, r->rc, r->reason, fx->out);
            failed++;
        }
    }
    return failed;
}

/* The account these tests can name as user: our own. */
static const char *own_user(void)
{
    const struct passwd *pw = getpwuid(geteuid());

    assert_non_null(pw);
    return pw->pw_name;
}

static void test_good_config(void **state)
{
    struct fx *fx = *state;
    char want[256], key[256];
    int fd;

    /* A loop guard secret, so that -n has nothing to warn about. */
    snprintf(key, sizeof(key), "%s/trace.key", fx->dir);
    assert_true((fd = open(key, O_WRONLY | O_CREAT | O_EXCL, 0600)) >= 0);
    assert_int_equal(write(fd, "0123456789abcdef0123456789abcdef", 32), 32);
    close(fd);
    /* allow_root: the same file is good run as root and as anyone else. */
    write_conf(fx, "socket = inet:65535@127.0.0.1\npid_file = @DIR@/p.pid\n"
                   "allow_root = yes\nstate_db = @DIR@/state.tdb\n");
    assert_int_equal(run_milter(fx, "-n"), EX_OK);
    snprintf(want, sizeof(want), "coexist-milter: %s: configuration OK\n", fx->conf);
    assert_string_equal(fx->out, want);
}

static void test_refusals(void **state)
{
    struct fx *fx = *state;
    char text[512], unknown_group[512];
    int failed = 0;
    const struct refusal cases[] = {
        {"group without user", "group = mail\nallow_root = yes\n", EX_CONFIG,
         "group = mail needs user to be set as well"},
        {"unknown user", "user = no-such-user-coexist\n", EX_NOUSER,
         "user no-such-user-coexist: no such user"},
        {"missing socket directory",
         "socket = unix:@DIR@/no-such-dir/s.sock\nallow_root = yes\n", EX_CONFIG,
         "/no-such-dir: No such file or directory"},
        {"missing local: socket directory",
         "socket = local:@DIR@/no-such-dir/s.sock\nallow_root = yes\n", EX_CONFIG,
         "/no-such-dir: No such file or directory"},
        {"socket directory is a file",
         "socket = unix:@DIR@/coexist-milter.conf/s.sock\nallow_root = yes\n", EX_CONFIG,
         "coexist-milter.conf is not a directory"},
        {"missing pid_file directory",
         "socket = unix:@DIR@/s.sock\npid_file = @DIR@/no-such-dir/p.pid\n"
         "allow_root = yes\n", EX_CANTCREAT, "/no-such-dir: No such file or directory"},
        {"missing metrics_file directory",
         "socket = unix:@DIR@/s.sock\nmetrics_file = @DIR@/no-such-dir/m.prom\n"
         "allow_root = yes\n", EX_CANTCREAT,
         "/no-such-dir/m.prom: directory"},
        {"port out of range", "socket = inet:99999@127.0.0.1\nallow_root = yes\n", EX_CONFIG,
         ":1: socket: 'inet:99999@127.0.0.1' port must be a number from 1 to 65535"},
        {"BOM", "\xEF\xBB\xBF" "allow_root = yes\n", EX_CONFIG,
         ":1: UTF-8 byte order mark at start of file; save it without BOM"},
    };

    (void) state;
    for (size_t i = 0; i < NELEM(cases); i++)
        failed += check_refusal(fx, &cases[i]);

    /* An unknown group, with a user that exists (ourselves). */
    snprintf(unknown_group, sizeof(unknown_group), "user = %s\ngroup = no-such-group-coexist\n"
             "allow_root = yes\n", own_user());
    {
        const struct refusal r = {"unknown group", unknown_group, EX_NOUSER,
                                  "group no-such-group-coexist: no such group"};
        failed += check_refusal(fx, &r);
    }

    /* Root without user: refused unless allow_root; anyone else is no root. */
    snprintf(text, sizeof(text), "socket = unix:@DIR@/s.sock\n");
    if (geteuid() == 0) {
        const struct refusal r = {"root without user", text, EX_CONFIG,
                                  "refusing to run as root"};
        failed += check_refusal(fx, &r);
    } else {
        write_conf(fx, text);
        if (run_milter(fx, "-n") != EX_OK) {
            print_error("not root, no user: want configuration OK, got:\n%s\n", fx->out);
            failed++;
        }
    }
    if (failed)
        fail_msg("%d refusal checks failed", failed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
