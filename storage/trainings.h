/*
 * Iterative training runs (seeds 000/001): a run per POST .../train, one row
 * per iteration with its parameters, metrics and duration, and the run's
 * trained data (best parameters, quality, suggestions, summary).
 */
#ifndef AD_STORAGE_TRAININGS_H
#define AD_STORAGE_TRAININGS_H

#include <sqlite3.h>
#include <stdint.h>

#include "base/err.h"

typedef struct training_row {
    int64_t id;
    int64_t agent_id;
    char name[65];
    int iterations;
    char status[16];          /* queued, running, done, failed */
    int done_iterations;
    int best_iteration;       /* 0 when none yet */
    int64_t version_id;
    char *trained_data;       /* JSON or NULL; owned: training_row_cleanup */
    char *error;
    int64_t created_at, started_at, finished_at;
} training_row;

void training_row_cleanup(training_row *t);

/* Queues a run: the training row and its job, in one transaction. The name
 * must be free among the agent's versions (AD_EEXIST) and no run may be
 * queued or running for the agent (AD_EBUSY). */
int storage_trainings_create(sqlite3 *db, int64_t agent_id, const char *name, int iterations,
                             int64_t *training_id, ad_err *e);

/* Reads one run of the agent; `training_id` 0 means the latest. */
int storage_trainings_get(sqlite3 *db, int64_t agent_id, int64_t training_id, training_row *out,
                          ad_err *e);

/* The agent's queued or running run, if any (AD_ENOTFOUND otherwise). */
int storage_trainings_active(sqlite3 *db, int64_t agent_id, training_row *out, ad_err *e);

/* Starting (again, after a crash): status running, earlier iterations dropped. */
int storage_trainings_start(sqlite3 *db, int64_t training_id, ad_err *e);

/* Records iteration `iteration` and bumps done_iterations (caller's transaction or autocommit). */
int storage_trainings_add_iteration(sqlite3 *db, int64_t training_id, int iteration,
                                    const char *params, const char *metrics, int64_t duration_ms,
                                    ad_err *e);

/* Ends a run: done with its version and trained data, or failed with a reason. */
int storage_trainings_finish(sqlite3 *db, int64_t training_id, const char *status,
                             int best_iteration, int64_t version_id, const char *trained_data,
                             const char *error, ad_err *e);

/* Visits a run's iterations in order. */
typedef void (*iteration_visit_fn)(void *ud, int iteration, const char *params,
                                   const char *metrics, int64_t duration_ms);
int storage_trainings_iterations(sqlite3 *db, int64_t training_id, iteration_visit_fn fn, void *ud,
                                 ad_err *e);

/* Feedback on the agent's answers (crewAI's human feedback). */
int storage_feedback_add(sqlite3 *db, int64_t agent_id, const char *prompt, const char *response,
                         const char *feedback, int rating, int64_t *id, ad_err *e);

typedef struct feedback_row {
    int64_t id;
    const char *prompt, *response, *feedback;   /* borrowed during the visit */
    int rating;                                 /* 0 when not given */
    int64_t created_at;
} feedback_row;

typedef void (*feedback_visit_fn)(void *ud, const feedback_row *f);
/* Visits the agent's feedback, newest first, at most `limit` rows with id < `before` (0: no bound). */
int storage_feedback_each(sqlite3 *db, int64_t agent_id, int64_t before, int limit,
                          feedback_visit_fn fn, void *ud, ad_err *e);

#endif
