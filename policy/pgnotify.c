/*
 * pgnotify.c - LISTEN/NOTIFY: how a follower learns at once that the
 * journal grew (see pgstore.h). A notification is only a hint: the
 * follower still reads the journal from its own position, and polls it
 * periodically, because a notification sent while it was disconnected is
 * lost.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "pgstore_int.h"

int pgstore_listen(struct pgstore *db, char err[PGSTORE_ERR_MAX])
{
    int rc = pg_run(db, "LISTEN " PGSTORE_CHANNEL, 0, NULL, "listening", err);

    if (rc == PGSTORE_OK)
        db->listening = 1;
    return rc;
}

int pgstore_socket(const struct pgstore *db)
{
    return PQsocket(db->conn);
}

/* drain - take every notification libpq has read; the highest id into *GOT. */
static void drain(struct pgstore *db, long long *got)
{
    PGnotify *n;

    while ((n = PQnotifies(db->conn)) != NULL) {
        long long id = strtoll(n->extra, NULL, 10);

        /* A payload that is no id still means "the journal grew". */
        if (id <= 0)
            id = 1;
        if (id > *got)
            *got = id;
        PQfreemem(n);
    }
}

/* lost - the connection's failure as PGSTORE_UNAVAILABLE. */
static int lost(struct pgstore *db, char *err)
{
    pg_error(db, NULL, "waiting for notifications", err);
    return PGSTORE_UNAVAILABLE;
}

int pgstore_wait_notify(struct pgstore *db, int timeout_ms, long long *got,
                        char err[PGSTORE_ERR_MAX])
{
    struct pollfd pfd = {.fd = PQsocket(db->conn), .events = POLLIN};
    int n;

    *got = 0;
    /* Notifications may have arrived with an earlier statement's result. */
    if (PQconsumeInput(db->conn) == 0)
        return lost(db, err);
    drain(db, got);
    if (*got > 0)
        return PGSTORE_OK;
    if (pfd.fd < 0)
        return pg_fail(err, PGSTORE_UNAVAILABLE, "waiting for notifications: no connection");
    n = poll(&pfd, 1, timeout_ms);
    if (n < 0 && errno == EINTR)
        return PGSTORE_OK;
    if (n < 0)
        return pg_fail(err, PGSTORE_ERROR, "waiting for notifications: %s", strerror(errno));
    if (n > 0 && PQconsumeInput(db->conn) == 0)
        return lost(db, err);
    drain(db, got);
    return PGSTORE_OK;
}
