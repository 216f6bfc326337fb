/* The Flask original's clients, unchanged: the calls its Next.js service
 * layer, its page and its scripts make, with the fields and types they read.
 * Group training (start-training, training/status, training/stop,
 * training/metrics) over real runs against the real binary, its 400/404/409
 * refusals that start nothing, a stop while runs are going (they end
 * cancelled, the deployed version keeps serving), the status after
 * completion, the advanced-create and delete-all fields. Small inline
 * datasets keep every run short. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/e2e/harness.h"

Suite *e2e_compat_suite(void);

#define AGENTS "/api/v1/agents"
#define START AGENTS "/start-training"
#define STATUS "/api/v1/training/status"
#define STOP "/api/v1/training/stop"
#define METRICS "/api/v1/training/metrics"

static const cJSON *field(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A dataset body of `pairs` prompt/answer pairs for `id`, under `field_name`. */
static char *dataset_body(const char *id, const char *field_name, int pairs)
{
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "user_id", id);
    cJSON *arr = cJSON_AddArrayToObject(b, field_name);
    for (int i = 0; i < pairs; i++) {
        char p[96], a[160];
        snprintf(p, sizeof(p), "How does the %s service handle case %d?", id, i);
        snprintf(a, sizeof(a), "Case %d of %s is handled by queue %d with retry budget %d.", i, id, i * 7,
                 i + 3);
        cJSON *item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "prompt", p);
        cJSON_AddStringToObject(item, "answer", a);
        cJSON_AddItemToArray(arr, item);
    }
    char *s = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    return s;
}

static void create_agent(const e2e_server *s, const char *id, int wait)
{
    char *body = dataset_body(id, "dataset", 12);
    e2e_response r = e2e_post(s, AGENTS, body);
    free(body);
    ck_assert_msg(r.status == 201, "create %s: %ld %s", id, r.status, r.body);
    e2e_response_free(&r);
    if (wait) {
        const char *st = e2e_wait_agent(s, id, 60000);
        ck_assert_msg(!strcmp(st, "ready"), "agent %s ended %s", id, st);
    }
}

static void assert_iso(const cJSON *o, const char *k, const char *what)
{
    const char *t = e2e_json_str(o, k);
    ck_assert_msg(t && e2e_is_iso_utc(t), "%s: %s is not an ISO time", what, k);
}

static void assert_iso_or_null(const cJSON *o, const char *k, const char *what)
{
    const cJSON *v = field(o, k);
    ck_assert_msg(v != NULL, "%s: no %s", what, k);
    if (!cJSON_IsNull(v)) assert_iso(o, k, what);
}

static void assert_int(const cJSON *o, const char *k, const char *what)
{
    const cJSON *v = field(o, k);
    ck_assert_msg(cJSON_IsNumber(v) && v->valuedouble == (double)(long long)v->valuedouble,
                  "%s: %s is not an integer", what, k);
}

/* An object mapping user ids to percentages 0-100. */
static void assert_percent_map(const cJSON *o, const char *k, const char *what)
{
    const cJSON *m = field(o, k);
    ck_assert_msg(cJSON_IsObject(m), "%s: %s is not an object", what, k);
    const cJSON *v;
    cJSON_ArrayForEach(v, m) {
        ck_assert_msg(cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 100,
                      "%s: %s.%s is not a percentage", what, k, v->string);
    }
}

/* GET /api/v1/training/status of a group, every field with its type. */
static e2e_response group_status(const e2e_server *s)
{
    e2e_response r = e2e_get(s, STATUS);
    ck_assert_msg(r.status == 200 && r.json, "status: %ld %s", r.status, r.body);
    const cJSON *o = r.json;
    ck_assert(cJSON_IsBool(field(o, "training_active")));
    assert_int(o, "cycle_count", "status");
    assert_int(o, "iterations_done", "status");
    assert_int(o, "group_id", "status");
    assert_int(o, "training_cycles", "status");
    assert_int(o, "total_agents", "status");
    double best = e2e_json_num(o, "best_accuracy");
    ck_assert(best >= 0 && best <= 100);
    ck_assert(cJSON_IsString(field(o, "best_user")) || cJSON_IsNull(field(o, "best_user")));
    assert_iso(o, "start_time", "status");
    assert_iso_or_null(o, "end_time", "status");
    const cJSON *reason = field(o, "completion_reason");
    ck_assert(cJSON_IsString(reason) || cJSON_IsNull(reason));
    assert_percent_map(o, "current_accuracies", "status");
    assert_percent_map(o, "final_accuracies", "status");
    assert_iso(o, "timestamp", "status");
    /* Active and finished are told apart by end_time and completion_reason. */
    int active = cJSON_IsTrue(field(o, "training_active"));
    ck_assert_msg(active == cJSON_IsNull(reason) && active == cJSON_IsNull(field(o, "end_time")),
                  "active %d with reason/end: %s", active, r.body);
    return r;
}

/* Polls the status until the group is no longer active. */
static e2e_response wait_group_done(const e2e_server *s, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    for (;;) {
        e2e_response r = group_status(s);
        if (!cJSON_IsTrue(field(r.json, "training_active"))) return r;
        e2e_response_free(&r);
        ck_assert_msg(now_ms() < end, "group still active after %d ms", timeout_ms);
        e2e_sleep_ms(50);
    }
}

/* POST start-training with `body`: 202 and the shape the clients read. */
static long long start_group(const e2e_server *s, const char *body, int cycles, int nids)
{
    e2e_response r = e2e_post(s, START, body);
    ck_assert_msg(r.status == 202, "start %s: %ld %s", body, r.status, r.body);
    ck_assert_str_eq(e2e_json_str(r.json, "status"), "started");
    const char *msg = e2e_json_str(r.json, "message");
    ck_assert(msg && *msg);
    ck_assert_int_eq((int)e2e_json_num(r.json, "training_cycles"), cycles);
    ck_assert(cJSON_IsArray(field(r.json, "user_ids")));
    ck_assert_int_eq(cJSON_GetArraySize(field(r.json, "user_ids")), nids);
    assert_int(r.json, "group_id", "start");
    assert_iso(r.json, "timestamp", "start");
    long long gid = (long long)e2e_json_num(r.json, "group_id");
    char want[32];
    snprintf(want, sizeof(want), "group-%lld", gid);
    ck_assert_str_eq(e2e_json_str(r.json, "version_name"), want);
    e2e_response_free(&r);
    return gid;
}

/* The agent's latest training run (GET .../training), as a parsed response. */
static e2e_response latest_run(const e2e_server *s, const char *id)
{
    char *path = e2e_fmt(AGENTS "/%s/training", id);
    e2e_response r = e2e_get(s, path);
    free(path);
    ck_assert_msg(r.status == 200, "training of %s: %ld %s", id, r.status, r.body);
    return r;
}

static const char *run_status(const e2e_response *r)
{
    return e2e_json_str(field(r->json, "training"), "status");
}

static void start_refused(const e2e_server *s, const char *body, long status, const char *code,
                          const char *needle)
{
    e2e_response r = e2e_post(s, START, body);
    e2e_assert_error(&r, status, code, needle, body);
    e2e_response_free(&r);
}

/* ---- 1. start-training: validation, refusals, a group to completion ------- */

START_TEST(test_start_training_refusals_and_completion)
{
    e2e_server s;
    const char *args[] = {"--workers", "1", NULL};
    e2e_start(&s, args, NULL);

    /* Never a group: the original's "no session" shape; stop has nothing to do. */
    e2e_response r = e2e_get(&s, STATUS);
    ck_assert_int_eq(r.status, 200);
    ck_assert(cJSON_IsFalse(field(r.json, "training_active")));
    ck_assert_str_eq(e2e_json_str(r.json, "message"), "No active training session");
    assert_iso(r.json, "timestamp", "status without group");
    e2e_response_free(&r);
    r = e2e_post(&s, STOP, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(e2e_json_str(r.json, "message"), "No active training to stop");
    assert_iso(r.json, "timestamp", "stop without group");
    e2e_response_free(&r);

    create_agent(&s, "ann", 1);
    create_agent(&s, "bob", 1);

    /* Malformed lists and cycles: 400 naming the field (and the index). */
    r = e2e_request(&s, "POST", START, NULL, NULL);
    e2e_assert_error(&r, 400, "invalid_body", "user_ids", "no body");
    e2e_response_free(&r);
    start_refused(&s, "{}", 400, "invalid_user_ids", "user_ids");
    start_refused(&s, "{\"user_ids\":[]}", 400, "invalid_user_ids", "user_ids must not be empty");
    start_refused(&s, "{\"user_ids\":\"ann\"}", 400, "invalid_user_ids", "user_ids");
    start_refused(&s, "{\"user_ids\":[\"ann\",7]}", 400, "invalid_user_ids", "user_ids[1]");
    start_refused(&s, "{\"user_ids\":[\"ann\",\"b b\"]}", 400, "invalid_user_ids", "user_ids[1]");
    start_refused(&s, "{\"user_ids\":[\"ann\",\"bob\",\"ann\"]}", 400, "invalid_user_ids", "user_ids[2] repeats");
    start_refused(&s, "{\"user_ids\":[\"all\"]}", 400, "invalid_user_ids", "user_ids[0]");
    const char *bad_cycles[] = {"0", "1001", "2.5", "\"5\"", "true", "-3"};
    for (size_t i = 0; i < sizeof(bad_cycles) / sizeof(bad_cycles[0]); i++) {
        char *b = e2e_fmt("{\"user_ids\":[\"ann\"],\"training_cycles\":%s}", bad_cycles[i]);
        start_refused(&s, b, 400, "invalid_training_cycles", "training_cycles");
        free(b);
    }
    /* Unknown ids: 404 naming each, and nothing starts for the known one. */
    start_refused(&s, "{\"user_ids\":[\"ann\",\"ghost1\",\"ghost2\"]}", 404, "agent_not_found", "'ghost1'");
    start_refused(&s, "{\"user_ids\":[\"ann\",\"ghost1\",\"ghost2\"]}", 404, "agent_not_found", "'ghost2'");
    r = e2e_get(&s, AGENTS "/ann/training");
    e2e_assert_error(&r, 404, "training_not_found", NULL, "a refused group started a run");
    e2e_response_free(&r);
    r = e2e_get(&s, STATUS);
    ck_assert_str_eq(e2e_json_str(r.json, "message"), "No active training session");
    e2e_response_free(&r);

    /* A group of two, default cycles (5), to completion. */
    long long g1 = start_group(&s, "{\"user_ids\":[\"ann\",\"bob\"]}", 5, 2);
    r = wait_group_done(&s, 60000);
    ck_assert_int_eq((long long)e2e_json_num(r.json, "group_id"), g1);
    ck_assert_str_eq(e2e_json_str(r.json, "completion_reason"), "completed");
    ck_assert_int_eq((int)e2e_json_num(r.json, "cycle_count"), 5);
    ck_assert_int_eq((int)e2e_json_num(r.json, "iterations_done"), 10);
    ck_assert_int_eq((int)e2e_json_num(r.json, "total_agents"), 2);
    ck_assert_int_eq(cJSON_GetArraySize(field(r.json, "current_accuracies")), 2);
    ck_assert_int_eq(cJSON_GetArraySize(field(r.json, "final_accuracies")), 2);
    const char *best_user = e2e_json_str(r.json, "best_user");
    ck_assert_msg(best_user && (!strcmp(best_user, "ann") || !strcmp(best_user, "bob")), "%s", r.body);
    ck_assert(e2e_json_num(r.json, "best_accuracy") >=
              e2e_json_num(field(r.json, "final_accuracies"), "ann") - 1e-9);
    e2e_response_free(&r);
    /* Each agent's run is an ordinary training run with the group's version name. */
    char version[32];
    snprintf(version, sizeof(version), "group-%lld", g1);
    r = latest_run(&s, "ann");
    ck_assert_str_eq(run_status(&r), "done");
    ck_assert_str_eq(e2e_json_str(field(r.json, "training"), "name"), version);
    ck_assert_int_eq((int)e2e_json_num(field(r.json, "training"), "iterations"), 5);
    e2e_response_free(&r);
    /* The name is the group's: a hand-named run may not take it. */
    r = e2e_post(&s, AGENTS "/ann/train", "{\"iterations\":1,\"name\":\"group-99\"}");
    e2e_assert_error(&r, 400, "invalid_name", "group-", "hand-named group- version");
    e2e_response_free(&r);

    /* A long group keeps the only worker busy: ann is training, a new agent
     * waits for its pipeline. */
    long long g2 = start_group(&s, "{\"user_ids\":[\"ann\"],\"training_cycles\":1000}", 1000, 1);
    ck_assert_int_gt(g2, g1);
    create_agent(&s, "carl", 0);
    start_refused(&s, "{\"user_ids\":[\"carl\"]}", 409, "agent_not_ready", "'carl'");
    start_refused(&s, "{\"user_ids\":[\"bob\",\"ann\"]}", 409, "training_in_progress", "'ann'");
    e2e_response busy = e2e_post(&s, START, "{\"user_ids\":[\"bob\",\"ann\"]}");
    ck_assert_msg(!strstr(busy.body, "'bob'"), "bob is named as busy: %s", busy.body);
    e2e_response_free(&busy);
    start_refused(&s, "{\"user_ids\":[\"ann\",\"carl\",\"bob\"]}", 409, "agent_not_ready", "'carl'");
    start_refused(&s, "{\"user_ids\":[\"ann\",\"carl\",\"bob\"]}", 409, "agent_not_ready", "'ann'");
    /* All or nothing: bob, who was free, got no run from the refused groups. */
    r = latest_run(&s, "bob");
    ck_assert_str_eq(e2e_json_str(field(r.json, "training"), "name"), version);
    e2e_response_free(&r);
    r = group_status(&s);
    ck_assert_int_eq((long long)e2e_json_num(r.json, "group_id"), g2);
    ck_assert(cJSON_IsTrue(field(r.json, "training_active")));
    e2e_response_free(&r);

    r = e2e_post(&s, STOP, NULL);
    ck_assert_msg(r.status == 200, "stop: %ld %s", r.status, r.body);
    e2e_response_free(&r);
    const char *st = e2e_wait_agent(&s, "carl", 60000);
    ck_assert_str_eq(st, "ready");

    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* ---- 2. stop while running ------------------------------------------------ */

START_TEST(test_stop_while_running_keeps_serving)
{
    e2e_server s;
    const char *args[] = {"--workers", "2", NULL};
    e2e_start(&s, args, NULL);
    create_agent(&s, "ann", 1);
    create_agent(&s, "bob", 1);
    create_agent(&s, "cyd", 1);

    /* Three runs on two workers: two run, one waits in the queue. */
    long long gid = start_group(&s, "{\"user_ids\":[\"ann\",\"bob\",\"cyd\"],\"training_cycles\":1000}", 1000, 3);
    long long end = now_ms() + 30000;
    for (;;) {
        e2e_response r = group_status(&s);
        ck_assert(cJSON_IsTrue(field(r.json, "training_active")));
        long long done = (long long)e2e_json_num(r.json, "iterations_done");
        e2e_response_free(&r);
        if (done >= 4) break;
        ck_assert_msg(now_ms() < end, "the group never got going");
        e2e_sleep_ms(20);
    }

    e2e_response r = e2e_post(&s, STOP, NULL);
    ck_assert_msg(r.status == 200, "stop: %ld %s", r.status, r.body);
    const char *msg = e2e_json_str(r.json, "message");
    ck_assert_msg(msg && strstr(msg, "3 runs cancelled"), "%s", r.body);
    assert_iso(r.json, "stopped_at", "stop");
    assert_int(r.json, "cycle_count", "stop");
    double best = e2e_json_num(r.json, "best_accuracy");
    ck_assert(best > 0 && best <= 100);
    assert_iso(r.json, "timestamp", "stop");
    ck_assert_int_eq((long long)e2e_json_num(r.json, "group_id"), gid);
    int stop_cycles = (int)e2e_json_num(r.json, "cycle_count");
    e2e_response_free(&r);

    /* Every run ends cancelled at once, the queued one included. */
    const char *ids[] = {"ann", "bob", "cyd"};
    int done_at_stop[3];
    for (int i = 0; i < 3; i++) {
        r = latest_run(&s, ids[i]);
        ck_assert_msg(!strcmp(run_status(&r), "cancelled"), "%s: %s", ids[i], r.body);
        const char *err = e2e_json_str(field(r.json, "training"), "error");
        ck_assert_msg(err && strstr(err, "stop"), "no reason: %s", r.body);
        assert_iso(field(r.json, "training"), "finished_at", "cancelled run");
        done_at_stop[i] = (int)e2e_json_num(field(r.json, "training"), "done_iterations");
        e2e_response_free(&r);
    }
    ck_assert_int_eq(done_at_stop[2], 0);

    /* The status says stopped; a second stop has nothing left. */
    r = group_status(&s);
    ck_assert(cJSON_IsFalse(field(r.json, "training_active")));
    ck_assert_str_eq(e2e_json_str(r.json, "completion_reason"), "stopped");
    ck_assert_int_eq((int)e2e_json_num(r.json, "cycle_count"), stop_cycles);
    ck_assert_int_eq(cJSON_GetArraySize(field(r.json, "final_accuracies")), 0);
    ck_assert_int_eq(cJSON_GetArraySize(field(r.json, "current_accuracies")), 3);
    e2e_response_free(&r);
    r = e2e_post(&s, STOP, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(e2e_json_str(r.json, "message"), "No active training to stop");
    e2e_response_free(&r);

    /* The workers let go: no candidate version of the stopped runs is left
     * (the models list hides candidates, so the database is asked), nothing
     * more is recorded, the deployed version (v1) serves, and the agents are
     * free again. */
    end = now_ms() + 10000;
    while (e2e_db_int(&s, "SELECT count(*) FROM versions WHERE state = 'candidate'") > 0) {
        ck_assert_msg(now_ms() < end, "candidates of stopped runs are left behind");
        e2e_sleep_ms(20);
    }
    e2e_sleep_ms(300);
    for (int i = 0; i < 3; i++) {
        r = latest_run(&s, ids[i]);
        ck_assert_str_eq(run_status(&r), "cancelled");
        ck_assert_int_eq((int)e2e_json_num(field(r.json, "training"), "done_iterations"), done_at_stop[i]);
        e2e_response_free(&r);
        char *path = e2e_fmt(AGENTS "/%s", ids[i]);
        r = e2e_get(&s, path);
        free(path);
        ck_assert_str_eq(e2e_json_str(field(r.json, "model"), "name"), "v1");
        e2e_response_free(&r);
        path = e2e_fmt(AGENTS "/%s/models", ids[i]);
        r = e2e_get(&s, path);
        free(path);
        ck_assert_int_eq(cJSON_GetArraySize(field(r.json, "models")), 1);
        e2e_response_free(&r);
        path = e2e_fmt(AGENTS "/%s/inference", ids[i]);
        char *body = e2e_fmt("{\"prompt\":\"How does the %s service handle case 3?\"}", ids[i]);
        r = e2e_post(&s, path, body);
        free(path);
        free(body);
        ck_assert_msg(r.status == 200, "inference after stop: %ld %s", r.status, r.body);
        ck_assert_msg(strstr(e2e_json_str(r.json, "response"), "queue 21"), "%s", r.body);
        e2e_response_free(&r);
        path = e2e_fmt(AGENTS "/%s/status", ids[i]);
        r = e2e_get(&s, path);
        free(path);
        ck_assert_str_eq(e2e_json_str(r.json, "status"), "ready");
        /* The stopped run stays on status (issue 12), ended, until the next. */
        const cJSON *tr = field(r.json, "training");
        ck_assert_msg(cJSON_IsObject(tr), "stopped run not in status: %s", r.body);
        ck_assert_str_eq(e2e_json_str(tr, "status"), "cancelled");
        ck_assert_msg(e2e_is_iso_utc(e2e_json_str(tr, "finished_at")), "finished_at: %s", r.body);
        ck_assert_msg(field(tr, "error") == NULL && field(tr, "eta_s") == NULL, "%s", r.body);
        e2e_response_free(&r);
    }
    ck_assert_int_eq(e2e_log_count(&s, "\"level\":\"error\""), 0);

    /* A new group starts at once and completes; the status follows it. */
    long long g2 = start_group(&s, "{\"user_ids\":[\"ann\",\"cyd\"],\"training_cycles\":1}", 1, 2);
    r = wait_group_done(&s, 30000);
    ck_assert_int_eq((long long)e2e_json_num(r.json, "group_id"), g2);
    ck_assert_str_eq(e2e_json_str(r.json, "completion_reason"), "completed");
    ck_assert_int_eq((int)e2e_json_num(r.json, "cycle_count"), 1);
    e2e_response_free(&r);

    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* ---- 3. metrics, advanced create, reserved id, delete all ------------------- */

START_TEST(test_metrics_advanced_and_delete_all_shapes)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);

    /* The advanced alias answers the fields a script reads. */
    char *body = dataset_body("adv", "json_dataset", 12);
    e2e_response r = e2e_post(&s, AGENTS "/advanced", body);
    free(body);
    ck_assert_msg(r.status == 201, "advanced: %ld %s", r.status, r.body);
    ck_assert_str_eq(e2e_json_str(r.json, "training_type"), "json_dataset");
    ck_assert_int_eq((int)e2e_json_num(r.json, "dataset_size"), 12);
    ck_assert_str_eq(e2e_json_str(r.json, "status"), "created");
    e2e_response_free(&r);
    ck_assert_str_eq(e2e_wait_agent(&s, "adv", 60000), "ready");
    create_agent(&s, "bob", 1);
    create_agent(&s, "zoe", 0);

    /* start-training is a route, never an agent. */
    body = dataset_body("start-training", "dataset", 2);
    r = e2e_post(&s, AGENTS, body);
    free(body);
    e2e_assert_error(&r, 400, "invalid_user_id", "reserved", "user_id start-training");
    e2e_response_free(&r);
    r = e2e_get(&s, AGENTS "/start-training");
    e2e_assert_error(&r, 400, "invalid_user_id", "reserved", "GET .../start-training");
    e2e_response_free(&r);

    ck_assert_str_eq(e2e_wait_agent(&s, "zoe", 60000), "ready");
    start_group(&s, "{\"user_ids\":[\"bob\"],\"training_cycles\":2}", 2, 1);
    r = wait_group_done(&s, 30000);
    e2e_response_free(&r);

    r = e2e_get(&s, METRICS);
    ck_assert_msg(r.status == 200, "metrics: %ld %s", r.status, r.body);
    const cJSON *m = field(r.json, "metrics");
    ck_assert_msg(cJSON_IsObject(m), "%s", r.body);
    ck_assert_int_eq((int)e2e_json_num(m, "total_users"), 3);
    ck_assert_int_eq((int)e2e_json_num(m, "users_with_metrics"), 3);
    double avg = e2e_json_num(m, "average_accuracy");
    ck_assert(avg > 0 && avg <= 100);
    int high = (int)e2e_json_num(m, "high_performers");
    const cJSON *users = field(m, "users");
    ck_assert_int_eq(cJSON_GetArraySize(users), 3);
    int counted_high = 0;
    double sum = 0;
    const cJSON *u;
    cJSON_ArrayForEach(u, users) {
        ck_assert_str_eq(e2e_json_str(u, "user_id"), u->string);
        ck_assert_str_eq(e2e_json_str(u, "status"), "ready");
        double acc = e2e_json_num(u, "accuracy");
        ck_assert(acc >= 0 && acc <= 100);
        ck_assert(cJSON_IsTrue(field(u, "has_metrics")));
        assert_int(u, "session_count", "metrics user");
        assert_iso_or_null(u, "last_training", "metrics user");
        counted_high += acc >= 80;
        sum += acc;
    }
    ck_assert_int_eq(high, counted_high);
    ck_assert_msg(avg > sum / 3 - 0.02 && avg < sum / 3 + 0.02, "average %g of %g", avg, sum / 3);
    ck_assert_int_eq((int)e2e_json_num(field(users, "bob"), "session_count"), 1);
    assert_iso(field(users, "bob"), "last_training", "bob");
    ck_assert_int_eq((int)e2e_json_num(field(users, "adv"), "session_count"), 0);
    ck_assert(cJSON_IsNull(field(field(users, "adv"), "last_training")));
    ck_assert(cJSON_IsNull(field(r.json, "next_cursor")));
    assert_iso(r.json, "timestamp", "metrics");
    e2e_response_free(&r);

    /* Pages of the users map; the totals stay over everyone. */
    r = e2e_get(&s, METRICS "?limit=2");
    ck_assert_int_eq(cJSON_GetArraySize(field(field(r.json, "metrics"), "users")), 2);
    ck_assert_int_eq((int)e2e_json_num(field(r.json, "metrics"), "total_users"), 3);
    ck_assert_str_eq(e2e_json_str(r.json, "next_cursor"), "bob");
    e2e_response_free(&r);
    r = e2e_get(&s, METRICS "?limit=2&cursor=bob");
    ck_assert_int_eq(cJSON_GetArraySize(field(field(r.json, "metrics"), "users")), 1);
    ck_assert(field(field(field(r.json, "metrics"), "users"), "zoe") != NULL);
    ck_assert(cJSON_IsNull(field(r.json, "next_cursor")));
    e2e_response_free(&r);
    r = e2e_get(&s, METRICS "?limit=0");
    e2e_assert_error(&r, 400, "invalid_limit", "limit", "limit 0");
    e2e_response_free(&r);
    r = e2e_get(&s, METRICS "?cursor=..");
    e2e_assert_error(&r, 400, "invalid_cursor", "cursor", "cursor ..");
    e2e_response_free(&r);

    /* Delete all: the page reads result.total_users, removed_users.length
     * and failed_users. */
    r = e2e_request(&s, "DELETE", AGENTS "/all", NULL, NULL);
    ck_assert_msg(r.status == 200, "delete all: %ld %s", r.status, r.body);
    const cJSON *res = field(r.json, "result");
    ck_assert_msg(cJSON_IsObject(res), "no result: %s", r.body);
    ck_assert_int_eq((int)e2e_json_num(res, "removed"), 3);
    ck_assert_int_eq((int)e2e_json_num(res, "total_users"), 3);
    ck_assert_int_eq((int)e2e_json_num(r.json, "deleted"), 3);
    ck_assert_int_eq(cJSON_GetArraySize(field(res, "removed_users")), 3);
    ck_assert(cJSON_IsString(cJSON_GetArrayItem(field(res, "removed_users"), 0)));
    ck_assert(cJSON_IsArray(field(res, "failed_users")));
    ck_assert_int_eq(cJSON_GetArraySize(field(res, "failed_users")), 0);
    e2e_response_free(&r);
    r = e2e_get(&s, METRICS);
    ck_assert_int_eq((int)e2e_json_num(field(r.json, "metrics"), "total_users"), 0);
    ck_assert_int_eq((int)e2e_json_num(field(r.json, "metrics"), "average_accuracy"), 0);
    ck_assert_int_eq(cJSON_GetArraySize(field(field(r.json, "metrics"), "users")), 0);
    e2e_response_free(&r);
    r = e2e_request(&s, "DELETE", AGENTS "/all", NULL, NULL);
    ck_assert_int_eq((int)e2e_json_num(field(r.json, "result"), "total_users"), 0);
    e2e_response_free(&r);

    /* The dataset files' own shape {description, training_data: [...]}:
     * dataset_size counts the pairs, not the object's keys. */
    char *pairs = dataset_body("adv2", "training_data", 7);
    cJSON *file = cJSON_Parse(pairs);
    free(pairs);
    cJSON_DeleteItemFromObjectCaseSensitive(file, "user_id");
    cJSON_AddStringToObject(file, "description", "a dataset file");
    cJSON *wrapped = cJSON_CreateObject();
    cJSON_AddStringToObject(wrapped, "user_id", "adv2");
    cJSON_AddItemToObject(wrapped, "json_dataset", file);
    body = cJSON_PrintUnformatted(wrapped);
    cJSON_Delete(wrapped);
    r = e2e_post(&s, AGENTS "/advanced", body);
    free(body);
    ck_assert_msg(r.status == 201, "advanced (file shape): %ld %s", r.status, r.body);
    ck_assert_str_eq(e2e_json_str(r.json, "training_type"), "json_dataset");
    ck_assert_int_eq((int)e2e_json_num(r.json, "dataset_size"), 7);
    e2e_response_free(&r);
    /* Free text through the alias: training_type text, no pairs. */
    r = e2e_post(&s, AGENTS "/advanced",
                 "{\"user_id\":\"adv3\",\"training_data\":\"Builds are queued by priority. A failed build is retried twice.\"}");
    ck_assert_msg(r.status == 201, "advanced (text): %ld %s", r.status, r.body);
    ck_assert_str_eq(e2e_json_str(r.json, "training_type"), "text");
    ck_assert_int_eq((int)e2e_json_num(r.json, "dataset_size"), 0);
    e2e_response_free(&r);

    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

Suite *e2e_compat_suite(void)
{
    Suite *s = suite_create("e2e_compat");
    TCase *tc = tcase_create("compat");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_start_training_refusals_and_completion);
    tcase_add_test(tc, test_stop_while_running_keeps_serving);
    tcase_add_test(tc, test_metrics_advanced_and_delete_all_shapes);
    suite_add_tcase(s, tc);
    return s;
}
