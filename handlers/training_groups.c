#include "handlers/training_groups.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/json.h"
#include "base/log.h"
#include "base/mem.h"
#include "handlers/agents.h"
#include "handlers/auth.h"
#include "pipeline/plan.h"
#include "pipeline/pool.h"
#include "storage/db.h"
#include "storage/trainings.h"

#define GROUP_MAX_AGENTS 1000
#define GROUP_MAX_CYCLES 1000
#define GROUP_DEFAULT_CYCLES 5
/* Ids named in one error message; a longer list ends with "and N more". */
#define GROUP_NAMES_SHOWN 20
#define METRICS_DEFAULT_LIMIT 100
#define METRICS_MAX_LIMIT 500

/* A quality score (0-1) as the original's accuracy: a percentage, 2 decimals. */
static double groups_percent(double quality)
{
    return round(quality * 10000.0) / 100.0;
}

/* Validates user_ids: a non-empty array of distinct valid user ids. Fills
 * `ids` (borrowed from the body) and returns their count, or AD_EINVAL with
 * `e` naming the field and index. */
static int groups_read_ids(const cJSON *body, const char **ids, ad_err *e)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(body, "user_ids");
    if (!cJSON_IsArray(list))
        return ad_err_set(e, AD_EINVAL, "user_ids must be an array of user ids");
    int n = cJSON_GetArraySize(list);
    if (n == 0) return ad_err_set(e, AD_EINVAL, "user_ids must not be empty");
    if (n > GROUP_MAX_AGENTS)
        return ad_err_set(e, AD_EINVAL, "user_ids has %d entries, more than the limit of %d", n,
                          GROUP_MAX_AGENTS);
    int i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, list) {
        ad_err why = {0};
        if (!cJSON_IsString(item))
            return ad_err_set(e, AD_EINVAL, "user_ids[%d] must be a string", i);
        if (agents_check_user_id(item->valuestring, &why) < 0)
            return ad_err_set(e, AD_EINVAL, "user_ids[%d]: %s", i, why.msg);
        for (int j = 0; j < i; j++)
            if (!strcmp(ids[j], item->valuestring))
                return ad_err_set(e, AD_EINVAL, "user_ids[%d] repeats '%s' (user_ids[%d])", i,
                                  item->valuestring, j);
        ids[i++] = item->valuestring;
    }
    return n;
}

/* "a, b, c" for the ids whose refusal is one of `kinds` (a mask of 1 << group_refusal). */
static int groups_names(ad_buf *b, const char *const *ids, const group_refusal *why, int n,
                        unsigned kinds)
{
    int count = 0;
    for (int i = 0; i < n; i++) {
        if (!(kinds & (1u << why[i]))) continue;
        if (count < GROUP_NAMES_SHOWN) ad_buf_printf(b, "%s'%s'", count ? ", " : "", ids[i]);
        count++;
    }
    if (count > GROUP_NAMES_SHOWN) ad_buf_printf(b, " and %d more", count - GROUP_NAMES_SHOWN);
    return count;
}

/* Answers a group that could not start; nothing was written. */
static void groups_refused(ad_request *req, ad_response *res, int rc, const char *const *ids,
                           const group_refusal *why, int n, const ad_err *e)
{
    ad_buf a, b;
    ad_buf_init(&a);
    ad_buf_init(&b);
    if (rc == AD_ENOTFOUND) {
        groups_names(&a, ids, why, n, 1u << GROUP_UNKNOWN);
        ad_response_error(res, req, 404, "agent_not_found", "no agent with user_id %s", a.data);
    } else if (rc == AD_ESTATE) {
        int not_ready = groups_names(&a, ids, why, n, 1u << GROUP_NOT_READY);
        int busy = groups_names(&b, ids, why, n, 1u << GROUP_BUSY);
        ad_buf msg;
        ad_buf_init(&msg);
        if (not_ready) ad_buf_printf(&msg, "not ready (no trained model yet): %s", a.data);
        if (busy)
            ad_buf_printf(&msg, "%salready training or running another job: %s", not_ready ? "; " : "",
                          b.data);
        ad_response_error(res, req, 409, not_ready ? "agent_not_ready" : "training_in_progress",
                          "no training started; agents %s", msg.data);
        ad_buf_cleanup(&msg);
    } else if (rc == AD_EEXIST) {
        groups_names(&a, ids, why, n, 1u << GROUP_NAME_TAKEN);
        ad_response_error(res, req, 409, "version_exists", "no training started; %s for %s", e->msg,
                          a.data);
    } else {
        agents_answer_storage(req, res, rc, NULL, e);
    }
    ad_buf_cleanup(&a);
    ad_buf_cleanup(&b);
}

void handle_training_start_group(ad_request *req, ad_response *res)
{
    ad_err e = {0};
    if (!req->json) {
        ad_response_error(res, req, 400, "invalid_body",
                          "request body must be a JSON object with user_ids");
        return;
    }
    long long cycles = GROUP_DEFAULT_CYCLES;
    int rc = ad_json_int(req->json, "training_cycles", 0, 1, GROUP_MAX_CYCLES, &cycles, &e);
    if (rc == AD_ENOTFOUND) {
        cycles = GROUP_DEFAULT_CYCLES;
    } else if (rc < 0) {
        ad_response_error(res, req, 400, "invalid_training_cycles",
                          "training_cycles must be an integer from 1 to %d", GROUP_MAX_CYCLES);
        return;
    }
    const char **ids = ad_calloc(GROUP_MAX_AGENTS, sizeof(*ids));
    group_refusal *why = NULL;
    int n = groups_read_ids(req->json, ids, &e);
    if (n < 0) {
        ad_response_error(res, req, 400, "invalid_user_ids", "%s", e.msg);
        goto out;
    }
    why = ad_calloc((size_t)n, sizeof(*why));
    /* Another token's agents are unknown to this one: the same 404 as an
     * agent that does not exist, and nothing starts. */
    int hidden = 0;
    for (int i = 0; i < n; i++)
        if (!ad_principal_sees(req->who, ids[i])) why[i] = GROUP_UNKNOWN, hidden = 1;
    if (hidden) {
        groups_refused(req, res, AD_ENOTFOUND, ids, why, n, &e);
        goto out;
    }
    storage_conn *db = agents_db(req, res);
    if (!db) goto out;
    int64_t gid = 0;
    rc = storage_groups_start(db, ids, (size_t)n, (int)cycles, PIPELINE_JOB_TRAIN, &gid, why, &e);
    if (rc < 0) {
        groups_refused(req, res, rc, ids, why, n, &e);
        goto out;
    }
    if (req->app->pool) {
        int workers, busy;
        pipeline_pool_stats(req->app->pool, &workers, &busy);
        for (int i = 0; i < n && i < workers; i++) pipeline_pool_notify(req->app->pool);
    }
    char version[32];
    storage_groups_version_name(gid, version, sizeof(version));
    ad_response_header(res, "Location", "/api/v1/training/status");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "message", "training started: one run per agent, as one group");
    cJSON *list = cJSON_AddArrayToObject(o, "user_ids");
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(list, cJSON_CreateString(ids[i]));
    ad_json_add_int(o, "training_cycles", cycles);
    cJSON_AddStringToObject(o, "status", "started");
    ad_json_add_int(o, "group_id", gid);
    cJSON_AddStringToObject(o, "version_name", version);
    ad_json_add_time(o, "timestamp", ad_clock_now_ms());
    ad_response_json(res, 202, o);
out:
    free(why);
    free(ids);
}

/* What the status and the stop report about a group, built from its runs
 * (those of the agents the caller sees: a bound token learns nothing of
 * another's agents). */
typedef struct group_view {
    const ad_principal *who;
    cJSON *current;           /* {user_id: percent} */
    cJSON *final;             /* {user_id: percent} for runs that ended done */
    int runs, active, failed, cancelled;
    int cycle_count;          /* iterations every run has completed: the minimum */
    long long iterations_done; /* iterations completed by all runs together */
    double best;              /* best quality reached, -1 when none */
    char best_user[AGENT_USER_ID_MAX + 1];
    int64_t last_finished;
} group_view;

static void group_view_visit(void *ud, const group_run *r)
{
    group_view *v = ud;
    if (!ad_principal_sees(v->who, r->user_id)) return;
    /* Before its first iteration a run stands at the serving version's quality. */
    double q = r->best_quality >= 0 ? r->best_quality : r->deployed_quality;
    if (q >= 0) cJSON_AddNumberToObject(v->current, r->user_id, groups_percent(q));
    else cJSON_AddNullToObject(v->current, r->user_id);
    if (r->version_quality >= 0)
        cJSON_AddNumberToObject(v->final, r->user_id, groups_percent(r->version_quality));
    if (q > v->best) {
        v->best = q;
        snprintf(v->best_user, sizeof(v->best_user), "%s", r->user_id);
    }
    if (!v->runs || r->done_iterations < v->cycle_count) v->cycle_count = r->done_iterations;
    v->iterations_done += r->done_iterations;
    v->active |= r->status == TRAINING_QUEUED || r->status == TRAINING_RUNNING;
    v->failed += r->status == TRAINING_FAILED;
    v->cancelled += r->status == TRAINING_CANCELLED;
    if (r->finished_at > v->last_finished) v->last_finished = r->finished_at;
    v->runs++;
}

static int group_view_read(storage_conn *db, const ad_principal *who, int64_t group_id, group_view *v,
                           ad_err *e)
{
    memset(v, 0, sizeof(*v));
    v->who = who;
    v->best = -1;
    v->current = cJSON_CreateObject();
    v->final = cJSON_CreateObject();
    int rc = storage_groups_runs(db, group_id, group_view_visit, v, e);
    if (rc < 0) {
        cJSON_Delete(v->current);
        cJSON_Delete(v->final);
    }
    return rc;
}

static void group_view_add_best(cJSON *o, const group_view *v)
{
    cJSON_AddNumberToObject(o, "best_accuracy", v->best >= 0 ? groups_percent(v->best) : 0);
}

void handle_training_status(ad_request *req, ad_response *res)
{
    ad_err e = {0};
    storage_conn *db = agents_db(req, res);
    if (!db) return;
    group_row g;
    /* A bound token's latest group is the latest holding one of its agents:
     * a later group of others' agents must not hide its own run. */
    char *only = auth_agents_json(req->who);
    int rc = storage_groups_latest(db, only, &g, &e);
    free(only);
    cJSON *o = cJSON_CreateObject();
    if (rc == AD_ENOTFOUND) {
        cJSON_AddBoolToObject(o, "training_active", 0);
        cJSON_AddStringToObject(o, "message", "No active training session");
        ad_json_add_time(o, "timestamp", ad_clock_now_ms());
        ad_response_json(res, 200, o);
        return;
    }
    group_view v;
    if (rc == 0) rc = group_view_read(db, req->who, g.id, &v, &e);
    if (rc < 0) {
        cJSON_Delete(o);
        agents_answer_storage(req, res, rc, NULL, &e);
        return;
    }
    if (v.runs == 0 && !req->who->all_agents) {
        /* Its agents' runs in the group were deleted with them. */
        cJSON_Delete(v.current);
        cJSON_Delete(v.final);
        cJSON_AddBoolToObject(o, "training_active", 0);
        cJSON_AddStringToObject(o, "message", "No active training session");
        ad_json_add_time(o, "timestamp", ad_clock_now_ms());
        ad_response_json(res, 200, o);
        return;
    }
    cJSON_AddBoolToObject(o, "training_active", v.active);
    ad_json_add_int(o, "group_id", g.id);
    ad_json_add_int(o, "training_cycles", g.cycles);
    ad_json_add_int(o, "cycle_count", v.cycle_count);
    ad_json_add_int(o, "iterations_done", v.iterations_done);
    group_view_add_best(o, &v);
    ad_json_add_str(o, "best_user", v.best_user);
    ad_json_add_time(o, "start_time", g.created_at);
    /* The group's stop time is anyone's stop: a bound token's view ends
     * with its own runs, stopped only if one of them was. */
    int64_t stopped_at = req->who->all_agents ? g.stopped_at : 0;
    int stopped = req->who->all_agents ? g.stopped_at != 0 : v.cancelled > 0;
    int64_t end = v.last_finished > stopped_at ? v.last_finished : stopped_at;
    ad_json_add_time(o, "end_time", v.active ? 0 : end);
    const char *reason = v.active   ? NULL
                         : stopped  ? "stopped"
                         : v.failed ? "error"
                                    : "completed";
    ad_json_add_str(o, "completion_reason", reason);
    cJSON_AddItemToObject(o, "current_accuracies", v.current);
    cJSON_AddItemToObject(o, "final_accuracies", v.final);
    ad_json_add_int(o, "total_agents", req->who->all_agents ? g.total_agents : v.runs);
    ad_json_add_time(o, "timestamp", ad_clock_now_ms());
    ad_response_json(res, 200, o);
}

void handle_training_stop(ad_request *req, ad_response *res)
{
    ad_err e = {0};
    storage_conn *db = agents_db(req, res);
    if (!db) return;
    int64_t gid = 0, stopped_at = 0;
    int stopped = 0;
    /* The pool is thread-safe; the app struct is only read. */
    /* A bound token stops its own agents' runs only. */
    char *only = auth_agents_json(req->who);
    int rc = storage_groups_stop(db, "stopped by POST /api/v1/training/stop", only, &gid, &stopped, &stopped_at,
                                 agents_cancel_jobs, (void *)(uintptr_t)req->app, &e);
    free(only);
    if (rc < 0) {
        agents_answer_storage(req, res, rc, NULL, &e);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    if (!stopped) {
        cJSON_AddStringToObject(o, "message", "No active training to stop");
        ad_json_add_time(o, "timestamp", ad_clock_now_ms());
        ad_response_json(res, 200, o);
        return;
    }
    group_view v;
    rc = group_view_read(db, req->who, gid, &v, &e);
    if (rc < 0) {
        cJSON_Delete(o);
        agents_answer_storage(req, res, rc, NULL, &e);
        return;
    }
    char msg[96];
    snprintf(msg, sizeof(msg), "Training stopped: %d run%s cancelled", stopped, stopped == 1 ? "" : "s");
    cJSON_AddStringToObject(o, "message", msg);
    ad_json_add_int(o, "group_id", gid);
    ad_json_add_int(o, "stopped_runs", stopped);
    ad_json_add_time(o, "stopped_at", stopped_at);
    ad_json_add_int(o, "cycle_count", v.cycle_count);
    group_view_add_best(o, &v);
    ad_json_add_time(o, "timestamp", ad_clock_now_ms());
    cJSON_Delete(v.current);
    cJSON_Delete(v.final);
    ad_response_json(res, 200, o);
}

typedef struct metrics_page {
    cJSON *users;
    char last[AGENT_USER_ID_MAX + 1];
    int count;
} metrics_page;

static void metrics_visit(void *ud, const agent_training *a)
{
    metrics_page *p = ud;
    cJSON *u = cJSON_CreateObject();
    cJSON_AddStringToObject(u, "user_id", a->user_id);
    cJSON_AddStringToObject(u, "status", agent_state_to_string(a->status));
    if (a->quality >= 0) cJSON_AddNumberToObject(u, "accuracy", groups_percent(a->quality));
    else cJSON_AddNullToObject(u, "accuracy");
    cJSON_AddBoolToObject(u, "has_metrics", a->quality >= 0);
    ad_json_add_int(u, "session_count", a->sessions);
    ad_json_add_time(u, "last_training", a->last_training);
    cJSON_AddItemToObject(p->users, a->user_id, u);
    snprintf(p->last, sizeof(p->last), "%s", a->user_id);
    p->count++;
}

void handle_training_metrics(ad_request *req, ad_response *res)
{
    ad_err e = {0};
    const char *limit_s = ad_request_query(req, "limit");
    const char *cursor = ad_request_query(req, "cursor");
    long limit = METRICS_DEFAULT_LIMIT;
    if (limit_s) {
        char *end;
        limit = strtol(limit_s, &end, 10);
        if (!*limit_s || *end || limit < 1 || limit > METRICS_MAX_LIMIT) {
            ad_response_error(res, req, 400, "invalid_limit", "limit must be an integer from 1 to %d",
                              METRICS_MAX_LIMIT);
            return;
        }
    }
    if (cursor && !*cursor) cursor = NULL;
    /* A cursor is a user_id this route returned: anything else was never issued. */
    if (cursor && agents_check_user_id(cursor, NULL) < 0) {
        ad_response_error(res, req, 400, "invalid_cursor", "cursor is not one this server returned");
        return;
    }
    storage_conn *db = agents_db(req, res);
    if (!db) return;
    training_totals t;
    metrics_page p = {.users = cJSON_CreateObject()};
    int more = 0;
    /* A bound token's metrics are over its own agents. */
    char *only = auth_agents_json(req->who);
    int rc = storage_training_totals(db, TRAINING_HIGH_QUALITY, only, &t, &e);
    if (rc == 0) rc = storage_training_each(db, only, cursor, (int)limit, metrics_visit, &p, &more, &e);
    free(only);
    if (rc < 0) {
        cJSON_Delete(p.users);
        agents_answer_storage(req, res, rc, NULL, &e);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *m = cJSON_AddObjectToObject(o, "metrics");
    ad_json_add_int(m, "total_users", t.total_users);
    ad_json_add_int(m, "users_with_metrics", t.users_with_metrics);
    cJSON_AddNumberToObject(m, "average_accuracy", groups_percent(t.average_quality));
    ad_json_add_int(m, "high_performers", t.high_performers);
    cJSON_AddItemToObject(m, "users", p.users);
    ad_json_add_int(o, "count", p.count);
    ad_json_add_str(o, "next_cursor", more ? p.last : NULL);
    ad_json_add_time(o, "timestamp", ad_clock_now_ms());
    ad_response_json(res, 200, o);
}
