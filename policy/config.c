/*
 * config.c - the table-driven configuration parser (see config.h).
 *
 * Every key is declared once in config_keys[] with its type, default and
 * bounds; parsing, defaults and config_dump are all driven by the table, so
 * a new key cannot be documented in one place and forgotten in another.
 */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"

enum key_type { TYPE_STRING, TYPE_BOOL, TYPE_UINT, TYPE_OCTAL, TYPE_ENUM };

struct enum_name {
    const char *name;
    int value;
};

static const struct enum_name on_db_error_names[] = {
    {"tempfail", ON_DB_ERROR_TEMPFAIL}, {"accept", ON_DB_ERROR_ACCEPT}, {NULL, 0}};
static const struct enum_name facility_names[] = {
    {"mail", LOG_MAIL}, {"daemon", LOG_DAEMON}, {"user", LOG_USER},
    {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2},
    {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5},
    {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7}, {NULL, 0}};
static const struct enum_name level_names[] = {
    {"err", LOG_ERR}, {"warning", LOG_WARNING}, {"notice", LOG_NOTICE},
    {"info", LOG_INFO}, {"debug", LOG_DEBUG}, {NULL, 0}};

struct config_key {
    const char *name;
    enum key_type type;
    size_t offset;
    const char *def;
    unsigned long min, max;             /* TYPE_UINT, TYPE_OCTAL */
    const struct enum_name *names;      /* TYPE_ENUM */
};

#define OFF(field) offsetof(struct config, field)
static const struct config_key config_keys[] = {
    {"socket", TYPE_STRING, OFF(socket), "unix:/run/coexist-milter/coexist-milter.sock", 0, 0, NULL},
    {"state_db", TYPE_STRING, OFF(state_db), "/var/lib/coexist-milter/state.tdb", 0, 0, NULL},
    {"user", TYPE_STRING, OFF(user), "", 0, 0, NULL},
    {"group", TYPE_STRING, OFF(group), "", 0, 0, NULL},
    {"umask", TYPE_OCTAL, OFF(umask), "007", 0, 0777, NULL},
    {"pid_file", TYPE_STRING, OFF(pid_file), "", 0, 0, NULL},
    {"recipient_delimiter", TYPE_STRING, OFF(recipient_delimiter), "+", 0, 0, NULL},
    {"propagate_unmatched_extensions", TYPE_BOOL, OFF(propagate_extension), "yes", 0, 0, NULL},
    {"on_db_error", TYPE_ENUM, OFF(on_db_error), "tempfail", 0, 0, on_db_error_names},
    {"dry_run", TYPE_BOOL, OFF(dry_run), "no", 0, 0, NULL},
    {"trace_header", TYPE_STRING, OFF(trace_header), "X-Coexist-Milter", 0, 0, NULL},
    {"instance", TYPE_STRING, OFF(instance), "coexist-milter", 0, 0, NULL},
    {"trace_secret_file", TYPE_STRING, OFF(trace_secret_file), "trace.key", 0, 0, NULL},
    {"syslog_facility", TYPE_ENUM, OFF(syslog_facility), "mail", 0, 0, facility_names},
    {"log_level", TYPE_ENUM, OFF(log_level), "info", 0, 0, level_names},
    {"log_stderr", TYPE_BOOL, OFF(log_stderr), "no", 0, 0, NULL},
    {"stats_interval", TYPE_UINT, OFF(stats_interval), "3600", 0, 86400, NULL},
    {"allow_root", TYPE_BOOL, OFF(allow_root), "no", 0, 0, NULL},
    {"hash_size", TYPE_UINT, OFF(hash_size), "100003", 31, 100000007, NULL},
    /* Several MX hosts, one state (DESIGN section 11): a libpq conninfo; "" = single host. */
    {"shared_store", TYPE_STRING, OFF(shared_store), "", 0, 0, NULL},
    {"node_name", TYPE_STRING, OFF(node_name), "", 0, 0, NULL},
    {"replica_wait", TYPE_UINT, OFF(replica_wait), "10", 0, 3600, NULL},
    /* Seeing the migration (DESIGN section 12): per-user counters, metrics. */
    {"counters_db", TYPE_STRING, OFF(counters_db), "counters.tdb", 0, 0, NULL},
    {"counters_interval", TYPE_UINT, OFF(counters_interval), "60", 1, 3600, NULL},
    {"metrics_file", TYPE_STRING, OFF(metrics_file), "", 0, 0, NULL},
};
#define NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

/*
 * check_port - the PORT of inet:PORT@ADDR or inet6:PORT@ADDR. libmilter
 * parses it with atoi() and keeps the low 16 bits: 99999 would listen on
 * 34463 while the log says 99999. Names from /etc/services are refused too:
 * the MTA's side of the configuration names a number.
 */
static const char *check_port(const char *port)
{
    unsigned long n = 0;
    const char *p;

    for (p = port; *p != '\0' && *p != '@'; p++) {
        if (!isdigit((unsigned char) *p) || p - port >= 5)
            return "port must be a number from 1 to 65535";
        n = n * 10 + (unsigned long) (*p - '0');
    }
    if (p == port || n < 1 || n > 65535)
        return "port must be a number from 1 to 65535";
    return NULL;
}

/* check_socket - unix:PATH, local:PATH, inet:PORT@ADDR or inet6:PORT@ADDR. */
static const char *check_socket(const char *value)
{
    if (strncmp(value, "unix:", 5) == 0 || strncmp(value, "local:", 6) == 0)
        return NULL;
    if (strncmp(value, "inet:", 5) == 0)
        return check_port(value + 5);
    if (strncmp(value, "inet6:", 6) == 0)
        return check_port(value + 6);
    return "must be unix:PATH or inet:PORT@ADDR";
}

/* check_string - per-key rules for string values. */
static const char *check_string(const struct config_key *key, const char *value)
{
    const char *why;

    if (strcmp(key->name, "socket") == 0 && (why = check_socket(value)) != NULL)
        return why;
    if (strcmp(key->name, "state_db") == 0 && value[0] != '/')
        return "must be an absolute path";
    if (strcmp(key->name, "metrics_file") == 0 && value[0] != '\0' && value[0] != '/')
        return "must be an absolute path (or empty: no metrics file)";
    if (strcmp(key->name, "trace_header") == 0) {
        if (value[0] == '\0')
            return "must not be empty";
        for (const char *p = value; *p; p++)
            if (*p <= ' ' || *p == ':' || *p > '~')
                return "is not a valid header name";
    }
    if (strcmp(key->name, "instance") == 0 && value[0] == '\0')
        return "must not be empty";
    /* The trace header's parts are separated by ';'. */
    /* node_name is journaled and shown by status: a token, like a host name. */
    if (strcmp(key->name, "node_name") == 0)
        for (const char *p = value; *p; p++)
            if (!isalnum((unsigned char) *p) && !strchr(".-_", *p))
                return "must be letters, digits, '.', '-' or '_'";
    if (strcmp(key->name, "instance") == 0 && strchr(value, ';') != NULL)
        return "must not contain ';'";
    if (strcmp(key->name, "recipient_delimiter") == 0)
        for (const char *p = value; *p; p++)
            if (*p == '@' || isspace((unsigned char) *p) || isalnum((unsigned char) *p))
                return "must be punctuation characters other than @";
    return NULL;
}

/* set_value - convert VALUE for KEY into CFG; NULL or the reason. */
static const char *set_value(struct config *cfg, const struct config_key *key,
                             const char *value)
{
    char *field = (char *) cfg + key->offset;
    char *end;
    unsigned long n;
    const char *why;

    switch (key->type) {
    case TYPE_STRING:
        if (strlen(value) >= CONFIG_STR_MAX)
            return "value too long";
        if ((why = check_string(key, value)) != NULL)
            return why;
        strcpy(field, value);
        return NULL;
    case TYPE_BOOL:
        if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
            *(int *) field = 1;
        else if (strcmp(value, "no") == 0 || strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
            *(int *) field = 0;
        else
            return "must be yes or no";
        return NULL;
    case TYPE_UINT:
    case TYPE_OCTAL:
        errno = 0;
        n = strtoul(value, &end, key->type == TYPE_OCTAL ? 8 : 10);
        if (errno || end == value || *end || value[0] == '-' || n < key->min || n > key->max)
            return key->type == TYPE_OCTAL ? "must be an octal number from 0 to 777"
                                           : "number out of range";
        if (key->type == TYPE_OCTAL)
            *(mode_t *) field = (mode_t) n;
        else
            *(unsigned *) field = (unsigned) n;
        return NULL;
    case TYPE_ENUM:
        for (const struct enum_name *e = key->names; e->name; e++)
            if (strcmp(value, e->name) == 0)
                return (*(int *) field = e->value), NULL;
        return "is not one of the allowed values";
    }
    return "bad key type";
}

void config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < NKEYS; i++)
        (void) set_value(cfg, &config_keys[i], config_keys[i].def);
}

/* trim - strip blanks at both ends, in place. */
static char *trim(char *s)
{
    char *end = s + strlen(s);

    while (isspace((unsigned char) *s))
        s++;
    while (end > s && isspace((unsigned char) end[-1]))
        *--end = '\0';
    return s;
}

/* parse_line - one "key = value" line; NULL or the reason in ERR. */
static int parse_line(struct config *cfg, char *line, const char *path, int lineno,
                      char err[CONFIG_ERR_MAX])
{
    char *eq, *name, *value;
    const char *why;
    size_t i, len = strlen(line);

    /* The LF is gone (read_line); a CR before it is not part of the line. */
    if (len > 0 && line[len - 1] == '\r')
        line[--len] = '\0';
    for (char *p = line; *p; p++)
        if ((unsigned char) *p < 0x20 && *p != '\t')
            return snprintf(err, CONFIG_ERR_MAX, "%s:%d: control character", path, lineno), -1;
    line = trim(line);
    if (*line == '\0' || *line == '#')
        return 0;
    if ((eq = strchr(line, '=')) == NULL)
        return snprintf(err, CONFIG_ERR_MAX, "%s:%d: expected 'key = value'", path, lineno), -1;
    *eq = '\0';
    name = trim(line);
    value = trim(eq + 1);
    for (i = 0; i < NKEYS; i++)
        if (strcmp(name, config_keys[i].name) == 0)
            break;
    if (i == NKEYS)
        return snprintf(err, CONFIG_ERR_MAX, "%s:%d: unknown key '%s'", path, lineno, name), -1;
    if ((why = set_value(cfg, &config_keys[i], value)) != NULL)
        return snprintf(err, CONFIG_ERR_MAX, "%s:%d: %s: '%s' %s", path, lineno, name,
                        value, why), -1;
    return 0;
}

/* Line length the parser accepts, terminator not counted. */
#define LINE_MAX_LEN 1022

enum line_status { LINE_OK, LINE_EOF, LINE_TOO_LONG, LINE_NUL };

/*
 * read_line - one line of FP into BUF (LINE_MAX_LEN + 1 bytes) without its
 * LF. Read byte by byte rather than with fgets, which cannot tell a NUL
 * byte from the end of its buffer: a binary file must be named as such,
 * not as "line too long". The rest of a bad line is consumed.
 */
static enum line_status read_line(FILE *fp, char *buf)
{
    size_t len = 0;
    int c, nul = 0, too_long = 0, any = 0;

    while ((c = getc(fp)) != EOF) {
        any = 1;
        if (c == '\n')
            break;
        if (c == '\0')
            nul = 1;
        else if (len < LINE_MAX_LEN)
            buf[len++] = (char) c;
        else
            too_long = 1;
    }
    buf[len] = '\0';
    if (!any)
        return LINE_EOF;
    return nul ? LINE_NUL : too_long ? LINE_TOO_LONG : LINE_OK;
}

/* UTF-8 byte order mark, as Windows editors write at the start of a file. */
#define UTF8_BOM "\xEF\xBB\xBF"

int config_load(struct config *cfg, const char *path, int missing_ok,
                char err[CONFIG_ERR_MAX])
{
    char line[LINE_MAX_LEN + 1];
    int lineno = 0, rc = 0;
    enum line_status status;
    FILE *fp = fopen(path, "r");

    if (fp == NULL) {
        if (errno == ENOENT && missing_ok)
            return 0;
        snprintf(err, CONFIG_ERR_MAX, "%s: %s", path, strerror(errno));
        return -1;
    }
    while (rc == 0 && (status = read_line(fp, line)) != LINE_EOF) {
        lineno++;
        rc = -1;
        /* A BOM would be read as part of the first key: say what it is. */
        if (lineno == 1 && strncmp(line, UTF8_BOM, 3) == 0)
            snprintf(err, CONFIG_ERR_MAX, "%s:1: UTF-8 byte order mark at start of file; "
                     "save it without BOM", path);
        else if (status == LINE_NUL)
            snprintf(err, CONFIG_ERR_MAX, "%s:%d: NUL byte in line", path, lineno);
        else if (status == LINE_TOO_LONG)
            snprintf(err, CONFIG_ERR_MAX, "%s:%d: line too long", path, lineno);
        else
            rc = parse_line(cfg, line, path, lineno, err);
    }
    if (rc == 0 && ferror(fp)) {
        snprintf(err, CONFIG_ERR_MAX, "%s: read error", path);
        rc = -1;
    }
    fclose(fp);
    return rc;
}

int config_beside(const char *file, const char *db, char *out, size_t outlen)
{
    const char *slash = strrchr(db, '/');
    int n;

    if (file[0] == '\0' || file[0] == '/')
        n = snprintf(out, outlen, "%s", file);
    else if (slash == NULL)
        n = snprintf(out, outlen, "%s", file);
    else
        n = snprintf(out, outlen, "%.*s/%s", (int) (slash - db), db, file);
    return n < 0 || (size_t) n >= outlen ? -1 : 0;
}

void config_dump(const struct config *cfg, FILE *fp)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const struct config_key *key = &config_keys[i];
        const char *field = (const char *) cfg + key->offset;

        fprintf(fp, "%s = ", key->name);
        switch (key->type) {
        case TYPE_STRING:
            fprintf(fp, "%s\n", field);
            break;
        case TYPE_BOOL:
            fprintf(fp, "%s\n", *(const int *) field ? "yes" : "no");
            break;
        case TYPE_UINT:
            fprintf(fp, "%u\n", *(const unsigned *) field);
            break;
        case TYPE_OCTAL:
            fprintf(fp, "%03o\n", (unsigned) *(const mode_t *) field);
            break;
        case TYPE_ENUM:
            for (const struct enum_name *e = key->names; e->name; e++)
                if (e->value == *(const int *) field) {
                    fprintf(fp, "%s\n", e->name);
                    break;
                }
            break;
        }
    }
}

void config_node_name(const struct config *cfg, char out[CONFIG_STR_MAX])
{
    if (cfg->node_name[0] != '\0') {
        snprintf(out, CONFIG_STR_MAX, "%s", cfg->node_name);
        return;
    }
    if (gethostname(out, CONFIG_STR_MAX) < 0 || out[0] == '\0')
        snprintf(out, CONFIG_STR_MAX, "localhost");
    out[CONFIG_STR_MAX - 1] = '\0';
}
