/*
 * test_logsock.c - unit tests of milter/logsock.c, the lock-free path of
 * the milter's syslog lines.
 *
 * A datagram socket in a temporary directory stands in for /dev/log. The
 * tests check the exact header syslog(3) would write (priority with the
 * facility, "%h %e %T" time, IDENT[PID]), that a batch arrives whole and in
 * order, that a syslog daemon restarted under a running milter (its socket
 * replaced) is reconnected to without losing the line, that a missing
 * daemon is reported as "not sent" so the caller can fall back to
 * syslog(3), and that threads sending at once lose and mix nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "logsock.h"

static char dir[64];
static char path[96];

/* sink_open - a datagram socket bound at PATH, as a syslog daemon makes it. */
static int sink_open(void)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct timeval tv = {2, 0};
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

    assert_true(fd >= 0);
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    unlink(path);
    assert_int_equal(bind(fd, (struct sockaddr *) &sun, sizeof(sun)), 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    return fd;
}

/* sink_read - the next datagram as a string; fails the test on timeout. */
static void sink_read(int fd, char *buf, size_t len)
{
    ssize_t n = recv(fd, buf, len - 1, 0);

    assert_true(n > 0);
    buf[n] = '\0';
}

static int setup(void **state)
{
    (void) state;
    snprintf(dir, sizeof(dir), "/tmp/test_logsock.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/log", dir);
    return 0;
}

static int teardown(void **state)
{
    (void) state;
    logsock_close();
    unlink(path);
    rmdir(dir);
    return 0;
}

/* The header is syslog(3)'s: <facility|prio>, "Mmm dd hh:mm:ss", ident[pid]. */
static void test_header_is_syslogs(void **state)
{
    struct logsock_line lines[] = {{LOG_INFO, "Q1: bcc rcpt=<a@corp.example> alias=<a@pop.example> rule=user"},
                                   {LOG_ERR, "Q1: error: x"}};
    char buf[1024], want[256], stamp[32];
    regex_t re;
    int fd = sink_open();
    time_t now;
    struct tm tm;

    (void) state;
    assert_int_equal(logsock_open(path, "coexist-milter", LOG_MAIL), 0);
    assert_true(logsock_ready());
    assert_int_equal(logsock_send(lines, 2), 2);
    sink_read(fd, buf, sizeof(buf));
    /* <22> = LOG_MAIL (2 << 3) | LOG_INFO (6) */
    snprintf(want, sizeof(want), "^<22>[A-Z][a-z]{2} [ 123][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9] "
             "coexist-milter\\[%ld\\]: Q1: bcc rcpt=<a@corp.example> alias=<a@pop.example> "
             "rule=user$", (long) getpid());
    assert_int_equal(regcomp(&re, want, REG_EXTENDED | REG_NOSUB), 0);
    if (regexec(&re, buf, 0, NULL, 0) != 0)
        fail_msg("got \"%s\"", buf);
    regfree(&re);
    /* the time is the local time, as syslog(3) writes it */
    now = time(NULL);
    localtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%h %e", &tm);
    assert_non_null(strstr(buf, stamp));
    sink_read(fd, buf, sizeof(buf));
    snprintf(want, sizeof(want), "coexist-milter[%ld]: Q1: error: x", (long) getpid());
    assert_int_equal(strncmp(buf, "<19>", 4), 0);   /* LOG_MAIL | LOG_ERR */
    assert_non_null(strstr(buf, want));
    close(fd);
}

enum { LARGE = 150 };
static struct logsock_line large_lines[LARGE];

/* large_sender - the batch from another thread: a unix datagram queue
 * holds only net.unix.max_dgram_qlen (10) datagrams, so sends block until
 * the reader catches up, as they do against a real syslog daemon. */
static void *large_sender(void *arg)
{
    (void) arg;
    return (void *) (intptr_t) logsock_send(large_lines, LARGE);
}

/* More lines than one sendmmsg takes still arrive, all, in order. */
static void test_large_batch_in_order(void **state)
{
    char texts[LARGE][32], buf[512];
    int fd = sink_open();
    pthread_t t;
    void *sent;

    (void) state;
    assert_int_equal(logsock_open(path, "t", LOG_LOCAL0), 0);
    for (int i = 0; i < LARGE; i++) {
        snprintf(texts[i], sizeof(texts[i]), "line %d", i);
        large_lines[i] = (struct logsock_line) {LOG_NOTICE, texts[i]};
    }
    assert_int_equal(pthread_create(&t, NULL, large_sender, NULL), 0);
    for (int i = 0; i < LARGE; i++) {
        char *colon;

        sink_read(fd, buf, sizeof(buf));
        colon = strstr(buf, "]: ");
        assert_non_null(colon);
        assert_string_equal(colon + 3, texts[i]);
    }
    assert_int_equal(pthread_join(t, &sent), 0);
    assert_int_equal((intptr_t) sent, LARGE);
    close(fd);
}

/* A syslog daemon restarted under us (new socket at the path): reconnect, lose nothing. */
static void test_reconnects_after_restart(void **state)
{
    struct logsock_line one = {LOG_INFO, "after restart"};
    char buf[512];
    int fd = sink_open();

    (void) state;
    assert_int_equal(logsock_open(path, "t", LOG_MAIL), 0);
    close(fd);
    fd = sink_open();           /* the daemon's new socket */
    for (int i = 0; i < 16; i++) {  /* every slot's old connection is dead */
        assert_int_equal(logsock_send(&one, 1), 1);
        sink_read(fd, buf, sizeof(buf));
        assert_non_null(strstr(buf, "]: after restart"));
    }
    close(fd);
}

/* No daemon at all: nothing is claimed sent, so the caller falls back. */
static void test_missing_daemon_reports_unsent(void **state)
{
    struct logsock_line one = {LOG_INFO, "nobody listens"};
    int fd = sink_open();

    (void) state;
    assert_int_equal(logsock_open(path, "t", LOG_MAIL), 0);
    close(fd);
    unlink(path);
    assert_int_equal(logsock_send(&one, 1), 0);
    logsock_close();
    assert_false(logsock_ready());
    assert_int_equal(logsock_open(path, "t", LOG_MAIL), -1);
    assert_false(logsock_ready());
    assert_int_equal(logsock_send(&one, 1), 0);
}

/* A stream socket at the path (an old syslog setup): refused, syslog(3) copes. */
static void test_stream_socket_refused(void **state)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    (void) state;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    assert_int_equal(bind(fd, (struct sockaddr *) &sun, sizeof(sun)), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(logsock_open(path, "t", LOG_MAIL), -1);
    close(fd);
}

#define THREADS 12
#define PER_THREAD 200

static void *sender(void *arg)
{
    int id = (int) (intptr_t) arg;
    char text[3][64];
    struct logsock_line lines[3];

    for (int i = 0; i < PER_THREAD; i++) {
        for (int k = 0; k < 3; k++) {
            snprintf(text[k], sizeof(text[k]), "t%d m%d l%d", id, i, k);
            lines[k] = (struct logsock_line) {LOG_INFO, text[k]};
        }
        if (logsock_send(lines, 3) != 3)
            return (void *) 1;
    }
    return NULL;
}

/* Threads at once: every line arrives whole, each thread's in its order. */
static void test_threads_lose_nothing(void **state)
{
    pthread_t t[THREADS];
    int next[THREADS][1] = {{0}};
    int fd = sink_open();
    char buf[512];

    (void) state;
    assert_int_equal(logsock_open(path, "t", LOG_MAIL), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, sender, (void *) (intptr_t) i), 0);
    for (int n = 0; n < THREADS * PER_THREAD * 3; n++) {
        int id, m, l;
        char *colon;

        sink_read(fd, buf, sizeof(buf));
        colon = strstr(buf, "]: ");
        assert_non_null(colon);
        assert_int_equal(sscanf(colon + 3, "t%d m%d l%d", &id, &m, &l), 3);
        assert_true(id >= 0 && id < THREADS);
        /* each thread's lines arrive in the order it sent them */
        assert_int_equal(m * 3 + l, next[id][0]);
        next[id][0]++;
    }
    for (int i = 0; i < THREADS; i++) {
        void *rv;

        assert_int_equal(pthread_join(t[i], &rv), 0);
        assert_null(rv);
    }
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_header_is_syslogs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_batch_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnects_after_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_daemon_reports_unsent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_socket_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_lose_nothing, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
