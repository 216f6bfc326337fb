#include "pipeline/runner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "pipeline/stages.h"
#include "pipeline/training.h"
#include "storage/trainings.h"
#include "storage/agents.h"
#include "storage/db.h"
#include "storage/executions.h"

/* Progress reported once stage i has finished. */
static int runner_progress(int finished_stages)
{
    return finished_stages * 100 / EXEC_STAGES;
}

static char *runner_json(const cJSON *j, const char *fallback)
{
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    return s ? s : strdup(fallback);
}

/* The first stage at or after the job's start that this job has not yet
 * completed: after a crash, stages whose output is stored are not run again. */
static int runner_first_stage(storage_conn *db, const job_row *job)
{
    int i = job->start_stage;
    for (; i < EXEC_STAGES; i++) {
        exec_row r;
        if (storage_exec_get(db, job->agent_id, i, &r, NULL) < 0) break;
        int done = r.status == EXEC_COMPLETED && r.job_id == job->id;
        exec_row_cleanup(&r);
        if (!done) break;
    }
    return i;
}

static int runner_agent_exists(storage_conn *db, int64_t agent_id)
{
    agent_row a;
    if (storage_agents_get_by_id(db, agent_id, &a, NULL) < 0) return 0;
    agent_row_cleanup(&a);
    return 1;
}

/* Records a failure on the agent, its stage row and the job, in one transaction. */
static void runner_fail(storage_conn *db, const job_row *job, int stage, const char *why)
{
    char reason[AD_ERR_MSG_MAX + 64];
    snprintf(reason, sizeof(reason), "%s failed: %s", exec_stage_names[stage], why);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "error", why);
    char *txt = runner_json(out, "{}");
    ad_err e = {0};
    if (storage_begin(db, &e) == 0) {
        int rc = storage_agents_set_state(db, job->agent_id, AGENT_ERROR, exec_stage_names[stage],
                                          runner_progress(stage), reason, &e);
        if (rc == 0) rc = storage_exec_finish(db, job->agent_id, stage, EXEC_FAILED, NULL, txt, 0, &e);
        if (rc == 0) rc = storage_jobs_finish(db, job->id, JOB_FAILED, reason, &e);
        if (rc == 0) storage_commit(db, &e);
        else storage_rollback(db);
    }
    ad_log(AD_LOG_WARN, "agent %lld: %s", (long long)job->agent_id, reason);
    cJSON_free(txt);
    cJSON_Delete(out);
}

void pipeline_fail_job(storage_conn *db, const job_row *job, const char *why)
{
    ad_err e = {0};
    if (storage_begin(db, &e) < 0) return;
    int rc = storage_jobs_finish(db, job->id, JOB_FAILED, why, &e);
    if (rc == 0 && strcmp(job->kind, "train") == 0) {
        cJSON *p = job->params ? cJSON_Parse(job->params) : NULL;
        int64_t tid = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(p, "training_id"));
        cJSON_Delete(p);
        if (tid) rc = storage_trainings_finish(db, tid, TRAINING_FAILED, 0, 0, NULL, why, &e);
    } else if (rc == 0) {
        rc = storage_agents_set_state(db, job->agent_id, AGENT_ERROR, NULL, 0, why, &e);
    }
    if (rc == 0) storage_commit(db, &e);
    else storage_rollback(db);
    ad_log(AD_LOG_WARN, "agent %lld: job %lld failed: %s", (long long)job->agent_id, (long long)job->id, why);
}

static void runner_load_params(const job_row *job, stage_ctx *c, cJSON **params_json)
{
    model_params_default(&c->params);
    *params_json = job->params ? cJSON_Parse(job->params) : NULL;
    if (!*params_json) return;
    model_params_from_json(&c->params, cJSON_GetObjectItemCaseSensitive(*params_json, "params"));
    c->version_name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(*params_json, "name"));
    c->suggestions = cJSON_GetObjectItemCaseSensitive(*params_json, "suggestions");
}

void pipeline_run_job(storage_conn *db, const job_row *job, atomic_int *stop)
{
    agent_row agent;
    ad_err e = {0};
    if (strcmp(job->kind, "train") == 0) {
        pipeline_run_training(db, job, stop);
        return;
    }
    int got = storage_agents_get_by_id(db, job->agent_id, &agent, &e);
    if (got == AD_ENOTFOUND) return; /* deleted: its job row went with it */
    if (got < 0) {
        storage_jobs_release(db, job->id, NULL);
        return;
    }
    int replay = strcmp(job->kind, "replay") == 0;
    int first = runner_first_stage(db, job);

    if (storage_begin(db, &e) == 0) {
        int rc = first < EXEC_STAGES
                     ? storage_agents_set_state(db, agent.id, AGENT_PROCESSING, exec_stage_names[first],
                                                runner_progress(first), NULL, &e)
                     : 0;
        if (rc == 0 && first < EXEC_STAGES)
            rc = storage_exec_start(db, agent.id, first, job->id, NULL, replay, &e);
        if (rc == 0) storage_commit(db, &e);
        else storage_rollback(db);
    }

    cJSON *params_json = NULL;
    stage_ctx c = {.db = db, .agent = &agent, .stop = stop};
    runner_load_params(job, &c, &params_json);

    for (int i = first; i < EXEC_STAGES; i++) {
        int64_t t0 = ad_clock_mono_ms();
        c.inputs = c.output = NULL;
        int rc = atomic_load(stop) ? AD_ECANCELLED : pipeline_stages[i](&c, &e);
        int64_t ms = ad_clock_mono_ms() - t0;
        if (rc == 0) {
            /* The stage left its transaction open: add the log row, the
             * progress and the next stage's start, then commit together. */
            char *in = runner_json(c.inputs, "{}");
            char *out = runner_json(c.output, "{}");
            int last = i == EXEC_STAGES - 1;
            rc = storage_jobs_hold(db, job->id, &e);
            if (rc == 0) rc = storage_exec_finish(db, agent.id, i, EXEC_COMPLETED, in, out, ms, &e);
            if (rc == 0)
                rc = storage_agents_set_state(db, agent.id, last ? AGENT_READY : AGENT_PROCESSING,
                                              last ? NULL : exec_stage_names[i + 1],
                                              runner_progress(i + 1), NULL, &e);
            if (rc == 0 && !last) rc = storage_exec_start(db, agent.id, i + 1, job->id, NULL, replay, &e);
            if (rc == 0 && last) rc = storage_jobs_finish(db, job->id, JOB_DONE, NULL, &e);
            if (rc == 0) rc = storage_commit(db, &e);
            else storage_rollback(db);
            cJSON_free(in);
            cJSON_free(out);
        }
        cJSON_Delete(c.inputs);
        cJSON_Delete(c.output);
        c.inputs = c.output = NULL;
        if (rc == 0) continue;

        int why = atomic_load(stop);
        if (why == PIPELINE_RUN_STOPPING) {
            /* Shutdown: the job resumes from this stage on the next start. */
            storage_jobs_release(db, job->id, NULL);
        } else if (!runner_agent_exists(db, agent.id)) {
            /* The agent was deleted: its rows, this job's included, are gone. */
        } else if (why == PIPELINE_RUN_CANCELLED || rc == AD_EBUSY) {
            /* A cancel for an agent that still exists (its delete did not
             * commit), or a busy database: the job waits for another go. */
            storage_jobs_release(db, job->id, NULL);
        } else if (rc == AD_EIO) {
            /* The database refused a write (disk full, I/O error): not the
             * job's fault. The job stays running; the pool puts it back,
             * uncounted, as soon as the database takes writes again. */
            ad_log(AD_LOG_WARN, "agent %lld: %s; the job will run again", (long long)agent.id, e.msg);
        } else {
            runner_fail(db, job, i, e.msg[0] ? e.msg : "internal error");
        }
        break;
    }
    if (first == EXEC_STAGES) {
        storage_agents_set_state(db, agent.id, AGENT_READY, NULL, 100, NULL, NULL);
        storage_jobs_finish(db, job->id, JOB_DONE, NULL, NULL);
    }
    cJSON_Delete(params_json);
    agent_row_cleanup(&agent);
}
