/*
 * loadclient.c - a milter load generator that speaks to a filter the way
 * Postfix's milter8 client does (protocol version 6).
 *
 * Each of C threads owns one milter connection at a time. On it the thread
 * negotiates (SMFIC_OPTNEG, offering every action and every protocol step),
 * then, honouring what the filter declined (SMFIP_NO*) and the steps it
 * answers without a reply (SMFIP_NR_*), sends what Postfix's smtpd sends:
 * macros plus CONNECT and HELO once per connection; per message the MAIL,
 * RCPT (N recipients), DATA, headers, end of headers, body and end of
 * message events, each preceded by its macros, the queue id "i" given at
 * DATA, end of headers and end of message. At end of message it reads the
 * modification requests (add/delete recipient, add header...) until the
 * final reply, then sends ABORT as Postfix does after every transaction and
 * starts the next message on the same connection; after the configured
 * number of messages per connection (default: all of them) it sends QUIT
 * and connects again. Every command is one write(2), as Postfix flushes
 * each command.
 *
 * Each message carries five headers (Received, From, To, Subject,
 * Message-ID), or with -H 20 twenty, the five plus what real mail from a
 * large provider carries: more Received lines, DKIM-Signature, the ARC set,
 * Authentication-Results, MIME headers, List-Unsubscribe (about 4 KiB).
 *
 * Recipients follow a pattern with one "%u" (default "u%u@corp.example"),
 * the number drawn at random in [0, users), all distinct within a message.
 *
 * With -x ALIASPATTERN (e.g. "u%u@pop.example") it also checks what the
 * filter did: every message must get, for each of its recipients, exactly
 * one "add recipient with arguments" of <the alias> with NOTIFY=NEVER, no
 * other recipient change, and one added header, as coexist-milter does for
 * a store where every recipient is an unmigrated bcc user. Messages that
 * pass are counted as bcc_ok, the others as bcc_bad.
 *
 * SIGINT or SIGTERM ends a run early: the messages in flight finish and the
 * report covers what ran (for a load that must outlast something else).
 *
 * It reports messages/s, recipients/s, the latency of each message (from
 * its first command to the final reply at end of message) as p50, p99,
 * p99.9 and max and how many took longer than -L milliseconds, the final
 * replies by kind and the modifications received, in words and as one
 * "LOADCLIENT key=value ..." line for scripts. The exit status is 0 when
 * every message ended in continue or accept without a connection or
 * protocol error (and, with -x, every message passed the check), 1
 * otherwise, 2 for a usage error.
 */
#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <libmilter/mfdef.h>

#define LC_MAX_RCPTS 100
#define LC_PAT_MAX 150            /* each side of the %u in a pattern */
#define LC_ADDR_MAX 330
#define LC_PKT_MAX 65536
#define LC_SENDER "sender@client.example"
#define LC_CLIENT_NAME "client.example"
#define LC_CLIENT_ADDR "127.0.0.1"
#define LC_MTA_NAME "mta.bench.example"

/* The final answer to one message, or why there was none. */
enum lc_result {
    RES_CONTINUE, RES_ACCEPT, RES_TEMPFAIL, RES_REJECT, RES_DISCARD,
    RES_OTHER, RES_ERROR, RES_COUNT
};
static const char *const lc_result_names[RES_COUNT] = {
    "continue", "accept", "tempfail", "reject", "discard", "other_reply", "errors"
};

/* Modification requests received at end of message. */
enum lc_mod {
    MOD_ADDRCPT, MOD_ADDRCPT_PAR, MOD_DELRCPT, MOD_ADDHEADER, MOD_OTHER, MOD_COUNT
};
static const char *const lc_mod_names[MOD_COUNT] = {
    "addrcpt", "addrcpt_par", "delrcpt", "addheader", "other_mod"
};

/* An address pattern split around its "%u". */
struct lc_pattern {
    char prefix[LC_PAT_MAX];
    char suffix[LC_PAT_MAX];
};

/* The command line, read-only once the threads run. */
static struct {
    const char *socket;
    unsigned conns;
    unsigned long messages;     /* 0: run for seconds */
    double seconds;
    double warmup;              /* seconds whose messages are not measured */
    unsigned rcpts;
    unsigned long users;
    struct lc_pattern rcpt;     /* -p */
    struct lc_pattern alias;    /* -x */
    int check_bcc;              /* -x given */
    double slow_ms;             /* -L */
    unsigned long per_conn;     /* messages per connection; 0: unlimited */
    unsigned timeout;
    unsigned long seed;
    unsigned headers;           /* -H: 5 or 20 */
    int quiet;
    const char *label;
} opt;

/* SIGINT or SIGTERM: finish the messages in flight, then report. */
static volatile sig_atomic_t lc_stop;

/* Shared run state. */
static struct {
    struct timespec start;
    double measure_from;        /* seconds after start */
    unsigned long issued;       /* messages handed out */
} run;

/* One thread's tallies and latencies (nanoseconds). */
struct lc_thread {
    pthread_t tid;
    unsigned index;
    uint64_t rng;
    unsigned long results[RES_COUNT];
    unsigned long mods[MOD_COUNT];
    unsigned long total;        /* messages finished, warm-up included */
    unsigned long measured;     /* messages started after the warm-up */
    unsigned long connects;
    unsigned long bcc_ok, bcc_bad;
    struct lc_expect *expect;   /* -x: scratch for the current message */
    uint64_t *lat;
    size_t nlat, caplat;
    char err[256];              /* the first error, for the report */
};

/* One milter connection. */
struct lc_conn {
    int fd;
    unsigned long prot;         /* protocol flags the filter asked for */
    unsigned long acts;
    unsigned char rbuf[LC_PKT_MAX + 8];
    size_t rlen, rpos;
};

/* An outgoing packet being assembled. */
struct lc_pkt {
    unsigned char buf[LC_PKT_MAX];
    size_t len;
    int overflow;
};

/* ---- small helpers ---------------------------------------------------------- */

/* usage - the synopsis, then exit 2. */
static void usage(void) __attribute__((noreturn));
static void usage(void)
{
    fprintf(stderr,
            "usage: loadclient -s unix:PATH|inet:PORT@HOST [-c CONNS] [-n MSGS | -d SECS]\n"
            "                  [-r RCPTS] [-u USERS] [-p PATTERN] [-m MSGS_PER_CONN]\n"
            "                  [-x ALIASPATTERN] [-w WARMUP_SECS] [-L MS] [-t TIMEOUT]\n"
            "                  [-S SEED] [-H 5|20] [-l LABEL] [-q]\n"
            "  -c  concurrent connections, one thread each (default 1)\n"
            "  -n  total messages (default 1000), or -d run for SECS seconds\n"
            "  -r  recipients per message, distinct (default 1, at most %d)\n"
            "  -u  recipients are drawn from [0, USERS) (default 1000)\n"
            "  -p  recipient pattern with one %%u (default u%%u@corp.example)\n"
            "  -m  messages per connection, then QUIT and reconnect (0 = all, default)\n"
            "  -x  check that each recipient got a bcc to this pattern (e.g. u%%u@pop.example)\n"
            "  -L  also count messages slower than MS milliseconds (default 50)\n"
            "  -w  seconds at the start not counted in throughput and latency\n"
            "  -t  seconds to wait for a reply (default 30)\n"
            "  -H  headers per message: 5 (default) or 20, as real mail carries\n",
            LC_MAX_RCPTS);
    exit(2);
}

/* die - a setup error. */
static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
    va_list ap;

    fputs("loadclient: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

/* now_s - seconds since the run started. */
static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) (ts.tv_sec - run.start.tv_sec)
        + (double) (ts.tv_nsec - run.start.tv_nsec) / 1e9;
}

/* now_ns - a monotonic timestamp in nanoseconds. */
static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* rng_next - xorshift64*: cheap, per thread, good enough for picking users. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 2685821657736338717ull;
}

/* parse_ulong - a whole number in [MIN, MAX] or die. */
static unsigned long parse_ulong(const char *s, const char *what,
                                 unsigned long min, unsigned long max)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || *s == '-' || v < min || v > max)
        die("%s: '%s' is not a number in [%lu, %lu]", what, s, min, max);
    return v;
}

/* parse_secs - a positive number of seconds or die. */
static double parse_secs(const char *s, const char *what, int zero_ok)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || v < 0 || (v == 0 && !zero_ok)
        || v > 1e6)
        die("%s: '%s' is not a number of seconds", what, s);
    return v;
}

/* set_pattern - split PATTERN around its one "%u" into PAT. */
static void set_pattern(struct lc_pattern *pat, const char *pattern)
{
    const char *p = strstr(pattern, "%u");
    size_t plen;

    if (p == NULL || strstr(p + 2, "%") != NULL || memchr(pattern, '%', (size_t) (p - pattern)))
        die("pattern '%s' must contain exactly one %%u and no other %%", pattern);
    plen = (size_t) (p - pattern);
    if (plen >= sizeof(pat->prefix) || strlen(p + 2) >= sizeof(pat->suffix))
        die("pattern '%s' is too long", pattern);
    memcpy(pat->prefix, pattern, plen);
    pat->prefix[plen] = '\0';
    strcpy(pat->suffix, p + 2);
}

/* make_addr - the address of PAT for user number N into BUF. */
static void make_addr(const struct lc_pattern *pat, char *buf, size_t len, unsigned long n)
{
    snprintf(buf, len, "%s%lu%s", pat->prefix, n, pat->suffix);
}

/* thread_error - remember the first error of thread T. */
static void thread_error(struct lc_thread *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void thread_error(struct lc_thread *t, const char *fmt, ...)
{
    va_list ap;

    if (t->err[0] != '\0')
        return;
    va_start(ap, fmt);
    vsnprintf(t->err, sizeof(t->err), fmt, ap);
    va_end(ap);
}

/* ---- packets ------------------------------------------------------------- */

/* pkt_begin - start a packet for command CMD. */
static void pkt_begin(struct lc_pkt *p, char cmd)
{
    p->len = 4;
    p->overflow = 0;
    p->buf[p->len++] = (unsigned char) cmd;
}

/* pkt_bytes - append LEN bytes. */
static void pkt_bytes(struct lc_pkt *p, const void *data, size_t len)
{
    if (p->overflow || len > sizeof(p->buf) - p->len) {
        p->overflow = 1;
        return;
    }
    memcpy(p->buf + p->len, data, len);
    p->len += len;
}

/* pkt_str - append S with its terminating NUL. */
static void pkt_str(struct lc_pkt *p, const char *s)
{
    pkt_bytes(p, s, strlen(s) + 1);
}

/* pkt_u32 - append V in network order. */
static void pkt_u32(struct lc_pkt *p, uint32_t v)
{
    uint32_t n = htonl(v);

    pkt_bytes(p, &n, sizeof(n));
}

/* write_all - LEN bytes to FD or -1. */
static int write_all(int fd, const unsigned char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t) n;
    }
    return 0;
}

/* pkt_send - fill in the length and send the packet in one write. */
static int pkt_send(struct lc_conn *c, struct lc_pkt *p)
{
    if (p->overflow)
        return -1;
    uint32_t n = htonl((uint32_t) (p->len - 4));

    memcpy(p->buf, &n, 4);
    return write_all(c->fd, p->buf, p->len);
}

/* send_simple - a command with no data. */
static int send_simple(struct lc_conn *c, char cmd)
{
    struct lc_pkt p;

    pkt_begin(&p, cmd);
    return pkt_send(c, &p);
}

/*
 * send_macros - SMFIC_MACRO for command CMD with NAME, VALUE pairs
 * (NULL-terminated), as Postfix sends before each event it does not skip.
 */
static int send_macros(struct lc_conn *c, char cmd, ...)
{
    struct lc_pkt p;
    const char *s;
    va_list ap;

    pkt_begin(&p, SMFIC_MACRO);
    pkt_bytes(&p, &cmd, 1);
    va_start(ap, cmd);
    while ((s = va_arg(ap, const char *)) != NULL)
        pkt_str(&p, s);
    va_end(ap);
    return pkt_send(c, &p);
}

/* fill - read more bytes into C's buffer; -1 on EOF, error or timeout. */
static int fill(struct lc_conn *c)
{
    ssize_t n;

    if (c->rpos > 0) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
    do
        n = read(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return -1;
    c->rlen += (size_t) n;
    return 0;
}

/*
 * read_reply - the next packet from the filter: its command in *CMD and its
 * data (not NUL-terminated) in *DATA, *LEN. Returns 0, or -1 on EOF, a
 * timeout or a malformed packet.
 */
static int read_reply(struct lc_conn *c, char *cmd, const unsigned char **data,
                      size_t *len)
{
    uint32_t n;

    while (c->rlen - c->rpos < 4)
        if (fill(c) < 0)
            return -1;
    memcpy(&n, c->rbuf + c->rpos, 4);
    n = ntohl(n);
    if (n < 1 || n > LC_PKT_MAX)
        return -1;
    while (c->rlen - c->rpos < 4 + (size_t) n)
        if (fill(c) < 0)
            return -1;
    *cmd = (char) c->rbuf[c->rpos + 4];
    *data = c->rbuf + c->rpos + 5;
    *len = n - 1;
    c->rpos += 4 + (size_t) n;
    return 0;
}

/* ---- the conversation --------------------------------------------------------- */

/* conn_open - connect to opt.socket; returns the fd or -1. */
static int conn_open(struct lc_thread *t)
{
    const char *spec = opt.socket;
    struct timeval tv = {.tv_sec = (time_t) opt.timeout, .tv_usec = 0};
    int fd = -1;

    if (strncmp(spec, "unix:", 5) == 0 || strncmp(spec, "local:", 6) == 0) {
        struct sockaddr_un sun;
        const char *path = strchr(spec, ':') + 1;

        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        if (strlen(path) >= sizeof(sun.sun_path)) {
            thread_error(t, "socket path too long: %s", path);
            return -1;
        }
        strcpy(sun.sun_path, path);
        if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0
            || connect(fd, (struct sockaddr *) &sun, sizeof(sun)) < 0) {
            thread_error(t, "connect %s: %s", spec, strerror(errno));
            if (fd >= 0)
                close(fd);
            return -1;
        }
    } else if (strncmp(spec, "inet:", 5) == 0) {
        char port[16], host[256];
        const char *at = strchr(spec + 5, '@');
        struct addrinfo hints, *res = NULL;
        int one = 1, rc;

        if (at == NULL || (size_t) (at - spec - 5) >= sizeof(port)
            || strlen(at + 1) >= sizeof(host)) {
            thread_error(t, "bad socket %s (inet:PORT@HOST)", spec);
            return -1;
        }
        memcpy(port, spec + 5, (size_t) (at - spec - 5));
        port[at - spec - 5] = '\0';
        strcpy(host, at + 1);
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
            thread_error(t, "%s: %s", spec, gai_strerror(rc));
            return -1;
        }
        fd = socket(res->ai_family, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
            thread_error(t, "connect %s: %s", spec, strerror(errno));
            if (fd >= 0)
                close(fd);
            freeaddrinfo(res);
            return -1;
        }
        freeaddrinfo(res);
        /* Small commands with no reply in between: Nagle would add delays. */
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    } else {
        thread_error(t, "socket %s: want unix:PATH or inet:PORT@HOST", spec);
        return -1;
    }
    (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    t->connects++;
    return fd;
}

/* expect_continue - read the reply to a step that has one; RES_CONTINUE if it went on. */
static enum lc_result expect_continue(struct lc_thread *t, struct lc_conn *c,
                                      const char *step)
{
    const unsigned char *data;
    size_t len;
    char cmd;

    for (;;) {
        if (read_reply(c, &cmd, &data, &len) < 0) {
            thread_error(t, "no reply to %s: %s", step,
                         errno ? strerror(errno) : "connection closed");
            return RES_ERROR;
        }
        switch (cmd) {
        case SMFIR_PROGRESS: continue;
        case SMFIR_CONTINUE: return RES_CONTINUE;
        case SMFIR_ACCEPT: return RES_ACCEPT;
        case SMFIR_TEMPFAIL: return RES_TEMPFAIL;
        case SMFIR_REJECT: return RES_REJECT;
        case SMFIR_DISCARD: return RES_DISCARD;
        case SMFIR_REPLYCODE:
            return len > 0 && data[0] == '4' ? RES_TEMPFAIL : RES_REJECT;
        default:
            thread_error(t, "unexpected reply '%c' to %s", cmd, step);
            return RES_OTHER;
        }
    }
}

/* negotiate - connect and agree on the protocol; 0 or -1. */
static int negotiate(struct lc_thread *t, struct lc_conn *c)
{
    const unsigned char *data;
    struct lc_pkt p;
    uint32_t v[3];
    size_t len;
    char cmd;

    c->rlen = c->rpos = 0;
    if ((c->fd = conn_open(t)) < 0)
        return -1;
    pkt_begin(&p, SMFIC_OPTNEG);
    pkt_u32(&p, SMFI_PROT_VERSION);
    pkt_u32(&p, SMFI_CURR_ACTS);
    pkt_u32(&p, SMFI_CURR_PROT);
    if (pkt_send(c, &p) < 0 || read_reply(c, &cmd, &data, &len) < 0) {
        thread_error(t, "option negotiation: %s", errno ? strerror(errno) : "connection closed");
        return -1;
    }
    if (cmd != SMFIC_OPTNEG || len < 12) {
        thread_error(t, "option negotiation: reply '%c' of %zu bytes", cmd, len);
        return -1;
    }
    memcpy(v, data, sizeof(v));
    c->acts = ntohl(v[1]);
    c->prot = ntohl(v[2]);
    /* Any macro list requests after the 12 bytes are ignored: we send our set. */
    if (!(c->prot & SMFIP_NOCONNECT)) {
        pkt_begin(&p, SMFIC_CONNECT);
        pkt_str(&p, LC_CLIENT_NAME);
        pkt_bytes(&p, "4", 1);
        pkt_bytes(&p, "\x9c\x40", 2);    /* port 40000 */
        pkt_str(&p, LC_CLIENT_ADDR);
        if (send_macros(c, SMFIC_CONNECT, "j", LC_MTA_NAME, "{daemon_name}",
                        "bench", "v", "Postfix 3.7", "_",
                        LC_CLIENT_NAME " [" LC_CLIENT_ADDR "]",
                        "{client_addr}", LC_CLIENT_ADDR, "{client_name}",
                        LC_CLIENT_NAME, (char *) NULL) < 0 || pkt_send(c, &p) < 0)
            return thread_error(t, "send CONNECT: %s", strerror(errno)), -1;
        if (!(c->prot & SMFIP_NR_CONN) && expect_continue(t, c, "CONNECT") != RES_CONTINUE)
            return -1;
    }
    if (!(c->prot & SMFIP_NOHELO)) {
        pkt_begin(&p, SMFIC_HELO);
        pkt_str(&p, LC_CLIENT_NAME);
        if (pkt_send(c, &p) < 0)
            return thread_error(t, "send HELO: %s", strerror(errno)), -1;
        if (!(c->prot & SMFIP_NR_HELO) && expect_continue(t, c, "HELO") != RES_CONTINUE)
            return -1;
    }
    return 0;
}

/* conn_close - QUIT (if CLEAN) and close. */
static void conn_close(struct lc_conn *c, int clean)
{
    if (c->fd < 0)
        return;
    if (clean)
        (void) send_simple(c, SMFIC_QUIT);
    close(c->fd);
    c->fd = -1;
}

/*
 * step - send packet P (after its macros were sent) and, unless the filter
 * said it gives no reply (NR_FLAG), read the reply. RES_CONTINUE to go on.
 */
static enum lc_result step(struct lc_thread *t, struct lc_conn *c,
                           struct lc_pkt *p, unsigned long nr_flag, const char *name)
{
    if (pkt_send(c, p) < 0) {
        thread_error(t, "send %s: %s", name, strerror(errno));
        return RES_ERROR;
    }
    if (c->prot & nr_flag)
        return RES_CONTINUE;
    return expect_continue(t, c, name);
}

/* What -x expects of one message, and what it got. */
struct lc_expect {
    unsigned n;                                 /* recipients */
    char alias[LC_MAX_RCPTS][LC_ADDR_MAX + 2];  /* "<alias>" of each */
    unsigned char seen[LC_MAX_RCPTS];
    unsigned headers;                           /* headers added */
    char wrong[LC_ADDR_MAX + 64];               /* the first surprise */
};

/* expect_addrcpt_par - check one added recipient (DATA: "<addr>\0args\0"). */
static void expect_addrcpt_par(struct lc_expect *x, const unsigned char *data, size_t len)
{
    const char *addr = (const char *) data, *args = "";
    size_t alen = strnlen(addr, len);

    if (alen + 1 < len)
        args = addr + alen + 1;
    if (alen == len || (alen + 1 < len && memchr(args, '\0', len - alen - 1) == NULL)) {
        if (x->wrong[0] == '\0')
            snprintf(x->wrong, sizeof(x->wrong), "malformed add recipient");
        return;
    }
    for (unsigned i = 0; i < x->n; i++) {
        if (!x->seen[i] && strcmp(x->alias[i], addr) == 0) {
            x->seen[i] = 1;
            if (strcmp(args, "NOTIFY=NEVER") != 0 && x->wrong[0] == '\0')
                snprintf(x->wrong, sizeof(x->wrong), "%.330s added with '%.40s'",
                         addr, args);
            return;
        }
    }
    if (x->wrong[0] == '\0')
        snprintf(x->wrong, sizeof(x->wrong), "unexpected add %.330s", addr);
}

/* expect_verdict - whether the message got exactly what -x expects. */
static int expect_verdict(struct lc_thread *t, struct lc_expect *x, const char *qid)
{
    for (unsigned i = 0; i < x->n && x->wrong[0] == '\0'; i++)
        if (!x->seen[i])
            snprintf(x->wrong, sizeof(x->wrong), "no add of %.330s", x->alias[i]);
    if (x->wrong[0] == '\0' && x->headers != 1)
        snprintf(x->wrong, sizeof(x->wrong), "%u headers added, want 1", x->headers);
    if (x->wrong[0] == '\0')
        return 1;
    thread_error(t, "message %s: %s", qid, x->wrong);
    return 0;
}

/*
 * eom_replies - modifications, then the final reply to end of message.
 * X, if not NULL, collects what -x checks.
 */
static enum lc_result eom_replies(struct lc_thread *t, struct lc_conn *c, struct lc_expect *x)
{
    const unsigned char *data;
    size_t len;
    char cmd;

    for (;;) {
        if (read_reply(c, &cmd, &data, &len) < 0) {
            thread_error(t, "no reply to end of message: %s",
                         errno ? strerror(errno) : "connection closed");
            return RES_ERROR;
        }
        if (x != NULL && (cmd == SMFIR_ADDRCPT || cmd == SMFIR_DELRCPT)
            && x->wrong[0] == '\0')
            snprintf(x->wrong, sizeof(x->wrong), "unexpected %s %.*s",
                     cmd == SMFIR_ADDRCPT ? "add (no args)" : "delete",
                     (int) strnlen((const char *) data, len < 330 ? len : 330), data);
        switch (cmd) {
        case SMFIR_ADDRCPT: t->mods[MOD_ADDRCPT]++; continue;
        case SMFIR_ADDRCPT_PAR:
            t->mods[MOD_ADDRCPT_PAR]++;
            if (x != NULL)
                expect_addrcpt_par(x, data, len);
            continue;
        case SMFIR_DELRCPT: t->mods[MOD_DELRCPT]++; continue;
        case SMFIR_ADDHEADER:
            t->mods[MOD_ADDHEADER]++;
            if (x != NULL)
                x->headers++;
            continue;
        case SMFIR_INSHEADER: case SMFIR_CHGHEADER: case SMFIR_CHGFROM:
        case SMFIR_REPLBODY: case SMFIR_QUARANTINE:
            t->mods[MOD_OTHER]++;
            continue;
        case SMFIR_PROGRESS: continue;
        case SMFIR_CONTINUE: return RES_CONTINUE;
        case SMFIR_ACCEPT: return RES_ACCEPT;
        case SMFIR_TEMPFAIL: return RES_TEMPFAIL;
        case SMFIR_REJECT: return RES_REJECT;
        case SMFIR_DISCARD: return RES_DISCARD;
        case SMFIR_REPLYCODE:
            return len > 0 && data[0] == '4' ? RES_TEMPFAIL : RES_REJECT;
        default:
            thread_error(t, "unexpected reply '%c' at end of message", cmd);
            return RES_OTHER;
        }
    }
}

/* pick_rcpts - N distinct user numbers. */
static void pick_rcpts(struct lc_thread *t, unsigned long *nums, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        unsigned long v;
        unsigned j;

        do {
            v = (unsigned long) (rng_next(&t->rng) % opt.users);
            for (j = 0; j < i && nums[j] != v; j++)
                ;
        } while (j < i);
        nums[i] = v;
    }
}

/*
 * The fifteen headers -H 20 adds after the first five: what a message from a
 * large provider carries by the time it reaches the MX (sizes as seen in
 * real mail; the signatures are random-looking base64 of the real length).
 */
static const char *const real_headers[15][2] = {
    {"Received", "from mail-sor-f41.google.com (mail-sor-f41.google.com [209.85.220.41])\n"
     "\tby mx.corp.example (Postfix) with ESMTPS id 4Xb2Tq1Zk9z9sWc\n"
     "\tfor <adam.barr@corp.example>; Tue,  1 Dec 2026 15:04:05 +0000 (UTC)"},
    {"Received", "by mail-sor-f41.google.com with SMTP id a640c23a62f3a-a9a0ef5179dso1;\n"
     "\tTue, 01 Dec 2026 07:04:05 -0800 (PST)"},
    {"Received", "from [192.168.1.20] (host-81-2-3-4.example.net. [81.2.3.4])\n"
     "\tby smtp.gmail.com with ESMTPSA id 4fb4d7f45d1cf-5c8b1bd3a5bsm1.1.2026.12.01;\n"
     "\tTue, 01 Dec 2026 07:04:04 -0800 (PST)"},
    {"DKIM-Signature", "v=1; a=rsa-sha256; c=relaxed/relaxed; d=client.example; s=20230601;"
     " t=1796137445; x=1796742245; darn=corp.example;\n"
     "\th=to:subject:message-id:date:from:mime-version:from:to:cc:subject\n"
     "\t :date:message-id:reply-to;\n"
     "\tbh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\n"
     "\tb=Zk3XnN9pV1Qw8rJf0yTqLh2sB6cUa4mEoR7dKvG5xPiW3nYtHbC1zAeSg9uMjFl0rDq\n"
     "\t xO2wKsVb8pN6yT4hQmUe7iLcJ3aRz5fGd1nWkYo9tBvXs0MjE2pCq8uHlA6rIgZyF4\n"
     "\t eD7bSnV3wK1mPxQ9tRj5oLcU2hGa8zYi0fNvB6kEs4dMqW7pJrT3yXlC1gAuH9eOnZ\n"
     "\t 5bF2mKiS8vD0wQyR4jLcN7xTgP3hUa6oE1zBnM9sVk2qWfY5rJd8tHlG0pCiX4uAeO\n"
     "\t 7yN3gZbK1mS6wQvT9jR2oLcF5hDa8xUi4pEnB0kMs3dYqW7zJrG1tVlC6gAuH9eXnZ\n"
     "\t Qw=="},
    {"X-Google-DKIM-Signature", "v=1; a=rsa-sha256; c=relaxed/relaxed; d=1e100.net;"
     " s=20230601; t=1796137445; x=1796742245;\n"
     "\th=to:subject:message-id:date:from:mime-version:x-gm-message-state;\n"
     "\tbh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\n"
     "\tb=p0Xz8qH3nVb5Lw1Tr9KsYc2mJd7Ue4oGf6aQiBx0NyRtW3lZ8vCpE5hSjM1kDnA9gO\n"
     "\t uT2bYe7rQx4wLc6mVi0zNs3Kf8pHjG1dRa5tB9oUlE2yWnX7qCg4vMkZ6hSiD0JeF3\n"
     "\t rPb8Ao=="},
    {"ARC-Seal", "i=1; a=rsa-sha256; t=1796137445; cv=none; d=google.com; s=arc-20240605;\n"
     "\tb=Hq9Vb2Lx5Nw8Tr1KsYc3mJd6Ue0oGf4aQiBz7NyRtW2lZ9vCpE8hSjM5kDnA1gOuT3\n"
     "\t bYe6rQx0wLc2mVi7zNs4Kf9pHjG5dRa1tB8oUlE3yWnX6qCg0vMkZ2hSiD7JeF4rPb\n"
     "\t 9AoXz1qH5nVb3Lw6Tr8KsYc0mJd2Ue7oGf5aQiBx4NyRtW1lZ3vCpE9hSjM6kDnA8g==" },
    {"ARC-Message-Signature", "i=1; a=rsa-sha256; c=relaxed/relaxed; d=google.com;"
     " s=arc-20240605;\n"
     "\th=to:subject:message-id:date:from:mime-version:dkim-signature;\n"
     "\tbh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\n"
     "\tb=Tr5KsYc8mJd1Ue3oGf7aQiBz2NyRtW6lZ0vCpE4hSjM9kDnA5gOuT1bYe8rQx3wLc\n"
     "\t 7mVi2zNs0Kf5pHjG9dRa4tB1oUlE6yWnX3qCg8vMkZ7hSiD2JeF0rPb5AoXz9qH4nV\n"
     "\t b1Lw=="},
    {"ARC-Authentication-Results", "i=1; mx.google.com;\n"
     "\tdkim=pass header.i=@client.example header.s=20230601 header.b=Zk3XnN9p;\n"
     "\tspf=pass (google.com: domain of sender@client.example designates"
     " 209.85.220.41 as permitted sender) smtp.mailfrom=sender@client.example;\n"
     "\tdmarc=pass (p=NONE sp=QUARANTINE dis=NONE) header.from=client.example"},
    {"Authentication-Results", "mx.corp.example;\n"
     "\tdkim=pass (2048-bit key; unprotected) header.d=client.example"
     " header.i=@client.example header.a=rsa-sha256 header.s=20230601 header.b=Zk3XnN9p;\n"
     "\tdkim-atps=neutral"},
    {"X-Gm-Message-State", "AOJu0YwQ3vN8pL1mKs5TrYc9Jd2Ue7oGf4aQiBz6NyRtW0lZ3vCpE8hSjM1kDnA5gOuT"},
    {"MIME-Version", "1.0"},
    {"Date", "Tue, 1 Dec 2026 16:04:04 +0100"},
    {"Content-Type", "multipart/alternative; boundary=\"000000000000c0ffee0123456789\""},
    {"List-Unsubscribe", "<mailto:unsubscribe@client.example?subject=unsubscribe>,\n"
     "\t<https://client.example/unsubscribe?id=0123456789abcdef>"},
    {"X-Mailer", "coexist-milter loadclient"},
};

/* message - one transaction on connection C; its result. */
static enum lc_result message(struct lc_thread *t, struct lc_conn *c, unsigned long seq)
{
    static const char body[] = "This is a coexist-milter benchmark message.\r\n"
        "It has a short body, as the filter under test does not read it.\r\n";
    unsigned long nums[LC_MAX_RCPTS];
    char addr[LC_ADDR_MAX], first[LC_ADDR_MAX], qid[32];
    struct lc_expect *x = NULL;
    const char *lead = (c->prot & SMFIP_HDR_LEADSPC) ? " " : "";
    struct lc_pkt p;
    enum lc_result r;

    /* A Postfix-like queue id: unique per thread and message. */
    snprintf(qid, sizeof(qid), "%02X%08lX", t->index & 0xff, seq & 0xffffffffUL);
    pick_rcpts(t, nums, opt.rcpts);
    make_addr(&opt.rcpt, first, sizeof(first), nums[0]);
    if (opt.check_bcc) {
        x = t->expect;
        x->n = opt.rcpts;
        x->headers = 0;
        x->wrong[0] = '\0';
        for (unsigned i = 0; i < opt.rcpts; i++) {
            char alias[LC_ADDR_MAX];

            make_addr(&opt.alias, alias, sizeof(alias), nums[i]);
            snprintf(x->alias[i], sizeof(x->alias[i]), "<%s>", alias);
            x->seen[i] = 0;
        }
    }

#define STEP(nr, name) do { \
        if ((r = step(t, c, &p, (nr), (name))) != RES_CONTINUE) return r; \
    } while (0)
#define MACROS(...) do { \
        if (send_macros(c, __VA_ARGS__, (char *) NULL) < 0) { \
            thread_error(t, "send macros: %s", strerror(errno)); return RES_ERROR; } \
    } while (0)

    if (!(c->prot & SMFIP_NOMAIL)) {
        MACROS(SMFIC_MAIL, "{mail_addr}", LC_SENDER, "{mail_host}", "client.example",
               "{mail_mailer}", "smtp");
        pkt_begin(&p, SMFIC_MAIL);
        pkt_str(&p, "<" LC_SENDER ">");
        pkt_str(&p, "BODY=8BITMIME");
        STEP(SMFIP_NR_MAIL, "MAIL");
    }
    for (unsigned i = 0; i < opt.rcpts && !(c->prot & SMFIP_NORCPT); i++) {
        char bracketed[LC_ADDR_MAX + 2];

        make_addr(&opt.rcpt, addr, sizeof(addr), nums[i]);
        snprintf(bracketed, sizeof(bracketed), "<%s>", addr);
        MACROS(SMFIC_RCPT, "{rcpt_addr}", addr, "{rcpt_host}", "127.0.0.1",
               "{rcpt_mailer}", "smtp");
        pkt_begin(&p, SMFIC_RCPT);
        pkt_str(&p, bracketed);
        STEP(SMFIP_NR_RCPT, "RCPT");
    }
    if (!(c->prot & SMFIP_NODATA)) {
        MACROS(SMFIC_DATA, "i", qid);
        pkt_begin(&p, SMFIC_DATA);
        STEP(SMFIP_NR_DATA, "DATA");
    }
    if (!(c->prot & SMFIP_NOHDRS)) {
        const char *names[5] = {"Received", "From", "To", "Subject", "Message-ID"};
        char values[5][LC_ADDR_MAX + 256];

        snprintf(values[0], sizeof(values[0]),
                 "%sfrom " LC_CLIENT_NAME " (localhost [127.0.0.1])\n\tby "
                 LC_MTA_NAME " (Postfix) with ESMTP id %s\n\tfor <%s>", lead, qid, first);
        snprintf(values[1], sizeof(values[1]), "%s<" LC_SENDER ">", lead);
        snprintf(values[2], sizeof(values[2]), "%s<%s>", lead, first);
        snprintf(values[3], sizeof(values[3]), "%scoexist-milter benchmark %lu", lead, seq);
        snprintf(values[4], sizeof(values[4]), "%s<%s." LC_SENDER ">", lead, qid);
        for (int h = 0; h < 5; h++) {
            pkt_begin(&p, SMFIC_HEADER);
            pkt_str(&p, names[h]);
            pkt_str(&p, values[h]);
            STEP(SMFIP_NR_HDR, "HEADER");
        }
        for (unsigned h = 0; opt.headers == 20 && h < sizeof(real_headers) / sizeof(real_headers[0]); h++) {
            char value[2048];

            snprintf(value, sizeof(value), "%s%s", lead, real_headers[h][1]);
            pkt_begin(&p, SMFIC_HEADER);
            pkt_str(&p, real_headers[h][0]);
            pkt_str(&p, value);
            STEP(SMFIP_NR_HDR, "HEADER");
        }
    }
    if (!(c->prot & SMFIP_NOEOH)) {
        MACROS(SMFIC_EOH, "i", qid);
        pkt_begin(&p, SMFIC_EOH);
        STEP(SMFIP_NR_EOH, "EOH");
    }
    if (!(c->prot & SMFIP_NOBODY)) {
        pkt_begin(&p, SMFIC_BODY);
        pkt_bytes(&p, body, sizeof(body) - 1);
        if (pkt_send(c, &p) < 0) {
            thread_error(t, "send BODY: %s", strerror(errno));
            return RES_ERROR;
        }
        if (!(c->prot & SMFIP_NR_BODY)) {
            const unsigned char *data;
            size_t len;
            char cmd;

            if (read_reply(c, &cmd, &data, &len) < 0) {
                thread_error(t, "no reply to BODY");
                return RES_ERROR;
            }
            if (cmd != SMFIR_CONTINUE && cmd != SMFIR_SKIP) {
                thread_error(t, "reply '%c' to BODY", cmd);
                return RES_OTHER;
            }
        }
    }
    MACROS(SMFIC_BODYEOB, "i", qid);
    pkt_begin(&p, SMFIC_BODYEOB);
    if (pkt_send(c, &p) < 0) {
        thread_error(t, "send end of message: %s", strerror(errno));
        return RES_ERROR;
    }
    r = eom_replies(t, c, x);
    if (x != NULL && (r == RES_CONTINUE || r == RES_ACCEPT)) {
        if (expect_verdict(t, x, qid))
            t->bcc_ok++;
        else
            t->bcc_bad++;
    }
    return r;
#undef STEP
#undef MACROS
}

/* record_latency - keep one message's latency in nanoseconds. */
static void record_latency(struct lc_thread *t, uint64_t ns)
{
    if (t->nlat == t->caplat) {
        size_t cap = t->caplat ? 2 * t->caplat : 65536;
        uint64_t *grown = realloc(t->lat, cap * sizeof(*grown));

        if (grown == NULL)
            return;             /* the latency sample is incomplete, not the run */
        t->lat = grown;
        t->caplat = cap;
    }
    t->lat[t->nlat++] = ns;
}

/* on_signal - end the run early (the report covers what ran). */
static void on_signal(int sig)
{
    (void) sig;
    lc_stop = 1;
}

/* next_message - whether to send another message; its sequence number. */
static int next_message(unsigned long *seq)
{
    if (lc_stop)
        return 0;
    if (opt.messages == 0) {
        *seq = __atomic_fetch_add(&run.issued, 1, __ATOMIC_RELAXED);
        return now_s() < opt.seconds + opt.warmup;
    }
    *seq = __atomic_fetch_add(&run.issued, 1, __ATOMIC_RELAXED);
    return *seq < opt.messages;
}

/* worker - one connection's worth of traffic at a time, until done. */
static void *worker(void *arg)
{
    struct lc_thread *t = arg;
    struct lc_conn *c = malloc(sizeof(*c));
    unsigned long seq, on_conn = 0;

    if (c == NULL) {
        thread_error(t, "out of memory");
        t->results[RES_ERROR]++;
        return NULL;
    }
    c->fd = -1;
    while (next_message(&seq)) {
        double started = now_s();
        uint64_t t0;
        enum lc_result r;

        if (c->fd < 0) {
            if (negotiate(t, c) < 0) {
                t->results[RES_ERROR]++;
                conn_close(c, 0);
                /* A filter that is down would make this spin: stop the thread. */
                break;
            }
            on_conn = 0;
        }
        t0 = now_ns();
        r = message(t, c, seq);
        if (r != RES_ERROR && send_simple(c, SMFIC_ABORT) < 0) {
            thread_error(t, "send ABORT: %s", strerror(errno));
            r = RES_ERROR;
        }
        t->results[r]++;
        t->total++;
        if (r == RES_CONTINUE || r == RES_ACCEPT) {
            if (started >= run.measure_from) {
                record_latency(t, now_ns() - t0);
                t->measured++;
            }
        }
        /* After a failure the stream may be out of step: start afresh. */
        if (r == RES_ERROR || r == RES_OTHER)
            conn_close(c, 0);
        else if (opt.per_conn != 0 && ++on_conn >= opt.per_conn)
            conn_close(c, 1);
    }
    conn_close(c, 1);
    free(c);
    return NULL;
}

/* ---- report ----------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

    return x < y ? -1 : x > y;
}

/* pct_ms - the Pth percentile of sorted V (N values) in milliseconds. */
static double pct_ms(const uint64_t *v, size_t n, double p)
{
    size_t i;

    if (n == 0)
        return 0;
    i = (size_t) (p * (double) (n - 1) + 0.5);
    return (double) v[i] / 1e6;
}

/* report - sum the threads and print both forms. Returns the exit status. */
static int report(struct lc_thread *th, double elapsed)
{
    unsigned long res[RES_COUNT] = {0}, mods[MOD_COUNT] = {0};
    unsigned long total = 0, measured = 0, connects = 0, bcc_ok = 0, bcc_bad = 0;
    unsigned long slow = 0;
    size_t nlat = 0, k = 0;
    uint64_t *lat;
    double secs = elapsed - run.measure_from, msg_s, p50, p99, p999, max;
    const char *err = "";

    for (unsigned i = 0; i < opt.conns; i++) {
        for (int r = 0; r < RES_COUNT; r++)
            res[r] += th[i].results[r];
        for (int m = 0; m < MOD_COUNT; m++)
            mods[m] += th[i].mods[m];
        total += th[i].total;
        measured += th[i].measured;
        connects += th[i].connects;
        bcc_ok += th[i].bcc_ok;
        bcc_bad += th[i].bcc_bad;
        nlat += th[i].nlat;
        if (*err == '\0' && th[i].err[0] != '\0')
            err = th[i].err;
    }
    lat = malloc((nlat ? nlat : 1) * sizeof(*lat));
    if (lat == NULL)
        die("out of memory");
    for (unsigned i = 0; i < opt.conns; i++) {
        memcpy(lat + k, th[i].lat, th[i].nlat * sizeof(*lat));
        k += th[i].nlat;
    }
    qsort(lat, nlat, sizeof(*lat), cmp_u64);
    if (secs <= 0)
        secs = 1e-9;
    msg_s = (double) measured / secs;
    p50 = pct_ms(lat, nlat, 0.50);
    p99 = pct_ms(lat, nlat, 0.99);
    p999 = pct_ms(lat, nlat, 0.999);
    max = nlat ? (double) lat[nlat - 1] / 1e6 : 0;
    for (size_t i = nlat; i > 0 && (double) lat[i - 1] / 1e6 > opt.slow_ms; i--)
        slow++;
    if (!opt.quiet) {
        printf("loadclient: %s socket=%s conns=%u rcpts=%u users=%lu msgs_per_conn=%lu\n",
               opt.label, opt.socket, opt.conns, opt.rcpts, opt.users, opt.per_conn);
        printf("loadclient: %lu messages measured in %.2f s: %.1f msg/s, %.1f rcpt/s "
               "(%lu in all, %lu connections)\n", measured, secs, msg_s,
               msg_s * opt.rcpts, total, connects);
        printf("loadclient: latency per message: p50 %.3f ms, p99 %.3f ms, "
               "p99.9 %.3f ms, max %.3f ms; %lu over %g ms\n", p50, p99, p999, max,
               slow, opt.slow_ms);
        printf("loadclient: replies:");
        for (int r = 0; r < RES_COUNT; r++)
            printf(" %s %lu", lc_result_names[r], res[r]);
        printf("\nloadclient: modifications:");
        for (int m = 0; m < MOD_COUNT; m++)
            printf(" %s %lu", lc_mod_names[m], mods[m]);
        printf("\n");
        if (opt.check_bcc)
            printf("loadclient: bcc check: %lu messages as expected, %lu not\n",
                   bcc_ok, bcc_bad);
    }
    if (*err)
        fprintf(stderr, "loadclient: first error: %s\n", err);
    printf("LOADCLIENT label=%s conns=%u rcpts=%u users=%lu msgs=%lu secs=%.3f "
           "msg_s=%.1f rcpt_s=%.1f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f "
           "slow_ms=%g slow=%lu total_msgs=%lu connects=%lu", opt.label, opt.conns,
           opt.rcpts, opt.users, measured, secs, msg_s, msg_s * opt.rcpts, p50, p99,
           p999, max, opt.slow_ms, slow, total, connects);
    for (int r = 0; r < RES_COUNT; r++)
        printf(" %s=%lu", lc_result_names[r], res[r]);
    for (int m = 0; m < MOD_COUNT; m++)
        printf(" %s=%lu", lc_mod_names[m], mods[m]);
    if (opt.check_bcc)
        printf(" bcc_ok=%lu bcc_bad=%lu", bcc_ok, bcc_bad);
    printf("\n");
    fflush(stdout);
    free(lat);
    for (int r = RES_TEMPFAIL; r < RES_COUNT; r++)
        if (res[r] != 0)
            return 1;
    if (bcc_bad != 0)
        return 1;
    return total > 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    struct lc_thread *th;
    int ch, rc;

    opt.conns = 1;
    opt.messages = 1000;
    opt.rcpts = 1;
    opt.users = 1000;
    opt.timeout = 30;
    opt.seed = 1;
    opt.headers = 5;
    opt.label = "-";
    opt.slow_ms = 50;
    set_pattern(&opt.rcpt, "u%u@corp.example");
    while ((ch = getopt(argc, argv, "s:c:n:d:r:u:p:x:m:w:L:t:S:H:l:qh")) != -1) {
        switch (ch) {
        case 's': opt.socket = optarg; break;
        case 'c': opt.conns = (unsigned) parse_ulong(optarg, "-c", 1, 4096); break;
        case 'n': opt.messages = parse_ulong(optarg, "-n", 1, ULONG_MAX / 2); break;
        case 'd': opt.seconds = parse_secs(optarg, "-d", 0); opt.messages = 0; break;
        case 'r': opt.rcpts = (unsigned) parse_ulong(optarg, "-r", 1, LC_MAX_RCPTS); break;
        case 'u': opt.users = parse_ulong(optarg, "-u", 1, ULONG_MAX / 2); break;
        case 'p': set_pattern(&opt.rcpt, optarg); break;
        case 'x': set_pattern(&opt.alias, optarg); opt.check_bcc = 1; break;
        case 'L': opt.slow_ms = parse_secs(optarg, "-L", 1); break;
        case 'm': opt.per_conn = parse_ulong(optarg, "-m", 0, ULONG_MAX / 2); break;
        case 'w': opt.warmup = parse_secs(optarg, "-w", 1); break;
        case 't': opt.timeout = (unsigned) parse_ulong(optarg, "-t", 1, 3600); break;
        case 'S': opt.seed = parse_ulong(optarg, "-S", 0, ULONG_MAX); break;
        case 'H':
            opt.headers = (unsigned) parse_ulong(optarg, "-H", 5, 20);
            if (opt.headers != 5 && opt.headers != 20)
                usage();
            break;
        case 'l': opt.label = optarg; break;
        case 'q': opt.quiet = 1; break;
        default: usage();
        }
    }
    if (optind != argc || opt.socket == NULL)
        usage();
    if (opt.users < opt.rcpts)
        die("-u %lu users cannot give %u distinct recipients", opt.users, opt.rcpts);
    if (opt.messages != 0 && opt.warmup > 0)
        die("-w needs a duration (-d)");
    signal(SIGPIPE, SIG_IGN);
    {
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    if ((th = calloc(opt.conns, sizeof(*th))) == NULL)
        die("out of memory");
    clock_gettime(CLOCK_MONOTONIC, &run.start);
    run.measure_from = opt.warmup;
    for (unsigned i = 0; i < opt.conns; i++) {
        th[i].index = i;
        if (opt.check_bcc && (th[i].expect = malloc(sizeof(*th[i].expect))) == NULL)
            die("out of memory");
        th[i].rng = (opt.seed + 1) * 0x9E3779B97F4A7C15ull ^ ((uint64_t) i + 1) * 0xD1B54A32D192ED03ull;
        if (th[i].rng == 0)
            th[i].rng = 1;
        if ((rc = pthread_create(&th[i].tid, NULL, worker, &th[i])) != 0)
            die("pthread_create: %s", strerror(rc));
    }
    for (unsigned i = 0; i < opt.conns; i++)
        pthread_join(th[i].tid, NULL);
    rc = report(th, now_s());
    for (unsigned i = 0; i < opt.conns; i++) {
        free(th[i].lat);
        free(th[i].expect);
    }
    free(th);
    return rc;
}
