/* Tests server/limits.c: the per-caller window (count down, reset, 429),
 * callers apart, the inference cap, idle cells dropped, and many threads at
 * once (run under ThreadSanitizer by check-threads). */
#include <check.h>
#include <pthread.h>
#include <stdio.h>

#include "base/clock.h"
#include "server/limits.h"

Suite *server_limits_suite(void);

#define T0 1700000000000LL

START_TEST(test_limits_window_counts_down_then_refuses)
{
    limits *l = limits_open_memory();
    limits_decision d;
    for (int i = 0; i < 3; i++) {
        limits_take(l, "token:1", 3, T0 + i * 1000, &d);
        ck_assert_int_eq(d.allowed, 1);
        ck_assert_int_eq(d.limit, 3);
        ck_assert_int_eq(d.remaining, 2 - i);
        ck_assert_int_eq(d.reset_s, 60 - i);
    }
    limits_take(l, "token:1", 3, T0 + 10500, &d);
    ck_assert_int_eq(d.allowed, 0);
    ck_assert_int_eq(d.remaining, 0);
    ck_assert_int_eq(d.reset_s, 50); /* 49.5 s left, rounded up */
    limits_stats st;
    limits_get_stats(l, &st);
    ck_assert_uint_eq(st.rate_limited, 1);
    /* Another caller has a bucket of its own. */
    limits_take(l, "admin", 3, T0 + 10500, &d);
    ck_assert_int_eq(d.allowed, 1);
    ck_assert_int_eq(d.remaining, 2);
    /* The window ends: a full budget again, counted from this request. */
    limits_take(l, "token:1", 3, T0 + LIMITS_WINDOW_MS, &d);
    ck_assert_int_eq(d.allowed, 1);
    ck_assert_int_eq(d.remaining, 2);
    ck_assert_int_eq(d.reset_s, 60);
    /* A larger limit (a token's own) applies at once to the same window. */
    limits_take(l, "token:1", 10, T0 + LIMITS_WINDOW_MS + 1, &d);
    ck_assert_int_eq(d.allowed, 1);
    ck_assert_int_eq(d.remaining, 8);
    limits_close(l);
}
END_TEST

/* The wall clock stepped back (NTP, an operator): the window restarts instead
 * of refusing the caller until the clock is back where it was. */
START_TEST(test_limits_clock_stepped_back)
{
    limits *l = limits_open_memory();
    limits_decision d;
    for (int i = 0; i < 3; i++) limits_take(l, "token:1", 3, T0, &d);
    limits_take(l, "token:1", 3, T0 + 1000, &d);
    ck_assert_int_eq(d.allowed, 0);
    limits_take(l, "token:1", 3, T0 - 3600 * 1000LL, &d);
    ck_assert_int_eq(d.allowed, 1);
    ck_assert_int_eq(d.remaining, 2);
    ck_assert_int_eq(d.reset_s, 60);
    limits_close(l);
}
END_TEST

START_TEST(test_limits_inference_cap)
{
    limits *l = limits_open_memory();
    ck_assert_int_eq(limits_inference_enter(l, "token:7", 2), 1);
    ck_assert_int_eq(limits_inference_enter(l, "token:7", 2), 1);
    ck_assert_int_eq(limits_inference_enter(l, "token:7", 2), 0);
    ck_assert_int_eq(limits_inference_enter(l, "token:8", 2), 1);
    limits_inference_leave(l, "token:7");
    ck_assert_int_eq(limits_inference_enter(l, "token:7", 2), 1);
    limits_stats st;
    limits_get_stats(l, &st);
    ck_assert_uint_eq(st.inference_capped, 1);
    ck_assert_uint_eq(st.rate_limited, 0);
    limits_inference_leave(l, "token:7");
    limits_inference_leave(l, "token:7");
    limits_inference_leave(l, "token:8");
    limits_close(l);
}
END_TEST

/* Callers not seen for a window go as the table grows; one with an
 * inference in flight stays however old its window. */
START_TEST(test_limits_idle_callers_dropped)
{
    limits *l = limits_open_memory();
    limits_decision d;
    int64_t now = ad_clock_now_ms();
    ck_assert_int_eq(limits_inference_enter(l, "token:busy", 5), 1);
    char name[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "token:%d", i);
        limits_take(l, name, 100, now - 2 * LIMITS_WINDOW_MS, &d);
    }
    ck_assert_uint_ge(limits_memory_cells(l), 5000);
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "token:new%d", i);
        limits_take(l, name, 100, now, &d);
    }
    /* Every stripe swept its stale cells at least once while doubling. */
    ck_assert_uint_lt(limits_memory_cells(l), 9000);
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "token:again%d", i);
        limits_take(l, name, 100, now + 2 * LIMITS_WINDOW_MS, &d);
    }
    ck_assert_uint_lt(limits_memory_cells(l), 9000);
    /* The busy caller kept its cell: its slot is still taken. */
    ck_assert_int_eq(limits_inference_enter(l, "token:busy", 1), 0);
    limits_inference_leave(l, "token:busy");
    limits_close(l);
}
END_TEST

#define RACE_THREADS 8
#define RACE_ROUNDS 2000

typedef struct race_arg {
    limits *l;
    int id;
    int allowed;
} race_arg;

static void *race_main(void *p)
{
    race_arg *a = p;
    char own[32];
    snprintf(own, sizeof(own), "token:%d", a->id);
    limits_decision d;
    for (int i = 0; i < RACE_ROUNDS; i++) {
        limits_take(a->l, "token:shared", 1000, T0, &d);
        a->allowed += d.allowed;
        limits_take(a->l, own, RACE_ROUNDS, T0, &d);
        ck_assert_int_eq(d.allowed, 1);
        if (limits_inference_enter(a->l, "token:shared", RACE_THREADS)) limits_inference_leave(a->l, "token:shared");
        else ck_abort_msg("a slot was refused with no more callers than the cap");
    }
    return NULL;
}

START_TEST(test_limits_concurrent_callers)
{
    limits *l = limits_open_memory();
    pthread_t t[RACE_THREADS];
    race_arg args[RACE_THREADS];
    for (int i = 0; i < RACE_THREADS; i++) {
        args[i] = (race_arg){l, i, 0};
        ck_assert_int_eq(pthread_create(&t[i], NULL, race_main, &args[i]), 0);
    }
    int allowed = 0;
    for (int i = 0; i < RACE_THREADS; i++) {
        pthread_join(t[i], NULL);
        allowed += args[i].allowed;
    }
    /* Exactly the limit got through the shared bucket, no more, no less. */
    ck_assert_int_eq(allowed, 1000);
    limits_stats st;
    limits_get_stats(l, &st);
    ck_assert_uint_eq(st.rate_limited, RACE_THREADS * RACE_ROUNDS - 1000);
    ck_assert_int_eq(limits_inference_enter(l, "token:shared", RACE_THREADS), 1);
    limits_inference_leave(l, "token:shared");
    limits_close(l);
}
END_TEST

Suite *server_limits_suite(void)
{
    Suite *s = suite_create("server_limits");
    TCase *tc = tcase_create("limits");
    tcase_add_test(tc, test_limits_window_counts_down_then_refuses);
    tcase_add_test(tc, test_limits_clock_stepped_back);
    tcase_add_test(tc, test_limits_inference_cap);
    tcase_add_test(tc, test_limits_idle_callers_dropped);
    tcase_add_test(tc, test_limits_concurrent_callers);
    suite_add_tcase(s, tc);
    return s;
}
