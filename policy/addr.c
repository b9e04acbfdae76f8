/*
 * addr.c - envelope address normalization (see addr.h).
 *
 * The rules are deliberately narrower than RFC 5321: the store is keyed by
 * mailboxes an administrator types, so anything exotic (address literals,
 * quoted local parts with spaces, 8-bit addresses) is rejected with a reason
 * rather than guessed at. The milter treats an address it cannot normalize as
 * unknown and leaves it alone.
 */
#include <ctype.h>
#include <string.h>

#include "addr.h"

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

/* local_char_ok - atext and '.', as an administrator would type them. */
static int local_char_ok(unsigned char c)
{
    if (isalnum(c))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL;
}

/* check_local - validate a local part of LEN bytes (quotes removed). */
static int check_local(const char *local, size_t len, const char **err)
{
    size_t i;

    if (len == 0)
        return (*err = "empty local part"), -1;
    if (len > ADDR_LOCAL_MAX)
        return (*err = "local part longer than 64 bytes"), -1;
    if (local[0] == '.' || local[len - 1] == '.')
        return (*err = "local part starts or ends with a dot"), -1;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char) local[i];

        if (c < 0x20 || c == 0x7f)
            return (*err = "control character in address"), -1;
        if (c == ' ')
            return (*err = "space in address"), -1;
        if (c >= 0x80)
            return (*err = "non-ASCII address (SMTPUTF8) not supported"), -1;
        if (!local_char_ok(c))
            return (*err = "invalid character in local part"), -1;
        if (c == '.' && local[i + 1] == '.')
            return (*err = "consecutive dots in local part"), -1;
    }
    return 0;
}

/* check_domain - a host name: labels of [a-z0-9-], at most 63 each. */
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
    size_t i;

    for (i = 0; i < len; i++)
        dst[i] = (char) tolower((unsigned char) src[i]);
    return dst + len;
}

/* unquote_local - "a.b"@ to a.b@; only the forms with a plain equivalent. */
static int unquote_local(const char **local, size_t *len, const char **err)
{
    size_t i;

    if (*len < 2 || (*local)[0] != '"')
        return 0;
    if ((*local)[*len - 1] != '"')
        return (*err = "unbalanced quote in local part"), -1;
    for (i = 1; i + 1 < *len; i++) {
        if ((*local)[i] == '\\' || (*local)[i] == '"')
            return (*err = "escaped quoted local parts are not supported"), -1;
    }
    (*local)++;
    *len -= 2;
    return 0;
}

int addr_normalize(const char *raw, const char *delimiters,
                   char out[ADDR_BUFSIZE], const char **err)
{
    char bare[ADDR_MAX + 4];
    const char *local, *at, *domain, *cut;
    size_t local_len, domain_len, i;
    char *end;

    if (raw == NULL)
        return (*err = "no address"), -1;
    for (i = 0; raw[i] != '\0'; i++) {
        if ((unsigned char) raw[i] < 0x20 || raw[i] == 0x7f)
            return (*err = "control character in address"), -1;
        if (i > ADDR_MAX + 4)
            return (*err = "address longer than 320 bytes"), -1;
    }
    if (addr_strip_brackets(raw, bare, sizeof(bare)) < 0)
        return (*err = (strlen(raw) > ADDR_MAX ? "address longer than 320 bytes"
                        : "unbalanced angle brackets")), -1;
    if (bare[0] == '\0')
        return (*err = "empty address"), -1;
    if (strlen(bare) > ADDR_MAX)
        return (*err = "address longer than 320 bytes"), -1;
    if (strchr(bare, '<') || strchr(bare, '>'))
        return (*err = "unbalanced angle brackets"), -1;
    at = strrchr(bare, '@');
    if (at == NULL)
        return (*err = "missing @domain"), -1;
    local = bare;
    local_len = (size_t) (at - bare);
    domain = at + 1;
    domain_len = strlen(domain);
    if (unquote_local(&local, &local_len, err) < 0)
        return -1;
    if (check_local(local, local_len, err) < 0 || check_domain(domain, domain_len, err) < 0)
        return -1;
    /* The extension starts at the first delimiter, unless that would leave
     * an empty local part (Postfix does the same). */
    for (cut = local + 1; cut < local + local_len; cut++) {
        if (delimiters != NULL && *delimiters != '\0' && strchr(delimiters, *cut))
            break;
    }
    /* "adam.+news": Postfix's mailbox would be "adam.", which is no address
     * and could not be looked up again. No managed user has it: reject. */
    if (cut < local + local_len && cut[-1] == '.')
        return (*err = "subaddress extension leaves a local part ending with a dot"), -1;
    end = lower_copy(out, local, (size_t) (cut - local));
    *end++ = '@';
    end = lower_copy(end, domain, domain_len);
    *end = '\0';
    return 0;
}

int addr_normalize_domain(const char *raw, char out[ADDR_BUFSIZE],
                          const char **err)
{
    const char *domain = raw;
    size_t len;

    if (domain == NULL)
        return (*err = "no domain"), -1;
    if (*domain == '@')
        domain++;
    len = strlen(domain);
    if (strchr(domain, '@'))
        return (*err = "a domain rule is written @domain"), -1;
    if (check_domain(domain, len, err) < 0)
        return -1;
    out[0] = '@';
    *lower_copy(out + 1, domain, len) = '\0';
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
