#include "handlers/replay.h"

#include <string.h>

#include "api/app.h"
#include "base/clock.h"
#include "base/json.h"
#include "handlers/agents.h"
#include "pipeline/plan.h"
#include "pipeline/pool.h"
#include "storage/db.h"
#include "storage/executions.h"
#include "storage/jobs.h"

/* The stored log matches the pipeline when it has one row per stage, named
 * as the stages are, in order, and every stage before `from` has an output
 * to reuse. Returns 0, or fills `e` with what does not match. */
static int replay_check_log(const exec_row *rows, int n, int from, ad_err *e)
{
    if (n != PIPELINE_STAGES)
        return ad_err_set(e, AD_ESTATE, "the execution log has %d rows, the pipeline has %d stages", n, PIPELINE_STAGES);
    for (int i = 0; i < n; i++) {
        if (rows[i].task_index != i || strcmp(rows[i].name, pipeline_stage_names[i]) != 0)
            return ad_err_set(e, AD_ESTATE, "execution log row %d is '%s', the pipeline's stage %d is '%s'",
                              rows[i].task_index, rows[i].name, i, pipeline_stage_names[i]);
    }
    for (int i = 0; i < from; i++) {
        if (rows[i].status != EXEC_COMPLETED || !rows[i].output)
            return ad_err_set(e, AD_ESTATE, "%s (task_index %d) has no stored output to replay from",
                              rows[i].name, i);
    }
    return 0;
}

void handle_agent_replay(ad_request *req, ad_response *res)
{
    ad_err e = {0};
    agent_row a;
    if (agents_lookup_snapshot(req, res, &a) < 0) return;
    storage_conn *db = storage_conn_get();
    exec_row rows[PIPELINE_STAGES + 1];
    int n = 0;
    long long index = -1;
    const char *task_id = NULL;
    const cJSON *body = req->json;
    int has_index = body && cJSON_GetObjectItemCaseSensitive(body, "task_index");
    int has_id = body && cJSON_GetObjectItemCaseSensitive(body, "task_id");
    if (has_index == has_id) {
        ad_response_error(res, req, 400, "invalid_body", "give exactly one of task_index or task_id");
        goto out;
    }
    if (has_index && ad_json_int(body, "task_index", 1, 0, PIPELINE_STAGES - 1, &index, &e) < 0) {
        ad_response_error(res, req, 400, "invalid_task_index", "task_index must be an integer from 0 to %d",
                          PIPELINE_STAGES - 1);
        goto out;
    }
    if (has_id && ad_json_string(body, "task_id", 1, 64, &task_id, &e) < 0) {
        ad_response_error(res, req, 400, "invalid_task_id", "%s", e.msg);
        goto out;
    }
    int rc = storage_exec_list(db, a.id, rows, PIPELINE_STAGES + 1, &n, &e);
    /* The log and the agent were read together; the job is queued in a
     * transaction of its own, which finds out if the agent is gone. */
    storage_snapshot_end(db);
    if (rc < 0) {
        agents_answer_storage(req, res, rc, a.user_id, &e);
        goto out;
    }
    if (task_id) {
        for (int i = 0; i < n && index < 0; i++)
            if (strcmp(rows[i].task_id, task_id) == 0) index = rows[i].task_index;
        if (index < 0) {
            ad_response_error(res, req, 400, "unknown_task_id", "agent '%s' has no task with task_id '%s'",
                              a.user_id, task_id);
            goto out;
        }
    }
    if (replay_check_log(rows, n, (int)index, &e) < 0) {
        ad_response_error(res, req, 409, "stale_execution_log", "%s", e.msg);
        goto out;
    }
    int64_t job_id = 0;
    job_spec job = {.kind = PIPELINE_JOB_REPLAY, .start_stage = (int)index, .params = NULL};
    rc = storage_jobs_enqueue(db, a.id, &job, &job_id, &e);
    if (rc == AD_ECONFLICT) {
        ad_response_error(res, req, 409, "job_in_progress",
                          "agent '%s' has a pipeline or training job queued or running", a.user_id);
        goto out;
    }
    if (rc < 0) {
        agents_answer_storage(req, res, rc, a.user_id, &e);
        goto out;
    }
    if (req->app->pool) pipeline_pool_notify(req->app->pool);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "user_id", a.user_id);
    cJSON_AddNumberToObject(o, "replay_from", (double)index);
    cJSON_AddStringToObject(o, "task_id", rows[index].task_id);
    cJSON_AddStringToObject(o, "name", rows[index].name);
    cJSON_AddNumberToObject(o, "job_id", (double)job_id);
    cJSON_AddStringToObject(o, "status", job_state_to_string(JOB_QUEUED));
    ad_json_add_time(o, "timestamp", ad_clock_now_ms());
    ad_response_json(res, 202, o);
out:
    storage_snapshot_end(db);
    for (int i = 0; i < n; i++) exec_row_cleanup(&rows[i]);
    agent_row_cleanup(&a);
}

void handle_agent_executions_reset(ad_request *req, ad_response *res)
{
    ad_err e = {0};
    agent_row a;
    if (agents_lookup(req, res, &a) < 0) return;
    storage_conn *db = storage_conn_get();
    int count = 0;
    int rc = storage_exec_reset(db, a.id, &count, &e);
    if (rc == AD_ECONFLICT) {
        ad_response_error(res, req, 409, "job_in_progress",
                          "agent '%s' has a job queued or running; reset its log after it ends", a.user_id);
    } else if (rc < 0) {
        agents_answer_storage(req, res, rc, a.user_id, &e);
    } else {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "user_id", a.user_id);
        cJSON_AddNumberToObject(o, "reset", count);
        ad_json_add_time(o, "timestamp", ad_clock_now_ms());
        ad_response_json(res, 200, o);
    }
    agent_row_cleanup(&a);
}
