/*
 * tally.c - per-key counts of routed mail in memory (see tally.h).
 *
 * Each shard is a chained hash table of (key, day) entries behind its own
 * mutex. An entry for a key is allocated once per flush interval and day;
 * every further message for it is a probe and an increment. The flush
 * unlinks a shard's whole table under its lock (a pointer swap) and works
 * on it unlocked, so a flush never holds up end of message for longer than
 * that swap, and the store's lock is never involved.
 */
#include <config.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally.h"

#define TALLY_SHARDS 16
#define TALLY_BUCKETS 256       /* per shard to start with; doubled as it fills */

struct tally_entry {
    struct tally_entry *next;
    uint32_t hash;
    long day;
    unsigned long copies, rewrites, reverse;
    time_t first, last, rlast;
    char key[];
};

struct tally_shard {
    pthread_mutex_t lock;
    struct tally_entry **buckets;       /* NULL until the first add */
    size_t nbuckets, count;
};

struct tally {
    struct tally_shard shards[TALLY_SHARDS];
    atomic_llong last_flush;
    atomic_ulong failures;
    atomic_ulong lost;
};

/* key_hash - FNV-1a of KEY and DAY. */
static uint32_t key_hash(const char *key, long day)
{
    uint32_t h = 2166136261u;

    for (const unsigned char *p = (const unsigned char *) key; *p; p++)
        h = (h ^ *p) * 16777619u;
    return (h ^ (uint32_t) day) * 16777619u;
}

struct tally *tally_new(void)
{
    struct tally *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    for (size_t i = 0; i < TALLY_SHARDS; i++)
        if (pthread_mutex_init(&t->shards[i].lock, NULL) != 0) {
            while (i-- > 0)
                pthread_mutex_destroy(&t->shards[i].lock);
            free(t);
            return NULL;
        }
    return t;
}

/* free_table - every entry of a table, and the table. */
static void free_table(struct tally_entry **buckets, size_t nbuckets)
{
    for (size_t b = 0; buckets != NULL && b < nbuckets; b++)
        for (struct tally_entry *e = buckets[b], *next; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
    free(buckets);
}

void tally_free(struct tally *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < TALLY_SHARDS; i++) {
        free_table(t->shards[i].buckets, t->shards[i].nbuckets);
        pthread_mutex_destroy(&t->shards[i].lock);
    }
    free(t);
}

/* shard_grow - double the table when it holds twice its buckets (lock held). */
static void shard_grow(struct tally_shard *s)
{
    size_t n = s->nbuckets ? 2 * s->nbuckets : TALLY_BUCKETS;
    struct tally_entry **grown;

    if (s->buckets != NULL && s->count < 2 * s->nbuckets)
        return;
    if ((grown = calloc(n, sizeof(*grown))) == NULL)
        return;                 /* longer chains, still correct */
    for (size_t b = 0; b < s->nbuckets; b++)
        for (struct tally_entry *e = s->buckets[b], *next; e != NULL; e = next) {
            next = e->next;
            e->next = grown[e->hash % n];
            grown[e->hash % n] = e;
        }
    free(s->buckets);
    s->buckets = grown;
    s->nbuckets = n;
}

/* shard_find - KEY's entry for DAY (lock held), or NULL. */
static struct tally_entry *shard_find(struct tally_shard *s, uint32_t hash, const char *key,
                                      long day)
{
    if (s->buckets == NULL)
        return NULL;
    for (struct tally_entry *e = s->buckets[hash % s->nbuckets]; e != NULL; e = e->next)
        if (e->hash == hash && e->day == day && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

/* shard_link - put E in (lock held; the table exists). */
static void shard_link(struct tally_shard *s, struct tally_entry *e)
{
    e->next = s->buckets[e->hash % s->nbuckets];
    s->buckets[e->hash % s->nbuckets] = e;
    s->count++;
}

/* entry_merge - FROM's counts into TO (same key and day). */
static void entry_merge(struct tally_entry *to, const struct tally_entry *from)
{
    to->copies += from->copies;
    to->rewrites += from->rewrites;
    to->reverse += from->reverse;
    if (from->first && (to->first == 0 || from->first < to->first))
        to->first = from->first;
    if (from->last > to->last)
        to->last = from->last;
    if (from->rlast > to->rlast)
        to->rlast = from->rlast;
}

int tally_add(struct tally *t, const char *key, enum tally_kind kind, time_t now)
{
    long day = counters_day_of(now);
    uint32_t hash = key_hash(key, day);
    /* The shard by the high bits: the buckets use the low ones. */
    struct tally_shard *s = &t->shards[(hash >> 24) % TALLY_SHARDS];
    struct tally_entry *e;
    size_t len;

    pthread_mutex_lock(&s->lock);
    if ((e = shard_find(s, hash, key, day)) == NULL) {
        shard_grow(s);
        len = strlen(key) + 1;
        if (s->buckets == NULL || (e = calloc(1, sizeof(*e) + len)) == NULL) {
            pthread_mutex_unlock(&s->lock);
            atomic_fetch_add_explicit(&t->lost, 1, memory_order_relaxed);
            return -1;
        }
        e->hash = hash;
        e->day = day;
        memcpy(e->key, key, len);
        e->first = now;
        shard_link(s, e);
    }
    if (kind == TALLY_COPY)
        e->copies++;
    else if (kind == TALLY_REWRITE)
        e->rewrites++;
    else {
        e->reverse++;
        e->rlast = now;
    }
    if (now > e->last)
        e->last = now;
    if (now < e->first)
        e->first = now;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

void tally_routes(struct tally *t, const struct decide_route *routes, size_t nrcpt,
                  time_t now)
{
    for (size_t i = 0; i < nrcpt; i++) {
        const struct decide_route *r = &routes[i];

        if (r->rule == RULE_NONE || r->match[0] == '\0')
            continue;
        (void) tally_add(t, r->match, r->reverse ? TALLY_REVERSE
                         : r->mode == MODE_REWRITE ? TALLY_REWRITE : TALLY_COPY, now);
    }
}

size_t tally_pending(struct tally *t)
{
    size_t n = 0;

    for (size_t i = 0; i < TALLY_SHARDS; i++) {
        pthread_mutex_lock(&t->shards[i].lock);
        n += t->shards[i].count;
        pthread_mutex_unlock(&t->shards[i].lock);
    }
    return n;
}

time_t tally_last_flush(struct tally *t)
{
    return (time_t) atomic_load_explicit(&t->last_flush, memory_order_relaxed);
}

unsigned long tally_flush_failures(struct tally *t)
{
    return atomic_load_explicit(&t->failures, memory_order_relaxed);
}

unsigned long tally_lost(struct tally *t)
{
    return atomic_load_explicit(&t->lost, memory_order_relaxed);
}

/* What one flush took away: the shards' tables, unlinked. */
struct taken {
    struct tally_entry **buckets[TALLY_SHARDS];
    size_t nbuckets[TALLY_SHARDS];
    size_t count;
};

/* take_all - swap every shard's table out. */
static void take_all(struct tally *t, struct taken *tk)
{
    tk->count = 0;
    for (size_t i = 0; i < TALLY_SHARDS; i++) {
        struct tally_shard *s = &t->shards[i];

        pthread_mutex_lock(&s->lock);
        tk->buckets[i] = s->buckets;
        tk->nbuckets[i] = s->nbuckets;
        tk->count += s->count;
        s->buckets = NULL;
        s->nbuckets = 0;
        s->count = 0;
        pthread_mutex_unlock(&s->lock);
    }
}

/*
 * put_back - a failed flush: every taken entry back into its shard, merged
 * into one counted meanwhile for the same key and day, or linked again.
 */
static void put_back(struct tally *t, struct taken *tk)
{
    for (size_t i = 0; i < TALLY_SHARDS; i++) {
        struct tally_shard *s = &t->shards[i];

        pthread_mutex_lock(&s->lock);
        for (size_t b = 0; b < tk->nbuckets[i]; b++)
            for (struct tally_entry *e = tk->buckets[i][b], *next; e != NULL; e = next) {
                struct tally_entry *have = shard_find(s, e->hash, e->key, e->day);

                next = e->next;
                if (have != NULL) {
                    entry_merge(have, e);
                    free(e);
                    continue;
                }
                shard_grow(s);
                if (s->buckets == NULL) {
                    /* No memory for a table: these counts are lost. */
                    free(e);
                    atomic_fetch_add_explicit(&t->lost, 1, memory_order_relaxed);
                    continue;
                }
                shard_link(s, e);
            }
        pthread_mutex_unlock(&s->lock);
        free(tk->buckets[i]);
    }
}

/* to_delta - one entry as a counters value with its one day. */
static void to_delta(const struct tally_entry *e, struct counters_rec *d)
{
    memset(d, 0, sizeof(*d));
    d->copies = e->copies;
    d->rewrites = e->rewrites;
    d->reverse = e->reverse;
    d->first = e->first;
    d->last = e->last;
    d->rlast = e->rlast;
    d->days[0].day = e->day;
    d->days[0].legacy = e->copies + e->rewrites;
    d->days[0].reverse = e->reverse;
    d->ndays = 1;
}

/* write_taken - TK into the file at PATH in one transaction; 0 or -1. */
static int write_taken(const struct taken *tk, const char *path, const char *node,
                       time_t now, char err[COUNTERS_ERR_MAX])
{
    const char **keys = malloc(tk->count * sizeof(*keys));
    struct counters_rec *deltas = malloc(tk->count * sizeof(*deltas));
    struct counters_db *db = NULL;
    size_t n = 0;
    int rc = -1;

    if (keys == NULL || deltas == NULL) {
        snprintf(err, COUNTERS_ERR_MAX, "out of memory for %zu keys", tk->count);
        goto out;
    }
    for (size_t i = 0; i < TALLY_SHARDS; i++)
        for (size_t b = 0; b < tk->nbuckets[i]; b++)
            for (const struct tally_entry *e = tk->buckets[i][b]; e != NULL; e = e->next) {
                keys[n] = e->key;
                to_delta(e, &deltas[n++]);
            }
    if ((db = counters_open(path, 1, err)) == NULL)
        goto out;
    rc = counters_merge(db, keys, deltas, n, node, now, err);
out:
    counters_close(db);
    free(keys);
    free(deltas);
    return rc;
}

int tally_flush(struct tally *t, const char *path, const char *node, time_t now,
                char err[COUNTERS_ERR_MAX])
{
    struct taken tk;
    size_t count;

    take_all(t, &tk);
    if ((count = tk.count) == 0) {
        put_back(t, &tk);       /* frees the empty tables */
        /* Nothing waiting: the file is as up to date as memory. */
        atomic_store_explicit(&t->last_flush, (long long) now, memory_order_relaxed);
        return 0;
    }
    if (write_taken(&tk, path, node, now, err) < 0) {
        put_back(t, &tk);
        atomic_fetch_add_explicit(&t->failures, 1, memory_order_relaxed);
        return -1;
    }
    for (size_t i = 0; i < TALLY_SHARDS; i++)
        free_table(tk.buckets[i], tk.nbuckets[i]);
    atomic_store_explicit(&t->last_flush, (long long) now, memory_order_relaxed);
    return (int) (count > INT32_MAX ? INT32_MAX : count);
}
