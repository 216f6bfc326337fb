/*
 * The durable job queue. A job asks the pipeline to run an agent's stages
 * from `start_stage` (or a training run, or a replay); one job per agent is
 * queued or running at a time.
 *
 * The lease. A running job is held by one replica (one agentd process) under
 * a lease: `lease_owner`, the replica's id (`<hostname>:<pid>:<8 hex>`, new
 * at every start), and `lease_expires_at`, when the hold lapses unless
 * renewed. The claim takes the oldest job that is queued, or running under
 * another replica's lease that has expired, and writes this replica's lease
 * (now + lease_ms). The lease is renewed by the replica's heartbeat
 * (pipeline/pool.c: every lease_ms/3, one statement for all its jobs,
 * storage_jobs_renew) and by every hold.
 *
 * When a replica dies (SIGKILL, a lost machine) nothing renews its leases:
 * once they expire, another replica's claim takes its jobs (attempts + 1),
 * and the runner resumes each from its first stage not completed, since each
 * stage's output was committed with its log row. A replica stopped gently
 * releases its jobs instead, and they are claimed at once. On SQLite only
 * one process uses the data dir (its lock proves it), so start-up recovery
 * expires every lease and the interrupted jobs resume at once; on PostgreSQL
 * start-up touches no running job, which may be a live replica's.
 *
 * Why a job never runs on two replicas: every unit of work a worker commits
 * first holds its job (storage_jobs_hold: running AND owned by this
 * replica), under the unit-of-work lock and the job row's lock, and writes
 * nothing when the hold fails. A claim takes the row's lock too (SQLite's
 * write lock; on PostgreSQL FOR UPDATE SKIP LOCKED, which also lets replicas
 * claim in parallel without the unit-of-work lock), so a takeover and a hold
 * are ordered: the replica whose lease was taken over finds its hold
 * refused at its next unit of work and stops, having written nothing since.
 * finish, fail_agent, release and postpone likewise act only on a job this
 * replica holds. Within one replica, a claim never takes a job whose lease
 * is its own (a worker of this process holds it).
 *
 * Wake-ups: enqueue, release and postpone send a notification on
 * PostgreSQL (NOTIFY agentd_jobs, delivered when their transaction
 * commits), which a listener (storage_jobs_wait) turns into a worker's
 * wake-up on every replica.
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

/* Queues a job and wakes the replicas' workers (PostgreSQL: a notification
 * sent when the caller's unit of work commits). AD_ECONFLICT when the agent
 * already has a queued or running job. */
int storage_jobs_enqueue(storage_conn *db, int64_t agent_id, const job_spec *job, int64_t *job_id,
                         ad_err *e);

/* The longest replica id (lease owner) storage keeps, with its NUL. */
#define STORAGE_JOBS_OWNER_MAX 160

/* Sets this replica's lease owner and lease length (ms), which hold, finish,
 * fail_agent, release and postpone use: called once at start, before any
 * worker runs (the value is copied; a longer owner is cut to fit). Until
 * then the owner is "" and holds nothing. Thread-safe. */
void storage_jobs_set_owner(const char *owner, int64_t lease_ms);

/* 0 if the job is still running under this replica's lease, which it
 * renews; AD_ECANCELLED if it is gone (its agent was deleted), no longer
 * running, or its lease was taken over by another replica. Every unit of
 * work a job's worker commits makes this check first and writes nothing
 * when it fails, so nothing lands on a stale agent, nor twice. */
int storage_jobs_hold(storage_conn *db, int64_t job_id, ad_err *e);

/* Claims, for `owner` with a lease of `lease_ms`, the oldest job that is
 * queued or running under another owner's expired lease: 0 and fills `out`
 * (attempts counts this claim), or AD_ENOTFOUND when there is none. One
 * statement, outside any unit of work: on PostgreSQL it locks the row it
 * takes and skips rows other replicas are taking. */
int storage_jobs_claim(storage_conn *db, const char *owner, int64_t lease_ms, job_row *out,
                       ad_err *e);

/* The heartbeat: renews the lease (now + `lease_ms`) of every running job
 * `owner` holds, in one statement; `*renewed` (may be NULL) counts them. On
 * PostgreSQL it never waits for a row lock: a job whose row another
 * transaction holds is left to that transaction (its hold renews it). */
int storage_jobs_renew(storage_conn *db, const char *owner, int64_t lease_ms, int *renewed,
                       ad_err *e);

/* When a job running under another owner's lease may next be taken over:
 * the earliest lease_expires_at (ms since the epoch; possibly past) of
 * running jobs `owner` does not hold, or 0 when there is none. */
int storage_jobs_next_expiry(storage_conn *db, const char *owner, int64_t *expires_at, ad_err *e);

/* Marks a job this replica holds JOB_DONE or JOB_FAILED with an optional
 * error; AD_ECANCELLED (nothing changed) when it does not hold it. */
int storage_jobs_finish(storage_conn *db, int64_t job_id, job_state state, const char *error,
                        ad_err *e);

/* Fails a job that will not run (again) and puts its agent in error with
 * `why`, in one unit of work; AD_ECANCELLED (nothing changed) when this
 * replica does not hold the job. */
int storage_jobs_fail_agent(storage_conn *db, int64_t job_id, int64_t agent_id, const char *why,
                            ad_err *e);

/* Puts a job this replica holds back in the queue (the worker stopped
 * before finishing it), clearing its lease and its agent's eta_at (the job
 * no longer runs), and wakes the replicas' workers, in one unit of work; a
 * job no longer held (cancelled meanwhile, taken over) is left as it is. */
int storage_jobs_release(storage_conn *db, int64_t job_id, ad_err *e);

/* Puts a job this replica still holds back in the queue without counting
 * the attempt: called by the worker that held it once the job has
 * returned, so a job whose last write the database refused (disk full, I/O
 * error) runs again once writes succeed. Its lease and its agent's eta_at
 * are cleared and the replicas' workers woken, in one unit of work. Returns
 * 1 when the job was put back, 0 when it was no longer held (finished,
 * failed, released, deleted or taken over), or an error. */
int storage_jobs_postpone(storage_conn *db, int64_t job_id, ad_err *e);

/* Start-up recovery. SQLite: every running job was interrupted by the stop
 * of the process (the data dir's lock proves no other runs it): its lease
 * expires now, so the next claim resumes it, and every agent's eta_at (none
 * runs yet) is cleared, in one unit of work; `*count` (may be NULL) counts
 * those jobs. PostgreSQL: nothing is touched (a running job may be a live
 * replica's; a dead one's lease expires by itself) and `*count` is 0. */
int storage_jobs_recover(storage_conn *db, int *count, ad_err *e);

/* 1 when other processes share the queue (PostgreSQL), so that jobs may be
 * queued or freed elsewhere and a listener (storage_jobs_wait) is worth
 * running; 0 on SQLite. */
int storage_jobs_shared(storage_conn *db);

/* Waits up to `timeout_ms` for a notification that a job was queued or put
 * back by any replica: 1 when one or more arrived, 0 on timeout, a negative
 * code when the connection failed (wait again later: the next call listens
 * anew). `db` is a connection kept for waiting (its thread's, used for
 * nothing else but storage_jobs_next_expiry); its first call LISTENs. On
 * SQLite returns 0 at once (nothing to listen to). */
int storage_jobs_wait(storage_conn *db, int timeout_ms, ad_err *e);

/* Counts queued and running jobs. */
int storage_jobs_depth(storage_conn *db, int64_t *queued, int64_t *running, ad_err *e);

#endif
