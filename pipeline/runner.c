#include "pipeline/runner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/series.h"
#include "pipeline/eta.h"
#include "pipeline/plan.h"
#include "pipeline/stages.h"
#include "pipeline/training.h"
#include "storage/trainings.h"
#include "storage/agents.h"
#include "storage/db.h"
#include "storage/executions.h"

/* Progress reported once stage i has finished. */
static int runner_progress(int finished_stages)
{
    return finished_stages * 100 / PIPELINE_STAGES;
}

/* The first stage at or after the job's start that this job has not yet
 * completed: after a crash, stages whose output is stored are not run again.
 * A failed read is returned as its code. */
static int runner_first_stage(storage_conn *db, const job_row *job, int *first, ad_err *e)
{
    int i = job->start_stage;
    for (; i < PIPELINE_STAGES; i++) {
        exec_row r;
        int rc = storage_exec_get(db, job->agent_id, i, &r, e);
        if (rc == AD_ENOTFOUND) break;
        if (rc < 0) return rc;
        int done = r.status == EXEC_COMPLETED && r.job_id == job->id;
        exec_row_cleanup(&r);
        if (!done) break;
    }
    *first = i;
    return 0;
}

/* 1 when the agent exists, 0 when it is gone, a negative code when the
 * database cannot tell. */
static int runner_agent_exists(storage_conn *db, int64_t agent_id)
{
    agent_row a;
    int rc = storage_agents_get_by_id(db, agent_id, &a, NULL);
    if (rc == AD_ENOTFOUND) return 0;
    if (rc < 0) return rc;
    agent_row_cleanup(&a);
    return 1;
}

/* Records a failure on the agent, its stage row and the job, in one unit of work. */
static void runner_fail(storage_conn *db, const job_row *job, int stage, const char *why)
{
    char reason[AD_ERR_MSG_MAX + 64];
    snprintf(reason, sizeof(reason), "%s failed: %s", pipeline_stage_names[stage], why);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "error", why);
    char *txt = cJSON_PrintUnformatted(out);
    storage_exec_fail_stage(db, job->agent_id, job->id, stage, pipeline_stage_names[stage],
                            runner_progress(stage), reason, txt ? txt : "{}", NULL);
    ad_log(AD_LOG_WARN, "agent %lld: %s", (long long)job->agent_id, reason);
    cJSON_free(txt);
    cJSON_Delete(out);
}

/* After stage `stage` of `job` failed with `rc`: puts the job back, leaves
 * it for the pool, or fails it, as the reason calls for. */
static void runner_settle_failure(storage_conn *db, const job_row *job, int stage, int rc,
                                  const ad_err *e, atomic_int *stop)
{
    int why = atomic_load(stop);
    int exists = why == PIPELINE_RUN_STOPPING ? 1 : runner_agent_exists(db, job->agent_id);
    if (why == PIPELINE_RUN_STOPPING) {
        /* Shutdown: the job resumes from this stage on the next start. */
        storage_jobs_release(db, job->id, NULL);
    } else if (exists == 0) {
        /* The agent was deleted: its rows, this job's included, are gone. */
    } else if (exists < 0 || rc == AD_EIO || rc == AD_EUNAVAILABLE) {
        /* The database refused a write (disk full, I/O error), could not be
         * reached (a PostgreSQL restart, a statement past its deadline) or
         * cannot say whether the agent exists: not the job's fault. The job stays
         * running; the pool puts it back, uncounted, as soon as the database
         * takes writes again. */
        ad_log(AD_LOG_WARN, "agent %lld: %s; the job will run again", (long long)job->agent_id,
               e->msg[0] ? e->msg : ad_err_name(rc));
    } else if (why == PIPELINE_RUN_CANCELLED || rc == AD_EBUSY) {
        /* A cancel for an agent that still exists (its delete did not
         * commit), or a busy database: the job waits for another go. */
        storage_jobs_release(db, job->id, NULL);
    } else if (rc == AD_ECANCELLED) {
        /* No stop was asked for: the job itself is no longer running (its
         * unit of work found so and wrote nothing), and not this worker's. */
    } else {
        runner_fail(db, job, stage, e->msg[0] ? e->msg : "internal error");
    }
}

void pipeline_fail_job(storage_conn *db, const job_row *job, const char *why)
{
    if (strcmp(job->kind, PIPELINE_JOB_TRAIN) == 0) {
        cJSON *p = job->params ? cJSON_Parse(job->params) : NULL;
        int64_t tid = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(p, "training_id"));
        cJSON_Delete(p);
        if (tid) storage_trainings_fail(db, tid, job->agent_id, job->id, why, NULL);
        else storage_jobs_finish(db, job->id, JOB_FAILED, why, NULL);
    } else {
        storage_jobs_fail_agent(db, job->id, job->agent_id, why, NULL);
    }
    ad_log(AD_LOG_WARN, "agent %lld: job %lld failed: %s", (long long)job->agent_id, (long long)job->id, why);
}

static void runner_load_params(const job_row *job, model_params *params, const char **version_name,
                               const cJSON **suggestions, cJSON **params_json)
{
    model_params_default(params);
    *params_json = job->params ? cJSON_Parse(job->params) : NULL;
    if (!*params_json) return;
    model_params_from_json(params, cJSON_GetObjectItemCaseSensitive(*params_json, "params"));
    *version_name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(*params_json, "name"));
    *suggestions = cJSON_GetObjectItemCaseSensitive(*params_json, "suggestions");
}

void pipeline_run_job(storage_conn *db, const job_row *job, atomic_int *stop)
{
    agent_row agent;
    ad_err e = {0};
    if (strcmp(job->kind, PIPELINE_JOB_TRAIN) == 0) {
        pipeline_run_training(db, job, stop);
        return;
    }
    int got = storage_agents_get_by_id(db, job->agent_id, &agent, &e);
    if (got == AD_ENOTFOUND) return; /* deleted: its job row went with it */
    if (got < 0) {
        storage_jobs_release(db, job->id, NULL);
        return;
    }
    int replay = strcmp(job->kind, PIPELINE_JOB_REPLAY) == 0;
    int first = job->start_stage;
    int rc = runner_first_stage(db, job, &first, &e);
    if (rc == 0 && first == PIPELINE_STAGES) {
        /* Every stage is done: only the agent's and the job's ends are left. */
        rc = storage_exec_finish_job(db, agent.id, job->id, &e);
        if (rc < 0) runner_settle_failure(db, job, PIPELINE_STAGES - 1, rc, &e, stop);
        agent_row_cleanup(&agent);
        return;
    }
    eta_run eta;
    eta_run_init(&eta, agent.material_bytes);
    if (rc == 0)
        rc = storage_exec_start_job(db, agent.id, job->id, first, pipeline_stage_names[first],
                                    runner_progress(first), replay,
                                    ad_clock_now_ms() + eta_run_remaining_ms(&eta, first), &e);

    cJSON *params_json = NULL;
    model_params params;
    const char *version_name = NULL;
    const cJSON *suggestions = NULL;
    runner_load_params(job, &params, &version_name, &suggestions, &params_json);

    int i = first;
    for (; rc == 0 && i < PIPELINE_STAGES; i++) {
        int last = i == PIPELINE_STAGES - 1;
        stage_ctx c = {
            .db = db,
            .agent = &agent,
            .stop = stop,
            .params = params,
            .version_name = version_name,
            .suggestions = suggestions,
            .step = {.agent_id = agent.id,
                     .job_id = job->id,
                     .task_index = i,
                     .next_stage = last ? NULL : pipeline_stage_names[i + 1],
                     .progress = runner_progress(i + 1),
                     .replayed = replay},
            .started_ms = ad_clock_mono_ms(),
            .eta = &eta,
        };
        rc = atomic_load(stop) ? ad_err_set(&e, AD_ECANCELLED, "cancelled") : pipeline_stages[i](&c, &e);
        if (rc == 0) series_stage_done(i, c.step.duration_ms * 1000000);
        stage_ctx_cleanup(&c);
        if (rc < 0) break;
        eta_run_stage_done(&eta, i, c.step.duration_ms);
        eta_learn(i, agent.material_bytes, c.step.duration_ms);
    }
    if (rc < 0) runner_settle_failure(db, job, i < PIPELINE_STAGES ? i : PIPELINE_STAGES - 1, rc, &e, stop);
    cJSON_Delete(params_json);
    agent_row_cleanup(&agent);
}
