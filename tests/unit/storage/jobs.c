/* Tests storage/jobs.c: the durable queue, one running job per agent, recovery. */
#include <check.h>
#include <string.h>

#include "pipeline/plan.h"
#include "storage/agents.h"
#include "storage/db.h"
#include "storage/executions.h"
#include "storage/jobs.h"
#include "tests/unit/storage/fixtures.h"

Suite *storage_jobs_suite(void);

/* Creates an agent, which queues its pipeline job; returns that job's id. */
static int64_t agent_with_job(storage_conn *db, const char *user_id, int64_t *agent_id)
{
    agent_new a = {.user_id = user_id, .source = "text", .material = "m", .material_len = 1};
    pipeline_plan_agent(&a);
    ck_assert_int_eq(storage_agents_create(db, &a, agent_id, NULL), 0);
    return storage_fixture_count(db, "SELECT max(id) FROM jobs WHERE agent_id = ?1", *agent_id);
}

static void expect_depth(storage_conn *db, int64_t queued, int64_t running)
{
    int64_t q = -1, r = -1;
    ck_assert_int_eq(storage_jobs_depth(db, &q, &r, NULL), 0);
    ck_assert_int_eq(q, queued);
    ck_assert_int_eq(r, running);
}

START_TEST(test_jobs_one_running_job_per_agent)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t a = 0, b = 0, a2 = 0;
    int64_t ja = agent_with_job(f.db, "a", &a);
    ad_err e = {0};
    /* One queued or running job per agent: a second one is refused. */
    ck_assert_int_eq(storage_jobs_enqueue(f.db, a, &(job_spec){"replay", 2, "{\"k\":1}"}, &a2, &e), AD_ECONFLICT);
    int64_t jb = agent_with_job(f.db, "b", &b);
    ck_assert(ja < jb);
    expect_depth(f.db, 2, 0);

    job_row j;
    ck_assert_int_eq(storage_jobs_claim(f.db, &j, &e), 0);
    ck_assert_int_eq(j.id, ja);
    ck_assert_int_eq(j.agent_id, a);
    ck_assert_str_eq(j.kind, "pipeline");
    ck_assert_int_eq(j.start_stage, 0);
    ck_assert_ptr_null(j.params);
    ck_assert_int_eq(j.attempts, 1);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_jobs_enqueue(f.db, a, &(job_spec){"replay", 2, NULL}, &a2, &e), AD_ECONFLICT);

    ck_assert_int_eq(storage_jobs_claim(f.db, &j, &e), 0);
    ck_assert_int_eq(j.id, jb);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_jobs_claim(f.db, &j, &e), AD_ENOTFOUND);
    expect_depth(f.db, 0, 2);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM jobs WHERE agent_id = ?1"
                                                 " AND state = 'running'", a), 1);
    ck_assert_int_eq(storage_jobs_hold(f.db, ja, &e), 0);

    /* Once a's first job is done, the next may be queued and run. */
    ck_assert_int_eq(storage_jobs_finish(f.db, ja, JOB_DONE, NULL, &e), 0);
    ck_assert_int_eq(storage_jobs_hold(f.db, ja, &e), AD_ECANCELLED);
    ck_assert_int_eq(storage_jobs_enqueue(f.db, a, &(job_spec){"replay", 2, "{\"k\":1}"}, &a2, &e), 0);
    ck_assert(a2 > jb);
    ck_assert_int_eq(storage_jobs_claim(f.db, &j, &e), 0);
    ck_assert_int_eq(j.id, a2);
    ck_assert_str_eq(j.kind, "replay");
    ck_assert_int_eq(j.start_stage, 2);
    ck_assert_str_eq(j.params, "{\"k\":1}");
    job_row_cleanup(&j);
    ck_assert_ptr_null(j.params);
    expect_depth(f.db, 0, 2);
    storage_fixture_close(&f);
}
END_TEST

START_TEST(test_jobs_requeue_running_and_release)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t a = 0, b = 0;
    int64_t ja = agent_with_job(f.db, "a", &a);
    int64_t jb = agent_with_job(f.db, "b", &b);
    job_row j;
    ck_assert_int_eq(storage_jobs_claim(f.db, &j, NULL), 0);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_jobs_claim(f.db, &j, NULL), 0);
    job_row_cleanup(&j);
    expect_depth(f.db, 0, 2);

    int n = -1;
    ck_assert_int_eq(storage_jobs_requeue_running(f.db, &n, NULL), 0);
    ck_assert_int_eq(n, 2);
    expect_depth(f.db, 2, 0);
    ck_assert_int_eq(storage_jobs_requeue_running(f.db, &n, NULL), 0);
    ck_assert_int_eq(n, 0);

    /* Requeued jobs are claimed again in order, counting the attempt. */
    ck_assert_int_eq(storage_jobs_claim(f.db, &j, NULL), 0);
    ck_assert_int_eq(j.id, ja);
    ck_assert_int_eq(j.attempts, 2);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_jobs_release(f.db, ja, NULL), 0);
    expect_depth(f.db, 2, 0);
    ck_assert_int_eq(storage_jobs_claim(f.db, &j, NULL), 0);
    ck_assert_int_eq(j.id, ja);
    ck_assert_int_eq(j.attempts, 3);
    job_row_cleanup(&j);

    /* Finished jobs leave the queue. */
    ck_assert_int_eq(storage_jobs_finish(f.db, ja, JOB_FAILED, "why", NULL), 0);
    ck_assert_int_eq(storage_fixture_count_text(f.db, "SELECT count(*) FROM jobs WHERE error = ?1", "why"), 1);
    ck_assert_int_eq(storage_jobs_claim(f.db, &j, NULL), 0);
    ck_assert_int_eq(j.id, jb);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_jobs_finish(f.db, jb, JOB_DONE, NULL, NULL), 0);
    expect_depth(f.db, 0, 0);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM jobs WHERE agent_id = ?1"
                                                 " AND state IN ('queued', 'running')", a), 0);
    ck_assert_int_eq(storage_jobs_claim(f.db, &j, NULL), AD_ENOTFOUND);
    storage_fixture_close(&f);
}
END_TEST

/* A pipeline job's eta_at is shown on status as eta_s while the job runs.
 * A job put back in the queue (released at a stop or a cancel, postponed
 * after a refused write, or requeued at start after a crash) no longer
 * runs: its eta_at goes with it, else status would say "1 s left" for as
 * long as the job waits in the queue. */
START_TEST(test_jobs_put_back_clear_the_eta)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t a = 0, b = 0;
    int64_t ja = agent_with_job(f.db, "a", &a);
    int64_t jb = agent_with_job(f.db, "b", &b);
    ad_err e = {0};
    job_row j;
    const char *eta_of = "SELECT coalesce(eta_at, 0) FROM agents WHERE id = ?1";
    for (int way = 0; way < 3; way++) {
        ck_assert_int_eq(storage_jobs_claim(f.db, &j, &e), 0);
        ck_assert_int_eq(j.id, ja);
        job_row_cleanup(&j);
        ck_assert_int_eq(storage_exec_start_job(f.db, a, ja, 0, "DataProcessor", 0, 0, 4242, &e), 0);
        ck_assert_int_eq(storage_fixture_count(f.db, eta_of, a), 4242);
        if (way == 0) ck_assert_int_eq(storage_jobs_release(f.db, ja, &e), 0);
        if (way == 1) ck_assert_int_eq(storage_jobs_postpone(f.db, ja, &e), 1);
        if (way == 2) {
            int n = 0;
            ck_assert_int_eq(storage_jobs_requeue_running(f.db, &n, &e), 0);
            ck_assert_int_eq(n, 1);
        }
        ck_assert_msg(storage_fixture_count(f.db, eta_of, a) == 0, "way %d: eta_at left behind", way);
        expect_depth(f.db, 2, 0);
    }
    /* Another agent's running job keeps its eta when one is put back. */
    ck_assert_int_eq(storage_jobs_claim(f.db, &j, &e), 0);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_jobs_claim(f.db, &j, &e), 0);
    ck_assert_int_eq(j.id, jb);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_exec_start_job(f.db, b, jb, 0, "DataProcessor", 0, 0, 777, &e), 0);
    ck_assert_int_eq(storage_jobs_release(f.db, ja, &e), 0);
    ck_assert_int_eq(storage_jobs_postpone(f.db, ja, &e), 0);
    ck_assert_int_eq(storage_fixture_count(f.db, eta_of, b), 777);
    storage_fixture_close(&f);
}
END_TEST

START_TEST(test_jobs_enqueue_for_missing_agent)
{
    storage_fixture f;
    storage_fixture_open(&f);
    ad_err e = {0};
    ck_assert_int_eq(storage_jobs_enqueue(f.db, 999, &(job_spec){"pipeline", 0, NULL}, NULL, &e), AD_ENOTFOUND);
    expect_depth(f.db, 0, 0);
    storage_fixture_close(&f);
}
END_TEST

/* Resetting the execution log refuses in the same statement that resets
 * while a job is queued or running (a separate check let a job queued in
 * between run on a wiped log), and resets once the job has ended. */
START_TEST(test_exec_reset_refused_while_a_job_is_active)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t a = 0;
    int64_t ja = agent_with_job(f.db, "a", &a);
    ad_err e = {0};
    storage_fixture_exec(f.db, "UPDATE executions SET status = 'completed', output = '{\"k\":1}'"
                               " WHERE agent_id = ?1 AND task_index = 0", a);
    int count = -1;
    ck_assert_int_eq(storage_exec_reset(f.db, a, &count, &e), AD_ECONFLICT);
    ck_assert_int_eq(count, 0);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM executions WHERE agent_id = ?1"
                                                 " AND status = 'completed'", a), 1);
    ck_assert_int_eq(storage_jobs_finish(f.db, ja, JOB_DONE, NULL, &e), 0);
    ck_assert_int_eq(storage_exec_reset(f.db, a, &count, &e), 0);
    ck_assert_int_eq(count, PIPELINE_STAGES);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM executions WHERE agent_id = ?1"
                                                 " AND status = 'pending' AND output IS NULL", a), PIPELINE_STAGES);
    /* An agent deleted since its request looked it up has no log to reset:
     * not found (404), not "reset 0 rows" (200). */
    int64_t gone = 0;
    ck_assert_int_eq(storage_agents_delete(f.db, "a", NULL, &gone, &e), 0);
    ck_assert_int_eq(storage_exec_reset(f.db, a, &count, &e), AD_ENOTFOUND);
    storage_fixture_close(&f);
}
END_TEST

Suite *storage_jobs_suite(void)
{
    Suite *s = suite_create("storage_jobs");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_jobs_one_running_job_per_agent);
    tcase_add_test(tc, test_jobs_requeue_running_and_release);
    tcase_add_test(tc, test_jobs_put_back_clear_the_eta);
    tcase_add_test(tc, test_jobs_enqueue_for_missing_agent);
    tcase_add_test(tc, test_exec_reset_refused_while_a_job_is_active);
    suite_add_tcase(s, tc);
    return s;
}
