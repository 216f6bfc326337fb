#include "storage/trainings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/mem.h"
#include "storage/sqlite.h"
#include "storage/jobs.h"
#include "storage/versions.h"

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

/* Fills `t`; AD_EINTERNAL (with nothing to clean up) for a status no
 * training_state has, which only a database agentd did not write holds. */
static int training_from_row(sqlite3_stmt *st, training_row *t, ad_err *e)
{
    memset(t, 0, sizeof(*t));
    if (training_state_from_string((const char *)sqlite3_column_text(st, 4), &t->status, NULL) < 0)
        return ad_err_set(e, AD_EINTERNAL, "a training row holds an unknown status");
    t->id = sqlite3_column_int64(st, 0);
    t->agent_id = sqlite3_column_int64(st, 1);
    snprintf(t->name, sizeof(t->name), "%s", (const char *)sqlite3_column_text(st, 2));
    t->iterations = sqlite3_column_int(st, 3);
    t->done_iterations = sqlite3_column_int(st, 5);
    t->best_iteration = sqlite3_column_int(st, 6);
    t->version_id = sqlite3_column_int64(st, 7);
    t->trained_data = tr_dup(st, 8);
    t->error = tr_dup(st, 9);
    t->created_at = sqlite3_column_int64(st, 10);
    t->started_at = sqlite3_column_int64(st, 11);
    t->finished_at = sqlite3_column_int64(st, 12);
    return 0;
}

/* Inside the caller's transaction: the run's row and its job. AD_ECONFLICT when
 * the agent has a job queued or running. */
static int trainings_insert(storage_conn *db, int64_t agent_id, const char *name, int iterations,
                            int64_t group_id, const char *job_kind, int64_t *training_id, ad_err *e)
{
    sqlite3_stmt *st = storage_stmt(db,
        "INSERT INTO trainings (agent_id, name, iterations, status, created_at, group_id)"
        " VALUES (?1, ?2, ?3, 'queued', ?4, nullif(?5, 0))");
    sqlite3_bind_int64(st, 1, agent_id);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, iterations);
    sqlite3_bind_int64(st, 4, ad_clock_now_ms());
    sqlite3_bind_int64(st, 5, group_id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) return storage_fail(db, rc, "create training", e);
    *training_id = sqlite3_last_insert_rowid(db->db);
    char params[64];
    snprintf(params, sizeof(params), "{\"training_id\":%lld}", (long long)*training_id);
    job_spec job = {.kind = job_kind, .start_stage = 0, .params = params};
    rc = storage_jobs_enqueue(db, agent_id, &job, NULL, e);
    if (rc == AD_ECONFLICT)
        ad_err_set(e, AD_ECONFLICT, "a pipeline, replay or training job is queued or running for this agent");
    return rc;
}

int storage_trainings_create(storage_conn *db, int64_t agent_id, const char *name, int iterations,
                             const char *job_kind, int64_t *training_id, ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    sqlite3_stmt *st = storage_stmt(db,
        "SELECT (SELECT count(*) FROM versions WHERE agent_id = ?1 AND name = ?2),"
        " (SELECT count(*) FROM trainings WHERE agent_id = ?1 AND (name = ?2 OR status IN ('queued', 'running'))"
        "   AND status NOT IN ('failed', 'cancelled')),"
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
    if (rc != SQLITE_ROW)
        rc = storage_fail(db, rc, "check training", e);
    else if (busy)
        rc = ad_err_set(e, AD_ECONFLICT, "a training run is already queued or running for this agent");
    else if (taken)
        rc = ad_err_set(e, AD_EEXIST, "a model version named '%s' already exists", name);
    else
        rc = trainings_insert(db, agent_id, name, iterations, 0, job_kind, training_id, e);
    return storage_end(db, rc, e);
}

static int tr_read_one(storage_conn *db, sqlite3_stmt *st, training_row *out, ad_err *e)
{
    int rc = sqlite3_step(st);
    int bad = rc == SQLITE_ROW ? training_from_row(st, out, e) : 0;
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) return bad;
    if (rc == SQLITE_DONE) return ad_err_set(e, AD_ENOTFOUND, "training run not found");
    return storage_fail(db, rc, "read training", e);
}

int storage_trainings_get(storage_conn *db, int64_t agent_id, int64_t training_id, training_row *out,
                          ad_err *e)
{
    sqlite3_stmt *st = storage_stmt(db,
        "SELECT " TRAINING_COLUMNS " FROM trainings WHERE agent_id = ?1 AND (?2 = 0 OR id = ?2)"
        " ORDER BY id DESC LIMIT 1");
    sqlite3_bind_int64(st, 1, agent_id);
    sqlite3_bind_int64(st, 2, training_id);
    return tr_read_one(db, st, out, e);
}

int storage_trainings_active(storage_conn *db, int64_t agent_id, training_row *out, ad_err *e)
{
    sqlite3_stmt *st = storage_stmt(db,
        "SELECT " TRAINING_COLUMNS " FROM trainings WHERE agent_id = ?1"
        " AND status IN ('queued', 'running') ORDER BY id DESC LIMIT 1");
    sqlite3_bind_int64(st, 1, agent_id);
    return tr_read_one(db, st, out, e);
}

int storage_trainings_start(storage_conn *db, int64_t training_id, ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    sqlite3_stmt *st = storage_stmt(db,
        "UPDATE trainings SET status = 'running', done_iterations = 0, best_iteration = NULL,"
        " started_at = ?2 WHERE id = ?1 AND status IN ('queued', 'running') RETURNING agent_id");
    sqlite3_bind_int64(st, 1, training_id);
    sqlite3_bind_int64(st, 2, ad_clock_now_ms());
    int step = sqlite3_step(st);
    int64_t agent_id = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    if (step == SQLITE_ROW) step = sqlite3_step(st);
    sqlite3_reset(st);
    if (step != SQLITE_DONE) rc = storage_fail(db, step, "start training", e);
    else if (!agent_id) rc = ad_err_set(e, AD_ECANCELLED, "the training run was stopped");
    if (rc == 0) {
        st = storage_stmt(db, "DELETE FROM training_iterations WHERE training_id = ?1");
        sqlite3_bind_int64(st, 1, training_id);
        step = sqlite3_step(st);
        if (step != SQLITE_DONE) rc = storage_fail(db, step, "start training", e);
    }
    if (rc == 0) rc = storage_versions_delete_candidates(db, agent_id, e);
    return storage_end(db, rc, e);
}

/* Records one iteration inside the caller's unit of work. */
static int trainings_add_iteration(storage_conn *db, int64_t training_id, int iteration,
                                   const char *params, const char *metrics, int64_t duration_ms,
                                   ad_err *e)
{
    sqlite3_stmt *st = storage_stmt(db,
        "INSERT INTO training_iterations (training_id, iteration, params, metrics, duration_ms)"
        " SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS"
        " (SELECT 1 FROM trainings WHERE id = ?1 AND status = 'running')");
    sqlite3_bind_int64(st, 1, training_id);
    sqlite3_bind_int(st, 2, iteration);
    sqlite3_bind_text(st, 3, params, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, metrics, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, duration_ms);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) return storage_fail(db, rc, "record iteration", e);
    st = storage_stmt(db, "UPDATE trainings SET done_iterations = ?2 WHERE id = ?1 AND status = 'running'");
    sqlite3_bind_int64(st, 1, training_id);
    sqlite3_bind_int(st, 2, iteration);
    rc = sqlite3_step(st);
    return rc == SQLITE_DONE ? 0 : storage_fail(db, rc, "record iteration", e);
}

int storage_trainings_add_iteration(storage_conn *db, int64_t training_id, int iteration,
                                    const char *params, const char *metrics, int64_t duration_ms,
                                    ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    rc = trainings_add_iteration(db, training_id, iteration, params, metrics, duration_ms, e);
    return storage_end(db, rc, e);
}

int storage_trainings_finish(storage_conn *db, int64_t training_id, training_state status,
                             int best_iteration, int64_t version_id, const char *trained_data,
                             const char *error, ad_err *e)
{
    sqlite3_stmt *st = storage_stmt(db,
        "UPDATE trainings SET status = ?2, best_iteration = nullif(?3, 0), version_id = nullif(?4, 0),"
        " trained_data = ?5, error = ?6, finished_at = ?7"
        " WHERE id = ?1 AND status IN ('queued', 'running')");
    sqlite3_bind_int64(st, 1, training_id);
    sqlite3_bind_text(st, 2, training_state_to_string(status), -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, best_iteration);
    sqlite3_bind_int64(st, 4, version_id);
    if (trained_data) sqlite3_bind_text(st, 5, trained_data, -1, SQLITE_STATIC);
    if (error) sqlite3_bind_text(st, 6, error, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, ad_clock_now_ms());
    int rc = sqlite3_step(st);
    return rc == SQLITE_DONE ? 0 : storage_fail(db, rc, "finish training", e);
}

int storage_trainings_complete(storage_conn *db, const training_outcome *o, ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    int64_t vid = o->verdict.version_id;
    rc = storage_jobs_hold(db, o->job_id, e);
    if (rc == 0) rc = storage_versions_publish(db, vid, o->name, o->metrics, o->quality, e);
    if (rc == 0) rc = storage_deployments_apply(db, &o->verdict, e);
    if (rc == 0)
        rc = storage_trainings_finish(db, o->training_id, TRAINING_DONE, o->best_iteration, vid,
                                      o->trained_data, NULL, e);
    if (rc == 0) rc = storage_jobs_finish(db, o->job_id, JOB_DONE, NULL, e);
    return storage_end(db, rc, e);
}

int storage_trainings_fail(storage_conn *db, int64_t training_id, int64_t agent_id, int64_t job_id,
                           const char *why, ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    /* Holding the job first: a run stopped meanwhile stays cancelled. */
    rc = storage_jobs_hold(db, job_id, e);
    if (rc == 0) rc = storage_versions_delete_candidates(db, agent_id, e);
    if (rc == 0) rc = storage_trainings_finish(db, training_id, TRAINING_FAILED, 0, 0, NULL, why, e);
    if (rc == 0) rc = storage_jobs_finish(db, job_id, JOB_FAILED, why, e);
    return storage_end(db, rc, e);
}

int storage_trainings_iterations(storage_conn *db, int64_t training_id, iteration_visit_fn fn, void *ud,
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

/* ---- training groups ---- */

void storage_groups_version_name(int64_t group_id, char *out, size_t cap)
{
    snprintf(out, cap, "group-%lld", (long long)group_id);
}

/* Inside the group's transaction: why the agent `user_id` cannot join, or
 * GROUP_OK with its id. */
static int groups_check_agent(storage_conn *db, const char *user_id, const char *name, int64_t *agent_id,
                              group_refusal *why, ad_err *e)
{
    sqlite3_stmt *st = storage_stmt(db,
        "SELECT a.id, a.deployed_version_id IS NOT NULL,"
        " EXISTS (SELECT 1 FROM jobs j WHERE j.agent_id = a.id AND j.state IN ('queued', 'running')),"
        " EXISTS (SELECT 1 FROM versions v WHERE v.agent_id = a.id AND v.name = ?2)"
        " FROM agents a WHERE a.user_id = ?1");
    sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *why = GROUP_UNKNOWN;
    if (rc == SQLITE_ROW) {
        *agent_id = sqlite3_column_int64(st, 0);
        *why = !sqlite3_column_int(st, 1) ? GROUP_NOT_READY
               : sqlite3_column_int(st, 2) ? GROUP_BUSY
               : sqlite3_column_int(st, 3) ? GROUP_NAME_TAKEN
                                           : GROUP_OK;
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : storage_fail(db, rc, "check agent", e);
}

int storage_groups_start(storage_conn *db, const char *const *user_ids, size_t n, int cycles,
                         const char *job_kind, int64_t *group_id, group_refusal *why, ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    sqlite3_stmt *st = storage_stmt(db,
        "INSERT INTO training_groups (cycles, total_agents, created_at) VALUES (?1, ?2, ?3)");
    sqlite3_bind_int(st, 1, cycles);
    sqlite3_bind_int64(st, 2, (int64_t)n);
    sqlite3_bind_int64(st, 3, ad_clock_now_ms());
    rc = sqlite3_step(st);
    rc = rc == SQLITE_DONE ? 0 : storage_fail(db, rc, "create training group", e);
    int64_t gid = sqlite3_last_insert_rowid(db->db);
    char name[32];
    storage_groups_version_name(gid, name, sizeof(name));
    int unknown = 0, refused = 0, taken = 0;
    int64_t *agent_ids = ad_calloc(n ? n : 1, sizeof(*agent_ids));
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = groups_check_agent(db, user_ids[i], name, &agent_ids[i], &why[i], e);
        unknown += why[i] == GROUP_UNKNOWN;
        refused += why[i] == GROUP_NOT_READY || why[i] == GROUP_BUSY;
        taken += why[i] == GROUP_NAME_TAKEN;
    }
    if (rc == 0 && unknown) rc = ad_err_set(e, AD_ENOTFOUND, "%d unknown agent(s)", unknown);
    else if (rc == 0 && refused) rc = ad_err_set(e, AD_ESTATE, "%d agent(s) not ready or busy", refused);
    else if (rc == 0 && taken) rc = ad_err_set(e, AD_EEXIST, "a model version named '%s' exists", name);
    for (size_t i = 0; i < n && rc == 0; i++) {
        int64_t tid;
        rc = trainings_insert(db, agent_ids[i], name, cycles, gid, job_kind, &tid, e);
        /* The check above saw no job; one can appear only through a
         * concurrent transaction, which BEGIN IMMEDIATE rules out. */
        if (rc == AD_ECONFLICT) why[i] = GROUP_BUSY, rc = AD_ESTATE;
    }
    free(agent_ids);
    rc = storage_end(db, rc, e);
    if (rc == 0) *group_id = gid;
    return rc;
}

int storage_groups_latest(storage_conn *db, const char *only, group_row *out, ad_err *e)
{
    sqlite3_stmt *st = storage_stmt(db,
        "SELECT id, cycles, total_agents, created_at, coalesce(stopped_at, 0) FROM training_groups"
        " WHERE ?1 IS NULL OR id = (SELECT max(t.group_id) FROM trainings t JOIN agents a ON a.id = t.agent_id"
        "                           WHERE a.user_id IN (SELECT value FROM json_each(?1)))"
        " ORDER BY id DESC LIMIT 1");
    if (only) sqlite3_bind_text(st, 1, only, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->id = sqlite3_column_int64(st, 0);
        out->cycles = sqlite3_column_int(st, 1);
        out->total_agents = sqlite3_column_int(st, 2);
        out->created_at = sqlite3_column_int64(st, 3);
        out->stopped_at = sqlite3_column_int64(st, 4);
    }
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) return 0;
    if (rc == SQLITE_DONE) return ad_err_set(e, AD_ENOTFOUND, "no training group");
    return storage_fail(db, rc, "read training group", e);
}

int storage_groups_runs(storage_conn *db, int64_t group_id, group_run_fn fn, void *ud, ad_err *e)
{
    /* The best quality so far is read from the iterations' stored metrics,
     * the only place it exists before the run ends. */
    sqlite3_stmt *st = storage_stmt(db,
        "SELECT a.user_id, t.status, t.done_iterations, t.iterations,"
        " coalesce((SELECT max(json_extract(i.metrics, '$.quality_score')) FROM training_iterations i"
        "           WHERE i.training_id = t.id), -1),"
        " CASE WHEN t.status = 'done' THEN coalesce((SELECT v.quality FROM versions v"
        "           WHERE v.id = t.version_id), -1) ELSE -1 END,"
        " coalesce((SELECT v.quality FROM versions v WHERE v.id = a.deployed_version_id), -1),"
        " coalesce(t.finished_at, 0)"
        " FROM trainings t JOIN agents a ON a.id = t.agent_id WHERE t.group_id = ?1"
        " ORDER BY a.user_id");
    sqlite3_bind_int64(st, 1, group_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        group_run r = {
            .user_id = (const char *)sqlite3_column_text(st, 0),
            .done_iterations = sqlite3_column_int(st, 2),
            .iterations = sqlite3_column_int(st, 3),
            .best_quality = sqlite3_column_double(st, 4),
            .version_quality = sqlite3_column_double(st, 5),
            .deployed_quality = sqlite3_column_double(st, 6),
            .finished_at = sqlite3_column_int64(st, 7),
        };
        if (training_state_from_string((const char *)sqlite3_column_text(st, 1), &r.status, NULL) < 0) {
            sqlite3_reset(st);
            return ad_err_set(e, AD_EINTERNAL, "a training row holds an unknown status");
        }
        fn(ud, &r);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : storage_fail(db, rc, "read training group", e);
}

int storage_groups_stop(storage_conn *db, const char *why, const char *only, int64_t *group_id, int *stopped,
                        int64_t *stopped_at, void (*fn)(void *ud, int64_t agent_id), void *ud, ad_err *e)
{
    *group_id = 0;
    *stopped = 0;
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    /* Every group's runs, not only the latest group's: a later group that
     * has ended must not leave an earlier one going out of reach. */
    int64_t now = ad_clock_now_ms(), n = 0, cap = 0, *runs = NULL;
    sqlite3_stmt *st = storage_stmt(db,
        "UPDATE trainings SET status = 'cancelled', finished_at = ?1, error = ?2"
        " WHERE group_id IS NOT NULL AND status IN ('queued', 'running')"
        " AND (?3 IS NULL OR agent_id IN (SELECT id FROM agents"
        "      WHERE user_id IN (SELECT value FROM json_each(?3))))"
        " RETURNING id, agent_id, group_id");
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_text(st, 2, why, -1, SQLITE_STATIC);
    if (only) sqlite3_bind_text(st, 3, only, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            runs = ad_realloc(runs, ad_size_mul((size_t)cap, 3 * sizeof(*runs)));
        }
        for (int c = 0; c < 3; c++) runs[3 * n + c] = sqlite3_column_int64(st, c);
        n++;
    }
    sqlite3_reset(st);
    rc = rc == SQLITE_DONE ? 0 : storage_fail(db, rc, "stop training group", e);
    /* Each run's job (one active job per agent, carrying the run's id), and
     * its group's stop time. */
    for (int64_t i = 0; i < n && rc == 0; i++) {
        st = storage_stmt(db,
            "UPDATE jobs SET state = 'cancelled', error = 'training stopped', updated_at = ?3"
            " WHERE agent_id = ?1 AND state IN ('queued', 'running')"
            " AND json_extract(params, '$.training_id') = ?2");
        sqlite3_bind_int64(st, 1, runs[3 * i + 1]);
        sqlite3_bind_int64(st, 2, runs[3 * i]);
        sqlite3_bind_int64(st, 3, now);
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE ? 0 : storage_fail(db, rc, "stop training job", e);
        if (rc < 0) break;
        st = storage_stmt(db, "UPDATE training_groups SET stopped_at = ?2 WHERE id = ?1");
        sqlite3_bind_int64(st, 1, runs[3 * i + 2]);
        sqlite3_bind_int64(st, 2, now);
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE ? 0 : storage_fail(db, rc, "stop training group", e);
        if (runs[3 * i + 2] > *group_id) *group_id = runs[3 * i + 2];
    }
    rc = storage_end(db, rc, e);
    /* Workers are told only once the stop is committed. */
    for (int64_t i = 0; rc == 0 && fn && i < n; i++) fn(ud, runs[3 * i + 1]);
    free(runs);
    if (rc < 0) {
        *group_id = 0;
        return rc;
    }
    *stopped = (int)n;
    *stopped_at = now;
    return 0;
}

/* ---- the metrics view ---- */

int storage_training_totals(storage_conn *db, double high, const char *only, training_totals *out, ad_err *e)
{
    sqlite3_stmt *st = storage_stmt(db,
        "SELECT count(*), count(v.quality), coalesce(avg(v.quality), 0),"
        " coalesce(sum(v.quality >= ?1), 0)"
        " FROM agents a LEFT JOIN versions v ON v.id = a.deployed_version_id"
        " WHERE ?2 IS NULL OR a.user_id IN (SELECT value FROM json_each(?2))");
    sqlite3_bind_double(st, 1, high);
    if (only) sqlite3_bind_text(st, 2, only, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->total_users = sqlite3_column_int64(st, 0);
        out->users_with_metrics = sqlite3_column_int64(st, 1);
        out->average_quality = sqlite3_column_double(st, 2);
        out->high_performers = sqlite3_column_int64(st, 3);
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : storage_fail(db, rc, "count agents", e);
}

int storage_training_each(storage_conn *db, const char *only, const char *after, int limit, agent_training_fn fn,
                          void *ud, int *more, ad_err *e)
{
    sqlite3_stmt *st = storage_stmt(db,
        "SELECT a.user_id, a.status, coalesce(v.quality, -1),"
        " (SELECT count(*) FROM trainings t WHERE t.agent_id = a.id),"
        " coalesce((SELECT t.finished_at FROM trainings t WHERE t.agent_id = a.id"
        "           AND t.finished_at IS NOT NULL ORDER BY t.id DESC LIMIT 1), 0)"
        " FROM agents a LEFT JOIN versions v ON v.id = a.deployed_version_id"
        " WHERE (?1 IS NULL OR a.user_id > ?1)"
        " AND (?3 IS NULL OR a.user_id IN (SELECT value FROM json_each(?3))) ORDER BY a.user_id LIMIT ?2");
    if (after) sqlite3_bind_text(st, 1, after, -1, SQLITE_STATIC);
    if (only) sqlite3_bind_text(st, 3, only, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, limit + 1);
    int rc, seen = 0;
    *more = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (seen++ == limit) {
            *more = 1;
            continue;
        }
        agent_training a = {
            .user_id = (const char *)sqlite3_column_text(st, 0),
            .quality = sqlite3_column_double(st, 2),
            .sessions = sqlite3_column_int64(st, 3),
            .last_training = sqlite3_column_int64(st, 4),
        };
        if (agent_state_from_string((const char *)sqlite3_column_text(st, 1), &a.status, NULL) < 0) {
            sqlite3_reset(st);
            return ad_err_set(e, AD_EINTERNAL, "an agent row holds an unknown status");
        }
        fn(ud, &a);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : storage_fail(db, rc, "read agents", e);
}

int storage_feedback_add(storage_conn *db, int64_t agent_id, const char *prompt, const char *response,
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
    *id = sqlite3_last_insert_rowid(db->db);
    return 0;
}

int storage_feedback_each(storage_conn *db, int64_t agent_id, int64_t before, int limit,
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
