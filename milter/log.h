/*
 * log.h - the one logging wrapper of coexist-milter.
 *
 * Every line goes to syslog(3), also when the daemon runs in the foreground
 * (systemd runs it so, and administrators read mail.log). With log_stderr or
 * -v each line is mirrored to stderr for debugging. Per-message lines carry
 * the MTA's queue id first ("4XyZ1: bcc rcpt=..."), so one grep finds every
 * line about a message, as with the MTA's own log.
 *
 * Before log_open() lines go to stderr only: that is where a configuration
 * error found at start-up must be seen.
 */
#ifndef COEXIST_LOG_H
#define COEXIST_LOG_H

#include <stddef.h>
#include <syslog.h>

#define LOG_IDENT "coexist-milter"
#define LOG_NOQUEUE "NOQUEUE"

#define LOG_PRINTF(f, a) __attribute__((format(printf, f, a)))

#define LOG_LINE_MAX 2048
#define LOG_BATCH_LINES 16

/*
 * A log batch: the lines about one message, formatted as they come and sent
 * in one system call by log_batch_flush (a ten-recipient message has ten
 * routing lines). On the caller's stack; nothing to free. Full batches are
 * flushed as lines are added, so a caller only flushes at the end.
 */
struct log_batch {
    size_t lb_count;
    size_t lb_used;
    int lb_prio[LOG_BATCH_LINES];
    size_t lb_off[LOG_BATCH_LINES];
    char lb_buf[LOG_LINE_MAX * 2];
};

/*
 * log_open - start logging to syslog as IDENT with FACILITY, dropping lines
 * less urgent than LEVEL; MIRROR_STDERR copies lines to stderr. May be
 * called again (after the configuration was read) to change any of these.
 */
void log_open(const char *ident, int facility, int level, int mirror_stderr);
void log_close(void);

/* log_set_stderr - start or stop mirroring lines to stderr. */
void log_set_stderr(int mirror_stderr);

/* log_enabled - whether a line of priority PRIO would be written at all. */
int log_enabled(int prio);

/* log_msg - one line of priority PRIO (LOG_ERR, LOG_INFO, ...). */
void log_msg(int prio, const char *fmt, ...) LOG_PRINTF(2, 3);

/* log_qid - one line about a message: "QID: ...", "NOQUEUE: ..." if QID is NULL. */
void log_qid(int prio, const char *qid, const char *fmt, ...) LOG_PRINTF(3, 4);

/* log_batch_init - an empty batch; log_batch_qid adds a line like log_qid's. */
void log_batch_init(struct log_batch *b);
void log_batch_qid(struct log_batch *b, int prio, const char *qid, const char *fmt, ...)
    LOG_PRINTF(4, 5);
/* log_batch_flush - send what B holds, in order, and empty it. */
void log_batch_flush(struct log_batch *b);

/* log_warn - a warning ending in ": strerror(errno)"; log_warnx without it. */
void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) LOG_PRINTF(1, 2);

/*
 * fatal - log at LOG_CRIT (with strerror(errno)) and exit EX_OSERR; fatalx
 * without errno, exit EX_SOFTWARE. The _status forms exit with STATUS, a
 * sysexits.h code that says what went wrong (EX_CONFIG, EX_CANTCREAT...).
 */
void fatal(const char *fmt, ...) LOG_PRINTF(1, 2) __attribute__((noreturn));
void fatalx(const char *fmt, ...) LOG_PRINTF(1, 2) __attribute__((noreturn));
void fatal_status(int status, const char *fmt, ...) LOG_PRINTF(2, 3)
    __attribute__((noreturn));
void fatalx_status(int status, const char *fmt, ...) LOG_PRINTF(2, 3)
    __attribute__((noreturn));

#endif
