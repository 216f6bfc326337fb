/* Tests server/limits.c: the per-caller window (count down, reset, 429),
 * callers apart, the inference cap, idle cells dropped, and many threads at
 * once (run under ThreadSanitizer by check-threads); the backend on the
 * shared database over a real SQLite file (the same code counts on
 * PostgreSQL): the same decisions as in memory, one budget for two
 * limiters, inferences per limiter, failing open. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>

#include "base/clock.h"
#include "server/limits.h"
#include "tests/unit/storage/fixtures.h"


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


/* One request of a script, and what both backends must answer. */
typedef struct take_step {
    const char *caller;
    int limit;
    int64_t at;           /* ms after T0 */
    int allowed, remaining, reset_s;
} take_step;

static const take_step window_script[] = {
    {"token:1", 3, 0, 1, 2, 60},
    {"token:1", 3, 1000, 1, 1, 59},
    {"token:1", 3, 2000, 1, 0, 58},
    {"token:1", 3, 10500, 0, 0, 50},
    {"admin", 3, 10500, 1, 2, 60},
    {"token:1", 3, 59999, 0, 0, 1},
    {"token:1", 3, LIMITS_WINDOW_MS, 1, 2, 60},
    {"token:1", 10, LIMITS_WINDOW_MS + 1, 1, 8, 60},
    {"admin", 3, LIMITS_WINDOW_MS + 10499, 1, 1, 1},
};

static void run_script(limits *l, const char *name)
{
    for (size_t i = 0; i < sizeof(window_script) / sizeof(window_script[0]); i++) {
        const take_step *t = &window_script[i];
        limits_decision d;
        limits_take(l, t->caller, t->limit, T0 + t->at, &d);
        ck_assert_msg(d.allowed == t->allowed && d.limit == t->limit && d.remaining == t->remaining &&
                          d.reset_s == t->reset_s,
                      "%s, step %zu: allowed %d remaining %d reset %d", name, i, d.allowed, d.remaining,
                      d.reset_s);
    }
    limits_stats st;
    limits_get_stats(l, &st);
    ck_assert_uint_eq(st.rate_limited, 2);
}

/* The RateLimit headers and the 429 come out the same from the shared
 * database as from memory. */
START_TEST(test_limits_storage_decides_as_memory)
{
    limits *m = limits_open_memory();
    run_script(m, "memory");
    limits_close(m);
    storage_fixture f;
    storage_fixture_open(&f);
    limits *l = limits_open_storage();
    run_script(l, "storage");
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM rate_windows", 0), 2);
    limits_close(l);
    storage_fixture_close(&f);
}
END_TEST

/* Two limiters on one database (two replicas) share each caller's budget;
 * each keeps its own inferences in flight. */
START_TEST(test_limits_storage_shared_budget_own_inflight)
{
    storage_fixture f;
    storage_fixture_open(&f);
    limits *a = limits_open_storage(), *b = limits_open_storage();
    limits_decision d;
    for (int i = 0; i < 4; i++) {
        limits_take(i % 2 ? b : a, "token:9", 4, T0 + i, &d);
        ck_assert_int_eq(d.allowed, 1);
        ck_assert_int_eq(d.remaining, 3 - i);
    }
    limits_take(a, "token:9", 4, T0 + 10, &d);
    ck_assert_int_eq(d.allowed, 0);
    limits_take(b, "token:9", 4, T0 + 11, &d);
    ck_assert_int_eq(d.allowed, 0);
    ck_assert_int_eq(limits_inference_enter(a, "token:9", 1), 1);
    ck_assert_int_eq(limits_inference_enter(a, "token:9", 1), 0);
    ck_assert_int_eq(limits_inference_enter(b, "token:9", 1), 1);
    limits_inference_leave(a, "token:9");
    ck_assert_int_eq(limits_inference_enter(a, "token:9", 1), 1);
    limits_inference_leave(a, "token:9");
    limits_inference_leave(b, "token:9");
    limits_stats st;
    limits_get_stats(a, &st);
    ck_assert_uint_eq(st.rate_limited, 1);
    ck_assert_uint_eq(st.inference_capped, 1);
    limits_close(a);
    limits_close(b);
    storage_fixture_close(&f);
}
END_TEST

/* A database that fails the count, or no connection at all, admits the
 * request (a fresh window's headers) rather than refusing it. */
START_TEST(test_limits_storage_fails_open)
{
    storage_fixture f;
    storage_fixture_open(&f);
    limits *l = limits_open_storage();
    limits_decision d;
    limits_take(l, "token:3", 1, T0, &d);
    ck_assert_int_eq(d.allowed, 1);
    limits_take(l, "token:3", 1, T0 + 1, &d);
    ck_assert_int_eq(d.allowed, 0);
    storage_fixture_fail_statement(f.db, "rate_windows", 0);
    limits_take(l, "token:3", 1, T0 + 2, &d);
    ck_assert_int_eq(storage_fixture_fail_statement(f.db, NULL, 0), 1);
    ck_assert_int_eq(d.allowed, 1);
    ck_assert_int_eq(d.remaining, 0);
    ck_assert_int_eq(d.reset_s, 60);
    limits_take(l, "token:3", 1, T0 + 3, &d);
    ck_assert_int_eq(d.allowed, 0);
    storage_fixture_close(&f);
    /* Storage closed: this thread gets no connection. */
    for (int i = 0; i < 3; i++) {
        limits_take(l, "token:3", 1, T0 + 4 + i, &d);
        ck_assert_int_eq(d.allowed, 1);
    }
    limits_stats st;
    limits_get_stats(l, &st);
    ck_assert_uint_eq(st.rate_limited, 2);
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
    tcase_add_test(tc, test_limits_storage_decides_as_memory);
    tcase_add_test(tc, test_limits_storage_shared_budget_own_inflight);
    tcase_add_test(tc, test_limits_storage_fails_open);
    suite_add_tcase(s, tc);
    return s;
}
