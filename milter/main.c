/*
 * main.c - coexist-milter, the daemon: options, start-up and shutdown.
 *
 * Start-up order matters and is fixed here: read the configuration; open
 * the milter socket while still root (its directory may be root's) with
 * the configured umask, so the socket's mode follows it; drop privileges;
 * read the loop guard's secret (as the daemon's user, so a secret it could
 * not read is found now, with stderr still open); detach; write the pid file; only then open the state store, so that the
 * unprivileged user owns every handle the daemon keeps. A missing store is
 * not fatal: messages get the on_db_error answer until it appears.
 * Everything that can be refused before binding is refused first, by
 * startup_check, which -n runs too: "configuration OK" means it starts.
 * Every fatal exit carries a sysexits.h code (coexist-milter.8 lists them).
 * libmilter itself handles SIGHUP and SIGTERM (stop) and SIGINT (abort).
 */
#include <config.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <sysexits.h>
#include <unistd.h>

#include "dbhandle.h"
#include "log.h"
#include "mlfi.h"
#include "stats.h"
#include "tally.h"
#include "ticker.h"
#include "trace.h"

#define NO_GUARD "the trace header is a constant anyone can forge"

struct options {
    const char *config_path;
    int foreground;             /* -f: do not detach */
    int check_only;             /* -n: check the configuration and exit */
    int verbose;                /* -v: mirror the log to stderr */
};

#define REFUSE_ROOT "refusing to run as root: set user = (an unprivileged " \
    "account) in the configuration, or allow_root = yes"

/* The uid and gid the daemon runs as after start-up. */
struct identity {
    int change;                 /* whether user is set */
    uid_t uid;
    gid_t gid;
};

/* usage - the synopsis, to FP. */
static void usage(FILE *fp)
{
    fprintf(fp, "usage: coexist-milter [-fnvVh] [-c config]\n"
            "  -c FILE  configuration file (default %s)\n"
            "  -f       stay in the foreground (still logs to syslog)\n"
            "  -n       check the configuration and exit\n"
            "  -v       mirror log lines to stderr\n"
            "  -V       print the version and exit\n"
            "  -h       this help\n", CONFIG_DEFAULT_PATH);
}

/* version - the daemon's and libmilter's versions. */
static void version(void)
{
    unsigned major = 0, minor = 0, patch = 0;

    smfi_version(&major, &minor, &patch);
    printf("coexist-milter %s (libmilter %u.%u.%u)\n", PACKAGE_VERSION, major,
           minor, patch);
}

/* parse_args - the command line into OPT; exits for -V, -h and errors. */
static void parse_args(int argc, char **argv, struct options *opt)
{
    int c;

    opt->config_path = CONFIG_DEFAULT_PATH;
    while ((c = getopt(argc, argv, "c:fnvVh")) != -1) {
        switch (c) {
        case 'c': opt->config_path = optarg; break;
        case 'f': opt->foreground = 1; break;
        case 'n': opt->check_only = 1; break;
        case 'v': opt->verbose = 1; break;
        case 'V': version(); exit(EX_OK);
        case 'h': usage(stdout); exit(EX_OK);
        default: usage(stderr); exit(EX_USAGE);
        }
    }
    if (optind != argc) {
        usage(stderr);
        exit(EX_USAGE);
    }
}

/* check_fail - record a start-up problem in ERR; returns STATUS. */
static int check_fail(char *err, size_t len, int status, const char *fmt, ...)
    LOG_PRINTF(4, 5);
static int check_fail(char *err, size_t len, int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return status;
}

/*
 * secret_path - where trace_secret_file is ("" when not configured): a
 * relative name is beside state_db.
 */
static void secret_path(const struct config *cfg, char out[CONFIG_STR_MAX * 2])
{
    if (config_beside(cfg->trace_secret_file, cfg->state_db, out, CONFIG_STR_MAX * 2) < 0)
        out[0] = '\0';         /* cannot happen: both are under CONFIG_STR_MAX */
}

/*
 * check_secret - -n: the secret file as the daemon would read it. A missing
 * or unconfigured one is a warning (the daemon starts with the guard of
 * old); one it would refuse is an error. Returns a sysexits code.
 */
static int check_secret(const struct config *cfg)
{
    char path[CONFIG_STR_MAX * 2], err[TRACE_ERR_MAX];
    struct trace_secret secret;
    int rc;

    secret_path(cfg, path);
    if (path[0] == '\0') {
        fprintf(stderr, "coexist-milter: warning: loop guard: no trace_secret_file; "
                NO_GUARD "\n");
        return EX_OK;
    }
    rc = trace_secret_load(path, &secret, err);
    if (rc == 1)
        fprintf(stderr, "coexist-milter: warning: loop guard: trace_secret_file %s does "
                "not exist; " NO_GUARD " (coexistctl init creates it)\n", path);
    if (rc < 0) {
        fprintf(stderr, "coexist-milter: trace_secret_file %s\n", err);
        return EX_CONFIG;
    }
    return EX_OK;
}

/*
 * check_identity - the configured user and group as ids into ID, and the
 * refusals drop_privileges would make later: root without allow_root, a
 * user other than ourselves when not started as root.
 */
static int check_identity(const struct config *cfg, struct identity *id, char *err,
                          size_t len)
{
    const struct passwd *pw;
    const struct group *gr;

    memset(id, 0, sizeof(*id));
    if (cfg->user[0] == '\0') {
        if (cfg->group[0] != '\0')
            return check_fail(err, len, EX_CONFIG, "group = %s needs user to be set "
                              "as well", cfg->group);
        if ((geteuid() == 0 || getuid() == 0) && !cfg->allow_root)
            return check_fail(err, len, EX_CONFIG, REFUSE_ROOT);
        return EX_OK;
    }
    if ((pw = getpwnam(cfg->user)) == NULL)
        return check_fail(err, len, EX_NOUSER, "user %s: no such user", cfg->user);
    id->change = 1;
    id->uid = pw->pw_uid;
    id->gid = pw->pw_gid;
    if (cfg->group[0] != '\0') {
        if ((gr = getgrnam(cfg->group)) == NULL)
            return check_fail(err, len, EX_NOUSER, "group %s: no such group", cfg->group);
        id->gid = gr->gr_gid;
    }
    if (id->uid == 0 && !cfg->allow_root)
        return check_fail(err, len, EX_CONFIG, REFUSE_ROOT);
    if (geteuid() != 0 && (getuid() != id->uid || geteuid() != id->uid))
        return check_fail(err, len, EX_NOPERM, "cannot run as user %s: started as uid "
                          "%lu, not as root", cfg->user, (unsigned long) getuid());
    return EX_OK;
}

/* unix_socket_path - the file behind a unix: or local: socket, else NULL. */
static const char *unix_socket_path(const char *spec)
{
    if (strncmp(spec, "unix:", 5) == 0)
        return spec + 5;
    if (strncmp(spec, "local:", 6) == 0)
        return spec + 6;
    return NULL;
}

/* check_parent_dir - the directory PATH would be created in must exist. */
static int check_parent_dir(const char *what, const char *path, int status, char *err,
                            size_t len)
{
    char dir[CONFIG_STR_MAX];
    const char *slash = strrchr(path, '/');
    struct stat sb;

    if (slash == NULL)
        return EX_OK;           /* relative to the working directory */
    snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int) (slash - path), path);
    if (stat(dir, &sb) < 0)
        return check_fail(err, len, status, "%s %s: directory %s: %s", what, path, dir,
                          strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return check_fail(err, len, status, "%s %s: %s is not a directory", what, path,
                          dir);
    return EX_OK;
}

/*
 * counters_path - where counters_db is ("" when not configured): a
 * relative name is beside state_db, like trace_secret_file.
 */
static void counters_path(const struct config *cfg, char out[CONFIG_STR_MAX * 2])
{
    if (config_beside(cfg->counters_db, cfg->state_db, out, CONFIG_STR_MAX * 2) < 0)
        out[0] = '\0';         /* cannot happen: both are under CONFIG_STR_MAX */
}

/*
 * counters_dir_problem - why counters_db's directory cannot take the file
 * (into ERR), or 0. Not a refusal: like a missing store, a missing
 * directory (not made yet by the package) must not stop the mail; each
 * flush then fails, is logged, and keeps its counts.
 */
static int counters_dir_problem(const struct config *cfg, char *err, size_t len)
{
    char path[CONFIG_STR_MAX * 2];

    counters_path(cfg, path);
    return path[0] != '\0'
        && check_parent_dir("counters_db", path, EX_CANTCREAT, err, len) != EX_OK;
}

/*
 * check_counting - metrics_file's directory must exist: the daemon makes
 * the file, and one it can never write should stop the start, not be
 * found missing from the dashboards a week later.
 */
static int check_counting(const struct config *cfg, char *err, size_t len)
{
    if (cfg->metrics_file[0] != '\0')
        return check_parent_dir("metrics_file", cfg->metrics_file, EX_CANTCREAT, err, len);
    return EX_OK;
}

/*
 * startup_check - every check of start-up short of binding the socket,
 * the one function behind both -n and a real start, so that "configuration
 * OK" means the daemon starts. Returns EX_OK with ID filled in, or the
 * sysexits code start-up would exit with and the reason in ERR.
 */
static int startup_check(const struct config *cfg, struct identity *id, char *err,
                         size_t len)
{
    struct sockaddr_un sun;
    const char *path = unix_socket_path(cfg->socket);
    int rc;

    if ((rc = check_identity(cfg, id, err, len)) != EX_OK)
        return rc;
    if (path != NULL && (path[0] == '\0' || strlen(path) >= sizeof(sun.sun_path)))
        return check_fail(err, len, EX_CONFIG, "socket %s: the path must have 1 to %zu "
                          "bytes", cfg->socket, sizeof(sun.sun_path) - 1);
    if (path != NULL && (rc = check_parent_dir("socket", path, EX_CONFIG, err, len)) != EX_OK)
        return rc;
    if (cfg->pid_file[0] != '\0'
        && (rc = check_parent_dir("pid_file", cfg->pid_file, EX_CANTCREAT, err, len)) != EX_OK)
        return rc;
    return check_counting(cfg, err, len);
}

/* check_config - -n: report the first error as "file:line: message" or as start-up would. */
static int check_config(const char *path)
{
    char err[CONFIG_ERR_MAX];
    struct config cfg;
    struct identity id;
    int rc;

    config_defaults(&cfg);
    if (config_load(&cfg, path, 0, err) < 0) {
        fprintf(stderr, "coexist-milter: %s\n", err);
        return EX_CONFIG;
    }
    if ((rc = startup_check(&cfg, &id, err, sizeof(err))) != EX_OK) {
        fprintf(stderr, "coexist-milter: %s: %s\n", path, err);
        return rc;
    }
    if (check_secret(&cfg) != EX_OK)
        return EX_CONFIG;
    if (counters_dir_problem(&cfg, err, sizeof(err)))
        fprintf(stderr, "coexist-milter: warning: %s; per-user counters cannot be "
                "flushed until it exists\n", err);
    fprintf(stderr, "coexist-milter: %s: configuration OK\n", path);
    return EX_OK;
}

/*
 * load_secret - the loop guard's secret into SECRET, once, at start-up.
 * Missing: the guard of old, with a warning (an upgraded host keeps
 * working until coexistctl init or the package creates it). A file that
 * is too short, open to others or unreadable is fatal: the admin meant to
 * have a guard and must fix it.
 */
static void load_secret(const struct config *cfg, struct trace_secret *secret)
{
    char path[CONFIG_STR_MAX * 2], err[TRACE_ERR_MAX];
    int rc;

    secret->ts_len = 0;
    secret_path(cfg, path);
    if (path[0] == '\0') {
        log_msg(LOG_WARNING, "loop guard: no trace_secret_file; " NO_GUARD);
        return;
    }
    if ((rc = trace_secret_load(path, secret, err)) < 0)
        fatalx_status(EX_CONFIG, "trace_secret_file %s", err);
    if (rc == 1)
        log_msg(LOG_WARNING, "loop guard: trace_secret_file %s does not exist; " NO_GUARD,
                path);
}

/* load_config - the configuration, or exit; then log as it says. */
static void load_config(const struct options *opt, struct config *cfg)
{
    char err[CONFIG_ERR_MAX];

    /* Until the file says otherwise, syslog to mail: admins look there. */
    log_open(LOG_IDENT, LOG_MAIL, LOG_INFO, 1);
    config_defaults(cfg);
    if (config_load(cfg, opt->config_path, 0, err) < 0)
        fatalx_status(EX_CONFIG, "%s", err);
    /* Start-up errors also go to stderr: whoever started us must see them. */
    log_open(LOG_IDENT, cfg->syslog_facility, cfg->log_level, 1);
}

/*
 * open_socket - listen where the config says. smfi_opensocket(1) removes a
 * stale unix socket first. The socket is handed to the daemon's user, so
 * that with a group shared with the MTA and umask 007 only the MTA connects.
 * startup_check has vetted the spec: what fails here is the system's
 * (address in use, no permission), so EX_UNAVAILABLE.
 */
static void open_socket(const struct config *cfg, const struct identity *id)
{
    const char *path = unix_socket_path(cfg->socket);

    if (smfi_setconn((char *) cfg->socket) != MI_SUCCESS)
        fatalx_status(EX_CONFIG, "socket %s: not a valid milter socket", cfg->socket);
    umask(cfg->umask);
    if (smfi_opensocket(1) != MI_SUCCESS)
        fatalx_status(EX_UNAVAILABLE, "socket %s: cannot listen (is the address free, "
                      "may we write its directory?)", cfg->socket);
    if (path != NULL && id->change && geteuid() == 0
        && chown(path, id->uid, id->gid) < 0)
        fatal("chown %s", path);
}

/*
 * drop_privileges - become the configured user for good. check_identity
 * refused what it could foresee; what is checked again here is what only
 * the system calls can tell.
 */
static void drop_privileges(const struct config *cfg, const struct identity *id)
{
    if (id->change && geteuid() == 0) {
        if (initgroups(cfg->user, id->gid) < 0)
            fatal("initgroups %s", cfg->user);
        if (setgid(id->gid) < 0)
            fatal("setgid %lu", (unsigned long) id->gid);
        if (setuid(id->uid) < 0)
            fatal("setuid %lu", (unsigned long) id->uid);
        if (id->uid != 0 && setuid(0) == 0)
            fatalx_status(EX_OSERR, "could regain root after dropping privileges");
    }
    if (id->change && (getuid() != id->uid || geteuid() != id->uid))
        fatalx_status(EX_NOPERM, "cannot run as user %s: started as uid %lu, not as root",
                      cfg->user, (unsigned long) getuid());
    if ((geteuid() == 0 || getuid() == 0) && !cfg->allow_root)
        fatalx_status(EX_CONFIG, REFUSE_ROOT);
}

/* write_pid_file - the daemon's pid for init scripts; "" means none. */
static void write_pid_file(const char *path)
{
    FILE *fp;

    if (path[0] == '\0')
        return;
    if ((fp = fopen(path, "w")) == NULL)
        fatal_status(EX_CANTCREAT, "pid_file %s", path);
    fprintf(fp, "%ld\n", (long) getpid());
    if (fclose(fp) != 0)
        fatal_status(EX_CANTCREAT, "pid_file %s", path);
}

/*
 * start_counting - the per-user counters (when counters_db is set) and the
 * thread that flushes them and writes metrics_file; after daemon(), which
 * would leave the thread behind in the parent.
 */
static struct ticker *start_counting(const struct config *cfg, struct dbhandle *dbh)
{
    struct ticker *ticker;
    static char path[CONFIG_STR_MAX * 2];
    char why[CONFIG_ERR_MAX];
    struct tally *tally = NULL;

    if (counters_dir_problem(cfg, why, sizeof(why)))
        log_msg(LOG_WARNING, "%s; per-user counters cannot be flushed until it exists", why);
    counters_path(cfg, path);
    if (path[0] != '\0' && (tally = tally_new()) == NULL)
        fatalx_status(EX_OSERR, "out of memory");
    mlfi_set_tally(tally);
    if ((ticker = ticker_start(cfg, path, tally, dbh, time(NULL))) == NULL)
        fatalx_status(EX_OSERR, "cannot start the counters thread");
    return ticker;
}

/*
 * start - everything before smfi_main(); the callbacks get the store
 * handle. Returns the counters thread, for main to stop after smfi_main().
 */
static struct ticker *start(const struct options *opt, struct config *cfg)
{
    /* Read by the callbacks until exit. */
    static struct trace_secret secret;
    char err[DECIDE_ERR_MAX];
    char why[CONFIG_ERR_MAX];
    struct identity id;
    struct dbhandle *dbh;
    int rc;

    /* Refuse before the socket exists, not after: what -n checks, exactly. */
    if ((rc = startup_check(cfg, &id, why, sizeof(why))) != EX_OK)
        fatalx_status(rc, "%s", why);
    if (smfi_register(mlfi_desc) != MI_SUCCESS)
        fatalx("smfi_register failed");
    open_socket(cfg, &id);
    drop_privileges(cfg, &id);
    load_secret(cfg, &secret);
    if (!opt->foreground && daemon(0, 0) < 0)
        fatal("daemon");
    write_pid_file(cfg->pid_file);
    if ((dbh = dbh_new(cfg->state_db)) == NULL)
        fatalx_status(EX_OSERR, "out of memory");
    /* A missing store is logged by dbh_open; messages get on_db_error meanwhile. */
    (void) dbh_open(dbh, err);
    mlfi_init(cfg, dbh);
    mlfi_set_secret(&secret);
    return start_counting(cfg, dbh);
}

int main(int argc, char **argv)
{
    struct options opt = {0};
    struct config cfg;
    struct ticker *ticker;
    int rc;

    parse_args(argc, argv, &opt);
    if (opt.check_only)
        return check_config(opt.config_path);
    load_config(&opt, &cfg);
    /* A write to an MTA that hung up must be an error, not a kill. */
    signal(SIGPIPE, SIG_IGN);
    ticker = start(&opt, &cfg);
    log_msg(LOG_INFO, "starting: socket=%s state_db=%s on_db_error=%s dry_run=%s",
            cfg.socket, cfg.state_db,
            cfg.on_db_error == ON_DB_ERROR_ACCEPT ? "accept" : "tempfail",
            cfg.dry_run ? "yes" : "no");
    /* Started: from now on stderr only if asked for. */
    log_set_stderr(cfg.log_stderr || opt.verbose);
    rc = smfi_main();
    /*
     * smfi_main() returns when the listener stops, but libmilter neither
     * waits for nor joins its worker threads: a callback may still be
     * running (a message in flight at SIGTERM). So what the callbacks share,
     * the store handle (dbh_free would destroy its mutex under them) and the
     * log settings (log_close), is left as it is; exit releases it.
     */
    /* The last flush of the counters; a callback still running may miss it. */
    ticker_stop(ticker);
    stats_log();
    if (cfg.pid_file[0] != '\0' && unlink(cfg.pid_file) < 0)
        log_warn("unlink %s", cfg.pid_file);
    log_msg(LOG_INFO, "stopped");
    return rc == MI_SUCCESS ? EX_OK : EX_SOFTWARE;
}
