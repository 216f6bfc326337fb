#include "storage/trainings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/mem.h"
#include "storage/db.h"
#include "storage/jobs.h"

#define TRAINING_COLUMNS                                                                       \
    "id, agent_id, name, iterations, status, done_iterations, best_iteration, version_id,"   \
    " trained_data, error, created_at, started_at, finished_at"

void training_row_cleanup(training_row *t)
{
    free(t->trained_data);
    free(t->error);
    t->trained_data = t->error = NULL;
}

static char *tr_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    return s ? ad_strdup((const char *)s) : NULL;
}

static void training_from_row(sqlite3_stmt *st, training_row *t)
{
    memset(t, 0, sizeof(*t));
    t->id = sqlite3_column_int64(st, 0);
    t->agent_id = sqlite3_column_int64(st, 1);
    snprintf(t->name, sizeof(t->name), "%s", (const char *)sqlite3_column_text(st, 2));
    t->iterations = sqlite3_column_int(st, 3);
    snprintf(t->status, sizeof(t->status), "%s", (const char *)sqlite3_column_text(st, 4));
    t->done_iterations = sqlite3_column_int(st, 5);
    t->best_iteration = sqlite3_column_int(st, 6);
    t->version_id = sqlite3_column_int64(st, 7);
    t->trained_data = tr_dup(st, 8);
    t->error = tr_dup(st, 9);
    t->created_at = sqlite3_column_int64(st, 10);
    t->started_at = sqlite3_column_int64(st, 11);
    t->finished_at = sqlite3_column_int64(st, 12);
}

int storage_trainings_create(sqlite3 *db, int64_t agent_id, const char *name, int iterations,
                             int64_t *training_id, ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    sqlite3_stmt *st = storage_stmt(db,
        "SELECT (SELECT count(*) FROM versions WHERE agent_id = ?1 AND name = ?2),"
        " (SELECT count(*) FROM trainings WHERE agent_id = ?1 AND (name = ?2 OR status IN ('queued', 'running'))"
        "   AND status <> 'failed'),"
        " (SELECT count(*) FROM trainings WHERE agent_id = ?1 AND status IN ('queued', 'running'))");
    sqlite3_bind_int64(st, 1, agent_id);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    int taken = 0, busy = 0;
    if (rc == SQLITE_ROW) {
        taken = sqlite3_column_int(st, 0) > 0;
        busy = sqlite3_column_int(st, 2) > 0;
        taken |= !busy && sqlite3_column_int(st, 1) > 0;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW) {
        rc = storage_fail(db, rc, "check training", e);
    } else if (busy) {
        rc = ad_err_set(e, AD_EBUSY, "a training run is already queued or running for this agent");
    } else if (taken) {
        rc = ad_err_set(e, AD_EEXIST, "a model version named '%s' already exists", name);
    } else {
        st = storage_stmt(db,
            "INSERT INTO trainings (agent_id, name, iterations, status, created_at)"
            " VALUES (?1, ?2, ?3, 'queued', ?4)");
        sqlite3_bind_int64(st, 1, agent_id);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, iterations);
        sqlite3_bind_int64(st, 4, ad_clock_now_ms());
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE ? 0 : storage_fail(db, rc, "create training", e);
    }
    if (rc == 0) {
        *training_id = sqlite3_last_insert_rowid(db);
        char params[64];
        snprintf(params, sizeof(params), "{\"training_id\":%lld}", (long long)*training_id);
        rc = storage_jobs_enqueue(db, agent_id, "train", 0, params, NULL, e);
        if (rc == AD_EBUSY)
            ad_err_set(e, AD_EBUSY, "a pipeline, replay or training job is queued or running for this agent");
    }
    if (rc < 0) {
        storage_rollback(db);
        return rc;
    }
    return storage_commit(db, e);
}

static int tr_read_one(sqlite3 *db, sqlite3_stmt *st, training_row *out, ad_err *e)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) training_from_row(st, out);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) return 0;
    if (rc == SQLITE_DONE) return ad_err_set(e, AD_ENOTFOUND, "training run not found");
    return storage_fail(db, rc, "read training", e);
}

int storage_trainings_get(sqlite3 *db, int64_t agent_id, int64_t training_id, training_row *out,
                          ad_err *e)
{
    sqlite3_stmt *st = storage_stmt(db,
        "SELECT " TRAINING_COLUMNS " FROM trainings WHERE agent_id = ?1 AND (?2 = 0 OR id = ?2)"
        " ORDER BY id DESC LIMIT 1");
    sqlite3_bind_int64(st, 1, agent_id);
    sqlite3_bind_int64(st, 2, training_id);
    return tr_read_one(db, st, out, e);
}

int storage_trainings_active(sqlite3 *db, int64_t agent_id, training_row *out, ad_err *e)
{
    sqlite3_stmt *st = storage_stmt(db,
        "SELECT " TRAINING_COLUMNS " FROM trainings WHERE agent_id = ?1"
        " AND status IN ('queued', 'running') ORDER BY id DESC LIMIT 1");
    sqlite3_bind_int64(st, 1, agent_id);
    return tr_read_one(db, st, out, e);
}

int storage_trainings_start(sqlite3 *db, int64_t training_id, ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    sqlite3_stmt *st = storage_stmt(db, "DELETE FROM training_iterations WHERE training_id = ?1");
    sqlite3_bind_int64(st, 1, training_id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        st = storage_stmt(db,
            "UPDATE trainings SET status = 'running', done_iterations = 0, best_iteration = NULL,"
            " started_at = ?2 WHERE id = ?1");
        sqlite3_bind_int64(st, 1, training_id);
        sqlite3_bind_int64(st, 2, ad_clock_now_ms());
        rc = sqlite3_step(st);
    }
    if (rc != SQLITE_DONE) {
        rc = storage_fail(db, rc, "start training", e);
        storage_rollback(db);
        return rc;
    }
    return storage_commit(db, e);
}

int storage_trainings_add_iteration(sqlite3 *db, int64_t training_id, int iteration,
                                    const char *params, const char *metrics, int64_t duration_ms,
                                    ad_err *e)
{
    sqlite3_stmt *st = storage_stmt(db,
        "INSERT INTO training_iterations (training_id, iteration, params, metrics, duration_ms)"
        " VALUES (?1, ?2, ?3, ?4, ?5)");
    sqlite3_bind_int64(st, 1, training_id);
    sqlite3_bind_int(st, 2, iteration);
    sqlite3_bind_text(st, 3, params, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, metrics, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, duration_ms);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) return storage_fail(db, rc, "record iteration", e);
    st = storage_stmt(db, "UPDATE trainings SET done_iterations = ?2 WHERE id = ?1");
    sqlite3_bind_int64(st, 1, training_id);
    sqlite3_bind_int(st, 2, iteration);
    rc = sqlite3_step(st);
    return rc == SQLITE_DONE ? 0 : storage_fail(db, rc, "record iteration", e);
}

int storage_trainings_finish(sqlite3 *db, int64_t training_id, const char *status,
                             int best_iteration, int64_t version_id, const char *trained_data,
                             const char *error, ad_err *e)
{
    sqlite3_stmt *st = storage_stmt(db,
        "UPDATE trainings SET status = ?2, best_iteration = nullif(?3, 0), version_id = nullif(?4, 0),"
        " trained_data = ?5, error = ?6, finished_at = ?7 WHERE id = ?1");
    sqlite3_bind_int64(st, 1, training_id);
    sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, best_iteration);
    sqlite3_bind_int64(st, 4, version_id);
    if (trained_data) sqlite3_bind_text(st, 5, trained_data, -1, SQLITE_STATIC);
    if (error) sqlite3_bind_text(st, 6, error, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, ad_clock_now_ms());
    int rc = sqlite3_step(st);
    return rc == SQLITE_DONE ? 0 : storage_fail(db, rc, "finish training", e);
}

int storage_trainings_iterations(sqlite3 *db, int64_t training_id, iteration_visit_fn fn, void *ud,
                                 ad_err *e)
{
    sqlite3_stmt *st = storage_stmt(db,
        "SELECT iteration, params, metrics, duration_ms FROM training_iterations"
        " WHERE training_id = ?1 ORDER BY iteration");
    sqlite3_bind_int64(st, 1, training_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn(ud, sqlite3_column_int(st, 0), (const char *)sqlite3_column_text(st, 1),
           (const char *)sqlite3_column_text(st, 2), sqlite3_column_int64(st, 3));
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : storage_fail(db, rc, "read iterations", e);
}

int storage_feedback_add(sqlite3 *db, int64_t agent_id, const char *prompt, const char *response,
                         const char *feedback, int rating, int64_t *id, ad_err *e)
{
    sqlite3_stmt *st = storage_stmt(db,
        "INSERT INTO feedback (agent_id, prompt, response, feedback, rating, created_at)"
        " VALUES (?1, ?2, ?3, ?4, nullif(?5, 0), ?6)");
    sqlite3_bind_int64(st, 1, agent_id);
    sqlite3_bind_text(st, 2, prompt, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, response, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, feedback, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, rating);
    sqlite3_bind_int64(st, 6, ad_clock_now_ms());
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) return storage_fail(db, rc, "store feedback", e);
    *id = sqlite3_last_insert_rowid(db);
    return 0;
}

int storage_feedback_each(sqlite3 *db, int64_t agent_id, int64_t before, int limit,
                          feedback_visit_fn fn, void *ud, ad_err *e)
{
    sqlite3_stmt *st = storage_stmt(db,
        "SELECT id, prompt, response, feedback, coalesce(rating, 0), created_at FROM feedback"
        " WHERE agent_id = ?1 AND (?2 = 0 OR id < ?2) ORDER BY id DESC LIMIT ?3");
    sqlite3_bind_int64(st, 1, agent_id);
    sqlite3_bind_int64(st, 2, before);
    sqlite3_bind_int(st, 3, limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        feedback_row f = {
            .id = sqlite3_column_int64(st, 0),
            .prompt = (const char *)sqlite3_column_text(st, 1),
            .response = (const char *)sqlite3_column_text(st, 2),
            .feedback = (const char *)sqlite3_column_text(st, 3),
            .rating = sqlite3_column_int(st, 4),
            .created_at = sqlite3_column_int64(st, 5),
        };
        fn(ud, &f);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : storage_fail(db, rc, "read feedback", e);
}
