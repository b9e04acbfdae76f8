/*
 * test_config.c - unit tests of policy/config.c, the key = value
 * configuration shared by coexist-milter and coexistctl.
 *
 * Covers the built-in defaults, parsing of every key (comments, blank lines,
 * blanks around '=', a last line without newline), the "path:line: message"
 * errors (unknown key, bad bool, bad enum, number out of range, bad octal
 * umask, missing '=', relative state_db, bad socket, inet ports outside
 * 1-65535, bad strings, over-long lines, a UTF-8 BOM, NUL bytes), a missing
 * file with and without missing_ok, and config_dump, whose
 * output must load back into an identical struct.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy/config.h"     /* not the autoconf config.h */

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* temp_file - write TEXT to a new temporary file; its path goes to PATH. */
static void temp_file(const char *text, char path[64])
{
    const char *dir = getenv("TMPDIR");
    FILE *fp;
    int fd;

    snprintf(path, 64, "%s/test_config.XXXXXX", dir && strlen(dir) < 40 ? dir : "/tmp");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    fp = fdopen(fd, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0 || *text == '\0', 1);
    assert_int_equal(fclose(fp), 0);
}

/* load_text - config_defaults, then config_load of TEXT; returns its rc. */
static int load_text(const char *text, struct config *cfg, char path[64],
                     char err[CONFIG_ERR_MAX])
{
    int rc;

    temp_file(text, path);
    config_defaults(cfg);
    err[0] = '\0';
    rc = config_load(cfg, path, 0, err);
    unlink(path);
    return rc;
}

static void test_defaults(void **state)
{
    struct config cfg;

    (void) state;
    memset(&cfg, 0x5A, sizeof(cfg));
    config_defaults(&cfg);
    assert_string_equal(cfg.socket, "unix:/run/coexist-milter/coexist-milter.sock");
    assert_string_equal(cfg.state_db, "/var/lib/coexist-milter/state.tdb");
    assert_string_equal(cfg.user, "");
    assert_string_equal(cfg.group, "");
    assert_int_equal(cfg.umask, 007);
    assert_string_equal(cfg.pid_file, "");
    assert_string_equal(cfg.recipient_delimiter, "+");
    assert_int_equal(cfg.on_db_error, ON_DB_ERROR_TEMPFAIL);
    assert_int_equal(cfg.dry_run, 0);
    assert_string_equal(cfg.trace_header, "X-Coexist-Milter");
    assert_string_equal(cfg.instance, "coexist-milter");
    assert_int_equal(cfg.syslog_facility, LOG_MAIL);
    assert_int_equal(cfg.log_level, LOG_INFO);
    assert_int_equal(cfg.log_stderr, 0);
    assert_int_equal(cfg.stats_interval, 3600);
    assert_int_equal(cfg.allow_root, 0);
    assert_int_equal(cfg.hash_size, 100003);
}

/* Every key set away from its default, with comments and odd spacing. */
static const char all_keys[] =
    "# coexist-milter.conf written by test_config\n"
    "\n"
    "socket = inet:8890@127.0.0.1\n"
    "   # an indented comment\n"
    "state_db=/srv/coexist/state.tdb\n"
    "\t\n"
    "user = coexist\n"
    "group\t=\tmail  \n"
    "umask = 0027\n"
    "pid_file = /run/coexist-milter/coexist-milter.pid\n"
    "recipient_delimiter = +-\n"
    "on_db_error = accept\n"
    "dry_run = yes\n"
    "trace_header = X-Test-Trace\n"
    "instance = mx1.corp.example\n"
    "trace_secret_file = /srv/coexist/trace.key\n"
    "syslog_facility = local3\n"
    "log_level = debug\n"
    "log_stderr = true\n"
    "stats_interval = 0\n"
    "allow_root = 1\n"
    "hash_size = 31";       /* the last line has no newline */

static void check_all_keys(const struct config *cfg)
{
    assert_string_equal(cfg->socket, "inet:8890@127.0.0.1");
    assert_string_equal(cfg->state_db, "/srv/coexist/state.tdb");
    assert_string_equal(cfg->user, "coexist");
    assert_string_equal(cfg->group, "mail");
    assert_int_equal(cfg->umask, 027);
    assert_string_equal(cfg->pid_file, "/run/coexist-milter/coexist-milter.pid");
    assert_string_equal(cfg->recipient_delimiter, "+-");
    assert_int_equal(cfg->on_db_error, ON_DB_ERROR_ACCEPT);
    assert_int_equal(cfg->dry_run, 1);
    assert_string_equal(cfg->trace_header, "X-Test-Trace");
    assert_string_equal(cfg->instance, "mx1.corp.example");
    assert_string_equal(cfg->trace_secret_file, "/srv/coexist/trace.key");
    assert_int_equal(cfg->syslog_facility, LOG_LOCAL3);
    assert_int_equal(cfg->log_level, LOG_DEBUG);
    assert_int_equal(cfg->log_stderr, 1);
    assert_int_equal(cfg->stats_interval, 0);
    assert_int_equal(cfg->allow_root, 1);
    assert_int_equal(cfg->hash_size, 31);
}

static void test_every_key(void **state)
{
    struct config cfg;
    char path[64], err[CONFIG_ERR_MAX];

    (void) state;
    if (load_text(all_keys, &cfg, path, err) != 0)
        fail_msg("config_load failed: %s", err);
    check_all_keys(&cfg);
}

/* One accepted file and the field it sets. */
struct value_case {
    const char *text;
    const char *field;          /* name, for the message */
    size_t offset;
    enum { V_STR, V_INT, V_UINT, V_MODE } type;
    const char *want_str;
    long long want_num;
};

#define CF(f) #f, offsetof(struct config, f)
static const struct value_case value_cases[] = {
    {"dry_run = yes\n", CF(dry_run), V_INT, NULL, 1},
    {"dry_run = true\n", CF(dry_run), V_INT, NULL, 1},
    {"dry_run = 1\n", CF(dry_run), V_INT, NULL, 1},
    {"dry_run = yes\ndry_run = no\n", CF(dry_run), V_INT, NULL, 0},
    {"dry_run = false\n", CF(dry_run), V_INT, NULL, 0},
    {"dry_run = 0\n", CF(dry_run), V_INT, NULL, 0},
    {"on_db_error = tempfail\n", CF(on_db_error), V_INT, NULL, ON_DB_ERROR_TEMPFAIL},
    {"syslog_facility = daemon\n", CF(syslog_facility), V_INT, NULL, LOG_DAEMON},
    {"syslog_facility = local7\n", CF(syslog_facility), V_INT, NULL, LOG_LOCAL7},
    {"log_level = err\n", CF(log_level), V_INT, NULL, LOG_ERR},
    {"log_level = warning\n", CF(log_level), V_INT, NULL, LOG_WARNING},
    {"log_level = notice\n", CF(log_level), V_INT, NULL, LOG_NOTICE},
    {"umask = 0\n", CF(umask), V_MODE, NULL, 0},
    {"umask = 777\n", CF(umask), V_MODE, NULL, 0777},
    {"umask = 022\n", CF(umask), V_MODE, NULL, 022},
    {"stats_interval = 86400\n", CF(stats_interval), V_UINT, NULL, 86400},
    {"hash_size = 100000007\n", CF(hash_size), V_UINT, NULL, 100000007},
    {"socket = unix:/tmp/x.sock\n", CF(socket), V_STR, "unix:/tmp/x.sock", 0},
    {"socket = local:/tmp/x.sock\n", CF(socket), V_STR, "local:/tmp/x.sock", 0},
    {"socket = inet6:8890@[::1]\n", CF(socket), V_STR, "inet6:8890@[::1]", 0},
    {"socket = inet:1@127.0.0.1\n", CF(socket), V_STR, "inet:1@127.0.0.1", 0},
    {"socket = inet:65535@127.0.0.1\n", CF(socket), V_STR, "inet:65535@127.0.0.1", 0},
    {"socket = inet:8890\n", CF(socket), V_STR, "inet:8890", 0},
    {"recipient_delimiter =\n", CF(recipient_delimiter), V_STR, "", 0},
    {"recipient_delimiter = +-_\n", CF(recipient_delimiter), V_STR, "+-_", 0},
    {"instance = a = b\n", CF(instance), V_STR, "a = b", 0},
    {"trace_secret_file =\n", CF(trace_secret_file), V_STR, "", 0},
    {"trace_secret_file = /etc/coexist-milter/trace.key\n", CF(trace_secret_file), V_STR,
     "/etc/coexist-milter/trace.key", 0},
    {"", CF(trace_secret_file), V_STR, "trace.key", 0},
    {"user = milter\r\n", CF(user), V_STR, "milter", 0},
    {"\n\n# only comments\n  \n", CF(instance), V_STR, "coexist-milter", 0},
    {"", CF(instance), V_STR, "coexist-milter", 0},
};

static void test_values(void **state)
{
    struct config cfg;
    char path[64], err[CONFIG_ERR_MAX];
    int failed = 0;

    (void) state;
    for (size_t i = 0; i < NELEM(value_cases); i++) {
        const struct value_case *c = &value_cases[i];
        const char *field = (const char *) &cfg + c->offset;
        long long got = 0;

        if (load_text(c->text, &cfg, path, err) != 0) {
            print_error("value case %zu: loading '%s' failed: %s\n", i, c->text, err);
            failed++;
            continue;
        }
        if (c->type == V_STR) {
            if (strcmp(field, c->want_str) != 0) {
                print_error("value case %zu: %s: got '%s', want '%s'\n", i, c->field, field,
                            c->want_str);
                failed++;
            }
            continue;
        }
        if (c->type == V_INT)
            got = *(const int *) field;
        else if (c->type == V_UINT)
            got = *(const unsigned *) field;
        else
            got = *(const mode_t *) field;
        if (got != c->want_num) {
            print_error("value case %zu: %s: got %lld, want %lld\n", i, c->field, got,
                        c->want_num);
            failed++;
        }
    }
    if (failed)
        fail_msg("%d of %zu value cases failed", failed, NELEM(value_cases));
}

/* One rejected file: the line and the message after "path:line: ". */
struct error_case {
    const char *text;
    int line;
    const char *want;           /* the exact message after "path:line: " */
};

static const struct error_case error_cases[] = {
    {"colour = blue\n", 1, "unknown key 'colour'"},
    {"# comment\n\ndry_run = maybe\n", 3, "dry_run: 'maybe' must be yes or no"},
    {"dry_run = YES\n", 1, "dry_run: 'YES' must be yes or no"},
    {"log_stderr =\n", 1, "log_stderr: '' must be yes or no"},
    {"on_db_error = reject\n", 1, "on_db_error: 'reject' is not one of the allowed values"},
    {"log_level = verbose\n", 1, "log_level: 'verbose' is not one of the allowed values"},
    {"syslog_facility = kern\n", 1,
     "syslog_facility: 'kern' is not one of the allowed values"},
    {"stats_interval = 86401\n", 1, "stats_interval: '86401' number out of range"},
    {"stats_interval = -1\n", 1, "stats_interval: '-1' number out of range"},
    {"stats_interval = 12x\n", 1, "stats_interval: '12x' number out of range"},
    {"stats_interval =\n", 1, "stats_interval: '' number out of range"},
    {"stats_interval = 99999999999999999999999\n", 1,
     "stats_interval: '99999999999999999999999' number out of range"},
    {"hash_size = 30\n", 1, "hash_size: '30' number out of range"},
    {"hash_size = 100000008\n", 1, "hash_size: '100000008' number out of range"},
    {"umask = 8\n", 1, "umask: '8' must be an octal number from 0 to 777"},
    {"umask = 0x7\n", 1, "umask: '0x7' must be an octal number from 0 to 777"},
    {"umask = 1000\n", 1, "umask: '1000' must be an octal number from 0 to 777"},
    {"umask = -7\n", 1, "umask: '-7' must be an octal number from 0 to 777"},
    {"umask = 079\n", 1, "umask: '079' must be an octal number from 0 to 777"},
    {"user = a\ndry_run yes\n", 2, "expected 'key = value'"},
    {"state_db = relative/state.tdb\n", 1,
     "state_db: 'relative/state.tdb' must be an absolute path"},
    {"state_db =\n", 1, "state_db: '' must be an absolute path"},
    {"socket = /run/x.sock\n", 1, "socket: '/run/x.sock' must be unix:PATH or inet:PORT@ADDR"},
    {"socket = tcp:25@host\n", 1, "socket: 'tcp:25@host' must be unix:PATH or inet:PORT@ADDR"},
    /* libmilter keeps the low 16 bits: 99999 would listen on 34463 */
    {"socket = inet:99999@127.0.0.1\n", 1,
     "socket: 'inet:99999@127.0.0.1' port must be a number from 1 to 65535"},
    {"socket = inet:65536@127.0.0.1\n", 1,
     "socket: 'inet:65536@127.0.0.1' port must be a number from 1 to 65535"},
    {"socket = inet6:70000@[::1]\n", 1,
     "socket: 'inet6:70000@[::1]' port must be a number from 1 to 65535"},
    {"socket = inet:0@127.0.0.1\n", 1,
     "socket: 'inet:0@127.0.0.1' port must be a number from 1 to 65535"},
    {"socket = inet:@127.0.0.1\n", 1,
     "socket: 'inet:@127.0.0.1' port must be a number from 1 to 65535"},
    {"socket = inet:\n", 1, "socket: 'inet:' port must be a number from 1 to 65535"},
    {"socket = inet:-1@127.0.0.1\n", 1,
     "socket: 'inet:-1@127.0.0.1' port must be a number from 1 to 65535"},
    {"socket = inet:milter@127.0.0.1\n", 1,
     "socket: 'inet:milter@127.0.0.1' port must be a number from 1 to 65535"},
    {"socket = inet:4294976186@127.0.0.1\n", 1,
     "socket: 'inet:4294976186@127.0.0.1' port must be a number from 1 to 65535"},
    /* a UTF-8 BOM (Windows editors) is named, not taken for part of a key */
    {"\xEF\xBB\xBFsocket = unix:/tmp/x.sock\n", 1,
     "UTF-8 byte order mark at start of file; save it without BOM"},
    {"\xEF\xBB\xBF# comment first\n", 1,
     "UTF-8 byte order mark at start of file; save it without BOM"},
    {"\xEF\xBB\xBF", 1, "UTF-8 byte order mark at start of file; save it without BOM"},
    {"trace_header =\n", 1, "trace_header: '' must not be empty"},
    {"trace_header = X Bad\n", 1, "trace_header: 'X Bad' is not a valid header name"},
    {"trace_header = X-Bad:\n", 1, "trace_header: 'X-Bad:' is not a valid header name"},
    {"instance =\n", 1, "instance: '' must not be empty"},
    {"instance = mx1;r=*\n", 1, "instance: 'mx1;r=*' must not contain ';'"},
    {"node_name = mx1/x\n", 1,
     "node_name: 'mx1/x' must be letters, digits, '.', '-' or '_'"},
    {"replica_wait = 3601\n", 1, "replica_wait: '3601' number out of range"},
    {"counters_interval = 0\n", 1, "counters_interval: '0' number out of range"},
    {"counters_interval = 3601\n", 1, "counters_interval: '3601' number out of range"},
    {"metrics_file = coexist.prom\n", 1,
     "metrics_file: 'coexist.prom' must be an absolute path (or empty: no metrics file)"},
    {"recipient_delimiter = a\n", 1,
     "recipient_delimiter: 'a' must be punctuation characters other than @"},
    {"recipient_delimiter = +@\n", 1,
     "recipient_delimiter: '+@' must be punctuation characters other than @"},
    {"instance = a\001b\n", 1, "control character"},
    {"= yes\n", 1, "unknown key ''"},
    {"Dry_Run = yes\n", 1, "unknown key 'Dry_Run'"},
};

static void test_errors(void **state)
{
    struct config cfg;
    char path[64], err[CONFIG_ERR_MAX], want[CONFIG_ERR_MAX + 128];
    int failed = 0;

    (void) state;
    for (size_t i = 0; i < NELEM(error_cases); i++) {
        const struct error_case *c = &error_cases[i];
        int rc = load_text(c->text, &cfg, path, err);

        snprintf(want, sizeof(want), "%s:%d: %s", path, c->line, c->want);
        if (rc != -1 || strcmp(err, want) != 0) {
            print_error("error case %zu ('%s'): got rc %d '%s', want '%s'\n", i, c->text, rc,
                        err, want);
            failed++;
        }
    }
    if (failed)
        fail_msg("%d of %zu error cases failed", failed, NELEM(error_cases));
}

/* test_long_lines - a value over CONFIG_STR_MAX, a line over the buffer. */
static void test_long_lines(void **state)
{
    char text[2048], path[64], err[CONFIG_ERR_MAX], want[CONFIG_ERR_MAX + 64];
    struct config cfg;
    int n;

    (void) state;
    /* A 255-byte value fits, a 256-byte one does not. */
    n = snprintf(text, sizeof(text), "user = ");
    memset(text + n, 'u', 255);
    strcpy(text + n + 255, "\n");
    assert_int_equal(load_text(text, &cfg, path, err), 0);
    assert_int_equal(strlen(cfg.user), 255);
    memset(text + n, 'u', 256);
    strcpy(text + n + 256, "\n");
    assert_int_equal(load_text(text, &cfg, path, err), -1);
    assert_non_null(strstr(err, ":1: user: '"));
    assert_non_null(strstr(err, "' value too long"));

    /* A line longer than the reader's buffer is an error, not two lines. */
    n = snprintf(text, sizeof(text), "dry_run = yes\n# ");
    memset(text + n, 'c', 1500);
    strcpy(text + n + 1500, "\ndry_run = no\n");
    assert_int_equal(load_text(text, &cfg, path, err), -1);
    snprintf(want, sizeof(want), "%s:2: line too long", path);
    assert_string_equal(err, want);
}

/* load_bytes - config_load of LEN bytes of DATA, which may hold NULs. */
static int load_bytes(const char *data, size_t len, struct config *cfg, char path[64],
                      char err[CONFIG_ERR_MAX])
{
    FILE *fp;
    int rc;

    temp_file("", path);
    fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
    config_defaults(cfg);
    err[0] = '\0';
    rc = config_load(cfg, path, 0, err);
    unlink(path);
    return rc;
}

/* test_nul_byte - a NUL is named as such, on any line, even a short one. */
static void test_nul_byte(void **state)
{
    static const struct {
        const char *data;
        size_t len;
        int line;
    } cases[] = {
#define BYTES(s) s, sizeof(s) - 1
        {BYTES("dry_run = yes\0\n"), 1},
        {BYTES("dry_run = yes\nuser = a\0b\nlog_stderr = yes\n"), 2},
        {BYTES("# fine\n\n\0"), 3},        /* last line, no newline */
        {BYTES("\0\0\0\0"), 1},
#undef BYTES
    };
    char path[64], err[CONFIG_ERR_MAX], want[CONFIG_ERR_MAX + 64], big[2048];
    struct config cfg;

    (void) state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        assert_int_equal(load_bytes(cases[i].data, cases[i].len, &cfg, path, err), -1);
        snprintf(want, sizeof(want), "%s:%d: NUL byte in line", path, cases[i].line);
        if (strcmp(err, want) != 0)
            fail_msg("NUL case %zu: got '%s', want '%s'", i, err, want);
        assert_int_equal(cfg.log_stderr, 0);
    }
    /* A long line with a NUL in it: the NUL is what is wrong with it. */
    memset(big, 'x', sizeof(big));
    big[100] = '\0';
    big[sizeof(big) - 1] = '\n';
    assert_int_equal(load_bytes(big, sizeof(big), &cfg, path, err), -1);
    snprintf(want, sizeof(want), "%s:1: NUL byte in line", path);
    assert_string_equal(err, want);
}

/* test_stops_at_first_error - nothing after a bad line is applied. */
static void test_stops_at_first_error(void **state)
{
    struct config cfg;
    char path[64], err[CONFIG_ERR_MAX];

    (void) state;
    assert_int_equal(load_text("dry_run = yes\nbogus = 1\nlog_stderr = yes\n", &cfg, path,
                               err), -1);
    assert_non_null(strstr(err, ":2: unknown key 'bogus'"));
    assert_int_equal(cfg.log_stderr, 0);
}

static void test_missing_file(void **state)
{
    struct config cfg, defaults;
    char err[CONFIG_ERR_MAX];
    const char *path = "/nonexistent/coexist-milter-test/none.conf";

    (void) state;
    config_defaults(&defaults);
    config_defaults(&cfg);
    err[0] = '\0';
    assert_int_equal(config_load(&cfg, path, 1, err), 0);
    assert_memory_equal(&cfg, &defaults, sizeof(cfg));

    assert_int_equal(config_load(&cfg, path, 0, err), -1);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "No such file or directory"));
    assert_memory_equal(&cfg, &defaults, sizeof(cfg));
}

/* test_load_over_values - keys absent from the file keep what CFG held. */
static void test_load_over_values(void **state)
{
    struct config cfg;
    char path[64], err[CONFIG_ERR_MAX];

    (void) state;
    config_defaults(&cfg);
    strcpy(cfg.instance, "from-caller");
    temp_file("dry_run = yes\n", path);
    assert_int_equal(config_load(&cfg, path, 0, err), 0);
    unlink(path);
    assert_int_equal(cfg.dry_run, 1);
    assert_string_equal(cfg.instance, "from-caller");
}

static const char default_dump[] =
    "socket = unix:/run/coexist-milter/coexist-milter.sock\n"
    "state_db = /var/lib/coexist-milter/state.tdb\n"
    "user = \n"
    "group = \n"
    "umask = 007\n"
    "pid_file = \n"
    "recipient_delimiter = +\n"
    "propagate_unmatched_extensions = yes\n"
    "on_db_error = tempfail\n"
    "dry_run = no\n"
    "trace_header = X-Coexist-Milter\n"
    "instance = coexist-milter\n"
    "trace_secret_file = trace.key\n"
    "syslog_facility = mail\n"
    "log_level = info\n"
    "log_stderr = no\n"
    "stats_interval = 3600\n"
    "allow_root = no\n"
    "hash_size = 100003\n"
    "shared_store = \n"
    "node_name = \n"
    "replica_wait = 10\n"
    "counters_db = counters.tdb\n"
    "counters_interval = 60\n"
    "metrics_file = \n";

/* dump_text - config_dump into a malloc'd string. */
static char *dump_text(const struct config *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);

    assert_non_null(fp);
    config_dump(cfg, fp);
    assert_int_equal(fclose(fp), 0);
    return buf;
}

static void test_dump_defaults(void **state)
{
    struct config cfg;
    char *text;
    int rc;

    (void) state;
    config_defaults(&cfg);
    text = dump_text(&cfg);
    if (strcmp(text, default_dump) != 0)
        print_error("config_dump of the defaults: got\n%s\nwant\n%s", text, default_dump);
    rc = strcmp(text, default_dump);
    free(text);
    assert_int_equal(rc, 0);
}

/* check_dump_reloads - dump CFG, load the dump over defaults, compare. */
static void check_dump_reloads(const struct config *cfg)
{
    struct config back;
    char path[64], err[CONFIG_ERR_MAX];
    char *text = dump_text(cfg);
    int rc = load_text(text, &back, path, err);

    if (rc != 0)
        print_error("reloading the dump failed: %s\n%s", err, text);
    free(text);
    assert_int_equal(rc, 0);
    assert_memory_equal(&back, cfg, sizeof(back));
}

static void test_dump_round_trip(void **state)
{
    struct config cfg;
    char path[64], err[CONFIG_ERR_MAX];

    (void) state;
    config_defaults(&cfg);
    check_dump_reloads(&cfg);

    assert_int_equal(load_text(all_keys, &cfg, path, err), 0);
    check_dump_reloads(&cfg);

    assert_int_equal(load_text("recipient_delimiter =\numask = 0\nlog_level = err\n"
                               "syslog_facility = user\n", &cfg, path, err), 0);
    check_dump_reloads(&cfg);
}

/* test_beside - trace_secret_file's default lives beside state_db. */
static void test_beside(void **state)
{
    static const struct {
        const char *file, *db, *want;
    } cases[] = {
        {"trace.key", "/var/lib/coexist-milter/state.tdb", "/var/lib/coexist-milter/trace.key"},
        {"trace.key", "/state.tdb", "/trace.key"},
        {"trace.key", "state.tdb", "trace.key"},
        {"sub/k", "/tmp/x/y.tdb", "/tmp/x/sub/k"},
        {"/etc/k", "/tmp/x/y.tdb", "/etc/k"},
        {"", "/tmp/x/y.tdb", ""},
    };
    char out[64], tiny[8];

    (void) state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        assert_int_equal(config_beside(cases[i].file, cases[i].db, out, sizeof(out)), 0);
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("config_beside('%s', '%s'): got '%s', want '%s'", cases[i].file,
                     cases[i].db, out, cases[i].want);
    }
    assert_int_equal(config_beside("trace.key", "/tmp/x/y.tdb", tiny, sizeof(tiny)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_stops_at_first_error),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_load_over_values),
        cmocka_unit_test(test_dump_defaults),
        cmocka_unit_test(test_dump_round_trip),
        cmocka_unit_test(test_beside),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
