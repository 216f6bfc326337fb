#include "handlers/evaluate.h"

#include <math.h>
#include <string.h>

#include "api/app.h"
#include "base/clock.h"
#include "base/json.h"
#include "handlers/agents.h"
#include "model/answerer.h"
#include "model/metrics.h"
#include "storage/db.h"
#include "storage/versions.h"

static double round4(double v)
{
    return floor(v * 10000.0 + 0.5) / 10000.0;
}

void handle_agent_evaluate(ad_request *req, ad_response *res)
{
    ad_err e = {0};
    agent_row a;
    if (agents_lookup_snapshot(req, res, &a) < 0) return;
    storage_conn *db = storage_conn_get();
    const char *prompt = NULL, *expected = NULL;
    size_t max = (size_t)req->app->cfg->max_prompt_bytes;
    if (!req->json || ad_json_string(req->json, "test_prompt", 1, max, &prompt, &e) < 0 ||
        ad_json_string(req->json, "expected_answer", 1, max, &expected, &e) < 0) {
        storage_snapshot_end(db);
        ad_response_error(res, req, 400, "invalid_body", "%s",
                          req->json ? e.msg : "request body must be a JSON object with test_prompt and expected_answer");
        agent_row_cleanup(&a);
        return;
    }
    if (agents_answer_not_deployed(req, res, &a)) {
        storage_snapshot_end(db);
        agent_row_cleanup(&a);
        return;
    }
    if (!a.deployed_version_id) {
        storage_snapshot_end(db);
        ad_response_error(res, req, 409, "agent_not_ready",
                          "agent '%s' is not ready (status: %s)", a.user_id, agent_state_to_string(a.status));
        agent_row_cleanup(&a);
        return;
    }
    version_row v;
    answerer_result ans;
    model_params p;
    model_params_default(&p);
    int rc = storage_versions_get(db, a.deployed_version_id, &v, &e);
    if (rc == 0) {
        cJSON *pj = cJSON_Parse(v.params);
        model_params_from_json(&p, pj);
        cJSON_Delete(pj);
        analysis_language lang = answerer_language(v.language);
        version_row_cleanup(&v);
        rc = answerer_answer(db, a.deployed_version_id, lang, &p, prompt, p.top_k, ANSWERER_ALL,
                             &ans, &e);
    }
    storage_snapshot_end(db);
    if (rc < 0) {
        agents_answer_storage(req, res, rc, a.user_id, &e);
        agent_row_cleanup(&a);
        return;
    }
    const char *pred = ans.text ? ans.text : "";
    metrics_scores s;
    metrics_compare(pred, strlen(pred), expected, strlen(expected), &s);

    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "user_id", a.user_id);
    cJSON *ev = cJSON_AddObjectToObject(o, "evaluation");
    cJSON_AddStringToObject(ev, "test_prompt", prompt);
    cJSON_AddStringToObject(ev, "expected_answer", expected);
    cJSON_AddStringToObject(ev, "predicted_answer", pred);
    cJSON_AddNumberToObject(ev, "model_confidence", round4(ans.confidence));
    cJSON_AddNumberToObject(ev, "jaccard_similarity", round4(s.jaccard));
    cJSON_AddNumberToObject(ev, "character_similarity", round4(s.char_similarity));
    cJSON_AddNumberToObject(ev, "contains_similarity", round4(s.containment));
    cJSON_AddNumberToObject(ev, "token_f1", round4(s.token_f1));
    cJSON_AddNumberToObject(ev, "overall_similarity", round4(s.overall));
    cJSON_AddStringToObject(ev, "quality_label", metrics_quality_label(s.overall));
    ad_json_add_time(ev, "evaluated_at", ad_clock_now_ms());
    answerer_result_cleanup(&ans);
    agent_row_cleanup(&a);
    ad_response_json(res, 200, o);
}
