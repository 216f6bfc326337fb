/* Tests api/request.c: the error body, response headers, query lookup, methods. */
#include <check.h>
#include <cjson/cJSON.h>
#include <string.h>

#include "api/request.h"

Suite *api_request_suite(void);

/* Parses the response body; fails the test when it is not a JSON object. */
static cJSON *body_json(const ad_response *res)
{
    ck_assert_ptr_nonnull(res->body.data);
    cJSON *j = cJSON_ParseWithLength(res->body.data, res->body.len);
    ck_assert_msg(cJSON_IsObject(j), "body is not a JSON object: %s", res->body.data);
    return j;
}

START_TEST(test_response_error_shape)
{
    ad_request req;
    memset(&req, 0, sizeof(req));
    req.request_id = "req-42";
    ad_response res;
    ad_response_init(&res);
    ad_response_error(&res, &req, 404, "not_found", "no agent with user_id '%s'", "bob");
    ck_assert_int_eq(res.status, 404);
    ck_assert_ptr_null(res.content_type);
    cJSON *j = body_json(&res);
    ck_assert_int_eq(cJSON_GetArraySize(j), 3);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "error")),
                     "no agent with user_id 'bob'");
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "code")), "not_found");
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "request_id")),
                     "req-42");
    cJSON_Delete(j);
    ad_response_cleanup(&res);
}
END_TEST

START_TEST(test_response_error_escapes_message)
{
    ad_response res;
    ad_response_init(&res);
    ad_response_error(&res, NULL, 400, "invalid", "bad \"name\" \\ here\n%s", "<\x01>");
    cJSON *j = body_json(&res);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "error")),
                     "bad \"name\" \\ here\n<\x01>");
    /* No request: the id is present and empty, not missing. */
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "request_id")), "");
    ck_assert_ptr_null(strchr(res.body.data, '\n'));
    cJSON_Delete(j);
    ad_response_cleanup(&res);
}
END_TEST

START_TEST(test_response_error_replaces_earlier_body)
{
    ad_request req;
    memset(&req, 0, sizeof(req));
    req.request_id = "r1";
    ad_response res;
    ad_response_init(&res);
    res.content_type = "text/plain";
    ad_buf_puts(&res.body, "partial output that must go");
    ad_response_error(&res, &req, 500, "internal_error", "boom");
    ck_assert_int_eq(res.status, 500);
    ck_assert_ptr_null(res.content_type);
    ck_assert_str_eq(res.body.data, "{\"error\":\"boom\",\"code\":\"internal_error\",\"request_id\":\"r1\"}");
    ad_response_cleanup(&res);
}
END_TEST

START_TEST(test_response_json_takes_ownership)
{
    ad_response res;
    ad_response_init(&res);
    ck_assert_int_eq(res.status, 200);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "n", 3);
    ad_response_json(&res, 201, o);
    ck_assert_int_eq(res.status, 201);
    ck_assert_str_eq(res.body.data, "{\"n\":3}");
    ad_response_cleanup(&res);
}
END_TEST

START_TEST(test_response_header_replaces_same_name)
{
    ad_response res;
    ad_response_init(&res);
    ad_response_header(&res, "Allow", "GET");
    ad_response_header(&res, "Retry-After", "5");
    ad_response_header(&res, "Allow", "GET, DELETE, OPTIONS");
    ck_assert_uint_eq(res.nheaders, 2);
    ck_assert_str_eq(res.headers[0].name, "Allow");
    ck_assert_str_eq(res.headers[0].value, "GET, DELETE, OPTIONS");
    ck_assert_str_eq(res.headers[1].name, "Retry-After");
    ck_assert_str_eq(res.headers[1].value, "5");

    /* The value is copied: the caller's buffer may change afterwards. */
    char value[] = "abc";
    ad_response_header(&res, "X-Test", value);
    value[0] = 'z';
    ck_assert_str_eq(res.headers[2].value, "abc");
    ad_response_cleanup(&res);
    ck_assert_uint_eq(res.nheaders, 0);
}
END_TEST

START_TEST(test_request_query_lookup)
{
    ad_request req;
    memset(&req, 0, sizeof(req));
    req.query[0] = (ad_kv){"limit", "10"};
    req.query[1] = (ad_kv){"status", "ready"};
    req.query[2] = (ad_kv){"limit", "20"};
    req.nquery = 3;
    ck_assert_str_eq(ad_request_query(&req, "limit"), "10");
    ck_assert_str_eq(ad_request_query(&req, "status"), "ready");
    ck_assert_ptr_null(ad_request_query(&req, "Status"));
    ck_assert_ptr_null(ad_request_query(&req, "lim"));
    req.nquery = 0;
    ck_assert_ptr_null(ad_request_query(&req, "limit"));
}
END_TEST

START_TEST(test_method_names_round_trip)
{
    static const ad_method all[] = {AD_GET, AD_POST, AD_PUT, AD_DELETE, AD_PATCH, AD_OPTIONS, AD_HEAD};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        ck_assert_int_eq(ad_method_from_string(ad_method_name(all[i])), all[i]);
    ck_assert_int_eq(ad_method_from_string("GET"), AD_GET);
    ck_assert_int_eq(ad_method_from_string("DELETE"), AD_DELETE);
    /* Methods are case-sensitive (RFC 9110 9.1). */
    ck_assert_int_eq(ad_method_from_string("get"), 0);
    ck_assert_int_eq(ad_method_from_string("BREW"), 0);
    ck_assert_int_eq(ad_method_from_string(""), 0);
    ck_assert_int_eq(ad_method_from_string("GETX"), 0);
    ck_assert_str_eq(ad_method_name((ad_method)0), "?");
}
END_TEST

Suite *api_request_suite(void)
{
    Suite *s = suite_create("api_request");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_response_error_shape);
    tcase_add_test(tc, test_response_error_escapes_message);
    tcase_add_test(tc, test_response_error_replaces_earlier_body);
    tcase_add_test(tc, test_response_json_takes_ownership);
    tcase_add_test(tc, test_response_header_replaces_same_name);
    tcase_add_test(tc, test_request_query_lookup);
    tcase_add_test(tc, test_method_names_round_trip);
    suite_add_tcase(s, tc);
    return s;
}
