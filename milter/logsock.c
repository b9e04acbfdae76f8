/*
 * logsock.c - syslog datagrams to /dev/log without a process-wide lock
 * (see logsock.h for why).
 *
 * LOGSOCK_SLOTS sockets, each with its mutex and its cached timestamp. A
 * sender takes the first free slot (trylock) starting from one picked by
 * its thread, so two threads only wait for each other when every slot is
 * busy: with 2 cores and 8 slots, practically never. The timestamp is
 * formatted once per second per slot: localtime_r takes glibc's tz lock,
 * which is the lock we are here to avoid.
 *
 * The header is what glibc 2.36's syslog(3) writes with LOG_PID and no
 * LOG_PERROR: "<PRI>%h %e %T IDENT[PID]: ". The pid is read at each send,
 * because the daemon opens the log before daemon(3) forks.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "logsock.h"

#define LOGSOCK_SLOTS 8
#define LOGSOCK_BATCH 64            /* datagrams per sendmmsg */
#define LOGSOCK_HEADER_MAX 128

struct logsock_slot {
    pthread_mutex_t lock;
    int fd;                         /* -1: to be (re)connected */
    time_t stamp_second;            /* the second STAMP shows */
    char stamp[32];                 /* "Dec  1 15:04:05" */
};

static struct {
    int ready;
    int facility;
    char ident[64];
    struct sockaddr_un addr;
    struct logsock_slot slot[LOGSOCK_SLOTS];
} logsock = {.slot = {[0 ... LOGSOCK_SLOTS - 1] = {PTHREAD_MUTEX_INITIALIZER, -1, 0, ""}}};

/* slot_connect - a fresh datagram socket connected to the log path. */
static int slot_connect(struct logsock_slot *s)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    if (connect(fd, (const struct sockaddr *) &logsock.addr, sizeof(logsock.addr)) < 0) {
        int saved = errno;

        close(fd);
        errno = saved;
        return -1;
    }
    if (s->fd >= 0)
        close(s->fd);
    s->fd = fd;
    return 0;
}

int logsock_open(const char *path, const char *ident, int facility)
{
    logsock_close();
    if (strlen(path) >= sizeof(logsock.addr.sun_path))
        return -1;
    memset(&logsock.addr, 0, sizeof(logsock.addr));
    logsock.addr.sun_family = AF_UNIX;
    memcpy(logsock.addr.sun_path, path, strlen(path) + 1);
    snprintf(logsock.ident, sizeof(logsock.ident), "%s", ident);
    logsock.facility = facility;
    /* Connect every slot now, before a privilege drop could stop a connect. */
    for (int i = 0; i < LOGSOCK_SLOTS; i++)
        if (slot_connect(&logsock.slot[i]) < 0) {
            logsock_close();
            return -1;
        }
    logsock.ready = 1;
    return 0;
}

void logsock_close(void)
{
    for (int i = 0; i < LOGSOCK_SLOTS; i++)
        if (logsock.slot[i].fd >= 0) {
            close(logsock.slot[i].fd);
            logsock.slot[i].fd = -1;
        }
    logsock.ready = 0;
}

int logsock_ready(void)
{
    return logsock.ready;
}

/* slot_take - a locked slot, the first free one from this thread's start. */
static struct logsock_slot *slot_take(void)
{
    size_t start = (size_t) ((uintptr_t) pthread_self() >> 12) % LOGSOCK_SLOTS;

    for (size_t i = 0; i < LOGSOCK_SLOTS; i++) {
        struct logsock_slot *s = &logsock.slot[(start + i) % LOGSOCK_SLOTS];

        if (pthread_mutex_trylock(&s->lock) == 0)
            return s;
    }
    pthread_mutex_lock(&logsock.slot[start].lock);
    return &logsock.slot[start];
}

/* slot_stamp - "Mmm dd hh:mm:ss" of now, formatted at most once a second. */
static const char *slot_stamp(struct logsock_slot *s)
{
    time_t now = time(NULL);
    struct tm tm;

    if (now != s->stamp_second || s->stamp[0] == '\0') {
        if (localtime_r(&now, &tm) == NULL
            || strftime(s->stamp, sizeof(s->stamp), "%h %e %T", &tm) == 0)
            snprintf(s->stamp, sizeof(s->stamp), "Jan  1 00:00:00");
        s->stamp_second = now;
    }
    return s->stamp;
}

/*
 * slot_send - send LINES[0..N) on S, at most LOGSOCK_BATCH per call;
 * returns how many went. A dead socket (the syslog daemon restarted and
 * made a new /dev/log) is reconnected once.
 */
static size_t slot_send(struct logsock_slot *s, const struct logsock_line *lines, size_t n)
{
    char headers[LOGSOCK_BATCH][LOGSOCK_HEADER_MAX];
    struct iovec iov[LOGSOCK_BATCH][2];
    struct mmsghdr msgs[LOGSOCK_BATCH];
    const char *stamp = slot_stamp(s);
    long pid = (long) getpid();
    size_t sent = 0;
    int reconnected = 0;

    if (s->fd < 0 && slot_connect(s) < 0)
        return 0;
    while (sent < n) {
        size_t batch = n - sent < LOGSOCK_BATCH ? n - sent : LOGSOCK_BATCH;
        int rc;

        memset(msgs, 0, batch * sizeof(msgs[0]));
        for (size_t i = 0; i < batch; i++) {
            const struct logsock_line *l = &lines[sent + i];
            int hlen = snprintf(headers[i], LOGSOCK_HEADER_MAX, "<%d>%s %s[%ld]: ",
                                LOG_MAKEPRI(logsock.facility, LOG_PRI(l->prio)) ,
                                stamp, logsock.ident, pid);

            if (hlen < 0 || hlen >= LOGSOCK_HEADER_MAX)
                hlen = LOGSOCK_HEADER_MAX - 1;
            iov[i][0] = (struct iovec) {headers[i], (size_t) hlen};
            iov[i][1] = (struct iovec) {(void *) l->text, strlen(l->text)};
            msgs[i].msg_hdr.msg_iov = iov[i];
            msgs[i].msg_hdr.msg_iovlen = 2;
        }
        rc = sendmmsg(s->fd, msgs, (unsigned int) batch, 0);
        if (rc > 0) {
            sent += (size_t) rc;
            continue;
        }
        if (rc < 0 && errno == EINTR)
            continue;
        if (reconnected || slot_connect(s) < 0)
            break;
        reconnected = 1;
    }
    return sent;
}

size_t logsock_send(const struct logsock_line *lines, size_t n)
{
    struct logsock_slot *s;
    size_t sent;
    int saved = errno;

    if (!logsock.ready || n == 0)
        return 0;
    s = slot_take();
    sent = slot_send(s, lines, n);
    pthread_mutex_unlock(&s->lock);
    errno = saved;
    return sent;
}
