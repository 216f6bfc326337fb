/* Tests storage/maintenance.c: log pruning by age and by rows per agent, in
 * batches, and space given back; with the read snapshot and the job
 * postponing of storage/db.c and storage/jobs.c that the same faults need. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "pipeline/plan.h"
#include "storage/agents.h"
#include "storage/db.h"
#include "storage/inferences.h"
#include "storage/jobs.h"
#include "storage/maintenance.h"
#include "storage/trainings.h"
#include "storage/versions.h"
#include "tests/unit/storage/fixtures.h"

Suite *storage_maintenance_suite(void);

static int64_t make_agent(storage_conn *db, const char *user_id)
{
    agent_new a = {.user_id = user_id, .source = "text", .material = "m", .material_len = 1};
    pipeline_plan_agent(&a);
    int64_t id = 0;
    ck_assert_int_eq(storage_agents_create(db, &a, &id, NULL), 0);
    return id;
}

static void log_calls(storage_conn *db, int64_t agent_id, int n)
{
    for (int i = 0; i < n; i++) {
        inference_record r = {agent_id, "local", 200, "ok", 1, 3, 4, 0, NULL};
        ck_assert_int_eq(storage_inferences_record(db, &r, NULL), 0);
    }
}

static void exec_sql(storage_conn *db, const char *sql)
{
    ck_assert_int_eq(sqlite3_exec(db->db, sql, NULL, NULL, NULL), SQLITE_OK);
}

START_TEST(test_prune_by_rows_per_agent_keeps_the_newest)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t a = make_agent(f.db, "a"), b = make_agent(f.db, "b");
    log_calls(f.db, a, 1203); /* more than two batches */
    log_calls(f.db, b, 7);
    int64_t fid = 0;
    for (int i = 0; i < 9; i++)
        ck_assert_int_eq(storage_feedback_add(f.db, a, "p", "r", "f", 0, &fid, NULL), 0);
    int64_t newest = storage_fixture_count(f.db, "SELECT max(id) FROM inferences WHERE agent_id = ?1", a);

    storage_retention r = {.max_age_ms = 0, .max_rows_per_agent = 10};
    int64_t removed = 0;
    ad_err e = {0};
    ck_assert_int_eq(storage_prune_logs(f.db, &r, NULL, &removed, &e), 0);
    ck_assert_int_eq(removed, 1193);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM inferences WHERE agent_id = ?1", a), 10);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT min(id) FROM inferences WHERE agent_id = ?1", a),
                     newest - 9);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM inferences WHERE agent_id = ?1", b), 7);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM feedback WHERE agent_id = ?1", a), 9);
    /* The totals are not a log. */
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT inference_count FROM agents WHERE id = ?1", a), 1203);
    /* Nothing left to do. */
    ck_assert_int_eq(storage_prune_logs(f.db, &r, NULL, &removed, &e), 0);
    ck_assert_int_eq(removed, 0);
    storage_fixture_close(&f);
}
END_TEST

/* Age pruning spares the runs GET /api/v1/training/status reads (the latest
 * group's, even when older than the cutoff and not its agent's latest) and
 * takes cancelled runs and jobs like finished ones. */
START_TEST(test_prune_keeps_the_latest_group)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t a = make_agent(f.db, "a");
    exec_sql(f.db, "UPDATE jobs SET state = 'done'");
    exec_sql(f.db, "INSERT INTO training_groups (id, cycles, total_agents, created_at) VALUES (1, 1, 1, 0), (2, 1, 1, 0)");
    int64_t t1 = 0, t2 = 0, t3 = 0;
    ck_assert_int_eq(storage_trainings_create(f.db, a, "group-1", 1, PIPELINE_JOB_TRAIN, &t1, NULL), 0);
    ck_assert_int_eq(storage_trainings_finish(f.db, t1, TRAINING_DONE, 1, 0, NULL, NULL, NULL), 0);
    exec_sql(f.db, "UPDATE jobs SET state = 'done'");
    ck_assert_int_eq(storage_trainings_create(f.db, a, "group-2", 1, PIPELINE_JOB_TRAIN, &t2, NULL), 0);
    ck_assert_int_eq(storage_trainings_finish(f.db, t2, TRAINING_CANCELLED, 0, 0, NULL, NULL, NULL), 0);
    exec_sql(f.db, "UPDATE jobs SET state = 'cancelled' WHERE state IN ('queued', 'running')");
    ck_assert_int_eq(storage_trainings_create(f.db, a, "v4", 1, PIPELINE_JOB_TRAIN, &t3, NULL), 0);
    ck_assert_int_eq(storage_trainings_finish(f.db, t3, TRAINING_CANCELLED, 0, 0, NULL, NULL, NULL), 0);
    exec_sql(f.db, "UPDATE jobs SET state = 'cancelled' WHERE state IN ('queued', 'running')");
    char sql[160];
    snprintf(sql, sizeof(sql), "UPDATE trainings SET group_id = 1 WHERE id = %lld", (long long)t1);
    exec_sql(f.db, sql);
    snprintf(sql, sizeof(sql), "UPDATE trainings SET group_id = 2 WHERE id = %lld", (long long)t2);
    exec_sql(f.db, sql);
    exec_sql(f.db, "UPDATE jobs SET updated_at = updated_at - 172800000");
    exec_sql(f.db, "UPDATE trainings SET created_at = created_at - 172800000");

    storage_retention r = {.max_age_ms = 86400000, .max_rows_per_agent = 0};
    int64_t removed = 0;
    ck_assert_int_eq(storage_prune_logs(f.db, &r, NULL, &removed, NULL), 0);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM jobs", 0), 0);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM trainings", 0), 2);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT min(id) FROM trainings", 0), t2);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT max(id) FROM trainings", 0), t3);
    storage_fixture_close(&f);
}
END_TEST

START_TEST(test_prune_by_age)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t a = make_agent(f.db, "a");
    log_calls(f.db, a, 700);
    /* Two finished training runs (each with its job) besides the pipeline's
     * job; the first run has an iteration row. */
    exec_sql(f.db, "UPDATE jobs SET state = 'done'");
    int64_t t1 = 0, t2 = 0;
    ck_assert_int_eq(storage_trainings_create(f.db, a, "v2", 1, PIPELINE_JOB_TRAIN, &t1, NULL), 0);
    ck_assert_int_eq(storage_trainings_add_iteration(f.db, t1, 0, 1, "{}", "{}", 1, NULL), 0);
    ck_assert_int_eq(storage_trainings_finish(f.db, t1, TRAINING_DONE, 1, 0, NULL, NULL, NULL), 0);
    exec_sql(f.db, "UPDATE jobs SET state = 'done'");
    ck_assert_int_eq(storage_trainings_create(f.db, a, "v3", 1, PIPELINE_JOB_TRAIN, &t2, NULL), 0);
    ck_assert_int_eq(storage_trainings_finish(f.db, t2, TRAINING_FAILED, 0, 0, NULL, "x", NULL), 0);
    exec_sql(f.db, "UPDATE jobs SET state = 'failed'");
    /* All of it two days old, but the last 100 calls. */
    exec_sql(f.db, "UPDATE inferences SET created_at = created_at - 172800000 WHERE id <= 600");
    exec_sql(f.db, "UPDATE jobs SET updated_at = updated_at - 172800000");
    exec_sql(f.db, "UPDATE trainings SET created_at = created_at - 172800000");

    storage_retention r = {.max_age_ms = 86400000, .max_rows_per_agent = 0};
    int64_t removed = 0;
    ck_assert_int_eq(storage_prune_logs(f.db, &r, NULL, &removed, NULL), 0);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM inferences", 0), 100);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT min(id) FROM inferences", 0), 601);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM jobs", 0), 0);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM trainings", 0), 1);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT id FROM trainings", 0), t2);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM training_iterations", 0), 0);
    /* 600 calls, 3 jobs, the older run (its iteration goes with it). */
    ck_assert_int_eq(removed, 600 + 3 + 1);
    /* A stop request ends a pass at once. */
    atomic_int stop = 1;
    exec_sql(f.db, "UPDATE inferences SET created_at = 0");
    ck_assert_int_eq(storage_prune_logs(f.db, &r, &stop, &removed, NULL), 0);
    ck_assert_int_eq(removed, 0);
    storage_fixture_close(&f);
}
END_TEST

START_TEST(test_reclaim_gives_pages_back)
{
    storage_fixture f;
    storage_fixture_open(&f);
    ck_assert_int_eq(storage_pragma_int(f.db, "PRAGMA auto_vacuum"), 2);
    int64_t a = make_agent(f.db, "a");
    log_calls(f.db, a, 3000);
    int64_t deleted = 0;
    ck_assert_int_eq(storage_agents_delete(f.db, "a", NULL, &deleted, NULL), 0);
    ck_assert_int_gt(storage_pragma_int(f.db, "PRAGMA freelist_count"), 0);
    ck_assert_int_eq(storage_reclaim_space(f.db, 1, NULL), 0);
    ck_assert_int_eq(storage_pragma_int(f.db, "PRAGMA freelist_count"), 0);
    storage_fixture_close(&f);
}
END_TEST

/* ---- the read snapshot --------------------------------------------------------- */

static void *delete_agent_a(void *arg)
{
    (void)arg;
    int64_t id = 0;
    int rc = storage_agents_delete(storage_conn_get(), "a", NULL, &id, NULL);
    storage_thread_release();
    return (void *)(intptr_t)rc;
}

START_TEST(test_snapshot_sees_one_state)
{
    storage_fixture f;
    storage_fixture_open(&f);
    make_agent(f.db, "a");
    agent_row row;
    ck_assert_int_eq(storage_snapshot_begin(f.db, NULL), 0);
    ck_assert_int_eq(storage_agents_get(f.db, "a", &row, NULL), 0);
    agent_row_cleanup(&row);
    /* Another connection deletes the agent meanwhile. */
    pthread_t t;
    void *rc;
    pthread_create(&t, NULL, delete_agent_a, NULL);
    pthread_join(t, &rc);
    ck_assert_int_eq((int)(intptr_t)rc, 0);
    /* Within the snapshot the agent and its rows are still there. */
    ck_assert_int_eq(storage_agents_get(f.db, "a", &row, NULL), 0);
    agent_row_cleanup(&row);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM executions", 0), 4);
    storage_snapshot_end(f.db);
    ck_assert_int_eq(storage_agents_get(f.db, "a", &row, NULL), AD_ENOTFOUND);
    /* A write transaction ends a snapshot left open; ending twice is harmless. */
    ck_assert_int_eq(storage_snapshot_begin(f.db, NULL), 0);
    make_agent(f.db, "b");
    storage_snapshot_end(f.db);
    storage_snapshot_end(f.db);
    ck_assert_int_eq(storage_agents_get(f.db, "b", &row, NULL), 0);
    int64_t b = row.id, fid = 0;
    agent_row_cleanup(&row);
    /* A write that ran inside a snapshot by mistake is kept when it ends. */
    ck_assert_int_eq(storage_snapshot_begin(f.db, NULL), 0);
    ck_assert_int_eq(storage_agents_get(f.db, "b", &row, NULL), 0);
    agent_row_cleanup(&row);
    ck_assert_int_eq(storage_feedback_add(f.db, b, "p", "r", "f", 0, &fid, NULL), 0);
    storage_snapshot_end(f.db);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM feedback WHERE agent_id = ?1", b), 1);
    storage_fixture_close(&f);
}
END_TEST

START_TEST(test_vanished_agent_is_not_found)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t a = make_agent(f.db, "a"), id = 0;
    ck_assert_int_eq(storage_agents_delete(f.db, "a", NULL, &id, NULL), 0);
    ad_err e = {0};
    /* Writes keyed by the stale id find out inside their transaction. */
    ck_assert_int_eq(storage_feedback_add(f.db, a, "p", "r", "f", 0, &id, &e), AD_ENOTFOUND);
    ck_assert_int_eq(storage_trainings_create(f.db, a, "v2", 1, PIPELINE_JOB_TRAIN, &id, &e), AD_ENOTFOUND);
    ck_assert_int_eq(storage_jobs_enqueue(f.db, a, &(job_spec){"replay", 1, NULL}, &id, &e), AD_ENOTFOUND);
    ck_assert_int_eq(storage_fixture_deploy(f.db, a, 1, &e), AD_ENOTFOUND);
    storage_fixture_close(&f);
}
END_TEST

/* ---- postponing a job the database could not finish ------------------------------- */

START_TEST(test_postpone_requeues_uncounted)
{
    storage_fixture f;
    storage_fixture_open(&f);
    make_agent(f.db, "a");
    job_row j;
    ck_assert_int_eq(storage_fixture_claim(f.db, &j, NULL), 0);
    ck_assert_int_eq(j.attempts, 1);
    ck_assert_int_eq(storage_jobs_postpone(f.db, j.id, NULL), 1);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_fixture_claim(f.db, &j, NULL), 0);
    ck_assert_int_eq(j.attempts, 1);
    ck_assert_int_eq(storage_jobs_finish(f.db, j.id, JOB_DONE, NULL, NULL), 0);
    /* A finished job stays finished. */
    ck_assert_int_eq(storage_jobs_postpone(f.db, j.id, NULL), 0);
    job_row_cleanup(&j);
    storage_fixture_close(&f);
}
END_TEST

Suite *storage_maintenance_suite(void)
{
    Suite *s = suite_create("storage_maintenance");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_prune_by_rows_per_agent_keeps_the_newest);
    tcase_add_test(tc, test_prune_by_age);
    tcase_add_test(tc, test_prune_keeps_the_latest_group);
    tcase_add_test(tc, test_reclaim_gives_pages_back);
    tcase_add_test(tc, test_snapshot_sees_one_state);
    tcase_add_test(tc, test_vanished_agent_is_not_found);
    tcase_add_test(tc, test_postpone_requeues_uncounted);
    suite_add_tcase(s, tc);
    return s;
}
