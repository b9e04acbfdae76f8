/*
 * trace.h - the loop guard's trace header: who this instance routed a
 * message for, in a form only the holder of the secret can write.
 *
 * A routed message gets one header whose value is
 *
 *     INSTANCE; r=TAG,TAG,...; mac=MAC
 *
 * TAG is HMAC-SHA256(secret, "coexist-trace-tag", INSTANCE, MESSAGE-ID,
 * KEY) truncated to TRACE_TAG_BYTES, KEY a recipient's normalized address
 * that this instance routed; MAC is HMAC-SHA256(secret, "coexist-trace-mac",
 * INSTANCE, MESSAGE-ID, the tag list) truncated to TRACE_MAC_BYTES. Both
 * are base64url without padding; the parts of each HMAC input are separated
 * by NUL bytes, which none of them can contain. MESSAGE-ID is the message's
 * Message-ID header value with surrounding blanks removed, "" when it has
 * none. Above TRACE_TAGS_MAX routed recipients the list is the single
 * whole-message tag "*": a message that returns with it is routed for nobody.
 *
 * Pure functions over OpenSSL's libcrypto; no libmilter, no logging.
 */
#ifndef COEXIST_TRACE_H
#define COEXIST_TRACE_H

#include <stddef.h>
#include <sys/types.h>

#define TRACE_SECRET_MIN 32         /* bytes: a 256-bit HMAC key at least */
#define TRACE_SECRET_MAX 1024
#define TRACE_TAG_BYTES 8           /* 64 bits: a guess per recipient is hopeless */
#define TRACE_TAG_CHARS 11          /* base64url of 8 bytes, no padding */
#define TRACE_MAC_BYTES 16
#define TRACE_MAC_CHARS 22

/*
 * Routed recipients named one by one; above this the header carries "*".
 * 16 tags keep the header near 250 characters, one line, while a list
 * server's re-post to a handful of members is still routed precisely.
 */
#define TRACE_TAGS_MAX 16

/* Trace headers of ours one message may bring that are looked at. */
#define TRACE_HEADERS_MAX 8

/* Longest header value built (and looked at: a longer one is bad). */
#define TRACE_VALUE_MAX 1024
#define TRACE_ERR_MAX 512

struct trace_secret {
    unsigned char ts_bytes[TRACE_SECRET_MAX];
    size_t ts_len;                  /* 0: no secret, the guard is off */
};

/* The tags of every verified header of one message. */
struct trace_set {
    int tset_all;                   /* a verified "r=*" */
    size_t tset_count;
    char tset_tags[TRACE_HEADERS_MAX * TRACE_TAGS_MAX][TRACE_TAG_CHARS + 1];
};

/* What one message is checked against: a decide_settings already_routed ctx. */
struct trace_check {
    const struct trace_secret *tc_secret;
    const char *tc_instance;
    const char *tc_msgid;
    const struct trace_set *tc_set;
};

/*
 * trace_secret_load - read the secret at PATH. Returns 0; 1 when the file
 * does not exist (the caller decides whether that is fatal); -1 with ERR
 * set when it is not a regular file, is accessible by others (any of
 * S_IRWXO), is shorter than TRACE_SECRET_MIN or longer than
 * TRACE_SECRET_MAX bytes, or cannot be read.
 */
int trace_secret_load(const char *path, struct trace_secret *secret,
                      char err[TRACE_ERR_MAX]);

/*
 * trace_secret_create - a new secret of TRACE_SECRET_MIN random bytes
 * (getrandom(2)) at PATH, mode 0640, never replacing a file. Returns 0
 * created, 1 when PATH exists already (left as it is), -1 with ERR set.
 */
int trace_secret_create(const char *path, char err[TRACE_ERR_MAX]);

/*
 * trace_build - the header value naming the NKEYS routed KEYS (duplicates
 * are named once) into OUT. Returns 0, or -1 with ERR set (no secret, no
 * key, OUT too small).
 */
int trace_build(const struct trace_secret *secret, const char *instance,
                const char *msgid, const char *const *keys, size_t nkeys,
                char *out, size_t outlen, char err[TRACE_ERR_MAX]);

enum trace_verdict {
    TRACE_BAD = -1,                 /* ours, but malformed or a bad mac */
    TRACE_OTHER = 0,                /* another instance's header */
    TRACE_OK = 1                    /* verified; its tags are in the set */
};

/* trace_set_init - an empty set. */
void trace_set_init(struct trace_set *set);

/*
 * trace_parse - check one header VALUE against INSTANCE and MSGID; a
 * verified header's tags join SET (tags past its capacity are dropped:
 * their recipients are then routed again, never skipped wrongly). A value
 * that is just INSTANCE (the header written without a secret, or forged)
 * is TRACE_BAD.
 */
enum trace_verdict trace_parse(const struct trace_secret *secret, const char *instance,
                               const char *msgid, const char *value,
                               struct trace_set *set);

/*
 * trace_covers - whether KEY was routed already: the set holds KEY's tag
 * or a whole-message tag. CTX is a struct trace_check; the prototype is
 * decide_settings.already_routed's.
 */
int trace_covers(const void *ctx, const char *key);

/* trace_is_ours - whether VALUE's first part names INSTANCE (cheap, no HMAC). */
int trace_is_ours(const char *instance, const char *value);

#endif
