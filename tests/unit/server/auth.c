/* Tests server/auth.c: reading the bearer credential and the constant-time compare. */
#include <check.h>
#include <string.h>

#include "server/auth.h"

Suite *server_auth_suite(void);

#define KEY "k3y-Secret_value"

START_TEST(test_auth_bearer_reads_the_credential)
{
    static const char *const ok[] = {"Bearer " KEY, "bearer " KEY, "BEARER " KEY};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        const char *token = NULL;
        ad_err e = {0};
        ck_assert_int_eq(auth_bearer(ok[i], &token, &e), 0);
        ck_assert_str_eq(token, KEY);
    }
}
END_TEST

START_TEST(test_auth_rejections)
{
    /* Refused by the header's grammar. */
    static const char *const bad[] = {
        NULL,                     /* missing */
        "",                       /* empty */
        "Basic " KEY,             /* wrong scheme */
        KEY,                      /* no scheme */
        "Bearer" KEY,             /* no separator */
        "Bearer  " KEY,           /* two spaces after the scheme */
        "Bearer \t" KEY,          /* a tab after the space */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ad_err e = {0};
        const char *token = NULL;
        int rc = auth_bearer(bad[i], &token, &e);
        ck_assert_msg(rc == AD_EINVAL, "'%s' was accepted", bad[i] ? bad[i] : "(null)");
        ck_assert_int_eq(e.code, AD_EINVAL);
        ck_assert_msg(e.msg[0] != '\0', "no reason for '%s'", bad[i] ? bad[i] : "(null)");
        /* The message never echoes what was presented. */
        ck_assert_ptr_null(strstr(e.msg, "k3y"));
    }
    /* Well formed, but not the key. */
    static const char *const wrong[] = {
        "Bearer ",                /* no credential */
        "Bearer wrong",           /* wrong key */
        "Bearer k3y-Secret",      /* a prefix of the key */
        "Bearer " KEY "x",        /* the key plus a suffix */
        "Bearer " KEY " ",        /* trailing space */
        "Bearer K3Y-SECRET_VALUE", /* keys are case-sensitive */
    };
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        const char *token = NULL;
        ck_assert_int_eq(auth_bearer(wrong[i], &token, NULL), 0);
        ck_assert_msg(!auth_equal(token, KEY), "'%s' matched the key", wrong[i]);
    }
}
END_TEST

START_TEST(test_auth_messages_say_why)
{
    ad_err e = {0};
    const char *token;
    auth_bearer(NULL, &token, &e);
    ck_assert_ptr_nonnull(strstr(e.msg, "missing"));
    auth_bearer("Basic xyz", &token, &e);
    ck_assert_ptr_nonnull(strstr(e.msg, "Bearer"));
    auth_bearer("Bearer   " KEY, &token, &e);
    ck_assert_ptr_nonnull(strstr(e.msg, "exactly one space"));
    /* A NULL error buffer is allowed. */
    ck_assert_int_eq(auth_bearer("Basic xyz", &token, NULL), AD_EINVAL);
}
END_TEST

START_TEST(test_auth_equal)
{
    ck_assert_int_eq(auth_equal("", ""), 1);
    ck_assert_int_eq(auth_equal("abc", "abc"), 1);
    ck_assert_int_eq(auth_equal("abc", "abd"), 0);
    ck_assert_int_eq(auth_equal("xbc", "abc"), 0);
    ck_assert_int_eq(auth_equal("ab", "abc"), 0);
    ck_assert_int_eq(auth_equal("abcd", "abc"), 0);
    ck_assert_int_eq(auth_equal("", "abc"), 0);
    ck_assert_int_eq(auth_equal("abc", ""), 0);
    ck_assert_int_eq(auth_equal("ABC", "abc"), 0);
}
END_TEST

Suite *server_auth_suite(void)
{
    Suite *s = suite_create("server_auth");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_auth_bearer_reads_the_credential);
    tcase_add_test(tc, test_auth_rejections);
    tcase_add_test(tc, test_auth_messages_say_why);
    tcase_add_test(tc, test_auth_equal);
    suite_add_tcase(s, tc);
    return s;
}
