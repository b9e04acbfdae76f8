/*
 * journal.c - the change journal kept inside the store (see store.h).
 *
 * Each change appends "!journal/<seq>" = "time<TAB>actor<TAB>key<TAB>old
 * <TAB>new" in the same transaction as the change itself, so the journal
 * can never disagree with the data. "!journal-seq" holds the last number.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_int.h"
#include "timefmt.h"

#define JOURNAL_TEXT_MAX (3 * RECORD_TEXT_MAX)

/* next_seq - bump and return the journal sequence number (of the transaction). */
static int next_seq(struct store *st, unsigned long long *seq)
{
    if (!st->txn_seq_loaded) {
        TDB_DATA val = tdb_fetch(st->tdb, store_key(STORE_JOURNAL_SEQ_KEY));
        char buf[32];

        st->txn_seq = 0;
        if (val.dptr != NULL) {
            snprintf(buf, sizeof(buf), "%.*s", (int) (val.dsize < 31 ? val.dsize : 31),
                     val.dptr);
            free(val.dptr);
            st->txn_seq = strtoull(buf, NULL, 10);
        } else if (tdb_error(st->tdb) != TDB_ERR_NOEXIST) {
            return store_tdb_fail(st, "journal sequence");
        }
        st->txn_seq_loaded = 1;
    }
    *seq = ++st->txn_seq;
    st->txn_seq_dirty = 1;
    return 0;
}

int journal_seq_flush(struct store *st)
{
    char buf[32];

    if (!st->txn_seq_dirty)
        return 0;
    snprintf(buf, sizeof(buf), "%llu", st->txn_seq);
    errno = 0;
    if (tdb_store(st->tdb, store_key(STORE_JOURNAL_SEQ_KEY),
                  (TDB_DATA) {(unsigned char *) buf, strlen(buf)}, 0) != 0)
        /* Written as the commit begins: to the admin it is the commit that failed. */
        return store_tdb_write_fail(st, "transaction commit");
    st->txn_seq_dirty = 0;
    return 0;
}

int journal_append(struct store *st, const char *key, const char *old_value,
                   const char *new_value, const char *actor)
{
    char jkey[64], text[JOURNAL_TEXT_MAX], when[TIMEFMT_BUFSIZE];
    unsigned long long seq = 0;
    int n;

    if (!st->in_txn)
        return store_fail(st, "journal written outside a transaction");
    if (next_seq(st, &seq) < 0)
        return -1;
    timefmt_format(time(NULL), when);
    n = snprintf(text, sizeof(text), "%s\t%s\t%s\t%s\t%s", when, actor, key,
                 old_value, new_value);
    if (n < 0 || (size_t) n >= sizeof(text))
        return store_fail(st, "journal entry too long");
    snprintf(jkey, sizeof(jkey), STORE_JOURNAL_PREFIX "%020llu", seq);
    errno = 0;
    if (tdb_store(st->tdb, store_key(jkey), (TDB_DATA) {(unsigned char *) text, (size_t) n},
                  TDB_INSERT) != 0)
        return store_tdb_write_fail(st, "journal append");
    return 0;
}

int store_journal_note(struct store *st, const char *key, const char *old_value,
                       const char *new_value, const char *actor)
{
    int own_txn = !st->in_txn;

    if (own_txn && store_begin(st) < 0)
        return -1;
    if (journal_append(st, key, old_value, new_value, actor) < 0) {
        if (own_txn)
            store_cancel(st);
        return -1;
    }
    return own_txn ? store_commit(st) : 0;
}

/* parse_entry - split TEXT (modified in place) into ENTRY. */
static int parse_entry(char *text, struct journal_entry *entry)
{
    char *field[5];
    const char *why;

    field[0] = text;
    for (int i = 1; i < 5; i++) {
        field[i] = strchr(field[i - 1], '\t');
        if (field[i] == NULL)
            return -1;
        *field[i]++ = '\0';
    }
    if (timefmt_parse(field[0], &entry->when, &why) < 0)
        return -1;
    entry->actor = field[1];
    entry->key = field[2];
    entry->old_value = field[3];
    entry->new_value = field[4];
    return 0;
}

int store_journal(struct store *st, const char *key, unsigned limit,
                  journal_visit_fn fn, void *ctx)
{
    unsigned long long seq, shown = 0;
    char buf[JOURNAL_TEXT_MAX + 1];

    if (st->in_txn && st->txn_seq_loaded) {
        /* The open transaction's entries, whose sequence is not stored yet. */
        seq = st->txn_seq;
    } else {
        TDB_DATA val = tdb_fetch(st->tdb, store_key(STORE_JOURNAL_SEQ_KEY));

        if (val.dptr == NULL)
            return tdb_error(st->tdb) == TDB_ERR_NOEXIST ? 0 : store_tdb_fail(st, "journal");
        snprintf(buf, sizeof(buf), "%.*s", (int) (val.dsize < 31 ? val.dsize : 31), val.dptr);
        free(val.dptr);
        seq = strtoull(buf, NULL, 10);
    }
    /* Newest first: walk the sequence numbers down. */
    for (; seq > 0 && (limit == 0 || shown < limit); seq--) {
        char jkey[64];
        struct journal_entry entry;

        snprintf(jkey, sizeof(jkey), STORE_JOURNAL_PREFIX "%020llu", seq);
        TDB_DATA val = tdb_fetch(st->tdb, store_key(jkey));
        if (val.dptr == NULL)
            continue;
        snprintf(buf, sizeof(buf), "%.*s",
                 (int) (val.dsize < JOURNAL_TEXT_MAX ? val.dsize : JOURNAL_TEXT_MAX), val.dptr);
        free(val.dptr);
        entry.seq = seq;
        entry.node = NULL;
        if (parse_entry(buf, &entry) < 0)
            return store_fail(st, "%s: corrupt journal entry %llu", st->path, seq);
        if (key != NULL && strcmp(entry.key, key) != 0)
            continue;
        shown++;
        if (fn(&entry, ctx) != 0)
            break;
    }
    return 0;
}
