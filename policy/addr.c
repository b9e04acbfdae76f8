/*
 * addr.c - envelope address normalization (see addr.h).
 *
 * The store key must be the address the MTA delivers to, so the forms an
 * MTA itself reduces to a plain mailbox are reduced here too: a source route
 * (RFC 5321 says to accept and ignore it), one trailing dot of the domain,
 * quoting and backslash escapes of the local part. The milter prefers the
 * MTA's own resolution (the {rcpt_addr} macro) and only falls back to this
 * parse; forms that depend on the MTA's configuration (percent hack, bang
 * paths) are left to the MTA. The rules are otherwise deliberately narrower
 * than RFC 5321: quoted local parts that need their quotes (spaces, "@")
 * and address literals are rejected with a reason rather than guessed at.
 */
#include <ctype.h>
#include <idn2.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unicase.h>
#include <unictype.h>
#include <unistr.h>

#include "addr.h"

/* Work space for a raw address: a source route may precede the 320 bytes. */
#define ADDR_RAW_MAX 1000

/* addr_strip_brackets - remove blanks and one pair of enclosing <>. */
int addr_strip_brackets(const char *raw, char *out, size_t outlen)
{
    const char *start = raw;
    const char *end = raw + strlen(raw);

    while (start < end && (*start == ' ' || *start == '\t'))
        start++;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (start < end && *start == '<') {
        if (end[-1] != '>' || end - start < 2)
            return -1;
        start++;
        end--;
    } else if (start < end && end[-1] == '>') {
        return -1;
    }
    if ((size_t) (end - start) >= outlen)
        return -1;
    memcpy(out, start, (size_t) (end - start));
    out[end - start] = '\0';
    return 0;
}

/* local_char_ok - atext and '.', or any byte of a UTF-8 sequence. */
static int local_char_ok(unsigned char c)
{
    if (isalnum(c) || c >= 0x80)
        return 1;
    return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL;
}

/*
 * utf8_visible - whether the UTF-8 text S (LEN bytes, valid) has only
 * visible characters: no C1 control, no format character (U+FEFF, the
 * byte order mark; U+200B), no Unicode space or separator. Such an address
 * looks like another one to an admin, and no MTA would route it sensibly.
 */
static int utf8_visible(const char *s, size_t len, const char **err)
{
    const uint8_t *p = (const uint8_t *) s, *end = p + len;
    ucs4_t uc;

    while (p < end) {
        p += u8_mbtouc(&uc, p, (size_t) (end - p));
        if (uc_is_general_category(uc, UC_CATEGORY_Cc))
            return (*err = "control character in address"), 0;
        if (uc_is_general_category(uc, UC_CATEGORY_Cf)
            || uc_is_general_category(uc, UC_CATEGORY_Z))
            return (*err = "invisible or space character in address"), 0;
    }
    return 1;
}

/* check_local - validate a local part of LEN bytes (quoting removed). */
static int check_local(const char *local, size_t len, const char **err)
{
    int utf8 = 0;

    if (len == 0)
        return (*err = "empty local part"), -1;
    if (local[0] == '.' || local[len - 1] == '.')
        return (*err = "local part starts or ends with a dot"), -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) local[i];

        if (c < 0x20 || c == 0x7f)
            return (*err = "control character in address"), -1;
        if (c == ' ')
            return (*err = "space in address"), -1;
        if (!local_char_ok(c))
            return (*err = "invalid character in local part"), -1;
        if (c == '.' && local[i + 1] == '.')
            return (*err = "consecutive dots in local part"), -1;
        utf8 |= c >= 0x80;
    }
    if (utf8 && u8_check((const uint8_t *) local, len) != NULL)
        return (*err = "invalid UTF-8 in address"), -1;
    if (utf8 && !utf8_visible(local, len, err))
        return -1;
    return 0;
}

/* check_domain - an ASCII host name: labels of [a-z0-9-], at most 63 each. */
static int check_domain(const char *domain, size_t len, const char **err)
{
    size_t i, label = 0;

    if (len == 0)
        return (*err = "empty domain"), -1;
    if (len > ADDR_DOMAIN_MAX)
        return (*err = "domain longer than 255 bytes"), -1;
    if (domain[0] == '[')
        return (*err = "address literals are not supported"), -1;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char) domain[i];

        if (c < 0x20 || c == 0x7f)
            return (*err = "control character in address"), -1;
        if (c == ' ')
            return (*err = "space in address"), -1;
        if (c == '.') {
            if (label == 0)
                return (*err = "empty label in domain"), -1;
            if (domain[i - 1] == '-')
                return (*err = "domain label ends with a hyphen"), -1;
            label = 0;
            continue;
        }
        if (!isalnum(c) && c != '-')
            return (*err = "invalid character in domain"), -1;
        if (c == '-' && label == 0)
            return (*err = "domain label starts with a hyphen"), -1;
        if (++label > 63)
            return (*err = "domain label longer than 63 bytes"), -1;
    }
    if (label == 0)
        return (*err = "domain ends with a dot"), -1;
    if (domain[len - 1] == '-')
        return (*err = "domain label ends with a hyphen"), -1;
    return 0;
}

/* lower_copy - copy LEN bytes lower-cased, return the end. */
static char *lower_copy(char *dst, const char *src, size_t len)
{
    for (size_t i = 0; i < len; i++)
        dst[i] = (char) tolower((unsigned char) src[i]);
    return dst + len;
}

/* is_ascii - whether S (LEN bytes) is 7-bit. */
static int is_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) s[i] >= 0x80)
            return 0;
    return 1;
}

/*
 * norm_domain - DOMAIN (LEN bytes) as a key's domain in OUT (room for
 * ADDR_DOMAIN_MAX + 1): lower-case ASCII, U-labels turned into A-labels
 * (IDNA2008 with UTS#46 mapping, which also folds case). Returns the end
 * of OUT, or NULL with *ERR set.
 */
static char *norm_domain(const char *domain, size_t len, char *out, const char **err)
{
    char input[ADDR_RAW_MAX + 1];
    char *ascii = NULL;
    size_t n;

    if (is_ascii(domain, len)) {
        if (check_domain(domain, len, err) < 0)
            return NULL;
        return lower_copy(out, domain, len);
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) domain[i] < 0x20 || domain[i] == 0x7f || domain[i] == ' ')
            return (*err = domain[i] == ' ' ? "space in address"
                           : "control character in address"), NULL;
    if (len > ADDR_RAW_MAX || u8_check((const uint8_t *) domain, len) != NULL)
        return (*err = "invalid UTF-8 in address"), NULL;
    memcpy(input, domain, len);
    input[len] = '\0';
    if (idn2_to_ascii_8z(input, &ascii, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL) != IDN2_OK)
        return (*err = "internationalized domain refused by IDNA2008"), NULL;
    n = strlen(ascii);
    if (check_domain(ascii, n, err) < 0) {
        idn2_free(ascii);
        return NULL;
    }
    lower_copy(out, ascii, n);
    idn2_free(ascii);
    return out + n;
}

/*
 * unquote_local - LOCAL (LEN bytes) without quoting into OUT (LEN + 1
 * bytes): "a.b" and a\.b both mean a.b to an MTA. Returns the new length,
 * or -1 with *ERR set.
 */
static long unquote_local(const char *local, size_t len, char *out, const char **err)
{
    size_t i = 0, n = 0, end = len;
    int quoted = len > 0 && local[0] == '"';

    if (quoted) {
        if (len < 2 || local[len - 1] != '"')
            return (*err = "unbalanced quote in local part"), -1;
        i = 1;
        end = len - 1;
    }
    for (; i < end; i++) {
        if (local[i] == '\\') {
            if (++i == end)
                return (*err = "backslash at the end of the local part"), -1;
        } else if (quoted && local[i] == '"') {
            return (*err = "unbalanced quote in local part"), -1;
        }
        out[n++] = local[i];
    }
    out[n] = '\0';
    return (long) n;
}

/*
 * fold_local - LOCAL (LEN bytes, checked) case-folded into OUT, at most
 * ADDR_LOCAL_MAX bytes. ASCII is lower-cased; a UTF-8 local part gets
 * Unicode full case folding (as Postfix's casefold() does for table keys),
 * without normalization (Postfix does none either). Returns the end of OUT,
 * or NULL with *ERR set.
 */
static char *fold_local(const char *local, size_t len, char *out, const char **err)
{
    uint8_t folded[ADDR_LOCAL_MAX * 3 + 1];
    size_t n = sizeof(folded);
    uint8_t *result;

    if (is_ascii(local, len)) {
        if (len > ADDR_LOCAL_MAX)
            return (*err = "local part longer than 64 bytes"), NULL;
        return lower_copy(out, local, len);
    }
    if (len > ADDR_LOCAL_MAX)
        return (*err = "local part longer than 64 bytes"), NULL;
    result = u8_casefold((const uint8_t *) local, len, NULL, NULL, folded, &n);
    if (result == NULL)
        return (*err = "cannot case-fold the local part"), NULL;
    if (result != folded) {
        free(result);
        return (*err = "local part longer than 64 bytes"), NULL;
    }
    if (n > ADDR_LOCAL_MAX)
        return (*err = "local part longer than 64 bytes"), NULL;
    memcpy(out, folded, n);
    return out + n;
}

/* drop_source_route - "@a,@b:user@dom" to "user@dom" (RFC 5321 4.1.2). */
static const char *drop_source_route(const char *addr)
{
    const char *colon;

    if (addr[0] != '@' || (colon = strchr(addr, ':')) == NULL)
        return addr;
    return colon + 1;
}

int addr_normalize(const char *raw, char out[ADDR_BUFSIZE], const char **err)
{
    char bare[ADDR_RAW_MAX + 1], local[ADDR_RAW_MAX + 1];
    const char *addr, *at, *domain;
    size_t domain_len;
    long local_len;
    char *end;

    if (raw == NULL)
        return (*err = "no address"), -1;
    for (size_t i = 0; raw[i] != '\0'; i++) {
        if ((unsigned char) raw[i] < 0x20 || raw[i] == 0x7f)
            return (*err = "control character in address"), -1;
        if (i >= ADDR_RAW_MAX)
            return (*err = "address longer than 320 bytes"), -1;
    }
    if (addr_strip_brackets(raw, bare, sizeof(bare)) < 0)
        return (*err = "unbalanced angle brackets"), -1;
    if (bare[0] == '\0')
        return (*err = "empty address"), -1;
    if (strchr(bare, '<') || strchr(bare, '>'))
        return (*err = "unbalanced angle brackets"), -1;
    addr = drop_source_route(bare);
    if (strlen(addr) > ADDR_MAX)
        return (*err = "address longer than 320 bytes"), -1;
    if ((at = strrchr(addr, '@')) == NULL)
        return (*err = "missing @domain"), -1;
    domain = at + 1;
    domain_len = strlen(domain);
    /* "corp.example." is the same domain, fully qualified: both MTAs agree. */
    if (domain_len > 1 && domain[domain_len - 1] == '.' && domain[domain_len - 2] != '.')
        domain_len--;
    if ((local_len = unquote_local(addr, (size_t) (at - addr), local, err)) < 0
        || check_local(local, (size_t) local_len, err) < 0)
        return -1;
    if ((end = fold_local(local, (size_t) local_len, out, err)) == NULL)
        return -1;
    *end++ = '@';
    if ((end = norm_domain(domain, domain_len, end, err)) == NULL)
        return -1;
    *end = '\0';
    return 0;
}

/* split_exempt - local parts Postfix never splits (split_addr.c). */
static int split_exempt(const char *local, size_t len, const char *delimiters)
{
    if ((len == 10 && strncasecmp(local, "postmaster", 10) == 0)
        || (len == 13 && strncasecmp(local, "mailer-daemon", 13) == 0))
        return 1;
    /* owner_request_special (default yes): owner-foo and foo-request stay. */
    if (strchr(delimiters, '-') != NULL
        && ((len > 6 && strncasecmp(local, "owner-", 6) == 0)
            || (len > 8 && strncasecmp(local + len - 8, "-request", 8) == 0)))
        return 1;
    return 0;
}

int addr_split_extension(const char *key, const char *delimiters,
                         char bare[ADDR_BUFSIZE], const char **ext, size_t *extlen)
{
    const char *at = strrchr(key, '@');
    size_t local_len, cut;

    if (at == NULL || delimiters == NULL || *delimiters == '\0')
        return 0;
    local_len = (size_t) (at - key);
    if (split_exempt(key, local_len, delimiters))
        return 0;
    cut = strcspn(key, delimiters);
    /* No delimiter in the local part, or one that would leave it empty. */
    if (cut >= local_len || cut == 0)
        return 0;
    *ext = key + cut;
    *extlen = local_len - cut;
    memcpy(bare, key, cut);
    strcpy(bare + cut, at);
    return 1;
}

int addr_normalize_domain(const char *raw, char out[ADDR_BUFSIZE],
                          const char **err)
{
    const char *domain = raw;
    size_t len;
    char *end;

    if (domain == NULL)
        return (*err = "no domain"), -1;
    if (*domain == '@')
        domain++;
    len = strlen(domain);
    if (strchr(domain, '@'))
        return (*err = "a domain rule is written @domain"), -1;
    if (len > ADDR_RAW_MAX)
        return (*err = "domain longer than 255 bytes"), -1;
    if (len > 1 && domain[len - 1] == '.' && domain[len - 2] != '.')
        len--;
    out[0] = '@';
    if ((end = norm_domain(domain, len, out + 1, err)) == NULL)
        return -1;
    *end = '\0';
    return 0;
}

int addr_is_domain_key(const char *key)
{
    return key[0] == '@';
}

const char *addr_domain(const char *key)
{
    const char *at = strrchr(key, '@');

    return at ? at + 1 : key + strlen(key);
}
