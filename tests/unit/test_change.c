/*
 * test_change.c - unit tests of the change set (policy/change.c).
 *
 * Covers: what a change refuses before any backend sees it (keys not in
 * normal form, note keys that could name an address, a put whose value
 * does not decode, a delete that expects nothing, a change with no actor),
 * the reverse-index key derived for users and domains, the strings copied
 * (the caller's buffers may change afterwards), and change_order: records
 * by key, notes last in their order, a key named twice refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "change.h"
#include "check.h"


#define USER_A "v=1 state=unmigrated mode=bcc alias=adam@pop.example"
#define USER_M "v=1 state=migrated mode=bcc alias=adam@pop.example"
#define DOMAIN "v=1 state=unmigrated mode=rewrite legacy=pop.example"

static void test_init_needs_actor_and_node(void **state)
{
    struct change ch;
    char err[CHANGE_ERR_MAX];

    (void) state;
    assert_int_equal(change_init(&ch, "", "mx1", err), -1);
    CHECK_CONTAINS(err, "actor and a node");
    change_free(&ch);
    assert_int_equal(change_init(&ch, "root/0", NULL, err), -1);
    change_free(&ch);
    assert_int_equal(change_init(&ch, "root/0", "mx1", err), 0);
    CHECK_STR(ch.actor, "root/0");
    CHECK_STR(ch.node, "mx1");
    assert_int_equal(ch.nops, 0);
    change_free(&ch);
}

static void test_refused_ops(void **state)
{
    static const struct {
        const char *key, *expected, *value, *why;
    } cases[] = {
        {"Adam@corp.example", NULL, USER_A, "not in normal form"},
        {"adam", NULL, USER_A, "bad key"},
        {"!journal/1", NULL, USER_A, "bad key"},
        {"", NULL, USER_A, "needs a key"},
        {"adam@corp.example", NULL, "v=1 state=maybe", "bad record"},
        {"adam@corp.example", NULL, DOMAIN, "bad record"},     /* a domain's value */
        {"@corp.example", NULL, USER_A, "bad record"},         /* a user's value */
        {"adam@corp.example", NULL, NULL, "needs a value"},
    };
    struct change ch;
    char err[CHANGE_ERR_MAX];

    (void) state;
    assert_int_equal(change_init(&ch, "root/0", "mx1", err), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        if (change_put(&ch, cases[i].key, cases[i].expected, cases[i].value, err) != -1)
            fail_msg("put '%s' = '%s': accepted, want refused", cases[i].key,
                     cases[i].value ? cases[i].value : "(null)");
        CHECK_CONTAINS(err, cases[i].why);
    }
    assert_int_equal(change_delete(&ch, "adam@corp.example", NULL, err), -1);
    CHECK_CONTAINS(err, "needs the record it expects");
    assert_int_equal(change_note(&ch, "import", NULL, "x", err), -1);
    assert_int_equal(change_note(&ch, "!adam@corp.example", NULL, "x", err), -1);
    CHECK_CONTAINS(err, "bad note key");
    assert_int_equal(ch.nops, 0);
    change_free(&ch);
}

static void test_ops_copied_with_alias(void **state)
{
    struct change ch;
    char err[CHANGE_ERR_MAX], key[64], value[128];

    (void) state;
    assert_int_equal(change_init(&ch, "root/0", "mx1", err), 0);
    strcpy(key, "adam@corp.example");
    strcpy(value, USER_M);
    assert_int_equal(change_put(&ch, key, USER_A, value, err), 0);
    memset(key, 'x', sizeof(key) - 1);
    memset(value, 'x', sizeof(value) - 1);
    assert_int_equal(change_put(&ch, "@corp.example", NULL, DOMAIN, err), 0);
    assert_int_equal(change_delete(&ch, "eve@corp.example", USER_A, err), 0);
    assert_int_equal(change_note(&ch, "!import", NULL, "import:3-rows", err), 0);
    assert_int_equal(ch.nops, 4);
    CHECK_STR(ch.ops[0].key, "adam@corp.example");
    CHECK_STR(ch.ops[0].old_value, USER_A);
    CHECK_STR(ch.ops[0].new_value, USER_M);
    CHECK_STR(ch.ops[0].alias, "adam@pop.example");
    assert_int_equal(ch.ops[0].kind, CHANGE_OP_PUT);
    assert_null(ch.ops[1].old_value);
    CHECK_STR(ch.ops[1].alias, "@pop.example");
    assert_int_equal(ch.ops[2].kind, CHANGE_OP_DELETE);
    assert_null(ch.ops[2].new_value);
    assert_null(ch.ops[2].alias);
    assert_int_equal(ch.ops[3].kind, CHANGE_OP_NOTE);
    assert_null(ch.ops[3].old_value);
    CHECK_STR(ch.ops[3].new_value, "import:3-rows");
    change_free(&ch);
}

static void test_order(void **state)
{
    static const char *const want[] = {"@a.example", "b@a.example", "c@a.example",
                                       "!note2", "!note1"};
    struct change ch;
    char err[CHANGE_ERR_MAX];
    size_t *order;

    (void) state;
    assert_int_equal(change_init(&ch, "root/0", "mx1", err), 0);
    assert_int_equal(change_note(&ch, "!note2", NULL, "x", err), 0);
    assert_int_equal(change_put(&ch, "c@a.example", NULL, USER_A, err), 0);
    assert_int_equal(change_note(&ch, "!note1", NULL, "y", err), 0);
    assert_int_equal(change_put(&ch, "@a.example", NULL, DOMAIN, err), 0);
    assert_int_equal(change_delete(&ch, "b@a.example", USER_A, err), 0);
    assert_int_equal(change_order(&ch, &order, err), 0);
    for (size_t i = 0; i < ch.nops; i++)
        CHECK_STR(ch.ops[order[i]].key, want[i]);
    free(order);
    /* the same key twice: the result would depend on the order */
    assert_int_equal(change_put(&ch, "b@a.example", USER_A, USER_M, err), 0);
    assert_int_equal(change_order(&ch, &order, err), -1);
    assert_null(order);
    CHECK_CONTAINS(err, "b@a.example: named twice");
    change_free(&ch);
}

static void test_growth(void **state)
{
    struct change ch;
    char err[CHANGE_ERR_MAX], key[64];

    (void) state;
    assert_int_equal(change_init(&ch, "root/0", "mx1", err), 0);
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "u%04d@corp.example", i);
        assert_int_equal(change_put(&ch, key, NULL, USER_A, err), 0);
    }
    assert_int_equal(ch.nops, 1000);
    CHECK_STR(ch.ops[999].key, "u0999@corp.example");
    change_free(&ch);
    assert_int_equal(ch.nops, 0);
    assert_null(ch.ops);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_needs_actor_and_node),
        cmocka_unit_test(test_refused_ops),
        cmocka_unit_test(test_ops_copied_with_alias),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_growth),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
