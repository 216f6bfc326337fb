#include "handlers/training.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "base/clock.h"
#include "base/json.h"
#include "handlers/agents.h"
#include "model/text.h"
#include "pipeline/plan.h"
#include "pipeline/pool.h"
#include "storage/db.h"
#include "storage/trainings.h"
#include "storage/versions.h"

#define TRAIN_MAX_ITERATIONS 1000
#define FEEDBACK_PAGE_DEFAULT 50
#define FEEDBACK_PAGE_MAX 500

int training_check_version_name(const char *name, ad_err *e)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64) return ad_err_set(e, AD_EINVAL, "name must be 1 to 64 characters");
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return ad_err_set(e, AD_EINVAL, "name may contain only letters, digits, '_', '.' and '-'");
    }
    return 0;
}

void handle_agent_train(ad_request *req, ad_response *res)
{
    ad_err e = {0};
    agent_row a;
    if (agents_lookup_snapshot(req, res, &a) < 0) return;
    long long iterations = 0;
    const char *name = NULL;
    char default_name[65];
    storage_conn *db = storage_conn_get();
    if (!req->json) {
        ad_response_error(res, req, 400, "invalid_body", "request body must be a JSON object with iterations");
        goto out;
    }
    if (ad_json_int(req->json, "iterations", 1, 1, TRAIN_MAX_ITERATIONS, &iterations, &e) < 0) {
        ad_response_error(res, req, 400, "invalid_iterations",
                          "iterations must be a positive integer between 1 and %d", TRAIN_MAX_ITERATIONS);
        goto out;
    }
    int rc = ad_json_string(req->json, "name", 0, 256, &name, &e);
    if (rc == AD_EINVAL || (name && training_check_version_name(name, &e) < 0)) {
        ad_response_error(res, req, 400, "invalid_name", "%s", e.msg);
        goto out;
    }
    /* Group runs name their versions group-<group id>; a run named so by
     * hand could take a future group's name. */
    if (name && !strncmp(name, "group-", 6)) {
        ad_response_error(res, req, 400, "invalid_name",
                          "name: names beginning with 'group-' are reserved for group training runs");
        goto out;
    }
    if (!a.deployed_version_id) {
        ad_response_error(res, req, 409, "agent_not_ready",
                          "agent '%s' has no trained model yet (status: %s)", a.user_id, agent_state_to_string(a.status));
        goto out;
    }
    if (!name) {
        rc = storage_versions_next_name(db, a.id, default_name, sizeof(default_name), &e);
        if (rc < 0) {
            agents_answer_storage(req, res, rc, a.user_id, &e);
            goto out;
        }
        name = default_name;
    }
    /* The run is queued in a transaction of its own, which finds out if the
     * agent is gone. */
    storage_snapshot_end(db);
    int64_t tid = 0;
    rc = storage_trainings_create(db, a.id, name, (int)iterations, PIPELINE_JOB_TRAIN, &tid, &e);
    if (rc == AD_ECONFLICT) {
        ad_response_error(res, req, 409, "training_in_progress", "%s", e.msg);
        goto out;
    }
    if (rc == AD_EEXIST) {
        ad_response_error(res, req, 409, "version_exists", "%s", e.msg);
        goto out;
    }
    if (rc < 0) {
        agents_answer_storage(req, res, rc, a.user_id, &e);
        goto out;
    }
    if (req->app->pool) pipeline_pool_notify(req->app->pool);
    char location[160];
    snprintf(location, sizeof(location), "/api/v1/agents/%s/training?training_id=%lld", a.user_id,
             (long long)tid);
    ad_response_header(res, "Location", location);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "training_id", (double)tid);
    cJSON_AddStringToObject(o, "user_id", a.user_id);
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddNumberToObject(o, "iterations", (double)iterations);
    cJSON_AddStringToObject(o, "status", training_state_to_string(TRAINING_QUEUED));
    ad_json_add_time(o, "timestamp", ad_clock_now_ms());
    ad_response_json(res, 202, o);
out:
    storage_snapshot_end(db);
    agent_row_cleanup(&a);
}

static void training_iteration_visit(void *ud, int iteration, const char *params,
                                     const char *metrics, int64_t duration_ms)
{
    cJSON *o = cJSON_CreateObject();
    ad_json_add_raw(o, "params", params);
    ad_json_add_raw(o, "metrics", metrics);
    cJSON_AddNumberToObject(o, "duration_ms", (double)duration_ms);
    char key[16];
    snprintf(key, sizeof(key), "%d", iteration);
    cJSON_AddItemToObject(ud, key, o);
}

void handle_agent_training(ad_request *req, ad_response *res)
{
    ad_err e = {0};
    agent_row a;
    if (agents_lookup_snapshot(req, res, &a) < 0) return;
    storage_conn *db = storage_conn_get();
    const char *tid_s = ad_request_query(req, "training_id");
    long long tid = 0;
    if (tid_s) {
        char *end;
        tid = strtoll(tid_s, &end, 10);
        if (!*tid_s || *end || tid < 1) {
            storage_snapshot_end(db);
            ad_response_error(res, req, 400, "invalid_training_id", "training_id must be a positive integer");
            agent_row_cleanup(&a);
            return;
        }
    }
    training_row t;
    int rc = storage_trainings_get(db, a.id, tid, &t, &e);
    if (rc < 0) storage_snapshot_end(db);
    if (rc == AD_ENOTFOUND) {
        ad_response_error(res, req, 404, "training_not_found", "agent '%s' has no training run%s",
                          a.user_id, tid ? " with that training_id" : "");
        agent_row_cleanup(&a);
        return;
    }
    if (rc < 0) {
        agents_answer_storage(req, res, rc, a.user_id, &e);
        agent_row_cleanup(&a);
        return;
    }
    /* Seed 001's training data, agent -> iteration -> data, under a fixed
     * key: a user id as a top-level key could collide with the others. */
    cJSON *o = cJSON_CreateObject();
    cJSON *iters = cJSON_AddObjectToObject(cJSON_AddObjectToObject(o, "training_data"), a.user_id);
    rc = storage_trainings_iterations(db, t.id, training_iteration_visit, iters, &e);
    storage_snapshot_end(db);
    if (rc < 0) {
        cJSON_Delete(o);
        agents_answer_storage(req, res, rc, a.user_id, &e);
        training_row_cleanup(&t);
        agent_row_cleanup(&a);
        return;
    }
    cJSON *tr = cJSON_AddObjectToObject(o, "training");
    cJSON_AddNumberToObject(tr, "training_id", (double)t.id);
    cJSON_AddStringToObject(tr, "name", t.name);
    cJSON_AddStringToObject(tr, "status", training_state_to_string(t.status));
    cJSON_AddNumberToObject(tr, "iterations", t.iterations);
    cJSON_AddNumberToObject(tr, "done_iterations", t.done_iterations);
    if (t.best_iteration) cJSON_AddNumberToObject(tr, "best_iteration", t.best_iteration);
    else cJSON_AddNullToObject(tr, "best_iteration");
    if (t.error) cJSON_AddStringToObject(tr, "error", t.error);
    ad_json_add_time(tr, "created_at", t.created_at);
    ad_json_add_time(tr, "started_at", t.started_at);
    ad_json_add_time(tr, "finished_at", t.finished_at);
    ad_json_add_raw(o, "trained_data", t.trained_data);
    ad_json_add_time(o, "timestamp", ad_clock_now_ms());
    training_row_cleanup(&t);
    agent_row_cleanup(&a);
    ad_response_json(res, 200, o);
}

void handle_agent_feedback_add(ad_request *req, ad_response *res)
{
    ad_err e = {0};
    agent_row a;
    if (agents_lookup(req, res, &a) < 0) return;
    size_t max = (size_t)req->app->cfg->max_prompt_bytes;
    const char *fields[3] = {"prompt", "response", "feedback"}, *vals[3] = {0};
    long long rating = 0;
    int rc = req->json ? 0 : ad_err_set(&e, AD_EINVAL, "request body must be a JSON object");
    for (int i = 0; i < 3 && rc == 0; i++) {
        size_t bad;
        rc = ad_json_string(req->json, fields[i], 1, max, &vals[i], &e);
        if (rc == 0 && ad_utf8_validate(vals[i], strlen(vals[i]), &bad) < 0)
            rc = ad_err_set(&e, AD_EINVAL, "%s is not valid UTF-8 (at byte %zu)", fields[i], bad);
    }
    if (rc == 0 && (rc = ad_json_int(req->json, "rating", 0, 1, 5, &rating, &e)) == AD_ENOTFOUND) rc = 0;
    if (rc < 0) {
        ad_response_error(res, req, 400, "invalid_feedback", "%s", e.msg);
        agent_row_cleanup(&a);
        return;
    }
    int64_t id = 0;
    /* An agent deleted since the lookup fails the insert's foreign key:
     * AD_ENOTFOUND, answered 404 as a moment later. */
    rc = storage_feedback_add(storage_conn_get(), a.id, vals[0], vals[1], vals[2], (int)rating, &id, &e);
    if (rc < 0) {
        agents_answer_storage(req, res, rc, a.user_id, &e);
        agent_row_cleanup(&a);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)id);
    cJSON_AddStringToObject(o, "user_id", a.user_id);
    cJSON_AddStringToObject(o, "message", "feedback stored; the next training run will use it");
    ad_json_add_time(o, "created_at", ad_clock_now_ms());
    agent_row_cleanup(&a);
    ad_response_json(res, 201, o);
}

typedef struct feedback_page {
    cJSON *items;
    int64_t last_id;
    int count;
} feedback_page;

static void feedback_visit(void *ud, const feedback_row *f)
{
    feedback_page *p = ud;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)f->id);
    cJSON_AddStringToObject(o, "prompt", f->prompt);
    cJSON_AddStringToObject(o, "response", f->response);
    cJSON_AddStringToObject(o, "feedback", f->feedback);
    if (f->rating) cJSON_AddNumberToObject(o, "rating", f->rating);
    else cJSON_AddNullToObject(o, "rating");
    ad_json_add_time(o, "created_at", f->created_at);
    cJSON_AddItemToArray(p->items, o);
    p->last_id = f->id;
    p->count++;
}

static void feedback_cursor_visit(void *ud, const feedback_row *f)
{
    *(int64_t *)ud = f->id;
}

/* A cursor is the id of the last row of a page: one this server issued names
 * a stored feedback row of this agent (the newest row with id <= cursor is
 * the cursor itself). On a storage failure it says yes, and the listing
 * that follows reports the failure. */
static int feedback_cursor_issued(int64_t agent_id, long long cursor)
{
    int64_t found = 0;
    if (cursor == LLONG_MAX) return 0;
    if (storage_feedback_each(storage_conn_get(), agent_id, cursor + 1, 1, feedback_cursor_visit, &found, NULL) < 0)
        return 1;
    return found == cursor;
}

void handle_agent_feedback_list(ad_request *req, ad_response *res)
{
    ad_err e = {0};
    agent_row a;
    if (agents_lookup(req, res, &a) < 0) return;
    long limit = FEEDBACK_PAGE_DEFAULT;
    long long cursor = 0;
    const char *ls = ad_request_query(req, "limit"), *cs = ad_request_query(req, "cursor");
    char *end;
    if (ls && ((limit = strtol(ls, &end, 10)) < 1 || limit > FEEDBACK_PAGE_MAX || !*ls || *end)) {
        ad_response_error(res, req, 400, "invalid_limit", "limit must be an integer from 1 to %d", FEEDBACK_PAGE_MAX);
        agent_row_cleanup(&a);
        return;
    }
    if (cs && *cs && ((cursor = strtoll(cs, &end, 10)) < 1 || *end || !feedback_cursor_issued(a.id, cursor))) {
        ad_response_error(res, req, 400, "invalid_cursor", "cursor is not one this server returned");
        agent_row_cleanup(&a);
        return;
    }
    feedback_page p = {.items = cJSON_CreateArray()};
    /* One extra row says whether another page exists. */
    int rc = storage_feedback_each(storage_conn_get(), a.id, cursor, (int)limit + 1, feedback_visit, &p, &e);
    if (rc < 0) {
        cJSON_Delete(p.items);
        agents_answer_storage(req, res, rc, a.user_id, &e);
        agent_row_cleanup(&a);
        return;
    }
    int more = p.count > limit;
    if (more) {
        cJSON_DeleteItemFromArray(p.items, (int)limit);
        p.last_id = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetArrayItem(p.items, (int)limit - 1), "id"));
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "user_id", a.user_id);
    cJSON_AddItemToObject(o, "feedback", p.items);
    cJSON_AddNumberToObject(o, "count", more ? (double)limit : p.count);
    if (more) {
        char c[24];
        snprintf(c, sizeof(c), "%lld", (long long)p.last_id);
        cJSON_AddStringToObject(o, "next_cursor", c);
    } else {
        cJSON_AddNullToObject(o, "next_cursor");
    }
    ad_json_add_time(o, "timestamp", ad_clock_now_ms());
    agent_row_cleanup(&a);
    ad_response_json(res, 200, o);
}
