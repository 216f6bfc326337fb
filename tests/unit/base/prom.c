#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/prom.h"

Suite *base_prom_suite(void);

/* More threads than shards: some share a shard (and its cache lines), so
 * only atomic adds keep the sums exact. */
#define THREADS (2 * PROM_SHARDS + 1)
#define ADDS 250000

static const char *const l_kind[] = {"kind"};

typedef struct adder {
    prom_family *counter;
    prom_family *histogram;
    pthread_barrier_t *go;
} adder;

static void *adder_run(void *arg)
{
    adder *a = arg;
    /* All at once, so that threads sharing a shard overlap. */
    pthread_barrier_wait(a->go);
    for (int i = 0; i < ADDS; i++) {
        prom_counter_add(a->counter, (size_t)(i & 1), 1);
        if (i % 100 == 0) prom_histogram_observe_ns(a->histogram, 0, 1000);
    }
    return NULL;
}

/* Threads adding at once lose nothing, those that share a shard included:
 * the sums are exact. */
START_TEST(test_prom_exact_sums_from_threads)
{
    static const double bounds[] = {0.001};
    prom_family c, h;
    prom_family_init(&c, PROM_COUNTER, "t_total", "t", l_kind, 1, 2, NULL, 0);
    prom_family_init(&h, PROM_HISTOGRAM, "t_seconds", "t", NULL, 0, 1, bounds, 1);
    prom_set_enabled(1);
    pthread_t th[THREADS];
    adder a[THREADS];
    pthread_barrier_t go;
    ck_assert_int_eq(pthread_barrier_init(&go, NULL, THREADS), 0);
    for (int i = 0; i < THREADS; i++) {
        a[i] = (adder){&c, &h, &go};
        ck_assert_int_eq(pthread_create(&th[i], NULL, adder_run, &a[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);
    ck_assert_uint_eq(prom_counter_value(&c, 0), (uint64_t)THREADS * ADDS / 2);
    ck_assert_uint_eq(prom_counter_value(&c, 1), (uint64_t)THREADS * ADDS / 2);
    uint64_t count, sum;
    prom_histogram_value(&h, 0, &count, &sum);
    ck_assert_uint_eq(count, (uint64_t)THREADS * (ADDS / 100));
    ck_assert_uint_eq(sum, (uint64_t)THREADS * (ADDS / 100) * 1000);
    prom_set_enabled(0);
    prom_family_cleanup(&c);
    prom_family_cleanup(&h);
}
END_TEST

/* Each shard starts a cache line (64 bytes) and fills whole lines, whatever
 * the family's size: two threads on different shards never write one line. */
START_TEST(test_prom_shards_on_their_own_lines)
{
    static const double bounds[] = {0.001, 0.01, 0.1};
    prom_family f;
    for (size_t children = 1; children <= 9; children++) {
        prom_family_init(&f, PROM_COUNTER, "l_total", "t", l_kind, 1, children, NULL, 0);
        ck_assert_uint_eq((uintptr_t)f.cells % 64, 0);
        ck_assert_uint_eq(f.shard_cells * sizeof(f.cells[0]) % 64, 0);
        ck_assert_uint_ge(f.shard_cells, children);
        prom_family_cleanup(&f);
        prom_family_init(&f, PROM_HISTOGRAM, "l_seconds", "t", l_kind, 1, children, bounds, 3);
        ck_assert_uint_eq((uintptr_t)f.cells % 64, 0);
        ck_assert_uint_eq(f.shard_cells * sizeof(f.cells[0]) % 64, 0);
        ck_assert_uint_ge(f.shard_cells, children * 5);
        prom_family_cleanup(&f);
    }
}
END_TEST

/* `le` is inclusive: a value equal to a bound lands in that bound's bucket,
 * one nanosecond more in the next; past the last bound is +Inf only. */
START_TEST(test_prom_bucket_edges_inclusive)
{
    static const double bounds[] = {0.001, 0.5};
    prom_family h;
    prom_family_init(&h, PROM_HISTOGRAM, "edge_seconds", "Edges.", NULL, 0, 1, bounds, 2);
    prom_set_enabled(1);
    prom_histogram_observe_ns(&h, 0, 1000000);     /* 0.001: first bucket */
    prom_histogram_observe_ns(&h, 0, 1000001);     /* just over: second */
    prom_histogram_observe_ns(&h, 0, 500000000);   /* 0.5: second */
    prom_histogram_observe_ns(&h, 0, 500000001);   /* +Inf */
    prom_histogram_observe_ns(&h, 0, 0);           /* first */
    ad_buf b;
    ad_buf_init(&b);
    prom_write_family(&b, &h);
    ck_assert_str_eq(b.data, "# HELP edge_seconds Edges.\n"
                             "# TYPE edge_seconds histogram\n"
                             "edge_seconds_bucket{le=\"0.001\"} 2\n"
                             "edge_seconds_bucket{le=\"0.5\"} 4\n"
                             "edge_seconds_bucket{le=\"+Inf\"} 5\n"
                             "edge_seconds_sum 1.002000002\n"
                             "edge_seconds_count 5\n");
    ad_buf_cleanup(&b);
    prom_set_enabled(0);
    prom_family_cleanup(&h);
}
END_TEST

/* Backslash, double quote and newline in a label value are escaped; so are
 * backslash and newline in HELP. */
START_TEST(test_prom_escaping)
{
    static const char *const names[] = {"path"};
    prom_family c;
    prom_family_init(&c, PROM_COUNTER, "esc_total", "a \\ and a\nnewline", names, 1, 1, NULL, 0);
    prom_family_label(&c, 0, 0, "a\\b\"c\nd");
    ad_buf b;
    ad_buf_init(&b);
    prom_write_family(&b, &c);
    ck_assert_str_eq(b.data, "# HELP esc_total a \\\\ and a\\nnewline\n"
                             "# TYPE esc_total counter\n"
                             "esc_total{path=\"a\\\\b\\\"c\\nd\"} 0\n");
    ad_buf_cleanup(&b);
    prom_family_cleanup(&c);
}
END_TEST

/* One family with two labels, byte for byte; a sparse family leaves out
 * the children still at 0. */
START_TEST(test_prom_golden_family)
{
    static const char *const names[] = {"route", "code"};
    static const double bounds[] = {0.0005, 0.25, 30};
    prom_family c, h;
    prom_family_init(&c, PROM_COUNTER, "req_total", "Requests.", names, 2, 3, NULL, 0);
    prom_family_label(&c, 0, 0, "/a"), prom_family_label(&c, 0, 1, "200");
    prom_family_label(&c, 1, 0, "/a"), prom_family_label(&c, 1, 1, "404");
    prom_family_label(&c, 2, 0, "/b"), prom_family_label(&c, 2, 1, "200");
    prom_family_init(&h, PROM_HISTOGRAM, "req_seconds", "Latency.", names, 1, 2, bounds, 3);
    prom_family_label(&h, 0, 0, "/a");
    prom_family_label(&h, 1, 0, "/b");
    h.sparse = 1;
    prom_set_enabled(1);
    prom_counter_add(&c, 0, 3);
    prom_counter_add(&c, 2, 1);
    prom_histogram_observe_ns(&h, 1, 250000);
    prom_histogram_observe_ns(&h, 1, 2500000000);
    ad_buf b;
    ad_buf_init(&b);
    prom_write_family(&b, &c);
    prom_write_family(&b, &h);
    const char *names_v[] = {"x", "y"};
    double values[] = {2, 0.25};
    prom_write_simple(&b, PROM_GAUGE, "g", "Gauge.", "k", names_v, values, 2);
    double one = 7;
    prom_write_simple(&b, PROM_COUNTER, "n_total", "N.", NULL, NULL, &one, 1);
    ck_assert_str_eq(b.data, "# HELP req_total Requests.\n"
                             "# TYPE req_total counter\n"
                             "req_total{route=\"/a\",code=\"200\"} 3\n"
                             "req_total{route=\"/a\",code=\"404\"} 0\n"
                             "req_total{route=\"/b\",code=\"200\"} 1\n"
                             "# HELP req_seconds Latency.\n"
                             "# TYPE req_seconds histogram\n"
                             "req_seconds_bucket{route=\"/b\",le=\"0.0005\"} 1\n"
                             "req_seconds_bucket{route=\"/b\",le=\"0.25\"} 1\n"
                             "req_seconds_bucket{route=\"/b\",le=\"30\"} 2\n"
                             "req_seconds_bucket{route=\"/b\",le=\"+Inf\"} 2\n"
                             "req_seconds_sum{route=\"/b\"} 2.50025\n"
                             "req_seconds_count{route=\"/b\"} 2\n"
                             "# HELP g Gauge.\n"
                             "# TYPE g gauge\n"
                             "g{k=\"x\"} 2\n"
                             "g{k=\"y\"} 0.25\n"
                             "# HELP n_total N.\n"
                             "# TYPE n_total counter\n"
                             "n_total 7\n");
    ad_buf_cleanup(&b);
    prom_set_enabled(0);
    prom_family_cleanup(&c);
    prom_family_cleanup(&h);
}
END_TEST

/* While off, adds and observations change nothing. */
START_TEST(test_prom_disabled_moves_nothing)
{
    static const double bounds[] = {1};
    prom_family c, h;
    prom_family_init(&c, PROM_COUNTER, "off_total", "t", NULL, 0, 1, NULL, 0);
    prom_family_init(&h, PROM_HISTOGRAM, "off_seconds", "t", NULL, 0, 1, bounds, 1);
    prom_set_enabled(0);
    ck_assert_int_eq(prom_enabled(), 0);
    prom_counter_add(&c, 0, 5);
    prom_histogram_observe_ns(&h, 0, 10);
    ck_assert_uint_eq(prom_counter_value(&c, 0), 0);
    uint64_t count = 1, sum = 1;
    prom_histogram_value(&h, 0, &count, &sum);
    ck_assert_uint_eq(count, 0);
    ck_assert_uint_eq(sum, 0);
    prom_set_enabled(1);
    prom_counter_add(&c, 0, 5);
    ck_assert_uint_eq(prom_counter_value(&c, 0), 5);
    prom_set_enabled(0);
    prom_family_cleanup(&c);
    prom_family_cleanup(&h);
}
END_TEST

/* Floats as the format writes them: shortest round trip, whole numbers
 * without an exponent, infinities by name. */
START_TEST(test_prom_double_format)
{
    static const struct {
        double v;
        const char *want;
    } cases[] = {{0.0005, "0.0005"}, {10, "10"}, {600, "600"}, {2.5, "2.5"}, {0.1, "0.1"},
                 {1e-9, "1e-09"},    {123456789.5, "123456789.5"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ad_buf b;
        ad_buf_init(&b);
        prom_write_double(&b, cases[i].v);
        ck_assert_str_eq(b.data, cases[i].want);
        ad_buf_cleanup(&b);
    }
}
END_TEST

/* The hot path takes no lock and runs no compare-and-swap loop: base/prom.c
 * has neither a mutex nor a compare-exchange (docs/threads.md). */
START_TEST(test_prom_source_takes_no_lock)
{
    FILE *f = fopen("base/prom.c", "rb");
    ck_assert_msg(f != NULL, "run from the repository root");
    char line[512];
    int n = 0;
    while (fgets(line, sizeof(line), f)) {
        n++;
        ck_assert_msg(!strstr(line, "pthread") && !strstr(line, "mtx_") && !strstr(line, "compare_exchange"),
                      "base/prom.c:%d takes a lock or loops on a CAS: %s", n, line);
    }
    fclose(f);
    ck_assert_int_gt(n, 50);
}
END_TEST

Suite *base_prom_suite(void)
{
    Suite *s = suite_create("base_prom");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_prom_exact_sums_from_threads);
    tcase_add_test(tc, test_prom_shards_on_their_own_lines);
    tcase_add_test(tc, test_prom_bucket_edges_inclusive);
    tcase_add_test(tc, test_prom_escaping);
    tcase_add_test(tc, test_prom_golden_family);
    tcase_add_test(tc, test_prom_disabled_moves_nothing);
    tcase_add_test(tc, test_prom_double_format);
    tcase_add_test(tc, test_prom_source_takes_no_lock);
    suite_add_tcase(s, tc);
    return s;
}
