/*
 * mlfi.h - the libmilter callbacks of coexist-milter.
 *
 * The callbacks gather the envelope recipients of each message, ask the
 * policy library (decide_actions) what to add and delete, and apply that at
 * end of message. They keep no thread-local state: libmilter runs many
 * connections on a pool of worker threads, so everything about a
 * connection or a message lives in the context's private data.
 */
#ifndef COEXIST_MLFI_H
#define COEXIST_MLFI_H

#include <libmilter/mfapi.h>

#include "dbhandle.h"
#include "policy/config.h"

/* What the milter may do to a message; all of it happens in xxfi_eom. */
#define MLFI_ACTIONS (SMFIF_ADDRCPT | SMFIF_ADDRCPT_PAR | SMFIF_DELRCPT | SMFIF_ADDHDRS)

/* Protocol steps the milter does not need: the MTA does not send them. */
#define MLFI_SKIP_STEPS (SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOUNKNOWN \
                         | SMFIP_NOEOH | SMFIP_NOBODY)

/*
 * Steps the milter needs to see but never answers other than "continue":
 * the MTA need not wait for a reply (libmilter fakes the reply for an MTA
 * that cannot do without one).
 */
#define MLFI_NOREPLY_STEPS (SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_HDR)

/*
 * The RCPT macro the milter looks up instead of the raw argv[0]: the
 * address the MTA resolved the recipient to. In both Postfix's and
 * Sendmail's default RCPT macro lists; requested with smfi_setsymlist
 * anyway, so that an admin's own milter_rcpt_macros cannot drop it.
 */
#define MLFI_RCPT_MACRO "{rcpt_addr}"

/* The filter description for smfi_register(). */
extern const struct smfiDesc mlfi_desc;

/*
 * mlfi_init - the configuration and store handle the callbacks use. Called
 * once before smfi_main(); both must outlive it. CFG is not copied.
 */
void mlfi_init(const struct config *cfg, struct dbhandle *dbh);

/*
 * mlfi_set_secret - the loop guard's secret (not copied; it must outlive
 * smfi_main()). NULL, the default, keeps the guard of old: a constant
 * trace header, and a message carrying it is left alone.
 */
struct trace_secret;
void mlfi_set_secret(const struct trace_secret *secret);

/*
 * mlfi_set_tally - count each routed recipient there (not copied; it must
 * outlive smfi_main()). NULL, the default: no counting.
 */
struct tally;
void mlfi_set_tally(struct tally *tally);

#endif
