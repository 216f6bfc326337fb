/*
 * Tests pipeline/runner.c end to end without threads: a real database in a
 * temporary directory, one claimed job, pipeline_run_job on the test's thread.
 */
#include <check.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "model/answerer.h"
#include "model/params.h"
#include "model/text.h"
#include "pipeline/plan.h"
#include "pipeline/runner.h"
#include "pipeline/stages.h"
#include "storage/agents.h"
#include "storage/db.h"
#include "storage/executions.h"
#include "storage/jobs.h"
#include "storage/sql.h"
#include "storage/trainings.h"
#include "storage/versions.h"
#include "tests/common/pgserver.h"
#include "tests/unit/model/fixtures.h"
#include "tests/unit/storage/fixtures.h"

Suite *pipeline_runner_suite(void);

/* Free text with enough sentences for several passages. */
static const char free_text[] =
    "The Rust borrow checker enforces ownership rules at compile time. Every value has a single "
    "owner, and the value is dropped when its owner goes out of scope. References borrow a value "
    "without taking ownership of it.\n\n"
    "A mutable reference is exclusive: while it exists, no other reference to the same value may "
    "be used. Shared references may be many, but they do not allow mutation. These rules prevent "
    "data races in safe code.\n\n"
    "Lifetimes describe how long references are valid. The compiler infers most lifetimes, and "
    "explicit annotations are needed only when a function returns a reference whose source is "
    "ambiguous. Lifetime elision rules cover the common cases.\n\n"
    "Cargo is the Rust build tool and package manager. It downloads dependencies from crates.io, "
    "compiles the project and runs its tests with cargo test. Workspaces let several crates share "
    "one lock file and one target directory.\n";

/* The dataset's training_data as the JSON array the API stores: {prompt, answer, category}. */
static char *dataset_material(const cJSON *training, size_t *len)
{
    cJSON *arr = cJSON_CreateArray();
    const cJSON *pair;
    cJSON_ArrayForEach(pair, training)
    {
        cJSON *o = cJSON_CreateObject();
        static const char *const keys[] = {"prompt", "answer", "category"};
        for (size_t k = 0; k < 3; k++) {
            const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(pair, keys[k]));
            if (v) cJSON_AddStringToObject(o, keys[k], v);
        }
        cJSON_AddItemToArray(arr, o);
    }
    char *s = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    *len = strlen(s);
    return s;
}

static int64_t create(storage_conn *db, const char *user_id, const char *source, const char *material,
                      size_t len)
{
    agent_new a = {.user_id = user_id, .source = source, .material = material, .material_len = len,
                   .description = "unit-test agent"};
    pipeline_plan_agent(&a);
    int64_t id = 0;
    ad_err e = {0};
    ck_assert_msg(storage_agents_create(db, &a, &id, &e) == 0, "%s", e.msg);
    return id;
}

/* Claims the next job (it must be `agent_id`'s) and runs it to its end. */
static void run_next_job(storage_conn *db, int64_t agent_id)
{
    job_row job;
    ad_err e = {0};
    ck_assert_int_eq(storage_fixture_claim(db, &job, &e), 0);
    ck_assert_int_eq(job.agent_id, agent_id);
    atomic_int stop = 0;
    pipeline_run_job(db, &job, &stop);
    job_row_cleanup(&job);
}

/* Asserts the agent is ready with all four stages completed; returns the deployed version. */
static int64_t expect_ready(storage_conn *db, const char *user_id)
{
    agent_row a;
    ad_err e = {0};
    ck_assert_int_eq(storage_agents_get(db, user_id, &a, &e), 0);
    ck_assert_msg(a.status == AGENT_READY, "%s is %s at %s: %s", user_id, agent_state_to_string(a.status), a.stage,
                  a.error ? a.error : "");
    ck_assert_int_eq(a.progress, 100);
    ck_assert_ptr_null(a.error);
    ck_assert_ptr_nonnull(a.statistics);
    int64_t vid = a.deployed_version_id;
    ck_assert_int_gt(vid, 0);

    exec_row rows[PIPELINE_STAGES];
    int n = 0;
    ck_assert_int_eq(storage_exec_list(db, a.id, rows, PIPELINE_STAGES, &n, &e), 0);
    ck_assert_int_eq(n, PIPELINE_STAGES);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(rows[i].task_index, i);
        ck_assert_str_eq(rows[i].name, pipeline_stage_names[i]);
        ck_assert_msg(rows[i].status == EXEC_COMPLETED, "%s is %s", rows[i].name,
                      exec_status_to_string(rows[i].status));
        ck_assert_ptr_nonnull(rows[i].output);
        cJSON *out = cJSON_Parse(rows[i].output);
        ck_assert_msg(cJSON_IsObject(out) && out->child, "%s output: %s", rows[i].name,
                      rows[i].output);
        cJSON_Delete(out);
        exec_row_cleanup(&rows[i]);
    }

    version_row v;
    ck_assert_int_eq(storage_versions_get(db, vid, &v, &e), 0);
    ck_assert_int_eq(v.agent_id, a.id);
    ck_assert_int_eq(v.state, VERSION_DEPLOYED);
    ck_assert_int_gt(v.passages, 0);
    version_row_cleanup(&v);

    int64_t queued = -1, running = -1;
    ck_assert_int_eq(storage_jobs_depth(db, &queued, &running, &e), 0);
    ck_assert_int_eq(queued, 0);
    ck_assert_int_eq(running, 0);
    agent_row_cleanup(&a);
    return vid;
}

START_TEST(test_pipeline_dataset_agent_answers_its_own_prompts)
{
    cJSON *root = model_fixture_dataset("python_expert_dataset.json");
    ck_assert_msg(root != NULL, "python_expert_dataset.json not found in tests/data (run from the repository root)");
    const cJSON *training = cJSON_GetObjectItemCaseSensitive(root, "training_data");
    int total = cJSON_GetArraySize(training);
    ck_assert_int_gt(total, 0);

    storage_fixture f;
    storage_fixture_open(&f);
    size_t len;
    char *material = dataset_material(training, &len);
    int64_t id = create(f.db, "python_expert", "dataset", material, len);
    cJSON_free(material);
    run_next_job(f.db, id);
    int64_t vid = expect_ready(f.db, "python_expert");

    version_row v;
    ck_assert_int_eq(storage_versions_get(f.db, vid, &v, NULL), 0);
    ck_assert_int_eq(v.passages, total);
    model_params params;
    model_params_default(&params);
    cJSON *pj = cJSON_Parse(v.params);
    model_params_from_json(&params, pj);
    cJSON_Delete(pj);
    version_row_cleanup(&v);

    int right = 0;
    const cJSON *pair;
    cJSON_ArrayForEach(pair, training)
    {
        const char *prompt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(pair, "prompt"));
        const char *answer = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(pair, "answer"));
        /* The pipeline stores answers normalized; compare in the same form. */
        ad_buf expected;
        ad_buf_init(&expected);
        ck_assert_int_eq(text_normalize(answer, strlen(answer), &expected, NULL), 0);
        answerer_result r;
        ad_err e = {0};
        ck_assert_int_eq(answerer_answer(f.db, vid, ANALYSIS_EN, &params, prompt, params.top_k,
                                         ANSWERER_ALL, &r, &e), 0);
        if (r.text && strcmp(r.text, expected.data) == 0) right++;
        else fprintf(stderr, "missed: %s\n", prompt);
        answerer_result_cleanup(&r);
        ad_buf_cleanup(&expected);
    }
    ck_assert_msg(right * 100 >= total * 95, "%d of %d prompts answered with their own answer",
                  right, total);
    cJSON_Delete(root);
    storage_fixture_close(&f);
}
END_TEST

START_TEST(test_pipeline_text_agent_reaches_ready)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t id = create(f.db, "rust_notes", "text", free_text, sizeof(free_text) - 1);
    run_next_job(f.db, id);
    int64_t vid = expect_ready(f.db, "rust_notes");

    /* The deployed text model retrieves the passage about the asked topic. */
    model_params params;
    model_params_default(&params);
    answerer_result r;
    ck_assert_int_eq(answerer_answer(f.db, vid, ANALYSIS_EN, &params,
                                     "What does Cargo download dependencies from?",
                                     params.top_k, ANSWERER_ALL, &r, NULL), 0);
    ck_assert_ptr_nonnull(r.text);
    ck_assert_ptr_nonnull(strstr(r.text, "crates.io"));
    answerer_result_cleanup(&r);
    storage_fixture_close(&f);
}
END_TEST

/* A stage that cannot read its inputs passes storage's code on (here a
 * version row in a state no enum value has: AD_EINTERNAL), so the runner
 * can tell a busy or failing database, which it retries, from a stage
 * whose inputs are missing (AD_ESTATE). */
START_TEST(test_stage_passes_storage_codes_through)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t id = create(f.db, "codes", "text", free_text, sizeof(free_text) - 1);
    run_next_job(f.db, id);
    int64_t vid = expect_ready(f.db, "codes");
    char sql[96];
    snprintf(sql, sizeof(sql), "UPDATE versions SET state = 'bogus' WHERE id = %lld", (long long)vid);
    ck_assert_int_eq(sqlite3_exec(f.db->db, sql, NULL, NULL, NULL), SQLITE_OK);
    agent_row a;
    ad_err e = {0};
    ck_assert_int_eq(storage_agents_get(f.db, "codes", &a, &e), 0);
    atomic_int stop = 0;
    stage_ctx c = {.db = f.db, .agent = &a, .stop = &stop};
    model_params_default(&c.params);
    ck_assert_int_eq(stage_evaluate(&c, &e), AD_EINTERNAL);
    stage_ctx_cleanup(&c);
    /* The same for the stored output a stage builds on: an unreadable log
     * row is the database's failure, not a missing output (AD_ESTATE). */
    storage_fixture_exec(f.db, "UPDATE executions SET status = 'bogus' WHERE agent_id = ?1"
                               " AND task_index = 0", a.id);
    c = (stage_ctx){.db = f.db, .agent = &a, .stop = &stop};
    model_params_default(&c.params);
    ck_assert_int_eq(stage_train(&c, &e), AD_EINTERNAL);
    stage_ctx_cleanup(&c);
    agent_row_cleanup(&a);
    storage_fixture_close(&f);
}
END_TEST

/* A stage's context as the runner prepares it for stage `task` of `job_id`. */
static stage_ctx stage_for(storage_conn *db, const agent_row *a, int64_t job_id, int task, atomic_int *stop)
{
    int last = task == PIPELINE_STAGES - 1;
    stage_ctx c = {.db = db,
                   .agent = a,
                   .stop = stop,
                   .step = {.agent_id = a->id,
                            .job_id = job_id,
                            .task_index = task,
                            .next_stage = last ? NULL : pipeline_stage_names[task + 1],
                            .progress = (task + 1) * 100 / PIPELINE_STAGES}};
    model_params_default(&c.params);
    return c;
}

static exec_status stage_status(storage_conn *db, int64_t agent_id, int task)
{
    exec_row r;
    ck_assert_int_eq(storage_exec_get(db, agent_id, task, &r, NULL), 0);
    exec_status s = r.status;
    exec_row_cleanup(&r);
    return s;
}

/* A stage's rows and its execution-log row are one unit of work: when the
 * log row cannot be written (the job was cancelled; the next stage's row is
 * missing) none of the stage's rows is, though they were written first. */
START_TEST(test_stage_rows_and_log_row_commit_together)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t id = create(f.db, "atomic", "text", free_text, sizeof(free_text) - 1);
    job_row job;
    ad_err e = {0};
    ck_assert_int_eq(storage_fixture_claim(f.db, &job, &e), 0);
    agent_row a;
    ck_assert_int_eq(storage_agents_get_by_id(f.db, id, &a, &e), 0);
    atomic_int stop = 0;

    storage_fixture_exec(f.db, "UPDATE jobs SET state = 'cancelled' WHERE id = ?1", job.id);
    stage_ctx c = stage_for(f.db, &a, job.id, 0, &stop);
    ck_assert_int_eq(stage_process(&c, &e), AD_ECANCELLED);
    stage_ctx_cleanup(&c);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM units WHERE agent_id = ?1", id), 0);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM agents WHERE id = ?1"
                                                 " AND statistics IS NOT NULL", id), 0);
    ck_assert_int_eq(stage_status(f.db, id, 0), EXEC_PENDING);

    storage_fixture_exec(f.db, "UPDATE jobs SET state = 'running' WHERE id = ?1", job.id);
    c = stage_for(f.db, &a, job.id, 0, &stop);
    ck_assert_msg(stage_process(&c, &e) == 0, "%s", e.msg);
    stage_ctx_cleanup(&c);
    ck_assert_int_gt(storage_fixture_count(f.db, "SELECT count(*) FROM units WHERE agent_id = ?1", id), 0);
    ck_assert_int_eq(stage_status(f.db, id, 0), EXEC_COMPLETED);
    ck_assert_int_eq(stage_status(f.db, id, 1), EXEC_RUNNING);

    /* The trainer writes its version and passages, then the log: the
     * evaluator's row is missing, so the log write fails and takes the
     * version with it. */
    storage_fixture_exec(f.db, "DELETE FROM executions WHERE agent_id = ?1 AND task_index = 2", id);
    c = stage_for(f.db, &a, job.id, 1, &stop);
    ck_assert_int_eq(stage_train(&c, &e), AD_ENOTFOUND);
    stage_ctx_cleanup(&c);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM versions WHERE agent_id = ?1", id), 0);
    ck_assert_int_eq(stage_status(f.db, id, 1), EXEC_RUNNING);
    ck_assert_int_ne(sqlite3_get_autocommit(f.db->db), 0);
    agent_row_cleanup(&a);
    job_row_cleanup(&job);
    storage_fixture_close(&f);
}
END_TEST

typedef struct redeploy_race {
    const char *sql;      /* the statement (a substring of it) to count */
    int nth;              /* the occurrence the race happens before */
    int seen;
    int64_t agent_id, version_id;
    int interrupt;        /* 1: fail that statement instead (sqlite3_interrupt) */
    storage_conn *db;
} redeploy_race;

static void *redeploy_thread(void *arg)
{
    redeploy_race *r = arg;
    /* A client's deploy: forced, through the one deployment path. */
    deploy_candidate cand = {.version_id = r->version_id, .name = "v3", .quality = 0.5, .force = 1,
                             .created_by = "token:1", .actor = "token:1"};
    char uuid[AD_UUID_LEN];
    intptr_t rc = pipeline_deploy(storage_conn_get(), r->agent_id, &cand, uuid, NULL);
    storage_thread_release();
    return (void *)rc;
}

static int redeploy_trace(unsigned type, void *ud, void *p, void *x)
{
    (void)type, (void)p;
    redeploy_race *r = ud;
    if (!strstr((const char *)x, r->sql) || ++r->seen != r->nth) return 0;
    if (r->interrupt) {
        sqlite3_interrupt(r->db->db);
        return 0;
    }
    pthread_t th;
    void *rc;
    pthread_create(&th, NULL, redeploy_thread, r);
    pthread_join(th, &rc);
    ck_assert_int_eq((int)(intptr_t)rc, 0);
    return 0;
}

/* A ready agent serving v1, v2 and v3 built beside it (v2 the better), and
 * a replay of its ModelDeployer claimed with the evaluator's output naming
 * v2. Fills the ids. */
static void deploy_setup(storage_fixture *f, agent_row *a, job_row *job, int64_t *v1, int64_t *v2, int64_t *v3)
{
    int64_t id = create(f->db, "deployer", "text", free_text, sizeof(free_text) - 1);
    run_next_job(f->db, id);
    *v1 = expect_ready(f->db, "deployer");
    ad_err e = {0};
    ck_assert_int_eq(storage_versions_create(f->db, id, "v2", "en", "{}", "p", "[]", v2, &e), 0);
    ck_assert_int_eq(storage_versions_set_metrics(f->db, *v2, "{}", 0.99, &e), 0);
    ck_assert_int_eq(storage_versions_create(f->db, id, "v3", "en", "{}", "p", "[]", v3, &e), 0);
    ck_assert_int_eq(storage_versions_set_metrics(f->db, *v3, "{}", 0.5, &e), 0);
    char out[64];
    snprintf(out, sizeof(out), "{\"version_id\":%lld}", (long long)*v2);
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(f->db->db, "UPDATE executions SET output = ?1"
                                        " WHERE agent_id = ?2 AND task_index = 2", -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, out, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, id);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    ck_assert_int_eq(storage_jobs_enqueue(f->db, id, &(job_spec){PIPELINE_JOB_REPLAY, 3, NULL}, NULL, &e), 0);
    ck_assert_int_eq(storage_fixture_claim(f->db, job, &e), 0);
    ck_assert_int_eq(storage_agents_get_by_id(f->db, id, a, &e), 0);
}

/* The deployer decides against the version it read as serving; when a
 * client's deploy replaces that one before the decision is written, the
 * unit of work refuses it (nothing written) and the deployer decides again
 * against the new one. */
START_TEST(test_deploy_decides_again_when_another_deploy_wins)
{
    storage_fixture f;
    storage_fixture_open(&f);
    agent_row a;
    job_row job;
    int64_t v1, v2, v3;
    deploy_setup(&f, &a, &job, &v1, &v2, &v3);
    /* The deployer reads v2, then each decision the agent and the serving
     * version: the client's deploy of v3 lands just before the first
     * decision reads the serving v1, so that decision is written too late. */
    redeploy_race r = {.sql = "FROM versions WHERE id = ?1", .nth = 2, .agent_id = a.id, .version_id = v3};
    sqlite3_trace_v2(f.db->db, SQLITE_TRACE_STMT, redeploy_trace, &r);
    atomic_int stop = 0;
    ad_err e = {0};
    stage_ctx c = stage_for(f.db, &a, job.id, 3, &stop);
    int rc = stage_deploy(&c, &e);
    sqlite3_trace_v2(f.db->db, 0, NULL, NULL);
    ck_assert_msg(rc == 0, "%s", e.msg);
    ck_assert_int_ge(r.seen, 3); /* decided twice: v2 read once, the serving one each time */
    const char *reason = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c.output, "reason"));
    ck_assert_msg(reason && strstr(reason, "of v3"), "%s", reason ? reason : "(no reason)");
    stage_ctx_cleanup(&c);
    agent_row b;
    ck_assert_int_eq(storage_agents_get_by_id(f.db, a.id, &b, &e), 0);
    ck_assert_int_eq(b.deployed_version_id, v2);
    ck_assert_int_eq(b.status, AGENT_READY);
    agent_row_cleanup(&b);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM versions WHERE id = ?1"
                                                 " AND state = 'retired'", v3), 1);
    agent_row_cleanup(&a);
    job_row_cleanup(&job);
    storage_fixture_close(&f);
}
END_TEST

/* The deployer compares with the serving version: when that read fails, the
 * stage fails with the read's code rather than deploying uncompared. */
START_TEST(test_deploy_passes_a_failed_read_of_the_serving_version_through)
{
    storage_fixture f;
    storage_fixture_open(&f);
    agent_row a;
    job_row job;
    int64_t v1, v2, v3;
    deploy_setup(&f, &a, &job, &v1, &v2, &v3);
    redeploy_race r = {.sql = "FROM versions WHERE id = ?1", .nth = 2, .interrupt = 1, .db = f.db};
    sqlite3_trace_v2(f.db->db, SQLITE_TRACE_STMT, redeploy_trace, &r);
    atomic_int stop = 0;
    ad_err e = {0};
    stage_ctx c = stage_for(f.db, &a, job.id, 3, &stop);
    int rc = stage_deploy(&c, &e);
    sqlite3_trace_v2(f.db->db, 0, NULL, NULL);
    stage_ctx_cleanup(&c);
    ck_assert_int_eq(rc, AD_EINTERNAL);
    agent_row b;
    ck_assert_int_eq(storage_agents_get_by_id(f.db, a.id, &b, &e), 0);
    ck_assert_int_eq(b.deployed_version_id, v1);
    agent_row_cleanup(&b);
    agent_row_cleanup(&a);
    job_row_cleanup(&job);
    storage_fixture_close(&f);
}
END_TEST

/* A training run's best candidate is judged as the version it becomes: by
 * the run's name and the quality its evaluation gave, not by the candidate
 * row as it stands before its last unit of work (named "~candidate-...",
 * with no quality yet, it would always look clearly worse than the serving
 * version and never be deployed). Iteration 1 is the serving version's own
 * parameters on the same material, so the run is not worse and deploys. */
START_TEST(test_training_judges_its_best_candidate_as_published)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t id = create(f.db, "trainee", "text", free_text, sizeof(free_text) - 1);
    run_next_job(f.db, id);
    int64_t v1 = expect_ready(f.db, "trainee");
    version_row v;
    ad_err e = {0};
    ck_assert_int_eq(storage_versions_get(f.db, v1, &v, &e), 0);
    double q1 = v.quality;
    version_row_cleanup(&v);
    ck_assert_double_gt(q1, 0.05); /* above the deploy margin: a quality of 0 would be refused */

    int64_t tid = 0;
    ck_assert_int_eq(storage_trainings_create(f.db, id, "tuned", 1, PIPELINE_JOB_TRAIN, &tid, &e), 0);
    run_next_job(f.db, id);
    training_row t;
    ck_assert_int_eq(storage_trainings_get(f.db, id, tid, &t, &e), 0);
    ck_assert_msg(t.status == TRAINING_DONE, "run %s: %s", training_state_to_string(t.status),
                  t.error ? t.error : "");
    cJSON *td = cJSON_Parse(t.trained_data);
    const cJSON *dep = cJSON_GetObjectItemCaseSensitive(td, "deployment");
    const char *reason = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(dep, "reason"));
    ck_assert_msg(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(dep, "deployed")), "%s", reason ? reason : t.trained_data);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(dep, "version")), "tuned");
    double q = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(td, "quality_score"));
    ck_assert_double_eq_tol(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(dep, "quality")), q, 1e-9);
    cJSON_Delete(td);
    agent_row a;
    ck_assert_int_eq(storage_agents_get_by_id(f.db, id, &a, &e), 0);
    ck_assert_int_eq(a.deployed_version_id, t.version_id);
    agent_row_cleanup(&a);
    ck_assert_int_eq(storage_versions_get(f.db, t.version_id, &v, &e), 0);
    ck_assert_str_eq(v.name, "tuned");
    ck_assert_int_eq(v.state, VERSION_DEPLOYED);
    version_row_cleanup(&v);
    training_row_cleanup(&t);
    storage_fixture_close(&f);
}
END_TEST

/* A read of the processed material that fails part way keeps its code and
 * leaves nothing behind: the units read before the failure are freed, not
 * leaked by a caller that only cleans up after success. */
START_TEST(test_unit_set_load_frees_a_partial_read)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t id = create(f.db, "partial", "text", free_text, sizeof(free_text) - 1);
    run_next_job(f.db, id);
    expect_ready(f.db, "partial");
    ck_assert_int_gt(storage_fixture_count(f.db, "SELECT count(*) FROM units WHERE agent_id = ?1", id), 1);
    unit_set units;
    ad_err e = {0};
    storage_fixture_fail_statement(f.db, "FROM units WHERE agent_id", 1);
    int rc = unit_set_load(f.db, id, &units, &e);
    ck_assert_int_eq(storage_fixture_fail_statement(f.db, NULL, 0), 1);
    ck_assert_msg(rc == AD_EINTERNAL, "%s: %s", ad_err_name(rc), e.msg);
    ck_assert_uint_eq(units.count, 0);
    ck_assert_ptr_null(units.items);
    storage_fixture_close(&f);
}
END_TEST

static int64_t unit_of_work_began_ms;

static int begin_trace(unsigned type, void *ud, void *p, void *x)
{
    (void)type, (void)ud, (void)p;
    if (strncmp((const char *)x, "BEGIN", 5) == 0) unit_of_work_began_ms = ad_clock_mono_ms();
    return 0;
}

/* The ModelTrainer's logged duration runs up to its unit of work, so it
 * includes building the index in memory, most of the stage's work on large
 * material (it was taken before that build and left it out). */
START_TEST(test_trainer_duration_includes_the_index_build)
{
    storage_fixture f;
    storage_fixture_open(&f);
    /* A few hundred KiB of distinct sentences: an index build of many ms. */
    ad_buf text;
    ad_buf_init(&text);
    for (int i = 0; i < 6000; i++)
        ad_buf_printf(&text, "Sentence %d tells how parser%d reads token%d before stage%d writes log%d. ", i,
                      i % 97, i % 89, i % 83, i);
    int64_t id = create(f.db, "slow_trainer", "text", text.data, text.len);
    ad_buf_cleanup(&text);
    job_row job;
    ad_err e = {0};
    ck_assert_int_eq(storage_fixture_claim(f.db, &job, &e), 0);
    agent_row a;
    ck_assert_int_eq(storage_agents_get_by_id(f.db, id, &a, &e), 0);
    atomic_int stop = 0;
    stage_ctx c = stage_for(f.db, &a, job.id, 0, &stop);
    ck_assert_msg(stage_process(&c, &e) == 0, "%s", e.msg);
    stage_ctx_cleanup(&c);

    c = stage_for(f.db, &a, job.id, 1, &stop);
    c.started_ms = ad_clock_mono_ms();
    sqlite3_trace_v2(f.db->db, SQLITE_TRACE_STMT, begin_trace, NULL);
    int rc = stage_train(&c, &e);
    sqlite3_trace_v2(f.db->db, 0, NULL, NULL);
    ck_assert_msg(rc == 0, "%s", e.msg);
    int64_t until_unit = unit_of_work_began_ms - c.started_ms;
    stage_ctx_cleanup(&c);
    exec_row r;
    ck_assert_int_eq(storage_exec_get(f.db, id, 1, &r, &e), 0);
    ck_assert_msg(r.duration_ms + 2 >= until_unit, "logged %lld ms, the unit of work began after %lld ms",
                  (long long)r.duration_ms, (long long)until_unit);
    exec_row_cleanup(&r);
    agent_row_cleanup(&a);
    job_row_cleanup(&job);
    storage_fixture_close(&f);
}
END_TEST

/* A training job whose agent cannot be read goes back to the queue counted,
 * as the pipeline's does: left running, the pool put it back uncounted (as
 * for a refused write) and a row that never reads kept it, and its agent's
 * queue, retried forever instead of failing after the attempts allowed. */
START_TEST(test_training_job_with_an_unreadable_agent_is_released)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t id = create(f.db, "unreadable", "text", free_text, sizeof(free_text) - 1);
    run_next_job(f.db, id);
    expect_ready(f.db, "unreadable");
    int64_t tid = 0;
    ad_err e = {0};
    ck_assert_int_eq(storage_trainings_create(f.db, id, "v2", 1, PIPELINE_JOB_TRAIN, &tid, &e), 0);
    job_row job;
    ck_assert_int_eq(storage_fixture_claim(f.db, &job, &e), 0);
    storage_fixture_fail_statement(f.db, "FROM agents WHERE id = ?1", 0);
    atomic_int stop = 0;
    pipeline_run_job(f.db, &job, &stop);
    ck_assert_int_eq(storage_fixture_fail_statement(f.db, NULL, 0), 1);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM jobs WHERE id = ?1"
                                                 " AND state = 'queued' AND attempts = 1", job.id), 1);
    job_row_cleanup(&job);
    storage_fixture_close(&f);
}
END_TEST

typedef struct lock_waiter_kill {
    const char *url;
    PGconn *holder; /* holds the unit lock; released once the waiter is gone */
} lock_waiter_kill;

/* Ends, from a connection of its own, the agentd backend that waits for a
 * lock (the unit of work's), once one does: the server dropping it. Then
 * lets the lock go, so that what the runner writes next goes through. */
static void *terminate_waiter(void *arg)
{
    lock_waiter_kill *k = arg;
    PGconn *c = PQconnectdb(k->url);
    int done = 0;
    for (int i = 0; i < 500 && !done; i++) {
        PGresult *r = PQexec(c, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                " WHERE application_name = 'agentd' AND wait_event_type = 'Lock'");
        done = PQresultStatus(r) == PGRES_TUPLES_OK && atoi(PQgetvalue(r, 0, 0)) > 0;
        PQclear(r);
        if (!done) usleep(10 * 1000);
    }
    PQfinish(c);
    PQclear(PQexec(k->holder, "ROLLBACK"));
    return (void *)(intptr_t)done;
}

/* A stage whose connection the server drops mid-statement (a restart, a
 * failover: AD_EUNAVAILABLE) leaves its job running for the pool to put
 * back, even though the connection is back by the time the runner settles
 * (it reconnects at once): the agent does not fail, and no driver words
 * land in its error. On a PostgreSQL server of the test's own. */
/* Runs `job` while another session holds the unit lock; the server drops
 * the runner's connection as soon as it waits for that lock. */
static void run_with_connection_dropped(storage_conn *db, const char *url, job_row *job)
{
    PGconn *holder = PQconnectdb(url);
    PQclear(PQexec(holder, "BEGIN"));
    PGresult *r = PQexec(holder, "SELECT pg_advisory_xact_lock(7378469928541601793)");
    ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    pthread_t killer;
    lock_waiter_kill k = {.url = url, .holder = holder};
    ck_assert_int_eq(pthread_create(&killer, NULL, terminate_waiter, &k), 0);
    atomic_int stop = 0;
    pipeline_run_job(db, job, &stop);
    void *killed = NULL;
    pthread_join(killer, &killed);
    ck_assert_ptr_nonnull(killed);
    PQfinish(holder);
}

/* The same for a training run: the run is not failed, its job stays for
 * the pool. */
START_TEST(test_training_connection_lost_leaves_job_for_the_pool)
{
    pgserver pg;
    ck_assert_int_eq(pgserver_start(&pg), 0);
    char url[512];
    ck_assert_int_eq(pgserver_create_db(&pg, "training_lost", url, sizeof(url)), 0);
    ad_err e = {0};
    ck_assert_msg(storage_open_url(url, &e) == 0, "storage_open_url: %s", e.msg);
    storage_jobs_set_owner(FIXTURE_REPLICA, FIXTURE_LEASE_MS);
    storage_conn *db = storage_conn_get();
    int64_t id = create(db, "tlost", "text", free_text, sizeof(free_text) - 1);
    run_next_job(db, id);
    expect_ready(db, "tlost");
    int64_t tid = 0;
    ck_assert_int_eq(storage_trainings_create(db, id, "v2", 1, PIPELINE_JOB_TRAIN, &tid, &e), 0);
    job_row job;
    ck_assert_int_eq(storage_fixture_claim(db, &job, &e), 0);
    run_with_connection_dropped(db, url, &job);
    sql_stmt *st = storage_stmt(db, "SELECT count(*) FROM jobs WHERE id = ?1 AND state = 'running'");
    sql_bind_int64(st, 1, job.id);
    ck_assert_int_eq(sql_step(st), SQL_ROW);
    ck_assert_int_eq(sql_column_int64(st, 0), 1);
    sql_reset(st);
    training_row t;
    ck_assert_int_eq(storage_trainings_get(db, id, tid, &t, &e), 0);
    ck_assert_msg(t.status != TRAINING_FAILED, "the run failed: %s", t.error ? t.error : "");
    training_row_cleanup(&t);
    job_row_cleanup(&job);
    storage_close();
    pgserver_destroy(&pg);
}
END_TEST

START_TEST(test_pipeline_connection_lost_leaves_job_for_the_pool)
{
    pgserver pg;
    ck_assert_int_eq(pgserver_start(&pg), 0);
    char url[512];
    ck_assert_int_eq(pgserver_create_db(&pg, "runner_lost", url, sizeof(url)), 0);
    ad_err e = {0};
    ck_assert_msg(storage_open_url(url, &e) == 0, "storage_open_url: %s", e.msg);
    storage_jobs_set_owner(FIXTURE_REPLICA, FIXTURE_LEASE_MS);
    storage_conn *db = storage_conn_get();
    (void)create(db, "lost", "text", free_text, sizeof(free_text) - 1);
    job_row job;
    ck_assert_int_eq(storage_fixture_claim(db, &job, &e), 0);
    run_with_connection_dropped(db, url, &job);
    sql_stmt *st = storage_stmt(db, "SELECT count(*) FROM jobs WHERE id = ?1 AND state = 'running'");
    sql_bind_int64(st, 1, job.id);
    ck_assert_int_eq(sql_step(st), SQL_ROW);
    ck_assert_int_eq(sql_column_int64(st, 0), 1);
    sql_reset(st);
    agent_row a;
    ck_assert_int_eq(storage_agents_get(db, "lost", &a, &e), 0);
    ck_assert_msg(a.status != AGENT_ERROR, "the agent failed: %s", a.error ? a.error : "");
    agent_row_cleanup(&a);
    job_row_cleanup(&job);
    storage_close();
    pgserver_destroy(&pg);
}
END_TEST

START_TEST(test_pipeline_stopping_leaves_job_queued)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t id = create(f.db, "stopped", "text", free_text, sizeof(free_text) - 1);
    job_row job;
    ck_assert_int_eq(storage_fixture_claim(f.db, &job, NULL), 0);
    atomic_int stop = PIPELINE_RUN_STOPPING;
    pipeline_run_job(f.db, &job, &stop);

    int64_t queued = -1, running = -1;
    ck_assert_int_eq(storage_jobs_depth(f.db, &queued, &running, NULL), 0);
    ck_assert_int_eq(queued, 1);
    ck_assert_int_eq(running, 0);
    agent_row a;
    ck_assert_int_eq(storage_agents_get_by_id(f.db, id, &a, NULL), 0);
    ck_assert_int_ne(a.status, AGENT_ERROR);
    ck_assert_ptr_null(a.error);
    ck_assert_int_eq(a.deployed_version_id, 0);
    agent_row_cleanup(&a);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM executions WHERE agent_id = ?1"
                                                 " AND status IN ('completed', 'failed')", id), 0);

    /* The same job, claimed again, now runs to the end. */
    job_row_cleanup(&job);
    run_next_job(f.db, id);
    expect_ready(f.db, "stopped");
    storage_fixture_close(&f);
}
END_TEST

START_TEST(test_pipeline_bad_dataset_fails_the_agent)
{
    storage_fixture f;
    storage_fixture_open(&f);
    static const char bad[] = "[{\"prompt\": \"only a prompt\"}]";
    int64_t id = create(f.db, "broken", "dataset", bad, sizeof(bad) - 1);
    run_next_job(f.db, id);
    agent_row a;
    ck_assert_int_eq(storage_agents_get_by_id(f.db, id, &a, NULL), 0);
    ck_assert_int_eq(a.status, AGENT_ERROR);
    ck_assert_str_eq(a.stage, "DataProcessor");
    ck_assert_ptr_nonnull(a.error);
    ck_assert_ptr_nonnull(strstr(a.error, "DataProcessor"));
    agent_row_cleanup(&a);
    exec_row r;
    ck_assert_int_eq(storage_exec_get(f.db, id, 0, &r, NULL), 0);
    ck_assert_int_eq(r.status, EXEC_FAILED);
    exec_row_cleanup(&r);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM jobs WHERE agent_id = ?1"
                                                 " AND state = 'failed'", id), 1);
    storage_fixture_close(&f);
}
END_TEST

Suite *pipeline_runner_suite(void)
{
    Suite *s = suite_create("pipeline_runner");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_pipeline_dataset_agent_answers_its_own_prompts);
    tcase_add_test(tc, test_pipeline_text_agent_reaches_ready);
    tcase_add_test(tc, test_pipeline_stopping_leaves_job_queued);
    tcase_add_test(tc, test_pipeline_bad_dataset_fails_the_agent);
    tcase_add_test(tc, test_stage_passes_storage_codes_through);
    tcase_add_test(tc, test_stage_rows_and_log_row_commit_together);
    tcase_add_test(tc, test_deploy_decides_again_when_another_deploy_wins);
    tcase_add_test(tc, test_deploy_passes_a_failed_read_of_the_serving_version_through);
    tcase_add_test(tc, test_training_judges_its_best_candidate_as_published);
    tcase_add_test(tc, test_unit_set_load_frees_a_partial_read);
    tcase_add_test(tc, test_trainer_duration_includes_the_index_build);
    tcase_add_test(tc, test_training_job_with_an_unreadable_agent_is_released);
    tcase_add_test(tc, test_pipeline_connection_lost_leaves_job_for_the_pool);
    tcase_add_test(tc, test_training_connection_lost_leaves_job_for_the_pool);
    suite_add_tcase(s, tc);
    return s;
}
