#include "storage/jobs.h"

#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/mem.h"
#include "storage/internal.h"

void job_row_cleanup(job_row *j)
{
    free(j->params);
    j->params = NULL;
}

int storage_jobs_enqueue(storage_conn *db, int64_t agent_id, const job_spec *job, int64_t *job_id,
                         ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "INSERT INTO jobs (agent_id, kind, start_stage, state, params, created_at, updated_at) "
        "VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?5) RETURNING id");
    int64_t now = ad_clock_now_ms();
    sql_bind_int64(st, 1, agent_id);
    sql_bind_text(st, 2, job->kind);
    sql_bind_int(st, 3, job->start_stage);
    if (job->params) sql_bind_text(st, 4, job->params);
    sql_bind_int64(st, 5, now);
    int64_t id = 0;
    int rc = sql_step_id(st, &id);
    if (rc == SQL_EUNIQUE)
        return ad_err_set(e, AD_ECONFLICT, "the agent already has a job queued or running");
    if (rc != SQL_DONE) return storage_fail(db, rc, "queue job", e);
    if (job_id) *job_id = id;
    return 0;
}

int storage_jobs_hold(storage_conn *db, int64_t job_id, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "UPDATE jobs SET updated_at = ?2 WHERE id = ?1 AND state = 'running'");
    sql_bind_int64(st, 1, job_id);
    sql_bind_int64(st, 2, ad_clock_now_ms());
    int rc = sql_step(st);
    if (rc != SQL_DONE) return storage_fail(db, rc, "check job", e);
    return sql_changes(st) == 1 ? 0 : ad_err_set(e, AD_ECANCELLED, "the job was cancelled");
}

int storage_jobs_claim(storage_conn *db, job_row *out, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, updated_at = ?1 "
        "WHERE id = (SELECT id FROM jobs WHERE state = 'queued' AND agent_id NOT IN "
        "  (SELECT agent_id FROM jobs WHERE state = 'running') ORDER BY id LIMIT 1) "
        "RETURNING id, agent_id, kind, start_stage, params, attempts");
    sql_bind_int64(st, 1, ad_clock_now_ms());
    int rc = sql_step(st);
    if (rc == SQL_ROW) {
        memset(out, 0, sizeof(*out));
        out->id = sql_column_int64(st, 0);
        out->agent_id = sql_column_int64(st, 1);
        const char *kind = sql_column_text(st, 2);
        strncpy(out->kind, kind ? (const char *)kind : "", sizeof(out->kind) - 1);
        out->start_stage = sql_column_int(st, 3);
        const char *params = sql_column_text(st, 4);
        out->params = params ? ad_strdup((const char *)params) : NULL;
        out->attempts = sql_column_int(st, 5);
        rc = sql_step(st);
        sql_reset(st);
        return rc == SQL_DONE ? 0 : storage_fail(db, rc, "claim job", e);
    }
    sql_reset(st);
    if (rc == SQL_DONE) return AD_ENOTFOUND;
    return storage_fail(db, rc, "claim job", e);
}

static int jobs_set_state(storage_conn *db, int64_t job_id, job_state state, const char *error,
                          ad_err *e)
{
    sql_stmt *st =
        storage_stmt(db, "UPDATE jobs SET state = ?2, error = ?3, updated_at = ?4 WHERE id = ?1");
    sql_bind_int64(st, 1, job_id);
    sql_bind_text(st, 2, job_state_to_string(state));
    if (error) sql_bind_text(st, 3, error);
    sql_bind_int64(st, 4, ad_clock_now_ms());
    int rc = sql_step(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "update job", e);
}

int storage_jobs_finish(storage_conn *db, int64_t job_id, job_state state, const char *error,
                        ad_err *e)
{
    return jobs_set_state(db, job_id, state, error, e);
}

int storage_jobs_fail_agent(storage_conn *db, int64_t job_id, int64_t agent_id, const char *why,
                            ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    rc = jobs_set_state(db, job_id, JOB_FAILED, why, e);
    if (rc == 0) rc = storage_agents_set_state(db, agent_id, AGENT_ERROR, NULL, 0, why, 0, e);
    return storage_end(db, rc, e);
}

/* A job put back in the queue no longer runs: its agent's eta_at (shown
 * on status as eta_s) goes, inside the caller's unit of work, and the next
 * claim writes a fresh one. */
static int jobs_clear_eta(storage_conn *db, int64_t job_id, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "UPDATE agents SET eta_at = NULL"
        " WHERE id = (SELECT agent_id FROM jobs WHERE id = ?1) AND eta_at IS NOT NULL");
    sql_bind_int64(st, 1, job_id);
    int rc = sql_step(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "clear agent eta", e);
}

/* Runs `sql` (?1 job id, ?2 now) that puts a running job back, and clears
 * its agent's eta when it did, in one unit of work. Returns 1 when the job
 * was put back, 0 when it was no longer running, or an error. */
static int jobs_put_back(storage_conn *db, const char *sql, int64_t job_id, const char *what, ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    sql_stmt *st = storage_stmt(db, sql);
    sql_bind_int64(st, 1, job_id);
    sql_bind_int64(st, 2, ad_clock_now_ms());
    int step = sql_step(st);
    int changed = step == SQL_DONE && sql_changes(st) > 0;
    rc = step == SQL_DONE ? 0 : storage_fail(db, step, what, e);
    if (rc == 0 && changed) rc = jobs_clear_eta(db, job_id, e);
    rc = storage_end(db, rc, e);
    return rc < 0 ? rc : changed;
}

int storage_jobs_release(storage_conn *db, int64_t job_id, ad_err *e)
{
    /* Only a running job goes back: one cancelled meanwhile (a training
     * stop) stays cancelled, however late its worker lets go. */
    int rc = jobs_put_back(db,
        "UPDATE jobs SET state = 'queued', error = NULL, updated_at = ?2"
        " WHERE id = ?1 AND state = 'running'", job_id, "release job", e);
    return rc < 0 ? rc : 0;
}

int storage_jobs_postpone(storage_conn *db, int64_t job_id, ad_err *e)
{
    return jobs_put_back(db,
        "UPDATE jobs SET state = 'queued', attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, updated_at = ?2"
        " WHERE id = ?1 AND state = 'running'", job_id, "postpone job", e);
}

int storage_jobs_requeue_running(storage_conn *db, int *count, ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    sql_stmt *st = storage_stmt(db, "UPDATE jobs SET state = 'queued' WHERE state = 'running'");
    int step = sql_step(st);
    if (step != SQL_DONE) rc = storage_fail(db, step, "requeue jobs", e);
    int n = rc == 0 ? sql_changes(st) : 0;
    /* At start no job runs: every eta_at left is from before the stop. */
    if (rc == 0) {
        step = sql_step(storage_stmt(db, "UPDATE agents SET eta_at = NULL WHERE eta_at IS NOT NULL"));
        if (step != SQL_DONE) rc = storage_fail(db, step, "requeue jobs", e);
    }
    rc = storage_end(db, rc, e);
    if (rc < 0) return rc;
    if (count) *count = n;
    return 0;
}

int storage_jobs_depth(storage_conn *db, int64_t *queued, int64_t *running, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "SELECT (SELECT count(*) FROM jobs WHERE state = 'queued'),"
        "       (SELECT count(*) FROM jobs WHERE state = 'running')");
    int rc = sql_step(st);
    if (rc != SQL_ROW) return storage_fail(db, rc, "count jobs", e);
    *queued = sql_column_int64(st, 0);
    *running = sql_column_int64(st, 1);
    sql_reset(st);
    return 0;
}
