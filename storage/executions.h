/*
 * The execution log (seed 004): one row per agent and pipeline stage, with a
 * task_id fixed when the agent is created, so ids never change across runs
 * and replays. A stage's row holds its inputs, its output (JSON), timings and
 * whether it was replayed; the output of stage k is what stage k+1 reads.
 */
#ifndef AD_STORAGE_EXECUTIONS_H
#define AD_STORAGE_EXECUTIONS_H

#include <stdint.h>

#include "base/err.h"
#include "storage/db.h"
#include "storage/states.h"

#define EXEC_STAGES 4

typedef struct exec_row {
    int task_index;
    char task_id[40];
    char name[32];
    char *expected_output;    /* owned strings: exec_row_cleanup */
    exec_status status;
    char *inputs;             /* JSON */
    char *output;             /* JSON or NULL */
    int64_t job_id;
    int was_replayed;
    int64_t started_at, finished_at, duration_ms, timestamp;
} exec_row;

void exec_row_cleanup(exec_row *r);

/* The stage names, in order: DataProcessor, ModelTrainer, ModelEvaluator, ModelDeployer. */
extern const char *const exec_stage_names[EXEC_STAGES];

/* Writes the agent's four pending rows with fresh task ids (inside the
 * creation transaction). */
int storage_exec_create_log(storage_conn *db, int64_t agent_id, const char *user_id, int64_t now,
                            ad_err *e);

/* Marks a stage running for `job_id` with its inputs; `replayed` sets was_replayed. */
int storage_exec_start(storage_conn *db, int64_t agent_id, int task_index, int64_t job_id,
                       const char *inputs, int replayed, ad_err *e);

/* Stores a stage's inputs and output and marks it completed (or failed, with
 * output {"error": ...}) with its duration. */
int storage_exec_finish(storage_conn *db, int64_t agent_id, int task_index, exec_status status,
                        const char *inputs, const char *output, int64_t duration_ms, ad_err *e);

/* Resets the agent's log: every row back to pending, outputs and timings
 * cleared, task ids kept. AD_ECONFLICT, with nothing reset, while the agent
 * has a job queued or running. */
int storage_exec_reset(storage_conn *db, int64_t agent_id, int *count, ad_err *e);

/* Reads one row; AD_ENOTFOUND when absent. */
int storage_exec_get(storage_conn *db, int64_t agent_id, int task_index, exec_row *out, ad_err *e);

/* Reads the agent's whole log in task order into `rows` (at most `max`);
 * `*count` says how many. */
int storage_exec_list(storage_conn *db, int64_t agent_id, exec_row *rows, int max, int *count,
                      ad_err *e);

#endif
