/*
 * Tests the handlers' view of an agent deleted while a request works on it,
 * without timing luck: a statement trace on the request's connection runs
 * the delete on another thread (another connection) at the exact moment the
 * handler starts its first statement after the lookup, so the window the
 * e2e race hits only sometimes is hit every time.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/app.h"
#include "api/request.h"
#include "base/clock.h"
#include "config/config.h"
#include "handlers/agents.h"
#include "handlers/deployments.h"
#include "handlers/evaluate.h"
#include "handlers/inference.h"
#include "handlers/metrics.h"
#include "handlers/models.h"
#include "handlers/replay.h"
#include "handlers/training.h"
#include "handlers/training_groups.h"
#include "pipeline/plan.h"
#include "pipeline/runner.h"
#include "storage/agents.h"
#include "storage/db.h"
#include "storage/jobs.h"
#include "storage/trainings.h"
#include "tests/unit/storage/fixtures.h"

Suite *handlers_agents_suite(void);

/* The server gives every handler its caller (auth off here: every scope). */
static const ad_principal open_caller = {.kind = AD_CALLER_OPEN, .scopes = ~0u, .all_agents = 1};

static const char notes[] =
    "Cargo is the Rust build tool and package manager. It downloads dependencies from crates.io, "
    "compiles the project and runs its tests with cargo test.\n\n"
    "The Rust borrow checker enforces ownership rules at compile time. Every value has a single "
    "owner, and the value is dropped when its owner goes out of scope.\n\n"
    "Lifetimes describe how long references are valid. The compiler infers most lifetimes, and "
    "explicit annotations are needed only when a function returns a reference.\n";

/* A ready agent "racer" (its pipeline run on this thread). */
static void make_ready_agent(storage_conn *db)
{
    agent_new a = {.user_id = "racer", .source = "text", .material = notes,
                   .material_len = sizeof(notes) - 1, .description = "race"};
    pipeline_plan_agent(&a);
    int64_t id = 0;
    ad_err e = {0};
    ck_assert_msg(storage_agents_create(db, &a, &id, &e) == 0, "%s", e.msg);
    job_row job;
    ck_assert_int_eq(storage_fixture_claim(db, &job, &e), 0);
    atomic_int stop = 0;
    pipeline_run_job(db, &job, &stop);
    job_row_cleanup(&job);
    agent_row r;
    ck_assert_int_eq(storage_agents_get(db, "racer", &r, &e), 0);
    ck_assert_msg(r.deployed_version_id > 0, "racer is %s", agent_state_to_string(r.status));
    agent_row_cleanup(&r);
}

/* The delete, on a thread (and so a connection) of its own. */
static void *delete_racer(void *arg)
{
    (void)arg;
    int64_t id = 0;
    intptr_t rc = storage_agents_delete(storage_conn_get(), "racer", NULL, &id, NULL);
    storage_thread_release();
    return (void *)rc;
}

typedef struct race_trigger {
    const char *sql;   /* the statement (a substring of it) the delete goes before */
    int fired;
} race_trigger;

static int race_trace(unsigned type, void *ud, void *p, void *x)
{
    (void)type;
    (void)p;
    race_trigger *t = ud;
    if (t->fired || !strstr((const char *)x, t->sql)) return 0;
    t->fired = 1;
    pthread_t th;
    void *rc;
    pthread_create(&th, NULL, delete_racer, NULL);
    pthread_join(th, &rc);
    ck_assert_int_eq((int)(intptr_t)rc, 0);
    return 0;
}

typedef struct race_case {
    const char *name;
    void (*handler)(ad_request *, ad_response *);
    const char *param2;   /* the second path parameter, or NULL */
    const char *body;
    const char *trigger;  /* the delete lands just before this statement */
    int allowed[3];       /* 0-terminated */
} race_case;

static const race_case cases[] = {
    /* After the lookup, before the reads of the version and its passages. */
    {"inference", handle_agent_inference, NULL, "{\"prompt\":\"What does Cargo download?\"}",
     "FROM versions WHERE id = ?1", {200}},
    {"evaluate", handle_agent_evaluate, NULL,
     "{\"test_prompt\":\"What does Cargo download?\",\"expected_answer\":\"crates\"}",
     "FROM versions WHERE id = ?1", {200}},
    /* After the lookup, before the read of the execution log. */
    {"replay", handle_agent_replay, NULL, "{\"task_index\":2}", "FROM executions WHERE agent_id", {404}},
    /* Writes keyed by the looked-up agent, which has gone meanwhile. */
    {"deploy", handle_agent_model_deploy, "v1", NULL, "BEGIN IMMEDIATE", {404}},
    {"train", handle_agent_train, NULL, "{\"iterations\":1}", "BEGIN IMMEDIATE", {404}},
    {"feedback", handle_agent_feedback_add, NULL, "{\"prompt\":\"p\",\"response\":\"r\",\"feedback\":\"f\"}",
     "INSERT INTO feedback", {404}},
};

static const char *leaked(const char *body)
{
    static const char *const bad[] = {"constraint", "sqlite", "foreign key", "version not found",
                                      "no such", "database"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (strcasestr(body, bad[i])) return bad[i];
    return NULL;
}

START_TEST(test_delete_inside_a_request_never_500)
{
    const race_case *c = &cases[_i];
    storage_fixture f;
    storage_fixture_open(&f);
    make_ready_agent(f.db);
    ad_config cfg;
    config_init(&cfg);
    ad_app app = {.cfg = &cfg};
    ad_request req = {.method = AD_POST, .params = {"racer", c->param2}, .nparams = c->param2 ? 2 : 1, .who = &open_caller,
                      .accept = "", .body = c->body ? c->body : "", .request_id = "race-1", .app = &app};
    req.body_len = strlen(req.body);
    req.json = c->body ? cJSON_Parse(c->body) : NULL;
    ad_response res;
    ad_response_init(&res);
    race_trigger t = {c->trigger, 0};
    sqlite3_trace_v2(f.db->db, SQLITE_TRACE_STMT, race_trace, &t);
    c->handler(&req, &res);
    sqlite3_trace_v2(f.db->db, 0, NULL, NULL);
    ck_assert_msg(t.fired, "%s: the delete never ran (no statement matched '%s')", c->name, c->trigger);
    const char *body = res.body.data ? res.body.data : "";
    int ok = 0;
    for (int i = 0; c->allowed[i]; i++) ok |= res.status == c->allowed[i];
    ck_assert_msg(ok, "%s with the agent deleted mid-request: %d %s", c->name, res.status, body);
    ck_assert_msg(!leaked(body), "%s: database text in %s", c->name, body);
    /* No read snapshot is left open on the connection. */
    ck_assert_int_ne(sqlite3_get_autocommit(f.db->db), 0);
    ad_response_cleanup(&res);
    cJSON_Delete(req.json);
    config_cleanup(&cfg);
    storage_fixture_close(&f);
}
END_TEST

/* GET /agents/{id} reads the agent, then its deployed version: a failure
 * of that second read is answered through agents_answer_storage, not shown
 * as an agent with no model. The failure here is a version row in a state
 * no enum value has (AD_EINTERNAL). */
START_TEST(test_agent_get_answers_a_failed_version_read)
{
    storage_fixture f;
    storage_fixture_open(&f);
    make_ready_agent(f.db);
    ck_assert_int_eq(sqlite3_exec(f.db->db, "UPDATE versions SET state = 'bogus'", NULL, NULL, NULL), SQLITE_OK);
    ad_config cfg;
    config_init(&cfg);
    ad_app app = {.cfg = &cfg};
    ad_request req = {.method = AD_GET, .params = {"racer"}, .nparams = 1, .who = &open_caller, .accept = "", .body = "",
                      .request_id = "get-1", .app = &app};
    ad_response res;
    ad_response_init(&res);
    handle_agent_get(&req, &res);
    ck_assert_int_eq(res.status, 500);
    ck_assert_msg(strstr(res.body.data, "\"storage_error\"") && !strstr(res.body.data, "bogus"), "%s",
                  res.body.data);
    ad_response_cleanup(&res);
    config_cleanup(&cfg);
    storage_fixture_close(&f);
}
END_TEST

/* Runs `handler` for the agent "racer" (and a second path parameter when
 * not NULL) with `body`; fills `res`. */
static void call_handler(void (*handler)(ad_request *, ad_response *), const char *param2,
                         const char *body, ad_response *res)
{
    ad_config cfg;
    config_init(&cfg);
    ad_app app = {.cfg = &cfg};
    ad_request req = {.method = AD_POST, .params = {"racer", param2}, .nparams = param2 ? 2 : 1, .who = &open_caller,
                      .accept = "", .body = body ? body : "", .request_id = "codes-1", .app = &app};
    req.body_len = strlen(req.body);
    req.json = body ? cJSON_Parse(body) : NULL;
    ad_response_init(res);
    handler(&req, res);
    cJSON_Delete(req.json);
    config_cleanup(&cfg);
}

typedef struct read_failure {
    const char *sql;   /* the first statement containing this fails */
    sqlite3 *db;
    int fired;
} read_failure;

static int fail_read(unsigned type, void *ud, void *p, void *x)
{
    (void)type, (void)p;
    read_failure *r = ud;
    if (r->fired || !strstr((const char *)x, r->sql)) return 0;
    r->fired = 1;
    sqlite3_interrupt(r->db);
    return 0;
}

/* A read that fails after the agent was found is answered as the database's
 * failure (500 storage_error), not shown as a smaller answer: the training
 * view's iterations, the deploy's serving version (its "previous"). */
START_TEST(test_a_failed_later_read_is_answered_not_hidden)
{
    static const struct {
        const char *name;
        void (*handler)(ad_request *, ad_response *);
        const char *param2;
        const char *sql;
    } reads[] = {
        {"training", handle_agent_training, NULL, "FROM training_iterations"},
        {"deploy", handle_agent_model_deploy, "v1", "FROM versions WHERE id = ?1"},
    };
    storage_fixture f;
    storage_fixture_open(&f);
    make_ready_agent(f.db);
    agent_row a;
    ad_err e = {0};
    ck_assert_int_eq(storage_agents_get(f.db, "racer", &a, &e), 0);
    int64_t tid = 0;
    ck_assert_int_eq(storage_trainings_create(f.db, a.id, "t1", 2, PIPELINE_JOB_TRAIN, &tid, &e), 0);
    ck_assert_int_eq(storage_trainings_start(f.db, tid, 0, &e), 0);
    ck_assert_int_eq(storage_trainings_add_iteration(f.db, tid, 0, 1, "{}", "{}", 3, &e), 0);
    agent_row_cleanup(&a);
    for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
        read_failure r = {reads[i].sql, f.db->db, 0};
        sqlite3_trace_v2(f.db->db, SQLITE_TRACE_STMT, fail_read, &r);
        ad_response res;
        call_handler(reads[i].handler, reads[i].param2, NULL, &res);
        sqlite3_trace_v2(f.db->db, 0, NULL, NULL);
        ck_assert_msg(r.fired, "%s: no statement matched '%s'", reads[i].name, reads[i].sql);
        ck_assert_msg(res.status == 500 && strstr(res.body.data, "\"storage_error\""), "%s: %d %s",
                      reads[i].name, res.status, res.body.data);
        ck_assert_msg(!leaked(res.body.data), "%s: database text in %s", reads[i].name, res.body.data);
        ck_assert_int_ne(sqlite3_get_autocommit(f.db->db), 0);
        ad_response_cleanup(&res);
    }
    storage_fixture_close(&f);
}
END_TEST

/* Another connection's write transaction, held until released. */
typedef struct write_holder {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int state;         /* 0 starting, 1 holding, 2 asked to let go, -1 failed */
    pthread_t thread;
} write_holder;

static void *hold_writes(void *arg)
{
    write_holder *h = arg;
    storage_conn *c = storage_conn_get();
    int ok = c && sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK;
    pthread_mutex_lock(&h->lock);
    h->state = ok ? 1 : -1;
    pthread_cond_broadcast(&h->cond);
    while (ok && h->state != 2) pthread_cond_wait(&h->cond, &h->lock);
    pthread_mutex_unlock(&h->lock);
    if (ok) sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    storage_thread_release();
    return NULL;
}

static void writes_hold(write_holder *h)
{
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->cond, NULL);
    h->state = 0;
    pthread_create(&h->thread, NULL, hold_writes, h);
    pthread_mutex_lock(&h->lock);
    while (h->state == 0) pthread_cond_wait(&h->cond, &h->lock);
    int state = h->state;
    pthread_mutex_unlock(&h->lock);
    ck_assert_int_eq(state, 1);
}

static void writes_release(write_holder *h)
{
    pthread_mutex_lock(&h->lock);
    h->state = 2;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
    pthread_join(h->thread, NULL);
    pthread_cond_destroy(&h->cond);
    pthread_mutex_destroy(&h->lock);
}

/* A busy database is the server's 503 with Retry-After, never the client's
 * 409: each of these writes meets another connection's write transaction
 * (this connection does not wait for it: no busy handler). */
START_TEST(test_a_busy_database_is_503_never_409)
{
    static const struct {
        const char *name;
        void (*handler)(ad_request *, ad_response *);
        const char *param2;
        const char *body;
    } writes[] = {
        {"train", handle_agent_train, NULL, "{\"iterations\":1}"},
        {"replay", handle_agent_replay, NULL, "{\"task_index\":2}"},
        {"reset", handle_agent_executions_reset, NULL, NULL},
        {"deploy", handle_agent_model_deploy, "v1", NULL},
        {"feedback", handle_agent_feedback_add, NULL, "{\"prompt\":\"p\",\"response\":\"r\",\"feedback\":\"f\"}"},
    };
    storage_fixture f;
    storage_fixture_open(&f);
    make_ready_agent(f.db);
    sqlite3_busy_handler(f.db->db, NULL, NULL);
    for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
        write_holder h;
        writes_hold(&h);
        ad_response res;
        call_handler(writes[i].handler, writes[i].param2, writes[i].body, &res);
        writes_release(&h);
        ck_assert_msg(res.status == 503 && strstr(res.body.data, "\"database_busy\""), "%s: %d %s",
                      writes[i].name, res.status, res.body.data);
        int retry = 0;
        for (size_t k = 0; k < res.nheaders; k++) retry |= !strcmp(res.headers[k].name, "Retry-After");
        ck_assert_msg(retry, "%s: no Retry-After", writes[i].name);
        ck_assert_int_ne(sqlite3_get_autocommit(f.db->db), 0);
        ad_response_cleanup(&res);
    }
    storage_fixture_close(&f);
}
END_TEST

/* One place maps storage codes to HTTP: a conflict is the client's 409, a
 * busy database a 503 to retry, and neither leaks storage's words. */
START_TEST(test_storage_codes_map_to_http)
{
    static const struct {
        int rc;
        const char *user_id;
        int status;
        const char *code;
        int retry_after;
    } maps[] = {
        {AD_ECONFLICT, "u1", 409, "\"conflict\"", 0},
        {AD_EBUSY, "u1", 503, "\"database_busy\"", 1},
        {AD_EIO, "u1", 503, "\"storage_unavailable\"", 1},
        {AD_ENOTFOUND, "u1", 404, "\"agent_not_found\"", 0},
        {AD_EINTERNAL, NULL, 500, "\"storage_error\"", 0},
        {AD_EUNAVAILABLE, "u1", 503, "\"database_unavailable\"", 1},
    };
    for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
        ad_request req = {.method = AD_GET, .who = &open_caller, .accept = "", .body = "", .request_id = "map-1"};
        ad_response res;
        ad_response_init(&res);
        ad_err e;
        ad_err_set(&e, maps[i].rc, "a job is queued or running for this agent");
        ck_assert_int_eq(agents_answer_storage(&req, &res, maps[i].rc, maps[i].user_id, &e),
                         maps[i].rc);
        ck_assert_int_eq(res.status, maps[i].status);
        ck_assert_msg(strstr(res.body.data, maps[i].code), "%s", res.body.data);
        int has_retry = 0;
        for (size_t h = 0; h < res.nheaders; h++) has_retry |= !strcmp(res.headers[h].name, "Retry-After");
        ck_assert_int_eq(has_retry, maps[i].retry_after);
        ad_response_cleanup(&res);
    }
}
END_TEST


/* The header `name` of `res`, or NULL. */
static const char *header_of(const ad_response *res, const char *name)
{
    for (size_t h = 0; h < res->nheaders; h++)
        if (!strcmp(res->headers[h].name, name)) return res->headers[h].value;
    return NULL;
}

/* A database server out of reach (AD_EUNAVAILABLE) is 503
 * database_unavailable with Retry-After: 1 and its fixed words, never a 500
 * nor the driver's own words. */
START_TEST(test_unreachable_database_is_503_database_unavailable)
{
    ad_request req = {.method = AD_GET, .who = &open_caller, .accept = "", .body = "", .request_id = "down-1"};
    ad_response res;
    ad_response_init(&res);
    ad_err e;
    ad_err_set(&e, AD_EUNAVAILABLE, "server closed the connection unexpectedly (secret words)");
    ck_assert_int_eq(agents_answer_storage(&req, &res, AD_EUNAVAILABLE, NULL, &e), AD_EUNAVAILABLE);
    ck_assert_int_eq(res.status, 503);
    cJSON *o = cJSON_Parse(res.body.data);
    ck_assert_str_eq(cJSON_GetObjectItem(o, "code")->valuestring, "database_unavailable");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "error")->valuestring, "the database cannot be reached; retry shortly");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "request_id")->valuestring, "down-1");
    cJSON_Delete(o);
    ck_assert_str_eq(header_of(&res, "Retry-After"), "1");
    ad_response_cleanup(&res);
}
END_TEST

/* Every route that reads or writes the database answers a thread that gets
 * no connection (storage_conn_get NULL: the server could not be reached
 * when the connection was opened) with the same 503. (The token and audit
 * routes, which need auth on, take their connection from the same
 * agents_db.) */
START_TEST(test_no_connection_is_503_on_every_route)
{
    static const struct {
        const char *name;
        void (*handler)(ad_request *, ad_response *);
        const char *param2;
        const char *body;
    } routes[] = {
        {"get", handle_agent_get, NULL, NULL},
        {"status", handle_agent_status, NULL, NULL},
        {"pipeline", handle_agent_pipeline, NULL, NULL},
        {"executions", handle_agent_executions, NULL, NULL},
        {"delete", handle_agent_delete, NULL, NULL},
        {"list", handle_agents_list, NULL, NULL},
        {"delete all", handle_agents_delete_all, NULL, NULL},
        {"train", handle_agent_train, NULL, "{\"iterations\":1}"},
        {"training", handle_agent_training, NULL, NULL},
        {"replay", handle_agent_replay, NULL, "{\"task_index\":2}"},
        {"reset", handle_agent_executions_reset, NULL, NULL},
        {"models", handle_agent_models, NULL, NULL},
        {"deploy", handle_agent_model_deploy, "v1", NULL},
        {"export", handle_agent_model_export, "v1", NULL},
        {"feedback", handle_agent_feedback_add, NULL, "{\"prompt\":\"p\",\"response\":\"r\",\"feedback\":\"f\"}"},
        {"feedback list", handle_agent_feedback_list, NULL, NULL},
        {"evaluate", handle_agent_evaluate, NULL, "{\"test_prompt\":\"p\",\"expected_answer\":\"a\"}"},
        {"inference", handle_agent_inference, NULL, "{\"prompt\":\"p\"}"},
        {"deployments", handle_deployments_list, NULL, NULL},
        {"deployment", handle_deployment_get, "00000000-0000-4000-8000-000000000000", NULL},
        {"training status", handle_training_status, NULL, NULL},
        {"metrics", handle_metrics, NULL, NULL},
    };
    storage_fixture f;
    storage_fixture_open(&f);
    storage_fixture_close(&f);
    ck_assert_ptr_null(storage_conn_get());
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        ad_response res;
        call_handler(routes[i].handler, routes[i].param2, routes[i].body, &res);
        ck_assert_msg(res.status == 503 && strstr(res.body.data, "\"database_unavailable\"") &&
                          strstr(res.body.data, "the database cannot be reached; retry shortly"),
                      "%s: %d %s", routes[i].name, res.status, res.body.data);
        const char *after = header_of(&res, "Retry-After");
        ck_assert_msg(after && !strcmp(after, "1"), "%s: Retry-After %s", routes[i].name, after ? after : "none");
        ad_response_cleanup(&res);
    }
}
END_TEST

/* GET status's status body for "racer". */
static cJSON *status_of_racer(void)
{
    ad_response res;
    call_handler(handle_agent_status, NULL, NULL, &res);
    ck_assert_int_eq(res.status, 200);
    cJSON *o = cJSON_Parse(res.body.data);
    ad_response_cleanup(&res);
    ck_assert_ptr_nonnull(o);
    return o;
}

/* eta_s is the seconds to eta_at rounded up, never under 1 (an estimate
 * overrun still says work goes on), and only while the pipeline runs; a
 * failed training run with no stored reason still carries an error. */
START_TEST(test_status_eta_s_rounds_up_and_shows_only_while_processing)
{
    storage_fixture f;
    storage_fixture_open(&f);
    make_ready_agent(f.db);
    static const struct {
        const char *status;
        int64_t ahead_ms;   /* eta_at - now; 0: eta_at NULL */
        int eta_s;          /* -1: absent */
    } want[] = {
        {"processing", 2500, 3}, {"processing", 60000, 60}, {"processing", -5000, 1},
        {"initializing", 1500, 2}, {"processing", 0, -1}, {"ready", 5000, -1}, {"error", 5000, -1},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        char sql[160];
        snprintf(sql, sizeof(sql), "UPDATE agents SET status = '%s', eta_at = nullif(?1, 0)", want[i].status);
        /* The clock moves on between here and the handler: round from the
         * middle of the second so a few ms do not change the answer. */
        storage_fixture_exec(f.db, sql, want[i].ahead_ms ? ad_clock_now_ms() + want[i].ahead_ms - 200 : 0);
        cJSON *o = status_of_racer();
        const cJSON *eta = cJSON_GetObjectItemCaseSensitive(o, "eta_s");
        if (want[i].eta_s < 0)
            ck_assert_msg(eta == NULL, "case %zu: eta_s shown", i);
        else
            ck_assert_msg(cJSON_IsNumber(eta) && eta->valueint == want[i].eta_s, "case %zu: eta_s %d, want %d", i,
                          eta ? eta->valueint : -1, want[i].eta_s);
        cJSON_Delete(o);
    }
    storage_fixture_exec(f.db, "INSERT INTO trainings (agent_id, name, iterations, status, done_iterations,"
                               " created_at, started_at, finished_at) SELECT id, 'r', 3, 'failed', 1, 1, 1, ?1"
                               " FROM agents", ad_clock_now_ms());
    cJSON *o = status_of_racer();
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(o, "training");
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(tr, "status")), "failed");
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(tr, "error")), "no reason recorded");
    ck_assert(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(tr, "finished_at")));
    cJSON_Delete(o);
    storage_fixture_close(&f);
}
END_TEST

Suite *handlers_agents_suite(void)
{
    Suite *s = suite_create("handlers_agents");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_storage_codes_map_to_http);
    tcase_add_test(tc, test_unreachable_database_is_503_database_unavailable);
    tcase_add_test(tc, test_no_connection_is_503_on_every_route);
    tcase_add_test(tc, test_agent_get_answers_a_failed_version_read);
    tcase_add_test(tc, test_a_failed_later_read_is_answered_not_hidden);
    tcase_add_test(tc, test_a_busy_database_is_503_never_409);
    tcase_add_test(tc, test_status_eta_s_rounds_up_and_shows_only_while_processing);
    tcase_add_loop_test(tc, test_delete_inside_a_request_never_500, 0, (int)(sizeof(cases) / sizeof(cases[0])));
    suite_add_tcase(s, tc);
    return s;
}
