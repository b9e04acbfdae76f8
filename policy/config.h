/*
 * config.h - the configuration file shared by coexist-milter and coexistctl.
 *
 * Plain "key = value" lines and "#" comments, checked against a table of
 * known keys with types, defaults and bounds. An unknown key or a bad value
 * is a "file:line: message" error. The parsed result is one struct that the
 * daemon treats as read-only after start-up.
 */
#ifndef COEXIST_CONFIG_H
#define COEXIST_CONFIG_H

#include <stddef.h>
#include <sys/types.h>

#define CONFIG_DEFAULT_PATH "/etc/coexist-milter/coexist-milter.conf"
#define CONFIG_ERR_MAX 1024
#define CONFIG_STR_MAX 256

enum on_db_error { ON_DB_ERROR_TEMPFAIL, ON_DB_ERROR_ACCEPT };

struct config {
    char socket[CONFIG_STR_MAX];
    char state_db[CONFIG_STR_MAX];
    char user[CONFIG_STR_MAX];
    char group[CONFIG_STR_MAX];
    mode_t umask;
    char pid_file[CONFIG_STR_MAX];
    char recipient_delimiter[CONFIG_STR_MAX];
    int propagate_extension;    /* propagate_unmatched_extensions (rewrite) */
    enum on_db_error on_db_error;
    int dry_run;
    char trace_header[CONFIG_STR_MAX];
    char instance[CONFIG_STR_MAX];
    char trace_secret_file[CONFIG_STR_MAX];   /* "" = no loop guard secret */
    int syslog_facility;        /* LOG_MAIL, ... */
    int log_level;              /* LOG_INFO, ... */
    int log_stderr;
    unsigned stats_interval;    /* seconds; 0 = only at shutdown */
    int allow_root;
    unsigned hash_size;         /* for coexistctl init */
    char shared_store[CONFIG_STR_MAX];  /* libpq conninfo; "" = the local TDB only */
    char node_name[CONFIG_STR_MAX];     /* "" = the host name */
    unsigned replica_wait;      /* seconds a write waits for the local replica */
    char counters_db[CONFIG_STR_MAX];   /* per-user counters; relative: beside state_db */
    unsigned counters_interval; /* seconds between flushes into counters_db */
    char metrics_file[CONFIG_STR_MAX];  /* Prometheus text file; "" = none */
};

/* config_defaults - fill CFG with the built-in defaults. */
void config_defaults(struct config *cfg);

/*
 * config_load - read PATH over the defaults already in CFG. Returns 0, or
 * -1 with "path:line: message" in ERR. MISSING_OK makes an absent file a
 * success (coexistctl with the default path on a machine without one).
 */
int config_load(struct config *cfg, const char *path, int missing_ok,
                char err[CONFIG_ERR_MAX]);

/*
 * config_beside - FILE as a path: "" stays "" (not configured), an absolute
 * path stays as it is, a relative one is taken in the directory of DB (so
 * the default trace_secret_file lives beside whatever state_db is used).
 * Returns 0, or -1 when OUT (OUTLEN bytes) is too small.
 */
int config_beside(const char *file, const char *db, char *out, size_t outlen);

/*
 * config_node_name - CFG's node_name, or the host name when it is empty,
 * into OUT (CONFIG_STR_MAX bytes): how this host names itself in the shared
 * journal and the replica positions.
 */
void config_node_name(const struct config *cfg, char out[CONFIG_STR_MAX]);

/* config_dump - write every key = value to FP (the effective config). */
#include <stdio.h>
void config_dump(const struct config *cfg, FILE *fp);

#endif
