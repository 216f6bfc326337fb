/* Tests storage/jobs.c: the durable queue, one running job per agent, the
 * lease (two replicas on one database), recovery. */
#include <check.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"

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
    ck_assert_int_eq(storage_fixture_claim(f.db, &j, &e), 0);
    ck_assert_int_eq(j.id, ja);
    ck_assert_int_eq(j.agent_id, a);
    ck_assert_str_eq(j.kind, "pipeline");
    ck_assert_int_eq(j.start_stage, 0);
    ck_assert_ptr_null(j.params);
    ck_assert_int_eq(j.attempts, 1);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_jobs_enqueue(f.db, a, &(job_spec){"replay", 2, NULL}, &a2, &e), AD_ECONFLICT);

    ck_assert_int_eq(storage_fixture_claim(f.db, &j, &e), 0);
    ck_assert_int_eq(j.id, jb);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_fixture_claim(f.db, &j, &e), AD_ENOTFOUND);
    expect_depth(f.db, 0, 2);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM jobs WHERE agent_id = ?1"
                                                 " AND state = 'running'", a), 1);
    ck_assert_int_eq(storage_jobs_hold(f.db, ja, &e), 0);

    /* Once a's first job is done, the next may be queued and run. */
    ck_assert_int_eq(storage_jobs_finish(f.db, ja, JOB_DONE, NULL, &e), 0);
    ck_assert_int_eq(storage_jobs_hold(f.db, ja, &e), AD_ECANCELLED);
    ck_assert_int_eq(storage_jobs_enqueue(f.db, a, &(job_spec){"replay", 2, "{\"k\":1}"}, &a2, &e), 0);
    ck_assert(a2 > jb);
    ck_assert_int_eq(storage_fixture_claim(f.db, &j, &e), 0);
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

START_TEST(test_jobs_recover_and_release)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t a = 0, b = 0;
    int64_t ja = agent_with_job(f.db, "a", &a);
    int64_t jb = agent_with_job(f.db, "b", &b);
    job_row j;
    ck_assert_int_eq(storage_fixture_claim(f.db, &j, NULL), 0);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_fixture_claim(f.db, &j, NULL), 0);
    job_row_cleanup(&j);
    expect_depth(f.db, 0, 2);

    /* Recovery expires the leases: the jobs stay running until claimed
     * again, at once, even by the same replica id. */
    int n = -1;
    ck_assert_int_eq(storage_jobs_recover(f.db, &n, NULL), 0);
    ck_assert_int_eq(n, 2);
    expect_depth(f.db, 0, 2);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM jobs WHERE lease_owner IS NULL"
                                                 " AND lease_expires_at = 0", 0), 2);

    /* Recovered jobs are claimed again in order, counting the attempt. */
    ck_assert_int_eq(storage_fixture_claim(f.db, &j, NULL), 0);
    ck_assert_int_eq(j.id, ja);
    ck_assert_int_eq(j.attempts, 2);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_jobs_release(f.db, ja, NULL), 0);
    expect_depth(f.db, 1, 1);
    ck_assert_int_eq(storage_fixture_claim(f.db, &j, NULL), 0);
    ck_assert_int_eq(j.id, ja);
    ck_assert_int_eq(j.attempts, 3);
    job_row_cleanup(&j);

    /* Finished jobs leave the queue. */
    ck_assert_int_eq(storage_jobs_finish(f.db, ja, JOB_FAILED, "why", NULL), 0);
    ck_assert_int_eq(storage_fixture_count_text(f.db, "SELECT count(*) FROM jobs WHERE error = ?1", "why"), 1);
    ck_assert_int_eq(storage_fixture_claim(f.db, &j, NULL), 0);
    ck_assert_int_eq(j.id, jb);
    ck_assert_int_eq(j.attempts, 2);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_jobs_finish(f.db, jb, JOB_DONE, NULL, NULL), 0);
    expect_depth(f.db, 0, 0);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM jobs WHERE agent_id = ?1"
                                                 " AND state IN ('queued', 'running')", a), 0);
    ck_assert_int_eq(storage_fixture_claim(f.db, &j, NULL), AD_ENOTFOUND);
    ck_assert_int_eq(storage_jobs_recover(f.db, &n, NULL), 0);
    ck_assert_int_eq(n, 0);
    storage_fixture_close(&f);
}
END_TEST

/* A pipeline job's eta_at is shown on status as eta_s while the job runs.
 * A job put back in the queue (released at a stop or a cancel, postponed
 * after a refused write, or recovered at start after a crash) no longer
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
        ck_assert_int_eq(storage_fixture_claim(f.db, &j, &e), 0);
        ck_assert_int_eq(j.id, ja);
        job_row_cleanup(&j);
        ck_assert_int_eq(storage_exec_start_job(f.db, a, ja, 0, "DataProcessor", 0, 0, 4242, &e), 0);
        ck_assert_int_eq(storage_fixture_count(f.db, eta_of, a), 4242);
        if (way == 0) ck_assert_int_eq(storage_jobs_release(f.db, ja, &e), 0);
        if (way == 1) ck_assert_int_eq(storage_jobs_postpone(f.db, ja, &e), 1);
        if (way == 2) {
            int n = 0;
            ck_assert_int_eq(storage_jobs_recover(f.db, &n, &e), 0);
            ck_assert_int_eq(n, 1);
        }
        ck_assert_msg(storage_fixture_count(f.db, eta_of, a) == 0, "way %d: eta_at left behind", way);
        /* Recovery leaves the job running with its lease expired. */
        expect_depth(f.db, way == 2 ? 1 : 2, way == 2 ? 1 : 0);
    }
    /* Another agent's running job keeps its eta when one is put back. */
    ck_assert_int_eq(storage_fixture_claim(f.db, &j, &e), 0);
    ck_assert_int_eq(j.id, ja);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_fixture_claim(f.db, &j, &e), 0);
    ck_assert_int_eq(j.id, jb);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_exec_start_job(f.db, b, jb, 0, "DataProcessor", 0, 0, 777, &e), 0);
    ck_assert_int_eq(storage_jobs_release(f.db, ja, &e), 0);
    ck_assert_int_eq(storage_jobs_postpone(f.db, ja, &e), 0);
    ck_assert_int_eq(storage_fixture_count(f.db, eta_of, b), 777);
    storage_fixture_close(&f);
}
END_TEST

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The job's lease expiry, -1 when it has none. */
static int64_t lease_expiry(storage_conn *db, int64_t job_id)
{
    return storage_fixture_count(db, "SELECT coalesce(lease_expires_at, -1) FROM jobs WHERE id = ?1", job_id);
}

/* 1 when `owner` holds exactly one job's lease, and it is `job_id`'s. */
static int lease_owned_by(storage_conn *db, int64_t job_id, const char *owner)
{
    return storage_fixture_count_text(db, "SELECT count(*) FROM jobs WHERE lease_owner = ?1", owner) == 1 &&
           storage_fixture_count_text(db, "SELECT max(id) FROM jobs WHERE lease_owner = ?1", owner) == job_id;
}

/* Two replicas, A and B, on one database. A claims with a short lease and
 * dies (stops renewing); B finds nothing while the lease holds, then takes
 * the job over (a second attempt). A, alive after all, is refused at its
 * next unit of work and can neither finish, fail, release nor postpone the
 * job that is now B's. */
START_TEST(test_jobs_expired_lease_is_taken_over)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t a = 0;
    int64_t ja = agent_with_job(f.db, "a", &a);
    ad_err e = {0};
    job_row j;
    storage_jobs_set_owner("A", 150);
    int64_t before = ad_clock_now_ms();
    ck_assert_int_eq(storage_jobs_claim(f.db, "A", 150, &j, &e), 0);
    ck_assert_int_eq(j.id, ja);
    ck_assert_int_eq(j.attempts, 1);
    job_row_cleanup(&j);
    ck_assert(lease_owned_by(f.db, ja, "A"));
    ck_assert_int_ge(lease_expiry(f.db, ja), before + 150);
    ck_assert_int_le(lease_expiry(f.db, ja), ad_clock_now_ms() + 150);
    ck_assert_int_eq(storage_jobs_claim(f.db, "B", 150, &j, &e), AD_ENOTFOUND);
    ck_assert_int_eq(storage_jobs_hold(f.db, ja, &e), 0);

    sleep_ms(200);
    /* A's own claim never takes back a job of its own lease (a worker of
     * A's process holds it); B's does. */
    ck_assert_int_eq(storage_jobs_claim(f.db, "A", 150, &j, &e), AD_ENOTFOUND);
    ck_assert_int_eq(storage_jobs_claim(f.db, "B", 60000, &j, &e), 0);
    ck_assert_int_eq(j.id, ja);
    ck_assert_int_eq(j.attempts, 2);
    job_row_cleanup(&j);
    ck_assert(lease_owned_by(f.db, ja, "B"));

    /* A is refused everywhere and changes nothing. */
    ck_assert_int_eq(storage_jobs_hold(f.db, ja, &e), AD_ECANCELLED);
    ck_assert_int_eq(storage_exec_start_job(f.db, a, ja, 0, "DataProcessor", 0, 0, 4242, &e), AD_ECANCELLED);
    ck_assert_int_eq(storage_jobs_finish(f.db, ja, JOB_DONE, NULL, &e), AD_ECANCELLED);
    ck_assert_int_eq(storage_jobs_fail_agent(f.db, ja, a, "A's failure", &e), AD_ECANCELLED);
    ck_assert_int_eq(storage_jobs_release(f.db, ja, &e), 0);
    ck_assert_int_eq(storage_jobs_postpone(f.db, ja, &e), 0);
    expect_depth(f.db, 0, 1);
    ck_assert(lease_owned_by(f.db, ja, "B"));
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT attempts FROM jobs WHERE id = ?1", ja), 2);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM agents WHERE id = ?1"
                                                 " AND status = 'error'", a), 0);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT coalesce(eta_at, 0) FROM agents WHERE id = ?1", a), 0);

    /* B holds it and ends it. */
    storage_jobs_set_owner("B", 60000);
    ck_assert_int_eq(storage_jobs_hold(f.db, ja, &e), 0);
    ck_assert_int_eq(storage_jobs_finish(f.db, ja, JOB_DONE, NULL, &e), 0);
    expect_depth(f.db, 0, 0);
    storage_fixture_close(&f);
}
END_TEST

/* The heartbeat's renew, and every hold, push the lease on: a job whose
 * replica lives is never taken over, however long it runs. */
START_TEST(test_jobs_renew_keeps_the_job)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t a = 0, b = 0;
    int64_t ja = agent_with_job(f.db, "a", &a);
    int64_t jb = agent_with_job(f.db, "b", &b);
    ad_err e = {0};
    job_row j;
    storage_jobs_set_owner("A", 300);
    ck_assert_int_eq(storage_jobs_claim(f.db, "A", 300, &j, &e), 0);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_jobs_claim(f.db, "A", 300, &j, &e), 0);
    job_row_cleanup(&j);
    for (int beat = 0; beat < 4; beat++) {
        sleep_ms(100);
        int n = -1;
        if (beat % 2 == 0) {
            ck_assert_int_eq(storage_jobs_renew(f.db, "A", 300, &n, &e), 0);
            ck_assert_int_eq(n, 2);
        } else {
            ck_assert_int_eq(storage_jobs_hold(f.db, ja, &e), 0);
            ck_assert_int_eq(storage_jobs_hold(f.db, jb, &e), 0);
        }
        ck_assert_int_eq(storage_jobs_claim(f.db, "B", 300, &j, &e), AD_ENOTFOUND);
    }
    /* 400 ms after claims of 300 ms leases: renewed, A still holds both. */
    ck_assert_int_eq(storage_jobs_hold(f.db, ja, &e), 0);
    int n = -1;
    ck_assert_int_eq(storage_jobs_renew(f.db, "B", 300, &n, &e), 0);
    ck_assert_int_eq(n, 0);
    /* Once A stops renewing, B takes both over. */
    sleep_ms(350);
    ck_assert_int_eq(storage_jobs_claim(f.db, "B", 300, &j, &e), 0);
    ck_assert_int_eq(j.id, ja);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_jobs_claim(f.db, "B", 300, &j, &e), 0);
    ck_assert_int_eq(j.id, jb);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_jobs_renew(f.db, "A", 300, &n, &e), 0);
    ck_assert_int_eq(n, 0);
    storage_fixture_close(&f);
}
END_TEST

/* When another replica's job may next be taken over: the earliest expiry of
 * the leases this replica does not hold; 0 when there is none. */
START_TEST(test_jobs_next_expiry)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t a = 0, b = 0;
    int64_t ja = agent_with_job(f.db, "a", &a);
    agent_with_job(f.db, "b", &b);
    ad_err e = {0};
    job_row j;
    int64_t at = -1;
    ck_assert_int_eq(storage_jobs_next_expiry(f.db, "A", &at, &e), 0);
    ck_assert_int_eq(at, 0);
    ck_assert_int_eq(storage_jobs_claim(f.db, "A", 5000, &j, &e), 0);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_jobs_claim(f.db, "C", 9000, &j, &e), 0);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_jobs_next_expiry(f.db, "A", &at, &e), 0);
    ck_assert_int_eq(at, lease_expiry(f.db, j.id));
    ck_assert_int_eq(storage_jobs_next_expiry(f.db, "B", &at, &e), 0);
    ck_assert_int_eq(at, lease_expiry(f.db, ja));
    ck_assert_int_eq(storage_jobs_next_expiry(f.db, "C", &at, &e), 0);
    ck_assert_int_eq(at, lease_expiry(f.db, ja));
    /* Released, A's job has no lease left. */
    storage_jobs_set_owner("A", 5000);
    ck_assert_int_eq(storage_jobs_release(f.db, ja, &e), 0);
    ck_assert_int_eq(storage_jobs_next_expiry(f.db, "C", &at, &e), 0);
    ck_assert_int_eq(at, 0);
    storage_fixture_close(&f);
}
END_TEST

/* Release and postpone give the job back to any replica: no owner, no
 * expiry, queued; and recovery (SQLite) frees every replica's lease. */
START_TEST(test_jobs_put_back_clears_the_lease)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t a = 0, b = 0;
    int64_t ja = agent_with_job(f.db, "a", &a);
    int64_t jb = agent_with_job(f.db, "b", &b);
    ad_err e = {0};
    job_row j;
    const char *unleased = "SELECT count(*) FROM jobs WHERE id = ?1 AND state = 'queued'"
                           " AND lease_owner IS NULL AND lease_expires_at IS NULL";
    storage_jobs_set_owner("A", 60000);
    for (int way = 0; way < 2; way++) {
        ck_assert_int_eq(storage_jobs_claim(f.db, "A", 60000, &j, &e), 0);
        ck_assert_int_eq(j.id, ja);
        job_row_cleanup(&j);
        ck_assert_int_eq(storage_fixture_count(f.db, unleased, ja), 0);
        if (way == 0) ck_assert_int_eq(storage_jobs_release(f.db, ja, &e), 0);
        else ck_assert_int_eq(storage_jobs_postpone(f.db, ja, &e), 1);
        ck_assert_int_eq(storage_fixture_count(f.db, unleased, ja), 1);
    }
    /* Two replicas hold a job each under long leases; recovery frees both. */
    ck_assert_int_eq(storage_jobs_claim(f.db, "A", 600000, &j, &e), 0);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_jobs_claim(f.db, "B", 600000, &j, &e), 0);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_jobs_claim(f.db, "C", 600000, &j, &e), AD_ENOTFOUND);
    int n = 0;
    ck_assert_int_eq(storage_jobs_recover(f.db, &n, &e), 0);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(storage_jobs_claim(f.db, "C", 600000, &j, &e), 0);
    ck_assert_int_eq(j.id, ja);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_jobs_claim(f.db, "C", 600000, &j, &e), 0);
    ck_assert_int_eq(j.id, jb);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_fixture_count_text(f.db, "SELECT count(*) FROM jobs WHERE lease_owner = ?1", "C"), 2);
    storage_fixture_close(&f);
}
END_TEST

/* SQLite has nothing to listen to: the wait returns at once. */
START_TEST(test_jobs_wait_on_sqlite_returns_at_once)
{
    storage_fixture f;
    storage_fixture_open(&f);
    ck_assert_int_eq(storage_jobs_shared(f.db), 0);
    int64_t t0 = ad_clock_mono_ms();
    ck_assert_int_eq(storage_jobs_wait(f.db, 5000, NULL), 0);
    ck_assert_int_lt(ad_clock_mono_ms() - t0, 1000);
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
    job_row j;
    ck_assert_int_eq(storage_fixture_claim(f.db, &j, &e), 0);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_exec_reset(f.db, a, &count, &e), AD_ECONFLICT);
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
    tcase_add_test(tc, test_jobs_recover_and_release);
    tcase_add_test(tc, test_jobs_put_back_clear_the_eta);
    tcase_add_test(tc, test_jobs_expired_lease_is_taken_over);
    tcase_add_test(tc, test_jobs_renew_keeps_the_job);
    tcase_add_test(tc, test_jobs_next_expiry);
    tcase_add_test(tc, test_jobs_put_back_clears_the_lease);
    tcase_add_test(tc, test_jobs_wait_on_sqlite_returns_at_once);
    tcase_add_test(tc, test_jobs_enqueue_for_missing_agent);
    tcase_add_test(tc, test_exec_reset_refused_while_a_job_is_active);
    suite_add_tcase(s, tc);
    return s;
}
