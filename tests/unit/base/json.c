/* Tests base/json.c: validating field readers and the timestamp format. */
#include <check.h>
#include <cjson/cJSON.h>
#include <string.h>

#include "base/json.h"

Suite *base_json_suite(void);

static cJSON *parse(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    ck_assert_msg(j != NULL, "bad fixture: %s", text);
    return j;
}

START_TEST(test_json_string_present)
{
    cJSON *j = parse("{\"name\": \"  bob \", \"n\": 5}");
    const char *s = (const char *)1;
    ad_err e = {0};
    ck_assert_int_eq(ad_json_string(j, "name", 1, 64, &s, &e), 0);
    ck_assert_str_eq(s, "  bob ");
    /* Exactly the limit is allowed. */
    ck_assert_int_eq(ad_json_string(j, "name", 1, 6, &s, &e), 0);
    cJSON_Delete(j);
}
END_TEST

START_TEST(test_json_string_missing_or_null)
{
    cJSON *j = parse("{\"description\": null}");
    const char *s = (const char *)1;
    ad_err e = {0};
    ck_assert_int_eq(ad_json_string(j, "description", 0, 64, &s, &e), AD_ENOTFOUND);
    ck_assert_ptr_null(s);
    s = (const char *)1;
    ck_assert_int_eq(ad_json_string(j, "base_model", 0, 64, &s, &e), AD_ENOTFOUND);
    ck_assert_ptr_null(s);

    ck_assert_int_eq(ad_json_string(j, "description", 1, 64, &s, &e), AD_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "description"));
    ck_assert_ptr_nonnull(strstr(e.msg, "required"));
    ck_assert_int_eq(ad_json_string(j, "user_id", 1, 64, &s, &e), AD_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "user_id"));
    cJSON_Delete(j);
}
END_TEST

START_TEST(test_json_string_rejections)
{
    cJSON *j = parse("{\"num\": 5, \"arr\": [\"a\"], \"t\": true, \"blank\": \" \\t\\n\\r \","
                     " \"empty\": \"\", \"long\": \"abcdefghijk\"}");
    const char *s;
    ad_err e = {0};
    static const char *const wrong_type[] = {"num", "arr", "t"};
    for (size_t i = 0; i < 3; i++) {
        /* Wrong type is an error even for an optional field. */
        ck_assert_int_eq(ad_json_string(j, wrong_type[i], 0, 64, &s, &e), AD_EINVAL);
        ck_assert_ptr_nonnull(strstr(e.msg, wrong_type[i]));
        ck_assert_ptr_nonnull(strstr(e.msg, "string"));
        ck_assert_ptr_null(s);
    }
    ck_assert_int_eq(ad_json_string(j, "blank", 1, 64, &s, &e), AD_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "blank"));
    ck_assert_ptr_nonnull(strstr(e.msg, "empty"));
    ck_assert_int_eq(ad_json_string(j, "empty", 0, 64, &s, &e), AD_EINVAL);
    ck_assert_int_eq(ad_json_string(j, "long", 1, 10, &s, &e), AD_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "long"));
    ck_assert_ptr_nonnull(strstr(e.msg, "10"));
    ck_assert_ptr_null(s);
    cJSON_Delete(j);
}
END_TEST

START_TEST(test_json_int_accepts_whole_numbers_in_range)
{
    cJSON *j = parse("{\"a\": 1, \"b\": 1000, \"c\": 42.0, \"z\": 0, \"neg\": -7}");
    long long v = 0;
    ad_err e = {0};
    ck_assert_int_eq(ad_json_int(j, "a", 1, 1, 1000, &v, &e), 0);
    ck_assert_int_eq(v, 1);
    ck_assert_int_eq(ad_json_int(j, "b", 1, 1, 1000, &v, &e), 0);
    ck_assert_int_eq(v, 1000);
    ck_assert_int_eq(ad_json_int(j, "c", 1, 1, 1000, &v, &e), 0);
    ck_assert_int_eq(v, 42);
    ck_assert_int_eq(ad_json_int(j, "z", 1, 0, 10, &v, &e), 0);
    ck_assert_int_eq(v, 0);
    ck_assert_int_eq(ad_json_int(j, "neg", 1, -10, 10, &v, &e), 0);
    ck_assert_int_eq(v, -7);
    cJSON_Delete(j);
}
END_TEST

START_TEST(test_json_int_rejections_say_positive_integer)
{
    cJSON *j = parse("{\"zero\": 0, \"neg\": -1, \"frac\": 2.5, \"str\": \"10\", \"nul\": null,"
                     " \"big\": 1001, \"huge\": 1e300, \"t\": true}");
    static const char *const bad[] = {"zero", "neg", "frac", "str", "big", "huge", "t"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        long long v = 12345;
        ad_err e = {0};
        ck_assert_msg(ad_json_int(j, bad[i], 0, 1, 1000, &v, &e) == AD_EINVAL, "%s accepted", bad[i]);
        ck_assert_int_eq(v, 12345);
        /* The exact phrase is part of the API contract (issue tracker). */
        ck_assert_msg(strstr(e.msg, "must be a positive integer between 1 and 1000") != NULL,
                      "message for %s: '%s'", bad[i], e.msg);
        ck_assert_msg(strncmp(e.msg, bad[i], strlen(bad[i])) == 0, "message names the field: %s",
                      e.msg);
    }
    long long v = 0;
    ad_err e = {0};
    /* Missing or null: not found when optional, invalid when required. */
    ck_assert_int_eq(ad_json_int(j, "nul", 0, 1, 1000, &v, &e), AD_ENOTFOUND);
    ck_assert_int_eq(ad_json_int(j, "missing", 0, 1, 1000, &v, &e), AD_ENOTFOUND);
    ck_assert_int_eq(ad_json_int(j, "nul", 1, 1, 1000, &v, &e), AD_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "nul"));
    ck_assert_int_eq(ad_json_int(j, "missing", 1, 1, 1000, &v, &e), AD_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "missing"));
    /* A range starting at zero does not claim "positive". */
    ck_assert_int_eq(ad_json_int(j, "neg", 1, 0, 10, &v, &e), AD_EINVAL);
    ck_assert_ptr_null(strstr(e.msg, "positive"));
    ck_assert_ptr_nonnull(strstr(e.msg, "between 0 and 10"));
    cJSON_Delete(j);
}
END_TEST

START_TEST(test_json_bool)
{
    cJSON *j = parse("{\"t\": true, \"f\": false, \"one\": 1, \"s\": \"true\", \"n\": null}");
    int v = -1;
    ad_err e = {0};
    ck_assert_int_eq(ad_json_bool(j, "t", 1, &v, &e), 0);
    ck_assert_int_eq(v, 1);
    ck_assert_int_eq(ad_json_bool(j, "f", 1, &v, &e), 0);
    ck_assert_int_eq(v, 0);
    v = -1;
    ck_assert_int_eq(ad_json_bool(j, "one", 0, &v, &e), AD_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "one"));
    ck_assert_int_eq(ad_json_bool(j, "s", 0, &v, &e), AD_EINVAL);
    ck_assert_int_eq(v, -1);
    ck_assert_int_eq(ad_json_bool(j, "n", 0, &v, &e), AD_ENOTFOUND);
    ck_assert_int_eq(ad_json_bool(j, "x", 0, &v, &e), AD_ENOTFOUND);
    ck_assert_int_eq(ad_json_bool(j, "x", 1, &v, &e), AD_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "x is required"));
    cJSON_Delete(j);
}
END_TEST

START_TEST(test_json_number)
{
    cJSON *j = parse("{\"a\": 0.5, \"lo\": 0, \"hi\": 1, \"over\": 1.0001, \"s\": \"0.5\", \"n\": null}");
    double v = -1;
    ad_err e = {0};
    ck_assert_int_eq(ad_json_number(j, "a", 1, 0, 1, &v, &e), 0);
    ck_assert_double_eq(v, 0.5);
    ck_assert_int_eq(ad_json_number(j, "lo", 1, 0, 1, &v, &e), 0);
    ck_assert_double_eq(v, 0);
    ck_assert_int_eq(ad_json_number(j, "hi", 1, 0, 1, &v, &e), 0);
    ck_assert_double_eq(v, 1);
    v = -1;
    ck_assert_int_eq(ad_json_number(j, "over", 1, 0, 1, &v, &e), AD_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "over"));
    ck_assert_int_eq(ad_json_number(j, "s", 1, 0, 1, &v, &e), AD_EINVAL);
    ck_assert_double_eq(v, -1);
    ck_assert_int_eq(ad_json_number(j, "n", 0, 0, 1, &v, &e), AD_ENOTFOUND);
    ck_assert_int_eq(ad_json_number(j, "x", 0, 0, 1, &v, &e), AD_ENOTFOUND);
    ck_assert_int_eq(ad_json_number(j, "x", 1, 0, 1, &v, &e), AD_EINVAL);
    cJSON_Delete(j);
}
END_TEST

START_TEST(test_json_add_time_format)
{
    cJSON *o = cJSON_CreateObject();
    ad_json_add_time(o, "t", 1700000000123LL);
    ad_json_add_time(o, "epoch_ms", 1);
    ad_json_add_time(o, "whole", 946684800000LL);
    ad_json_add_time(o, "leap", 951782400999LL); /* 2000-02-29 */
    ad_json_add_time(o, "zero", 0);
    ad_json_add_time(o, "neg", -5);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "t")),
                     "2023-11-14T22:13:20.123Z");
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "epoch_ms")),
                     "1970-01-01T00:00:00.001Z");
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "whole")),
                     "2000-01-01T00:00:00.000Z");
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "leap")),
                     "2000-02-29T00:00:00.999Z");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "zero")));
    ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "neg")));
    cJSON_Delete(o);
}
END_TEST

START_TEST(test_json_add_raw)
{
    cJSON *o = cJSON_CreateObject();
    ad_json_add_raw(o, "ok", "{\"a\":[1,2]}");
    ad_json_add_raw(o, "bad", "{not json");
    ad_json_add_raw(o, "none", NULL);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
                         cJSON_GetObjectItemCaseSensitive(o, "ok"), "a")),
                     2);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "bad")));
    ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "none")));
    cJSON_Delete(o);
}
END_TEST

/* Every string and member name is checked, and the message names the
 * offender by its path, however deep. */
START_TEST(test_json_check_utf8_names_the_path)
{
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"{\"user_id\":\"a\",\"training_data\":\"ok \xff\"}", "training_data is not valid UTF-8 (at byte 3)"},
        {"{\"dataset\":[{\"prompt\":\"p\",\"answer\":\"a\"},{\"prompt\":\"\xc3\"}]}",
         "dataset[1].prompt is not valid UTF-8"},
        {"{\"json_dataset\":{\"training_data\":[{\"answer\":\"\xed\xa0\x80\"}]}}",
         "json_dataset.training_data[0].answer is not valid UTF-8"},
        {"{\"a\":{\"k\xfe\":1}}", "a member name in a is not valid UTF-8"},
        {"{\"\xfe\":1}", "a member name in the body is not valid UTF-8"},
        {"[\"\xc0\xaf\"]", "[0] is not valid UTF-8"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *j = cJSON_Parse(cases[i].json);
        ck_assert_msg(j != NULL, "case %zu does not parse", i);
        ad_err e = {0};
        ck_assert_int_eq(ad_json_check_utf8(j, &e), AD_EINVAL);
        ck_assert_msg(strstr(e.msg, cases[i].want) != NULL, "case %zu: '%s'", i, e.msg);
        cJSON_Delete(j);
    }
    cJSON *ok = cJSON_Parse("{\"t\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\",\"n\":[1,{\"\xc3\xa9\":true}]}");
    ck_assert_int_eq(ad_json_check_utf8(ok, NULL), 0);
    cJSON_Delete(ok);
}
END_TEST

Suite *base_json_suite(void)
{
    Suite *s = suite_create("base_json");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_json_string_present);
    tcase_add_test(tc, test_json_string_missing_or_null);
    tcase_add_test(tc, test_json_string_rejections);
    tcase_add_test(tc, test_json_int_accepts_whole_numbers_in_range);
    tcase_add_test(tc, test_json_int_rejections_say_positive_integer);
    tcase_add_test(tc, test_json_bool);
    tcase_add_test(tc, test_json_number);
    tcase_add_test(tc, test_json_add_time_format);
    tcase_add_test(tc, test_json_add_raw);
    tcase_add_test(tc, test_json_check_utf8_names_the_path);
    suite_add_tcase(s, tc);
    return s;
}
