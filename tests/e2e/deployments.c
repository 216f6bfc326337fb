/* Deployments over HTTP against the real binary: the lifecycle (create,
 * push, the gate's rejection, force, remove and rollback, not_deployed),
 * logs and paging, the pipeline's, training's and models/{name}/deploy's
 * records, inference while deployments switch, SIGKILL in the middle of
 * switches, and a schema-5 database's backfilled records. */
#include <check.h>
#include <curl/curl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "tests/e2e/harness.h"

Suite *e2e_deployments_suite(void);

#define AGENTS "/api/v1/agents"
#define Q_FOREST "How to choose between Random Forest and XGBoost?"

static const cJSON *jget(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static void create_ml(const e2e_server *s, const char *id)
{
    char *body = e2e_dataset_body(id, "data/ml_expert_dataset.json");
    e2e_response r = e2e_post(s, AGENTS, body);
    free(body);
    ck_assert_msg(r.status == 201, "create %s: %ld %s", id, r.status, r.body);
    e2e_response_free(&r);
    const char *st = e2e_wait_agent(s, id, 60000);
    ck_assert_msg(!strcmp(st, "ready"), "agent %s ended %s", id, st);
}

/* Trains version `name` with one iteration and waits for the run's end. */
static void train_version(const e2e_server *s, const char *id, const char *name)
{
    char *path = e2e_fmt(AGENTS "/%s/train", id);
    char *body = e2e_fmt("{\"iterations\":1,\"name\":\"%s\"}", name);
    e2e_response r = e2e_post(s, path, body);
    ck_assert_msg(r.status == 202, "train: %ld %s", r.status, r.body);
    long long tid = (long long)e2e_json_num(r.json, "training_id");
    e2e_response_free(&r);
    free(body);
    free(path);
    path = e2e_fmt(AGENTS "/%s/training?training_id=%lld", id, tid);
    for (int i = 0; i < 3000; i++) {
        r = e2e_get(s, path);
        const char *st = e2e_json_str(jget(r.json, "training"), "status");
        int over = st && (!strcmp(st, "done") || !strcmp(st, "failed"));
        if (over) ck_assert_msg(!strcmp(st, "done"), "training ended %s: %s", st, r.body);
        e2e_response_free(&r);
        if (over) break;
        e2e_sleep_ms(20);
    }
    free(path);
}

/* POST .../deployments with `body`; asserts `status` and returns the response. */
static e2e_response dep_create(const e2e_server *s, const char *id, const char *body, long status)
{
    char *path = e2e_fmt(AGENTS "/%s/deployments", id);
    e2e_response r = e2e_post(s, path, body);
    free(path);
    ck_assert_msg(r.status == status, "create deployment %s: %ld %s", body, r.status, r.body);
    return r;
}

static e2e_response dep_call(const e2e_server *s, const char *method, const char *id, const char *uuid,
                             const char *tail, const char *body)
{
    char *path = e2e_fmt(AGENTS "/%s/deployments/%s%s", id, uuid, tail);
    e2e_response r = e2e_request(s, method, path, body, NULL);
    free(path);
    return r;
}

/* The deployment's status (GET), in a static buffer. */
static const char *dep_status(const e2e_server *s, const char *id, const char *uuid)
{
    static char st[32];
    e2e_response r = dep_call(s, "GET", id, uuid, "", NULL);
    ck_assert_msg(r.status == 200, "GET deployment: %ld %s", r.status, r.body);
    snprintf(st, sizeof(st), "%s", e2e_json_str(r.json, "status"));
    e2e_response_free(&r);
    return st;
}

/* The deployment's event words in order, space-separated; checks each
 * event's time is ISO and none is earlier than the one before. */
static char *dep_events(const e2e_server *s, const char *id, const char *uuid, e2e_response *keep)
{
    e2e_response r = dep_call(s, "GET", id, uuid, "/logs", NULL);
    ck_assert_msg(r.status == 200, "logs: %ld %s", r.status, r.body);
    ck_assert_str_eq(e2e_json_str(r.json, "deployment"), uuid);
    char buf[1024] = "";
    char last[40] = "";
    const cJSON *ev;
    cJSON_ArrayForEach(ev, jget(r.json, "events")) {
        const char *at = e2e_json_str(ev, "at");
        ck_assert_msg(e2e_is_iso_utc(at), "event time %s", at ? at : "(null)");
        ck_assert_msg(strcmp(last, at) <= 0, "events out of order: %s after %s", at, last);
        snprintf(last, sizeof(last), "%s", at);
        ck_assert_ptr_nonnull(e2e_json_str(ev, "message"));
        size_t n = strlen(buf);
        snprintf(buf + n, sizeof(buf) - n, "%s%s", n ? " " : "", e2e_json_str(ev, "event"));
    }
    if (keep) *keep = r;
    else e2e_response_free(&r);
    return strdup(buf);
}

static void assert_events(const e2e_server *s, const char *id, const char *uuid, const char *want)
{
    char *got = dep_events(s, id, uuid, NULL);
    ck_assert_msg(!strcmp(got, want), "deployment %s events: '%s', expected '%s'", uuid, got, want);
    free(got);
}

/* POST .../inference: the status, and the answering version in `version`. */
static long infer(const e2e_server *s, const char *id, char *version, size_t cap, int *sources)
{
    char *path = e2e_fmt(AGENTS "/%s/inference", id);
    e2e_response r = e2e_post(s, path, "{\"prompt\":\"" Q_FOREST "\"}");
    free(path);
    long st = r.status;
    if (st == 200) {
        snprintf(version, cap, "%s", e2e_json_str(r.json, "version") ? e2e_json_str(r.json, "version") : "");
        if (sources) *sources = cJSON_GetArraySize(jget(r.json, "sources"));
    } else if (version) {
        snprintf(version, cap, "%s", e2e_json_str(r.json, "code") ? e2e_json_str(r.json, "code") : "");
    }
    e2e_response_free(&r);
    return st;
}

/* ---- the lifecycle ------------------------------------------------------------ */

START_TEST(test_deployments_lifecycle)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    create_ml(&s, "ml");

    /* The pipeline's ModelDeployer made the first record. */
    e2e_response r = e2e_get(&s, AGENTS "/ml/deployments");
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_int_eq((int)e2e_json_num(r.json, "count"), 1);
    const cJSON *d0 = cJSON_GetArrayItem(jget(r.json, "deployments"), 0);
    ck_assert_str_eq(e2e_json_str(d0, "created_by"), "system");
    ck_assert_str_eq(e2e_json_str(d0, "status"), "live");
    ck_assert_str_eq(e2e_json_str(d0, "model"), "v1");
    ck_assert_str_eq(e2e_json_str(d0, "agent"), "ml");
    ck_assert_msg(cJSON_IsObject(jget(d0, "metrics")) && cJSON_IsNumber(jget(d0, "quality")), "%s", r.body);
    ck_assert(e2e_is_iso_utc(e2e_json_str(d0, "live_at")));
    char pipeline_dep[40];
    snprintf(pipeline_dep, sizeof(pipeline_dep), "%s", e2e_json_str(d0, "id"));
    ck_assert_int_eq((int)strlen(pipeline_dep), 36);
    ck_assert_int_eq(pipeline_dep[14], '4');
    e2e_response_free(&r);
    assert_events(&s, "ml", pipeline_dep, "created gate live");

    /* Training's finish made the second, with its uuid in the run's record. */
    train_version(&s, "ml", "v2");
    r = e2e_get(&s, AGENTS "/ml/training");
    const cJSON *tdep = jget(jget(r.json, "trained_data"), "deployment");
    const char *train_dep = e2e_json_str(tdep, "deployment");
    ck_assert_msg(train_dep && strlen(train_dep) == 36, "training deployment: %s", r.body);
    char train_uuid[40];
    snprintf(train_uuid, sizeof(train_uuid), "%s", train_dep);
    e2e_response_free(&r);
    r = dep_call(&s, "GET", "ml", train_uuid, "", NULL);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(e2e_json_str(r.json, "created_by"), "system");
    ck_assert_str_eq(e2e_json_str(r.json, "model"), "v2");
    e2e_response_free(&r);

    /* create + push, forced so that the order of the two qualities does not matter. */
    r = dep_create(&s, "ml", "{\"model\":\"v1\",\"force\":true}", 201);
    char a[40];
    snprintf(a, sizeof(a), "%s", e2e_json_str(r.json, "id"));
    ck_assert_str_eq(e2e_json_str(r.json, "status"), "live");
    ck_assert(cJSON_IsTrue(jget(r.json, "forced")));
    ck_assert_str_eq(e2e_json_str(r.json, "created_by"), "anonymous");
    char *loc = e2e_header(&r, "Location");
    char *want_loc = e2e_fmt(AGENTS "/ml/deployments/%s", a);
    ck_assert_msg(loc && !strcmp(loc, want_loc), "Location %s", loc ? loc : "(none)");
    free(loc);
    free(want_loc);
    e2e_response_free(&r);
    char v[70];
    ck_assert_int_eq(infer(&s, "ml", v, sizeof(v), NULL), 200);
    ck_assert_str_eq(v, "v1");

    /* A clearly worse version is rejected, with both numbers and the reason. */
    e2e_db_exec(&s, "UPDATE versions SET quality = 0.01 WHERE name = 'v2'");
    r = dep_create(&s, "ml", "{\"model\":\"v2\"}", 201);
    char rej[40];
    snprintf(rej, sizeof(rej), "%s", e2e_json_str(r.json, "id"));
    ck_assert_str_eq(e2e_json_str(r.json, "status"), "rejected");
    ck_assert(!cJSON_IsTrue(jget(r.json, "forced")));
    ck_assert_msg(strstr(e2e_json_str(r.json, "reason"), "clearly below"), "%s", r.body);
    ck_assert(cJSON_IsNull(jget(r.json, "live_at")));
    e2e_response_free(&r);
    e2e_response logs;
    char *evs = dep_events(&s, "ml", rej, &logs);
    ck_assert_str_eq(evs, "created gate rejected");
    free(evs);
    const cJSON *gate = cJSON_GetArrayItem(jget(logs.json, "events"), 1);
    const cJSON *detail = jget(gate, "detail");
    ck_assert_msg(e2e_json_num(detail, "quality") < 0.02 && e2e_json_num(detail, "previous_quality") > 0.05,
                  "gate detail: %s", logs.body);
    ck_assert_str_eq(e2e_json_str(detail, "previous"), "v1");
    ck_assert_msg(strstr(e2e_json_str(gate, "message"), "0.010"), "gate message: %s", logs.body);
    e2e_response_free(&logs);
    ck_assert_int_eq(infer(&s, "ml", v, sizeof(v), NULL), 200);
    ck_assert_str_eq(v, "v1");

    /* push:false leaves it pending; a forced push puts it live. */
    r = dep_create(&s, "ml", "{\"model\":\"v2\",\"push\":false}", 201);
    char b[40];
    snprintf(b, sizeof(b), "%s", e2e_json_str(r.json, "id"));
    ck_assert_str_eq(e2e_json_str(r.json, "status"), "pending");
    ck_assert(cJSON_IsNull(jget(r.json, "reason")));
    e2e_response_free(&r);
    assert_events(&s, "ml", b, "created");
    r = dep_call(&s, "POST", "ml", b, "/push", NULL);
    ck_assert_msg(r.status == 200 && !strcmp(e2e_json_str(r.json, "status"), "rejected"), "%ld %s", r.status,
                  r.body);
    e2e_response_free(&r);
    r = dep_create(&s, "ml", "{\"model\":\"v2\",\"push\":false}", 201);
    snprintf(b, sizeof(b), "%s", e2e_json_str(r.json, "id"));
    e2e_response_free(&r);
    r = dep_call(&s, "POST", "ml", b, "/push", "{\"force\":true}");
    ck_assert_msg(r.status == 200, "push: %ld %s", r.status, r.body);
    ck_assert_str_eq(e2e_json_str(r.json, "status"), "live");
    ck_assert(cJSON_IsTrue(jget(r.json, "forced")));
    e2e_response_free(&r);
    assert_events(&s, "ml", b, "created gate live");
    ck_assert_str_eq(dep_status(&s, "ml", a), "superseded");
    e2e_response al;
    evs = dep_events(&s, "ml", a, &al);
    ck_assert_str_eq(evs, "created gate live superseded");
    free(evs);
    char *sup = e2e_fmt("superseded by %s", b);
    ck_assert_str_eq(e2e_json_str(cJSON_GetArrayItem(jget(al.json, "events"), 3), "message"), sup);
    free(sup);
    e2e_response_free(&al);
    ck_assert_int_eq(infer(&s, "ml", v, sizeof(v), NULL), 200);
    ck_assert_str_eq(v, "v2");
    r = dep_call(&s, "POST", "ml", b, "/push", NULL);
    e2e_assert_error(&r, 409, "invalid_state", "not pending", "push a live deployment");
    e2e_response_free(&r);

    /* Removing the live one brings back the one before it. */
    r = dep_call(&s, "DELETE", "ml", b, "", NULL);
    ck_assert_msg(r.status == 200, "delete: %ld %s", r.status, r.body);
    ck_assert_str_eq(e2e_json_str(r.json, "status"), "removed");
    e2e_response_free(&r);
    assert_events(&s, "ml", b, "created gate live removed rolled_back_to");
    ck_assert_str_eq(dep_status(&s, "ml", a), "live");
    assert_events(&s, "ml", a, "created gate live superseded restored");
    ck_assert_int_eq(infer(&s, "ml", v, sizeof(v), NULL), 200);
    ck_assert_str_eq(v, "v1");
    /* Removing a removed one changes nothing; a rejected one is just removed. */
    r = dep_call(&s, "DELETE", "ml", b, "", NULL);
    ck_assert_int_eq(r.status, 200);
    e2e_response_free(&r);
    assert_events(&s, "ml", b, "created gate live removed rolled_back_to");
    r = dep_call(&s, "DELETE", "ml", rej, "", NULL);
    ck_assert_int_eq(r.status, 200);
    e2e_response_free(&r);
    assert_events(&s, "ml", rej, "created gate rejected removed");
    ck_assert_str_eq(dep_status(&s, "ml", a), "live");

    /* models/{name}/deploy is a forced deployment by the caller. */
    r = e2e_post(&s, AGENTS "/ml/models/v2/deploy", NULL);
    ck_assert_msg(r.status == 200, "models deploy: %ld %s", r.status, r.body);
    ck_assert_str_eq(e2e_json_str(r.json, "deployed"), "v2");
    ck_assert_str_eq(e2e_json_str(r.json, "previous"), "v1");
    char m[40];
    snprintf(m, sizeof(m), "%s", e2e_json_str(r.json, "deployment"));
    e2e_response_free(&r);
    r = dep_call(&s, "GET", "ml", m, "", NULL);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(e2e_json_str(r.json, "status"), "live");
    ck_assert_str_eq(e2e_json_str(r.json, "created_by"), "anonymous");
    ck_assert(cJSON_IsTrue(jget(r.json, "forced")));
    e2e_response_free(&r);

    /* Remove the live one until none is left: inference says not_deployed. */
    for (int i = 0; i < 10; i++) {
        r = e2e_get(&s, AGENTS "/ml/deployments?limit=100");
        char live[40] = "";
        const cJSON *d;
        cJSON_ArrayForEach(d, jget(r.json, "deployments"))
            if (!strcmp(e2e_json_str(d, "status"), "live")) snprintf(live, sizeof(live), "%s", e2e_json_str(d, "id"));
        e2e_response_free(&r);
        if (!*live) break;
        r = dep_call(&s, "DELETE", "ml", live, "", NULL);
        ck_assert_int_eq(r.status, 200);
        e2e_response_free(&r);
    }
    ck_assert_int_eq(infer(&s, "ml", v, sizeof(v), NULL), 409);
    ck_assert_str_eq(v, "not_deployed");
    /* evaluate reads the deployed version too, and says the same. */
    r = e2e_post(&s, AGENTS "/ml/evaluate", "{\"test_prompt\":\"" Q_FOREST "\",\"expected_answer\":\"XGBoost\"}");
    e2e_assert_error(&r, 409, "not_deployed", "no live deployment", "evaluate with every deployment removed");
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_db_int(&s, "SELECT count(*) FROM agents WHERE deployed_version_id IS NULL"), 1);
    /* A new deployment serves again. */
    r = dep_create(&s, "ml", "{\"model\":\"v1\"}", 201);
    ck_assert_str_eq(e2e_json_str(r.json, "status"), "live");
    ck_assert_msg(!strncmp(e2e_json_str(r.json, "reason"), "deployed: first version", 23), "%s", r.body);
    e2e_response_free(&r);
    ck_assert_int_eq(infer(&s, "ml", v, sizeof(v), NULL), 200);
    ck_assert_str_eq(v, "v1");

    /* Each step left its audit row, by its actor. */
    static const char *const actions[] = {"deployment.created", "deployment.pushed", "deployment.live",
                                          "deployment.rejected", "deployment.removed"};
    for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
        char *q = e2e_fmt("SELECT count(*) FROM audit_log WHERE action = '%s' AND actor = 'anonymous'", actions[i]);
        ck_assert_msg(e2e_db_int(&s, q) > 0, "no %s audit row", actions[i]);
        free(q);
    }
    ck_assert_int_ge(e2e_db_int(&s, "SELECT count(*) FROM audit_log WHERE action = 'deployment.live'"
                                        " AND actor = 'system'"), 1);
    char *q = e2e_fmt("SELECT count(*) FROM audit_log WHERE action = 'deployment.rejected' AND target = '%s'"
                      " AND detail LIKE '%%\"agent\":\"ml\"%%'", rej);
    ck_assert_int_eq(e2e_db_int(&s, q), 1);
    free(q);

    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* ---- paging and errors --------------------------------------------------------- */

START_TEST(test_deployments_paging_and_errors)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    create_ml(&s, "ml");
    for (int i = 0; i < 4; i++) {
        e2e_response r = dep_create(&s, "ml", "{\"model\":\"v1\",\"push\":false}", 201);
        e2e_response_free(&r);
    }
    /* Five in all, newest first, two to a page. */
    char *seen[8] = {0};
    int n = 0, pages = 0;
    char cursor[64] = "";
    for (;;) {
        char *path = *cursor ? e2e_fmt(AGENTS "/ml/deployments?limit=2&cursor=%s", cursor)
                             : e2e_fmt(AGENTS "/ml/deployments?limit=2");
        e2e_response r = e2e_get(&s, path);
        free(path);
        ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
        pages++;
        const cJSON *d;
        cJSON_ArrayForEach(d, jget(r.json, "deployments")) {
            ck_assert_int_lt(n, 8);
            seen[n++] = strdup(e2e_json_str(d, "id"));
        }
        const cJSON *next = jget(r.json, "next_cursor");
        ck_assert_int_eq((int)e2e_json_num(r.json, "count"), cJSON_GetArraySize(jget(r.json, "deployments")));
        if (cJSON_IsNull(next)) {
            e2e_response_free(&r);
            break;
        }
        snprintf(cursor, sizeof(cursor), "%s", cJSON_GetStringValue(next));
        e2e_response_free(&r);
    }
    ck_assert_int_eq(n, 5);
    ck_assert_int_eq(pages, 3);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) ck_assert_str_ne(seen[i], seen[j]);
    /* The oldest is the pipeline's, the only live one. */
    ck_assert_str_eq(dep_status(&s, "ml", seen[4]), "live");
    ck_assert_str_eq(dep_status(&s, "ml", seen[0]), "pending");
    for (int i = 0; i < n; i++) free(seen[i]);

    e2e_response r = e2e_get(&s, AGENTS "/ml/deployments?limit=0");
    e2e_assert_error(&r, 400, "invalid_limit", "limit", "limit 0");
    e2e_response_free(&r);
    r = e2e_get(&s, AGENTS "/ml/deployments?cursor=nonsense");
    e2e_assert_error(&r, 400, "invalid_cursor", NULL, "bad cursor");
    e2e_response_free(&r);
    r = e2e_get(&s, AGENTS "/ml/deployments?cursor=0b7e5f3c-1d2a-4c3b-8a9d-0123456789ab");
    e2e_assert_error(&r, 400, "invalid_cursor", NULL, "unknown cursor");
    e2e_response_free(&r);
    r = dep_create(&s, "ml", "{\"model\":\"v9\"}", 404);
    e2e_assert_error(&r, 404, "model_not_found", "v9", "unknown model");
    e2e_response_free(&r);
    r = dep_create(&s, "ml", "{}", 400);
    e2e_assert_error(&r, 400, "invalid_body", "model", "no model");
    e2e_response_free(&r);
    r = dep_create(&s, "ml", "{\"model\":\"v1\",\"push\":\"yes\"}", 400);
    e2e_assert_error(&r, 400, "invalid_body", "push", "push not a boolean");
    e2e_response_free(&r);
    r = dep_create(&s, "ml", "{\"model\":\"a b\"}", 400);
    e2e_assert_error(&r, 400, "invalid_body", "model: name may contain only letters", "bad model name");
    e2e_response_free(&r);
    r = dep_create(&s, "nobody", "{\"model\":\"v1\"}", 404);
    e2e_assert_error(&r, 404, "agent_not_found", NULL, "unknown agent");
    e2e_response_free(&r);
    r = dep_call(&s, "GET", "ml", "0b7e5f3c-1d2a-4c3b-8a9d-0123456789ab", "", NULL);
    e2e_assert_error(&r, 404, "deployment_not_found", NULL, "unknown deployment");
    e2e_response_free(&r);
    r = dep_call(&s, "GET", "ml", "not-a-uuid", "/logs", NULL);
    e2e_assert_error(&r, 404, "deployment_not_found", NULL, "malformed uuid");
    e2e_response_free(&r);
    r = dep_call(&s, "DELETE", "ml", "0b7e5f3c-1d2a-4c3b-8a9d-0123456789ab", "", NULL);
    e2e_assert_error(&r, 404, "deployment_not_found", NULL, "delete unknown deployment");
    e2e_response_free(&r);
    r = dep_call(&s, "POST", "ml", "0b7e5f3c-1d2a-4c3b-8a9d-0123456789ab", "/push", "[1]");
    e2e_assert_error(&r, 400, "invalid_body", NULL, "push body not an object");
    e2e_response_free(&r);

    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* ---- an agent with no version yet ------------------------------------------------ */

/* A queued agent (behind a big one on the only worker) has no version to
 * deploy: 409 not_ready, and its inference keeps agent_not_ready (not
 * not_deployed, which is for a ready agent whose deployments were removed). */
START_TEST(test_deployment_before_any_version_is_not_ready)
{
    e2e_server s;
    const char *args[] = {"--workers", "1", NULL};
    e2e_start(&s, args, NULL);
    ad_buf text;
    ad_buf_init(&text);
    for (unsigned i = 0; text.len < (1u << 20); i++)
        ad_buf_printf(&text, "The engineer %u repairs copper engine %u near village %u. ", i, i * 7 % 1000, i % 97);
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "user_id", "bulk");
    cJSON_AddStringToObject(b, "training_data", text.data);
    ad_buf_cleanup(&text);
    char *body = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    e2e_response r = e2e_post(&s, AGENTS, body);
    free(body);
    ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
    e2e_response_free(&r);
    body = e2e_dataset_body("later", "data/ml_expert_dataset.json");
    r = e2e_post(&s, AGENTS, body);
    free(body);
    ck_assert_int_eq(r.status, 201);
    e2e_response_free(&r);

    r = dep_create(&s, "later", "{\"model\":\"v1\"}", 409);
    e2e_assert_error(&r, 409, "not_ready", "later", "deploy before any version");
    e2e_response_free(&r);
    char v[70];
    ck_assert_int_eq(infer(&s, "later", v, sizeof(v), NULL), 409);
    ck_assert_str_eq(v, "agent_not_ready");
    r = e2e_get(&s, AGENTS "/later/deployments");
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq((int)e2e_json_num(r.json, "count"), 0);
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* ---- inference while deployments switch -------------------------------------- */

typedef struct switcher {
    const e2e_server *s;
    atomic_int stop;
    int switches;
} switcher;

/* Switches the live deployment between v1 and v2 (pushes, and removals
 * that roll back) until told to stop. */
static void *switch_loop(void *arg)
{
    switcher *w = arg;
    for (int i = 0; !atomic_load(&w->stop); i++) {
        char *body = e2e_fmt("{\"model\":\"%s\",\"force\":true}", i % 2 ? "v1" : "v2");
        e2e_response r = dep_create(w->s, "ml", body, 201);
        free(body);
        char uuid[40];
        snprintf(uuid, sizeof(uuid), "%s", e2e_json_str(r.json, "id"));
        e2e_response_free(&r);
        if (i % 3 == 2) {
            r = dep_call(w->s, "DELETE", "ml", uuid, "", NULL);
            e2e_response_free(&r);
        }
        w->switches++;
    }
    return NULL;
}

START_TEST(test_inference_while_deployments_switch)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    create_ml(&s, "ml");
    train_version(&s, "ml", "v2");
    /* Two versions that answer differently: v1 gives several sources, v2 one. */
    e2e_db_exec(&s, e2e_backend_pg()
                        ? "UPDATE versions SET params = jsonb_set(params::jsonb, '{top_k}', '5')::text WHERE name = 'v1'"
                        : "UPDATE versions SET params = json_set(params, '$.top_k', 5) WHERE name = 'v1'");
    e2e_db_exec(&s, e2e_backend_pg()
                        ? "UPDATE versions SET params = jsonb_set(params::jsonb, '{top_k}', '1')::text WHERE name = 'v2'"
                        : "UPDATE versions SET params = json_set(params, '$.top_k', 1) WHERE name = 'v2'");
    switcher w = {.s = &s};
    pthread_t th;
    pthread_create(&th, NULL, switch_loop, &w);
    int seen[2] = {0, 0};
    for (int i = 0; i < 150; i++) {
        char v[70];
        int sources = -1;
        long st = infer(&s, "ml", v, sizeof(v), &sources);
        ck_assert_msg(st == 200, "inference during switches: %ld %s", st, v);
        if (!strcmp(v, "v1")) {
            ck_assert_msg(sources >= 2, "v1 answered with %d sources", sources);
            seen[0]++;
        } else {
            ck_assert_msg(!strcmp(v, "v2"), "answered by '%s'", v);
            ck_assert_msg(sources == 1, "v2 answered with %d sources", sources);
            seen[1]++;
        }
    }
    atomic_store(&w.stop, 1);
    pthread_join(th, NULL);
    ck_assert_int_gt(w.switches, 5);
    ck_assert_msg(seen[0] > 0 && seen[1] > 0, "answers: v1 %d, v2 %d", seen[0], seen[1]);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* ---- SIGKILL in the middle of switches ----------------------------------------- */

/* One HTTP call with a handle of its own that, unlike e2e_request, answers
 * a refused or cut connection with 0 instead of failing the test: the
 * server is killed under it. Fills `uuid` from a JSON "id" when given. */
static long try_call(int port, const char *method, const char *path, const char *body, char *uuid)
{
    CURL *c = curl_easy_init();
    char url[300];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    char buf[8192];
    size_t used = 0;
    FILE *mem = fmemopen(buf, sizeof(buf) - 1, "w");
    struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    used = (size_t)ftell(mem);
    fclose(mem);
    buf[used] = '\0';
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    if (uuid) {
        cJSON *j = cJSON_Parse(buf);
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "id"));
        snprintf(uuid, 40, "%s", id ? id : "");
        cJSON_Delete(j);
    }
    return status;
}

typedef struct churner {
    int port;
    atomic_int stop;
    atomic_int calls;
} churner;

/* Pushes, pends and removes deployments of two agents as fast as it can,
 * switching each between its versions v1 and v2 (so a pointer left on the
 * wrong version shows), until the server is gone. */
static void *churn_loop(void *arg)
{
    churner *w = arg;
    static const char *const agents[] = {"ka", "kb"};
    for (unsigned i = 0; !atomic_load(&w->stop); i++) {
        const char *id = agents[i % 2];
        const char *model = (i / 2) % 2 ? "v2" : "v1";
        char path[200], uuid[40] = "", body[80];
        snprintf(path, sizeof(path), AGENTS "/%s/deployments", id);
        snprintf(body, sizeof(body), i % 5 == 0 ? "{\"model\":\"%s\",\"push\":false}"
                                                : "{\"model\":\"%s\",\"force\":true}", model);
        long st = try_call(w->port, "POST", path, body, uuid);
        if (st == 0) break;
        atomic_fetch_add(&w->calls, 1);
        if (i % 3 == 1 && *uuid) {
            snprintf(path, sizeof(path), AGENTS "/%s/deployments/%s", id, uuid);
            if (try_call(w->port, "DELETE", path, NULL, NULL) == 0) break;
        }
    }
    return NULL;
}

/* Every agent has at most one live deployment, whose version is the one
 * agents.deployed_version_id names and the one version in state deployed
 * (none live: NULL and none deployed), and each deployment's last event
 * says its status. */
static void assert_consistent(const e2e_server *s)
{
    ck_assert_int_eq(e2e_db_int(s, "SELECT count(*) FROM (SELECT agent_id FROM deployments WHERE status = 'live'"
                                      " GROUP BY agent_id HAVING count(*) > 1) AS twice"), 0);
    ck_assert_int_eq(e2e_db_int(s, "SELECT count(*) FROM agents a WHERE coalesce(a.deployed_version_id, 0) <>"
                                      " coalesce((SELECT d.version_id FROM deployments d WHERE d.agent_id = a.id"
                                      " AND d.status = 'live'), 0)"), 0);
    ck_assert_int_eq(e2e_db_int(s, "SELECT count(*) FROM agents a WHERE (SELECT count(*) FROM versions v"
                                      " WHERE v.agent_id = a.id AND v.state = 'deployed')"
                                      " <> CASE WHEN a.deployed_version_id IS NOT NULL THEN 1 ELSE 0 END"), 0);
    ck_assert_int_eq(e2e_db_int(s,
                            "SELECT count(*) FROM deployments d WHERE NOT EXISTS (SELECT 1 FROM deployment_events e"
                            " WHERE e.deployment_id = d.id AND e.seq = (SELECT max(seq) FROM deployment_events"
                            " WHERE deployment_id = d.id) AND CASE d.status"
                            " WHEN 'pending' THEN e.event = 'created'"
                            " WHEN 'live' THEN e.event IN ('live', 'restored')"
                            " WHEN 'superseded' THEN e.event = 'superseded'"
                            " WHEN 'rejected' THEN e.event = 'rejected'"
                            " WHEN 'removed' THEN e.event IN ('removed', 'rolled_back_to') ELSE 1 = 0 END)"),
                     0);
    /* A live deployment has gone live, a pending one has not been judged. */
    ck_assert_int_eq(e2e_db_int(s, "SELECT count(*) FROM deployments WHERE status IN ('live', 'superseded')"
                                      " AND live_at IS NULL"), 0);
    ck_assert_int_eq(e2e_db_int(s, "SELECT count(*) FROM deployments d WHERE status = 'pending' AND EXISTS"
                                      " (SELECT 1 FROM deployment_events e WHERE e.deployment_id = d.id"
                                      " AND e.event <> 'created')"), 0);
}

START_TEST(test_sigkill_in_the_middle_of_switches)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    create_ml(&s, "ka");
    create_ml(&s, "kb");
    train_version(&s, "ka", "v2");
    train_version(&s, "kb", "v2");
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    int total = 0;
    for (int round = 0; round < 5; round++) {
        churner w = {.port = s.port};
        pthread_t th;
        pthread_create(&th, NULL, churn_loop, &w);
        e2e_sleep_ms(100 + rand() % 300);
        e2e_kill(&s);
        pthread_join(th, NULL);
        total += atomic_load(&w.calls);
        assert_consistent(&s);
        e2e_restart(&s, NULL, NULL);
        /* The restarted server agrees: the live deployment's version
         * answers, none live is not_deployed. */
        for (int i = 0; i < 2; i++) {
            const char *id = i ? "kb" : "ka";
            char v[70];
            long st = infer(&s, id, v, sizeof(v), NULL);
            char *q = e2e_fmt("SELECT count(*) FROM deployments d JOIN agents a ON a.id = d.agent_id"
                              " WHERE a.user_id = '%s' AND d.status = 'live'", id);
            long long live = e2e_db_int(&s, q);
            free(q);
            ck_assert_msg(live ? st == 200 : st == 409 && !strcmp(v, "not_deployed"),
                          "%s: %lld live, inference %ld %s", id, live, st, v);
            if (!live) continue;
            q = e2e_fmt("SELECT count(*) FROM deployments d JOIN agents a ON a.id = d.agent_id"
                        " WHERE a.user_id = '%s' AND d.status = 'live' AND d.model = '%s'", id, v);
            ck_assert_msg(e2e_db_int(&s, q) == 1, "%s answered with %s, not its live deployment's version", id,
                          v);
            free(q);
        }
    }
    ck_assert_int_gt(total, 10);
    ck_assert_int_eq(e2e_stop(&s), 0);
    assert_consistent(&s);
    e2e_cleanup(&s);
}
END_TEST

/* ---- a database from before deployments ------------------------------------------ */

/* tests/data/schema5.sql (two serving agents, no deployments table): the
 * migration records one live deployment per agent, made by "system", with
 * a v4 UUID of its own. */
START_TEST(test_schema5_database_gets_live_deployments)
{
    if (e2e_skip_on_pg("migrates a SQLite file of schema version 5")) return;
    char dir[] = "/tmp/agentd-deploy5-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char *data = e2e_fmt("%s/data", dir);
    ck_assert_int_eq(mkdir(data, 0750), 0);
    char *path = e2e_fmt("%s/agentd.db", data);
    char *dump = e2e_read_file(e2e_test_file("data/schema5.sql"), NULL);
    ck_assert_ptr_nonnull(dump);
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    ck_assert_msg(sqlite3_exec(db, dump, NULL, NULL, &msg) == SQLITE_OK, "load: %s", msg ? msg : "");
    sqlite3_close(db);
    free(dump);

    e2e_server s;
    const char *const args[] = {"--data-dir", data, NULL};
    e2e_start(&s, args, NULL);
    snprintf(s.data_dir, sizeof(s.data_dir), "%s", data);
    const char *const ids[] = {"old_text", "old_dataset"};
    char uuids[2][40];
    for (int i = 0; i < 2; i++) {
        char *p = e2e_fmt(AGENTS "/%s/deployments", ids[i]);
        e2e_response r = e2e_get(&s, p);
        free(p);
        ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
        ck_assert_int_eq((int)e2e_json_num(r.json, "count"), 1);
        const cJSON *d = cJSON_GetArrayItem(jget(r.json, "deployments"), 0);
        ck_assert_str_eq(e2e_json_str(d, "status"), "live");
        ck_assert_str_eq(e2e_json_str(d, "created_by"), "system");
        ck_assert_str_eq(e2e_json_str(d, "model"), "v1");
        ck_assert(e2e_is_iso_utc(e2e_json_str(d, "live_at")));
        const char *u = e2e_json_str(d, "id");
        ck_assert_msg(strlen(u) == 36 && u[8] == '-' && u[14] == '4' && strchr("89ab", u[19]), "uuid %s", u);
        snprintf(uuids[i], sizeof(uuids[i]), "%s", u);
        e2e_response_free(&r);
        assert_events(&s, ids[i], uuids[i], "live");
        char v[70];
        ck_assert_int_eq(infer(&s, ids[i], v, sizeof(v), NULL), 200);
        ck_assert_str_eq(v, "v1");
    }
    ck_assert_str_ne(uuids[0], uuids[1]);
    ck_assert_int_eq(e2e_stop(&s), 0);
    assert_consistent(&s);
    e2e_cleanup(&s);
    char *cmd = e2e_fmt("rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
    free(path);
    free(data);
}
END_TEST

Suite *e2e_deployments_suite(void)
{
    Suite *s = suite_create("e2e_deployments");
    TCase *tc = tcase_create("deployments");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, test_deployments_lifecycle);
    tcase_add_test(tc, test_deployments_paging_and_errors);
    tcase_add_test(tc, test_deployment_before_any_version_is_not_ready);
    tcase_add_test(tc, test_inference_while_deployments_switch);
    tcase_add_test(tc, test_sigkill_in_the_middle_of_switches);
    tcase_add_test(tc, test_schema5_database_gets_live_deployments);
    suite_add_tcase(s, tc);
    return s;
}
