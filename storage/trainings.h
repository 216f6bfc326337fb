/*
 * Iterative training runs (seeds 000/001): a run per POST .../train, one row
 * per iteration with its parameters, metrics and duration, and the run's
 * trained data (best parameters, quality, suggestions, summary).
 */
#ifndef AD_STORAGE_TRAININGS_H
#define AD_STORAGE_TRAININGS_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "storage/db.h"
#include "storage/states.h"
#include "storage/versions.h"

typedef struct training_row {
    int64_t id;
    int64_t agent_id;
    char name[65];
    int iterations;
    training_state status;
    int done_iterations;
    int best_iteration;       /* 0 when none yet */
    int64_t version_id;
    char *trained_data;       /* JSON or NULL; owned: training_row_cleanup */
    char *error;
    int64_t created_at, started_at, finished_at;
} training_row;

void training_row_cleanup(training_row *t);

/* Queues a run: the training row and its job of kind `job_kind` (the
 * caller's word), in one unit of work. The job's params link it to the run:
 * {"training_id": <the run's id>}. The name must be free among the agent's
 * versions (AD_EEXIST) and no run may be queued or running for the agent
 * (AD_ECONFLICT). */
int storage_trainings_create(storage_conn *db, int64_t agent_id, const char *name, int iterations,
                             const char *job_kind, int64_t *training_id, ad_err *e);

/* Reads one run of the agent; `training_id` 0 means the latest. */
int storage_trainings_get(storage_conn *db, int64_t agent_id, int64_t training_id, training_row *out,
                          ad_err *e);

/* The agent's queued or running run, if any (AD_ENOTFOUND otherwise). */
int storage_trainings_active(storage_conn *db, int64_t agent_id, training_row *out, ad_err *e);

/* Starting (again, after a crash or a takeover), in one unit of work that
 * first holds the run's job `job_id` (storage_jobs_hold; 0: no job to hold):
 * status running, earlier iterations dropped, and the agent's leftover
 * candidate versions (of a run a crash interrupted) deleted. AD_ECANCELLED
 * when the run is no longer queued or running (it was stopped before its
 * worker got to it) or the job is no longer this replica's. */
int storage_trainings_start(storage_conn *db, int64_t training_id, int64_t job_id, ad_err *e);

/* Records iteration `iteration` and bumps done_iterations, in one unit of
 * work that first holds the run's job `job_id` (0: no job to hold): a run
 * that is no longer running (stopped) records nothing more, and a job no
 * longer this replica's (taken over) is AD_ECANCELLED with nothing written
 * into the run its new owner restarted. */
int storage_trainings_add_iteration(storage_conn *db, int64_t training_id, int64_t job_id,
                                    int iteration, const char *params, const char *metrics,
                                    int64_t duration_ms, ad_err *e);

/* How a run that tried every iteration ends. */
typedef struct training_outcome {
    int64_t training_id;
    int64_t job_id;
    const char *name;           /* the run's name, which its best candidate takes */
    const char *metrics;        /* the best candidate's metrics (JSON) and quality */
    double quality;
    int best_iteration;
    const char *trained_data;   /* JSON */
    version_verdict verdict;    /* the best candidate deployed or rejected */
} training_outcome;

/* The run's last unit of work: its best candidate becomes the version named
 * as the run, trained, with its metrics, and is deployed or rejected as
 * `o->verdict` says; the run is done with its trained data and its job done.
 * All or nothing: AD_ECANCELLED when the job no longer runs (the run was
 * stopped), AD_ECONFLICT when the agent's deployed version is no longer the
 * one the verdict was decided against (decide again). */
int storage_trainings_complete(storage_conn *db, const training_outcome *o, ad_err *e);

/* A run failed (or its job will not run again), in one unit of work: the
 * agent's candidate versions deleted, the run failed with `why` and its job
 * `job_id` failed. AD_ECANCELLED, with nothing written, when the job is no
 * longer running (the run was stopped meanwhile and stays cancelled). */
int storage_trainings_fail(storage_conn *db, int64_t training_id, int64_t agent_id, int64_t job_id,
                           const char *why, ad_err *e);

/* Visits a run's iterations in order. */
typedef void (*iteration_visit_fn)(void *ud, int iteration, const char *params,
                                   const char *metrics, int64_t duration_ms);
int storage_trainings_iterations(storage_conn *db, int64_t training_id, iteration_visit_fn fn, void *ud,
                                 ad_err *e);

/* ---- training groups: one run per listed agent, started together ---- */

/* Why one listed agent keeps a group from starting. */
typedef enum group_refusal {
    GROUP_OK = 0,
    GROUP_UNKNOWN,      /* no such agent */
    GROUP_NOT_READY,    /* no deployed model yet */
    GROUP_BUSY,         /* a job (training, pipeline, replay) is queued or running */
    GROUP_NAME_TAKEN    /* the agent already has a version with the group's name */
} group_refusal;

/* The model version name of group `group_id`'s runs ("group-<id>"), in `out`
 * (at least 32 bytes). Group ids are never reused, so the name is unique. */
void storage_groups_version_name(int64_t group_id, char *out, size_t cap);

/* Starts a group: the group row, then one run of `cycles` iterations and its
 * job for every agent in `user_ids` (distinct, valid ids), in one
 * unit of work: either every run is queued or none is; the jobs are queued
 * as storage_trainings_create queues one. When an agent refuses,
 * `why[i]` says why for each index i and the call returns AD_ENOTFOUND (some
 * unknown), AD_ESTATE (some not ready or busy) or AD_EEXIST (name taken),
 * having written nothing. */
int storage_groups_start(storage_conn *db, const char *const *user_ids, size_t n, int cycles,
                         const char *job_kind, int64_t *group_id, group_refusal *why, ad_err *e);

typedef struct group_row {
    int64_t id;
    int cycles;
    int total_agents;           /* listed at start (deleted agents stay counted) */
    int64_t created_at;
    int64_t stopped_at;         /* 0 unless POST /training/stop stopped it */
} group_row;

/* The latest group (AD_ENOTFOUND when none was ever started), or, when
 * `only` (a JSON array of user_ids) is not NULL, the latest with a run of
 * one of those agents. */
int storage_groups_latest(storage_conn *db, const char *only, group_row *out, ad_err *e);

/* One run of a group as the status reads it; strings borrowed during the visit. */
typedef struct group_run {
    const char *user_id;
    training_state status;
    int done_iterations;
    int iterations;
    double best_quality;        /* best quality its iterations reached; -1 before the first */
    double version_quality;     /* quality of the version it produced; -1 unless done */
    double deployed_quality;    /* quality of the agent's serving version; -1 if unknown */
    int64_t finished_at;        /* 0 while queued or running */
} group_run;

typedef void (*group_run_fn)(void *ud, const group_run *r);
/* Visits the runs of group `group_id` whose agents still exist, by user_id. */
int storage_groups_runs(storage_conn *db, int64_t group_id, group_run_fn fn, void *ud, ad_err *e);

/* Stops group training: every group run still queued or running (of the
 * latest group or an earlier one) ends `cancelled` with its job and the
 * caller's `why` as its error, and each of their groups records
 * `stopped_at`, in one unit of work; deployed versions are untouched.
 * `*stopped` counts the runs stopped (0: nothing was going); `*group_id` is
 * the latest group among theirs (0 when none). After the commit `fn` is
 * told the agent of each stopped run, so that a worker running it can be
 * interrupted. `only` (a JSON array of user_ids, or NULL for all) limits the
 * stop to those agents' runs. */
int storage_groups_stop(storage_conn *db, const char *why, const char *only, int64_t *group_id, int *stopped,
                        int64_t *stopped_at, void (*fn)(void *ud, int64_t agent_id), void *ud, ad_err *e);

/* ---- the metrics view: every agent's serving quality and its runs ---- */

typedef struct training_totals {
    int64_t total_users;
    int64_t users_with_metrics;  /* agents whose serving version has a quality score */
    double average_quality;      /* over those; 0 when there are none */
    int64_t high_performers;     /* quality >= `high` */
} training_totals;

/* Aggregates over all agents (or those named in `only`, a JSON array of
 * user_ids) in one statement. */
int storage_training_totals(storage_conn *db, double high, const char *only, training_totals *out, ad_err *e);

typedef struct agent_training {
    const char *user_id;         /* borrowed during the visit */
    agent_state status;
    double quality;              /* serving version's quality; -1 when none */
    int64_t sessions;            /* training runs ever started */
    int64_t last_training;       /* when its latest finished run ended; 0 if none */
} agent_training;

typedef void (*agent_training_fn)(void *ud, const agent_training *a);
/* Visits up to `limit` agents with user_id > `after` (NULL: from the start),
 * by user_id, only those named in `only` unless it is NULL; `*more` says
 * whether others follow. */
int storage_training_each(storage_conn *db, const char *only, const char *after, int limit, agent_training_fn fn,
                          void *ud, int *more, ad_err *e);

/* Feedback on the agent's answers (crewAI's human feedback). */
int storage_feedback_add(storage_conn *db, int64_t agent_id, const char *prompt, const char *response,
                         const char *feedback, int rating, int64_t *id, ad_err *e);

typedef struct feedback_row {
    int64_t id;
    const char *prompt, *response, *feedback;   /* borrowed during the visit */
    int rating;                                 /* 0 when not given */
    int64_t created_at;
} feedback_row;

typedef void (*feedback_visit_fn)(void *ud, const feedback_row *f);
/* Visits the agent's feedback, newest first, at most `limit` rows with id < `before` (0: no bound). */
int storage_feedback_each(storage_conn *db, int64_t agent_id, int64_t before, int limit,
                          feedback_visit_fn fn, void *ud, ad_err *e);

#endif
