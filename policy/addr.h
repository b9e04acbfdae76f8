/*
 * addr.h - envelope address normalization: the key of the state store.
 *
 * An address as an MTA hands it over ("<Adam.Barr+News@Corp.Example>") is
 * reduced to the key the store is indexed by ("adam.barr+news@corp.example"):
 * angle brackets, a source route and a trailing dot of the domain dropped,
 * quoting removed, the local part case-folded (full Unicode case folding for
 * an SMTPUTF8 local part, as Postfix folds its table keys) and the domain
 * lower-cased and written in A-labels, so that "dömain.example" and
 * "xn--dmain-jua.example" are one key. The local part is kept whole: a key
 * stored as "jean-luc@corp.example" is that key, whatever the recipient
 * delimiter. addr_split_extension then gives the lookup's second try, the
 * address without its extension, exactly as Postfix splits it (virtual(5)).
 *
 * Anything that could not be a routable mailbox (control characters,
 * spaces, no '@', invalid UTF-8, over-long parts) is rejected with a reason,
 * so that neither the CLI nor the milter ever stores or looks up a
 * malformed key.
 */
#ifndef COEXIST_ADDR_H
#define COEXIST_ADDR_H

#include <stddef.h>

#define ADDR_LOCAL_MAX 64
#define ADDR_DOMAIN_MAX 255
#define ADDR_MAX 320            /* local + '@' + domain, RFC 5321 limits */
#define ADDR_BUFSIZE (ADDR_MAX + 1)

/* Delimiter set used when the configuration says nothing (Postfix's default). */
#define ADDR_DEFAULT_DELIMITERS "+"

/*
 * addr_normalize - reduce RAW to its store key in OUT (ADDR_BUFSIZE bytes).
 * Returns 0, or -1 with *ERR pointing at a static reason.
 */
int addr_normalize(const char *raw, char out[ADDR_BUFSIZE], const char **err);

/*
 * addr_split_extension - the address KEY (a normalized key) without its
 * extension, as Postfix's split_addr() makes it: the local part is cut at
 * the first of the DELIMITERS characters, unless that would leave it empty,
 * the local part is postmaster or mailer-daemon, or DELIMITERS holds '-'
 * and the local part is owner-* or *-request (owner_request_special).
 * Returns 1 with BARE filled and *EXT, *EXTLEN naming the extension in KEY
 * (the delimiter included), or 0 when there is nothing to split.
 */
int addr_split_extension(const char *key, const char *delimiters,
                         char bare[ADDR_BUFSIZE], const char **ext, size_t *extlen);

/*
 * addr_normalize_domain - "@Corp.Example" or "corp.example" to "@corp.example",
 * the key of a domain rule (A-labels for an internationalized domain).
 * Returns 0, or -1 with *ERR set.
 */
int addr_normalize_domain(const char *raw, char out[ADDR_BUFSIZE],
                          const char **err);

/* addr_is_domain_key - whether KEY is a domain rule key ("@domain"). */
int addr_is_domain_key(const char *key);

/* addr_domain - the part after the last '@' of a normalized key. */
const char *addr_domain(const char *key);

/*
 * addr_strip_brackets - copy RAW without one pair of enclosing <> and
 * surrounding blanks into OUT (OUTLEN bytes). Returns 0, or -1 if unbalanced
 * or too long.
 */
int addr_strip_brackets(const char *raw, char *out, size_t outlen);

#endif
