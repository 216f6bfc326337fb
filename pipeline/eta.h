/*
 * How long an agent's pipeline job has left (GET status's eta_s). Each stage
 * is modelled as ms = fixed + per_MiB x MiB of the agent's material. The
 * per-MiB rates start from BENCHMARKS.md (issue 10's 10 MiB free-text run,
 * median ms per stage: DataProcessor 463, ModelTrainer 318, ModelEvaluator
 * 103, ModelDeployer 0, so 46, 32, 10 and 0 ms/MiB); the fixed part is 4 ms
 * a stage (a 20 KB agent goes from POST to ready in 16 ms over its four
 * stages, same table). At start the rates are seeded from recent stage runs
 * in the execution log (eta_seed), then learned from every completed stage
 * of a large enough agent (eta_learn): an exponentially weighted average
 * held in atomics, so workers learn and read it without a lock. Finally a
 * job's own completed stages scale its remaining ones (actual / predicted,
 * clamped to [ETA_SCALE_MIN, ETA_SCALE_MAX]): a slow machine or a heavy
 * material shows at once.
 */
#ifndef AD_PIPELINE_ETA_H
#define AD_PIPELINE_ETA_H

#include <stdint.h>

#include "base/err.h"
#include "storage/db.h"

/* Stage runs of agents with less material than this teach the rates
 * nothing: their time is the fixed part and noise. */
#define ETA_LEARN_MIN_BYTES (64 * 1024)
/* How many recent runs of each stage eta_seed averages. */
#define ETA_SEED_RUNS 50
/* Bounds of a job's own scale factor. */
#define ETA_SCALE_MIN 0.25
#define ETA_SCALE_MAX 4.0

/* Puts the model back to BENCHMARKS.md's figures (what a process starts with). */
void eta_reset(void);

/* Seeds the per-MiB rates from the last ETA_SEED_RUNS completed runs of each
 * stage in the execution log (agents of at least ETA_LEARN_MIN_BYTES); a
 * stage with no such run keeps its rate. */
int eta_seed(storage_conn *db, ad_err *e);

/* The model's time for `stage` (0..PIPELINE_STAGES-1) on `bytes` of material, in ms. */
double eta_stage_ms(int stage, int64_t bytes);

/* Teaches the model that `stage` took `ms` on `bytes` of material (ignored
 * under ETA_LEARN_MIN_BYTES). Safe from any thread; takes no lock. */
void eta_learn(int stage, int64_t bytes, int64_t ms);

/* One job's view: its material's size and what its completed stages took
 * against what the model predicted for them. Caller-owned, one thread. */
typedef struct eta_run {
    int64_t bytes;
    int64_t actual_ms;
    double predicted_ms;
} eta_run;

void eta_run_init(eta_run *r, int64_t bytes);

/* Counts `stage`, done in `ms`, in the job's scale (call it before
 * eta_learn, so the prediction it is compared with is the one made). */
void eta_run_stage_done(eta_run *r, int stage, int64_t ms);

/* The job's remaining time in ms, from the start of `from_stage` to the end
 * of the last stage: the model's prediction times the job's scale. */
int64_t eta_run_remaining_ms(const eta_run *r, int from_stage);

#endif
