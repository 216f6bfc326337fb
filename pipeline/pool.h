/*
 * The bounded worker pool: N threads that claim jobs from the durable queue
 * (storage/jobs.h) and run them (pipeline/runner.h). Workers sleep on a
 * condition variable; pipeline_pool_notify() wakes one after a job is queued.
 */
#ifndef AD_PIPELINE_POOL_H
#define AD_PIPELINE_POOL_H

#include <stdint.h>

#include "base/err.h"

typedef struct pipeline_pool pipeline_pool;

/* Re-queues jobs left running by an earlier process, then starts `workers` threads. */
int pipeline_pool_start(pipeline_pool **out, int workers, ad_err *e);

/* A job was queued: wake a worker. Thread-safe. */
void pipeline_pool_notify(pipeline_pool *p);

/* Asks the worker running a job for `agent_id` (if any) to stop at its next
 * check; used when the agent is deleted. Thread-safe. */
void pipeline_pool_cancel_agent(pipeline_pool *p, int64_t agent_id);

/* Worker count and how many are running a job now. */
void pipeline_pool_stats(pipeline_pool *p, int *workers, int *busy);

/* Stops the workers: running jobs are interrupted at their next check and
 * left queued, to resume on the next start. Joins and frees. */
void pipeline_pool_stop(pipeline_pool *p);

#endif
