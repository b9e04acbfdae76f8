/*
 * logsock.h - syslog lines sent to /dev/log without glibc's process-wide lock.
 *
 * syslog(3) holds one lock across formatting and send(), so the milter's
 * worker threads queue behind each other for every routing line (the
 * benchmark saw 7% of the milter's CPU waiting there and three times the
 * context switches). logsock keeps a few datagram sockets connected to
 * /dev/log, each behind its own mutex, and sends all lines of one message
 * in one sendmmsg(2). The lines are the ones syslog(3) would send
 * ("<PRI>Mmm dd hh:mm:ss ident[pid]: text"), so rsyslog, journald and
 * anything parsing mail.log see no difference.
 *
 * When /dev/log is not a datagram socket, is missing at start, or a send
 * fails after one reconnect, logsock_send says so and the caller falls back
 * to syslog(3), which has its own reconnect and stream-socket logic: no line
 * is dropped that syslog(3) would have delivered.
 */
#ifndef COEXIST_LOGSOCK_H
#define COEXIST_LOGSOCK_H

#include <stddef.h>

/* One line to send: priority (without facility) and its text. */
struct logsock_line {
    int prio;
    const char *text;
};

/*
 * logsock_open - connect the sockets to PATH (normally "/dev/log") for
 * lines tagged IDENT[pid] with FACILITY. Returns 0, or -1 when PATH cannot
 * take datagrams (logsock_send then always returns 0 lines sent).
 * Called at start-up only, before libmilter's threads exist.
 */
int logsock_open(const char *path, const char *ident, int facility);

/* logsock_close - close the sockets (start-up reconfiguration, exit). */
void logsock_close(void);

/* logsock_ready - whether logsock_open succeeded. */
int logsock_ready(void);

/*
 * logsock_send - send LINES[0..N) in order; returns how many were sent.
 * The caller hands the rest, if any, to syslog(3).
 */
size_t logsock_send(const struct logsock_line *lines, size_t n);

#endif
