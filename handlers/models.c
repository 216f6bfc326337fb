#include "handlers/models.h"

#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/json.h"
#include "handlers/agents.h"
#include "handlers/training.h"
#include "pipeline/stages.h"
#include "storage/db.h"
#include "storage/index.h"
#include "storage/versions.h"

#define EXPORT_FORMAT "agentd.model/1"

typedef struct models_list {
    cJSON *items;
    int64_t deployed_id;
} models_list;

static void models_add_common(cJSON *o, const version_row *v, int64_t deployed_id)
{
    cJSON_AddStringToObject(o, "name", v->name);
    cJSON_AddStringToObject(o, "state", version_state_to_string(v->state));
    cJSON_AddBoolToObject(o, "deployed", v->id == deployed_id);
    ad_json_add_time(o, "created_at", v->created_at);
    ad_json_add_time(o, "deployed_at", v->deployed_at);
    cJSON_AddNumberToObject(o, "passages", (double)v->passages);
    ad_json_add_raw(o, "params", v->params);
    ad_json_add_raw(o, "metrics", v->metrics);
    ad_json_add_str(o, "note", v->note);
}

static void models_visit(void *ud, const version_row *v)
{
    models_list *l = ud;
    cJSON *o = cJSON_CreateObject();
    models_add_common(o, v, l->deployed_id);
    /* The list only: the export document keeps its agentd.model/1 shape. */
    cJSON_AddStringToObject(o, "language", v->language);
    cJSON_AddItemToArray(l->items, o);
}

void handle_agent_models(ad_request *req, ad_response *res)
{
    ad_err e = {0};
    agent_row a;
    if (agents_lookup_snapshot(req, res, &a) < 0) return;
    models_list l = {cJSON_CreateArray(), a.deployed_version_id};
    int rc = storage_versions_each(storage_conn_get(), a.id, models_visit, &l, &e);
    storage_snapshot_end(storage_conn_get());
    if (rc < 0) {
        cJSON_Delete(l.items);
        agents_answer_storage(req, res, rc, a.user_id, &e);
        agent_row_cleanup(&a);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "user_id", a.user_id);
    cJSON_AddItemToObject(o, "models", l.items);
    cJSON_AddNumberToObject(o, "count", cJSON_GetArraySize(l.items));
    ad_json_add_time(o, "timestamp", ad_clock_now_ms());
    agent_row_cleanup(&a);
    ad_response_json(res, 200, o);
}

/* Looks up the version named by the second path parameter; answers 400/404. */
static int models_lookup(ad_request *req, ad_response *res, const agent_row *a, version_row *v)
{
    ad_err e = {0};
    const char *name = req->params[1];
    if (training_check_version_name(name, &e) < 0) {
        ad_response_error(res, req, 400, "invalid_name", "%s", e.msg);
        return AD_EINVAL;
    }
    int rc = storage_versions_get_by_name(storage_conn_get(), a->id, name, v, &e);
    if (rc == 0 && v->state == VERSION_CANDIDATE) {
        version_row_cleanup(v);
        rc = AD_ENOTFOUND;
    }
    if (rc == AD_ENOTFOUND)
        ad_response_error(res, req, 404, "model_not_found", "agent '%s' has no model version '%s'",
                          a->user_id, name);
    else if (rc < 0)
        agents_answer_storage(req, res, rc, a->user_id, &e);
    return rc;
}

void handle_agent_model_deploy(ad_request *req, ad_response *res)
{
    ad_err e = {0};
    agent_row a;
    version_row v, prev;
    if (agents_lookup_snapshot(req, res, &a) < 0) return;
    storage_conn *db = storage_conn_get();
    if (models_lookup(req, res, &a, &v) < 0) {
        storage_snapshot_end(db);
        agent_row_cleanup(&a);
        return;
    }
    /* A serving version that is gone went with its agent, which the deploy
     * below finds out; a failed read is the database's and is answered. */
    int prc = a.deployed_version_id ? storage_versions_get(db, a.deployed_version_id, &prev, &e) : AD_ENOTFOUND;
    int has_prev = prc == 0;
    storage_snapshot_end(db);
    if (prc < 0 && prc != AD_ENOTFOUND) {
        agents_answer_storage(req, res, prc, a.user_id, &e);
        version_row_cleanup(&v);
        agent_row_cleanup(&a);
        return;
    }
    /* A client's deploy is a forced deployment: the client chose the
     * version (a rollback is often to a worse-scoring one). A version
     * vanishes only with its agent: either way the agent is gone. */
    char who[64], uuid[AD_UUID_LEN];
    ad_principal_label(req->who, who, sizeof(who));
    deploy_candidate cand = {.version_id = v.id,
                             .name = v.name,
                             .quality = v.quality,
                             .force = 1,
                             .created_by = who,
                             .actor = who,
                             .request_id = req->request_id};
    int rc = pipeline_deploy(db, a.id, &cand, uuid, &e);
    if (rc < 0) {
        agents_answer_storage(req, res, rc, a.user_id, &e);
    } else {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "user_id", a.user_id);
        cJSON_AddStringToObject(o, "deployed", v.name);
        if (has_prev) cJSON_AddStringToObject(o, "previous", prev.name);
        else cJSON_AddNullToObject(o, "previous");
        cJSON_AddStringToObject(o, "deployment", uuid);
        ad_json_add_time(o, "timestamp", ad_clock_now_ms());
        ad_response_json(res, 200, o);
    }
    if (has_prev) version_row_cleanup(&prev);
    version_row_cleanup(&v);
    agent_row_cleanup(&a);
}

static void models_export_passage(void *ud, const passage_hit *p)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "ord", p->ord);
    cJSON_AddStringToObject(o, "question", p->question ? p->question : "");
    cJSON_AddStringToObject(o, "body", p->body ? p->body : "");
    if (p->answer) cJSON_AddStringToObject(o, "answer", p->answer);
    if (p->category) cJSON_AddStringToObject(o, "category", p->category);
    cJSON_AddItemToArray(ud, o);
}

void handle_agent_model_export(ad_request *req, ad_response *res)
{
    ad_err e = {0};
    agent_row a;
    version_row v;
    if (agents_lookup_snapshot(req, res, &a) < 0) return;
    storage_conn *db = storage_conn_get();
    if (models_lookup(req, res, &a, &v) < 0) {
        storage_snapshot_end(db);
        agent_row_cleanup(&a);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "format", EXPORT_FORMAT);
    cJSON_AddStringToObject(o, "user_id", a.user_id);
    models_add_common(o, &v, a.deployed_version_id);
    cJSON_AddStringToObject(o, "persona", v.persona);
    ad_json_add_raw(o, "fewshot", v.fewshot);
    /* The document carries the passages themselves, not their count. */
    cJSON_DeleteItemFromObjectCaseSensitive(o, "passages");
    cJSON *passages = cJSON_AddArrayToObject(o, "passages");
    int rc = storage_index_each_passage(db, v.id, models_export_passage, passages, &e);
    storage_snapshot_end(db);
    if (rc < 0) {
        cJSON_Delete(o);
        agents_answer_storage(req, res, rc, a.user_id, &e);
    } else {
        ad_json_add_time(o, "exported_at", ad_clock_now_ms());
        char disp[200];
        snprintf(disp, sizeof(disp), "attachment; filename=\"%s-%s.json\"", a.user_id, v.name);
        ad_response_header(res, "Content-Disposition", disp);
        ad_response_json(res, 200, o);
    }
    version_row_cleanup(&v);
    agent_row_cleanup(&a);
}
