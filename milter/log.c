/*
 * log.c - the one logging wrapper of coexist-milter (see log.h).
 *
 * Each line is formatted once into a local buffer and sent as one datagram
 * to /dev/log by logsock (no process-wide lock; syslog(3) only where
 * logsock cannot send), and written to stderr with a single call: callbacks
 * run on many libmilter worker threads at once and their lines must not
 * interleave. A batch (log_batch_*) holds the lines of one message, which
 * go out in one system call. The settings below are written at start-up
 * only, before libmilter starts its threads, and read afterwards.
 */
#include <config.h>

#include <errno.h>
#include <paths.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "log.h"
#include "logsock.h"

static struct {
    int opened;                 /* syslog in use (else stderr only) */
    int level;                  /* most verbose priority written */
    int mirror_stderr;
} log_state = {0, LOG_INFO, 1};

/* log_open - start or reconfigure syslog output. */
void log_open(const char *ident, int facility, int level, int mirror_stderr)
{
    if (log_state.opened)
        closelog();
    /* LOG_NDELAY: connect now, before a chroot or privilege drop could stop us. */
    openlog(ident, LOG_PID | LOG_NDELAY, facility);
    /* Fails where /dev/log takes no datagrams: syslog(3) then does it all. */
    (void) logsock_open(_PATH_LOG, ident, facility);
    log_state.opened = 1;
    log_state.level = level;
    log_state.mirror_stderr = mirror_stderr;
}

/* log_close - stop syslog output; later lines go to stderr. */
void log_close(void)
{
    logsock_close();
    if (log_state.opened)
        closelog();
    log_state.opened = 0;
    log_state.mirror_stderr = 1;
}

/* log_set_stderr - start or stop mirroring lines to stderr. */
void log_set_stderr(int mirror_stderr)
{
    log_state.mirror_stderr = mirror_stderr;
}

/* log_enabled - whether PRIO passes the configured level. */
int log_enabled(int prio)
{
    return LOG_PRI(prio) <= log_state.level;
}

/*
 * log_deliver - write finished lines to syslog and, if wanted, stderr:
 * logsock first, syslog(3) for whatever it could not send.
 */
static void log_deliver(const struct logsock_line *lines, size_t n)
{
    size_t sent = 0;

    if (log_state.opened) {
        sent = logsock_send(lines, n);
        for (size_t i = sent; i < n; i++)
            syslog(lines[i].prio, "%s", lines[i].text);
    }
    if (log_state.mirror_stderr || !log_state.opened)
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, "%s: %s\n", LOG_IDENT, lines[i].text);
}

/* log_emit - one finished line, if PRIO passes the level. */
static void log_emit(int prio, const char *line)
{
    struct logsock_line l = {prio, line};

    if (log_enabled(prio))
        log_deliver(&l, 1);
}

/* log_vformat - PREFIX, FMT and, if ERRNUM is set, its strerror text. */
static void log_vformat(char *buf, size_t len, const char *prefix, int errnum,
                        const char *fmt, va_list ap) LOG_PRINTF(5, 0);
static void log_vformat(char *buf, size_t len, const char *prefix, int errnum,
                        const char *fmt, va_list ap)
{
    size_t used = (size_t) snprintf(buf, len, "%s", prefix);

    if (used < len)
        vsnprintf(buf + used, len - used, fmt, ap);
    if (errnum != 0) {
        used = strlen(buf);
        snprintf(buf + used, len - used, ": %s", strerror(errnum));
    }
}

/* log_msg - one line of priority PRIO. */
void log_msg(int prio, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    va_list ap;

    if (!log_enabled(prio))
        return;
    va_start(ap, fmt);
    log_vformat(line, sizeof(line), "", 0, fmt, ap);
    va_end(ap);
    log_emit(prio, line);
}

/* log_vformat_qid - "QID: " (or "NOQUEUE: ") and FMT into LINE. */
static void log_vformat_qid(char line[LOG_LINE_MAX], const char *qid, const char *fmt,
                            va_list ap) LOG_PRINTF(3, 0);
static void log_vformat_qid(char line[LOG_LINE_MAX], const char *qid, const char *fmt,
                            va_list ap)
{
    char prefix[128];

    snprintf(prefix, sizeof(prefix), "%s: ", qid != NULL && *qid ? qid : LOG_NOQUEUE);
    log_vformat(line, LOG_LINE_MAX, prefix, 0, fmt, ap);
}

/* log_qid - one line about the message with queue id QID. */
void log_qid(int prio, const char *qid, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    va_list ap;

    if (!log_enabled(prio))
        return;
    va_start(ap, fmt);
    log_vformat_qid(line, qid, fmt, ap);
    va_end(ap);
    log_emit(prio, line);
}

/* ---- batches: the lines of one message, sent together ---------------------- */

void log_batch_init(struct log_batch *b)
{
    b->lb_count = 0;
    b->lb_used = 0;
}

/* log_batch_flush - send the batch's lines in order and empty it. */
void log_batch_flush(struct log_batch *b)
{
    struct logsock_line lines[LOG_BATCH_LINES];

    for (size_t i = 0; i < b->lb_count; i++) {
        lines[i].prio = b->lb_prio[i];
        lines[i].text = b->lb_buf + b->lb_off[i];
    }
    if (b->lb_count > 0)
        log_deliver(lines, b->lb_count);
    log_batch_init(b);
}

/* log_batch_qid - as log_qid, into B; B is flushed first when full. */
void log_batch_qid(struct log_batch *b, int prio, const char *qid, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    size_t len;
    va_list ap;

    if (!log_enabled(prio))
        return;
    va_start(ap, fmt);
    log_vformat_qid(line, qid, fmt, ap);
    va_end(ap);
    len = strlen(line) + 1;
    if (b->lb_count == LOG_BATCH_LINES || b->lb_used + len > sizeof(b->lb_buf))
        log_batch_flush(b);
    b->lb_prio[b->lb_count] = prio;
    b->lb_off[b->lb_count] = b->lb_used;
    memcpy(b->lb_buf + b->lb_used, line, len);
    b->lb_used += len;
    b->lb_count++;
}

/* log_warn - a warning about a failed system call, with its errno text. */
void log_warn(const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    int saved = errno;
    va_list ap;

    va_start(ap, fmt);
    log_vformat(line, sizeof(line), "", saved, fmt, ap);
    va_end(ap);
    log_emit(LOG_WARNING, line);
    errno = saved;
}

/* log_warnx - a warning with no errno behind it. */
void log_warnx(const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    va_list ap;

    va_start(ap, fmt);
    log_vformat(line, sizeof(line), "", 0, fmt, ap);
    va_end(ap);
    log_emit(LOG_WARNING, line);
}

/* log_fatal - the CRIT line of a fatal error, then exit with STATUS. */
static void log_fatal(int status, int errnum, const char *fmt, va_list ap)
    LOG_PRINTF(3, 0) __attribute__((noreturn));
static void log_fatal(int status, int errnum, const char *fmt, va_list ap)
{
    char line[LOG_LINE_MAX];

    log_vformat(line, sizeof(line), "fatal: ", errnum, fmt, ap);
    log_emit(LOG_CRIT, line);
    exit(status);
}

/* fatal - a system call failed (errno says how): log and exit EX_OSERR. */
void fatal(const char *fmt, ...)
{
    int saved = errno;
    va_list ap;

    va_start(ap, fmt);
    log_fatal(EX_OSERR, saved, fmt, ap);
}

/* fatalx - the program is broken (no errno): log and exit EX_SOFTWARE. */
void fatalx(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_fatal(EX_SOFTWARE, 0, fmt, ap);
}

/* fatal_status - as fatal, with the sysexits code STATUS. */
void fatal_status(int status, const char *fmt, ...)
{
    int saved = errno;
    va_list ap;

    va_start(ap, fmt);
    log_fatal(status, saved, fmt, ap);
}

/* fatalx_status - as fatalx, with the sysexits code STATUS. */
void fatalx_status(int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_fatal(status, 0, fmt, ap);
}
