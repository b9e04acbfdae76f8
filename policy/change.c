/*
 * change.c - building a change set (see change.h).
 *
 * Everything a backend could refuse for the shape of a change (a key that
 * is not in normal form, a value that does not decode, a key named twice)
 * is refused here, before any backend is touched, so that both backends
 * refuse the same changes with the same words.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "change.h"
#include "record.h"

#define CHANGE_FIRST_CAP 16

/* fail - format the reason into ERR; always -1. */
static int __attribute__((format(printf, 2, 3)))
fail(char *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, CHANGE_ERR_MAX, fmt, ap);
    va_end(ap);
    return -1;
}

int change_init(struct change *ch, const char *actor, const char *node,
                char err[CHANGE_ERR_MAX])
{
    memset(ch, 0, sizeof(*ch));
    if (actor == NULL || *actor == '\0' || node == NULL || *node == '\0')
        return fail(err, "a change needs an actor and a node name");
    if ((ch->actor = strdup(actor)) == NULL || (ch->node = strdup(node)) == NULL) {
        change_free(ch);
        return fail(err, "change: %s", strerror(ENOMEM));
    }
    return 0;
}

void change_free(struct change *ch)
{
    /* Each op's strings share one allocation, which starts with its key. */
    for (size_t i = 0; i < ch->nops; i++)
        free((char *) ch->ops[i].key);
    free(ch->ops);
    free(ch->actor);
    free(ch->node);
    memset(ch, 0, sizeof(*ch));
}

/* record_key_valid - KEY is a user or domain key in normal form. */
static int record_key_valid(const char *key, char err[CHANGE_ERR_MAX])
{
    char norm[ADDR_BUFSIZE];
    const char *why;
    int rc;

    if (key == NULL || *key == '\0')
        return fail(err, "a change op needs a key");
    rc = addr_is_domain_key(key) ? addr_normalize_domain(key, norm, &why)
                                 : addr_normalize(key, norm, &why);
    if (rc < 0)
        return fail(err, "bad key '%s': %s", key, why);
    if (strcmp(norm, key) != 0)
        return fail(err, "key '%s' is not in normal form ('%s')", key, norm);
    return 0;
}

int change_alias(const char *key, const char *value, char *alias, size_t aliaslen,
                 char err[CHANGE_ERR_MAX])
{
    int domain = addr_is_domain_key(key);
    struct record rec;
    char why[256];

    if (record_decode(domain ? RECORD_DOMAIN : RECORD_USER, value, strlen(value),
                      &rec, why, sizeof(why)) < 0)
        return fail(err, "%s: bad record: %s", key, why);
    if ((size_t) snprintf(alias, aliaslen, "%s%s", domain ? "@" : "", rec.alias) >= aliaslen)
        return fail(err, "%s: alias too long", key);
    return 0;
}

/* dup_or_null - append S (NULL: nothing) at *P; the copy, or NULL. */
static const char *dup_or_null(char **p, const char *s)
{
    char *d = *p;
    size_t n;

    if (s == NULL)
        return NULL;
    n = strlen(s) + 1;
    memcpy(d, s, n);
    *p = d + n;
    return d;
}

/*
 * add_op - append one op, its strings copied into one allocation (a 10^6
 * user import holds 10^6 ops: one malloc each, not four).
 */
static int add_op(struct change *ch, enum change_op_kind kind, const char *key,
                  const char *old_value, const char *new_value, const char *alias,
                  char err[CHANGE_ERR_MAX])
{
    struct change_op *op;
    size_t len = strlen(key) + 1;
    char *buf, *p;

    len += old_value ? strlen(old_value) + 1 : 0;
    len += new_value ? strlen(new_value) + 1 : 0;
    len += alias ? strlen(alias) + 1 : 0;
    if (ch->nops == ch->cap) {
        size_t cap = ch->cap ? 2 * ch->cap : CHANGE_FIRST_CAP;
        struct change_op *ops = reallocarray(ch->ops, cap, sizeof(*ops));

        if (ops == NULL)
            return fail(err, "change: %s", strerror(ENOMEM));
        ch->ops = ops;
        ch->cap = cap;
    }
    if ((buf = malloc(len)) == NULL)
        return fail(err, "change: %s", strerror(ENOMEM));
    p = buf;
    op = &ch->ops[ch->nops++];
    op->kind = kind;
    op->key = dup_or_null(&p, key);     /* first: change_free frees it */
    op->old_value = dup_or_null(&p, old_value);
    op->new_value = dup_or_null(&p, new_value);
    op->alias = dup_or_null(&p, alias);
    return 0;
}

int change_put(struct change *ch, const char *key, const char *expected,
               const char *new_value, char err[CHANGE_ERR_MAX])
{
    char alias[ADDR_BUFSIZE + 1];

    if (record_key_valid(key, err) < 0)
        return -1;
    if (new_value == NULL)
        return fail(err, "%s: a put needs a value (a delete is change_delete)", key);
    if (change_alias(key, new_value, alias, sizeof(alias), err) < 0)
        return -1;
    return add_op(ch, CHANGE_OP_PUT, key, expected, new_value, alias, err);
}

int change_delete(struct change *ch, const char *key, const char *expected,
                  char err[CHANGE_ERR_MAX])
{
    if (record_key_valid(key, err) < 0)
        return -1;
    /* As store_delete: removing what is not there is a mistake, not a no-op. */
    if (expected == NULL)
        return fail(err, "%s: a delete needs the record it expects to remove", key);
    return add_op(ch, CHANGE_OP_DELETE, key, expected, NULL, NULL, err);
}

int change_note(struct change *ch, const char *key, const char *old_text,
                const char *new_text, char err[CHANGE_ERR_MAX])
{
    if (key == NULL || key[0] != '!' || strchr(key, '@') != NULL)
        return fail(err, "bad note key '%s': it starts with '!' and has no '@'",
                    key ? key : "(null)");
    return add_op(ch, CHANGE_OP_NOTE, key, old_text, new_text, NULL, err);
}

/*
 * order_cmp - record ops by key, then notes by position. It compares
 * pointers into one array (qsort has no context argument, and a file-wide
 * pointer would make this unsafe in a threaded caller).
 */
static int order_cmp(const void *a, const void *b)
{
    const struct change_op *x = *(const struct change_op *const *) a;
    const struct change_op *y = *(const struct change_op *const *) b;
    int note_x = x->kind == CHANGE_OP_NOTE, note_y = y->kind == CHANGE_OP_NOTE;

    if (note_x != note_y)
        return note_x - note_y;
    if (!note_x) {
        int c = strcmp(x->key, y->key);

        if (c != 0)
            return c;
    }
    return (x > y) - (x < y);
}

int change_order(const struct change *ch, size_t **order, char err[CHANGE_ERR_MAX])
{
    size_t n = ch->nops ? ch->nops : 1;
    const struct change_op **sorted = malloc(n * sizeof(*sorted));
    size_t *ix = malloc(n * sizeof(*ix));

    *order = NULL;
    if (sorted == NULL || ix == NULL) {
        free(sorted);
        free(ix);
        return fail(err, "change: %s", strerror(ENOMEM));
    }
    for (size_t i = 0; i < ch->nops; i++)
        sorted[i] = &ch->ops[i];
    qsort(sorted, ch->nops, sizeof(*sorted), order_cmp);
    for (size_t i = 0; i < ch->nops; i++) {
        ix[i] = (size_t) (sorted[i] - ch->ops);
        if (i > 0 && sorted[i]->kind != CHANGE_OP_NOTE
            && strcmp(sorted[i - 1]->key, sorted[i]->key) == 0) {
            fail(err, "%s: named twice in one change", sorted[i]->key);
            free(sorted);
            free(ix);
            return -1;
        }
    }
    free(sorted);
    *order = ix;
    return 0;
}
