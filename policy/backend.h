/*
 * backend.h - where a change set is applied: the one seam between what a
 * coexistctl verb decided (struct change, change.h) and the store that
 * holds the state, as Postfix's dict layer is between a lookup and its
 * table. Two backends:
 *
 *   tdb         the local store (store.h): one tdb transaction, today's
 *               behaviour when shared_store is unset;
 *   postgresql  the shared store (pgstore.h): one database transaction
 *               with the journal and a NOTIFY; the local TDB is then a
 *               replica that "coexistctl follow" keeps.
 *
 * Both apply a change whole or not at all, with compare-and-set on every
 * op (CHANGE_CONFLICT: nothing applied, the caller refreshes and retries),
 * and return the codes of enum change_result. Errors are returned in ERR,
 * never printed.
 */
#ifndef COEXIST_BACKEND_H
#define COEXIST_BACKEND_H

#include "change.h"
#include "store.h"

#define BACKEND_ERR_MAX 512

struct backend;

/*
 * backend_tdb - a backend over the open store ST (not owned: the caller
 * closes it).
 */
struct backend *backend_tdb(struct store *st);

/*
 * backend_postgresql - a backend over the shared store at CONNINFO;
 * returns NULL with ERR and *RC (CHANGE_ERROR or CHANGE_UNAVAILABLE) if it
 * cannot connect or the schema is not usable. NULL with CHANGE_ERROR and a
 * clear message when this coexistctl was built without PostgreSQL.
 */
struct backend *backend_postgresql(const char *conninfo, int *rc, char err[BACKEND_ERR_MAX]);

/*
 * backend_init_shared - create the shared store's schema at CONNINFO
 * ("coexistctl init --shared"): one transaction; a database that has it,
 * or tables of that name that are not ours, is refused. Returns a
 * change_result; *DATABASE_ID (BACKEND_ERR_MAX bytes) names the new store.
 */
int backend_init_shared(const char *conninfo, char database_id[BACKEND_ERR_MAX],
                        char err[BACKEND_ERR_MAX]);

/* backend_name - "tdb" or "postgresql". */
const char *backend_name(const struct backend *be);

/*
 * backend_commit_part - how many records one commit of a large change (a
 * wave) should hold at most; 0: any number. The local TDB: BACKEND_TDB_PART,
 * since its commit holds every milter lookup for its whole length. The
 * shared store: no limit, since no milter reads the database: the
 * followers apply its journal to their replicas REPLICA_BATCH rows per
 * commit whatever the size of the change, and parts would only add round
 * trips (measured: a 10^5-user wave at 10^6 under load took 260 s in parts
 * of 1000, against 67 s as one change, with the same longest message).
 */
#define BACKEND_TDB_PART 1000
size_t backend_commit_part(const struct backend *be);

/*
 * backend_apply - apply CH whole or not at all. *LAST_ID is the shared
 * journal's id of the change (0 for the tdb backend). BULK (tdb only): one
 * journal entry for the whole change instead of one per op.
 */
int backend_apply(struct backend *be, const struct change *ch, int bulk, long long *last_id,
                  char err[BACKEND_ERR_MAX]);

/* backend_latest_id - the newest id of the shared journal (0 for tdb). */
int backend_latest_id(struct backend *be, long long *id, char err[BACKEND_ERR_MAX]);

/*
 * backend_history - the journal of where changes are applied, newest
 * first, for KEY only unless NULL, at most LIMIT entries (0: all): the
 * store's own journal, or the shared one (with each entry's node).
 * FN returns non-zero to stop. Returns a change_result.
 */
int backend_history(struct backend *be, const char *key, unsigned limit, journal_visit_fn fn,
                    void *ctx, char err[BACKEND_ERR_MAX]);

/* backend_free - close what the backend opened (never the tdb store). */
void backend_free(struct backend *be);

#endif
