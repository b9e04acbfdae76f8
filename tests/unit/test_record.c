/*
 * test_record.c - unit tests of policy/record.c, the versioned text codec of
 * state records.
 *
 * Covers record_encode (exact text, buffer too small), encode/decode round
 * trips of user and domain records with and without the optional words,
 * strict record_decode (every way a stored value can be malformed is an error
 * naming the cause), record_effective_state around a scheduled cutover, and
 * the enum names, parsers and wave syntax.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "record.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

#define T_CUTOVER 1796407200LL  /* 2026-12-04T18:00:00Z */
#define T_CHANGED 1795600800LL  /* 2026-11-25T10:00:00Z */

/* make_record - a zeroed record with the given fields ("" / 0 for none). */
static struct record make_record(enum record_kind kind, enum record_state st,
                                 enum record_mode mode, const char *alias, const char *wave,
                                 long long cutover, long long changed, const char *actor)
{
    struct record rec;

    memset(&rec, 0, sizeof(rec));
    rec.kind = kind;
    rec.state = st;
    rec.mode = mode;
    snprintf(rec.alias, sizeof(rec.alias), "%s", alias);
    snprintf(rec.wave, sizeof(rec.wave), "%s", wave);
    rec.cutover = (time_t) cutover;
    rec.changed = (time_t) changed;
    snprintf(rec.actor, sizeof(rec.actor), "%s", actor);
    return rec;
}

/* One round-trip case: the record and its exact encoding. */
struct codec_case {
    enum record_kind kind;
    enum record_state state;
    enum record_mode mode;
    const char *alias;
    const char *wave;
    long long cutover;
    long long changed;
    const char *actor;
    const char *text;
};

static const struct codec_case codec_cases[] = {
    {RECORD_USER, STATE_UNMIGRATED, MODE_BCC, "adam@pop.example", "", 0, 0, "",
     "v=1 state=unmigrated mode=bcc alias=adam@pop.example"},
    {RECORD_USER, STATE_MIGRATED, MODE_REWRITE, "adam@pop.example", "", 0, 0, "",
     "v=1 state=migrated mode=rewrite alias=adam@pop.example"},
    {RECORD_USER, STATE_UNMIGRATED, MODE_BCC, "adam@pop.example", "wave-1.a_b", 0, 0, "",
     "v=1 state=unmigrated mode=bcc alias=adam@pop.example wave=wave-1.a_b"},
    {RECORD_USER, STATE_UNMIGRATED, MODE_REWRITE, "adam@pop.example", "", T_CUTOVER, 0, "",
     "v=1 state=unmigrated mode=rewrite alias=adam@pop.example"
     " cutover=2026-12-04T18:00:00Z"},
    {RECORD_USER, STATE_UNMIGRATED, MODE_BCC, "adam@pop.example", "", 0, T_CHANGED, "",
     "v=1 state=unmigrated mode=bcc alias=adam@pop.example changed=2026-11-25T10:00:00Z"},
    {RECORD_USER, STATE_UNMIGRATED, MODE_BCC, "adam@pop.example", "", 0, 0, "root/0",
     "v=1 state=unmigrated mode=bcc alias=adam@pop.example actor=root/0"},
    {RECORD_USER, STATE_MIGRATED, MODE_REWRITE, "adam+legacy@pop.example", "w1", T_CUTOVER,
     T_CHANGED, "alice.admin@corp+x/1000",
     "v=1 state=migrated mode=rewrite alias=adam+legacy@pop.example wave=w1"
     " cutover=2026-12-04T18:00:00Z changed=2026-11-25T10:00:00Z"
     " actor=alice.admin@corp+x/1000"},
    {RECORD_DOMAIN, STATE_UNMIGRATED, MODE_BCC, "pop.example", "", 0, 0, "",
     "v=1 state=unmigrated mode=bcc legacy=pop.example"},
    {RECORD_DOMAIN, STATE_MIGRATED, MODE_REWRITE, "pop.example", "dom", T_CUTOVER, T_CHANGED,
     "root/0",
     "v=1 state=migrated mode=rewrite legacy=pop.example wave=dom"
     " cutover=2026-12-04T18:00:00Z changed=2026-11-25T10:00:00Z actor=root/0"},
};

/* test_encode_exact - every case encodes to its exact text and length. */
static void test_encode_exact(void **state)
{
    char out[RECORD_TEXT_MAX + 1];
    int failed = 0;

    (void) state;
    for (size_t i = 0; i < NELEM(codec_cases); i++) {
        const struct codec_case *c = &codec_cases[i];
        struct record rec = make_record(c->kind, c->state, c->mode, c->alias, c->wave,
                                        c->cutover, c->changed, c->actor);
        int n = record_encode(&rec, out, sizeof(out));

        if (n < 0 || strcmp(out, c->text) != 0 || (size_t) n != strlen(c->text)) {
            print_error("record_encode case %zu: got %d '%s', want '%s'\n", i, n,
                        n < 0 ? "" : out, c->text);
            failed++;
        }
    }
    if (failed)
        fail_msg("%d of %zu encode cases failed", failed, NELEM(codec_cases));
}

/* test_round_trip - decode(encode(rec)) == rec, field for field and bytewise. */
static void test_round_trip(void **state)
{
    char out[RECORD_TEXT_MAX + 1], err[256];
    int failed = 0;

    (void) state;
    for (size_t i = 0; i < NELEM(codec_cases); i++) {
        const struct codec_case *c = &codec_cases[i];
        struct record rec = make_record(c->kind, c->state, c->mode, c->alias, c->wave,
                                        c->cutover, c->changed, c->actor);
        struct record back;
        int n = record_encode(&rec, out, sizeof(out));

        assert_true(n > 0);
        memset(&back, 0xA5, sizeof(back));
        err[0] = '\0';
        if (record_decode(c->kind, out, (size_t) n, &back, err, sizeof(err)) != 0) {
            print_error("case %zu: record_decode('%s') failed: %s\n", i, out, err);
            failed++;
            continue;
        }
        if (back.kind != rec.kind || back.state != rec.state || back.mode != rec.mode
            || strcmp(back.alias, rec.alias) != 0 || strcmp(back.wave, rec.wave) != 0
            || back.cutover != rec.cutover || back.changed != rec.changed
            || strcmp(back.actor, rec.actor) != 0) {
            print_error("case %zu: '%s' decoded to kind=%d state=%d mode=%d alias='%s' "
                        "wave='%s' cutover=%lld changed=%lld actor='%s'\n", i, out,
                        back.kind, back.state, back.mode, back.alias, back.wave,
                        (long long) back.cutover, (long long) back.changed, back.actor);
            failed++;
        } else if (memcmp(&back, &rec, sizeof(rec)) != 0) {
            print_error("case %zu: '%s' decoded equal field by field but not bytewise\n", i,
                        out);
            failed++;
        }
    }
    if (failed)
        fail_msg("%d of %zu round trips failed", failed, NELEM(codec_cases));
}

/* test_reverse_field - reverse=yes is written only when set, read back, for both kinds. */
static void test_reverse_field(void **state)
{
    static const struct {
        enum record_kind kind;
        const char *alias, *text;
    } cases[] = {
        {RECORD_USER, "adam@pop.example",
         "v=1 state=migrated mode=rewrite alias=adam@pop.example reverse=yes wave=w1"},
        {RECORD_DOMAIN, "pop.example",
         "v=1 state=migrated mode=rewrite legacy=pop.example reverse=yes wave=w1"},
    };
    char out[RECORD_TEXT_MAX + 1], err[256];
    struct record rec, back;

    (void) state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        rec = make_record(cases[i].kind, STATE_MIGRATED, MODE_REWRITE, cases[i].alias, "w1",
                          0, 0, "");
        rec.reverse = 1;
        assert_int_equal(record_encode(&rec, out, sizeof(out)), (int) strlen(cases[i].text));
        assert_string_equal(out, cases[i].text);
        assert_int_equal(record_decode(cases[i].kind, out, strlen(out), &back, err,
                                       sizeof(err)), 0);
        assert_int_equal(back.reverse, 1);
        assert_memory_equal(&back, &rec, sizeof(rec));
        /* off: no field at all, so a 0.1 store reads the same */
        rec.reverse = 0;
        assert_true(record_encode(&rec, out, sizeof(out)) > 0);
        assert_null(strstr(out, "reverse"));
    }
}

/* test_decode_accepts - forms the encoder does not write but the contract allows. */
static void test_decode_accepts(void **state)
{
    struct record rec;
    char err[256];
    const char *text;
    const char *padded = "v=1 state=unmigrated mode=bcc alias=adam@pop.exampleXYZ junk";

    (void) state;
    /* Any word order after v=1. */
    text = "v=1 alias=adam@pop.example mode=rewrite wave=w1 state=migrated";
    assert_int_equal(record_decode(RECORD_USER, text, strlen(text), &rec, err, sizeof(err)),
                     0);
    assert_int_equal(rec.kind, RECORD_USER);
    assert_int_equal(rec.state, STATE_MIGRATED);
    assert_int_equal(rec.mode, MODE_REWRITE);
    assert_string_equal(rec.alias, "adam@pop.example");
    assert_string_equal(rec.wave, "w1");
    assert_int_equal(rec.cutover, 0);
    assert_int_equal(rec.changed, 0);
    assert_string_equal(rec.actor, "");

    /* TEXT is LEN bytes, not NUL-terminated: what follows is ignored. */
    assert_int_equal(record_decode(RECORD_USER, padded, strlen(padded) - 8, &rec, err,
                                   sizeof(err)), 0);
    assert_string_equal(rec.alias, "adam@pop.example");

    /* A cutover with an offset is read as the same instant. */
    text = "v=1 state=unmigrated mode=bcc legacy=pop.example cutover=2026-12-04T19:00:00+01:00";
    assert_int_equal(record_decode(RECORD_DOMAIN, text, strlen(text), &rec, err,
                                   sizeof(err)), 0);
    assert_int_equal(rec.kind, RECORD_DOMAIN);
    assert_string_equal(rec.alias, "pop.example");
    assert_int_equal(rec.cutover, T_CUTOVER);
}

/* One rejected text: KIND, TEXT (LEN 0 = strlen) and a keyword of the error. */
struct reject_case {
    enum record_kind kind;
    const char *text;
    size_t len;
    const char *why;
};

#define U RECORD_USER
#define D RECORD_DOMAIN
#define BASE "v=1 state=unmigrated mode=bcc"
static const struct reject_case reject_cases[] = {
    {U, BASE " alias=adam@pop.example color=red", 0, "unknown field 'color'"},
    {U, BASE " alias=adam@pop.example =x", 0, "unknown field ''"},
    {U, BASE " alias=adam@pop.example state=migrated", 0, "duplicate field 'state'"},
    {U, BASE " alias=adam@pop.example alias=adam@pop.example", 0, "duplicate field 'alias'"},
    {U, BASE " alias=adam@pop.example wave=a wave=b", 0, "duplicate field 'wave'"},
    {U, "v=1 v=1 state=unmigrated mode=bcc alias=a@pop.example", 0, "duplicate field 'v'"},
    {U, BASE, 0, "missing field"},
    {U, "v=1 mode=bcc alias=adam@pop.example", 0, "missing field"},
    {U, "v=1 state=unmigrated alias=adam@pop.example", 0, "missing field"},
    {D, BASE, 0, "missing field"},
    {U, "state=unmigrated mode=bcc alias=adam@pop.example", 0, "version"},
    {U, "state=unmigrated v=1 mode=bcc alias=adam@pop.example", 0, "version"},
    {U, "v=2 state=unmigrated mode=bcc alias=adam@pop.example", 0, "version '2'"},
    {U, "v=01 state=unmigrated mode=bcc alias=adam@pop.example", 0, "version"},
    {U, "v=1 state=gone mode=bcc alias=adam@pop.example", 0, "bad state 'gone'"},
    {U, "v=1 state=Migrated mode=bcc alias=adam@pop.example", 0, "bad state"},
    {U, "v=1 state=unmigrated mode=copy alias=adam@pop.example", 0, "bad mode 'copy'"},
    {U, "v=1 state=unmigrated mode=BCC alias=adam@pop.example", 0, "bad mode"},
    {U, BASE " alias=Adam@pop.example", 0, "normal form"},
    {U, BASE " alias=adam@POP.example", 0, "normal form"},
    {U, BASE " alias=<adam@pop.example>", 0, "normal form"},
    {U, BASE " alias=adam", 0, "bad alias"},
    {U, BASE " alias=adam@", 0, "bad alias"},
    {D, BASE " alias=adam@pop.example", 0, "does not belong"},
    {U, BASE " legacy=pop.example", 0, "does not belong"},
    {D, BASE " legacy=@pop.example", 0, "leading @"},
    {D, BASE " legacy=POP.example", 0, "normal form"},
    {D, BASE " legacy=pop..example", 0, "bad legacy"},
    {U, BASE " alias=adam@pop.example wave=", 0, "empty field 'wave'"},
    {U, "v=1 state= mode=bcc alias=adam@pop.example", 0, "empty field 'state'"},
    {U, "v= state=unmigrated mode=bcc alias=adam@pop.example", 0, "empty field 'v'"},
    {U, "v=1 state=unmigrated  mode=bcc alias=adam@pop.example", 0, "key=value"},
    {U, BASE " alias=adam@pop.example ", 0, "key=value"},
    {U, " " BASE " alias=adam@pop.example", 0, "version"},
    {U, BASE " alias=adam@pop.example junk", 0, "key=value"},
    {U, "v=1\tstate=unmigrated mode=bcc alias=adam@pop.example", 0, "version"},
    {U, BASE " alias=adam@pop.example wave=w/1", 0, "bad wave"},
    {U, BASE " alias=adam@pop.example wave=w,1", 0, "bad wave"},
    {U, BASE " alias=adam@pop.example wave="
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0, "bad wave"},
    {U, BASE " alias=adam@pop.example actor=root:0", 0, "bad actor"},
    {U, BASE " alias=adam@pop.example cutover=tomorrow", 0, "bad cutover time"},
    {U, BASE " alias=adam@pop.example cutover=2026-12-04T18:00:00", 0, "zone"},
    {U, BASE " alias=adam@pop.example changed=2027-02-29T00:00:00Z", 0, "bad changed time"},
    /* fuzz (tests/fuzz/corpus/record/regress-*): would re-encode as
     * "1969-12-31T23:00:00Z" / "10000-01-01T00:00:00Z", undecodable */
    {U, BASE " alias=adam@pop.example cutover=1970-01-01T00:00+01:00", 0, "range"},
    {U, BASE " alias=adam@pop.example changed=9999-12-31T23:59:60Z", 0, "range"},
    {U, BASE " alias=adam@pop.example reverse=no", 0, "bad reverse 'no'"},
    {U, BASE " alias=adam@pop.example reverse=1", 0, "bad reverse"},
    {U, BASE " alias=adam@pop.example reverse=yes reverse=yes", 0, "duplicate field 'reverse'"},
    {U, "", 0, "empty record"},
    {U, BASE " alias=adam@pop.example\0 wave=w1", sizeof(BASE " alias=adam@pop.example")
     + 8, "NUL"},
};

static void test_decode_rejects(void **state)
{
    struct record rec;
    char err[256];
    int failed = 0;

    (void) state;
    for (size_t i = 0; i < NELEM(reject_cases); i++) {
        const struct reject_case *c = &reject_cases[i];
        size_t len = c->len ? c->len : strlen(c->text);
        int rc;

        strcpy(err, "(unset)");
        rc = record_decode(c->kind, c->text, len, &rec, err, sizeof(err));
        if (rc != -1) {
            print_error("reject case %zu: record_decode('%s') got rc %d, want -1 (%s)\n", i,
                        c->text, rc, c->why);
            failed++;
        } else if (strstr(err, c->why) == NULL) {
            print_error("reject case %zu: record_decode('%s'): got error '%s', want one "
                        "mentioning '%s'\n", i, c->text, err, c->why);
            failed++;
        }
    }
    if (failed)
        fail_msg("%d of %zu reject cases failed", failed, NELEM(reject_cases));
}

/* test_decode_too_long - a text over RECORD_TEXT_MAX is refused before parsing. */
static void test_decode_too_long(void **state)
{
    char text[RECORD_TEXT_MAX + 64];
    struct record rec;
    char err[256];
    int n;

    (void) state;
    n = snprintf(text, sizeof(text), "v=1 state=unmigrated mode=bcc alias=adam@pop.example");
    memset(text + n, ' ', sizeof(text) - (size_t) n);
    assert_int_equal(record_decode(RECORD_USER, text, RECORD_TEXT_MAX + 1, &rec, err,
                                   sizeof(err)), -1);
    assert_non_null(strstr(err, "longer than 1024"));
    /* The length check is on LEN, so the same text at its real length passes. */
    assert_int_equal(record_decode(RECORD_USER, text, (size_t) n, &rec, err, sizeof(err)),
                     0);
}

/* test_decode_small_errbuf - the reason is truncated, never overrun. */
static void test_decode_small_errbuf(void **state)
{
    const char *text = "v=1 state=unmigrated mode=bcc alias=adam@pop.example color=red";
    char *err = malloc(8);
    struct record rec;

    (void) state;
    assert_non_null(err);
    assert_int_equal(record_decode(RECORD_USER, text, strlen(text), &rec, err, 8), -1);
    assert_string_equal(err, "unknown");
    free(err);
}

/* test_encode_too_small - -1 unless the text and its NUL fit. */
static void test_encode_too_small(void **state)
{
    const struct codec_case *c = &codec_cases[6];
    struct record rec = make_record(c->kind, c->state, c->mode, c->alias, c->wave,
                                    c->cutover, c->changed, c->actor);
    size_t need = strlen(c->text);
    char *out = malloc(need + 1);

    (void) state;
    assert_non_null(out);
    assert_int_equal(record_encode(&rec, out, need + 1), (int) need);
    assert_string_equal(out, c->text);
    assert_int_equal(record_encode(&rec, out, need), -1);
    assert_int_equal(record_encode(&rec, out, 10), -1);
    assert_int_equal(record_encode(&rec, out, 1), -1);
    free(out);
}

/* test_encode_longest - the largest legal record fits RECORD_TEXT_MAX and decodes. */
static void test_encode_longest(void **state)
{
    char alias[ADDR_BUFSIZE], wave[RECORD_WAVE_MAX + 1], actor[RECORD_ACTOR_MAX + 1];
    char out[RECORD_TEXT_MAX + 1], err[256];
    struct record rec, back;
    int n;

    (void) state;
    /* 64-byte local part, 255-byte domain of 63-byte labels. */
    memset(alias, 'a', 64);
    alias[64] = '@';
    memset(alias + 65, 'd', 255);
    alias[65 + 63] = alias[65 + 127] = alias[65 + 191] = '.';
    alias[320] = '\0';
    memset(wave, 'w', RECORD_WAVE_MAX);
    wave[RECORD_WAVE_MAX] = '\0';
    memset(actor, 'r', RECORD_ACTOR_MAX);
    actor[RECORD_ACTOR_MAX] = '\0';
    rec = make_record(RECORD_USER, STATE_UNMIGRATED, MODE_REWRITE, alias, wave,
                      253402300799LL, 253402300799LL, actor);
    n = record_encode(&rec, out, sizeof(out));
    assert_true(n > 0 && n <= RECORD_TEXT_MAX);
    assert_int_equal(record_decode(RECORD_USER, out, (size_t) n, &back, err, sizeof(err)), 0);
    assert_memory_equal(&rec, &back, sizeof(rec));
}

/* One effective-state case. */
struct effective_case {
    enum record_state state;
    long long cutover;
    long long now;
    enum record_state want;
};

static const struct effective_case effective_cases[] = {
    {STATE_UNMIGRATED, 0, T_CUTOVER, STATE_UNMIGRATED},
    {STATE_MIGRATED, 0, T_CUTOVER, STATE_MIGRATED},
    {STATE_UNMIGRATED, T_CUTOVER, T_CUTOVER - 1, STATE_UNMIGRATED},
    {STATE_UNMIGRATED, T_CUTOVER, T_CUTOVER, STATE_MIGRATED},
    {STATE_UNMIGRATED, T_CUTOVER, T_CUTOVER + 1, STATE_MIGRATED},
    {STATE_UNMIGRATED, T_CUTOVER, T_CUTOVER - 86400, STATE_UNMIGRATED},
    {STATE_MIGRATED, T_CUTOVER, T_CUTOVER - 86400, STATE_MIGRATED},
    {STATE_UNMIGRATED, T_CHANGED, T_CUTOVER, STATE_MIGRATED},
};

static void test_effective_state(void **state)
{
    int failed = 0;

    (void) state;
    for (size_t i = 0; i < NELEM(effective_cases); i++) {
        const struct effective_case *c = &effective_cases[i];
        struct record rec = make_record(RECORD_USER, c->state, MODE_BCC, "adam@pop.example",
                                        "", c->cutover, 0, "");
        enum record_state got = record_effective_state(&rec, (time_t) c->now);

        if (got != c->want) {
            print_error("effective case %zu: state=%s cutover=%lld now=%lld: got '%s', "
                        "want '%s'\n", i, record_state_name(c->state), c->cutover, c->now,
                        record_state_name(got), record_state_name(c->want));
            failed++;
        }
    }
    if (failed)
        fail_msg("%d effective-state cases failed", failed);
}

static void test_enum_names(void **state)
{
    enum record_state st = STATE_UNMIGRATED;
    enum record_mode mode = MODE_BCC;

    (void) state;
    assert_string_equal(record_state_name(STATE_UNMIGRATED), "unmigrated");
    assert_string_equal(record_state_name(STATE_MIGRATED), "migrated");
    assert_string_equal(record_mode_name(MODE_BCC), "bcc");
    assert_string_equal(record_mode_name(MODE_REWRITE), "rewrite");
    assert_int_equal(record_state_parse("migrated", &st), 0);
    assert_int_equal(st, STATE_MIGRATED);
    assert_int_equal(record_state_parse("unmigrated", &st), 0);
    assert_int_equal(st, STATE_UNMIGRATED);
    assert_int_equal(record_mode_parse("rewrite", &mode), 0);
    assert_int_equal(mode, MODE_REWRITE);
    assert_int_equal(record_mode_parse("bcc", &mode), 0);
    assert_int_equal(mode, MODE_BCC);
    assert_int_equal(record_state_parse("", &st), -1);
    assert_int_equal(record_state_parse("MIGRATED", &st), -1);
    assert_int_equal(record_state_parse("migrated ", &st), -1);
    assert_int_equal(record_mode_parse("", &mode), -1);
    assert_int_equal(record_mode_parse("Rewrite", &mode), -1);
    assert_int_equal(record_mode_parse("bccx", &mode), -1);
}

/* One wave syntax case. */
struct wave_case {
    const char *wave;
    int valid;
};

static const struct wave_case wave_cases[] = {
    {"w1", 1},
    {"2026-12_a.B", 1},
    {"-", 1},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0},
    {"", 0},
    {"w 1", 0},
    {"w,1", 0},
    {"w/1", 0},
    {"w=1", 0},
    {"w\"1", 0},
    {"w@1", 0},
    {"w\3031", 0},
};

static void test_wave_valid(void **state)
{
    int failed = 0;

    (void) state;
    for (size_t i = 0; i < NELEM(wave_cases); i++) {
        int got = record_wave_valid(wave_cases[i].wave) != 0;

        if (got != wave_cases[i].valid) {
            print_error("record_wave_valid('%s'): got %d, want %d\n", wave_cases[i].wave, got,
                        wave_cases[i].valid);
            failed++;
        }
    }
    if (failed)
        fail_msg("%d wave cases failed", failed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_exact),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_reverse_field),
        cmocka_unit_test(test_decode_accepts),
        cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_decode_too_long),
        cmocka_unit_test(test_decode_small_errbuf),
        cmocka_unit_test(test_encode_too_small),
        cmocka_unit_test(test_encode_longest),
        cmocka_unit_test(test_effective_state),
        cmocka_unit_test(test_enum_names),
        cmocka_unit_test(test_wave_valid),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
