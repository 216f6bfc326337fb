/*
 * The durable job queue. A job asks the pipeline to run an agent's stages
 * from `start_stage`; it is claimed by one worker at a time, one job per agent
 * at a time. Jobs found `running` at start-up were interrupted and go back
 * to the queue: the pipeline resumes them from their first unfinished stage.
 */
#ifndef AD_STORAGE_JOBS_H
#define AD_STORAGE_JOBS_H

#include <stdint.h>

#include "base/err.h"
#include "storage/db.h"
#include "storage/states.h"

/* A job to queue: its kind (the caller's word, kept as given), the stage it
 * starts from, and its parameters. */
typedef struct job_spec {
    const char *kind;
    int start_stage;
    const char *params;   /* JSON text or NULL */
} job_spec;

typedef struct job_row {
    int64_t id;
    int64_t agent_id;
    char kind[16];        /* the kind it was queued with */
    int start_stage;
    char *params;         /* JSON text or NULL; owned, free with job_row_cleanup */
    int attempts;
} job_row;

void job_row_cleanup(job_row *j);

/* Queues a job. AD_ECONFLICT when the agent already has a queued or running
 * job. */
int storage_jobs_enqueue(storage_conn *db, int64_t agent_id, const job_spec *job, int64_t *job_id,
                         ad_err *e);

/* 0 if the job is still its worker's running job, AD_ECANCELLED if it is
 * gone (its agent was deleted) or no longer running. Every unit of work a
 * job's worker commits makes this check first and writes nothing when it
 * fails, so nothing lands on a stale agent. */
int storage_jobs_hold(storage_conn *db, int64_t job_id, ad_err *e);

/* Claims the oldest queued job whose agent has no running job: 0 and fills
 * `out`, or AD_ENOTFOUND when there is none. */
int storage_jobs_claim(storage_conn *db, job_row *out, ad_err *e);

/* Marks a job JOB_DONE or JOB_FAILED with an optional error. */
int storage_jobs_finish(storage_conn *db, int64_t job_id, job_state state, const char *error,
                        ad_err *e);

/* Fails a job that will not run (again) and puts its agent in error with
 * `why`, in one unit of work. */
int storage_jobs_fail_agent(storage_conn *db, int64_t job_id, int64_t agent_id, const char *why,
                            ad_err *e);

/* Puts a claimed job back in the queue (the worker stopped before finishing
 * it), clearing its agent's eta_at (the job no longer runs), in one unit of
 * work; a job no longer running (cancelled meanwhile) is left as it is. */
int storage_jobs_release(storage_conn *db, int64_t job_id, ad_err *e);

/* Puts a job that is still `running` back in the queue without counting the
 * attempt: called by the worker that held it once the job has returned, so a
 * job whose last write the database refused (disk full, I/O error) runs again
 * once writes succeed. Its agent's eta_at is cleared with it, in one unit of
 * work. Returns 1 when the job was put back, 0 when it was no longer running
 * (finished, failed, released or deleted), or an error. */
int storage_jobs_postpone(storage_conn *db, int64_t job_id, ad_err *e);

/* Start-up recovery: every `running` job (interrupted by the stop of the
 * process) goes back to `queued`, and every agent's eta_at (none runs yet)
 * is cleared, in one unit of work. */
int storage_jobs_requeue_running(storage_conn *db, int *count, ad_err *e);

/* Counts queued and running jobs. */
int storage_jobs_depth(storage_conn *db, int64_t *queued, int64_t *running, ad_err *e);

#endif
