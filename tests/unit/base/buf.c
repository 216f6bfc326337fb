#include <check.h>
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"

Suite *base_buf_suite(void);

START_TEST(test_buf_append_grows_and_terminates)
{
    ad_buf b;
    ad_buf_init(&b);
    for (int i = 0; i < 1000; i++) ad_buf_puts(&b, "ab");
    ck_assert_uint_eq(b.len, 2000);
    ck_assert_int_eq(b.data[b.len], '\0');
    ad_buf_printf(&b, "%d", 42);
    ck_assert_str_eq(b.data + 2000, "42");
    ad_buf_cleanup(&b);
}
END_TEST

START_TEST(test_buf_json_string_escapes)
{
    ad_buf b;
    ad_buf_init(&b);
    const char in[] = "a\"b\\c\n\x01";
    ad_buf_json_string(&b, in, sizeof(in) - 1);
    ck_assert_str_eq(b.data, "\"a\\\"b\\\\c\\n\\u0001\"");
    size_t n;
    char *s = ad_buf_steal(&b, &n);
    ck_assert_uint_eq(n, strlen(s));
    ck_assert_ptr_null(b.data);
    free(s);
}
END_TEST

/* Bytes that are not UTF-8 become the text \xNN; valid multi-byte
 * characters pass through whole, so the output is always valid JSON. */
START_TEST(test_buf_json_string_escapes_invalid_utf8)
{
    ad_buf b;
    ad_buf_init(&b);
    const char in[] = "/\xc3\xa9t\xe9/\xff\xfe\xe2\x82\xac\xed\xa0\x80";
    ad_buf_json_string(&b, in, sizeof(in) - 1);
    ck_assert_str_eq(b.data, "\"/\xc3\xa9t\\\\xe9/\\\\xff\\\\xfe\xe2\x82\xac\\\\xed\\\\xa0\\\\x80\"");
    cJSON *j = cJSON_Parse(b.data);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(j->valuestring, "/\xc3\xa9t\\xe9/\\xff\\xfe\xe2\x82\xac\\xed\\xa0\\x80");
    cJSON_Delete(j);
    ad_buf_cleanup(&b);
}
END_TEST

Suite *base_buf_suite(void)
{
    Suite *s = suite_create("base_buf");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_buf_append_grows_and_terminates);
    tcase_add_test(tc, test_buf_json_string_escapes);
    tcase_add_test(tc, test_buf_json_string_escapes_invalid_utf8);
    suite_add_tcase(s, tc);
    return s;
}
