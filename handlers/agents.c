#include "handlers/agents.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "base/clock.h"
#include "base/json.h"
#include "base/log.h"
#include "base/mem.h"
#include "handlers/auth.h"
#include "model/analysis.h"
#include "model/metrics.h"
#include "model/text.h"
#include "pipeline/plan.h"
#include "pipeline/pool.h"
#include "storage/db.h"
#include "storage/executions.h"
#include "storage/inferences.h"
#include "storage/versions.h"

#define DATASET_MAX_ITEMS 100000
#define BASE_MODEL_MAX 128
#define DESCRIPTION_MAX 2048
#define LIST_DEFAULT_LIMIT 100
#define LIST_MAX_LIMIT 500

int agents_check_user_id(const char *id, ad_err *e)
{
    size_t n = strlen(id);
    if (n == 0) return ad_err_set(e, AD_EINVAL, "user_id must not be empty");
    if (n > AGENT_USER_ID_MAX)
        return ad_err_set(e, AD_EINVAL, "user_id must be at most %d characters (got %zu)",
                          AGENT_USER_ID_MAX, n);
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return ad_err_set(e, AD_EINVAL,
                              "user_id may contain only letters, digits, '_', '.' and '-'");
    }
    if (!strcmp(id, ".") || !strcmp(id, ".."))
        return ad_err_set(e, AD_EINVAL, "user_id must not be '.' or '..'");
    /* Literal segments of POST/DELETE routes beside /api/v1/agents/{id}. */
    if (!strcmp(id, "all") || !strcmp(id, "advanced") || !strcmp(id, "start-training"))
        return ad_err_set(e, AD_EINVAL, "user_id '%s' is reserved", id);
    return 0;
}

storage_conn *agents_db(ad_request *req, ad_response *res)
{
    storage_conn *db = storage_conn_get();
    if (!db) {
        ad_err e;
        ad_err_set(&e, AD_EUNAVAILABLE, "no database connection (storage_conn_get logged why)");
        agents_answer_storage(req, res, AD_EUNAVAILABLE, NULL, &e);
    }
    return db;
}

#define STORAGE_RETRY_AFTER_S "5"

int agents_answer_storage(ad_request *req, ad_response *res, int rc, const char *user_id,
                          const ad_err *e)
{
    const char *rid = req->request_id ? req->request_id : "";
    const char *detail = e && e->msg[0] ? e->msg : ad_err_name(rc);
    if (rc == AD_ENOTFOUND && user_id) {
        ad_response_error(res, req, 404, "agent_not_found", "no agent with user_id '%s'", user_id);
    } else if (rc == AD_ECONFLICT) {
        /* Storage's own words: they name the conflicting job or run, no SQL. */
        ad_response_error(res, req, 409, "conflict", "%s",
                          e && e->msg[0] ? e->msg : "a conflicting operation is running");
    } else if (rc == AD_EBUSY) {
        ad_response_error(res, req, 503, "database_busy", "the database is busy; retry shortly");
        ad_response_header(res, "Retry-After", "1");
    } else if (rc == AD_EUNAVAILABLE) {
        /* The database server is down or unreachable; the driver reconnects
         * on a later request by itself. */
        ad_log(AD_LOG_WARN, "request %s: database unreachable: %s", rid, detail);
        ad_response_error(res, req, 503, "database_unavailable", "the database cannot be reached; retry shortly");
        ad_response_header(res, "Retry-After", "1");
    } else if (rc == AD_EIO) {
        ad_log(AD_LOG_WARN, "request %s: storage unavailable: %s", rid, detail);
        ad_response_error(res, req, 503, "storage_unavailable",
                          "the database cannot store data right now (disk full or I/O error); "
                          "retry later");
        ad_response_header(res, "Retry-After", STORAGE_RETRY_AFTER_S);
    } else {
        ad_log(AD_LOG_ERROR, "request %s: storage error: %s", rid, detail);
        ad_response_error(res, req, 500, "storage_error",
                          "internal storage error; the server log has the details under request id %s",
                          rid);
    }
    return rc;
}

int agents_answer_not_deployed(ad_request *req, ad_response *res, const agent_row *a)
{
    if (a->deployed_version_id || a->status != AGENT_READY) return 0;
    ad_response_error(res, req, 409, "not_deployed", "agent '%s' has no live deployment: create or push one",
                      a->user_id);
    return 1;
}

/* The connection for a route that names an agent: validates the path's
 * user_id first. Answers 400 or 503 and returns NULL when it cannot go on. */
static storage_conn *agents_path_db(ad_request *req, ad_response *res, const char **id)
{
    ad_err e = {0};
    *id = req->params[0];
    if (agents_check_user_id(*id, &e) < 0) {
        ad_response_error(res, req, 400, "invalid_user_id", "%s", e.msg);
        return NULL;
    }
    return agents_db(req, res);
}

int agents_lookup(ad_request *req, ad_response *res, agent_row *out)
{
    ad_err e = {0};
    const char *id;
    storage_conn *db = agents_path_db(req, res, &id);
    if (!db) return AD_EINVAL;
    int rc = storage_agents_get(db, id, out, &e);
    return rc < 0 ? agents_answer_storage(req, res, rc, id, &e) : 0;
}

int agents_lookup_snapshot(ad_request *req, ad_response *res, agent_row *out)
{
    ad_err e = {0};
    const char *id;
    storage_conn *db = agents_path_db(req, res, &id);
    if (!db) return AD_EINVAL;
    int rc = storage_snapshot_begin(db, &e);
    if (rc == 0) rc = storage_agents_get(db, id, out, &e);
    if (rc == 0) return 0;
    storage_snapshot_end(db);
    return agents_answer_storage(req, res, rc, id, &e);
}

static int agents_check_utf8(const char *field, const char *s, ad_err *e)
{
    size_t bad = 0;
    if (ad_utf8_validate(s, strlen(s), &bad) < 0)
        return ad_err_set(e, AD_EINVAL, "%s is not valid UTF-8 (at byte %zu)", field, bad);
    return 0;
}

/* Validates a dataset array and writes its normalized JSON (only prompt,
 * answer, category) into `out`. */
static int agents_check_dataset(const cJSON *arr, const char *field, size_t max_bytes, ad_buf *out,
                                ad_err *e)
{
    if (!cJSON_IsArray(arr)) return ad_err_set(e, AD_EINVAL, "%s must be an array of {prompt, answer}", field);
    int n = cJSON_GetArraySize(arr);
    if (n == 0) return ad_err_set(e, AD_EINVAL, "%s must not be empty", field);
    if (n > DATASET_MAX_ITEMS)
        return ad_err_set(e, AD_EINVAL, "%s has %d items, more than the limit of %d", field, n,
                          DATASET_MAX_ITEMS);
    ad_buf_putc(out, '[');
    int i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, arr) {
        char name[64];
        if (!cJSON_IsObject(item))
            return ad_err_set(e, AD_EINVAL, "%s[%d] must be an object with prompt and answer", field, i);
        const char *keys[] = {"prompt", "answer"};
        const char *vals[2];
        for (int k = 0; k < 2; k++) {
            snprintf(name, sizeof(name), "%s[%d].%s", field, i, keys[k]);
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(item, keys[k]);
            if (!cJSON_IsString(v) || !v->valuestring[strspn(v->valuestring, " \t\r\n")])
                return ad_err_set(e, AD_EINVAL, "%s must be a non-empty string", name);
            if (agents_check_utf8(name, v->valuestring, e) < 0) return AD_EINVAL;
            vals[k] = v->valuestring;
        }
        const cJSON *cat = cJSON_GetObjectItemCaseSensitive(item, "category");
        snprintf(name, sizeof(name), "%s[%d].category", field, i);
        if (cat && !cJSON_IsNull(cat) && !cJSON_IsString(cat))
            return ad_err_set(e, AD_EINVAL, "%s must be a string", name);
        if (cJSON_IsString(cat) && agents_check_utf8(name, cat->valuestring, e) < 0) return AD_EINVAL;
        if (i) ad_buf_putc(out, ',');
        ad_buf_puts(out, "{\"prompt\":");
        ad_buf_json_string(out, vals[0], strlen(vals[0]));
        ad_buf_puts(out, ",\"answer\":");
        ad_buf_json_string(out, vals[1], strlen(vals[1]));
        if (cJSON_IsString(cat)) {
            ad_buf_puts(out, ",\"category\":");
            ad_buf_json_string(out, cat->valuestring, strlen(cat->valuestring));
        }
        ad_buf_putc(out, '}');
        if (out->len > max_bytes)
            return ad_err_set(e, AD_EINVAL, "%s is larger than the limit of %zu bytes", field, max_bytes);
        i++;
    }
    ad_buf_putc(out, ']');
    return 0;
}

/* Reads the optional `language` field: "auto" (the default) or one of
 * analysis_language's codes; `*requested` is "auto" or the code. */
static int agents_read_language(const cJSON *body, const char **requested, ad_err *e)
{
    const char *code = NULL;
    int rc = ad_json_string(body, "language", 0, 16, &code, NULL);
    analysis_language l;
    if (rc == AD_ENOTFOUND) {
        *requested = "auto";
        return 0;
    }
    if (rc == 0 && (!strcmp(code, "auto") || analysis_language_from_code(code, &l) == 0)) {
        *requested = code;
        return 0;
    }
    ad_buf codes;
    ad_buf_init(&codes);
    for (int i = 0; i < ANALYSIS_LANGUAGE_COUNT; i++)
        ad_buf_printf(&codes, ", %s", analysis_language_code((analysis_language)i));
    ad_err_set(e, AD_EINVAL, "language must be auto or one of the codes %s", codes.data + 2);
    ad_buf_cleanup(&codes);
    return AD_EINVAL;
}

/* The language `auto` resolves to: the one the text is written in, judged
 * from a dataset's prompts and answers (not its JSON syntax). */
static analysis_language agents_detect_language(const char *text, const cJSON *dataset)
{
    if (!dataset) return analysis_detect(text, strlen(text));
    ad_buf b;
    ad_buf_init(&b);
    const cJSON *item;
    cJSON_ArrayForEach(item, dataset) {
        if (b.len >= 64 * 1024) break; /* as much as analysis_detect reads */
        const char *keys[] = {"prompt", "answer"};
        for (int k = 0; k < 2; k++) {
            const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, keys[k]));
            if (v) ad_buf_printf(&b, "%s\n", v);
        }
    }
    analysis_language l = analysis_detect(b.data ? b.data : "", b.len);
    ad_buf_cleanup(&b);
    return l;
}

/* The shared body of both create routes: `data_field` names the dataset
 * field ("dataset" or "json_dataset"). */
static void agents_create(ad_request *req, ad_response *res, const char *data_field)
{
    const cJSON *body = req->json;
    const ad_config *cfg = req->app->cfg;
    ad_err e = {0};
    const char *user_id, *text = NULL, *base_model = NULL, *description = NULL;
    if (!body) {
        ad_response_error(res, req, 400, "invalid_body", "request body must be a JSON object with user_id");
        return;
    }
    if (ad_json_string(body, "user_id", 1, 1024, &user_id, &e) < 0 ||
        agents_check_user_id(user_id, &e) < 0) {
        ad_response_error(res, req, 400, "invalid_user_id", "%s", e.msg);
        return;
    }
    if (!ad_principal_sees(req->who, user_id)) {
        ad_response_error(res, req, 403, "agent_not_permitted",
                          "this token may not create agent '%s': it is outside the token's agents", user_id);
        return;
    }
    const cJSON *dataset = cJSON_GetObjectItemCaseSensitive(body, data_field);
    if (cJSON_IsNull(dataset)) dataset = NULL;
    /* The advanced alias also takes the dataset files' own shape {training_data: [...]}. */
    if (dataset && cJSON_IsObject(dataset) && !strcmp(data_field, "json_dataset")) {
        if (!description)
            description = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(dataset, "description"));
        dataset = cJSON_GetObjectItemCaseSensitive(dataset, "training_data");
        if (!dataset) {
            ad_response_error(res, req, 400, "invalid_dataset",
                              "json_dataset must be an array, or an object with a training_data array");
            return;
        }
    }
    int has_text = cJSON_GetObjectItemCaseSensitive(body, "training_data") &&
                   !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(body, "training_data"));
    if (has_text && dataset) {
        ad_response_error(res, req, 400, "invalid_body",
                          "give either training_data or %s, not both", data_field);
        return;
    }
    if (!has_text && !dataset) {
        ad_response_error(res, req, 400, "invalid_body", "one of training_data or %s is required",
                          data_field);
        return;
    }
    if (has_text && (ad_json_string(body, "training_data", 1, (size_t)cfg->max_training_bytes, &text, &e) < 0 ||
                     agents_check_utf8("training_data", text, &e) < 0)) {
        ad_response_error(res, req, 400, "invalid_training_data", "%s", e.msg);
        return;
    }
    if ((ad_json_string(body, "base_model", 0, BASE_MODEL_MAX, &base_model, &e) == AD_EINVAL) ||
        (base_model && agents_check_utf8("base_model", base_model, &e) < 0)) {
        ad_response_error(res, req, 400, "invalid_base_model", "%s", e.msg);
        return;
    }
    const char *desc_field = NULL;
    if ((ad_json_string(body, "description", 0, DESCRIPTION_MAX, &desc_field, &e) == AD_EINVAL) ||
        (desc_field && agents_check_utf8("description", desc_field, &e) < 0)) {
        ad_response_error(res, req, 400, "invalid_description", "%s", e.msg);
        return;
    }
    if (desc_field) description = desc_field;
    const char *language_requested;
    if (agents_read_language(body, &language_requested, &e) < 0) {
        ad_response_error(res, req, 400, "invalid_language", "%s", e.msg);
        return;
    }
    size_t bad;
    if (description && (strlen(description) > DESCRIPTION_MAX ||
                        ad_utf8_validate(description, strlen(description), &bad) < 0))
        description = NULL; /* the dataset file's own description is optional extra */

    ad_buf material;
    ad_buf_init(&material);
    if (dataset && agents_check_dataset(dataset, data_field, (size_t)cfg->max_training_bytes * 2,
                                        &material, &e) < 0) {
        ad_response_error(res, req, 400, "invalid_dataset", "%s", e.msg);
        ad_buf_cleanup(&material);
        return;
    }
    storage_conn *db = agents_db(req, res);
    if (!db) {
        ad_buf_cleanup(&material);
        return;
    }
    analysis_language lang;
    if (strcmp(language_requested, "auto") != 0) analysis_language_from_code(language_requested, &lang);
    else lang = agents_detect_language(text, dataset);
    const char *language = analysis_language_code(lang);
    agent_new a = {
        .user_id = user_id,
        .source = dataset ? "dataset" : "text",
        .material = dataset ? material.data : text,
        .material_len = dataset ? material.len : strlen(text),
        .base_model = base_model,
        .description = description,
        .language = language,
        .language_requested = language_requested,
    };
    pipeline_plan_agent(&a);
    int64_t id;
    int rc = storage_agents_create(db, &a, &id, &e);
    ad_buf_cleanup(&material);
    if (rc == AD_EEXIST) {
        ad_response_error(res, req, 409, "agent_exists", "an agent with user_id '%s' already exists", user_id);
        return;
    }
    if (rc < 0) {
        agents_answer_storage(req, res, rc, NULL, &e);
        return;
    }
    if (req->app->pool) pipeline_pool_notify(req->app->pool);
    char location[128];
    snprintf(location, sizeof(location), "/api/v1/agents/%s", user_id);
    ad_response_header(res, "Location", location);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "message", "agent created; its training pipeline runs in the background");
    cJSON_AddStringToObject(out, "user_id", user_id);
    cJSON_AddStringToObject(out, "status", "created");
    if (base_model) cJSON_AddStringToObject(out, "base_model", base_model);
    cJSON_AddStringToObject(out, "language", language);
    /* The Flask alias's own fields, which its scripts read. */
    if (!strcmp(data_field, "json_dataset")) {
        cJSON_AddStringToObject(out, "training_type", dataset ? "json_dataset" : "text");
        cJSON_AddNumberToObject(out, "dataset_size", dataset ? cJSON_GetArraySize(dataset) : 0);
    }
    ad_json_add_time(out, "timestamp", ad_clock_now_ms());
    ad_response_json(res, 201, out);
}

void handle_agents_create(ad_request *req, ad_response *res)
{
    agents_create(req, res, "dataset");
}

void handle_agents_create_advanced(ad_request *req, ad_response *res)
{
    agents_create(req, res, "json_dataset");
}

static void agents_add_status_fields(cJSON *o, const agent_row *a)
{
    cJSON_AddStringToObject(o, "status", agent_state_to_string(a->status));
    ad_json_add_str(o, "stage", a->stage);
    cJSON_AddNumberToObject(o, "progress", a->progress);
    if (a->error) cJSON_AddStringToObject(o, "error", a->error);
    ad_json_add_time(o, "created_at", a->created_at);
    ad_json_add_time(o, "updated_at", a->updated_at);
}

/* The deployed version's quality as {score, label}, or null when nothing
 * measured is deployed. */
static void agents_add_quality(cJSON *o, const agent_row *a)
{
    if (!a->has_quality) {
        cJSON_AddNullToObject(o, "quality");
        return;
    }
    cJSON *q = cJSON_AddObjectToObject(o, "quality");
    cJSON_AddNumberToObject(q, "score", a->quality);
    cJSON_AddStringToObject(q, "label", metrics_quality_label(a->quality));
}

/* `ms` left in whole seconds, rounded up and never under 1: an estimate
 * shown while work goes on never says it is over. */
static int64_t agents_seconds_left(int64_t ms)
{
    return ms > 1000 ? (ms + 999) / 1000 : 1;
}

void handle_agent_status(ad_request *req, ad_response *res)
{
    ad_err e = {0};
    const char *id;
    storage_conn *db = agents_path_db(req, res, &id);
    if (!db) return;
    agent_status a;
    int rc = storage_agents_status(db, id, &a, &e);
    if (rc < 0) {
        agents_answer_storage(req, res, rc, id, &e);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "user_id", a.user_id);
    cJSON_AddStringToObject(o, "status", agent_state_to_string(a.status));
    ad_json_add_str(o, "stage", a.stage);
    ad_json_add_int(o, "progress", a.progress);
    if (a.error[0]) cJSON_AddStringToObject(o, "error", a.error);
    ad_json_add_time(o, "created_at", a.created_at);
    ad_json_add_time(o, "updated_at", a.updated_at);
    int64_t now = ad_clock_now_ms();
    /* eta_at is written by the running job's units of work only. */
    if (a.eta_at && (a.status == AGENT_PROCESSING || a.status == AGENT_INITIALIZING))
        ad_json_add_int(o, "eta_s", agents_seconds_left(a.eta_at - now));
    /* A training run goes on beside the serving version: its progress is
     * shown here without changing the agent's status. A run that failed or
     * was cancelled stays shown, with its end, until the next one. */
    if (a.training_id) {
        cJSON *tr = cJSON_AddObjectToObject(o, "training");
        ad_json_add_int(tr, "training_id", a.training_id);
        cJSON_AddStringToObject(tr, "status", training_state_to_string(a.training_status));
        ad_json_add_int(tr, "iteration", a.training_done);
        ad_json_add_int(tr, "iterations", a.training_iterations);
        ad_json_add_int(tr, "progress",
                        a.training_iterations ? a.training_done * 100 / a.training_iterations : 0);
        int ended = a.training_status == TRAINING_FAILED || a.training_status == TRAINING_CANCELLED;
        if (a.training_status == TRAINING_FAILED)
            cJSON_AddStringToObject(tr, "error", a.training_error[0] ? a.training_error : "no reason recorded");
        if (ended) ad_json_add_time(tr, "finished_at", a.training_finished_at);
        /* The iterations done so far, at their mean pace, tell the rest. */
        if (a.training_status == TRAINING_RUNNING && a.training_done > 0 && a.training_started_at &&
            a.training_iterations > a.training_done) {
            int64_t per = (now - a.training_started_at) / a.training_done;
            ad_json_add_int(tr, "eta_s", agents_seconds_left(per * (a.training_iterations - a.training_done)));
        }
    }
    ad_json_add_time(o, "timestamp", now);
    ad_response_json(res, 200, o);
}

typedef struct list_ctx {
    cJSON *users;
    char last[AGENT_USER_ID_MAX + 1];
    int count;
} list_ctx;

static void agents_list_visit(void *ud, const agent_row *a)
{
    list_ctx *l = ud;
    cJSON *o = cJSON_CreateObject();
    agents_add_status_fields(o, a);
    ad_json_add_str(o, "base_model", a->base_model);
    cJSON_AddStringToObject(o, "source", a->source);
    cJSON_AddStringToObject(o, "language", a->language);
    agents_add_quality(o, a);
    cJSON_AddItemToObject(l->users, a->user_id, o);
    snprintf(l->last, sizeof(l->last), "%s", a->user_id);
    l->count++;
}

void handle_agents_list(ad_request *req, ad_response *res)
{
    ad_err e = {0};
    const char *status = ad_request_query(req, "status");
    const char *cursor = ad_request_query(req, "cursor");
    const char *limit_s = ad_request_query(req, "limit");
    long limit = LIST_DEFAULT_LIMIT;
    agent_state wanted;
    if (status && agent_state_from_string(status, &wanted, NULL) < 0) {
        ad_response_error(res, req, 400, "invalid_status",
                          "status must be one of initializing, processing, ready, error");
        return;
    }
    if (limit_s) {
        char *end;
        limit = strtol(limit_s, &end, 10);
        if (!*limit_s || *end || limit < 1 || limit > LIST_MAX_LIMIT) {
            ad_response_error(res, req, 400, "invalid_limit", "limit must be an integer from 1 to %d",
                              LIST_MAX_LIMIT);
            return;
        }
    }
    if (cursor && *cursor == '\0') cursor = NULL;
    /* next_cursor is always a user_id: anything else was never issued. */
    if (cursor && agents_check_user_id(cursor, NULL) < 0) {
        ad_response_error(res, req, 400, "invalid_cursor", "cursor is not one this server returned");
        return;
    }
    storage_conn *db = agents_db(req, res);
    if (!db) return;
    list_ctx l = {.users = cJSON_CreateObject()};
    int more = 0;
    int64_t total = 0;
    /* A token bound to agents lists (and counts) those only. */
    char *only = auth_agents_json(req->who);
    int rc = storage_agents_list(db, status ? &wanted : NULL, only, cursor, (int)limit, agents_list_visit, &l,
                                 &more, &total, &e);
    free(only);
    if (rc < 0) {
        cJSON_Delete(l.users);
        agents_answer_storage(req, res, rc, NULL, &e);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "users", l.users);
    cJSON_AddNumberToObject(o, "total_users", (double)total);
    cJSON_AddNumberToObject(o, "count", l.count);
    if (more) cJSON_AddStringToObject(o, "next_cursor", l.last);
    else cJSON_AddNullToObject(o, "next_cursor");
    ad_json_add_time(o, "timestamp", ad_clock_now_ms());
    ad_response_json(res, 200, o);
}

void handle_agent_get(ad_request *req, ad_response *res)
{
    /* The record shows running inference totals: let it see every call
     * that completed before this request. */
    storage_inferences_flush();
    agent_row a;
    if (agents_lookup(req, res, &a) < 0) return;
    storage_conn *db = storage_conn_get();
    ad_err e = {0};
    version_row v;
    int vrc = a.deployed_version_id ? storage_versions_get(db, a.deployed_version_id, &v, &e)
                                    : AD_ENOTFOUND;
    exec_row rows[PIPELINE_STAGES];
    int n = 0;
    int xrc = vrc == 0 || vrc == AD_ENOTFOUND ? storage_exec_list(db, a.id, rows, PIPELINE_STAGES, &n, &e) : 0;
    /* A version that vanished went with its agent (a delete that won the
     * race) and shows as no model; any other failure is the database's and
     * is answered as such rather than shown as "no model". */
    int failed = vrc < 0 && vrc != AD_ENOTFOUND ? vrc : xrc;
    if (failed < 0) {
        if (vrc == 0) version_row_cleanup(&v);
        agents_answer_storage(req, res, failed, a.user_id, &e);
        agent_row_cleanup(&a);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "user_id", a.user_id);
    agents_add_status_fields(o, &a);
    ad_json_add_str(o, "base_model", a.base_model);
    ad_json_add_str(o, "description", a.description);
    cJSON_AddStringToObject(o, "source", a.source);
    cJSON_AddStringToObject(o, "language", a.language);
    ad_json_add_str(o, "language_requested", a.language_requested[0] ? a.language_requested : NULL);
    ad_json_add_raw(o, "statistics", a.statistics);
    agents_add_quality(o, &a);

    if (vrc == 0) {
        cJSON *m = cJSON_AddObjectToObject(o, "model");
        cJSON_AddStringToObject(m, "name", v.name);
        cJSON_AddNumberToObject(m, "passages", (double)v.passages);
        ad_json_add_time(m, "created_at", v.created_at);
        ad_json_add_time(m, "deployed_at", v.deployed_at);
        ad_json_add_raw(m, "params", v.params);
        ad_json_add_raw(m, "metrics", v.metrics);
        if (v.note) cJSON_AddStringToObject(m, "note", v.note);
        version_row_cleanup(&v);
    } else {
        cJSON_AddNullToObject(o, "model");
    }
    cJSON *timings = cJSON_AddObjectToObject(o, "timings");
    for (int i = 0; i < n; i++) {
        if (rows[i].finished_at) cJSON_AddNumberToObject(timings, rows[i].name, (double)rows[i].duration_ms);
        else cJSON_AddNullToObject(timings, rows[i].name);
        exec_row_cleanup(&rows[i]);
    }
    cJSON *inf = cJSON_AddObjectToObject(o, "inference");
    cJSON_AddNumberToObject(inf, "count", (double)a.inference_count);
    cJSON_AddNumberToObject(inf, "errors", (double)a.inference_errors);
    cJSON_AddNumberToObject(inf, "prompt_tokens", (double)a.prompt_tokens);
    cJSON_AddNumberToObject(inf, "output_tokens", (double)a.output_tokens);
    ad_json_add_time(o, "timestamp", ad_clock_now_ms());
    agent_row_cleanup(&a);
    ad_response_json(res, 200, o);
}

/* One line about a stage's stored output, for the pipeline view. */
static char *agents_stage_summary(const exec_row *r)
{
    cJSON *out = r->output ? cJSON_Parse(r->output) : NULL;
    ad_buf b;
    ad_buf_init(&b);
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(out, "error");
    if (cJSON_IsString(err)) {
        ad_buf_printf(&b, "failed: %s", err->valuestring);
    } else if (out) {
        switch (r->task_index) {
        case 0:
            ad_buf_printf(&b, "%d units, %d duplicates removed",
                          (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(out, "units")),
                          (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(out, "duplicates_removed")));
            break;
        case 1:
            ad_buf_printf(&b, "version %s with %d passages",
                          cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(out, "name")),
                          (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(out, "passages")));
            break;
        case 2: {
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(out, "metrics");
            ad_buf_printf(&b, "quality %.3f (%s), hit@1 %.3f, MRR %.3f",
                          cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(m, "quality_score")),
                          cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "quality_label")),
                          cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(m, "hit_at_1")),
                          cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(m, "mrr")));
            break;
        }
        default: {
            const char *reason = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(out, "reason"));
            ad_buf_puts(&b, reason ? reason : "");
        }
        }
    }
    cJSON_Delete(out);
    return b.len ? ad_buf_steal(&b, NULL) : (ad_buf_cleanup(&b), NULL);
}

static void agents_add_exec_common(cJSON *s, const exec_row *r)
{
    cJSON_AddNumberToObject(s, "task_index", r->task_index);
    cJSON_AddStringToObject(s, "name", r->name);
    cJSON_AddStringToObject(s, "status", exec_status_to_string(r->status));
    ad_json_add_time(s, "started_at", r->started_at);
    ad_json_add_time(s, "finished_at", r->finished_at);
    if (r->finished_at) cJSON_AddNumberToObject(s, "duration_ms", (double)r->duration_ms);
    else cJSON_AddNullToObject(s, "duration_ms");
}

/* Shared by the pipeline and executions views: reads the log or answers an error. */
static int agents_read_log(ad_request *req, ad_response *res, agent_row *a, exec_row *rows, int *n)
{
    ad_err e = {0};
    if (agents_lookup_snapshot(req, res, a) < 0) return -1;
    storage_conn *db = storage_conn_get();
    int rc = storage_exec_list(db, a->id, rows, PIPELINE_STAGES, n, &e);
    storage_snapshot_end(db);
    if (rc < 0) {
        agents_answer_storage(req, res, rc, a->user_id, &e);
        agent_row_cleanup(a);
        return -1;
    }
    return 0;
}

void handle_agent_pipeline(ad_request *req, ad_response *res)
{
    agent_row a;
    exec_row rows[PIPELINE_STAGES];
    int n;
    if (agents_read_log(req, res, &a, rows, &n) < 0) return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "user_id", a.user_id);
    cJSON_AddStringToObject(o, "status", agent_state_to_string(a.status));
    cJSON_AddNumberToObject(o, "progress", a.progress);
    cJSON *stages = cJSON_AddArrayToObject(o, "stages");
    for (int i = 0; i < n; i++) {
        cJSON *s = cJSON_CreateObject();
        agents_add_exec_common(s, &rows[i]);
        char *summary = agents_stage_summary(&rows[i]);
        ad_json_add_str(s, "summary", summary);
        free(summary);
        cJSON_AddItemToArray(stages, s);
        exec_row_cleanup(&rows[i]);
    }
    ad_json_add_time(o, "timestamp", ad_clock_now_ms());
    agent_row_cleanup(&a);
    ad_response_json(res, 200, o);
}

void handle_agent_executions(ad_request *req, ad_response *res)
{
    agent_row a;
    exec_row rows[PIPELINE_STAGES];
    int n;
    if (agents_read_log(req, res, &a, rows, &n) < 0) return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "user_id", a.user_id);
    cJSON *list = cJSON_AddArrayToObject(o, "executions");
    for (int i = 0; i < n; i++) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "task_id", rows[i].task_id);
        agents_add_exec_common(s, &rows[i]);
        cJSON_AddStringToObject(s, "expected_output", rows[i].expected_output ? rows[i].expected_output : "");
        ad_json_add_raw(s, "inputs", rows[i].inputs);
        ad_json_add_raw(s, "output", rows[i].output);
        ad_json_add_time(s, "timestamp", rows[i].timestamp);
        cJSON_AddBoolToObject(s, "was_replayed", rows[i].was_replayed);
        cJSON_AddItemToArray(list, s);
        exec_row_cleanup(&rows[i]);
    }
    cJSON_AddNumberToObject(o, "count", n);
    ad_json_add_time(o, "timestamp", ad_clock_now_ms());
    agent_row_cleanup(&a);
    ad_response_json(res, 200, o);
}

void handle_agent_delete(ad_request *req, ad_response *res)
{
    ad_err e = {0};
    const char *id;
    storage_conn *db = agents_path_db(req, res, &id);
    if (!db) return;
    int64_t agent_id;
    char who[48];
    audit_entry audit;
    auth_audit_entry(req, "agent.deleted", id, NULL, who, sizeof(who), &audit);
    int rc = storage_agents_delete(db, id, &audit, &agent_id, &e);
    if (rc < 0) {
        agents_answer_storage(req, res, rc, id, &e);
        return;
    }
    if (req->app->pool) pipeline_pool_cancel_agent(req->app->pool, agent_id);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "message", "agent deleted with everything stored for it");
    cJSON_AddStringToObject(o, "user_id", id);
    cJSON_AddBoolToObject(o, "deleted", 1);
    ad_json_add_time(o, "timestamp", ad_clock_now_ms());
    ad_response_json(res, 200, o);
}

void agents_cancel_jobs(void *app, int64_t agent_id)
{
    const ad_app *a = app;
    if (a->pool) pipeline_pool_cancel_agent(a->pool, agent_id);
}

/* What DELETE /agents/all learns of each agent it deleted. */
typedef struct agents_deleted {
    const ad_app *app;
    cJSON *user_ids;
} agents_deleted;

/* Stops the deleted agent's running jobs and names it in the answer. */
static void agents_deleted_one(void *ud, int64_t agent_id, const char *user_id)
{
    agents_deleted *d = ud;
    if (d->app->pool) pipeline_pool_cancel_agent(d->app->pool, agent_id);
    cJSON_AddItemToArray(d->user_ids, cJSON_CreateString(user_id));
}

void handle_agents_delete_all(ad_request *req, ad_response *res)
{
    ad_err e = {0};
    storage_conn *db = agents_db(req, res);
    if (!db) return;
    int64_t count = 0;
    char who[48];
    audit_entry audit;
    auth_audit_entry(req, "agents.deleted_all", NULL, NULL, who, sizeof(who), &audit);
    /* The pool is thread-safe; the app struct is only read. */
    agents_deleted deleted = {req->app, cJSON_CreateArray()};
    int rc = storage_agents_delete_all(db, &audit, &count, agents_deleted_one, &deleted, &e);
    if (rc < 0) {
        cJSON_Delete(deleted.user_ids);
        agents_answer_storage(req, res, rc, NULL, &e);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "message", "all agents deleted");
    cJSON_AddNumberToObject(o, "deleted", (double)count);
    /* The Flask original's shape, read by its page (frontend.html reads
     * removed_users.length and failed_users): how many agents there were,
     * which were removed, and none that failed (one unit of work). */
    cJSON *result = cJSON_AddObjectToObject(o, "result");
    cJSON_AddNumberToObject(result, "removed", (double)count);
    cJSON_AddNumberToObject(result, "total_users", (double)count);
    cJSON_AddItemToObject(result, "removed_users", deleted.user_ids);
    cJSON_AddArrayToObject(result, "failed_users");
    ad_json_add_time(o, "timestamp", ad_clock_now_ms());
    ad_response_json(res, 200, o);
}
