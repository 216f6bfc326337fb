#include "storage/trainings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/mem.h"
#include "storage/dialect.h"
#include "storage/internal.h"
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

static char *tr_dup(sql_stmt *st, int i)
{
    const char *s = sql_column_text(st, i);
    return s ? ad_strdup((const char *)s) : NULL;
}

/* Fills `t`; AD_EINTERNAL (with nothing to clean up) for a status no
 * training_state has, which only a database agentd did not write holds. */
static int training_from_row(sql_stmt *st, training_row *t, ad_err *e)
{
    memset(t, 0, sizeof(*t));
    if (training_state_from_string(sql_column_text(st, 4), &t->status, NULL) < 0)
        return ad_err_set(e, AD_EINTERNAL, "a training row holds an unknown status");
    t->id = sql_column_int64(st, 0);
    t->agent_id = sql_column_int64(st, 1);
    snprintf(t->name, sizeof(t->name), "%s", sql_column_text(st, 2));
    t->iterations = sql_column_int(st, 3);
    t->done_iterations = sql_column_int(st, 5);
    t->best_iteration = sql_column_int(st, 6);
    t->version_id = sql_column_int64(st, 7);
    t->trained_data = tr_dup(st, 8);
    t->error = tr_dup(st, 9);
    t->created_at = sql_column_int64(st, 10);
    t->started_at = sql_column_int64(st, 11);
    t->finished_at = sql_column_int64(st, 12);
    return 0;
}

/* Inside the caller's transaction: the run's row and its job. AD_ECONFLICT when
 * the agent has a job queued or running. */
static int trainings_insert(storage_conn *db, int64_t agent_id, const char *name, int iterations,
                            int64_t group_id, const char *job_kind, int64_t *training_id, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "INSERT INTO trainings (agent_id, name, iterations, status, created_at, group_id)"
        " VALUES (?1, ?2, ?3, 'queued', ?4, nullif(CAST(?5 AS BIGINT), 0)) RETURNING id");
    sql_bind_int64(st, 1, agent_id);
    sql_bind_text(st, 2, name);
    sql_bind_int(st, 3, iterations);
    sql_bind_int64(st, 4, ad_clock_now_ms());
    sql_bind_int64(st, 5, group_id);
    int rc = sql_step_id(st, training_id);
    if (rc != SQL_DONE) return storage_fail(db, rc, "create training", e);
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
    sql_stmt *st = storage_stmt(db,
        "SELECT (SELECT count(*) FROM versions WHERE agent_id = ?1 AND name = ?2),"
        " (SELECT count(*) FROM trainings WHERE agent_id = ?1 AND (name = ?2 OR status IN ('queued', 'running'))"
        "   AND status NOT IN ('failed', 'cancelled')),"
        " (SELECT count(*) FROM trainings WHERE agent_id = ?1 AND status IN ('queued', 'running'))");
    sql_bind_int64(st, 1, agent_id);
    sql_bind_text(st, 2, name);
    rc = sql_step(st);
    int taken = 0, busy = 0;
    if (rc == SQL_ROW) {
        taken = sql_column_int(st, 0) > 0;
        busy = sql_column_int(st, 2) > 0;
        taken |= !busy && sql_column_int(st, 1) > 0;
    }
    sql_reset(st);
    if (rc != SQL_ROW)
        rc = storage_fail(db, rc, "check training", e);
    else if (busy)
        rc = ad_err_set(e, AD_ECONFLICT, "a training run is already queued or running for this agent");
    else if (taken)
        rc = ad_err_set(e, AD_EEXIST, "a model version named '%s' already exists", name);
    else
        rc = trainings_insert(db, agent_id, name, iterations, 0, job_kind, training_id, e);
    return storage_end(db, rc, e);
}

static int tr_read_one(storage_conn *db, sql_stmt *st, training_row *out, ad_err *e)
{
    int rc = sql_step(st);
    int bad = rc == SQL_ROW ? training_from_row(st, out, e) : 0;
    sql_reset(st);
    if (rc == SQL_ROW) return bad;
    if (rc == SQL_DONE) return ad_err_set(e, AD_ENOTFOUND, "training run not found");
    return storage_fail(db, rc, "read training", e);
}

int storage_trainings_get(storage_conn *db, int64_t agent_id, int64_t training_id, training_row *out,
                          ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "SELECT " TRAINING_COLUMNS " FROM trainings WHERE agent_id = ?1"
        " AND (CAST(?2 AS BIGINT) = 0 OR id = ?2)"
        " ORDER BY id DESC LIMIT 1");
    sql_bind_int64(st, 1, agent_id);
    sql_bind_int64(st, 2, training_id);
    return tr_read_one(db, st, out, e);
}

int storage_trainings_active(storage_conn *db, int64_t agent_id, training_row *out, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "SELECT " TRAINING_COLUMNS " FROM trainings WHERE agent_id = ?1"
        " AND status IN ('queued', 'running') ORDER BY id DESC LIMIT 1");
    sql_bind_int64(st, 1, agent_id);
    return tr_read_one(db, st, out, e);
}

int storage_trainings_start(storage_conn *db, int64_t training_id, int64_t job_id, ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    /* The job first: a replica whose job was taken over must not wipe the
     * iterations and candidates of the run its new owner restarted. */
    rc = job_id ? storage_jobs_hold(db, job_id, e) : 0;
    if (rc < 0) return storage_end(db, rc, e);
    sql_stmt *st = storage_stmt(db,
        "UPDATE trainings SET status = 'running', done_iterations = 0, best_iteration = NULL,"
        " started_at = ?2 WHERE id = ?1 AND status IN ('queued', 'running') RETURNING agent_id");
    sql_bind_int64(st, 1, training_id);
    sql_bind_int64(st, 2, ad_clock_now_ms());
    int step = sql_step(st);
    int64_t agent_id = step == SQL_ROW ? sql_column_int64(st, 0) : 0;
    if (step == SQL_ROW) step = sql_step(st);
    sql_reset(st);
    if (step != SQL_DONE) rc = storage_fail(db, step, "start training", e);
    else if (!agent_id) rc = ad_err_set(e, AD_ECANCELLED, "the training run was stopped");
    if (rc == 0) {
        st = storage_stmt(db, "DELETE FROM training_iterations WHERE training_id = ?1");
        sql_bind_int64(st, 1, training_id);
        step = sql_step(st);
        if (step != SQL_DONE) rc = storage_fail(db, step, "start training", e);
    }
    if (rc == 0) rc = storage_versions_delete_candidates(db, agent_id, e);
    return storage_end(db, rc, e);
}

/* Records one iteration inside the caller's unit of work. */
static int trainings_add_iteration(storage_conn *db, int64_t training_id, int iteration,
                                   const char *params, const char *metrics, int64_t duration_ms,
                                   ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "INSERT INTO training_iterations (training_id, iteration, params, metrics, duration_ms)"
        " SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS"
        " (SELECT 1 FROM trainings WHERE id = ?1 AND status = 'running')");
    sql_bind_int64(st, 1, training_id);
    sql_bind_int(st, 2, iteration);
    sql_bind_text(st, 3, params);
    sql_bind_text(st, 4, metrics);
    sql_bind_int64(st, 5, duration_ms);
    int rc = sql_step(st);
    if (rc != SQL_DONE) return storage_fail(db, rc, "record iteration", e);
    st = storage_stmt(db, "UPDATE trainings SET done_iterations = ?2 WHERE id = ?1 AND status = 'running'");
    sql_bind_int64(st, 1, training_id);
    sql_bind_int(st, 2, iteration);
    rc = sql_step(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "record iteration", e);
}

int storage_trainings_add_iteration(storage_conn *db, int64_t training_id, int64_t job_id,
                                    int iteration, const char *params, const char *metrics,
                                    int64_t duration_ms, ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    rc = job_id ? storage_jobs_hold(db, job_id, e) : 0;
    if (rc == 0) rc = trainings_add_iteration(db, training_id, iteration, params, metrics, duration_ms, e);
    return storage_end(db, rc, e);
}

int storage_trainings_finish(storage_conn *db, int64_t training_id, training_state status,
                             int best_iteration, int64_t version_id, const char *trained_data,
                             const char *error, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "UPDATE trainings SET status = ?2, best_iteration = nullif(CAST(?3 AS BIGINT), 0),"
        " version_id = nullif(CAST(?4 AS BIGINT), 0),"
        " trained_data = ?5, error = ?6, finished_at = ?7"
        " WHERE id = ?1 AND status IN ('queued', 'running')");
    sql_bind_int64(st, 1, training_id);
    sql_bind_text(st, 2, training_state_to_string(status));
    sql_bind_int(st, 3, best_iteration);
    sql_bind_int64(st, 4, version_id);
    if (trained_data) sql_bind_text(st, 5, trained_data);
    if (error) sql_bind_text(st, 6, error);
    sql_bind_int64(st, 7, ad_clock_now_ms());
    int rc = sql_step(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "finish training", e);
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
    sql_stmt *st = storage_stmt(db,
        "SELECT iteration, params, metrics, duration_ms FROM training_iterations"
        " WHERE training_id = ?1 ORDER BY iteration");
    sql_bind_int64(st, 1, training_id);
    int rc;
    while ((rc = sql_step(st)) == SQL_ROW)
        fn(ud, sql_column_int(st, 0), sql_column_text(st, 1),
           sql_column_text(st, 2), sql_column_int64(st, 3));
    sql_reset(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "read iterations", e);
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
    sql_stmt *st = storage_stmt(db,
        "SELECT a.id, CASE WHEN a.deployed_version_id IS NOT NULL THEN 1 ELSE 0 END,"
        " CASE WHEN EXISTS (SELECT 1 FROM jobs j WHERE j.agent_id = a.id"
        "   AND j.state IN ('queued', 'running')) THEN 1 ELSE 0 END,"
        " CASE WHEN EXISTS (SELECT 1 FROM versions v WHERE v.agent_id = a.id AND v.name = ?2)"
        "   THEN 1 ELSE 0 END"
        " FROM agents a WHERE a.user_id = ?1");
    sql_bind_text(st, 1, user_id);
    sql_bind_text(st, 2, name);
    int rc = sql_step(st);
    *why = GROUP_UNKNOWN;
    if (rc == SQL_ROW) {
        *agent_id = sql_column_int64(st, 0);
        *why = !sql_column_int(st, 1) ? GROUP_NOT_READY
               : sql_column_int(st, 2) ? GROUP_BUSY
               : sql_column_int(st, 3) ? GROUP_NAME_TAKEN
                                           : GROUP_OK;
    }
    sql_reset(st);
    return rc == SQL_ROW || rc == SQL_DONE ? 0 : storage_fail(db, rc, "check agent", e);
}

int storage_groups_start(storage_conn *db, const char *const *user_ids, size_t n, int cycles,
                         const char *job_kind, int64_t *group_id, group_refusal *why, ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    sql_stmt *st = storage_stmt(db,
        "INSERT INTO training_groups (cycles, total_agents, created_at) VALUES (?1, ?2, ?3) RETURNING id");
    sql_bind_int(st, 1, cycles);
    sql_bind_int64(st, 2, (int64_t)n);
    sql_bind_int64(st, 3, ad_clock_now_ms());
    int64_t gid = 0;
    rc = sql_step_id(st, &gid);
    rc = rc == SQL_DONE ? 0 : storage_fail(db, rc, "create training group", e);
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

/* ?1: the JSON array of user_ids the caller sees, NULL for all. Two
 * dialects for reading the array (storage/dialect.h). */
#define GROUPS_LATEST_SQL(D)                                                                   \
    "SELECT id, cycles, total_agents, created_at, coalesce(stopped_at, 0) FROM training_groups" \
    " WHERE CAST(?1 AS TEXT) IS NULL OR id = (SELECT max(t.group_id) FROM trainings t"         \
    "   JOIN agents a ON a.id = t.agent_id WHERE a.user_id IN (" D##_JSON_TEXTS("?1") "))"    \
    " ORDER BY id DESC LIMIT 1"

int storage_groups_latest(storage_conn *db, const char *only, group_row *out, ad_err *e)
{
    sql_stmt *st = storage_stmt2(db, GROUPS_LATEST_SQL(SQL_LITE), GROUPS_LATEST_SQL(SQL_PG));
    if (only) sql_bind_text(st, 1, only);
    int rc = sql_step(st);
    if (rc == SQL_ROW) {
        out->id = sql_column_int64(st, 0);
        out->cycles = sql_column_int(st, 1);
        out->total_agents = sql_column_int(st, 2);
        out->created_at = sql_column_int64(st, 3);
        out->stopped_at = sql_column_int64(st, 4);
    }
    sql_reset(st);
    if (rc == SQL_ROW) return 0;
    if (rc == SQL_DONE) return ad_err_set(e, AD_ENOTFOUND, "no training group");
    return storage_fail(db, rc, "read training group", e);
}

/* Two dialects for reading a number out of the stored metrics
 * (storage/dialect.h). */
#define GROUPS_RUNS_SQL(D)                                                                     \
    "SELECT a.user_id, t.status, t.done_iterations, t.iterations,"                            \
    " coalesce((SELECT max(" D##_JSON_REAL("i.metrics", "quality_score") ")"                  \
    "           FROM training_iterations i WHERE i.training_id = t.id), -1),"                 \
    " CASE WHEN t.status = 'done' THEN coalesce((SELECT v.quality FROM versions v"            \
    "           WHERE v.id = t.version_id), -1) ELSE -1 END,"                                 \
    " coalesce((SELECT v.quality FROM versions v WHERE v.id = a.deployed_version_id), -1),"  \
    " coalesce(t.finished_at, 0)"                                                             \
    " FROM trainings t JOIN agents a ON a.id = t.agent_id WHERE t.group_id = ?1"              \
    " ORDER BY a.user_id"

int storage_groups_runs(storage_conn *db, int64_t group_id, group_run_fn fn, void *ud, ad_err *e)
{
    /* The best quality so far is read from the iterations' stored metrics,
     * the only place it exists before the run ends. */
    sql_stmt *st = storage_stmt2(db, GROUPS_RUNS_SQL(SQL_LITE), GROUPS_RUNS_SQL(SQL_PG));
    sql_bind_int64(st, 1, group_id);
    int rc;
    while ((rc = sql_step(st)) == SQL_ROW) {
        group_run r = {
            .user_id = sql_column_text(st, 0),
            .done_iterations = sql_column_int(st, 2),
            .iterations = sql_column_int(st, 3),
            .best_quality = sql_column_double(st, 4),
            .version_quality = sql_column_double(st, 5),
            .deployed_quality = sql_column_double(st, 6),
            .finished_at = sql_column_int64(st, 7),
        };
        if (training_state_from_string(sql_column_text(st, 1), &r.status, NULL) < 0) {
            sql_reset(st);
            return ad_err_set(e, AD_EINTERNAL, "a training row holds an unknown status");
        }
        fn(ud, &r);
    }
    sql_reset(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "read training group", e);
}

/* The runs stopped (?3: the JSON array of user_ids the caller sees, NULL
 * for all), then each run's job, found by the run id in its params. Two
 * dialects for the JSON (storage/dialect.h). */
#define GROUPS_STOP_RUNS_SQL(D)                                                                \
    "UPDATE trainings SET status = 'cancelled', finished_at = ?1, error = ?2"                 \
    " WHERE group_id IS NOT NULL AND status IN ('queued', 'running')"                         \
    " AND (CAST(?3 AS TEXT) IS NULL OR agent_id IN (SELECT id FROM agents"                    \
    "      WHERE user_id IN (" D##_JSON_TEXTS("?3") ")))"                                    \
    " RETURNING id, agent_id, group_id"
#define GROUPS_STOP_JOB_SQL(D)                                                                 \
    "UPDATE jobs SET state = 'cancelled', error = 'training stopped', updated_at = ?3"        \
    " WHERE agent_id = ?1 AND state IN ('queued', 'running')"                                 \
    " AND " D##_JSON_INT("params", "training_id") " = ?2"

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
    sql_stmt *st = storage_stmt2(db, GROUPS_STOP_RUNS_SQL(SQL_LITE), GROUPS_STOP_RUNS_SQL(SQL_PG));
    sql_bind_int64(st, 1, now);
    sql_bind_text(st, 2, why);
    if (only) sql_bind_text(st, 3, only);
    while ((rc = sql_step(st)) == SQL_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            runs = ad_realloc(runs, ad_size_mul((size_t)cap, 3 * sizeof(*runs)));
        }
        for (int c = 0; c < 3; c++) runs[3 * n + c] = sql_column_int64(st, c);
        n++;
    }
    sql_reset(st);
    rc = rc == SQL_DONE ? 0 : storage_fail(db, rc, "stop training group", e);
    /* Each run's job (one active job per agent, carrying the run's id), and
     * its group's stop time. */
    for (int64_t i = 0; i < n && rc == 0; i++) {
        st = storage_stmt2(db, GROUPS_STOP_JOB_SQL(SQL_LITE), GROUPS_STOP_JOB_SQL(SQL_PG));
        sql_bind_int64(st, 1, runs[3 * i + 1]);
        sql_bind_int64(st, 2, runs[3 * i]);
        sql_bind_int64(st, 3, now);
        rc = sql_step(st);
        rc = rc == SQL_DONE ? 0 : storage_fail(db, rc, "stop training job", e);
        if (rc < 0) break;
        st = storage_stmt(db, "UPDATE training_groups SET stopped_at = ?2 WHERE id = ?1");
        sql_bind_int64(st, 1, runs[3 * i + 2]);
        sql_bind_int64(st, 2, now);
        rc = sql_step(st);
        rc = rc == SQL_DONE ? 0 : storage_fail(db, rc, "stop training group", e);
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

/* ?1 the quality of a high performer, ?2 the JSON array of user_ids the
 * caller sees (NULL: all). The high performers are counted by a CASE, not
 * by summing a comparison: PostgreSQL's comparison is a boolean, which
 * sum() refuses. Two dialects for the JSON (storage/dialect.h). */
#define TRAINING_TOTALS_SQL(D)                                                                 \
    "SELECT count(*), count(v.quality), coalesce(avg(v.quality), 0),"                        \
    " coalesce(CAST(sum(CASE WHEN v.quality >= ?1 THEN 1 ELSE 0 END) AS BIGINT), 0)"         \
    " FROM agents a LEFT JOIN versions v ON v.id = a.deployed_version_id"                     \
    " WHERE CAST(?2 AS TEXT) IS NULL OR a.user_id IN (" D##_JSON_TEXTS("?2") ")"

int storage_training_totals(storage_conn *db, double high, const char *only, training_totals *out, ad_err *e)
{
    sql_stmt *st = storage_stmt2(db, TRAINING_TOTALS_SQL(SQL_LITE), TRAINING_TOTALS_SQL(SQL_PG));
    sql_bind_double(st, 1, high);
    if (only) sql_bind_text(st, 2, only);
    int rc = sql_step(st);
    if (rc == SQL_ROW) {
        out->total_users = sql_column_int64(st, 0);
        out->users_with_metrics = sql_column_int64(st, 1);
        out->average_quality = sql_column_double(st, 2);
        out->high_performers = sql_column_int64(st, 3);
    }
    sql_reset(st);
    return rc == SQL_ROW ? 0 : storage_fail(db, rc, "count agents", e);
}

/* ?1 the cursor (a user_id, NULL: from the first), ?2 the limit, ?3 the
 * JSON array of user_ids the caller sees (NULL: all). Two dialects for the
 * JSON (storage/dialect.h). */
#define TRAINING_EACH_SQL(D)                                                                   \
    "SELECT a.user_id, a.status, coalesce(v.quality, -1),"                                    \
    " (SELECT count(*) FROM trainings t WHERE t.agent_id = a.id),"                            \
    " coalesce((SELECT t.finished_at FROM trainings t WHERE t.agent_id = a.id"                \
    "           AND t.finished_at IS NOT NULL ORDER BY t.id DESC LIMIT 1), 0)"                \
    " FROM agents a LEFT JOIN versions v ON v.id = a.deployed_version_id"                     \
    " WHERE (CAST(?1 AS TEXT) IS NULL OR a.user_id > ?1)"                                     \
    " AND (CAST(?3 AS TEXT) IS NULL OR a.user_id IN (" D##_JSON_TEXTS("?3") "))"            \
    " ORDER BY a.user_id LIMIT ?2"

int storage_training_each(storage_conn *db, const char *only, const char *after, int limit, agent_training_fn fn,
                          void *ud, int *more, ad_err *e)
{
    sql_stmt *st = storage_stmt2(db, TRAINING_EACH_SQL(SQL_LITE), TRAINING_EACH_SQL(SQL_PG));
    if (after) sql_bind_text(st, 1, after);
    if (only) sql_bind_text(st, 3, only);
    sql_bind_int(st, 2, limit + 1);
    int rc, seen = 0;
    *more = 0;
    while ((rc = sql_step(st)) == SQL_ROW) {
        if (seen++ == limit) {
            *more = 1;
            continue;
        }
        agent_training a = {
            .user_id = sql_column_text(st, 0),
            .quality = sql_column_double(st, 2),
            .sessions = sql_column_int64(st, 3),
            .last_training = sql_column_int64(st, 4),
        };
        if (agent_state_from_string(sql_column_text(st, 1), &a.status, NULL) < 0) {
            sql_reset(st);
            return ad_err_set(e, AD_EINTERNAL, "an agent row holds an unknown status");
        }
        fn(ud, &a);
    }
    sql_reset(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "read agents", e);
}

int storage_feedback_add(storage_conn *db, int64_t agent_id, const char *prompt, const char *response,
                         const char *feedback, int rating, int64_t *id, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "INSERT INTO feedback (agent_id, prompt, response, feedback, rating, created_at)"
        " VALUES (?1, ?2, ?3, ?4, nullif(CAST(?5 AS BIGINT), 0), ?6) RETURNING id");
    sql_bind_int64(st, 1, agent_id);
    sql_bind_text(st, 2, prompt);
    sql_bind_text(st, 3, response);
    sql_bind_text(st, 4, feedback);
    sql_bind_int(st, 5, rating);
    sql_bind_int64(st, 6, ad_clock_now_ms());
    int rc = sql_step_id(st, id);
    if (rc != SQL_DONE) return storage_fail(db, rc, "store feedback", e);
    return 0;
}

int storage_feedback_each(storage_conn *db, int64_t agent_id, int64_t before, int limit,
                          feedback_visit_fn fn, void *ud, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "SELECT id, prompt, response, feedback, coalesce(rating, 0), created_at FROM feedback"
        " WHERE agent_id = ?1 AND (CAST(?2 AS BIGINT) = 0 OR id < ?2) ORDER BY id DESC LIMIT ?3");
    sql_bind_int64(st, 1, agent_id);
    sql_bind_int64(st, 2, before);
    sql_bind_int(st, 3, limit);
    int rc;
    while ((rc = sql_step(st)) == SQL_ROW) {
        feedback_row f = {
            .id = sql_column_int64(st, 0),
            .prompt = sql_column_text(st, 1),
            .response = sql_column_text(st, 2),
            .feedback = sql_column_text(st, 3),
            .rating = sql_column_int(st, 4),
            .created_at = sql_column_int64(st, 5),
        };
        fn(ud, &f);
    }
    sql_reset(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "read feedback", e);
}
