/*
 * counters.c - the counters_db file and its value codec (see counters.h).
 *
 * The file is a TDB of its own so that the milter, which only reads the
 * state store, writes nothing but this; coexistctl report reads both. The
 * milter writes it from one thread, once per counters_interval, in one
 * transaction per flush: a crash between flushes loses that interval, and
 * never leaves half of one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <tdb.h>

#include "counters.h"
#include "timefmt.h"

struct counters_db {
    struct tdb_context *tdb;
    char msg[256];              /* the last thing tdb logged */
};

/* fail - format ERR; returns -1. */
static int fail(char err[COUNTERS_ERR_MAX], const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int fail(char err[COUNTERS_ERR_MAX], const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, COUNTERS_ERR_MAX, fmt, ap);
    va_end(ap);
    return -1;
}

/* counters_day_of - days since the epoch, UTC (floor for times before it). */
long counters_day_of(time_t t)
{
    return t >= 0 ? (long) (t / 86400) : -(long) ((-t + 86399) / 86400);
}

/* ---- codec ---------------------------------------------------------------- */

/* put_time - "-" for 0, else ISO 8601. */
static void put_time(time_t t, char out[TIMEFMT_BUFSIZE])
{
    if (t == 0)
        strcpy(out, "-");
    else
        timefmt_format(t, out);
}

/* day_text - day number DAY as YYYY-MM-DD. */
static void day_text(long day, char out[16])
{
    time_t t = (time_t) day * 86400;
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(out, 16, "%Y-%m-%d", &tm) == 0)
        strcpy(out, "0000-00-00");      /* fails to decode: never silently wrong */
}

int counters_encode(const struct counters_rec *rec, char *out, size_t outlen)
{
    char first[TIMEFMT_BUFSIZE], last[TIMEFMT_BUFSIZE], rlast[TIMEFMT_BUFSIZE], d[16];
    size_t used;
    int n;

    put_time(rec->first, first);
    put_time(rec->last, last);
    put_time(rec->rlast, rlast);
    n = snprintf(out, outlen, "v=%d node=%s copies=%lu rewrites=%lu reverse=%lu first=%s "
                 "last=%s rlast=%s days=", COUNTERS_VERSION, rec->node[0] ? rec->node : "-",
                 rec->copies, rec->rewrites, rec->reverse, first, last, rlast);
    if (n < 0 || (size_t) n >= outlen)
        return -1;
    used = (size_t) n;
    if (rec->ndays == 0) {
        n = snprintf(out + used, outlen - used, "-");
        if (n < 0 || (size_t) n >= outlen - used)
            return -1;
        return (int) (used + (size_t) n);
    }
    for (size_t i = 0; i < rec->ndays; i++) {
        day_text(rec->days[i].day, d);
        n = snprintf(out + used, outlen - used, "%s%s:%lu:%lu", i ? "," : "", d,
                     rec->days[i].legacy, rec->days[i].reverse);
        if (n < 0 || (size_t) n >= outlen - used)
            return -1;
        used += (size_t) n;
    }
    return (int) used;
}

/* parse_ulong - all of TEXT as a decimal count. */
static int parse_ulong(const char *text, unsigned long *out)
{
    char *end;

    if (text[0] < '0' || text[0] > '9')
        return -1;
    errno = 0;
    *out = strtoul(text, &end, 10);
    return errno || *end ? -1 : 0;
}

/* parse_time - "-" or an ISO 8601 time. */
static int parse_time(const char *text, time_t *out)
{
    const char *why;

    if (strcmp(text, "-") == 0) {
        *out = 0;
        return 0;
    }
    return timefmt_parse(text, out, &why);
}

/* parse_day - "YYYY-MM-DD:LEGACY:REVERSE" into DAY. */
static int parse_day(char *text, struct counters_day *day)
{
    char *legacy = strchr(text, ':'), *reverse, stamp[32];
    int y, m, dd, used = 0;
    time_t t;
    const char *why;

    if (legacy == NULL || (reverse = strchr(legacy + 1, ':')) == NULL)
        return -1;
    *legacy++ = '\0';
    *reverse++ = '\0';
    if (sscanf(text, "%4d-%2d-%2d%n", &y, &m, &dd, &used) != 3 || text[used] != '\0'
        || strlen(text) != 10)
        return -1;
    snprintf(stamp, sizeof(stamp), "%sT00:00:00Z", text);
    if (timefmt_parse(stamp, &t, &why) < 0)
        return -1;
    day->day = counters_day_of(t);
    return parse_ulong(legacy, &day->legacy) < 0 || parse_ulong(reverse, &day->reverse) < 0
        ? -1 : 0;
}

/* parse_days - "-" or a comma list, newest first, no day twice. */
static int parse_days(char *text, struct counters_rec *rec)
{
    char *save = NULL;

    rec->ndays = 0;
    if (strcmp(text, "-") == 0)
        return 0;
    for (char *item = strtok_r(text, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        if (rec->ndays == COUNTERS_DAYS || parse_day(item, &rec->days[rec->ndays]) < 0)
            return -1;
        if (rec->ndays > 0 && rec->days[rec->ndays].day >= rec->days[rec->ndays - 1].day)
            return -1;
        rec->ndays++;
    }
    return rec->ndays > 0 ? 0 : -1;
}

/* The fields of a value, in the order they are written; each exactly once. */
static const char *const counters_fields[] = {
    "v", "node", "copies", "rewrites", "reverse", "first", "last", "rlast", "days"};
#define NFIELDS (sizeof(counters_fields) / sizeof(counters_fields[0]))

/* set_field - field I from VALUE into REC. */
static int set_field(size_t i, char *value, struct counters_rec *rec)
{
    unsigned long v;

    switch (i) {
    case 0: return parse_ulong(value, &v) < 0 || v != COUNTERS_VERSION ? -1 : 0;
    case 1:
        if (strlen(value) > COUNTERS_NODE_MAX)
            return -1;
        strcpy(rec->node, strcmp(value, "-") == 0 ? "" : value);
        return 0;
    case 2: return parse_ulong(value, &rec->copies);
    case 3: return parse_ulong(value, &rec->rewrites);
    case 4: return parse_ulong(value, &rec->reverse);
    case 5: return parse_time(value, &rec->first);
    case 6: return parse_time(value, &rec->last);
    case 7: return parse_time(value, &rec->rlast);
    default: return parse_days(value, rec);
    }
}

int counters_decode(const char *text, size_t len, struct counters_rec *rec,
                    char err[COUNTERS_ERR_MAX])
{
    char buf[COUNTERS_TEXT_MAX], *save = NULL;
    int seen[NFIELDS] = {0};

    memset(rec, 0, sizeof(*rec));
    if (len >= sizeof(buf) || memchr(text, '\0', len) != NULL)
        return fail(err, "counters value too long or not text");
    memcpy(buf, text, len);
    buf[len] = '\0';
    for (char *word = strtok_r(buf, " ", &save); word; word = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(word, '=');
        size_t i;

        if (eq == NULL)
            return fail(err, "counters value: '%.40s' is not key=value", word);
        *eq = '\0';
        for (i = 0; i < NFIELDS && strcmp(word, counters_fields[i]) != 0; i++)
            ;
        if (i == NFIELDS || seen[i]++)
            return fail(err, "counters value: %s '%.40s'", i == NFIELDS ? "unknown key"
                        : "duplicate key", word);
        if (set_field(i, eq + 1, rec) < 0)
            return fail(err, "counters value: bad %s", word);
    }
    for (size_t i = 0; i < NFIELDS; i++)
        if (!seen[i])
            return fail(err, "counters value: %s missing", counters_fields[i]);
    return 0;
}

/* ---- arithmetic ----------------------------------------------------------- */

/* add_day - DAY's counts into REC's bucket for it, kept newest first. */
static void add_day(struct counters_rec *rec, const struct counters_day *day, long oldest)
{
    size_t i;

    if (day->day < oldest)
        return;
    for (i = 0; i < rec->ndays && rec->days[i].day > day->day; i++)
        ;
    if (i < rec->ndays && rec->days[i].day == day->day) {
        rec->days[i].legacy += day->legacy;
        rec->days[i].reverse += day->reverse;
        return;
    }
    if (i == COUNTERS_DAYS)
        return;                 /* older than all we keep, and the array is full */
    if (rec->ndays == COUNTERS_DAYS)
        rec->ndays--;           /* the oldest goes */
    memmove(&rec->days[i + 1], &rec->days[i], (rec->ndays - i) * sizeof(rec->days[0]));
    rec->days[i] = *day;
    rec->ndays++;
}

void counters_add(struct counters_rec *sum, const struct counters_rec *delta, long today)
{
    long oldest = today - (COUNTERS_DAYS - 1);
    size_t keep = 0;

    if (sum->first == 0 && sum->copies + sum->rewrites + sum->reverse == 0)
        memcpy(sum->node, delta->node, sizeof(sum->node));     /* a fresh sum */
    else if (strcmp(sum->node, delta->node) != 0 && delta->node[0] != '\0')
        sum->node[0] = '\0';
    sum->copies += delta->copies;
    sum->rewrites += delta->rewrites;
    sum->reverse += delta->reverse;
    if (delta->first != 0 && (sum->first == 0 || delta->first < sum->first))
        sum->first = delta->first;
    if (delta->last > sum->last)
        sum->last = delta->last;
    if (delta->rlast > sum->rlast)
        sum->rlast = delta->rlast;
    for (size_t i = 0; i < sum->ndays; i++)
        if (sum->days[i].day >= oldest)
            sum->days[keep++] = sum->days[i];
    sum->ndays = keep;
    for (size_t i = 0; i < delta->ndays; i++)
        add_day(sum, &delta->days[i], oldest);
}

void counters_window(const struct counters_rec *rec, long today, int n,
                     unsigned long *legacy, unsigned long *reverse)
{
    *legacy = *reverse = 0;
    for (size_t i = 0; i < rec->ndays; i++) {
        if (rec->days[i].day < today - n || rec->days[i].day > today)
            continue;
        *legacy += rec->days[i].legacy;
        *reverse += rec->days[i].reverse;
    }
}

/* ---- the file ------------------------------------------------------------- */

/* tdb_log - keep tdb's message for the error that follows. */
static void tdb_log(struct tdb_context *tdb, enum tdb_debug_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void tdb_log(struct tdb_context *tdb, enum tdb_debug_level level, const char *fmt, ...)
{
    struct counters_db *db = tdb_get_logging_private(tdb);
    va_list ap;

    if (db == NULL || level > TDB_DEBUG_ERROR)
        return;
    va_start(ap, fmt);
    vsnprintf(db->msg, sizeof(db->msg), fmt, ap);
    va_end(ap);
    db->msg[strcspn(db->msg, "\n")] = '\0';
}

struct counters_db *counters_open(const char *path, int create, char err[COUNTERS_ERR_MAX])
{
    struct counters_db *db = calloc(1, sizeof(*db));
    struct tdb_logging_context log = {tdb_log, db};
    struct stat sb;

    if (db == NULL) {
        fail(err, "%s: out of memory", path);
        return NULL;
    }
    if (!create && stat(path, &sb) < 0) {
        fail(err, "%.300s: %s", path, strerror(errno));
        free(db);
        return NULL;
    }
    errno = 0;
    db->tdb = tdb_open_ex(path, COUNTERS_HASH_SIZE, TDB_INCOMPATIBLE_HASH,
                          O_RDWR | (create ? O_CREAT : 0), 0640, &log, NULL);
    /* A reader in the milter's group may only read: then without locking
     * (a read racing a flush can fail; the caller may try again). */
    if (db->tdb == NULL && !create && errno == EACCES) {
        errno = 0;
        db->tdb = tdb_open_ex(path, 0, 0, O_RDONLY, 0, &log, NULL);
    }
    if (db->tdb == NULL) {
        fail(err, "%.300s: cannot open counters_db: %s%s%.150s", path,
             errno ? strerror(errno) : "not a valid tdb file", db->msg[0] ? ": " : "",
             db->msg);
        free(db);
        return NULL;
    }
    return db;
}

void counters_close(struct counters_db *db)
{
    if (db == NULL)
        return;
    tdb_close(db->tdb);
    free(db);
}

/* tdb_fail - ERR from what tdb says of the last call; returns -1. */
static int tdb_fail(struct counters_db *db, const char *what, char err[COUNTERS_ERR_MAX])
{
    return fail(err, "counters_db: %s: %s%s%.150s", what, tdb_errorstr(db->tdb),
                db->msg[0] ? ": " : "", db->msg);
}

/* text_key - a C string as a tdb key (without the NUL, as the state store). */
static TDB_DATA text_key(const char *key)
{
    TDB_DATA k = {(unsigned char *) key, strlen(key)};

    return k;
}

int counters_get(struct counters_db *db, const char *key, struct counters_rec *rec,
                 char err[COUNTERS_ERR_MAX])
{
    TDB_DATA v = tdb_fetch(db->tdb, text_key(key));
    int rc;

    if (v.dptr == NULL) {
        if (tdb_error(db->tdb) == TDB_ERR_NOEXIST)
            return 0;
        return tdb_fail(db, key, err);
    }
    rc = counters_decode((const char *) v.dptr, v.dsize, rec, err);
    free(v.dptr);
    if (rc < 0) {
        char why[COUNTERS_ERR_MAX];

        memcpy(why, err, sizeof(why));
        return fail(err, "%.200s: %.280s", key, why);
    }
    return 1;
}

int counters_put(struct counters_db *db, const char *key, const struct counters_rec *rec,
                 char err[COUNTERS_ERR_MAX])
{
    char text[COUNTERS_TEXT_MAX];
    int len = counters_encode(rec, text, sizeof(text));
    TDB_DATA v;

    if (len < 0)
        return fail(err, "%.200s: counters value too long", key);
    v.dptr = (unsigned char *) text;
    v.dsize = (size_t) len;
    if (tdb_store(db->tdb, text_key(key), v, TDB_REPLACE) != 0)
        return tdb_fail(db, key, err);
    return 0;
}

/* get_time - a '!' key holding a time; 0 when absent. */
static int get_time(struct counters_db *db, const char *key, time_t *out,
                    char err[COUNTERS_ERR_MAX])
{
    TDB_DATA v = tdb_fetch(db->tdb, text_key(key));
    char buf[TIMEFMT_BUFSIZE];
    int rc;

    *out = 0;
    if (v.dptr == NULL)
        return tdb_error(db->tdb) == TDB_ERR_NOEXIST ? 0 : tdb_fail(db, key, err);
    rc = v.dsize < sizeof(buf) ? 0 : -1;
    if (rc == 0) {
        memcpy(buf, v.dptr, v.dsize);
        buf[v.dsize] = '\0';
        rc = parse_time(buf, out);
    }
    free(v.dptr);
    return rc < 0 ? fail(err, "counters_db: %s: bad time", key) : 0;
}

/* put_time_key - store T under KEY. */
static int put_time_key(struct counters_db *db, const char *key, time_t t,
                        char err[COUNTERS_ERR_MAX])
{
    char buf[TIMEFMT_BUFSIZE];
    TDB_DATA v;

    put_time(t, buf);
    v.dptr = (unsigned char *) buf;
    v.dsize = strlen(buf);
    if (tdb_store(db->tdb, text_key(key), v, TDB_REPLACE) != 0)
        return tdb_fail(db, key, err);
    return 0;
}

int counters_times(struct counters_db *db, time_t *since, time_t *flushed,
                   char err[COUNTERS_ERR_MAX])
{
    if (get_time(db, COUNTERS_SINCE_KEY, since, err) < 0)
        return -1;
    return get_time(db, COUNTERS_FLUSHED_KEY, flushed, err);
}

int counters_set_times(struct counters_db *db, time_t since, time_t flushed,
                       char err[COUNTERS_ERR_MAX])
{
    if (put_time_key(db, COUNTERS_SINCE_KEY, since, err) < 0)
        return -1;
    return put_time_key(db, COUNTERS_FLUSHED_KEY, flushed, err);
}

/* merge_one - KEY's stored value plus DELTA, stored back (inside the transaction). */
static int merge_one(struct counters_db *db, const char *key, const struct counters_rec *delta,
                     const char *node, long today, char err[COUNTERS_ERR_MAX])
{
    struct counters_rec sum;
    int found;

    if (key[0] == '!' || key[0] == '\0')
        return fail(err, "counters_db: '%.200s' is not a key to count", key);
    if ((found = counters_get(db, key, &sum, err)) < 0)
        return -1;
    if (!found)
        memset(&sum, 0, sizeof(sum));
    counters_add(&sum, delta, today);
    snprintf(sum.node, sizeof(sum.node), "%s", node);
    return counters_put(db, key, &sum, err);
}

int counters_merge(struct counters_db *db, const char *const *keys,
                   const struct counters_rec *deltas, size_t n, const char *node,
                   time_t now, char err[COUNTERS_ERR_MAX])
{
    long today = counters_day_of(now);
    time_t since, flushed;

    if (strlen(node) > COUNTERS_NODE_MAX)
        return fail(err, "counters_db: node name longer than %d bytes", COUNTERS_NODE_MAX);
    if (tdb_transaction_start(db->tdb) != 0)
        return tdb_fail(db, "transaction start", err);
    for (size_t i = 0; i < n; i++)
        if (merge_one(db, keys[i], &deltas[i], node, today, err) < 0)
            goto cancel;
    if (counters_times(db, &since, &flushed, err) < 0
        || counters_set_times(db, since ? since : now, now, err) < 0)
        goto cancel;
    if (tdb_transaction_commit(db->tdb) != 0) {
        tdb_fail(db, "commit", err);
        goto cancel;
    }
    return 0;
cancel:
    tdb_transaction_cancel(db->tdb);
    return -1;
}

struct traverse_ctx {
    counters_visit_fn fn;
    void *ctx;
    int bad;
    char *err;
};

/* visit - one tdb record: '!' keys are the file's own. */
static int visit(struct tdb_context *tdb, TDB_DATA k, TDB_DATA v, void *ctx)
{
    struct traverse_ctx *tc = ctx;
    struct counters_rec rec;
    char key[COUNTERS_TEXT_MAX], why[COUNTERS_ERR_MAX];

    (void) tdb;
    if (k.dsize == 0 || k.dptr[0] == '!')
        return 0;
    if (k.dsize >= sizeof(key)) {
        tc->bad = fail(tc->err, "counters_db: a key of %zu bytes", k.dsize);
        return 1;
    }
    memcpy(key, k.dptr, k.dsize);
    key[k.dsize] = '\0';
    if (counters_decode((const char *) v.dptr, v.dsize, &rec, why) < 0) {
        tc->bad = fail(tc->err, "counters_db: %.200s: %.280s", key, why);
        return 1;
    }
    return tc->fn(key, &rec, tc->ctx);
}

int counters_traverse(struct counters_db *db, counters_visit_fn fn, void *ctx,
                      char err[COUNTERS_ERR_MAX])
{
    struct traverse_ctx tc = {fn, ctx, 0, err};
    /* One read lock for the whole walk: else a fcntl pair per chain and
     * record (10^5 keys: seconds instead of a fifth of one). A file opened
     * read-only takes no locks at all. */
    int locked = tdb_lockall_read(db->tdb) == 0;
    int rc = tdb_traverse_read(db->tdb, visit, &tc);

    if (locked)
        tdb_unlockall_read(db->tdb);
    if (rc < 0 && !tc.bad)
        return tdb_fail(db, "traverse", err);
    return tc.bad;
}
