/*
 * replica_local.c - the replica's position as the local host reads it
 * (see replica.h): its text in the store, the status, and a writer's wait
 * for a journal id. Nothing here talks to the database, so it builds
 * without PostgreSQL too.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "replica.h"

#define POSITION_TEXT_MAX 160

/* id_ok - a database id as pgstore makes them: 1..63 of [0-9A-Za-z-]. */
static int id_ok(const char *id, size_t len)
{
    if (len == 0 || len >= REPLICA_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!(id[i] == '-' || (id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'z')
              || (id[i] >= 'A' && id[i] <= 'Z')))
            return 0;
    return 1;
}

/* position_parse - "v=1 db=ID position=N", strictly. */
static int position_parse(const char *text, struct replica_position *pos)
{
    const char *id, *sp, *num;
    char *end;
    long long n;

    if (strncmp(text, "v=1 db=", 7) != 0)
        return -1;
    id = text + 7;
    if ((sp = strchr(id, ' ')) == NULL || !id_ok(id, (size_t) (sp - id))
        || strncmp(sp, " position=", 10) != 0)
        return -1;
    num = sp + 10;
    if (*num < '0' || *num > '9')
        return -1;
    errno = 0;
    n = strtoll(num, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    memcpy(pos->database_id, id, (size_t) (sp - id));
    pos->database_id[sp - id] = '\0';
    pos->position = n;
    return 0;
}

int replica_position_read(struct store *st, struct replica_position *pos,
                          char err[REPLICA_ERR_MAX])
{
    char text[POSITION_TEXT_MAX];
    int rc = store_meta_get(st, REPLICA_KEY, text, sizeof(text));

    if (rc < 0) {
        snprintf(err, REPLICA_ERR_MAX, "%s", store_error(st));
        return -1;
    }
    if (rc == 0)
        return 0;
    if (position_parse(text, pos) < 0) {
        snprintf(err, REPLICA_ERR_MAX, "%.300s: damaged replica position '%.80s'",
                 store_path(st), text);
        return -1;
    }
    return 1;
}

int replica_position_write(struct store *st, const struct replica_position *pos,
                           char err[REPLICA_ERR_MAX])
{
    char text[POSITION_TEXT_MAX];

    if (!id_ok(pos->database_id, strlen(pos->database_id))) {
        snprintf(err, REPLICA_ERR_MAX, "bad database id '%.80s'", pos->database_id);
        return -1;
    }
    snprintf(text, sizeof(text), "v=1 db=%s position=%lld", pos->database_id, pos->position);
    if (store_meta_put(st, REPLICA_KEY, text) < 0) {
        snprintf(err, REPLICA_ERR_MAX, "%s", store_error(st));
        return -1;
    }
    return 0;
}

int replica_status(const char *state_db, struct replica_position *pos,
                   char err[REPLICA_ERR_MAX])
{
    char serr[STORE_ERR_MAX];
    struct store *st = store_open(state_db, STORE_OPEN_EXISTING, 0, serr);
    int rc;

    if (st == NULL) {
        snprintf(err, REPLICA_ERR_MAX, "%s", serr);
        return -1;
    }
    rc = replica_position_read(st, pos, err);
    store_close(st);
    return rc;
}

/* now_ms - a monotonic clock in milliseconds, for deadlines. */
static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int replica_wait_for(const char *state_db, long long id, unsigned seconds,
                     long long *seen, char err[REPLICA_ERR_MAX])
{
    int64_t deadline = now_ms() + (int64_t) seconds * 1000;
    struct timespec pause = {0, 10 * 1000 * 1000};
    struct replica_position pos;
    struct stat sb;
    long long last = -1;

    for (;;) {
        /* No file yet: no follower has made the replica; wait for it too. */
        if (stat(state_db, &sb) == 0) {
            int rc = replica_status(state_db, &pos, err);

            if (rc < 0)
                return -1;
            if (rc == 1)
                last = pos.position;
            if (seen != NULL)
                *seen = last;
            if (last >= id)
                return 1;
        } else if (errno != ENOENT) {
            if (seen != NULL)
                *seen = last;
            snprintf(err, REPLICA_ERR_MAX, "%.300s: %s", state_db, strerror(errno));
            return -1;
        }
        if (now_ms() >= deadline)
            break;
        /* 10 ms at first (a follower applies a flip in a few), then 50 ms. */
        nanosleep(&pause, NULL);
        if (pause.tv_nsec < 50 * 1000 * 1000)
            pause.tv_nsec += 10 * 1000 * 1000;
    }
    snprintf(err, REPLICA_ERR_MAX, "the replica %.300s has not applied journal id %lld "
             "within %u s (it is at %lld)", state_db, id, seconds, last);
    if (seen != NULL)
        *seen = last;
    return 0;
}
