/*
 * The bounded worker pool: N threads that claim jobs from the durable queue
 * (storage/jobs.h) and run them (pipeline/runner.h), as one replica with an
 * id of its own (the jobs' lease owner). Idle workers sleep on a condition
 * variable until pipeline_pool_notify() (a job was queued here), the
 * listener (PostgreSQL: a job was queued or put back by any replica, or a
 * dead replica's lease lapsed) or a worker that just claimed one (there may
 * be more) wakes one. A heartbeat thread renews the leases of the jobs the
 * workers run.
 */
#ifndef AD_PIPELINE_POOL_H
#define AD_PIPELINE_POOL_H

#include <stdint.h>

#include "base/err.h"

typedef struct pipeline_pool pipeline_pool;

/* The lease a running job is held by when none is configured (ms). */
#define PIPELINE_POOL_LEASE_MS 15000

/* Makes the replica's id (`<hostname>:<pid>:<8 random hex>`, logged once),
 * recovers the jobs an earlier process left running (storage_jobs_recover),
 * then starts `workers` threads holding their jobs by leases of `lease_ms`,
 * the heartbeat, and on PostgreSQL the listener. */
int pipeline_pool_start(pipeline_pool **out, int workers, int64_t lease_ms, ad_err *e);

/* This replica's id, the lease owner of its jobs; valid until the pool stops. */
const char *pipeline_pool_replica(const pipeline_pool *p);

/* A job was queued: wake a worker. Thread-safe. */
void pipeline_pool_notify(pipeline_pool *p);

/* Asks the worker running a job for `agent_id` (if any) to stop at its next
 * check; used when the agent is deleted. Thread-safe. */
void pipeline_pool_cancel_agent(pipeline_pool *p, int64_t agent_id);

/* Worker count and how many are running a job now. */
void pipeline_pool_stats(pipeline_pool *p, int *workers, int *busy);

/* Stops the workers: running jobs are interrupted at their next check and
 * released (queued, their leases cleared), for any replica, or this one's
 * next start, to resume at once. Joins and frees. */
void pipeline_pool_stop(pipeline_pool *p);

#endif
