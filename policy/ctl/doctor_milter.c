/*
 * doctor_milter.c - is the milter there, and will it work with the MTA?
 * The socket exists and the MTA's account may connect to it; then a real
 * milter negotiation (SMFIC_OPTNEG, as Postfix 3.7 sends it) over the
 * socket, and the reply checked for the actions the milter needs (mlfi.h's
 * MLFI_ACTIONS: an MTA that does not grant them gets its connection
 * refused, and milter_default_action decides what happens to mail).
 */
#include <errno.h>
#include <grp.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "mlfi.h"       /* MLFI_ACTIONS: what the milter asks for; headers only */
#include "doctor.h"

/* Milter protocol packets: a 4-byte length (network order), then the command. */
#define PKT_MAX 65536

static void put32(unsigned char *p, unsigned long v)
{
    p[0] = (unsigned char) (v >> 24);
    p[1] = (unsigned char) (v >> 16);
    p[2] = (unsigned char) (v >> 8);
    p[3] = (unsigned char) v;
}

static unsigned long get32(const unsigned char *p)
{
    return (unsigned long) p[0] << 24 | (unsigned long) p[1] << 16
           | (unsigned long) p[2] << 8 | (unsigned long) p[3];
}

size_t doctor_optneg_packet(unsigned char *buf, size_t len)
{
    if (len < 17)
        return 0;
    put32(buf, 13);
    buf[4] = SMFIC_OPTNEG;
    put32(buf + 5, SMFI_PROT_VERSION);
    put32(buf + 9, SMFI_CURR_ACTS);
    put32(buf + 13, SMFI_CURR_PROT);
    return 17;
}

/* reply_name - what a one-letter milter reply means, for messages. */
static const char *reply_name(int cmd)
{
    switch (cmd) {
    case SMFIR_REJECT: return "reject";
    case SMFIR_TEMPFAIL: return "tempfail";
    case SMFIR_ACCEPT: return "accept";
    case SMFIR_CONTINUE: return "continue";
    case SMFIR_SHUTDOWN: return "shutdown";
    case SMFIR_REPLYCODE: return "a reply code";
    default: return "an unknown reply";
    }
}

int doctor_optneg_parse(const unsigned char *buf, size_t len, struct doctor_optneg *out,
                        char why[DOCTOR_ERR_MAX])
{
    unsigned long plen;

    if (len < 5) {
        doctor_fmt(why, DOCTOR_ERR_MAX, "a reply of %zu bytes, shorter than a packet", len);
        return -1;
    }
    plen = get32(buf);
    if (plen < 1 || plen > PKT_MAX || plen != len - 4) {
        doctor_fmt(why, DOCTOR_ERR_MAX, "a packet of length %lu in %zu bytes", plen, len);
        return -1;
    }
    if (buf[4] != SMFIC_OPTNEG) {
        doctor_fmt(why, DOCTOR_ERR_MAX, "answered the negotiation with '%c' (%s)",
                 buf[4] >= 0x20 && buf[4] < 0x7f ? buf[4] : '?', reply_name(buf[4]));
        return 1;
    }
    /* version, actions, protocol; the macro lists after them are the MTA's concern */
    if (plen < 13) {
        doctor_fmt(why, DOCTOR_ERR_MAX, "a negotiation reply of %lu bytes, not 13", plen);
        return -1;
    }
    out->dn_version = get32(buf + 5);
    out->dn_actions = get32(buf + 9);
    out->dn_protocol = get32(buf + 13);
    return 0;
}

unsigned long doctor_optneg_missing(unsigned long actions, char *out, size_t outlen)
{
    static const struct { unsigned long bit; const char *name; } need[] = {
        {SMFIF_ADDRCPT, "add recipient (SMFIF_ADDRCPT)"},
        {SMFIF_ADDRCPT_PAR, "add recipient with ESMTP arguments (SMFIF_ADDRCPT_PAR)"},
        {SMFIF_DELRCPT, "delete recipient (SMFIF_DELRCPT)"},
        {SMFIF_ADDHDRS, "add header (SMFIF_ADDHDRS)"},
    };
    unsigned long missing = 0;
    size_t used = 0;

    if (outlen > 0)
        out[0] = '\0';
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
        if ((MLFI_ACTIONS & need[i].bit) == 0 || (actions & need[i].bit) != 0)
            continue;
        missing |= need[i].bit;
        if (used < outlen) {
            int n = snprintf(out + used, outlen - used, "%s%s", used ? ", " : "",
                             need[i].name);
            used += n > 0 ? (size_t) n : 0;
        }
    }
    return missing;
}

/* sock_connect - a connected stream socket to S, or -1 (errno set). */
static int sock_connect(const struct doctor_sock *s, int timeout_ms, char why[DOCTOR_ERR_MAX])
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    struct addrinfo hints, *res = NULL;
    char port[16];
    int fd = -1, rc;

    if (s->ds_kind == DOCTOR_SOCK_UNIX) {
        struct sockaddr_un sun;

        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        if (strlen(s->ds_path) >= sizeof(sun.sun_path)) {
            doctor_fmt(why, DOCTOR_ERR_MAX, "socket path %s is too long", s->ds_path);
            return errno = ENAMETOOLONG, -1;
        }
        memcpy(sun.sun_path, s->ds_path, strlen(s->ds_path));
        if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0
            || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0
            || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0
            || connect(fd, (struct sockaddr *) &sun, sizeof(sun)) < 0) {
            int e = errno;
            doctor_fmt(why, DOCTOR_ERR_MAX, "cannot connect to %s: %s", s->ds_path, strerror(e));
            if (fd >= 0)
                close(fd);
            return errno = e, -1;
        }
        return fd;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = s->ds_kind == DOCTOR_SOCK_INET6 ? AF_INET6 : AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    doctor_fmt(port, sizeof(port), "%u", s->ds_port);
    /* libmilter listening on every address answers on loopback too. */
    rc = getaddrinfo(s->ds_host[0] && strcmp(s->ds_host, "*") != 0 ? s->ds_host
                     : s->ds_kind == DOCTOR_SOCK_INET6 ? "::1" : "127.0.0.1", port, &hints, &res);
    if (rc != 0) {
        doctor_fmt(why, DOCTOR_ERR_MAX, "cannot resolve %s: %s", s->ds_host, gai_strerror(rc));
        return errno = EHOSTUNREACH, -1;
    }
    if ((fd = socket(res->ai_family, SOCK_STREAM, 0)) < 0
        || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0
        || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0
        || connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
        int e = errno;
        doctor_fmt(why, DOCTOR_ERR_MAX, "cannot connect to port %u at %s: %s", s->ds_port,
                 s->ds_host[0] ? s->ds_host : "127.0.0.1", strerror(e));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return errno = e, -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* read_full - exactly LEN bytes; 0, or -1 with WHY. */
static int read_full(int fd, unsigned char *buf, size_t len, char why[DOCTOR_ERR_MAX])
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            doctor_fmt(why, DOCTOR_ERR_MAX, "%s", n == 0
                     ? "closed the connection instead of answering the negotiation"
                     : errno == EAGAIN || errno == EWOULDBLOCK
                     ? "did not answer the negotiation in time" : strerror(errno));
            return -1;
        }
        got += (size_t) n;
    }
    return 0;
}

int doctor_probe(const struct doctor_sock *sock, int timeout_ms, struct doctor_optneg *out,
                 int *errno_out, char why[DOCTOR_ERR_MAX])
{
    static unsigned char reply[PKT_MAX + 4];
    unsigned char pkt[32], quit[5];
    size_t len = doctor_optneg_packet(pkt, sizeof(pkt));
    unsigned long plen;
    int fd, rc = -1;

    *errno_out = 0;
    if ((fd = sock_connect(sock, timeout_ms, why)) < 0) {
        *errno_out = errno;
        return -1;
    }
    if (send(fd, pkt, len, MSG_NOSIGNAL) != (ssize_t) len)
        doctor_fmt(why, DOCTOR_ERR_MAX, "cannot send the negotiation: %s", strerror(errno));
    else if (read_full(fd, reply, 4, why) == 0) {
        plen = get32(reply);
        if (plen < 1 || plen > PKT_MAX)
            doctor_fmt(why, DOCTOR_ERR_MAX, "answered with a packet of length %lu", plen);
        else if (read_full(fd, reply + 4, plen, why) == 0)
            rc = doctor_optneg_parse(reply, plen + 4, out, why) == 0 ? 0 : -1;
    }
    /* Say goodbye as an MTA does, so the milter logs no error for us; one
     * that hung up already must not kill doctor with SIGPIPE. */
    put32(quit, 1);
    quit[4] = SMFIC_QUIT;
    if (send(fd, quit, sizeof(quit), MSG_NOSIGNAL) < 0) {
        /* it may have gone already; what it answered is what counts */
    }
    close(fd);
    return rc;
}

/* ---- the checks ------------------------------------------------------------- */

/* check_socket_file - the unix socket is there, a socket, and the MTA may use it. */
static int check_socket_file(struct doctor *d, const struct doctor_sock *s)
{
    char why[DOCTOR_ERR_MAX];
    struct stat sb;

    if (lstat(s->ds_path, &sb) < 0) {
        doctor_add(d, "milter.socket", "start the milter (systemctl start coexist-milter) "
                   "and check that socket in its config is where the MTA looks",
                   "socket %s: %s", s->ds_path, strerror(errno));
        return -1;
    }
    if (!S_ISSOCK(sb.st_mode)) {
        doctor_add(d, "milter.socket", "remove it and restart the milter",
                   "socket %s is not a socket", s->ds_path);
        return -1;
    }
    if (d->dr_mta == NULL)
        return 0;
    if (doctor_may(d->dr_mta, s->ds_path, W_OK, why) == 0) {
        const struct group *gr = getgrgid(sb.st_gid);
        char fix[DOCTOR_TEXT_MAX];

        if (gr != NULL && sb.st_gid != 0)
            doctor_fmt(fix, sizeof(fix), "adduser %s %s, give the group access (umask = 007 "
                       "in coexist-milter.conf, the directories g+x), restart both",
                       d->dr_mta->da_name, gr->gr_name);
        else
            doctor_fmt(fix, sizeof(fix), "give the socket a group of its own (group = "
                       "coexist-milter, umask = 007 in coexist-milter.conf), adduser %s "
                       "coexist-milter, restart both", d->dr_mta->da_name);
        doctor_add(d, "milter.socket_access", fix,
                   "Postfix's account %s cannot connect to %s: %s", d->dr_mta->da_name,
                   s->ds_path, why);
    }
    return 0;
}

/* check_negotiation - what the milter answers to an MTA's negotiation. */
static void check_negotiation(struct doctor *d, const struct doctor_sock *s)
{
    char why[DOCTOR_ERR_MAX], missing[DOCTOR_TEXT_MAX];
    struct doctor_optneg neg;
    int err;

    if (doctor_probe(s, 5000, &neg, &err, why) < 0) {
        if (err == ECONNREFUSED && s->ds_kind == DOCTOR_SOCK_UNIX)
            doctor_add(d, "milter.negotiation", "start the milter (systemctl start "
                       "coexist-milter); mail waits (tempfail) until it answers",
                       "nothing listens on %s: a stale socket, the milter is not running",
                       s->ds_path);
        else
            doctor_add(d, "milter.negotiation", "see the milter's log (journalctl -u "
                       "coexist-milter) and restart it", "the milter on %s: %s",
                       s->ds_kind == DOCTOR_SOCK_UNIX ? s->ds_path : d->dr_cfg->socket, why);
        return;
    }
    if (doctor_optneg_missing(neg.dn_actions, missing, sizeof(missing)) != 0)
        doctor_add(d, "milter.negotiation", "run the coexist-milter of this package (an "
                   "older or other milter answers on this socket)",
                   "the milter on %s does not ask for %s (actions 0x%lx)", d->dr_cfg->socket,
                   missing, neg.dn_actions);
}

void doctor_milter_checks(struct doctor *d)
{
    struct doctor_sock s;

    doctor_checked(d, "milter");
    if (doctor_sock_milter(d->dr_cfg->socket, &s) < 0) {
        doctor_add(d, "milter.socket", "fix socket in coexist-milter.conf (unix:PATH or "
                   "inet:PORT@HOST)", "socket %s is not a milter socket", d->dr_cfg->socket);
        return;
    }
    if (s.ds_kind == DOCTOR_SOCK_UNIX && check_socket_file(d, &s) < 0)
        return;
    check_negotiation(d, &s);
}
