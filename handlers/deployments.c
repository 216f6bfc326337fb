#include "handlers/deployments.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/json.h"
#include "base/uuid.h"
#include "handlers/agents.h"
#include "handlers/training.h"
#include "pipeline/stages.h"
#include "storage/db.h"
#include "storage/deployments.h"
#include "storage/versions.h"

#define DEPLOYMENTS_PAGE_DEFAULT 50
#define DEPLOYMENTS_PAGE_MAX 500

static cJSON *deployment_json(const char *user_id, const deployment_row *d)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", d->uuid);
    cJSON_AddStringToObject(o, "agent", user_id);
    cJSON_AddStringToObject(o, "model", d->model);
    cJSON_AddStringToObject(o, "status", deployment_state_to_string(d->status));
    cJSON_AddStringToObject(o, "created_by", d->created_by);
    ad_json_add_time(o, "created_at", d->created_at);
    ad_json_add_time(o, "updated_at", d->updated_at);
    ad_json_add_time(o, "live_at", d->live_at);
    ad_json_add_raw(o, "metrics", d->metrics);
    if (d->has_quality) cJSON_AddNumberToObject(o, "quality", d->quality);
    else cJSON_AddNullToObject(o, "quality");
    ad_json_add_str(o, "reason", d->reason);
    cJSON_AddBoolToObject(o, "forced", d->forced);
    return o;
}

/* The body's optional booleans; a body that is not an object is refused. */
static int deployments_read_flag(ad_request *req, ad_response *res, const char *key, int *out)
{
    ad_err e = {0};
    if (!req->json) return 0;
    if (!cJSON_IsObject(req->json)) {
        ad_response_error(res, req, 400, "invalid_body", "request body must be a JSON object");
        return AD_EINVAL;
    }
    int rc = ad_json_bool(req->json, key, 0, out, &e);
    if (rc == AD_ENOTFOUND) return 0;
    if (rc < 0) ad_response_error(res, req, 400, "invalid_body", "%s", e.msg);
    return rc;
}

/* Reads the deployment named by the second path parameter; answers 404. */
static int deployments_lookup(ad_request *req, ad_response *res, const agent_row *a, deployment_row *d)
{
    ad_err e = {0};
    const char *uuid = req->params[1];
    int rc = ad_uuid_valid(uuid) ? storage_deployments_get(storage_conn_get(), a->id, uuid, d, &e) : AD_ENOTFOUND;
    if (rc == AD_ENOTFOUND)
        ad_response_error(res, req, 404, "deployment_not_found", "agent '%s' has no deployment '%.40s'",
                          a->user_id, uuid);
    else if (rc < 0)
        agents_answer_storage(req, res, rc, a->user_id, &e);
    return rc;
}

/* Answers 200 (or 201 with a Location) with the agent's deployment `uuid`
 * as it stands now. */
static void deployments_answer(ad_request *req, ad_response *res, const agent_row *a, const char *uuid,
                               int status)
{
    ad_err e = {0};
    deployment_row d;
    int rc = storage_deployments_get(storage_conn_get(), a->id, uuid, &d, &e);
    if (rc < 0) {
        agents_answer_storage(req, res, rc, a->user_id, &e);
        return;
    }
    if (status == 201) {
        char location[200];
        snprintf(location, sizeof(location), "/api/v1/agents/%s/deployments/%s", a->user_id, uuid);
        ad_response_header(res, "Location", location);
    }
    ad_response_json(res, status, deployment_json(a->user_id, &d));
    deployment_row_cleanup(&d);
}

/* Answers a failed push: a deployment no longer pending is 409
 * invalid_state; the rest as any storage failure. */
static void deployments_answer_push(ad_request *req, ad_response *res, const agent_row *a, int rc,
                                    const ad_err *e)
{
    if (rc == AD_ESTATE) ad_response_error(res, req, 409, "invalid_state", "%s", e->msg);
    else agents_answer_storage(req, res, rc, a->user_id, e);
}

/* Counts the agent's versions (storage_versions_each skips a training
 * run's candidates): none yet means the agent is not ready to deploy. */
static void deployments_count_version(void *ud, const version_row *v)
{
    (void)v;
    (*(int *)ud)++;
}

void handle_deployments_create(ad_request *req, ad_response *res)
{
    ad_err e = {0};
    agent_row a;
    if (!req->json || !cJSON_IsObject(req->json)) {
        ad_response_error(res, req, 400, "invalid_body", "request body must be a JSON object with a model");
        return;
    }
    const char *model = NULL;
    int push = 1, force = 0;
    int rc = ad_json_string(req->json, "model", 1, 64, &model, &e);
    if (rc < 0) {
        ad_response_error(res, req, 400, "invalid_body", "%s", e.msg);
        return;
    }
    if (training_check_version_name(model, &e) < 0) {
        ad_response_error(res, req, 400, "invalid_body", "model: %s", e.msg);
        return;
    }
    if (deployments_read_flag(req, res, "push", &push) < 0) return;
    if (deployments_read_flag(req, res, "force", &force) < 0) return;
    if (agents_lookup(req, res, &a) < 0) return;
    storage_conn *db = storage_conn_get();
    version_row v;
    rc = storage_versions_get_by_name(db, a.id, model, &v, &e);
    if (rc == 0 && v.state == VERSION_CANDIDATE) {
        version_row_cleanup(&v);
        rc = AD_ENOTFOUND;
    }
    if (rc == AD_ENOTFOUND) {
        int versions = 0;
        rc = storage_versions_each(db, a.id, deployments_count_version, &versions, &e);
        if (rc < 0) agents_answer_storage(req, res, rc, a.user_id, &e);
        else if (!versions)
            ad_response_error(res, req, 409, "not_ready", "agent '%s' has no model version yet (status: %s)",
                              a.user_id, agent_state_to_string(a.status));
        else
            ad_response_error(res, req, 404, "model_not_found", "agent '%s' has no model version '%s'",
                              a.user_id, model);
        agent_row_cleanup(&a);
        return;
    }
    if (rc < 0) {
        agents_answer_storage(req, res, rc, a.user_id, &e);
        agent_row_cleanup(&a);
        return;
    }
    char who[64], uuid[AD_UUID_LEN];
    ad_principal_label(req->who, who, sizeof(who));
    if (push) {
        deploy_candidate cand = {.version_id = v.id,
                                 .name = v.name,
                                 .quality = v.quality,
                                 .force = force,
                                 .created_by = who,
                                 .actor = who,
                                 .request_id = req->request_id};
        rc = pipeline_deploy(db, a.id, &cand, uuid, &e);
    } else {
        ad_uuid_v4(uuid);
        deployment_new n = {.agent_id = a.id,
                            .version_id = v.id,
                            .uuid = uuid,
                            .created_by = who,
                            .request_id = req->request_id};
        rc = storage_deployments_create(db, &n, &e);
    }
    if (rc < 0) deployments_answer_push(req, res, &a, rc, &e);
    else deployments_answer(req, res, &a, uuid, 201);
    version_row_cleanup(&v);
    agent_row_cleanup(&a);
}

void handle_deployment_push(ad_request *req, ad_response *res)
{
    ad_err e = {0};
    agent_row a;
    deployment_row d;
    int force = 0;
    if (deployments_read_flag(req, res, "force", &force) < 0) return;
    if (agents_lookup(req, res, &a) < 0) return;
    if (deployments_lookup(req, res, &a, &d) < 0) {
        agent_row_cleanup(&a);
        return;
    }
    storage_conn *db = storage_conn_get();
    version_row v;
    int rc = d.status != DEPLOYMENT_PENDING
                 ? ad_err_set(&e, AD_ESTATE, "deployment %s is %s, not pending", d.uuid,
                              deployment_state_to_string(d.status))
                 : storage_versions_get(db, d.version_id, &v, &e);
    if (rc == 0) {
        char who[64], uuid[AD_UUID_LEN];
        ad_principal_label(req->who, who, sizeof(who));
        /* The version is judged as it is now, which is what the deployment
         * recorded: a version's metrics change only before it is published. */
        deploy_candidate cand = {.version_id = v.id,
                                 .name = v.name,
                                 .quality = v.quality,
                                 .force = force,
                                 .deployment_id = d.id,
                                 .uuid = d.uuid,
                                 .actor = who,
                                 .request_id = req->request_id};
        rc = pipeline_deploy(db, a.id, &cand, uuid, &e);
        version_row_cleanup(&v);
    }
    if (rc < 0) deployments_answer_push(req, res, &a, rc, &e);
    else deployments_answer(req, res, &a, d.uuid, 200);
    deployment_row_cleanup(&d);
    agent_row_cleanup(&a);
}

typedef struct deployments_page {
    const char *user_id;
    cJSON *items;
    int count;
    char last[AD_UUID_LEN];
} deployments_page;

static void deployments_visit(void *ud, const deployment_row *d)
{
    deployments_page *p = ud;
    cJSON_AddItemToArray(p->items, deployment_json(p->user_id, d));
    p->count++;
}

void handle_deployments_list(ad_request *req, ad_response *res)
{
    ad_err e = {0};
    agent_row a;
    long limit = DEPLOYMENTS_PAGE_DEFAULT;
    const char *ls = ad_request_query(req, "limit"), *cs = ad_request_query(req, "cursor");
    char *end;
    if (ls && ((limit = strtol(ls, &end, 10)) < 1 || limit > DEPLOYMENTS_PAGE_MAX || !*ls || *end)) {
        ad_response_error(res, req, 400, "invalid_limit", "limit must be an integer from 1 to %d",
                          DEPLOYMENTS_PAGE_MAX);
        return;
    }
    if (cs && !*cs) cs = NULL;
    if (cs && !ad_uuid_valid(cs)) {
        ad_response_error(res, req, 400, "invalid_cursor", "cursor is not one this server returned");
        return;
    }
    if (agents_lookup_snapshot(req, res, &a) < 0) return;
    storage_conn *db = storage_conn_get();
    deployments_page p = {.user_id = a.user_id, .items = cJSON_CreateArray()};
    /* One extra row says whether another page exists. */
    int rc = storage_deployments_list(db, a.id, cs, (int)limit + 1, deployments_visit, &p, &e);
    storage_snapshot_end(db);
    if (rc < 0) {
        cJSON_Delete(p.items);
        if (rc == AD_EINVAL) ad_response_error(res, req, 400, "invalid_cursor", "cursor is not one this server returned");
        else agents_answer_storage(req, res, rc, a.user_id, &e);
        agent_row_cleanup(&a);
        return;
    }
    int more = p.count > limit;
    if (more) cJSON_DeleteItemFromArray(p.items, (int)limit);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "deployments", p.items);
    cJSON_AddNumberToObject(o, "count", more ? (double)limit : p.count);
    if (more)
        cJSON_AddStringToObject(o, "next_cursor",
                                cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
                                    cJSON_GetArrayItem(p.items, (int)limit - 1), "id")));
    else
        cJSON_AddNullToObject(o, "next_cursor");
    agent_row_cleanup(&a);
    ad_response_json(res, 200, o);
}

void handle_deployment_get(ad_request *req, ad_response *res)
{
    agent_row a;
    deployment_row d;
    if (agents_lookup(req, res, &a) < 0) return;
    if (deployments_lookup(req, res, &a, &d) == 0) {
        ad_response_json(res, 200, deployment_json(a.user_id, &d));
        deployment_row_cleanup(&d);
    }
    agent_row_cleanup(&a);
}

static void deployments_event_visit(void *ud, const deployment_event *ev)
{
    cJSON *o = cJSON_CreateObject();
    ad_json_add_time(o, "at", ev->at);
    cJSON_AddStringToObject(o, "event", ev->event);
    cJSON_AddStringToObject(o, "message", ev->message);
    ad_json_add_raw(o, "detail", ev->detail);
    cJSON_AddItemToArray(ud, o);
}

void handle_deployment_logs(ad_request *req, ad_response *res)
{
    ad_err e = {0};
    agent_row a;
    deployment_row d;
    if (agents_lookup_snapshot(req, res, &a) < 0) return;
    storage_conn *db = storage_conn_get();
    if (deployments_lookup(req, res, &a, &d) < 0) {
        storage_snapshot_end(db);
        agent_row_cleanup(&a);
        return;
    }
    cJSON *events = cJSON_CreateArray();
    int rc = storage_deployments_events(db, d.id, deployments_event_visit, events, &e);
    storage_snapshot_end(db);
    if (rc < 0) {
        cJSON_Delete(events);
        agents_answer_storage(req, res, rc, a.user_id, &e);
    } else {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "deployment", d.uuid);
        cJSON_AddItemToObject(o, "events", events);
        ad_response_json(res, 200, o);
    }
    deployment_row_cleanup(&d);
    agent_row_cleanup(&a);
}

void handle_deployment_delete(ad_request *req, ad_response *res)
{
    ad_err e = {0};
    agent_row a;
    deployment_row d;
    if (agents_lookup(req, res, &a) < 0) return;
    const char *uuid = req->params[1];
    char who[64];
    ad_principal_label(req->who, who, sizeof(who));
    int rc = ad_uuid_valid(uuid)
                 ? storage_deployments_remove(storage_conn_get(), a.id, uuid, who, req->request_id, &d, &e)
                 : AD_ENOTFOUND;
    if (rc == AD_ENOTFOUND)
        ad_response_error(res, req, 404, "deployment_not_found", "agent '%s' has no deployment '%.40s'",
                          a.user_id, uuid);
    else if (rc < 0)
        agents_answer_storage(req, res, rc, a.user_id, &e);
    else {
        ad_response_json(res, 200, deployment_json(a.user_id, &d));
        deployment_row_cleanup(&d);
    }
    agent_row_cleanup(&a);
}
