/*
 * The four pipeline stages. Each reads the agent's material or the stored
 * outputs of earlier stages and produces its own output (JSON for the
 * execution log) plus the rows it owns (units, a version, metrics, the
 * deployed pointer).
 *
 * Contract: a stage computes outside any transaction, then opens one with
 * storage_begin() and writes its rows; it returns 0 with that transaction
 * still open, so the runner records the execution-log row and commits all of
 * it at once. On failure the stage has rolled back (or never began) and `e`
 * says why.
 */
#ifndef AD_PIPELINE_STAGES_H
#define AD_PIPELINE_STAGES_H

#include <cjson/cJSON.h>
#include <stdatomic.h>

#include "base/err.h"
#include "model/params.h"
#include "model/stats.h"
#include "storage/agents.h"

typedef struct stage_ctx {
    storage_conn *db;
    const agent_row *agent;
    atomic_int *stop;           /* non-zero: give up with AD_ECANCELLED */
    model_params params;
    const char *version_name;   /* NULL: the next default name */
    const cJSON *suggestions;   /* persona instructions from feedback, may be NULL */
    cJSON *inputs;              /* set by the stage; the runner stores and frees it */
    cJSON *output;
} stage_ctx;

typedef int (*stage_fn)(stage_ctx *c, ad_err *e);

int stage_process(stage_ctx *c, ad_err *e);
int stage_train(stage_ctx *c, ad_err *e);
int stage_evaluate(stage_ctx *c, ad_err *e);
int stage_deploy(stage_ctx *c, ad_err *e);

extern const stage_fn pipeline_stages[4];

/*
 * The pieces the stages are made of, shared with iterative training
 * (pipeline/training.c). None of them commits: writes happen in the caller's
 * transaction.
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
/* Loads the stored DataProcessor output (the units table). */
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

/* Creates version `name` and indexes `units` under it. */
int pipeline_index_version(storage_conn *db, const agent_row *agent, const model_params *params,
                           const unit_set *units, const char *name, const char *persona,
                           const char *fewshot, atomic_int *stop, int64_t *version_id, ad_err *e);

/* Evaluates version `vid` on queries it was not built from, plus
 * `extra_cases` ([{prompt, expected}] from feedback, may be NULL). */
int pipeline_evaluate(storage_conn *db, const agent_row *agent, int64_t vid, const model_params *params,
                      const unit_set *units, const cJSON *extra_cases, atomic_int *stop,
                      cJSON **metrics, double *quality, ad_err *e);

/* Deploys `vid` unless it scores clearly worse than the deployed version, in
 * which case it is recorded as rejected; `*output` says which and why. */
int pipeline_deploy_version(storage_conn *db, int64_t agent_id, int64_t vid, cJSON **output, ad_err *e);

#endif
