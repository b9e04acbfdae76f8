/*
 * addr.h - envelope address normalization: the key of the state store.
 *
 * An address as an MTA hands it over ("<Adam.Barr+News@Corp.Example>") is
 * reduced to the key the store is indexed by ("adam.barr@corp.example"):
 * angle brackets stripped, the subaddress extension removed at the first
 * recipient delimiter, local part and domain lower-cased. Anything that could
 * not be a routable mailbox (control characters, spaces, no '@', over-long
 * parts) is rejected with a reason, so that neither the CLI nor the milter
 * ever stores or looks up a malformed key.
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
 * DELIMITERS is the set of subaddress delimiter characters ("" for none).
 * Returns 0, or -1 with *ERR pointing at a static reason.
 */
int addr_normalize(const char *raw, const char *delimiters,
                   char out[ADDR_BUFSIZE], const char **err);

/*
 * addr_normalize_domain - "@Corp.Example" or "corp.example" to "@corp.example",
 * the key of a domain rule. Returns 0, or -1 with *ERR set.
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
