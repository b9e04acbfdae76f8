/*
 * record.h - the coexistence state record and its versioned text codec.
 *
 * Records are stored as one line of "key=value" words, "v=1" first, so that
 * tdbdump output is readable by an administrator and a later v=2 can be told
 * apart. Decoding is strict: unknown keys, duplicate keys, missing required
 * keys and malformed values are errors, never a silently "unknown" user.
 */
#ifndef COEXIST_RECORD_H
#define COEXIST_RECORD_H

#include <stddef.h>
#include <time.h>

#include "addr.h"

#define RECORD_VERSION 1
#define RECORD_WAVE_MAX 64
#define RECORD_ACTOR_MAX 64
#define RECORD_TEXT_MAX 1024    /* an encoded record never exceeds this */

enum record_kind { RECORD_USER, RECORD_DOMAIN };
enum record_state { STATE_UNMIGRATED, STATE_MIGRATED };
enum record_mode { MODE_BCC, MODE_REWRITE };

struct record {
    enum record_kind kind;
    enum record_state state;
    enum record_mode mode;
    /* user: the legacy alias "adam@pop.example"; domain: "pop.example" */
    char alias[ADDR_BUFSIZE];
    char wave[RECORD_WAVE_MAX + 1];     /* "" when none */
    int reverse;                        /* route mail to the alias back once migrated */
    time_t cutover;                     /* 0 when none */
    time_t changed;                     /* 0 when unknown */
    char actor[RECORD_ACTOR_MAX + 1];   /* "" when unknown */
};

/*
 * record_encode - REC as text into OUT (OUTLEN bytes). Returns the length,
 * or -1 if it does not fit.
 */
int record_encode(const struct record *rec, char *out, size_t outlen);

/*
 * record_decode - parse LEN bytes of TEXT (not NUL-terminated) for a record
 * of KIND. Returns 0, or -1 with a reason in ERR (ERRLEN bytes).
 */
int record_decode(enum record_kind kind, const char *text, size_t len,
                  struct record *rec, char *err, size_t errlen);

/* record_effective_state - migrated if so flagged or if the cutover passed. */
enum record_state record_effective_state(const struct record *rec, time_t now);

/* Names and parsers of the enums; the parsers return 0 or -1. */
const char *record_state_name(enum record_state state);
const char *record_mode_name(enum record_mode mode);
int record_state_parse(const char *text, enum record_state *out);
int record_mode_parse(const char *text, enum record_mode *out);

/* record_wave_valid - a wave is 1..64 of [A-Za-z0-9._-]. */
int record_wave_valid(const char *wave);

#endif
