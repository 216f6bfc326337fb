/*
 * The execution log (seed 004): one row per agent and pipeline stage, with a
 * task_id fixed when the agent is created, so ids never change across runs
 * and replays. A stage's row holds its inputs, its output (JSON), timings and
 * whether it was replayed; the output of stage k is what stage k+1 reads.
 * The stages' names and expected outputs are the caller's (pipeline/plan.h):
 * storage stores them as given and knows no stage.
 */
#ifndef AD_STORAGE_EXECUTIONS_H
#define AD_STORAGE_EXECUTIONS_H

#include <stdint.h>

#include "base/err.h"
#include "storage/db.h"
#include "storage/states.h"

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

/* The rows of a new agent's log: `count` stages, named and described by the
 * caller, in task order. */
typedef struct exec_plan {
    const char *const *names;
    const char *const *outputs;   /* what each stage is expected to produce */
    int count;
} exec_plan;

/*
 * What a stage's unit of work writes to the log together with the stage's
 * own rows, so that both commit or neither does: the stage's row completed
 * with its inputs, output and duration, then the agent's place in the
 * pipeline, then either the next stage's row started or, after the last
 * stage, the agent ready and the job done. The runner fills in where the job
 * is, the stage what it did; storage writes it as given. A job that is no
 * longer running (cancelled, or its agent deleted) fails the unit of work
 * with AD_ECANCELLED and nothing is written.
 */
typedef struct exec_step {
    int64_t agent_id;
    int64_t job_id;
    int task_index;           /* the stage that finished */
    const char *inputs;       /* JSON */
    const char *output;       /* JSON */
    int64_t duration_ms;
    const char *next_stage;   /* the next stage's name; NULL after the last stage */
    int progress;             /* the agent's progress with this stage done */
    int replayed;             /* the next stage's row is marked was_replayed */
    int64_t eta_at;           /* wall ms the job should end, shown on status; 0: unknown */
    /* For a stage whose output names the row its unit of work creates (a new
     * version): called inside the unit of work with that row's id, returns
     * the output (JSON, allocated with malloc; storage frees it) in place of
     * `output`. NULL otherwise. */
    char *(*output_for)(void *ud, int64_t row_id);
    void *output_ud;
} exec_step;

/* A job starts (or resumes) at stage `task_index`, named `stage`: the agent
 * is processing at that stage with `progress`, expected to end at `eta_at`
 * (wall ms; 0: unknown), and the stage's row is running for the job
 * (was_replayed when `replayed`). One unit of work; AD_ECANCELLED, with
 * nothing written, when the job is no longer running. */
int storage_exec_start_job(storage_conn *db, int64_t agent_id, int64_t job_id, int task_index,
                           const char *stage, int progress, int replayed, int64_t eta_at, ad_err *e);

/* A stage failed for good: its row failed with `output` ({"error": ...}),
 * the agent in error at `stage` with `progress` and `reason`, and the job
 * failed with `reason`. One unit of work; AD_ECANCELLED, with nothing
 * written, when the job is no longer running. */
int storage_exec_fail_stage(storage_conn *db, int64_t agent_id, int64_t job_id, int task_index,
                            const char *stage, int progress, const char *reason, const char *output,
                            ad_err *e);

/* A job with no stage left to run (every one already done by this job): the
 * agent is ready at 100 % and the job done, in one unit of work. */
int storage_exec_finish_job(storage_conn *db, int64_t agent_id, int64_t job_id, ad_err *e);

/* Resets the agent's log: every row back to pending, outputs and timings
 * cleared, task ids kept. AD_ECONFLICT, with nothing reset, while the agent
 * has a job queued or running; AD_ENOTFOUND when the agent has no log (it
 * is gone). */
int storage_exec_reset(storage_conn *db, int64_t agent_id, int *count, ad_err *e);

/* What recent completed stage runs took, per task index: over the last
 * `per_stage` completed rows of each (by finish time) whose agent's material
 * is at least `min_bytes`, how many there were and their summed durations
 * and material sizes. */
typedef struct exec_stage_sample {
    int64_t count;
    int64_t total_ms;
    int64_t total_bytes;
} exec_stage_sample;

/* Fills `out[0..stages-1]` (task indexes 0..stages-1; zeros where none). */
int storage_exec_stage_samples(storage_conn *db, int stages, int per_stage, int64_t min_bytes,
                               exec_stage_sample *out, ad_err *e);

/* Reads one row; AD_ENOTFOUND when absent. */
int storage_exec_get(storage_conn *db, int64_t agent_id, int task_index, exec_row *out, ad_err *e);

/* Reads the agent's whole log in task order into `rows` (at most `max`);
 * `*count` says how many. */
int storage_exec_list(storage_conn *db, int64_t agent_id, exec_row *rows, int max, int *count,
                      ad_err *e);

#endif
