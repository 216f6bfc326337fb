/* Tests storage/trainings.c: training groups start all or nothing, a stop
 * cancels a group's runs and jobs, and a stopped run is never restarted nor
 * records more iterations. */
#include <check.h>
#include <string.h>
#include <time.h>

#include "pipeline/plan.h"
#include "storage/agents.h"
#include "storage/db.h"
#include "storage/jobs.h"
#include "storage/trainings.h"
#include "storage/versions.h"
#include "tests/unit/storage/fixtures.h"

Suite *storage_trainings_suite(void);

/* An agent; with `deployed`, its pipeline job done and a deployed version. */
static int64_t agent(storage_conn *db, const char *user_id, int deployed)
{
    agent_new a = {.user_id = user_id, .source = "text", .material = "m", .material_len = 1};
    pipeline_plan_agent(&a);
    int64_t id = 0, vid = 0;
    ck_assert_int_eq(storage_agents_create(db, &a, &id, NULL), 0);
    if (!deployed) return id;
    int64_t job = storage_fixture_count(db, "SELECT max(id) FROM jobs WHERE agent_id = ?1", id);
    storage_fixture_exec(db, "UPDATE jobs SET state = 'done' WHERE id = ?1", job);
    ck_assert_int_eq(storage_versions_create(db, id, "v1", "en", "{}", "p", "[]", &vid, NULL), 0);
    storage_fixture_exec(db, "UPDATE agents SET deployed_version_id ="
                             " (SELECT max(id) FROM versions WHERE agent_id = ?1) WHERE id = ?1", id);
    return id;
}

static int64_t count(storage_conn *db, const char *sql)
{
    return storage_fixture_count(db, sql, 0);
}

START_TEST(test_group_all_or_nothing)
{
    storage_fixture f;
    storage_fixture_open(&f);
    agent(f.db, "ann", 1);
    agent(f.db, "bob", 1);
    agent(f.db, "new", 0);
    ad_err e = {0};
    int64_t gid = 0;
    group_refusal why[3];

    const char *unknown[] = {"ann", "ghost", "bob"};
    ck_assert_int_eq(storage_groups_start(f.db, unknown, 3, 5, PIPELINE_JOB_TRAIN, &gid, why, &e), AD_ENOTFOUND);
    ck_assert_int_eq(why[0], GROUP_OK);
    ck_assert_int_eq(why[1], GROUP_UNKNOWN);
    ck_assert_int_eq(why[2], GROUP_OK);
    const char *not_ready[] = {"ann", "new"};
    ck_assert_int_eq(storage_groups_start(f.db, not_ready, 2, 5, PIPELINE_JOB_TRAIN, &gid, why, &e), AD_ESTATE);
    ck_assert_int_eq(why[1], GROUP_NOT_READY);
    /* Nothing was written by the refusals. */
    ck_assert_int_eq(count(f.db, "SELECT count(*) FROM training_groups"), 0);
    ck_assert_int_eq(count(f.db, "SELECT count(*) FROM trainings"), 0);
    ck_assert_int_eq(count(f.db, "SELECT count(*) FROM jobs WHERE kind = 'train'"), 0);

    const char *both[] = {"ann", "bob"};
    ck_assert_int_eq(storage_groups_start(f.db, both, 2, 3, PIPELINE_JOB_TRAIN, &gid, why, &e), 0);
    ck_assert_int_gt(gid, 0);
    ck_assert_int_eq(count(f.db, "SELECT count(*) FROM trainings WHERE group_id IS NOT NULL"), 2);
    ck_assert_int_eq(count(f.db, "SELECT count(*) FROM jobs WHERE kind = 'train' AND state = 'queued'"), 2);
    char name[32];
    storage_groups_version_name(gid, name, sizeof(name));
    ck_assert_int_eq(storage_fixture_count_text(f.db, "SELECT count(*) FROM trainings WHERE name = ?1", name), 2);
    /* Busy now: a second group with either is refused. */
    const char *again[] = {"bob"};
    ck_assert_int_eq(storage_groups_start(f.db, again, 1, 3, PIPELINE_JOB_TRAIN, &gid, why, &e), AD_ESTATE);
    ck_assert_int_eq(why[0], GROUP_BUSY);
    group_row g;
    ck_assert_int_eq(storage_groups_latest(f.db, NULL, &g, &e), 0);
    ck_assert_int_eq(g.total_agents, 2);
    ck_assert_int_eq(g.cycles, 3);
    ck_assert_int_eq(g.stopped_at, 0);
    storage_fixture_close(&f);
}
END_TEST

static void count_runs(void *ud, const group_run *r)
{
    (void)r;
    (*(int *)ud)++;
}

START_TEST(test_stop_cancels_runs_and_jobs)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t ann = agent(f.db, "ann", 1);
    agent(f.db, "bob", 1);
    ad_err e = {0};
    int64_t gid = 0, stopped_gid = 0, at = 0;
    int stopped = -1;
    ck_assert_int_eq(storage_groups_stop(f.db, "stopped by the test", NULL, &stopped_gid, &stopped, &at, NULL, NULL, &e), 0);
    ck_assert_int_eq(stopped, 0);
    ck_assert_int_eq(stopped_gid, 0);

    const char *both[] = {"ann", "bob"};
    group_refusal why[2];
    ck_assert_int_eq(storage_groups_start(f.db, both, 2, 4, PIPELINE_JOB_TRAIN, &gid, why, &e), 0);
    /* ann's run is under way, bob's waits. */
    job_row j;
    ck_assert_int_eq(storage_fixture_claim(f.db, &j, &e), 0);
    ck_assert_int_eq(j.agent_id, ann);
    int64_t tid = count(f.db, "SELECT id FROM trainings WHERE agent_id = (SELECT id FROM agents WHERE user_id = 'ann')");
    ck_assert_int_eq(storage_trainings_start(f.db, tid, 0, &e), 0);
    ck_assert_int_eq(storage_trainings_add_iteration(f.db, tid, 0, 1, "{}", "{\"quality_score\":0.5}", 3, &e), 0);

    ck_assert_int_eq(storage_groups_stop(f.db, "stopped by the test", NULL, &stopped_gid, &stopped, &at, NULL, NULL, &e), 0);
    ck_assert_int_eq(stopped, 2);
    ck_assert_int_eq(stopped_gid, gid);
    ck_assert_int_gt(at, 0);
    ck_assert_int_eq(count(f.db, "SELECT count(*) FROM trainings WHERE status = 'cancelled'"), 2);
    /* The reason is the caller's: storage knows no route. */
    ck_assert_int_eq(storage_fixture_count_text(f.db, "SELECT count(*) FROM trainings WHERE error = ?1",
                                                "stopped by the test"), 2);
    ck_assert_int_eq(count(f.db, "SELECT count(*) FROM jobs WHERE kind = 'train' AND state = 'cancelled'"), 2);
    ck_assert_int_eq(count(f.db, "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')"), 0);
    /* The worker's job is no longer its own; the run stays cancelled. */
    ck_assert_int_eq(storage_jobs_hold(f.db, j.id, &e), AD_ECANCELLED);
    ck_assert_int_eq(storage_trainings_add_iteration(f.db, tid, 0, 2, "{}", "{}", 3, &e), 0);
    ck_assert_int_eq(count(f.db, "SELECT count(*) FROM training_iterations"), 1);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT done_iterations FROM trainings WHERE id = ?1", tid), 1);
    ck_assert_int_eq(storage_trainings_start(f.db, tid, 0, &e), AD_ECANCELLED);
    ck_assert_int_eq(count(f.db, "SELECT count(*) FROM trainings WHERE status = 'cancelled'"), 2);
    /* The reason is the caller's: storage knows no route. */
    ck_assert_int_eq(storage_fixture_count_text(f.db, "SELECT count(*) FROM trainings WHERE error = ?1",
                                                "stopped by the test"), 2);
    job_row_cleanup(&j);

    group_row g;
    ck_assert_int_eq(storage_groups_latest(f.db, NULL, &g, &e), 0);
    ck_assert_int_eq(g.stopped_at, at);
    int runs = 0;
    ck_assert_int_eq(storage_groups_runs(f.db, gid, count_runs, &runs, &e), 0);
    ck_assert_int_eq(runs, 2);
    /* Nothing left to stop; the agents are free for a new group. */
    ck_assert_int_eq(storage_groups_stop(f.db, "stopped by the test", NULL, &stopped_gid, &stopped, &at, NULL, NULL, &e), 0);
    ck_assert_int_eq(stopped, 0);
    ck_assert_int_eq(storage_groups_start(f.db, both, 2, 1, PIPELINE_JOB_TRAIN, &gid, why, &e), 0);
    storage_fixture_close(&f);
}
END_TEST

/* A worker that let go of its job just as a stop came (shutdown, a busy
 * database) must not put the cancelled job back in the queue, and no late
 * failure may turn the cancelled run into a failed one. */
START_TEST(test_stopped_run_stays_cancelled)
{
    storage_fixture f;
    storage_fixture_open(&f);
    agent(f.db, "ann", 1);
    ad_err e = {0};
    int64_t gid = 0, stopped_gid = 0, at = 0;
    int stopped = 0;
    const char *ids[] = {"ann"};
    group_refusal why[1];
    ck_assert_int_eq(storage_groups_start(f.db, ids, 1, 4, PIPELINE_JOB_TRAIN, &gid, why, &e), 0);
    job_row j;
    ck_assert_int_eq(storage_fixture_claim(f.db, &j, &e), 0);
    int64_t tid = count(f.db, "SELECT max(id) FROM trainings");
    ck_assert_int_eq(storage_trainings_start(f.db, tid, 0, &e), 0);
    ck_assert_int_eq(storage_groups_stop(f.db, "stopped by the test", NULL, &stopped_gid, &stopped, &at, NULL, NULL, &e), 0);
    ck_assert_int_eq(stopped, 1);

    ck_assert_int_eq(storage_jobs_release(f.db, j.id, &e), 0);
    ck_assert_int_eq(storage_fixture_count_text(f.db, "SELECT count(*) FROM jobs WHERE state = ?1", "cancelled"), 1);
    job_row again;
    ck_assert_int_eq(storage_fixture_claim(f.db, &again, &e), AD_ENOTFOUND);
    ck_assert_int_eq(storage_trainings_finish(f.db, tid, TRAINING_FAILED, 0, 0, NULL, "late failure", &e), 0);
    ck_assert_int_eq(storage_fixture_count_text(f.db, "SELECT count(*) FROM trainings WHERE status = ?1",
                                                "cancelled"), 1);
    ck_assert_int_eq(storage_fixture_count_text(f.db, "SELECT count(*) FROM trainings WHERE error = ?1",
                                                "late failure"), 0);
    job_row_cleanup(&j);
    storage_fixture_close(&f);
}
END_TEST

/* A later group that has already ended must not hide an earlier one still
 * going: the stop reaches every group run still queued or running. */
START_TEST(test_stop_reaches_earlier_groups)
{
    storage_fixture f;
    storage_fixture_open(&f);
    agent(f.db, "ann", 1);
    agent(f.db, "bob", 1);
    ad_err e = {0};
    int64_t g1 = 0, g2 = 0, stopped_gid = 0, at = 0;
    int stopped = 0;
    group_refusal why[1];
    const char *first[] = {"ann"}, *second[] = {"bob"};
    ck_assert_int_eq(storage_groups_start(f.db, first, 1, 1000, PIPELINE_JOB_TRAIN, &g1, why, &e), 0);
    ck_assert_int_eq(storage_groups_start(f.db, second, 1, 1, PIPELINE_JOB_TRAIN, &g2, why, &e), 0);
    ck_assert_int_gt(g2, g1);
    /* bob's one-cycle group ends; ann's long one goes on. */
    int64_t bob_run = storage_fixture_count(f.db, "SELECT id FROM trainings WHERE group_id = ?1", g2);
    ck_assert_int_eq(storage_trainings_finish(f.db, bob_run, TRAINING_DONE, 1, 0, NULL, NULL, &e), 0);
    storage_fixture_exec(f.db, "UPDATE jobs SET state = 'done' WHERE id = ?1", storage_fixture_count(f.db,
        "SELECT id FROM jobs WHERE json_extract(params, '$.training_id') = ?1", bob_run));

    ck_assert_int_eq(storage_groups_stop(f.db, "stopped by the test", NULL, &stopped_gid, &stopped, &at, NULL, NULL, &e), 0);
    ck_assert_int_eq(stopped, 1);
    ck_assert_int_eq(stopped_gid, g1);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM trainings WHERE group_id = ?1"
                                                 " AND status = 'cancelled'", g1), 1);
    ck_assert_int_eq(count(f.db, "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')"), 0);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT stopped_at FROM training_groups WHERE id = ?1", g1), at);
    /* The ended group is not marked stopped. */
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT stopped_at IS NULL FROM training_groups WHERE id = ?1", g2), 1);
    storage_fixture_close(&f);
}
END_TEST

/* A run starts by deleting the candidates a crash left; when the read that
 * lists them fails, the start fails with its code and writes nothing,
 * rather than starting the run beside the leftovers. */
/* A token bound to some agents reads the latest group holding one of them,
 * not a later group of others. */
START_TEST(test_latest_group_of_some_agents)
{
    storage_fixture f;
    storage_fixture_open(&f);
    agent(f.db, "ann", 1);
    agent(f.db, "bob", 1);
    agent(f.db, "cid", 1);
    ad_err e = {0};
    group_refusal why[1];
    int64_t first = 0, second = 0;
    const char *ann[] = {"ann"}, *bob[] = {"bob"};
    ck_assert_int_eq(storage_groups_start(f.db, ann, 1, 3, PIPELINE_JOB_TRAIN, &first, why, &e), 0);
    ck_assert_int_eq(storage_groups_start(f.db, bob, 1, 3, PIPELINE_JOB_TRAIN, &second, why, &e), 0);
    group_row g;
    ck_assert_int_eq(storage_groups_latest(f.db, NULL, &g, &e), 0);
    ck_assert_int_eq(g.id, second);
    ck_assert_int_eq(storage_groups_latest(f.db, "[\"ann\"]", &g, &e), 0);
    ck_assert_int_eq(g.id, first);
    ck_assert_int_eq(storage_groups_latest(f.db, "[\"ann\",\"bob\"]", &g, &e), 0);
    ck_assert_int_eq(g.id, second);
    ck_assert_int_eq(storage_groups_latest(f.db, "[\"cid\"]", &g, &e), AD_ENOTFOUND);
    storage_fixture_close(&f);
}
END_TEST

/* A candidate version of the agent's, as a training try leaves one. */
static int64_t candidate(storage_conn *db, int64_t agent_id, const char *name)
{
    int64_t vid = 0;
    ck_assert_int_eq(storage_versions_create(db, agent_id, name, "en", "{}", "p", "[]", &vid, NULL), 0);
    storage_fixture_exec(db, "UPDATE versions SET state = 'candidate' WHERE id = ?1", vid);
    return vid;
}

/* Replica A claims a run's job and dies (stops renewing); B takes the job
 * over and restarts the run. A, alive after all, writes nothing into B's
 * run: its start, its iterations and its candidate drops hold the job
 * first and are refused. */
START_TEST(test_taken_over_run_is_left_alone)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t ann = agent(f.db, "ann", 1);
    ad_err e = {0};
    int64_t tid = 0;
    ck_assert_int_eq(storage_trainings_create(f.db, ann, "t1", 3, PIPELINE_JOB_TRAIN, &tid, &e), 0);
    job_row j;
    storage_jobs_set_owner("A", 100);
    ck_assert_int_eq(storage_jobs_claim(f.db, "A", 100, &j, &e), 0);
    int64_t job = j.id;
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_trainings_start(f.db, tid, job, &e), 0);
    ck_assert_int_eq(storage_trainings_add_iteration(f.db, tid, job, 1, "{}", "{}", 3, &e), 0);
    int64_t va = candidate(f.db, ann, "~a-1");
    ck_assert_int_eq(storage_versions_drop(f.db, va, job, &e), 0);

    nanosleep(&(struct timespec){0, 150 * 1000000L}, NULL);
    ck_assert_int_eq(storage_jobs_claim(f.db, "B", 60000, &j, &e), 0);
    ck_assert_int_eq(j.id, job);
    job_row_cleanup(&j);
    storage_jobs_set_owner("B", 60000);
    ck_assert_int_eq(storage_trainings_start(f.db, tid, job, &e), 0);
    ck_assert_int_eq(count(f.db, "SELECT count(*) FROM training_iterations"), 0);
    ck_assert_int_eq(storage_trainings_add_iteration(f.db, tid, job, 1, "{}", "{\"b\":1}", 3, &e), 0);
    int64_t vb = candidate(f.db, ann, "~b-1");

    storage_jobs_set_owner("A", 100);
    ck_assert_int_eq(storage_trainings_add_iteration(f.db, tid, job, 2, "{}", "{\"a\":2}", 3, &e), AD_ECANCELLED);
    ck_assert_int_eq(storage_versions_drop(f.db, vb, job, &e), AD_ECANCELLED);
    ck_assert_int_eq(storage_trainings_start(f.db, tid, job, &e), AD_ECANCELLED);
    /* B's run is as B left it. */
    ck_assert_int_eq(count(f.db, "SELECT count(*) FROM training_iterations"), 1);
    ck_assert_int_eq(count(f.db, "SELECT count(*) FROM training_iterations WHERE metrics = '{\"b\":1}'"), 1);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT done_iterations FROM trainings WHERE id = ?1", tid), 1);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM versions WHERE id = ?1", vb), 1);
    storage_fixture_close(&f);
}
END_TEST

START_TEST(test_start_fails_when_leftover_candidates_cannot_be_read)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t id = agent(f.db, "crashed", 1);
    ad_err e = {0};
    int64_t tid = 0, cand = 0;
    ck_assert_int_eq(storage_trainings_create(f.db, id, "v2", 2, PIPELINE_JOB_TRAIN, &tid, &e), 0);
    ck_assert_int_eq(storage_versions_create(f.db, id, "~candidate-1-1", "en", "{}", "p", "[]", &cand, &e), 0);
    storage_fixture_exec(f.db, "UPDATE versions SET state = 'candidate' WHERE id = ?1", cand);
    storage_fixture_fail_statement(f.db, "state = 'candidate' LIMIT", 0);
    int rc = storage_trainings_start(f.db, tid, 0, &e);
    ck_assert_int_eq(storage_fixture_fail_statement(f.db, NULL, 0), 1);
    ck_assert_msg(rc == AD_EINTERNAL, "%s: %s", ad_err_name(rc), e.msg);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM versions WHERE id = ?1", cand), 1);
    ck_assert_int_eq(storage_fixture_count_text(f.db, "SELECT count(*) FROM trainings WHERE status = ?1", "queued"), 1);
    /* Once the read works, the start deletes them. */
    ck_assert_int_eq(storage_trainings_start(f.db, tid, 0, &e), 0);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM versions WHERE id = ?1", cand), 0);
    storage_fixture_close(&f);
}
END_TEST

Suite *storage_trainings_suite(void)
{
    Suite *s = suite_create("storage_trainings");
    TCase *tc = tcase_create("groups");
    tcase_add_test(tc, test_group_all_or_nothing);
    tcase_add_test(tc, test_stop_cancels_runs_and_jobs);
    tcase_add_test(tc, test_stopped_run_stays_cancelled);
    tcase_add_test(tc, test_stop_reaches_earlier_groups);
    tcase_add_test(tc, test_latest_group_of_some_agents);
    tcase_add_test(tc, test_start_fails_when_leftover_candidates_cannot_be_read);
    tcase_add_test(tc, test_taken_over_run_is_left_alone);
    suite_add_tcase(s, tc);
    return s;
}
