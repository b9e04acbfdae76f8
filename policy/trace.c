/*
 * trace.c - the loop guard's trace header (see trace.h and DESIGN.md
 * section 10): the secret file, building a header value, verifying one.
 *
 * Verification recomputes the mac over the tag list in its canonical form
 * (tags joined by "," with no blanks), so an MTA that folds the long header
 * between tags does not break it. A tag is compared as text: it is only
 * looked at once the mac over it has verified, so only we could have made it.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "trace.h"

#define TAG_LABEL "coexist-trace-tag"
#define MAC_LABEL "coexist-trace-mac"
#define ALL_TAG "*"

/* ---- the secret --------------------------------------------------------- */

int trace_secret_load(const char *path, struct trace_secret *secret,
                      char err[TRACE_ERR_MAX])
{
    unsigned char extra;
    struct stat sb;
    ssize_t n;
    size_t len = 0;
    int fd;

    secret->ts_len = 0;
    if ((fd = open(path, O_RDONLY | O_NOCTTY)) < 0) {
        if (errno == ENOENT)
            return 1;
        snprintf(err, TRACE_ERR_MAX, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        snprintf(err, TRACE_ERR_MAX, "%s: not a regular file", path);
        goto fail;
    }
    /* A secret others can read is no secret: refuse rather than warn. */
    if (sb.st_mode & S_IRWXO) {
        snprintf(err, TRACE_ERR_MAX, "%s: mode %04o gives others access; "
                 "chmod 0600 it", path, (unsigned) (sb.st_mode & 07777));
        goto fail;
    }
    while (len < sizeof(secret->ts_bytes)) {
        n = read(fd, secret->ts_bytes + len, sizeof(secret->ts_bytes) - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, TRACE_ERR_MAX, "%s: %s", path, strerror(errno));
            goto fail;
        }
        if (n == 0)
            break;
        len += (size_t) n;
    }
    if (len == sizeof(secret->ts_bytes) && read(fd, &extra, 1) > 0) {
        snprintf(err, TRACE_ERR_MAX, "%s: longer than %d bytes", path, TRACE_SECRET_MAX);
        goto fail;
    }
    if (len < TRACE_SECRET_MIN) {
        snprintf(err, TRACE_ERR_MAX, "%s: %zu bytes, at least %d random bytes needed",
                 path, len, TRACE_SECRET_MIN);
        goto fail;
    }
    close(fd);
    secret->ts_len = len;
    return 0;
fail:
    OPENSSL_cleanse(secret->ts_bytes, sizeof(secret->ts_bytes));
    close(fd);
    return -1;
}

int trace_secret_create(const char *path, char err[TRACE_ERR_MAX])
{
    unsigned char bytes[TRACE_SECRET_MIN];
    ssize_t n;
    int fd, rc = -1;

    if (getrandom(bytes, sizeof(bytes), 0) != (ssize_t) sizeof(bytes)) {
        snprintf(err, TRACE_ERR_MAX, "getrandom: %s", strerror(errno));
        return -1;
    }
    if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOCTTY, 0600)) < 0) {
        if (errno == EEXIST)
            return 1;
        snprintf(err, TRACE_ERR_MAX, "%s: %s", path, strerror(errno));
        goto out;
    }
    /* The umask may have taken the group bit: the milter's group reads it. */
    if (fchmod(fd, 0600) < 0 || (n = write(fd, bytes, sizeof(bytes))) != (ssize_t) sizeof(bytes)
        || fsync(fd) < 0) {
        snprintf(err, TRACE_ERR_MAX, "%s: %s", path, strerror(errno ? errno : EIO));
        close(fd);
        unlink(path);
        goto out;
    }
    if (close(fd) < 0) {
        snprintf(err, TRACE_ERR_MAX, "%s: %s", path, strerror(errno));
        unlink(path);
        goto out;
    }
    rc = 0;
out:
    OPENSSL_cleanse(bytes, sizeof(bytes));
    return rc;
}

/* ---- HMAC and encoding ---------------------------------------------------- */

/*
 * hmac_parts - HMAC-SHA256 under SECRET of the NUL-separated PARTS (the
 * label first) into OUT. Returns 0 or -1 (libcrypto failed).
 */
static int hmac_parts(const struct trace_secret *secret, const char *const *parts,
                      size_t nparts, unsigned char out[32])
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) "SHA256", 0),
        OSSL_PARAM_construct_end()
    };
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    size_t outlen = 0;
    int ok = ctx != NULL
        && EVP_MAC_init(ctx, secret->ts_bytes, secret->ts_len, params);

    for (size_t i = 0; ok && i < nparts; i++)
        ok = EVP_MAC_update(ctx, (const unsigned char *) parts[i], strlen(parts[i]) + 1);
    ok = ok && EVP_MAC_final(ctx, out, &outlen, 32) && outlen == 32;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return ok ? 0 : -1;
}

/* b64url - LEN bytes as unpadded base64url into OUT (4 * LEN / 3 + 2 bytes). */
static void b64url(const unsigned char *in, size_t len, char *out)
{
    static const char abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned long bits = 0;
    int nbits = 0;

    for (size_t i = 0; i < len; i++) {
        bits = (bits << 8) | in[i];
        for (nbits += 8; nbits >= 6; nbits -= 6)
            *out++ = abc[(bits >> (nbits - 6)) & 63];
    }
    if (nbits > 0)
        *out++ = abc[(bits << (6 - nbits)) & 63];
    *out = '\0';
}

/*
 * digest - LABEL's HMAC over (instance, Message-ID, LAST), the first NBYTES
 * of it base64url-encoded into OUT. LABEL keeps a tag (over one key) and a
 * mac (over the tag list) from ever being the same input. Returns 0 or -1.
 */
static int digest(const struct trace_secret *secret, const char *label, const char *instance,
                  const char *msgid, const char *last, size_t nbytes, char *out)
{
    const char *parts[] = {label, instance, msgid, last};
    unsigned char md[32];

    if (hmac_parts(secret, parts, 4, md) < 0)
        return -1;
    b64url(md, nbytes, out);
    return 0;
}

/* tag_of - KEY's tag for this instance and message. Returns 0 or -1. */
static int tag_of(const struct trace_secret *secret, const char *instance,
                  const char *msgid, const char *key, char tag[TRACE_TAG_CHARS + 1])
{
    return digest(secret, TAG_LABEL, instance, msgid, key, TRACE_TAG_BYTES, tag);
}

/* mac_of - the mac over the canonical tag LIST. Returns 0 or -1. */
static int mac_of(const struct trace_secret *secret, const char *instance,
                  const char *msgid, const char *list, char mac[TRACE_MAC_CHARS + 1])
{
    return digest(secret, MAC_LABEL, instance, msgid, list, TRACE_MAC_BYTES, mac);
}

/* ---- building ------------------------------------------------------------- */

/* seen_before - whether KEYS[I] is one of KEYS[0..I-1]. */
static int seen_before(const char *const *keys, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (strcmp(keys[j], keys[i]) == 0)
            return 1;
    return 0;
}

int trace_build(const struct trace_secret *secret, const char *instance,
                const char *msgid, const char *const *keys, size_t nkeys,
                char *out, size_t outlen, char err[TRACE_ERR_MAX])
{
    char list[TRACE_TAGS_MAX * (TRACE_TAG_CHARS + 1) + 1], mac[TRACE_MAC_CHARS + 1];
    size_t distinct = 0, used = 0;
    int n;

    if (secret->ts_len < TRACE_SECRET_MIN) {
        snprintf(err, TRACE_ERR_MAX, "no trace secret");
        return -1;
    }
    for (size_t i = 0; i < nkeys; i++)
        distinct += !seen_before(keys, i);
    if (distinct == 0) {
        snprintf(err, TRACE_ERR_MAX, "no routed recipient to name");
        return -1;
    }
    if (distinct > TRACE_TAGS_MAX)
        strcpy(list, ALL_TAG);
    else {
        for (size_t i = 0; i < nkeys; i++) {
            if (seen_before(keys, i))
                continue;
            if (used > 0)
                list[used++] = ',';
            if (tag_of(secret, instance, msgid, keys[i], list + used) < 0)
                goto crypto;
            used += TRACE_TAG_CHARS;
        }
    }
    if (mac_of(secret, instance, msgid, list, mac) < 0)
        goto crypto;
    n = snprintf(out, outlen, "%s; r=%s; mac=%s", instance, list, mac);
    if (n < 0 || (size_t) n >= outlen) {
        snprintf(err, TRACE_ERR_MAX, "trace header longer than %zu bytes", outlen - 1);
        return -1;
    }
    return 0;
crypto:
    snprintf(err, TRACE_ERR_MAX, "libcrypto HMAC-SHA256 failed");
    return -1;
}

/* ---- parsing and verifying ---------------------------------------------- */

void trace_set_init(struct trace_set *set)
{
    set->tset_all = 0;
    set->tset_count = 0;
}

/* skip_blanks - past folding white space (blanks, CR, LF). */
static const char *skip_blanks(const char *p)
{
    while (*p && isspace((unsigned char) *p))
        p++;
    return p;
}

/* b64url_char - whether C may appear in a tag or mac. */
static int b64url_char(int c)
{
    return isalnum(c) || c == '-' || c == '_';
}

/*
 * first_part - whether VALUE, up to its first ';' (or its end) and blanks
 * ignored, is INSTANCE. *REST: after the ';', or NULL when there is none.
 */
static int first_part(const char *instance, const char *value, const char **rest)
{
    const char *semi = strchr(value, ';');
    const char *end = semi ? semi : value + strlen(value);
    size_t len = strlen(instance);

    value = skip_blanks(value);
    while (end > value && isspace((unsigned char) end[-1]))
        end--;
    *rest = semi ? semi + 1 : NULL;
    return (size_t) (end - value) == len && strncmp(value, instance, len) == 0;
}

int trace_is_ours(const char *instance, const char *value)
{
    const char *rest;

    return first_part(instance, value, &rest);
}

/*
 * parse_list - the "r=" part at P into canonical LIST and its TAGS (*NTAGS;
 * 0 with LIST "*" for the whole-message tag). Returns the position after
 * the list, or NULL when it is malformed.
 */
static const char *parse_list(const char *p, char *list,
                              char tags[TRACE_TAGS_MAX][TRACE_TAG_CHARS + 1],
                              size_t *ntags)
{
    size_t used = 0;

    *ntags = 0;
    p = skip_blanks(p);
    if (strncmp(p, "r=", 2) != 0)
        return NULL;
    p = skip_blanks(p + 2);
    if (*p == '*') {
        strcpy(list, ALL_TAG);
        return skip_blanks(p + 1);
    }
    for (;;) {
        size_t len = 0;

        while (b64url_char((unsigned char) p[len]))
            len++;
        if (len != TRACE_TAG_CHARS || *ntags == TRACE_TAGS_MAX)
            return NULL;
        memcpy(tags[*ntags], p, len);
        tags[(*ntags)++][len] = '\0';
        if (used > 0)
            list[used++] = ',';
        memcpy(list + used, p, len);
        used += len;
        list[used] = '\0';
        p = skip_blanks(p + len);
        if (*p != ',')
            return p;
        p = skip_blanks(p + 1);
    }
}

enum trace_verdict trace_parse(const struct trace_secret *secret, const char *instance,
                               const char *msgid, const char *value,
                               struct trace_set *set)
{
    char list[TRACE_TAGS_MAX * (TRACE_TAG_CHARS + 1) + 1];
    char tags[TRACE_TAGS_MAX][TRACE_TAG_CHARS + 1];
    char got[TRACE_MAC_CHARS + 1], want[TRACE_MAC_CHARS + 1];
    const char *p;
    size_t ntags, len = 0;

    if (!first_part(instance, value, &p))
        return TRACE_OTHER;
    if (p == NULL || secret->ts_len < TRACE_SECRET_MIN || strlen(value) > TRACE_VALUE_MAX)
        return TRACE_BAD;
    if ((p = parse_list(p, list, tags, &ntags)) == NULL || *p != ';')
        return TRACE_BAD;
    p = skip_blanks(p + 1);
    if (strncmp(p, "mac=", 4) != 0)
        return TRACE_BAD;
    for (p += 4; b64url_char((unsigned char) p[len]); len++)
        ;
    if (len != TRACE_MAC_CHARS || *skip_blanks(p + len) != '\0')
        return TRACE_BAD;
    memcpy(got, p, len);
    got[len] = '\0';
    if (mac_of(secret, instance, msgid, list, want) < 0
        || CRYPTO_memcmp(got, want, TRACE_MAC_CHARS) != 0)
        return TRACE_BAD;
    if (ntags == 0)
        set->tset_all = 1;
    for (size_t i = 0; i < ntags; i++) {
        if (set->tset_count == sizeof(set->tset_tags) / sizeof(set->tset_tags[0]))
            break;
        memcpy(set->tset_tags[set->tset_count++], tags[i], TRACE_TAG_CHARS + 1);
    }
    return TRACE_OK;
}

int trace_covers(const void *ctx, const char *key)
{
    const struct trace_check *tc = ctx;
    char tag[TRACE_TAG_CHARS + 1];

    if (tc->tc_set->tset_all)
        return 1;
    if (tc->tc_set->tset_count == 0
        || tag_of(tc->tc_secret, tc->tc_instance, tc->tc_msgid, key, tag) < 0)
        return 0;
    for (size_t i = 0; i < tc->tc_set->tset_count; i++)
        if (strcmp(tc->tc_set->tset_tags[i], tag) == 0)
            return 1;
    return 0;
}
