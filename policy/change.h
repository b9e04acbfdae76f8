/*
 * change.h - a change set: what one coexistctl verb wants done to the state,
 * built before it is applied and independent of where it is applied.
 *
 * A verb reads the current state, decides, and records here, per key, the
 * encoded record it saw (the EXPECTED old value) and the one it wants. A
 * backend (the local TDB, or PostgreSQL through pgstore.h) then applies
 * the whole set or nothing: if any expected value differs from what the
 * backend holds when it applies the set, the set fails as a whole with
 * CHANGE_CONFLICT and the verb refreshes and retries. That is how writers
 * on two hosts serialize without one overwriting a field the other set:
 * compare-and-set, not last-writer-wins.
 *
 * Values are record texts as record_encode() writes them; the reverse-index
 * key of each put (its alias) is derived here, once, by record_decode().
 * Note ops are free-form journal entries (an import summary), keys that
 * start with '!' as store_journal_note() uses.
 *
 * Ownership: every string passed in is copied; the change owns its copies
 * and change_free() releases them. Functions return 0, or -1 with a
 * one-line reason in ERR; they never print or log.
 */
#ifndef COEXIST_CHANGE_H
#define COEXIST_CHANGE_H

#include <stddef.h>

#define CHANGE_ERR_MAX 512

/*
 * The result of applying a change, common to every backend: a backend's
 * own result codes keep these values, so a caller maps one set of codes
 * to exit statuses.
 */
enum change_result {
    CHANGE_OK = 0,
    CHANGE_ERROR = -1,          /* refused or failed; nothing applied */
    CHANGE_CONFLICT = -2,       /* an expected old value did not match (or
                                 * the backend chose this writer as the loser
                                 * of a race): nothing applied, refresh and
                                 * retry */
    CHANGE_UNAVAILABLE = -3,    /* the backend cannot be reached: nothing
                                 * applied, try again later (EX_TEMPFAIL) */
};

enum change_op_kind {
    CHANGE_OP_PUT,              /* create or replace a record */
    CHANGE_OP_DELETE,           /* remove a record */
    CHANGE_OP_NOTE,             /* a journal entry only */
};

/*
 * One op. PUT: OLD_VALUE is the record text expected now (NULL: the key
 * must be absent), NEW_VALUE the text to store, ALIAS its reverse-index key
 * ("adam@pop.example" for a user, "@pop.example" for a domain). DELETE:
 * OLD_VALUE the record text expected now (never NULL), NEW_VALUE and ALIAS
 * NULL. NOTE: OLD_VALUE and NEW_VALUE free text (either may be NULL), ALIAS
 * NULL. All strings point into one allocation owned by the change.
 */
struct change_op {
    enum change_op_kind kind;
    const char *key;
    const char *old_value;
    const char *new_value;
    const char *alias;
};

struct change {
    char *actor;                /* as the journal has it: "root/0", "alice/1000" */
    char *node;                 /* the host that made the change */
    struct change_op *ops;      /* in the order they were added */
    size_t nops;
    size_t cap;
};

/*
 * change_init - an empty change by ACTOR on NODE (both non-empty). On
 * failure CH is left so that change_free() is safe.
 */
int change_init(struct change *ch, const char *actor, const char *node,
                char err[CHANGE_ERR_MAX]);

/* change_free - release what CH owns; CH may then be initialized again. */
void change_free(struct change *ch);

/*
 * change_put - store NEW_VALUE under KEY ("local@domain" or "@domain"),
 * provided the record there is now EXPECTED (NULL: provided there is none).
 * NEW_VALUE must decode as a record of the key's kind; EXPECTED is compared
 * as text only.
 */
int change_put(struct change *ch, const char *key, const char *expected,
               const char *new_value, char err[CHANGE_ERR_MAX]);

/* change_delete - remove KEY, provided the record there is now EXPECTED. */
int change_delete(struct change *ch, const char *key, const char *expected,
                  char err[CHANGE_ERR_MAX]);

/*
 * change_note - a journal entry with no record change: KEY starts with '!'
 * and has no '@' (so it can never name an address); OLD_TEXT and NEW_TEXT
 * are free text, either NULL. Notes are journaled after every record op.
 */
int change_note(struct change *ch, const char *key, const char *old_text,
                const char *new_text, char err[CHANGE_ERR_MAX]);

/*
 * change_order - the order in which a backend applies CH: indexes into
 * CH->ops, record ops sorted by key (so that two writers lock rows in the
 * same order and cannot deadlock), then notes in the order they were added.
 * Refuses a change that names one key twice: its result would depend on
 * the order. Returns 0 and *ORDER (CH->nops entries, malloc'd, the caller
 * frees it), or -1.
 */
int change_order(const struct change *ch, size_t **order, char err[CHANGE_ERR_MAX]);

/*
 * change_alias - the reverse-index key of record text VALUE stored under
 * KEY into ALIAS (ALIASLEN bytes): the user's legacy alias, or '@' and the
 * domain's legacy domain. Returns 0, or -1 if VALUE does not decode.
 */
int change_alias(const char *key, const char *value, char *alias, size_t aliaslen,
                 char err[CHANGE_ERR_MAX]);

#endif
