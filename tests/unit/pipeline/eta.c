/* Tests pipeline/eta.c: the stage model, learning, seeding from the log, a
 * job's own scale and its clamps. */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/eta.h"
#include "pipeline/plan.h"
#include "storage/agents.h"
#include "tests/unit/storage/fixtures.h"

Suite *pipeline_eta_suite(void);

#define MIB (1024 * 1024)

/* BENCHMARKS.md's 10 MiB run: 46, 32, 10 and 0 ms a MiB over 4 ms a stage. */
START_TEST(test_eta_defaults_follow_the_benchmark)
{
    eta_reset();
    ck_assert_double_eq_tol(eta_stage_ms(0, 10 * MIB), 464, 0.01);
    ck_assert_double_eq_tol(eta_stage_ms(1, 10 * MIB), 324, 0.01);
    ck_assert_double_eq_tol(eta_stage_ms(2, 10 * MIB), 104, 0.01);
    ck_assert_double_eq_tol(eta_stage_ms(3, 10 * MIB), 4, 0.01);
    /* A tiny agent costs the fixed part; a stage that does not exist, nothing. */
    ck_assert_double_eq_tol(eta_stage_ms(0, 0), 4, 0.01);
    ck_assert_double_eq_tol(eta_stage_ms(PIPELINE_STAGES, MIB), 0, 0.01);
    ck_assert_double_eq_tol(eta_stage_ms(-1, MIB), 0, 0.01);

    /* A job that has done nothing yet gets the model as it is. */
    eta_run r;
    eta_run_init(&r, 10 * MIB);
    ck_assert_int_eq(eta_run_remaining_ms(&r, 0), 464 + 324 + 104 + 4);
    ck_assert_int_eq(eta_run_remaining_ms(&r, 2), 104 + 4);
    ck_assert_int_eq(eta_run_remaining_ms(&r, PIPELINE_STAGES), 0);
}
END_TEST

/* The job's own stages scale the rest: twice as slow as predicted so far,
 * twice the model for what is left. */
START_TEST(test_eta_scales_by_the_jobs_own_stages)
{
    eta_reset();
    eta_run r;
    eta_run_init(&r, 10 * MIB);
    eta_run_stage_done(&r, 0, 928);
    ck_assert_int_eq(eta_run_remaining_ms(&r, 1), 2 * (324 + 104 + 4));
    /* Faster than predicted on the next: the scale is over both. */
    eta_run_stage_done(&r, 1, 324 - 324 / 2 - 128);
    double scale = (928.0 + 324 - 162 - 128) / (464 + 324);
    ck_assert_int_eq(eta_run_remaining_ms(&r, 2), (int64_t)((104 + 4) * scale + 0.5));
}
END_TEST

START_TEST(test_eta_scale_is_clamped)
{
    eta_reset();
    eta_run slow, fast;
    eta_run_init(&slow, 10 * MIB);
    eta_run_init(&fast, 10 * MIB);
    eta_run_stage_done(&slow, 0, 100 * 464);
    eta_run_stage_done(&fast, 0, 0);
    ck_assert_int_eq(eta_run_remaining_ms(&slow, 1), (int64_t)(ETA_SCALE_MAX * (324 + 104 + 4)));
    ck_assert_int_eq(eta_run_remaining_ms(&fast, 1), (int64_t)(ETA_SCALE_MIN * (324 + 104 + 4)));
    /* A negative time (a clock step) counts as none. */
    eta_run_init(&fast, 10 * MIB);
    eta_run_stage_done(&fast, 0, -5000);
    ck_assert_int_eq(eta_run_remaining_ms(&fast, 1), (int64_t)(ETA_SCALE_MIN * (324 + 104 + 4)));
}
END_TEST

/* Completed stages move the rate towards what they took; small agents
 * teach nothing. */
START_TEST(test_eta_learns_from_large_agents_only)
{
    eta_reset();
    for (int i = 0; i < 5; i++) eta_learn(1, 64 * 1024 - 1, 100000);
    ck_assert_double_eq_tol(eta_stage_ms(1, MIB), 36, 0.01);
    /* 2 MiB in 404 ms: 200 ms a MiB over the fixed part. One run moves the
     * rate a quarter of the way, enough runs all of it. */
    eta_learn(1, 2 * MIB, 404);
    ck_assert_double_eq_tol(eta_stage_ms(1, MIB), 4 + 32 + (200 - 32) / 4.0, 0.01);
    for (int i = 0; i < 60; i++) eta_learn(1, 2 * MIB, 404);
    ck_assert_double_eq_tol(eta_stage_ms(1, MIB), 204, 0.5);
    /* The other stages did not move. */
    ck_assert_double_eq_tol(eta_stage_ms(0, MIB), 50, 0.01);
    /* A stall is not taken for a rate. */
    for (int i = 0; i < 60; i++) eta_learn(2, MIB, 10 * 60 * 1000);
    ck_assert_double_eq_tol(eta_stage_ms(2, MIB), 4 + 60 * 1000, 1);
    eta_reset();
    ck_assert_double_eq_tol(eta_stage_ms(1, MIB), 36, 0.01);
}
END_TEST

static void *learn_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2000; i++) eta_learn(0, MIB, 4 + 80);
    return NULL;
}

/* Workers learn at once without a lock and without losing the value. */
START_TEST(test_eta_learns_from_many_threads)
{
    eta_reset();
    pthread_t t[4];
    for (int i = 0; i < 4; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, learn_many, NULL), 0);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    ck_assert_double_eq_tol(eta_stage_ms(0, MIB), 84, 0.5);
    eta_reset();
}
END_TEST

/* At start the rates come from the log: the recent completed runs of agents
 * with at least 64 KiB of material, per stage. */
START_TEST(test_eta_seeded_from_the_execution_log)
{
    storage_fixture f;
    storage_fixture_open(&f);
    eta_reset();
    static char big[MIB];
    memset(big, 'w', sizeof(big));
    agent_new a = {.user_id = "big", .source = "text", .material = big, .material_len = sizeof(big)};
    pipeline_plan_agent(&a);
    int64_t id = 0;
    ad_err e = {0};
    ck_assert_int_eq(storage_agents_create(f.db, &a, &id, &e), 0);
    /* Stage k took 104 + 100 k ms on 1 MiB: 100 (k + 1) ms a MiB. */
    storage_fixture_exec(f.db, "UPDATE executions SET status = 'completed', finished_at = 1000 + task_index,"
                               " duration_ms = 104 + 100 * task_index WHERE agent_id = ?1", id);
    /* A small agent's slow runs are left out. */
    agent_new s = {.user_id = "small", .source = "text", .material = big, .material_len = 1000};
    pipeline_plan_agent(&s);
    ck_assert_int_eq(storage_agents_create(f.db, &s, &id, &e), 0);
    storage_fixture_exec(f.db, "UPDATE executions SET status = 'completed', finished_at = 2000,"
                               " duration_ms = 90000 WHERE agent_id = ?1", id);
    ck_assert_int_eq(eta_seed(f.db, &e), 0);
    for (int k = 0; k < PIPELINE_STAGES; k++)
        ck_assert_double_eq_tol(eta_stage_ms(k, MIB), 104 + 100 * k, 0.01);
    eta_reset();
    storage_fixture_close(&f);
}
END_TEST

/* With no usable run in the log, the defaults stay. */
START_TEST(test_eta_seed_on_an_empty_log_keeps_the_defaults)
{
    storage_fixture f;
    storage_fixture_open(&f);
    eta_reset();
    ad_err e = {0};
    ck_assert_int_eq(eta_seed(f.db, &e), 0);
    ck_assert_double_eq_tol(eta_stage_ms(0, 10 * MIB), 464, 0.01);
    storage_fixture_close(&f);
}
END_TEST

Suite *pipeline_eta_suite(void)
{
    Suite *s = suite_create("pipeline_eta");
    TCase *tc = tcase_create("eta");
    tcase_add_test(tc, test_eta_defaults_follow_the_benchmark);
    tcase_add_test(tc, test_eta_scales_by_the_jobs_own_stages);
    tcase_add_test(tc, test_eta_scale_is_clamped);
    tcase_add_test(tc, test_eta_learns_from_large_agents_only);
    tcase_add_test(tc, test_eta_learns_from_many_threads);
    tcase_add_test(tc, test_eta_seeded_from_the_execution_log);
    tcase_add_test(tc, test_eta_seed_on_an_empty_log_keeps_the_defaults);
    suite_add_tcase(s, tc);
    return s;
}
