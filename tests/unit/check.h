/*
 * check.h - the string checks the cmocka tests share, each failing with
 * what it got and what it wanted (Postfix ptest's "got '%s', want '%s'").
 * Include after <cmocka.h> and <string.h>.
 */
#ifndef COEXIST_TEST_CHECK_H
#define COEXIST_TEST_CHECK_H

/* CHECK_STR - GOT is the string WANT. */
#define CHECK_STR(got, want) do { \
        const char *got_ = (got), *want_ = (want); \
        if (got_ == NULL || strcmp(got_, want_) != 0) \
            fail_msg("%s: got '%s', want '%s'", #got, got_ ? got_ : "(null)", want_); \
    } while (0)

/* CHECK_CONTAINS - GOT holds WANT. */
#define CHECK_CONTAINS(got, want) do { \
        const char *got_ = (got), *want_ = (want); \
        if (got_ == NULL || strstr(got_, want_) == NULL) \
            fail_msg("%s: got '%s', want it to contain '%s'", #got, \
                     got_ ? got_ : "(null)", want_); \
    } while (0)

/* CHECK_RC - CALL returns WANT; on a mismatch the fixture's error (fx->err) is shown. */
#define CHECK_RC(call, want) do { \
        int rc_ = (call); \
        if (rc_ != (want)) \
            fail_msg("%s: got %d, want %d (%s)", #call, rc_, (want), fx->err); \
    } while (0)

#endif
