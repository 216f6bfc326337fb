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
#include <sqlite3.h>
#include <stdatomic.h>

#include "base/err.h"
#include "model/params.h"
#include "storage/agents.h"

typedef struct stage_ctx {
    sqlite3 *db;
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

#endif
