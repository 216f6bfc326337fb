#include "pipeline/training.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/series.h"
#include "pipeline/plan.h"
#include "pipeline/runner.h"
#include "pipeline/stages.h"
#include "storage/agents.h"
#include "storage/executions.h"
#include "storage/trainings.h"
#include "storage/versions.h"

#define FEEDBACK_MAX 20

/* One searchable dimension: where it lives in model_params and its step. */
typedef enum { DIM_W_QUESTION, DIM_W_BODY, DIM_TOP_K, DIM_PASSAGE, DIM_OVERLAP, DIM_FEWSHOT } dim_id;

static void training_move(model_params *p, dim_id d, int dir, double scale)
{
    switch (d) {
    case DIM_W_QUESTION: p->w_question += dir * 1.0 * scale; break;
    case DIM_W_BODY: p->w_body += dir * 0.5 * scale; break;
    case DIM_TOP_K: p->top_k += dir; break;
    case DIM_PASSAGE: p->passage_chars += dir * (int)(200 * scale); break;
    case DIM_OVERLAP: p->overlap += dir; break;
    case DIM_FEWSHOT: p->fewshot += dir; break;
    }
    cJSON *j = model_params_to_json(p);  /* clamp through the one validator */
    model_params_from_json(p, j);
    cJSON_Delete(j);
}

void training_next_params(int iteration, const model_params *best, int is_text, model_params *out)
{
    static const dim_id text_dims[] = {DIM_PASSAGE, DIM_OVERLAP, DIM_W_BODY, DIM_TOP_K, DIM_FEWSHOT};
    static const dim_id data_dims[] = {DIM_W_QUESTION, DIM_W_BODY, DIM_TOP_K, DIM_FEWSHOT};
    const dim_id *dims = is_text ? text_dims : data_dims;
    int nd = is_text ? 5 : 4;
    *out = *best;
    if (iteration <= 1) return;
    int k = iteration - 2;
    /* Up then down along each dimension in turn; each full sweep halves the step. */
    int sweep = k / (2 * nd);
    double scale = 1.0;
    for (int i = 0; i < sweep; i++) scale /= 2;
    training_move(out, dims[(k / 2) % nd], k % 2 == 0 ? 1 : -1, scale < 0.125 ? 0.125 : scale);
}

char *training_suggestion(const char *feedback)
{
    ad_buf b;
    ad_buf_init(&b);
    while (isspace((unsigned char)*feedback)) feedback++;
    size_t n = strlen(feedback);
    if (n > 300) {
        n = 300;
        while (n && ((unsigned char)feedback[n] & 0xC0) == 0x80) n--; /* whole characters */
    }
    while (n && (isspace((unsigned char)feedback[n - 1]) || feedback[n - 1] == '.' ||
                 feedback[n - 1] == '!'))
        n--;
    if (strncasecmp(feedback, "you must ", 9) == 0) {
        ad_buf_puts(&b, "You must ");
        ad_buf_append(&b, feedback + 9, n > 9 ? n - 9 : 0);
    } else {
        ad_buf_puts(&b, "You must ");
        size_t start = b.len;
        ad_buf_append(&b, feedback, n);
        /* "Be concise" -> "You must be concise"; keep "I", acronyms and names. */
        if (b.len > start + 1 && isupper((unsigned char)b.data[start]) &&
            islower((unsigned char)b.data[start + 1]))
            b.data[start] = (char)tolower((unsigned char)b.data[start]);
    }
    ad_buf_putc(&b, '.');
    return ad_buf_steal(&b, NULL);
}

typedef struct feedback_acc {
    cJSON *suggestions;
    cJSON *cases;
} feedback_acc;

static void training_feedback_visit(void *ud, const feedback_row *f)
{
    feedback_acc *acc = ud;
    char *s = training_suggestion(f->feedback);
    cJSON_AddItemToArray(acc->suggestions, cJSON_CreateString(s));
    free(s);
    /* A response a person rated well (or did not rate) is an answer to keep
     * giving: it becomes an evaluation case. */
    if (f->rating == 0 || f->rating >= 4) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "prompt", f->prompt);
        cJSON_AddStringToObject(c, "expected", f->response);
        cJSON_AddItemToArray(acc->cases, c);
    }
}

static int params_equal(const model_params *a, const model_params *b)
{
    return a->passage_chars == b->passage_chars && a->overlap == b->overlap &&
           a->top_k == b->top_k && a->w_question == b->w_question && a->w_body == b->w_body &&
           a->fewshot == b->fewshot;
}

static int params_tried(const model_params *tried, int n, const model_params *p)
{
    for (int i = 0; i < n; i++)
        if (params_equal(&tried[i], p)) return 1;
    return 0;
}

static char *json_text(const cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);
    if (!s) ad_malloc((size_t)-1);
    return s;
}

/* Everything one run needs, built once. */
typedef struct training_run {
    storage_conn *db;
    const job_row *job;
    atomic_int *stop;
    agent_row agent;
    training_row tr;
    cJSON *statistics;
    feedback_acc feedback;
    unit_set units;             /* for free text: processed with `units_params` */
    model_params units_params;
    int is_text;
    int64_t stray;              /* a candidate whose drop the hold refused */
} training_run;

/* Drops one of the run's candidates, holding the job first, so that a
 * worker whose job is no longer its own (stopped, or taken over by another
 * replica) writes nothing. A drop the hold refused is remembered and done
 * at the run's end, once the job is known not to be this worker's. */
static int training_drop(training_run *r, int64_t vid)
{
    int rc = storage_versions_drop(r->db, vid, r->job->id, NULL);
    if (rc == AD_ECANCELLED) r->stray = vid;
    return rc;
}

/* Units for `p`: datasets do not depend on the passage parameters; free text
 * is split again when they change. */
static int training_units(training_run *r, const model_params *p, ad_err *e)
{
    if (r->units.count && (!r->is_text || (r->units_params.passage_chars == p->passage_chars &&
                                           r->units_params.overlap == p->overlap)))
        return 0;
    unit_set_cleanup(&r->units);
    if (!r->is_text) return unit_set_load(r->db, r->agent.id, &r->units, e);
    stats st;
    stats_init(&st, 1024);
    size_t dups = 0;
    int rc = pipeline_process(r->db, &r->agent, p, r->stop, &r->units, &st, &dups, NULL, NULL, e);
    stats_cleanup(&st);
    r->units_params = *p;
    return rc;
}

/* Builds, indexes and evaluates one candidate; on success `*vid` is a
 * committed version in state "candidate". */
static int training_candidate(training_run *r, int iteration, const model_params *p, int64_t *vid,
                              cJSON **metrics, double *quality, ad_err *e)
{
    int rc = training_units(r, p, e);
    if (rc < 0) return rc;
    char *persona = pipeline_persona(&r->agent, r->statistics, r->feedback.suggestions);
    cJSON *fs = pipeline_fewshot(p, &r->units);
    char *fewshot = json_text(fs);
    char name[64];
    snprintf(name, sizeof(name), "~candidate-%lld-%d", (long long)r->tr.id, iteration);
    version_build b = {.agent_id = r->agent.id,
                       .name = name,
                       .language = r->agent.language,
                       .persona = persona,
                       .fewshot = fewshot,
                       .state = VERSION_CANDIDATE,
                       .job_id = r->job->id,
                       .stop = r->stop};
    rc = pipeline_index_version(r->db, &b, p, &r->units, NULL, vid, e);
    free(persona);
    cJSON_free(fewshot);
    cJSON_Delete(fs);
    if (rc < 0) return rc;
    rc = pipeline_evaluate(r->db, &r->agent, *vid, p, &r->units, r->feedback.cases, r->stop, metrics,
                           quality, e);
    if (rc < 0) training_drop(r, *vid);
    return rc;
}

/* The run's trained data: the best parameters, its quality, the
 * suggestions it used, a summary and the deployment `deploy` describes. */
static char *training_trained_data(const training_run *r, const cJSON *metrics, double quality,
                                   int best_iteration, const model_params *best, double first_quality,
                                   cJSON *deploy)
{
    cJSON *td = cJSON_CreateObject();
    cJSON_AddItemToObject(td, "best_params", model_params_to_json(best));
    cJSON_AddNumberToObject(td, "best_iteration", best_iteration);
    cJSON_AddNumberToObject(td, "quality_score", quality);
    cJSON_AddStringToObject(td, "quality_label",
                            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(metrics, "quality_label")));
    cJSON_AddItemToObject(td, "suggestions", cJSON_Duplicate(r->feedback.suggestions, 1));
    char summary[512];
    snprintf(summary, sizeof(summary),
             "%d iteration(s); the best was #%d with quality %.3f (first: %.3f); version %s %s",
             r->tr.iterations, best_iteration, quality, first_quality, r->tr.name,
             cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(deploy, "deployed")) ? "deployed"
                                                                               : "not deployed");
    cJSON_AddStringToObject(td, "final_summary", summary);
    cJSON_AddItemToObject(td, "deployment", deploy);
    char *trained = json_text(td);
    cJSON_Delete(td);
    return trained;
}

/* The last unit of work: the best candidate becomes the named version, is
 * deployed or refused, and the run and its job are finished. */
static int training_finish(training_run *r, int64_t vid, const cJSON *metrics, double quality,
                           int best_iteration, const model_params *best, double first_quality,
                           ad_err *e)
{
    char *mtxt = json_text(metrics);
    int rc;
    for (int tries = 1;; tries++) {
        deploy_decision d;
        cJSON *deploy = NULL;
        training_outcome o = {.training_id = r->tr.id,
                              .job_id = r->job->id,
                              .name = r->tr.name,
                              .metrics = mtxt,
                              .quality = quality,
                              .best_iteration = best_iteration};
        /* Judged as the version the run's last unit of work publishes. */
        deploy_candidate cand = {.version_id = vid, .name = r->tr.name, .quality = quality};
        rc = pipeline_deploy_verdict(r->db, r->agent.id, &cand, &d, &deploy, e);
        if (rc < 0) break;
        o.verdict = d.verdict;
        char *trained = training_trained_data(r, metrics, quality, best_iteration, best, first_quality, deploy);
        o.trained_data = trained;
        rc = storage_trainings_complete(r->db, &o, e);
        cJSON_free(trained);
        if (rc != AD_ECONFLICT || tries == PIPELINE_DEPLOY_TRIES) break;
    }
    cJSON_free(mtxt);
    return rc;
}

static void training_fail(training_run *r, const char *why)
{
    storage_trainings_fail(r->db, r->tr.id, r->agent.id, r->job->id, why, NULL);
    ad_log(AD_LOG_WARN, "agent %lld: training %lld failed: %s", (long long)r->agent.id,
           (long long)r->tr.id, why);
}

static int training_prepare(training_run *r, ad_err *e)
{
    cJSON *params = r->job->params ? cJSON_Parse(r->job->params) : NULL;
    int64_t tid = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(params, "training_id"));
    cJSON_Delete(params);
    int rc = storage_trainings_get(r->db, r->agent.id, tid, &r->tr, e);
    if (rc < 0) return rc;
    if (tid == 0 || r->tr.id != tid) return ad_err_set(e, AD_ENOTFOUND, "training run not found");
    rc = storage_trainings_start(r->db, r->tr.id, r->job->id, e);
    if (rc < 0) return rc;
    exec_row ex;
    rc = storage_exec_get(r->db, r->agent.id, 0, &ex, e);
    if (rc < 0) return rc;
    cJSON *out = ex.output && ex.status == EXEC_COMPLETED ? cJSON_Parse(ex.output) : NULL;
    exec_row_cleanup(&ex);
    if (!out) return ad_err_set(e, AD_ESTATE, "the agent has no processed material: run the pipeline first");
    r->statistics = cJSON_DetachItemFromObjectCaseSensitive(out, "statistics");
    cJSON_Delete(out);
    r->feedback.suggestions = cJSON_CreateArray();
    r->feedback.cases = cJSON_CreateArray();
    return storage_feedback_each(r->db, r->agent.id, 0, FEEDBACK_MAX, training_feedback_visit,
                                 &r->feedback, e);
}

void pipeline_run_training(storage_conn *db, const job_row *job, atomic_int *stop)
{
    training_run r = {.db = db, .job = job, .stop = stop};
    ad_err e = {0};
    int got = storage_agents_get_by_id(db, job->agent_id, &r.agent, &e);
    if (got == AD_ENOTFOUND) return; /* deleted: its job row went with it */
    if (got < 0) {
        /* As the runner does: counted, so a row that never reads fails the
         * job after the attempts allowed instead of holding its agent. */
        storage_jobs_release(db, job->id, NULL);
        return;
    }
    r.is_text = strcmp(r.agent.source, "text") == 0;
    int rc = training_prepare(&r, &e);

    model_params best;
    model_params_default(&best);
    version_row dv;
    if (rc == 0 && r.agent.deployed_version_id &&
        storage_versions_get(db, r.agent.deployed_version_id, &dv, NULL) == 0) {
        cJSON *pj = cJSON_Parse(dv.params);
        model_params_from_json(&best, pj);
        cJSON_Delete(pj);
        version_row_cleanup(&dv);
    }
    model_params tried[64];
    int ntried = 0, best_iteration = 0;
    int64_t best_vid = 0;
    double best_q = -1, first_q = 0;
    cJSON *best_metrics = NULL;
    for (int it = 1; rc == 0 && it <= r.tr.iterations; it++) {
        if (atomic_load(stop)) {
            rc = AD_ECANCELLED;
            break;
        }
        int64_t t0 = ad_clock_mono_ms();
        model_params p;
        /* Skip parameter sets already tried (the search may come back to one). */
        int k = it;
        do {
            training_next_params(k++, &best, r.is_text, &p);
        } while (it > 1 && k < it + 32 && params_tried(tried, ntried, &p));
        if (ntried < 64) tried[ntried++] = p;
        int64_t vid = 0;
        cJSON *metrics = NULL;
        double q = 0;
        rc = training_candidate(&r, it, &p, &vid, &metrics, &q, &e);
        if (rc < 0) break;
        int64_t ms = ad_clock_mono_ms() - t0;
        cJSON *pj = model_params_to_json(&p);
        char *ptxt = json_text(pj), *mtxt = json_text(metrics);
        rc = storage_trainings_add_iteration(db, r.tr.id, job->id, it, ptxt, mtxt, ms, &e);
        if (rc == 0) series_training_iteration();
        cJSON_free(ptxt);
        cJSON_free(mtxt);
        cJSON_Delete(pj);
        if (it == 1) first_q = q;
        if (rc == 0 && q > best_q) {
            int64_t worse = best_vid;
            best_vid = vid, best_q = q, best = p, best_iteration = it;
            cJSON_Delete(best_metrics);
            best_metrics = metrics;
            if (worse && training_drop(&r, worse) == AD_ECANCELLED) rc = AD_ECANCELLED;
        } else {
            if (training_drop(&r, vid) == AD_ECANCELLED && rc == 0) rc = AD_ECANCELLED;
            cJSON_Delete(metrics);
        }
    }
    if (rc == 0)
        rc = training_finish(&r, best_vid, best_metrics, best_q, best_iteration, &best, first_q, &e);

    int why = atomic_load(stop);
    if (rc == 0) {
        ad_log(AD_LOG_INFO, "agent %lld: training %lld done, best iteration %d (quality %.3f)",
               (long long)r.agent.id, (long long)r.tr.id, best_iteration, best_q);
    } else if (r.tr.id && storage_jobs_hold(db, job->id, NULL) == AD_ECANCELLED) {
        /* The job is no longer this worker's: the run was stopped (it is
         * already `cancelled`), the agent deleted, or another replica took
         * the job over. Only this run's own candidates are dropped (ids are
         * never reused): another run of the agent may start now. */
        if (best_vid) storage_versions_drop(db, best_vid, 0, NULL);
        if (r.stray && r.stray != best_vid) storage_versions_drop(db, r.stray, 0, NULL);
        ad_log(AD_LOG_INFO, "agent %lld: training %lld stopped", (long long)r.agent.id,
               (long long)r.tr.id);
    } else if (why == PIPELINE_RUN_STOPPING || why == PIPELINE_RUN_CANCELLED || rc == AD_EBUSY) {
        /* Shutdown, or a cancel meant for a job that ended just before this
         * one began: the run starts over; the serving version never moved. */
        storage_jobs_release(db, job->id, NULL);
    } else if (rc == AD_EIO || rc == AD_EUNAVAILABLE) {
        /* The database refused a write, or its server was out of reach: the
         * pool puts the job back (pool.c). */
        ad_log(AD_LOG_WARN, "agent %lld: training %lld: %s; it will run again", (long long)r.agent.id,
               (long long)r.tr.id, e.msg);
    } else if (r.tr.id) {
        training_fail(&r, e.msg[0] ? e.msg : "internal error");
    } else {
        storage_jobs_finish(db, job->id, JOB_FAILED, e.msg, NULL);
    }
    cJSON_Delete(best_metrics);
    cJSON_Delete(r.statistics);
    cJSON_Delete(r.feedback.suggestions);
    cJSON_Delete(r.feedback.cases);
    unit_set_cleanup(&r.units);
    training_row_cleanup(&r.tr);
    agent_row_cleanup(&r.agent);
}
