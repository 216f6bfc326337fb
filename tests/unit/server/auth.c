/* Tests server/auth.c: the bearer-key check and the constant-time compare. */
#include <check.h>
#include <string.h>

#include "server/auth.h"

Suite *server_auth_suite(void);

#define KEY "k3y-Secret_value"

static char auth_key[] = KEY;

/* A configuration with the API key set (`with_key`) or unset. */
static ad_config auth_config(int with_key)
{
    ad_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.api_key = with_key ? auth_key : NULL;
    return cfg;
}

START_TEST(test_auth_key_unset_lets_everything_pass)
{
    ad_config cfg = auth_config(0);
    ad_err e = {0};
    ck_assert_int_eq(auth_check(&cfg, "/api/v1/config", NULL, &e), 0);
    ck_assert_int_eq(auth_check(&cfg, "/api/v1/agents", "", &e), 0);
    ck_assert_int_eq(auth_check(&cfg, "/api/v1/agents", "Basic abc", &e), 0);
    ck_assert_int_eq(auth_check(&cfg, "/health", NULL, &e), 0);
}
END_TEST

START_TEST(test_auth_health_stays_open)
{
    ad_config cfg = auth_config(1);
    ad_err e = {0};
    ck_assert_int_eq(auth_check(&cfg, "/health", NULL, &e), 0);
    ck_assert_int_eq(auth_check(&cfg, "/health", "Bearer wrong", &e), 0);
}
END_TEST

START_TEST(test_auth_correct_key_passes)
{
    ad_config cfg = auth_config(1);
    ad_err e = {0};
    ck_assert_int_eq(auth_check(&cfg, "/api/v1/config", "Bearer " KEY, &e), 0);
    ck_assert_int_eq(auth_check(&cfg, "/api/v1/agents/x/status", "bearer " KEY, &e), 0);
    ck_assert_int_eq(auth_check(&cfg, "/api/v1/config", "BEARER " KEY, &e), 0);
}
END_TEST

START_TEST(test_auth_rejections)
{
    static const char *const bad[] = {
        NULL,                     /* missing */
        "",                       /* empty */
        "Basic " KEY,             /* wrong scheme */
        KEY,                      /* no scheme */
        "Bearer" KEY,             /* no separator */
        "Bearer ",                /* no token */
        "Bearer wrong",           /* wrong key */
        "Bearer k3y-Secret",      /* a prefix of the key */
        "Bearer " KEY "x",        /* the key plus a suffix */
        "Bearer " KEY " ",        /* trailing space */
        "Bearer  " KEY,           /* two spaces after the scheme */
        "Bearer \t" KEY,          /* a tab after the space */
        "Bearer K3Y-SECRET_VALUE", /* keys are case-sensitive */
    };
    ad_config cfg = auth_config(1);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ad_err e = {0};
        int rc = auth_check(&cfg, "/api/v1/config", bad[i], &e);
        ck_assert_msg(rc == AD_EINVAL, "'%s' was accepted", bad[i] ? bad[i] : "(null)");
        ck_assert_int_eq(e.code, AD_EINVAL);
        ck_assert_msg(e.msg[0] != '\0', "no reason for '%s'", bad[i] ? bad[i] : "(null)");
        /* The message never echoes the key or what was presented. */
        ck_assert_ptr_null(strstr(e.msg, "k3y"));
        ck_assert_ptr_null(strstr(e.msg, "wrong"));
    }
}
END_TEST

START_TEST(test_auth_messages_say_why)
{
    ad_config cfg = auth_config(1);
    ad_err e = {0};
    auth_check(&cfg, "/api/v1/config", NULL, &e);
    ck_assert_ptr_nonnull(strstr(e.msg, "missing"));
    auth_check(&cfg, "/api/v1/config", "Basic xyz", &e);
    ck_assert_ptr_nonnull(strstr(e.msg, "Bearer"));
    auth_check(&cfg, "/api/v1/config", "Bearer nope", &e);
    ck_assert_ptr_nonnull(strstr(e.msg, "invalid"));
    auth_check(&cfg, "/api/v1/config", "Bearer   " KEY, &e);
    ck_assert_ptr_nonnull(strstr(e.msg, "exactly one space"));
    /* A NULL error buffer is allowed. */
    ck_assert_int_eq(auth_check(&cfg, "/api/v1/config", "Bearer nope", NULL), AD_EINVAL);
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
    tcase_add_test(tc, test_auth_key_unset_lets_everything_pass);
    tcase_add_test(tc, test_auth_health_stays_open);
    tcase_add_test(tc, test_auth_correct_key_passes);
    tcase_add_test(tc, test_auth_rejections);
    tcase_add_test(tc, test_auth_messages_say_why);
    tcase_add_test(tc, test_auth_equal);
    suite_add_tcase(s, tc);
    return s;
}
