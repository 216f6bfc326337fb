/*
 * The four pipeline stages (their names: pipeline/plan.h). Each reads the
 * agent's material or the stored outputs of earlier stages and produces its
 * own output (JSON for the execution log) plus the rows it owns (units, a
 * version, metrics, the deployed pointer).
 *
 * Contract: a stage computes, reading as it needs, then hands its rows and
 * its execution-log record to ONE storage call, a unit of work that writes
 * them atomically. The runner prepares the record (c->step: the agent, the
 * job, the stage's task index, the next stage's start or the job's end); the
 * stage adds its inputs, output and duration (stage_record). A stage returns
 * 0 once that unit of work has committed; on failure nothing of it was
 * written and `e` says why, with the code of the call that failed (a busy or
 * failing database keeps its code, so the runner retries instead of failing
 * the agent).
 */
#ifndef AD_PIPELINE_STAGES_H
#define AD_PIPELINE_STAGES_H

#include <cjson/cJSON.h>
#include <stdatomic.h>

#include "base/err.h"
#include "base/uuid.h"
#include "model/params.h"
#include "model/stats.h"
#include "pipeline/eta.h"
#include "pipeline/plan.h"
#include "storage/agents.h"
#include "storage/executions.h"
#include "storage/versions.h"

typedef struct stage_ctx {
    storage_conn *db;
    const agent_row *agent;
    atomic_int *stop;           /* non-zero: give up with AD_ECANCELLED */
    model_params params;
    const char *version_name;   /* NULL: the next default name */
    const cJSON *suggestions;   /* persona instructions from feedback, may be NULL */
    cJSON *inputs;              /* set by the stage, recorded in its log row */
    cJSON *output;
    exec_step step;             /* the log record the runner prepared */
    int64_t started_ms;         /* monotonic clock when the stage began */
    const eta_run *eta;         /* the job's stage timings so far, for step.eta_at; NULL: none */
    char *inputs_json;          /* texts of inputs and output for the record */
    char *output_json;
} stage_ctx;

/* Frees what a stage left in `c`: its inputs, output and their texts. */
void stage_ctx_cleanup(stage_ctx *c);

typedef int (*stage_fn)(stage_ctx *c, ad_err *e);

int stage_process(stage_ctx *c, ad_err *e);
int stage_train(stage_ctx *c, ad_err *e);
int stage_evaluate(stage_ctx *c, ad_err *e);
int stage_deploy(stage_ctx *c, ad_err *e);

extern const stage_fn pipeline_stages[PIPELINE_STAGES];

/*
 * The pieces the stages are made of, shared with iterative training
 * (pipeline/training.c). Only pipeline_index_version writes, in a unit of
 * work of its own.
 */

/* An agent's processed material, in memory. */
typedef struct unit_mem {
    char *question, *body, *answer, *category, *probe;
} unit_mem;

typedef struct unit_set {
    unit_mem *items;
    size_t count, cap;
} unit_set;

void unit_set_cleanup(unit_set *s);
/* Loads the stored DataProcessor output (the units table). On failure `s`
 * is empty and holds nothing to free. */
int unit_set_load(storage_conn *db, int64_t agent_id, unit_set *s, ad_err *e);

/* Turns the agent's material into units with `params` (passage size and
 * overlap matter for free text), without writing anything. `st` and
 * `categories` receive statistics. */
int pipeline_process(storage_conn *db, const agent_row *agent, const model_params *params,
                     atomic_int *stop, unit_set *units, stats *st, size_t *duplicates,
                     cJSON *categories, size_t *material_len, ad_err *e);

/* The persona: who the agent is, its topics, the grounding rules, and the
 * suggestions drawn from feedback (a JSON array of strings, may be NULL). */
char *pipeline_persona(const agent_row *agent, const cJSON *statistics, const cJSON *suggestions);

/* Few-shot examples: the first pair of each category, then pairs in order. */
cJSON *pipeline_fewshot(const model_params *params, const unit_set *units);

/* Builds version `b` (the caller sets its agent, name, persona, few-shot
 * examples, state, job and stop flag) with `params` and `units` as its
 * passages, together with the log record of `stage` when a stage builds it
 * (NULL otherwise), completed once the index is built in memory: one unit
 * of work (storage_versions_build). */
int pipeline_index_version(storage_conn *db, version_build *b, const model_params *params,
                           const unit_set *units, stage_ctx *stage, int64_t *version_id, ad_err *e);

/* Evaluates version `vid` on queries it was not built from, plus
 * `extra_cases` ([{prompt, expected}] from feedback, may be NULL). */
int pipeline_evaluate(storage_conn *db, const agent_row *agent, int64_t vid, const model_params *params,
                      const unit_set *units, const cJSON *extra_cases, atomic_int *stop,
                      cJSON **metrics, double *quality, ad_err *e);

/* A deployment decided against a deployed version that another deployment
 * replaced meanwhile is decided again, at most this many times in all. */
#define PIPELINE_DEPLOY_TRIES 3

/* The version a deployment is decided for, as it will stand when the unit of
 * work that carries out the verdict commits: a training run's best candidate
 * is published there under the run's name with its measured quality, so it
 * is judged by those, not by its candidate row (no quality yet). The rest
 * says which deployment records it and who asks. */
typedef struct deploy_candidate {
    int64_t version_id;
    const char *name;
    double quality;
    int force;                  /* skip the gate: deployed whatever the numbers (recorded) */
    int64_t deployment_id;      /* the pending deployment pushed; 0: a new one */
    const char *uuid;           /* that pending deployment's uuid (NULL for a new one) */
    const char *created_by;     /* a new one's maker; NULL: "system" */
    const char *actor;          /* who pushes, for the audit log; NULL: "system" */
    const char *request_id;     /* NULL outside a request */
} deploy_candidate;

/* A gate decision ready for storage: `verdict`'s strings point into this
 * struct, so it is used where it was filled, not copied away from it. */
typedef struct deploy_decision {
    version_verdict verdict;
    char note[256];
    char gate[1024];            /* JSON: the numbers compared and the decision */
    char uuid[AD_UUID_LEN];     /* the deployment's id */
} deploy_decision;

/* The one deployment gate: `cand` is deployed unless it scores clearly
 * worse (by DEPLOY_MARGIN, pipeline/stages.c) than the agent's deployed
 * version, or when forced. The verdict is made against the deployed version
 * as read now (the unit of work that carries it out fails with AD_ECONFLICT
 * if that one is replaced meanwhile, and the caller decides again). Writes
 * nothing; fills `d` and `*output` (what the execution log and a training's
 * trained data show). */
int pipeline_deploy_verdict(storage_conn *db, int64_t agent_id, const deploy_candidate *cand,
                            deploy_decision *d, cJSON **output, ad_err *e);

/* Decides and pushes `cand` (a client's deployment), deciding again when
 * another switch wins the race, at most PIPELINE_DEPLOY_TRIES times; `uuid`
 * receives the deployment's id. Errors as storage_deployments_push. */
int pipeline_deploy(storage_conn *db, int64_t agent_id, const deploy_candidate *cand, char uuid[AD_UUID_LEN],
                    ad_err *e);

#endif
