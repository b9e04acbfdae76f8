/*
 * record.c - the versioned text codec of state records (see record.h).
 *
 * Text: "v=1 state=unmigrated mode=bcc alias=adam@pop.example wave=w1
 * cutover=2026-12-04T18:00:00Z changed=2026-11-25T10:00:00Z actor=root/0",
 * words separated by one space, optional words omitted. A domain record
 * carries "legacy=pop.example" instead of "alias=". "reverse=yes" (reverse
 * routing once migrated, DESIGN section 9) is written only when set: a
 * 0.1 reader refuses it as an unknown field, loudly, rather than misread
 * it, so the version stays 1. The decoder accepts
 * only what the encoder writes (modulo word order), so a corrupted or
 * hand-edited record is reported instead of half-understood.
 */
#include <stdio.h>
#include <string.h>

#include "record.h"
#include "timefmt.h"

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

static const char *const state_names[] = {"unmigrated", "migrated"};
static const char *const mode_names[] = {"bcc", "rewrite"};

const char *record_state_name(enum record_state state)
{
    return state_names[state];
}

const char *record_mode_name(enum record_mode mode)
{
    return mode_names[mode];
}

int record_state_parse(const char *text, enum record_state *out)
{
    for (size_t i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++)
        if (strcmp(text, state_names[i]) == 0)
            return (*out = (enum record_state) i), 0;
    return -1;
}

int record_mode_parse(const char *text, enum record_mode *out)
{
    for (size_t i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++)
        if (strcmp(text, mode_names[i]) == 0)
            return (*out = (enum record_mode) i), 0;
    return -1;
}

/* token_valid - 1..MAX of [A-Za-z0-9._-] plus EXTRA. */
static int token_valid(const char *s, size_t max, const char *extra)
{
    size_t n = strlen(s);

    if (n == 0 || n > max)
        return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char) *s;

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || strchr("._-", c) || (extra && strchr(extra, c))))
            return 0;
    }
    return 1;
}

int record_wave_valid(const char *wave)
{
    return token_valid(wave, RECORD_WAVE_MAX, NULL);
}

enum record_state record_effective_state(const struct record *rec, time_t now)
{
    if (rec->state == STATE_MIGRATED || (rec->cutover != 0 && now >= rec->cutover))
        return STATE_MIGRATED;
    return STATE_UNMIGRATED;
}

int record_encode(const struct record *rec, char *out, size_t outlen)
{
    char cutover[TIMEFMT_BUFSIZE], changed[TIMEFMT_BUFSIZE];
    int n;

    timefmt_format(rec->cutover, cutover);
    timefmt_format(rec->changed, changed);
    n = snprintf(out, outlen, "v=%d state=%s mode=%s %s=%s%s%s%s%s%s%s%s%s%s",
                 RECORD_VERSION, record_state_name(rec->state),
                 record_mode_name(rec->mode),
                 rec->kind == RECORD_DOMAIN ? "legacy" : "alias", rec->alias,
                 rec->reverse ? " reverse=yes" : "",
                 rec->wave[0] ? " wave=" : "", rec->wave,
                 rec->cutover ? " cutover=" : "", rec->cutover ? cutover : "",
                 rec->changed ? " changed=" : "", rec->changed ? changed : "",
                 rec->actor[0] ? " actor=" : "", rec->actor);
    if (n < 0 || (size_t) n >= outlen)
        return -1;
    return n;
}

/* decode_alias - the alias (user) or legacy domain (domain), normalized. */
static int decode_alias(enum record_kind kind, const char *value, struct record *rec,
                        char *err, size_t errlen)
{
    char norm[ADDR_BUFSIZE];
    const char *why;

    if (kind == RECORD_USER) {
        if (addr_normalize(value, norm, &why) < 0)
            FAIL("bad alias '%s': %s", value, why);
        if (strcmp(norm, value) != 0)
            FAIL("alias '%s' is not in normal form", value);
    } else {
        if (addr_normalize_domain(value, norm, &why) < 0 || value[0] == '@')
            FAIL("bad legacy domain '%s': %s", value, value[0] == '@' ? "leading @" : why);
        if (strcmp(norm + 1, value) != 0)
            FAIL("legacy domain '%s' is not in normal form", value);
    }
    strcpy(rec->alias, value);
    return 0;
}

/* decode_word - one key=value word into REC; SEEN tracks duplicates. */
static int decode_word(enum record_kind kind, const char *key, const char *value,
                       struct record *rec, unsigned *seen, char *err, size_t errlen)
{
    static const char *const keys[] = {"v", "state", "mode", "alias", "legacy",
                                       "wave", "cutover", "changed", "actor", "reverse"};
    const char *why;
    size_t k;

    for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
        if (strcmp(key, keys[k]) == 0)
            break;
    if (k == sizeof(keys) / sizeof(keys[0]))
        FAIL("unknown field '%s'", key);
    if (*seen & (1u << k))
        FAIL("duplicate field '%s'", key);
    *seen |= 1u << k;
    if (*value == '\0')
        FAIL("empty field '%s'", key);
    switch (k) {
    case 0:
        if (strcmp(value, "1") != 0)
            FAIL("unsupported record version '%s'", value);
        return 0;
    case 1:
        if (record_state_parse(value, &rec->state) < 0)
            FAIL("bad state '%s'", value);
        return 0;
    case 2:
        if (record_mode_parse(value, &rec->mode) < 0)
            FAIL("bad mode '%s'", value);
        return 0;
    case 3:
    case 4:
        if ((k == 3) != (kind == RECORD_USER))
            FAIL("field '%s' does not belong in a %s record", key,
                 kind == RECORD_USER ? "user" : "domain");
        return decode_alias(kind, value, rec, err, errlen);
    case 5:
        if (!record_wave_valid(value))
            FAIL("bad wave '%s'", value);
        strcpy(rec->wave, value);
        return 0;
    case 6:
    case 7:
        if (timefmt_parse(value, k == 6 ? &rec->cutover : &rec->changed, &why) < 0)
            FAIL("bad %s time '%s': %s", key, value, why);
        return 0;
    case 8:
        if (!token_valid(value, RECORD_ACTOR_MAX, "/@+"))
            FAIL("bad actor '%s'", value);
        strcpy(rec->actor, value);
        return 0;
    default:
        /* Only "yes" is ever written: "no" is the field's absence. */
        if (strcmp(value, "yes") != 0)
            FAIL("bad reverse '%s' (only reverse=yes is written)", value);
        rec->reverse = 1;
        return 0;
    }
}

int record_decode(enum record_kind kind, const char *text, size_t len,
                  struct record *rec, char *err, size_t errlen)
{
    char buf[RECORD_TEXT_MAX + 1];
    char *word, *next;
    unsigned seen = 0;

    memset(rec, 0, sizeof(*rec));
    rec->kind = kind;
    if (len == 0)
        FAIL("empty record");
    if (len > RECORD_TEXT_MAX)
        FAIL("record longer than %d bytes", RECORD_TEXT_MAX);
    if (memchr(text, '\0', len))
        FAIL("NUL byte in record");
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (strncmp(buf, "v=", 2) != 0)
        FAIL("record does not start with a version");
    for (word = buf; word != NULL; word = next) {
        char *eq;

        next = strchr(word, ' ');
        if (next)
            *next++ = '\0';
        eq = strchr(word, '=');
        if (eq == NULL)
            FAIL("word '%s' is not key=value", word);
        *eq = '\0';
        if (decode_word(kind, word, eq + 1, rec, &seen, err, errlen) < 0)
            return -1;
    }
    if ((seen & 0x7) != 0x7 || !(seen & (kind == RECORD_USER ? 0x8 : 0x10)))
        FAIL("missing field (v, state, mode and %s are required)",
             kind == RECORD_USER ? "alias" : "legacy");
    return 0;
}
