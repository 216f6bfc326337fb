/* Issue 3: the pipeline is durable, concurrent and cancellable, end to end. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "tests/e2e/harness.h"

Suite *e2e_pipeline_suite(void);


static char *text_body(const char *user_id, const char *text)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "user_id", user_id);
    cJSON_AddStringToObject(o, "training_data", text);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static long create_text_agent(const e2e_server *s, const char *id, size_t bytes)
{
    char *text = e2e_make_text(bytes, (unsigned)strlen(id) * 7919u + (unsigned)id[strlen(id) - 1]);
    char *body = text_body(id, text);
    e2e_response r = e2e_post(s, "/api/v1/agents", body);
    long st = r.status;
    e2e_response_free(&r);
    free(body);
    free(text);
    return st;
}

/* Counts rows in every agent table, straight from the database. */
static long count_rows(const e2e_server *s)
{
    return (long)e2e_db_int(s,
        "SELECT (SELECT count(*) FROM agents) + (SELECT count(*) FROM jobs) +"
        " (SELECT count(*) FROM executions) + (SELECT count(*) FROM units) +"
        " (SELECT count(*) FROM versions) + (SELECT count(*) FROM materials) +"
        " (SELECT count(*) FROM version_passages) + (SELECT count(*) FROM version_terms) +"
        " (SELECT count(*) FROM version_index)");
}

START_TEST(test_free_text_reaches_ready_and_status_reads_do_not_wait)
{
    e2e_server s;
    const char *args[] = {"--workers", "1", NULL};
    e2e_start(&s, args, NULL);
    ck_assert_int_eq(create_text_agent(&s, "big", 6u << 20), 201);
    /* While the stages run, status answers with the stage in progress. */
    int saw_processing = 0;
    for (int i = 0; i < 2000; i++) {
        e2e_response r = e2e_get(&s, "/api/v1/agents/big/status");
        ck_assert_int_eq(r.status, 200);
        const char *st = e2e_json_str(r.json, "status");
        int progress = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(r.json, "progress"));
        ck_assert_int_ge(progress, 0);
        ck_assert_int_le(progress, 100);
        if (!strcmp(st, "processing")) {
            saw_processing++;
            ck_assert_ptr_nonnull(e2e_json_str(r.json, "stage"));
        }
        int done = !strcmp(st, "ready") || !strcmp(st, "error");
        e2e_response_free(&r);
        if (done) break;
        usleep(5000);
    }
    ck_assert_int_gt(saw_processing, 0);
    ck_assert_str_eq(e2e_wait_agent(&s, "big", 120000), "ready");
    e2e_response r = e2e_get(&s, "/api/v1/agents/big");
    cJSON *model = cJSON_GetObjectItem(r.json, "model");
    ck_assert_str_eq(e2e_json_str(model, "name"), "v1");
    cJSON *metrics = cJSON_GetObjectItem(model, "metrics");
    ck_assert_int_gt((int)cJSON_GetNumberValue(cJSON_GetObjectItem(metrics, "derived_queries")), 0);
    ck_assert_ptr_nonnull(e2e_json_str(metrics, "quality_label"));
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

typedef struct create_job {
    const e2e_server *s;
    int first, count;
    int created, failed;
} create_job;

static void *create_many(void *arg)
{
    create_job *j = arg;
    for (int i = j->first; i < j->first + j->count; i++) {
        char id[32];
        snprintf(id, sizeof(id), "conc-%03d", i);
        long st = create_text_agent(j->s, id, 4096);
        if (st == 201) j->created++;
        else j->failed++;
    }
    return NULL;
}

START_TEST(test_200_concurrent_creates_all_reach_ready)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    enum { THREADS = 50, EACH = 4 };
    pthread_t t[THREADS];
    create_job jobs[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (create_job){&s, i * EACH, EACH, 0, 0};
        pthread_create(&t[i], NULL, create_many, &jobs[i]);
    }
    int created = 0, failed = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        created += jobs[i].created;
        failed += jobs[i].failed;
    }
    ck_assert_int_eq(failed, 0);
    ck_assert_int_eq(created, THREADS * EACH);
    for (int i = 0; i < THREADS * EACH; i++) {
        char id[32];
        snprintf(id, sizeof(id), "conc-%03d", i);
        ck_assert_str_eq(e2e_wait_agent(&s, id, 120000), "ready");
    }
    e2e_response r = e2e_get(&s, "/api/v1/agents?status=ready&limit=1");
    ck_assert_int_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(r.json, "total_users")), 200);
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    ck_assert_int_eq(e2e_log_count(&s, "locked"), 0);
    ck_assert_int_eq(e2e_log_count(&s, "\"status\":5"), 0);
    e2e_cleanup(&s);
}
END_TEST

START_TEST(test_sigkill_mid_pipeline_loses_nothing)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    enum { N = 50 };
    for (int i = 0; i < N; i++) {
        char id[32];
        snprintf(id, sizeof(id), "crash-%02d", i);
        ck_assert_int_eq(create_text_agent(&s, id, 120 * 1024), 201);
    }
    e2e_response r = e2e_get(&s, "/api/v1/agents?status=ready&limit=1");
    int ready_before = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(r.json, "total_users"));
    e2e_response_free(&r);
    e2e_kill(&s);
    ck_assert_msg(ready_before < N, "all %d pipelines finished before the kill: the test proves nothing", N);

    e2e_restart(&s, NULL, NULL);
    for (int i = 0; i < N; i++) {
        char id[32], path[96];
        snprintf(id, sizeof(id), "crash-%02d", i);
        ck_assert_str_eq(e2e_wait_agent(&s, id, 180000), "ready");
        /* Not duplicated: one version, each stage completed once by one job. */
        snprintf(path, sizeof(path), "/api/v1/agents/%s", id);
        r = e2e_get(&s, path);
        ck_assert_str_eq(e2e_json_str(cJSON_GetObjectItem(r.json, "model"), "name"), "v1");
        e2e_response_free(&r);
        snprintf(path, sizeof(path), "/api/v1/agents/%s/pipeline", id);
        r = e2e_get(&s, path);
        cJSON *stage;
        cJSON_ArrayForEach(stage, cJSON_GetObjectItem(r.json, "stages"))
            ck_assert_str_eq(e2e_json_str(stage, "status"), "completed");
        e2e_response_free(&r);
    }
    r = e2e_get(&s, "/api/v1/agents?limit=1");
    ck_assert_int_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(r.json, "total_users")), N);
    e2e_response_free(&r);
    r = e2e_get(&s, "/health");
    cJSON *q = cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "checks"), "queue");
    ck_assert_int_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(q, "depth")), 0);
    ck_assert_int_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(q, "running")), 0);
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* The lease owner (empty when none) and attempts of agent "held"'s job,
 * from the server's database. */
static void read_held_job(const e2e_server *s, char *owner, size_t cap, int *attempts)
{
    char *rows = e2e_db_rows(s, "SELECT j.attempts, coalesce(j.lease_owner, '') FROM jobs j"
                                " JOIN agents a ON a.id = j.agent_id WHERE a.user_id = 'held'"
                                " ORDER BY j.id DESC LIMIT 1");
    ck_assert_ptr_nonnull(rows);
    char *bar = strchr(rows, '|');
    ck_assert_ptr_nonnull(bar);
    *attempts = atoi(rows);
    size_t n = strcspn(bar + 1, "\n");
    snprintf(owner, cap, "%.*s", (int)n, bar + 1);
    free(rows);
}

/* A job whose replica was killed resumes under a new replica's id. On
 * SQLite one process owns the data dir, so start-up expires every lease and
 * the job resumes at once (long before its lease could lapse: the last
 * renewal was at most a third of a lease before the kill). On PostgreSQL
 * the job may be a live replica's, so the new one waits for the lease to
 * lapse, then its listener wakes a worker that takes the job over. */
START_TEST(test_sigkill_resumes_at_next_start_without_waiting_for_the_lease)
{
    enum { LEASE_MS = 6000 };
    e2e_server s;
    const char *args[] = {"--workers", "1", "--job-lease-ms", "6000", NULL};
    e2e_start(&s, args, NULL);
    ck_assert_int_eq(create_text_agent(&s, "held", 4u << 20), 201);
    char before[160] = "", after[160] = "";
    int attempts = 0;
    for (int i = 0; i < 4000 && !before[0]; i++) {
        read_held_job(&s, before, sizeof(before), &attempts);
        if (!before[0]) usleep(2000);
    }
    ck_assert_msg(before[0], "the job was never claimed");
    ck_assert_int_eq(attempts, 1);
    ck_assert_int_eq(e2e_log_count(&s, before), 1);   /* the replica's id, logged once at start */
    e2e_kill(&s);
    int64_t killed = ad_clock_mono_ms();
    read_held_job(&s, after, sizeof(after), &attempts);
    ck_assert_msg(attempts == 1 && !strcmp(after, before), "the job ended before the kill: the test proves nothing");

    e2e_restart(&s, args, NULL);
    while (attempts < 2 && ad_clock_mono_ms() - killed < 4 * LEASE_MS) {
        read_held_job(&s, after, sizeof(after), &attempts);
        if (attempts < 2) usleep(5000);
    }
    int64_t took = ad_clock_mono_ms() - killed;
    ck_assert_int_eq(attempts, 2);
    ck_assert_str_ne(after, before);
    ck_assert_msg(after[0], "the resumed job has no lease owner");
    if (e2e_backend_pg()) {
        ck_assert_msg(took >= LEASE_MS * 2 / 3 - 200, "taken over %lld ms after the kill, inside its lease",
                      (long long)took);
        ck_assert_msg(took < LEASE_MS + 3000, "taken over %lld ms after the kill", (long long)took);
    } else {
        ck_assert_msg(took < LEASE_MS / 2, "resumed %lld ms after the kill: it waited for the lease",
                      (long long)took);
        ck_assert_int_eq(e2e_log_wait(&s, "resuming 1 interrupted job(s)", 1, 5000), 1);
    }
    ck_assert_str_eq(e2e_wait_agent(&s, "held", 180000), "ready");
    e2e_response r = e2e_get(&s, "/api/v1/agents/held");
    ck_assert_str_eq(e2e_json_str(cJSON_GetObjectItem(r.json, "model"), "name"), "v1");
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

START_TEST(test_delete_during_processing_leaves_nothing)
{
    e2e_server s;
    const char *args[] = {"--workers", "1", NULL};
    e2e_start(&s, args, NULL);
    ck_assert_int_eq(create_text_agent(&s, "doomed", 4u << 20), 201);
    ck_assert_int_eq(create_text_agent(&s, "queued", 64 * 1024), 201);
    int processing = 0;
    for (int i = 0; i < 4000 && !processing; i++) {
        e2e_response r = e2e_get(&s, "/api/v1/agents/doomed/status");
        processing = !strcmp(e2e_json_str(r.json, "status"), "processing");
        e2e_response_free(&r);
        if (!processing) usleep(2000);
    }
    ck_assert(processing);
    e2e_response r = e2e_request(&s, "DELETE", "/api/v1/agents/doomed", NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    e2e_response_free(&r);
    r = e2e_request(&s, "DELETE", "/api/v1/agents/queued", NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    e2e_response_free(&r);
    r = e2e_get(&s, "/api/v1/agents/doomed/status");
    ck_assert_int_eq(r.status, 404);
    e2e_response_free(&r);
    /* Give the worker time to notice and give up; nothing may come back. */
    for (int i = 0; i < 500; i++) {
        r = e2e_get(&s, "/health");
        cJSON *q = cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "checks"), "workers");
        int busy = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(q, "busy"));
        e2e_response_free(&r);
        if (!busy) break;
        usleep(10000);
    }
    ck_assert_int_eq(count_rows(&s), 0);

    ck_assert_int_eq(create_text_agent(&s, "doomed", 16 * 1024), 201);
    ck_assert_str_eq(e2e_wait_agent(&s, "doomed", 60000), "ready");
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

START_TEST(test_stage_failure_reports_stage_and_reason)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    /* Only punctuation: valid input, but no passage survives normalization
     * with a word in it, so the DataProcessor must fail with a reason. */
    e2e_response r = e2e_post(&s, "/api/v1/agents", "{\"user_id\":\"empty\",\"training_data\":\"\\u0001\\u0002 \\u0003\"}");
    ck_assert_int_eq(r.status, 201);
    e2e_response_free(&r);
    ck_assert_str_eq(e2e_wait_agent(&s, "empty", 30000), "error");
    r = e2e_get(&s, "/api/v1/agents/empty/status");
    ck_assert_ptr_nonnull(strstr(e2e_json_str(r.json, "error"), "DataProcessor"));
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* The list item of `id` in GET /api/v1/agents (owned by `r`). */
static const cJSON *list_item(e2e_response *r, const e2e_server *s, const char *id)
{
    *r = e2e_get(s, "/api/v1/agents");
    ck_assert_int_eq(r->status, 200);
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem(r->json, "users"), id);
    ck_assert_msg(cJSON_IsObject(item), "%s not listed: %s", id, r->body);
    return item;
}

/* Issue 12: while a 2 MiB agent's pipeline runs, every status read says
 * how many seconds are left (eta_s, at least 1); once ready there is none.
 * The list shows no quality before a version is deployed and the deployed
 * one's {score, label} after, as GET agent does. */
START_TEST(test_eta_while_processing_and_quality_once_ready)
{
    e2e_server s;
    const char *args[] = {"--workers", "1", NULL};
    e2e_start(&s, args, NULL);
    ck_assert_int_eq(create_text_agent(&s, "eta", 2u << 20), 201);
    int saw_eta = 0, saw_no_quality = 0;
    for (int i = 0; i < 20000; i++) {
        e2e_response r = e2e_get(&s, "/api/v1/agents/eta/status");
        ck_assert_int_eq(r.status, 200);
        const char *st = e2e_json_str(r.json, "status");
        const cJSON *eta = cJSON_GetObjectItem(r.json, "eta_s");
        if (!strcmp(st, "processing")) {
            ck_assert_msg(cJSON_IsNumber(eta), "processing without eta_s: %s", r.body);
            ck_assert_int_ge(eta->valuedouble, 1);
            ck_assert_msg(eta->valuedouble == (double)(long long)eta->valuedouble, "eta_s not whole: %s", r.body);
            saw_eta++;
        }
        int done = !strcmp(st, "ready") || !strcmp(st, "error");
        e2e_response_free(&r);
        if (done) break;
        if (!saw_no_quality) {
            const cJSON *item = list_item(&r, &s, "eta");
            if (strcmp(e2e_json_str(item, "status"), "ready") != 0) {
                const cJSON *q = cJSON_GetObjectItem(item, "quality");
                ck_assert_msg(cJSON_IsNull(q), "quality before ready: %s", r.body);
                saw_no_quality = 1;
            }
            e2e_response_free(&r);
        }
        usleep(2000);
    }
    ck_assert_int_gt(saw_eta, 0);
    ck_assert_int_eq(saw_no_quality, 1);
    ck_assert_str_eq(e2e_wait_agent(&s, "eta", 120000), "ready");
    e2e_response r = e2e_get(&s, "/api/v1/agents/eta/status");
    ck_assert_msg(cJSON_GetObjectItem(r.json, "eta_s") == NULL, "eta_s at ready: %s", r.body);
    e2e_response_free(&r);

    r = e2e_get(&s, "/api/v1/agents/eta");
    const cJSON *model_metrics = cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "model"), "metrics");
    double score = e2e_json_num(model_metrics, "quality_score");
    char label[16];
    snprintf(label, sizeof(label), "%s", e2e_json_str(model_metrics, "quality_label"));
    const cJSON *q = cJSON_GetObjectItem(r.json, "quality");
    ck_assert_msg(cJSON_IsObject(q), "GET agent without quality: %s", r.body);
    ck_assert_double_eq_tol(e2e_json_num(q, "score"), score, 1e-3);
    ck_assert_str_eq(e2e_json_str(q, "label"), label);
    e2e_response_free(&r);
    q = cJSON_GetObjectItem(list_item(&r, &s, "eta"), "quality");
    ck_assert_msg(cJSON_IsObject(q), "list without quality: %s", r.body);
    ck_assert_double_eq_tol(e2e_json_num(q, "score"), score, 1e-3);
    ck_assert(e2e_json_num(q, "score") >= 0 && e2e_json_num(q, "score") <= 1);
    ck_assert_str_eq(e2e_json_str(q, "label"), label);
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

Suite *e2e_pipeline_suite(void)
{
    Suite *s = suite_create("e2e_pipeline");
    TCase *tc = tcase_create("pipeline");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_free_text_reaches_ready_and_status_reads_do_not_wait);
    tcase_add_test(tc, test_200_concurrent_creates_all_reach_ready);
    tcase_add_test(tc, test_sigkill_mid_pipeline_loses_nothing);
    tcase_add_test(tc, test_sigkill_resumes_at_next_start_without_waiting_for_the_lease);
    tcase_add_test(tc, test_delete_during_processing_leaves_nothing);
    tcase_add_test(tc, test_stage_failure_reports_stage_and_reason);
    tcase_add_test(tc, test_eta_while_processing_and_quality_once_ready);
    suite_add_tcase(s, tc);
    return s;
}
