/*
 * pgtool.c - the cluster tier's hands on the shared store, through the
 * same pgstore functions coexistctl uses (until "coexistctl init --shared"
 * and the writing verbs against the database exist, and beside them to
 * write in ways the verbs never do):
 *
 *   pgtool CONNINFO init                 create the schema
 *   pgtool CONNINFO put KEY VALUE        one put (compare-and-set against
 *                                        the current value); prints its id
 *   pgtool CONNINFO flip KEY             toggle migrated/unmigrated of a
 *                                        user record; prints its id
 *   pgtool CONNINFO bulk N PREFIX        N new users PREFIXi@corp.example
 *                                        in one change; prints the last id
 *   pgtool CONNINFO delete KEY           one delete; prints its id
 *   pgtool CONNINFO prune BEFORE_ID      prune the journal
 *   pgtool CONNINFO latest               the latest journal id
 *   pgtool CONNINFO dump                 every record, "key value" sorted
 *                                        by the caller (sort(1))
 *
 * Exit status 0, or 1 with the reason on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "change.h"
#include "pgstore.h"

/* current - the value of KEY now, by a snapshot (a test tool: small data). */
struct find_ctx {
    const char *key;
    char value[1100];
    int found;
};

static int find_one(const char *key, const char *value, void *arg)
{
    struct find_ctx *fc = arg;

    if (strcmp(key, fc->key) == 0) {
        snprintf(fc->value, sizeof(fc->value), "%s", value);
        fc->found = 1;
    }
    return 0;
}

static int dump_one(const char *key, const char *value, void *arg)
{
    (void) arg;
    printf("%s %s\n", key, value);
    return 0;
}

static int die(const char *what, const char *err)
{
    fprintf(stderr, "pgtool: %s: %s\n", what, err);
    return 1;
}

/* apply_one - put VALUE (NULL: delete) under KEY expecting what is there. */
static int apply_one(struct pgstore *db, const char *key, const char *value)
{
    char err[PGSTORE_ERR_MAX], cerr[CHANGE_ERR_MAX];
    struct find_ctx fc = {key, "", 0};
    long long pos, id;
    struct change ch;
    int rc;

    if (pgstore_snapshot(db, find_one, &fc, &pos, err) != PGSTORE_OK)
        return die("snapshot", err);
    if (change_init(&ch, "pgtool/0", "pgtool", cerr) < 0)
        return die("change", cerr);
    rc = value ? change_put(&ch, key, fc.found ? fc.value : NULL, value, cerr)
         : change_delete(&ch, key, fc.value, cerr);
    if (rc < 0)
        return die("change", cerr);
    if (pgstore_apply(db, &ch, &id, err) != PGSTORE_OK)
        return die("apply", err);
    change_free(&ch);
    printf("%lld\n", id);
    return 0;
}

/* flip - toggle a user's state, keeping every other field. */
static int flip(struct pgstore *db, const char *key)
{
    char err[PGSTORE_ERR_MAX], value[1100], *p;
    struct find_ctx fc = {key, "", 0};
    long long pos;

    if (pgstore_snapshot(db, find_one, &fc, &pos, err) != PGSTORE_OK)
        return die("snapshot", err);
    if (!fc.found)
        return die(key, "no such record");
    snprintf(value, sizeof(value), "%s", fc.value);
    if ((p = strstr(value, "state=unmigrated")) != NULL)
        memmove(p + 6, p + 8, strlen(p + 8) + 1);
    else if ((p = strstr(value, "state=migrated")) != NULL) {
        memmove(p + 8, p + 6, strlen(p + 6) + 1);
        memcpy(p + 6, "un", 2);
    }
    return apply_one(db, key, value);
}

/* bulk - N users in one change. */
static int bulk(struct pgstore *db, long n, const char *prefix)
{
    char err[PGSTORE_ERR_MAX], cerr[CHANGE_ERR_MAX], key[128], value[256];
    struct change ch;
    long long id;

    if (change_init(&ch, "pgtool/0", "pgtool", cerr) < 0)
        return die("change", cerr);
    for (long i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "%s%ld@corp.example", prefix, i);
        snprintf(value, sizeof(value), "v=1 state=unmigrated mode=bcc alias=%s%ld@pop.example",
                 prefix, i);
        if (change_put(&ch, key, NULL, value, cerr) < 0)
            return die("change", cerr);
    }
    if (pgstore_apply(db, &ch, &id, err) != PGSTORE_OK)
        return die("apply", err);
    change_free(&ch);
    printf("%lld\n", id);
    return 0;
}

int main(int argc, char **argv)
{
    char err[PGSTORE_ERR_MAX];
    struct pgstore *db;
    long long id;
    int rc = 0;

    if (argc < 3)
        return die("usage", "pgtool CONNINFO init|put|flip|bulk|delete|prune|latest|dump ...");
    if (pgstore_connect(argv[1], &db, err) != PGSTORE_OK)
        return die("connect", err);
    if (strcmp(argv[2], "init") == 0) {
        if (pgstore_init(db, err) != PGSTORE_OK)
            rc = die("init", err);
    } else if (pgstore_check_schema(db, err) != PGSTORE_OK) {
        rc = die("schema", err);
    } else if (strcmp(argv[2], "put") == 0 && argc == 5) {
        rc = apply_one(db, argv[3], argv[4]);
    } else if (strcmp(argv[2], "flip") == 0 && argc == 4) {
        rc = flip(db, argv[3]);
    } else if (strcmp(argv[2], "bulk") == 0 && argc == 5) {
        rc = bulk(db, strtol(argv[3], NULL, 10), argv[4]);
    } else if (strcmp(argv[2], "delete") == 0 && argc == 4) {
        rc = apply_one(db, argv[3], NULL);
    } else if (strcmp(argv[2], "prune") == 0 && argc == 4) {
        if (pgstore_prune(db, strtoll(argv[3], NULL, 10), err) != PGSTORE_OK)
            rc = die("prune", err);
    } else if (strcmp(argv[2], "latest") == 0) {
        if (pgstore_latest_id(db, &id, err) != PGSTORE_OK)
            rc = die("latest", err);
        else
            printf("%lld\n", id);
    } else if (strcmp(argv[2], "dump") == 0) {
        long long pos;

        if (pgstore_snapshot(db, dump_one, NULL, &pos, err) != PGSTORE_OK)
            rc = die("dump", err);
    } else {
        rc = die("usage", "unknown command or wrong arguments");
    }
    pgstore_close(db);
    return rc;
}
