/*
 * Iterative training (crewAI's `train -n N`): each iteration tries one set of
 * parameters, chosen by a deterministic search that refines around the best
 * so far, builds and evaluates a candidate version with the pipeline's own
 * stages, and records {params, metrics, duration_ms}. The best candidate
 * becomes the run's model version, deployed unless it is clearly worse than
 * the one serving. The serving version is untouched until that last
 * unit of work, so inference goes on throughout and a crash leaves it serving.
 */
#ifndef AD_PIPELINE_TRAINING_H
#define AD_PIPELINE_TRAINING_H

#include <stdatomic.h>

#include "model/params.h"
#include "storage/jobs.h"

/* Runs a "train" job to its end; finishes or releases the job row itself. */
void pipeline_run_training(storage_conn *db, const job_row *job, atomic_int *stop);

/* The parameters iteration `iteration` (1-based) tries, given the best so
 * far and the agent's source ("text" or "dataset"). Iteration 1 is `best`
 * itself: the baseline. Deterministic. */
void training_next_params(int iteration, const model_params *best, int is_text,
                          model_params *out);

/* Turns a piece of feedback into a persona instruction ("You must ..."); the
 * caller frees it. */
char *training_suggestion(const char *feedback);

#endif
