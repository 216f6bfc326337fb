#include "handlers/system.h"

#include "api/app.h"
#include "base/clock.h"
#include "base/json.h"
#include "config/config.h"
#include "llm/client.h"
#include "pipeline/pool.h"
#include "storage/db.h"
#include "storage/jobs.h"

/* The health answer; `stopping` when the server drains for shutdown, which
 * makes it 503 whatever the checks say: a load balancer must stop sending. */
static void health_answer(ad_request *req, ad_response *res, int stopping)
{
    const ad_app *app = req->app;
    cJSON *root = cJSON_CreateObject();
    cJSON *checks = cJSON_CreateObject();
    int healthy = 1;

    cJSON *dbc = cJSON_AddObjectToObject(checks, "database");
    storage_conn *db = storage_conn_get();
    ad_err e = {0};
    int64_t queued = 0, running = 0;
    /* The queue count reads the database file: it is the readability probe too. */
    storage_health sh;
    storage_health_check(db, &sh);
    int rc = db ? storage_jobs_depth(db, &queued, &running, &e) : AD_EUNAVAILABLE;
    /* No connection, or the database server down or out of reach: the
     * driver reconnects by itself, and this says when it has. */
    int reachable = rc != AD_EUNAVAILABLE;
    if (rc < 0) {
        healthy = 0;
        cJSON_AddStringToObject(dbc, "status", "error");
        cJSON_AddStringToObject(dbc, "message", reachable ? "the database cannot be read; see the server log"
                                                          : "the database cannot be reached; see the server log");
    } else if (sh.writes_failing) {
        /* Reads still work, but nothing new can be stored: not ready. */
        healthy = 0;
        cJSON_AddStringToObject(dbc, "status", "error");
        cJSON_AddStringToObject(dbc, "message",
                                "writes are failing (disk full or I/O error); see the server log");
    } else {
        cJSON_AddStringToObject(dbc, "status", "ok");
    }
    cJSON_AddStringToObject(dbc, "connection", reachable ? "ok" : "unavailable");
    cJSON_AddStringToObject(dbc, "writes", sh.writes_failing ? "failing" : "ok");
    if (sh.writes_failing) ad_json_add_time(dbc, "last_write_failure", sh.last_failure_ms);

    cJSON *wc = cJSON_AddObjectToObject(checks, "workers");
    int workers = 0, busy = 0;
    if (app->pool) pipeline_pool_stats(app->pool, &workers, &busy);
    if (workers == 0) healthy = 0;
    cJSON_AddStringToObject(wc, "status", workers > 0 ? "ok" : "error");
    ad_json_add_int(wc, "count", workers);
    ad_json_add_int(wc, "busy", busy);

    cJSON *qc = cJSON_AddObjectToObject(checks, "queue");
    ad_json_add_int(qc, "depth", queued);
    ad_json_add_int(qc, "running", running);

    /* Gemini's model is looked up at start-up: a missing or retired model
     * fails every Gemini call, but the service still stores, trains and
     * answers its other routes, so it is degraded rather than unhealthy. */
    int degraded = 0;
    if (app->llm) {
        llm_model_check mc;
        llm_client_model_status(app->llm, &mc);
        degraded = mc.state == LLM_MODEL_MISSING || mc.state == LLM_MODEL_UNUSABLE;
        cJSON *uc = cJSON_AddObjectToObject(checks, "upstream");
        cJSON_AddStringToObject(uc, "status", degraded ? "degraded" : "ok");
        cJSON_AddStringToObject(uc, "model", mc.model);
        cJSON_AddStringToObject(uc, "model_state", llm_model_state_name(mc.state));
        cJSON_AddStringToObject(uc, "message", mc.message);
    }

    cJSON_AddStringToObject(root, "status", stopping    ? "stopping"
                                           : !healthy ? "unhealthy"
                                           : degraded ? "degraded"
                                                      : "healthy");
    cJSON_AddStringToObject(root, "version", AGENTD_VERSION);
    ad_json_add_int(root, "uptime_s", (ad_clock_mono_ms() - app->started_mono_ms) / 1000);
    ad_json_add_time(root, "timestamp", ad_clock_now_ms());
    cJSON_AddItemToObject(root, "checks", checks);
    ad_response_json(res, healthy && !stopping ? 200 : 503, root);
}

void handle_health(ad_request *req, ad_response *res)
{
    health_answer(req, res, 0);
}

void handle_health_stopping(ad_request *req, ad_response *res)
{
    health_answer(req, res, 1);
}

void handle_config(ad_request *req, ad_response *res)
{
    res->status = 200;
    config_to_json(req->app->cfg, &res->body);
}
