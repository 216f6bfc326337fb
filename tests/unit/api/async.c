/* Tests api/async.c: a deferred request's calls reach the ops its owner installed. */
#include <check.h>
#include <stddef.h>
#include <string.h>

#include "api/async.h"

Suite *api_async_suite(void);

/* An owner of deferred requests standing in for the server: it records what
 * the handler asked for and takes the response, as the server does. */
typedef struct recorder {
    ad_async async;
    void (*hangup_fn)(void *);
    void *hangup_ud;
    int completions;
    ad_response delivered;
} recorder;

static recorder *recorder_of(ad_async *a)
{
    return (recorder *)((char *)a - offsetof(recorder, async));
}

static void recorder_on_hangup(ad_async *a, void (*fn)(void *ud), void *ud)
{
    recorder *r = recorder_of(a);
    r->hangup_fn = fn;
    r->hangup_ud = ud;
}

static void recorder_complete(ad_async *a, ad_response *res)
{
    recorder *r = recorder_of(a);
    r->completions++;
    r->delivered = *res;
    ad_response_init(res);
}

static const ad_async_ops recorder_ops = {recorder_on_hangup, recorder_complete};

static void note_hangup(void *ud)
{
    (*(int *)ud)++;
}

START_TEST(test_on_hangup_reaches_owner)
{
    recorder r;
    memset(&r, 0, sizeof(r));
    r.async.ops = &recorder_ops;
    int hangups = 0;
    ad_async_on_hangup(&r.async, note_hangup, &hangups);
    ck_assert_ptr_eq(r.hangup_ud, &hangups);
    r.hangup_fn(r.hangup_ud);
    ck_assert_int_eq(hangups, 1);
    ad_async_on_hangup(&r.async, NULL, NULL);
    ck_assert_ptr_null(r.hangup_fn);
    ck_assert_int_eq(r.completions, 0);
}
END_TEST

START_TEST(test_complete_moves_response_to_owner)
{
    recorder r;
    memset(&r, 0, sizeof(r));
    r.async.ops = &recorder_ops;
    ad_response res;
    ad_response_init(&res);
    ad_request req;
    memset(&req, 0, sizeof(req));
    req.request_id = "r7";
    req.async = &r.async;
    ad_response_error(&res, &req, 504, "upstream_timeout", "late");
    ad_response_header(&res, "Retry-After", "3");
    ad_async_complete(req.async, &res);
    ck_assert_int_eq(r.completions, 1);
    ck_assert_int_eq(r.delivered.status, 504);
    ck_assert_str_eq(r.delivered.body.data,
                     "{\"error\":\"late\",\"code\":\"upstream_timeout\",\"request_id\":\"r7\"}");
    ck_assert_uint_eq(r.delivered.nheaders, 1);
    /* The handler's struct is left empty: cleaning it up frees nothing twice. */
    ck_assert_uint_eq(res.nheaders, 0);
    ck_assert_uint_eq(res.body.len, 0);
    ad_response_cleanup(&res);
    ad_response_cleanup(&r.delivered);
}
END_TEST

Suite *api_async_suite(void)
{
    Suite *s = suite_create("api_async");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_on_hangup_reaches_owner);
    tcase_add_test(tc, test_complete_moves_response_to_owner);
    suite_add_tcase(s, tc);
    return s;
}
