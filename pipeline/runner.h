/*
 * Runs one job: the agent's stages from the job's start stage, each storing
 * its output in the execution log before the next starts. Replay and crash
 * recovery are the same path: a stage whose output this job already stored
 * is skipped, and later stages read the stored outputs of earlier ones.
 */
#ifndef AD_PIPELINE_RUNNER_H
#define AD_PIPELINE_RUNNER_H

#include <stdatomic.h>

#include "storage/jobs.h"

/* Why a running job was asked to stop (the value of the `stop` flag). */
enum { PIPELINE_RUN_CANCELLED = 1, PIPELINE_RUN_STOPPING = 2 };

/* Runs `job` to its end, failure, or a stop request. Finishes or releases the
 * job row itself; never returns an error (failures are stored on the agent). */
void pipeline_run_job(storage_conn *db, const job_row *job, atomic_int *stop);

/* Fails a job that will not be run (again): the job row, and the agent's
 * status or the training run it belongs to, record `why`. */
void pipeline_fail_job(storage_conn *db, const job_row *job, const char *why);

#endif
