/*
 * Fuzz target: a JSON request body, as server/http.c hands it to the
 * handlers. The body is refused or parsed exactly as http_dispatch does, then
 *  - both agent-creation handlers run for real (their validation never
 *    touches the database; a body that passes it reaches storage_conn_get(),
 *    which has no database here and answers 503), and
 *  - the fields the per-agent handlers read (they look the agent up before
 *    reading the body, so they cannot run without a database) go through the
 *    same base/json.c readers with the same bounds, followed by the same
 *    agents_check_user_id / training_check_version_name / UTF-8 checks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "api/request.h"
#include "base/json.h"
#include "base/log.h"
#include "config/config.h"
#include "handlers/agents.h"
#include "handlers/training.h"
#include "model/answerer.h"
#include "model/text.h"
#include "server/router.h"
#include "storage/db.h"
#include "pipeline/plan.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ad_config fuzz_cfg;
static ad_app fuzz_app;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    config_init(&fuzz_cfg);
    /* The smallest limits the configuration allows, so inputs of libFuzzer's
     * size reach the "too long" branches. */
    fuzz_cfg.max_training_bytes = 1024;
    fuzz_cfg.max_prompt_bytes = 16;
    fuzz_app.cfg = &fuzz_cfg;
    /* Above every level: storage_conn_get() logs an error on each call without a
     * database, which would flood libFuzzer's output. */
    ad_log_set_level((ad_log_level)(AD_LOG_ERROR + 1));
    /* storage_conn_get() reads its thread key without creating it first, so
     * before storage_open() it would take another library's key-0 value for
     * its connection; this creates the key (and finds no connection). */
    storage_thread_release();
    return 0;
}

/* The same test as http_body_has_nul_escape (static in server/http.c). */
static int fuzz_has_nul_escape(const char *s, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] != '\\') continue;
        if (s[i + 1] == 'u' && i + 5 < n && memcmp(s + i + 2, "0000", 4) == 0) return 1;
        i++;
    }
    return 0;
}

/* A reader's result must be 0, AD_ENOTFOUND (optional field) or AD_EINVAL
 * with a message. */
static void fuzz_check_rc(int rc, const ad_err *e)
{
    if (rc == AD_EINVAL && e->msg[0] == '\0') abort();
    if (rc != 0 && rc != AD_ENOTFOUND && rc != AD_EINVAL) abort();
}

static void fuzz_string(const cJSON *obj, const char *key, int required, size_t max, int utf8)
{
    ad_err e = {0};
    const char *s = NULL;
    int rc = ad_json_string(obj, key, required, max, &s, &e);
    fuzz_check_rc(rc, &e);
    if (rc != 0) {
        if (s) abort(); /* *out is NULL on failure */
        return;
    }
    size_t n = strlen(s);
    if (n > max || n == 0) abort();
    size_t bad = 0;
    if (utf8 && ad_utf8_validate(s, n, &bad) < 0 && bad >= n) abort();
}

static void fuzz_int(const cJSON *obj, const char *key, int required, long long min, long long max)
{
    ad_err e = {0};
    long long v = min - 1;
    int rc = ad_json_int(obj, key, required, min, max, &v, &e);
    fuzz_check_rc(rc, &e);
    if (rc == 0 && (v < min || v > max)) abort();
}

static void fuzz_number(const cJSON *obj, const char *key, double min, double max)
{
    ad_err e = {0};
    double v = min - 1;
    int rc = ad_json_number(obj, key, 0, min, max, &v, &e);
    fuzz_check_rc(rc, &e);
    if (rc == 0 && !(v >= min && v <= max)) abort();
}

static void fuzz_bool(const cJSON *obj, const char *key)
{
    ad_err e = {0};
    int v = -1;
    int rc = ad_json_bool(obj, key, 0, &v, &e);
    fuzz_check_rc(rc, &e);
    if (rc == 0 && v != 0 && v != 1) abort();
}

/* Runs one handler on the body; it must answer synchronously with JSON. */
static void fuzz_handler(ad_handler h, cJSON *json, const char *body, size_t len)
{
    ad_request req = {0};
    req.method = AD_POST;
    req.path = "/api/v1/agents";
    req.accept = "";
    req.body = body;
    req.body_len = len;
    req.json = json;
    req.request_id = "fuzz";
    req.app = &fuzz_app;
    ad_response res;
    ad_response_init(&res);
    h(&req, &res);
    if (res.deferred || res.stream) abort();
    if (res.status != 400 && res.status != 503) abort(); /* 201 needs a database */
    if (res.body.len == 0) abort();
    ad_response_cleanup(&res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    if (size == 0 || fuzz_has_nul_escape(body, size)) return 0;
    const char *end = NULL;
    cJSON *json = cJSON_ParseWithLengthOpts(body, size, &end, 0);
    if (!json) {
        /* http_json_error reports the offset of `end` within the body. */
        if (end && (end < body || end > body + size)) abort();
        return 0;
    }
    if (!cJSON_IsObject(json)) {
        cJSON_Delete(json);
        return 0;
    }

    fuzz_handler(handle_agents_create, json, body, size);
    fuzz_handler(handle_agents_create_advanced, json, body, size);

    /* The agent id as it arrives in a body, and as a path parameter. */
    ad_err e = {0};
    const char *user_id = NULL;
    if (ad_json_string(json, "user_id", 1, 1024, &user_id, &e) == 0) {
        int rc = agents_check_user_id(user_id, &e);
        if (rc != 0 && (rc != AD_EINVAL || !e.msg[0])) abort();
    }
    fuzz_string(json, "training_data", 1, (size_t)fuzz_cfg.max_training_bytes, 1);
    fuzz_string(json, "base_model", 0, 128, 1);
    fuzz_string(json, "description", 0, 2048, 1);
    const cJSON *items[] = {cJSON_GetObjectItemCaseSensitive(json, "dataset"),
                            cJSON_GetObjectItemCaseSensitive(json, "json_dataset")};
    for (size_t k = 0; k < 2; k++) {
        const cJSON *item;
        cJSON_ArrayForEach(item, items[k])
        {
            if (!cJSON_IsObject(item)) continue;
            fuzz_string(item, "prompt", 1, (size_t)fuzz_cfg.max_training_bytes, 1);
            fuzz_string(item, "answer", 1, (size_t)fuzz_cfg.max_training_bytes, 1);
            fuzz_string(item, "category", 0, (size_t)fuzz_cfg.max_training_bytes, 1);
        }
    }

    /* POST .../inference */
    fuzz_string(json, "prompt", 1, (size_t)fuzz_cfg.max_prompt_bytes, 1);
    fuzz_bool(json, "stream");
    fuzz_int(json, "max_output_tokens", 0, 1, 65536);
    fuzz_number(json, "temperature", 0.0, 2.0);
    fuzz_int(json, "top_passages", 0, 1, ANSWERER_MAX_HITS);
    /* POST .../train */
    fuzz_int(json, "iterations", 1, 1, 1000);
    const char *name = NULL;
    e.msg[0] = '\0';
    if (ad_json_string(json, "name", 0, 256, &name, &e) == 0) {
        int rc = training_check_version_name(name, &e);
        if (rc != 0 && (rc != AD_EINVAL || !e.msg[0])) abort();
    }
    /* POST .../evaluate, .../feedback, .../replay */
    fuzz_string(json, "test_prompt", 1, (size_t)fuzz_cfg.max_prompt_bytes, 0);
    fuzz_string(json, "expected_answer", 1, (size_t)fuzz_cfg.max_prompt_bytes, 0);
    fuzz_string(json, "response", 1, (size_t)fuzz_cfg.max_prompt_bytes, 1);
    fuzz_string(json, "feedback", 1, (size_t)fuzz_cfg.max_prompt_bytes, 1);
    fuzz_int(json, "rating", 0, 1, 5);
    fuzz_int(json, "task_index", 1, 0, PIPELINE_STAGES - 1);
    fuzz_string(json, "task_id", 1, 64, 0);

    cJSON_Delete(json);
    return 0;
}
