/*
 * decide.h - the routing decision: which recipients to add and delete.
 *
 * A pure function of the envelope recipients, a lookup function and a few
 * settings. It knows nothing of libmilter or TDB, so every case of the
 * decision table is unit-tested with an in-memory lookup.
 */
#ifndef COEXIST_DECIDE_H
#define COEXIST_DECIDE_H

#include <stddef.h>
#include <time.h>

#include "addr.h"
#include "record.h"

#define DECIDE_ARGS_MAX 1024
#define DECIDE_ERR_MAX 512

/* One envelope recipient exactly as the MTA sent it. */
struct decide_rcpt {
    const char *raw;                /* argv[0], normally "<addr>": deletes name it */
    const char *const *esmtp_args;  /* NULL-terminated, or NULL */
    /* The MTA's own resolution ({rcpt_addr}), looked up instead of RAW;
     * NULL (or no '@' in it, as for Sendmail's local mailer) means RAW. */
    const char *resolved;
};

/*
 * Lookup: 1 found (*REC filled), 0 absent, -1 error (reason in ERR).
 * The decision calls it with a user key, then with "@domain".
 */
typedef int (*decide_lookup_fn)(void *ctx, const char *key, struct record *rec,
                                char err[DECIDE_ERR_MAX]);

/*
 * Reverse index lookup (same CTX as the lookup): the owners of a legacy
 * address ("adam@pop.example") or legacy domain ("@pop.example"). Returns
 * how many records name it (OWNER filled with the first), -1 on an error
 * (reason in ERR).
 */
typedef int (*decide_owner_fn)(void *ctx, const char *alias, char owner[ADDR_BUFSIZE],
                               char err[DECIDE_ERR_MAX]);

enum decide_rule { RULE_NONE, RULE_USER, RULE_DOMAIN };

struct decide_settings {
    const char *delimiters;         /* subaddress delimiters, e.g. "+" */
    time_t now;                     /* for scheduled cutovers */
    int loop_detected;              /* the message carries our trace header */
    /* A rewrite found without its extension carries it to the alias, as
     * Postfix's propagate_unmatched_extensions does for virtual(5). */
    int propagate_extension;
    /*
     * The loop guard with a secret: whether this instance routed the
     * recipient with normalized KEY for this message already (a verified
     * trace header names it). Such a recipient is left alone and its route
     * says routed = 0. NULL: none was.
     */
    int (*already_routed)(const void *ctx, const char *key);
    const void *already_routed_ctx;
    /* Reverse routing (DESIGN section 9): the reverse index; NULL: off. */
    decide_owner_fn owner;
};

/* What one recipient resolves to, independent of the other recipients. */
struct decide_route {
    enum decide_rule rule;
    int routed;                     /* 0: leave alone (migrated, unknown) */
    enum record_mode mode;
    enum record_state effective;
    int reverse;                    /* a legacy address routed back to its owner */
    char key[ADDR_BUFSIZE];         /* normalized recipient */
    char match[ADDR_BUFSIZE];       /* the store key that matched, "" if none */
    /* forward: the legacy address to deliver to; reverse: the owner's address */
    char alias[ADDR_BUFSIZE];
    const char *unresolved;         /* why ADDR did not normalize (lenient), or NULL */
};

/* decide_rcpt_addr - the address of RCPT to look up: the MTA's, else the raw one. */
const char *decide_rcpt_addr(const struct decide_rcpt *rcpt);

/*
 * decide_route - resolve one recipient (decide_rcpt_addr) in Postfix's
 * lookup order (virtual(5)): the full address, then the address without
 * its extension, then the domain rule; an address no record manages is
 * then looked up in the reverse index (SETTINGS->owner): the legacy alias of
 * a user, or an address at a domain rule's legacy domain, whose owner has
 * migrated and has reverse = yes, is routed back to the owner's address
 * (REVERSE set, mode rewrite). An extension or local part carried
 * to the alias keeps the sender's spelling (RCPT->raw), as Postfix's does.
 * Returns 0, or -1 with ERR set (bad address or lookup error). An address
 * that does not normalize is reported with rule RULE_NONE, UNRESOLVED set
 * and return 0 when LENIENT is set (the milter leaves such recipients
 * alone, and logs them).
 */
int decide_route(const struct decide_rcpt *rcpt, const struct decide_settings *settings,
                 decide_lookup_fn lookup, void *lookup_ctx, int lenient,
                 struct decide_route *route, char err[DECIDE_ERR_MAX]);

enum decide_action_kind { ACTION_ADD, ACTION_DELETE };

struct decide_action {
    enum decide_action_kind kind;
    enum record_mode mode;          /* why: bcc or rewrite */
    enum decide_rule rule;
    int reverse;                    /* a reverse rewrite (mode is MODE_REWRITE) */
    size_t rcpt_index;              /* the recipient that caused it */
    /* ADD: "<alias>"; DELETE: the recipient's raw form as received */
    char addr[ADDR_BUFSIZE + 2];
    char args[DECIDE_ARGS_MAX];     /* ADD: ESMTP args, "" if none */
};

struct decide_result {
    struct decide_action *actions;  /* adds first, then deletes */
    size_t count;
    size_t capacity;
};

/*
 * decide_actions - the actions for a message with NRCPT recipients.
 * RESULT is reused across calls (its array grows, never shrinks); free it
 * with decide_result_free. Returns 0, or -1 with ERR set on a lookup error,
 * in which case RESULT holds no actions: a message is changed whole or not
 * at all.
 */
int decide_actions(const struct decide_rcpt *rcpts, size_t nrcpt,
                   const struct decide_settings *settings,
                   decide_lookup_fn lookup, void *lookup_ctx,
                   struct decide_result *result, char err[DECIDE_ERR_MAX]);

/*
 * decide_any_managed - could end of message do anything for these
 * recipients? 1 as soon as one has a record (user, without its extension,
 * or domain rule), is the legacy address of an owner in the reverse index
 * (SETTINGS->owner), or does not normalize (end of message logs it); 0
 * when none does; -1 with ERR on a lookup error. A record counts whatever
 * its state: a migrated user may be unmigrated before end of message, and
 * that decision is end of message's. The milter's DATA callback uses it to
 * accept mail it cannot change without seeing its headers and body.
 */
int decide_any_managed(const struct decide_rcpt *rcpts, size_t nrcpt,
                       const struct decide_settings *settings, decide_lookup_fn lookup,
                       void *lookup_ctx, char err[DECIDE_ERR_MAX]);

/*
 * decide_actions_routes - decide_actions, also keeping what each recipient
 * resolved to: ROUTES (NRCPT entries) gets decide_route()'s answer for
 * recipient i (lenient: rule RULE_NONE for one that does not normalize, and
 * for every recipient when the message is not looked at, as with a loop).
 * So a caller that reports the routes (the milter's log lines) need not
 * look anything up a second time. ROUTES is undefined after a -1.
 */
int decide_actions_routes(const struct decide_rcpt *rcpts, size_t nrcpt,
                          const struct decide_settings *settings,
                          decide_lookup_fn lookup, void *lookup_ctx,
                          struct decide_result *result, struct decide_route *routes,
                          char err[DECIDE_ERR_MAX]);
void decide_result_free(struct decide_result *result);

const char *decide_rule_name(enum decide_rule rule);

/* xtext (RFC 3461) encoding of ADDR into OUT; returns -1 if it does not fit. */
int decide_xtext(const char *addr, char *out, size_t outlen);

#endif
