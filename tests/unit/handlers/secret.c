/* handlers/secret.c: the token format (prefix, base64url tail, length),
 * parsing that accepts only that shape, SHA-256 and the comparison. */
#include <check.h>
#include <string.h>

#include "handlers/secret.h"

Suite *handlers_secret_suite(void);

START_TEST(test_secret_shape)
{
    char text[SECRET_TEXT_LEN + 1], prefix[TOKEN_PREFIX_LEN + 1], parsed[TOKEN_PREFIX_LEN + 1];
    ad_err e = {0};
    ck_assert_int_eq(secret_mint(text, prefix, &e), 0);
    ck_assert_int_eq(strlen(text), 60);
    ck_assert_int_eq(strncmp(text, "agd_", 4), 0);
    ck_assert_int_eq(strncmp(text + 4, prefix, TOKEN_PREFIX_LEN), 0);
    ck_assert_int_eq(text[16], '_');
    ck_assert_int_eq(strspn(prefix, "abcdefghijklmnopqrstuvwxyz0123456789"), TOKEN_PREFIX_LEN);
    ck_assert_int_eq(strspn(text + 17, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 43);
    ck_assert_int_eq(secret_parse(text, parsed), 0);
    ck_assert_str_eq(parsed, prefix);
}
END_TEST

START_TEST(test_secrets_differ)
{
    char a[SECRET_TEXT_LEN + 1], b[SECRET_TEXT_LEN + 1], pa[TOKEN_PREFIX_LEN + 1], pb[TOKEN_PREFIX_LEN + 1];
    ck_assert_int_eq(secret_mint(a, pa, NULL), 0);
    ck_assert_int_eq(secret_mint(b, pb, NULL), 0);
    ck_assert_str_ne(a, b);
    ck_assert_str_ne(pa, pb);
    ck_assert_str_ne(a + 17, b + 17);
}
END_TEST

START_TEST(test_secret_parse_refuses_other_shapes)
{
    static const char *const bad[] = {
        "",
        "agd_",
        "admin-key",
        "agd_aaaaaaaaaaaa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",   /* 42 tail characters */
        "agd_aaaaaaaaaaaa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* 44 */
        "agd_Aaaaaaaaaaaa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  /* upper case in the prefix */
        "agd_aaaaaaaaaaaa-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  /* wrong separator */
        "agx_aaaaaaaaaaaa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "agd_aaaaaaaaaaaa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",  /* padding */
        "agd_aaaaaaaaaaaa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",  /* standard base64 */
    };
    char prefix[TOKEN_PREFIX_LEN + 1];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(secret_parse(bad[i], prefix) < 0, "accepted '%s'", bad[i]);
    ck_assert_int_eq(secret_parse("agd_a1b2c3d4e5f6_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-_", prefix), 0);
    ck_assert_str_eq(prefix, "a1b2c3d4e5f6");
}
END_TEST

START_TEST(test_secret_hash)
{
    /* SHA-256("abc"), FIPS 180-2 appendix B.1. */
    static const unsigned char abc[TOKEN_HASH_LEN] = {
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
        0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    unsigned char h[TOKEN_HASH_LEN], g[TOKEN_HASH_LEN];
    secret_hash("abc", h);
    ck_assert(memcmp(h, abc, TOKEN_HASH_LEN) == 0);
    ck_assert(secret_hash_equal(h, abc));
    secret_hash("abd", g);
    ck_assert(!secret_hash_equal(h, g));
}
END_TEST

Suite *handlers_secret_suite(void)
{
    Suite *s = suite_create("handlers_secret");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_secret_shape);
    tcase_add_test(tc, test_secrets_differ);
    tcase_add_test(tc, test_secret_parse_refuses_other_shapes);
    tcase_add_test(tc, test_secret_hash);
    suite_add_tcase(s, tc);
    return s;
}
