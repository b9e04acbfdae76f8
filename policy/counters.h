/*
 * counters.h - what the milter routed, per store key: the counters_db file
 * (its own TDB, never the state store) and the codec of its values.
 *
 * One value per routed key (the state key that routed the mail: a user
 * "adam.barr@corp.example" or a domain rule "@corp2.example"), as one line
 * of versioned text like the state records, so tdbdump stays readable:
 *
 *   v=1 node=mx1 copies=3 rewrites=0 reverse=1 first=2026-12-01T10:00:00Z
 *       last=2026-12-01T11:00:00Z rlast=2026-12-01T11:00:00Z
 *       days=2026-12-01:3:1,2026-11-30:2:0
 *
 * copies are bcc copies, rewrites replaced recipients (both: mail to the
 * legacy system), reverse legacy addresses routed back to their migrated
 * owner. first/last are the first and last routing of any kind, rlast the
 * last reverse one ("-": never). days are per UTC day counts of legacy
 * mail (copies + rewrites) and reverse mail, newest first, the last
 * COUNTERS_DAYS days only: what "the last 1 and 7 days" are summed from.
 *
 * Each host writes its own file, so node= names the writer; a sum over
 * hosts (the shared store, DESIGN section 11) is counters_add of their
 * values. Keys starting with '!' (no '@': never an address) hold the
 * file's own facts: when counting started and the last flush.
 *
 * Functions return 0 on success, -1 with a message in ERR
 * (COUNTERS_ERR_MAX bytes); the library never logs.
 */
#ifndef COEXIST_COUNTERS_H
#define COEXIST_COUNTERS_H

#include <stddef.h>
#include <time.h>

#define COUNTERS_VERSION 1
#define COUNTERS_DAYS 9         /* today and the 8 days before it */
#define COUNTERS_NODE_MAX 64
#define COUNTERS_TEXT_MAX 1024
#define COUNTERS_ERR_MAX 512
#define COUNTERS_HASH_SIZE 100003
#define COUNTERS_SINCE_KEY "!counters-since"
#define COUNTERS_FLUSHED_KEY "!counters-flushed"

struct counters_day {
    long day;                   /* days since the epoch (UTC) */
    unsigned long legacy;       /* copies + rewrites that day */
    unsigned long reverse;
};

struct counters_rec {
    char node[COUNTERS_NODE_MAX + 1];   /* "" when summed over several */
    unsigned long copies, rewrites, reverse;
    time_t first, last, rlast;          /* 0: never */
    struct counters_day days[COUNTERS_DAYS];    /* newest first */
    size_t ndays;
};

/* counters_day_of - the UTC day number of T. */
long counters_day_of(time_t t);

/* counters_encode - REC as text into OUT; the length, or -1 if it does not fit. */
int counters_encode(const struct counters_rec *rec, char *out, size_t outlen);

/* counters_decode - parse LEN bytes of TEXT strictly into REC; 0 or -1 with ERR. */
int counters_decode(const char *text, size_t len, struct counters_rec *rec,
                    char err[COUNTERS_ERR_MAX]);

/*
 * counters_add - add DELTA into SUM: counts summed, first the earliest,
 * last and rlast the latest, day buckets merged and those older than
 * COUNTERS_DAYS days before TODAY (a day number) dropped. An empty SUM
 * takes DELTA's node; else SUM's node is kept if DELTA's is the same or
 * empty, and emptied otherwise (a sum of hosts).
 */
void counters_add(struct counters_rec *sum, const struct counters_rec *delta, long today);

/*
 * counters_window - legacy and reverse mail of REC in "the last N days":
 * today (day number TODAY) and the N days before it, so that "0 in the
 * last 7 days" means at least 7 whole days without any. N is at most
 * COUNTERS_DAYS - 1.
 */
void counters_window(const struct counters_rec *rec, long today, int n,
                     unsigned long *legacy, unsigned long *reverse);

struct counters_db;

/*
 * counters_open - open PATH read-write; CREATE makes it (0640) when
 * missing. Without CREATE, a file we may only read is opened read-only
 * (coexistctl report as a member of the milter's group). NULL with ERR.
 */
struct counters_db *counters_open(const char *path, int create, char err[COUNTERS_ERR_MAX]);
void counters_close(struct counters_db *db);

/*
 * counters_merge - add N deltas (KEYS[i] with DELTAS[i]; a key may repeat)
 * into the file in one transaction, each stored with node NODE, and record
 * NOW as the last flush (and as the start of counting on the first). All
 * or nothing: on -1 the file is as it was.
 */
int counters_merge(struct counters_db *db, const char *const *keys,
                   const struct counters_rec *deltas, size_t n, const char *node,
                   time_t now, char err[COUNTERS_ERR_MAX]);

/* counters_get - KEY's value: 1 found, 0 absent, -1 error (a bad value too). */
int counters_get(struct counters_db *db, const char *key, struct counters_rec *rec,
                 char err[COUNTERS_ERR_MAX]);

/*
 * counters_put - store KEY's value as it is (tools and tests that make a
 * counters file by hand; the milter merges).
 */
int counters_put(struct counters_db *db, const char *key, const struct counters_rec *rec,
                 char err[COUNTERS_ERR_MAX]);

/*
 * counters_traverse - FN for every key's value; FN returns non-zero to
 * stop. -1 (ERR set) if a value does not parse or the traversal failed.
 */
typedef int (*counters_visit_fn)(const char *key, const struct counters_rec *rec, void *ctx);
int counters_traverse(struct counters_db *db, counters_visit_fn fn, void *ctx,
                      char err[COUNTERS_ERR_MAX]);

/* counters_times - when counting started and the last flush (0: never). */
int counters_times(struct counters_db *db, time_t *since, time_t *flushed,
                   char err[COUNTERS_ERR_MAX]);

/* counters_set_times - set them (tests and tools back-dating a file). */
int counters_set_times(struct counters_db *db, time_t since, time_t flushed,
                       char err[COUNTERS_ERR_MAX]);

#endif
