/*
 * doctor.h - "coexistctl doctor": the deployment checked end to end.
 *
 * The checks gather facts (postconf's output, master.cf, the socket, the
 * store, a milter negotiation) and each problem becomes one finding: what
 * is wrong and what to do. The parsing pieces are pure functions over
 * strings, so the unit tests feed them the text postconf prints; the
 * checks that look at the system return findings, never print.
 */
#ifndef COEXIST_DOCTOR_H
#define COEXIST_DOCTOR_H

#include <stddef.h>
#include <sys/types.h>

#include "policy/config.h"   /* not autoconf's config.h */

/* ---- findings (ctl_doctor.c) ------------------------------------------- */

#define DOCTOR_ID_MAX 48
#define DOCTOR_TEXT_MAX 1024

/* An account: a uid and every group it is in. */
struct doctor_account {
    char da_name[64];
    uid_t da_uid;
    gid_t da_gids[64];
    int da_ngids;
};

struct doctor_finding {
    char df_check[DOCTOR_ID_MAX];       /* e.g. "postfix.smtpd_milters" */
    char df_problem[DOCTOR_TEXT_MAX];   /* what is wrong */
    char df_fix[DOCTOR_TEXT_MAX];       /* what to do */
};

struct doctor {
    const struct config *dr_cfg;
    const char *dr_db_path;             /* the store (-d or state_db) */
    const char *dr_postfix_config;      /* --postfix-config, or NULL */
    const char *dr_sendmail_cf;         /* --sendmail-cf, or NULL */
    const char *dr_postconf;            /* the postconf binary */
    struct doctor_finding *dr_findings;
    size_t dr_count, dr_alloc;
    struct doctor_account *dr_mta;      /* Postfix's mail_owner, once known */
    struct doctor_account dr_mta_account;   /* where dr_mta points */
    const char *dr_checked[8];          /* what was looked at, for the summary */
    size_t dr_nchecked;
    int dr_nomem;
};

/*
 * doctor_add - one finding: CHECK names it, PROBLEM (printf format) says
 * what is wrong; FIX what to do. Identical findings are kept once.
 */
void doctor_add(struct doctor *d, const char *check, const char *fix, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * doctor_fmt - snprintf for messages, where a truncated line is still the
 * message (and the compiler need not prove each one fits).
 */
void doctor_fmt(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* doctor_checked - remember that the part NAME was looked at. */
void doctor_checked(struct doctor *d, const char *name);

/* ---- milter lists and sockets (doctor_parse.c, pure) -------------------- */

#define DOCTOR_PATH_MAX 4096
#define DOCTOR_MILTERS_MAX 32

/* One entry of a Postfix milter list: "unix:x" or "{ unix:x, default_action=accept }". */
struct doctor_milter {
    char dm_endpoint[DOCTOR_PATH_MAX];  /* "unix:coexist/x.sock", "inet:127.0.0.1:8891" */
    char dm_default_action[32];         /* "" unless the entry sets its own */
};

/*
 * doctor_milter_list - split a Postfix milter list (comma or white space
 * separated, "{ ... }" groups with attributes) into OUT (MAX entries).
 * Returns the count, or -1 with the reason in WHY (a static string).
 */
int doctor_milter_list(const char *value, struct doctor_milter *out, int max,
                       const char **why);

/* A socket, as libmilter's config names it or as Postfix names a milter. */
enum doctor_sock_kind { DOCTOR_SOCK_UNIX, DOCTOR_SOCK_INET, DOCTOR_SOCK_INET6 };
struct doctor_sock {
    enum doctor_sock_kind ds_kind;
    char ds_path[DOCTOR_PATH_MAX];      /* unix: the path as written */
    char ds_host[256];                  /* inet: "" for any address */
    unsigned ds_port;
};

/*
 * doctor_sock_milter - parse the milter's own socket spec (libmilter's
 * "unix:PATH", "local:PATH", "inet:PORT@HOST", "inet6:PORT@HOST"). 0 or -1.
 */
int doctor_sock_milter(const char *spec, struct doctor_sock *out);

/*
 * doctor_sock_postfix - parse a Postfix milter endpoint ("unix:PATH",
 * "inet:HOST:PORT", "inet:[HOST]:PORT"). 0 or -1.
 */
int doctor_sock_postfix(const char *endpoint, struct doctor_sock *out);

/*
 * doctor_sock_sendmail - a Sendmail S= value: libmilter's own syntax, with
 * "unix:" as the default when no kind is named. 0 or -1.
 */
int doctor_sock_sendmail(const char *spec, struct doctor_sock *out);

/*
 * doctor_chroot_path - where a process chrooted in QUEUE_DIR (CHROOTED)
 * that runs with QUEUE_DIR as its working directory (every Postfix daemon
 * does) finds unix socket PATH, as a path on the host, lexically
 * normalized ("a/./b/../c" is "a/c"). 0, or -1 when OUT is too small.
 */
int doctor_chroot_path(const char *path, const char *queue_dir, int chrooted,
                       char *out, size_t outlen);

/*
 * doctor_postfix_name - how Postfix should name a unix socket at host path
 * SOCKET from a service chrooted (or not) in QUEUE_DIR: relative to
 * QUEUE_DIR when the socket is inside it ("unix:coexist-milter/x.sock"),
 * absolute otherwise. Returns 0, or -1 when a chrooted service cannot
 * reach the socket at all (it is outside QUEUE_DIR).
 */
int doctor_postfix_name(const char *socket, const char *queue_dir, int chrooted,
                        char *out, size_t outlen);

/*
 * doctor_sock_same - whether MILTER (the milter's socket, unix paths as
 * host paths) is what Postfix reaches through POSTFIX (unix paths already
 * translated to host paths with doctor_chroot_path).
 */
int doctor_sock_same(const struct doctor_sock *milter, const struct doctor_sock *postfix);

/* ---- postconf output (doctor_parse.c, pure) ----------------------------- */

/* "name = value" lines of postconf (main.cf parameters). */
struct doctor_param {
    char *dp_name;
    char *dp_value;
};

/* One master.cf service as postconf -F and -P print it. */
#define DOCTOR_OVERRIDES_MAX 64
struct doctor_service {
    char ds_name[256];                  /* "smtp", "127.0.0.1:10025" */
    char ds_type[16];                   /* "inet", "unix", ... */
    char ds_command[64];                /* the program: "smtpd", "cleanup" */
    int ds_chroot;                      /* "y"; "-" is n since Postfix 3.0 */
    struct doctor_param ds_overrides[DOCTOR_OVERRIDES_MAX];    /* -o name=value */
    int ds_noverrides;
};

struct doctor_postfix {
    struct doctor_param *pf_params;
    size_t pf_nparams;
    struct doctor_service *pf_services;
    size_t pf_nservices;
};

/*
 * doctor_parse_params - postconf's "name = value" lines in TEXT into PF
 * (lines starting "postconf: " are its warnings, skipped). 0, or -1 when
 * out of memory.
 */
int doctor_parse_params(struct doctor_postfix *pf, const char *text);

/*
 * doctor_parse_fields - postconf -F's "service/type/field = value" lines:
 * one service per service/type, with its command and chroot. 0 or -1.
 */
int doctor_parse_fields(struct doctor_postfix *pf, const char *text);

/*
 * doctor_parse_overrides - postconf -P's "service/type/name = value" lines
 * into the services doctor_parse_fields made (unknown ones are added).
 * 0 or -1.
 */
int doctor_parse_overrides(struct doctor_postfix *pf, const char *text);

/* doctor_param - the value of main.cf parameter NAME, or NULL. */
const char *doctor_param(const struct doctor_postfix *pf, const char *name);

/* doctor_override - the -o value of NAME for service SV, or NULL. */
const char *doctor_override(const struct doctor_service *sv, const char *name);

/* doctor_effective - SV's own value of NAME, else main.cf's (or NULL). */
const char *doctor_effective(const struct doctor_postfix *pf, const struct doctor_service *sv,
                             const char *name);

/* doctor_has_word - whether the comma/space separated list VALUE holds WORD. */
int doctor_has_word(const char *value, const char *word);

/* doctor_postfix_free - what the parse functions allocated (PF itself stays). */
void doctor_postfix_free(struct doctor_postfix *pf);

/* ---- the milter negotiation (doctor_milter.c) --------------------------- */

/* What the milter answered to SMFIC_OPTNEG. */
struct doctor_optneg {
    unsigned long dn_version;
    unsigned long dn_actions;
    unsigned long dn_protocol;
};

#define DOCTOR_ERR_MAX 512

/*
 * doctor_optneg_packet - the SMFIC_OPTNEG packet an MTA sends (Postfix
 * 3.7's offer: protocol version 6, every action and every protocol step)
 * into BUF (at least 17 bytes); returns its length.
 */
size_t doctor_optneg_packet(unsigned char *buf, size_t len);

/*
 * doctor_optneg_parse - the milter's reply packet (length word included)
 * in BUF (LEN bytes) into OUT. 0; 1 when the milter answered something
 * else (WHY says what); -1 when the packet is malformed (WHY says how).
 */
int doctor_optneg_parse(const unsigned char *buf, size_t len, struct doctor_optneg *out,
                        char why[DOCTOR_ERR_MAX]);

/*
 * doctor_optneg_missing - the actions this milter needs (as mlfi.h asks
 * for them) that ACTIONS lacks, as "add recipient, ..." in OUT; 0 when
 * none is missing, else the mask of missing ones.
 */
unsigned long doctor_optneg_missing(unsigned long actions, char *out, size_t outlen);

/*
 * doctor_probe - connect to the milter's socket SOCK (unix: at host path),
 * negotiate and say goodbye (SMFIC_QUIT) within TIMEOUT_MS per step. 0
 * with OUT filled; -1 with the reason in WHY (ERRNO_OUT the errno of a
 * failed connect, else 0).
 */
int doctor_probe(const struct doctor_sock *sock, int timeout_ms, struct doctor_optneg *out,
                 int *errno_out, char why[DOCTOR_ERR_MAX]);

/* ---- access of an account (doctor_access.c) ----------------------------- */

/* doctor_account - NAME's uid and groups; 0, or -1 (no such user). */
int doctor_account(const char *name, struct doctor_account *out);

/*
 * doctor_may - whether account A may reach PATH (search on every directory
 * above it) and then access it with WANT (R_OK/W_OK bits, as access(2)).
 * 1 yes; 0 no, with WHY saying which component refuses and by which mode;
 * -1 when PATH cannot be looked at (WHY says why).
 */
int doctor_may(const struct doctor_account *a, const char *path, int want,
               char why[DOCTOR_ERR_MAX]);

/* ---- the checks --------------------------------------------------------- */

/* doctor_postfix_checks - the Postfix side (doctor_postfix.c). */
void doctor_postfix_checks(struct doctor *d);

/* doctor_sendmail_checks - the Sendmail side (doctor_sendmail.c). */
void doctor_sendmail_checks(struct doctor *d);

/*
 * doctor_sendmail_line - one line of a sendmail.cf ("Xname, S=..., F=T")
 * or an .mc (INPUT_MAIL_FILTER(`name', `S=..., F=T')): 1 when it declares
 * a milter, with its name, socket and flags; 0 when it is no milter line.
 */
int doctor_sendmail_line(const char *line, char *name, size_t namelen, char *socket,
                         size_t socketlen, char *flags, size_t flagslen);

/*
 * doctor_milter_checks - the socket exists, the MTA's account (dr_mta, if
 * known) may connect, the milter answers a negotiation (doctor_milter.c).
 */
void doctor_milter_checks(struct doctor *d);

/* doctor_store_checks - store, its owner, the trace secret (doctor_store.c). */
void doctor_store_checks(struct doctor *d);

/* doctor_replica_checks - the replica's lag, with shared_store (doctor_replica.c). */
void doctor_replica_checks(struct doctor *d);

/*
 * ctl_replica_lag - status's view of the replica's lag (ctl_status.c): 0
 * with *ROWS and *SECS; 1 when DB_PATH has no replica position yet; -1
 * when the database cannot tell (ERR says why).
 */
#include <time.h>
int ctl_replica_lag(const struct config *cfg, const char *db_path, time_t now,
                    long long *rows, long *secs, char *err, size_t errlen);

#endif
