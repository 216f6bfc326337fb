#include <check.h>
#include <stdint.h>

#include "llm/retry.h"

Suite *llm_retry_suite(void);

/* A "random" source that replays a fixed value: max gives the upper bound. */
static uint64_t fixed_rand(void *ud)
{
    return *(uint64_t *)ud;
}

static uint64_t lcg_rand(void *ud)
{
    uint64_t *s = ud;
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 11;
}

static const llm_retry_policy policy = {
    .max_attempts = 4, .base_ms = 250, .cap_ms = 8000, .jitter = LLM_JITTER_FULL};

START_TEST(test_retryable_statuses)
{
    const long yes[] = {429, 500, 503, 504};
    const long no[] = {200, 400, 401, 403, 404, 409, 501, 502};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) ck_assert(llm_retry_status_retryable(yes[i]));
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) ck_assert(!llm_retry_status_retryable(no[i]));
}
END_TEST

START_TEST(test_full_jitter_bounds)
{
    uint64_t seed = 7;
    for (int retry = 1; retry <= 40; retry++) {
        int64_t ceiling = 250;
        for (int i = 1; i < retry && ceiling < 8000; i++) ceiling *= 2;
        if (ceiling > 8000) ceiling = 8000;
        for (int k = 0; k < 200; k++) {
            int64_t d = llm_retry_backoff_ms(&policy, retry, 0, lcg_rand, &seed);
            ck_assert_int_ge(d, 0);
            ck_assert_int_le(d, ceiling);
        }
        /* The largest draw reaches the ceiling exactly: the bound is tight. */
        uint64_t r = (uint64_t)ceiling;
        ck_assert_int_eq(llm_retry_backoff_ms(&policy, retry, 0, fixed_rand, &r), ceiling);
    }
}
END_TEST

START_TEST(test_decorrelated_jitter_bounds)
{
    llm_retry_policy p = policy;
    p.jitter = LLM_JITTER_DECORRELATED;
    uint64_t seed = 11;
    int64_t prev = 0;
    for (int retry = 1; retry <= 30; retry++) {
        int64_t d = llm_retry_backoff_ms(&p, retry, prev, lcg_rand, &seed);
        int64_t hi = (prev > 250 ? prev : 250) * 3;
        ck_assert_int_ge(d, 250);
        ck_assert_int_le(d, hi < 8000 ? hi : 8000);
        prev = d;
    }
}
END_TEST

START_TEST(test_plan_honours_hint_and_attempts)
{
    uint64_t zero = 0;
    /* Backoff would be 0 with this source; the server's 3 s wins. */
    llm_retry_plan pl = llm_retry_plan_next(&policy, 1, 0, 3000, 1000, 31000, fixed_rand, &zero);
    ck_assert(pl.retry);
    ck_assert_int_eq(pl.wait_ms, 3000);
    /* Attempts used up: no retry, but the wait is still the hint. */
    pl = llm_retry_plan_next(&policy, 4, 0, 3000, 1000, 31000, fixed_rand, &zero);
    ck_assert(!pl.retry);
    ck_assert_int_eq(pl.wait_ms, 3000);
}
END_TEST

START_TEST(test_plan_never_waits_past_deadline)
{
    uint64_t zero = 0;
    llm_retry_plan pl = llm_retry_plan_next(&policy, 1, 0, 2000, 10000, 12000, fixed_rand, &zero);
    ck_assert(!pl.retry); /* would wake exactly at the deadline */
    ck_assert_int_eq(pl.wait_ms, 2000);
    pl = llm_retry_plan_next(&policy, 1, 0, 1999, 10000, 12000, fixed_rand, &zero);
    ck_assert(pl.retry);
}
END_TEST

START_TEST(test_parse_retry_after)
{
    ck_assert_int_eq(llm_retry_parse_retry_after("3"), 3000);
    ck_assert_int_eq(llm_retry_parse_retry_after(" 120\r\n"), 120000);
    ck_assert_int_eq(llm_retry_parse_retry_after("0"), 0);
    ck_assert_int_eq(llm_retry_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), -1);
    ck_assert_int_eq(llm_retry_parse_retry_after("-1"), -1);
    ck_assert_int_eq(llm_retry_parse_retry_after("1.5"), -1);
    ck_assert_int_eq(llm_retry_parse_retry_after(""), -1);
    ck_assert_int_eq(llm_retry_parse_retry_after("99999999999999999999999"), 24 * 3600 * 1000LL);
}
END_TEST

START_TEST(test_parse_duration)
{
    ck_assert_int_eq(llm_retry_parse_duration("3s"), 3000);
    ck_assert_int_eq(llm_retry_parse_duration("1.5s"), 1500);
    ck_assert_int_eq(llm_retry_parse_duration("0.250s"), 250);
    ck_assert_int_eq(llm_retry_parse_duration("0.0001s"), 1); /* rounds up */
    ck_assert_int_eq(llm_retry_parse_duration("43.123456789s"), 43124);
    ck_assert_int_eq(llm_retry_parse_duration("3"), -1);
    ck_assert_int_eq(llm_retry_parse_duration("s"), -1);
    ck_assert_int_eq(llm_retry_parse_duration("1.s"), -1);
    ck_assert_int_eq(llm_retry_parse_duration("-2s"), -1);
    ck_assert_int_eq(llm_retry_parse_duration("2sx"), -1);
    ck_assert_int_eq(llm_retry_parse_duration("99999999999999999999s"), 24 * 3600 * 1000LL);
}
END_TEST

START_TEST(test_rate_limit_floor)
{
    ck_assert_int_eq(llm_retry_floor_ms(429, 1), 1000);
    ck_assert_int_eq(llm_retry_floor_ms(429, 2), 2000);
    ck_assert_int_eq(llm_retry_floor_ms(429, 3), 4000);
    ck_assert_int_eq(llm_retry_floor_ms(429, 40), 60000);
    ck_assert_int_eq(llm_retry_floor_ms(503, 1), 0);
    ck_assert_int_eq(llm_retry_floor_ms(500, 3), 0);
}
END_TEST

Suite *llm_retry_suite(void)
{
    Suite *s = suite_create("llm_retry");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_retryable_statuses);
    tcase_add_test(tc, test_full_jitter_bounds);
    tcase_add_test(tc, test_decorrelated_jitter_bounds);
    tcase_add_test(tc, test_plan_honours_hint_and_attempts);
    tcase_add_test(tc, test_plan_never_waits_past_deadline);
    tcase_add_test(tc, test_parse_retry_after);
    tcase_add_test(tc, test_parse_duration);
    tcase_add_test(tc, test_rate_limit_floor);
    suite_add_tcase(s, tc);
    return s;
}
