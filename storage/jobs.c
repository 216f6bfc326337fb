#include "storage/jobs.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/mem.h"
#include "storage/conn.h"
#include "storage/internal.h"

/* The channel enqueue, release and postpone notify, and listeners LISTEN on. */
#define JOBS_CHANNEL "agentd_jobs"

/* This replica's lease (storage_jobs_set_owner): set once at start, read by
 * every hold, so a lock rather than trusting the order of thread starts. */
static pthread_mutex_t jobs_owner_lock = PTHREAD_MUTEX_INITIALIZER;
static char jobs_owner[STORAGE_JOBS_OWNER_MAX];
static int64_t jobs_lease_ms = 15000;

/* The connection this thread LISTENs on (storage_jobs_wait), NULL when it
 * must LISTEN (again): a connection the driver reopened listens to nothing. */
static _Thread_local storage_conn *jobs_listening;

void storage_jobs_set_owner(const char *owner, int64_t lease_ms)
{
    pthread_mutex_lock(&jobs_owner_lock);
    snprintf(jobs_owner, sizeof(jobs_owner), "%s", owner ? owner : "");
    jobs_lease_ms = lease_ms;
    pthread_mutex_unlock(&jobs_owner_lock);
}

/* Copies this replica's owner into `owner` and returns its lease length. */
static int64_t jobs_replica(char owner[STORAGE_JOBS_OWNER_MAX])
{
    pthread_mutex_lock(&jobs_owner_lock);
    memcpy(owner, jobs_owner, STORAGE_JOBS_OWNER_MAX);
    int64_t lease_ms = jobs_lease_ms;
    pthread_mutex_unlock(&jobs_owner_lock);
    return lease_ms;
}

void job_row_cleanup(job_row *j)
{
    free(j->params);
    j->params = NULL;
}

/* Inside the caller's transaction: tells every replica's listener that a job
 * may be claimed, at commit (PostgreSQL); SQLite's one process is told by
 * its callers (pipeline_pool_notify). */
static int jobs_notify(storage_conn *db, ad_err *e)
{
    if (!storage_is_pg(db)) return 0;
    sql_stmt *st = storage_stmt(db, "SELECT pg_notify('" JOBS_CHANNEL "', '')");
    int rc = sql_step(st);
    if (rc == SQL_ROW) rc = sql_step(st);
    sql_reset(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "notify job", e);
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
    int n = jobs_notify(db, e);
    if (n < 0) return n;
    if (job_id) *job_id = id;
    return 0;
}

int storage_jobs_hold(storage_conn *db, int64_t job_id, ad_err *e)
{
    char owner[STORAGE_JOBS_OWNER_MAX];
    int64_t lease_ms = jobs_replica(owner);
    sql_stmt *st = storage_stmt(db,
        "UPDATE jobs SET updated_at = ?2, lease_expires_at = ?3"
        " WHERE id = ?1 AND state = 'running' AND lease_owner = ?4");
    int64_t now = ad_clock_now_ms();
    sql_bind_int64(st, 1, job_id);
    sql_bind_int64(st, 2, now);
    sql_bind_int64(st, 3, now + lease_ms);
    sql_bind_text(st, 4, owner);
    int rc = sql_step(st);
    if (rc != SQL_DONE) return storage_fail(db, rc, "check job", e);
    return sql_changes(st) == 1 ? 0 : ad_err_set(e, AD_ECANCELLED, "the job was cancelled");
}

/* The claim's two texts differ only by PostgreSQL's locking clause. A
 * running job whose lease has expired is a dead replica's (or, on SQLite,
 * one recovery expired); never this owner's own, which a live worker of
 * this process holds. One job per agent is queued or running at a time (a
 * unique index), so the oldest claimable job never waits for its agent. */
#define JOBS_CLAIM_SET \
    "UPDATE jobs SET state = 'running', attempts = attempts + 1, updated_at = ?2," \
    " lease_owner = ?1, lease_expires_at = ?3 WHERE id = (SELECT id FROM jobs" \
    " WHERE state = 'queued' OR (state = 'running' AND coalesce(lease_expires_at, 0) < ?2" \
    " AND (lease_owner IS NULL OR lease_owner <> ?1)) ORDER BY id LIMIT 1"
#define JOBS_CLAIM_RETURNING ") RETURNING id, agent_id, kind, start_stage, params, attempts"

int storage_jobs_claim(storage_conn *db, const char *owner, int64_t lease_ms, job_row *out,
                       ad_err *e)
{
    sql_stmt *st = storage_stmt2(db, JOBS_CLAIM_SET JOBS_CLAIM_RETURNING,
                                 JOBS_CLAIM_SET " FOR UPDATE SKIP LOCKED" JOBS_CLAIM_RETURNING);
    int64_t now = ad_clock_now_ms();
    sql_bind_text(st, 1, owner);
    sql_bind_int64(st, 2, now);
    sql_bind_int64(st, 3, now + lease_ms);
    int rc = sql_step(st);
    if (rc == SQL_ROW) {
        memset(out, 0, sizeof(*out));
        out->id = sql_column_int64(st, 0);
        out->agent_id = sql_column_int64(st, 1);
        const char *kind = sql_column_text(st, 2);
        strncpy(out->kind, kind ? kind : "", sizeof(out->kind) - 1);
        out->start_stage = sql_column_int(st, 3);
        const char *params = sql_column_text(st, 4);
        out->params = params ? ad_strdup(params) : NULL;
        out->attempts = sql_column_int(st, 5);
        rc = sql_step(st);
        sql_reset(st);
        if (rc == SQL_DONE) return 0;
        job_row_cleanup(out);
        return storage_fail(db, rc, "claim job", e);
    }
    sql_reset(st);
    if (rc == SQL_DONE) return AD_ENOTFOUND;
    return storage_fail(db, rc, "claim job", e);
}

int storage_jobs_renew(storage_conn *db, const char *owner, int64_t lease_ms, int *renewed,
                       ad_err *e)
{
    /* PostgreSQL: a row another transaction has locked is skipped, not
     * waited for. It is this replica's unit of work holding its job (whose
     * hold renewed the lease), a claim taking it over, or a unit of work
     * cancelling or deleting it; and such a unit may lock several jobs' rows
     * in its own order, which a renew waiting on row locks could deadlock. */
    sql_stmt *st = storage_stmt2(db,
        "UPDATE jobs SET lease_expires_at = ?2 WHERE state = 'running' AND lease_owner = ?1",
        "UPDATE jobs SET lease_expires_at = ?2 WHERE id IN (SELECT id FROM jobs"
        " WHERE state = 'running' AND lease_owner = ?1 FOR UPDATE SKIP LOCKED)");
    sql_bind_text(st, 1, owner);
    sql_bind_int64(st, 2, ad_clock_now_ms() + lease_ms);
    int rc = sql_step(st);
    if (rc != SQL_DONE) return storage_fail(db, rc, "renew job leases", e);
    if (renewed) *renewed = (int)sql_changes(st);
    return 0;
}

int storage_jobs_next_expiry(storage_conn *db, const char *owner, int64_t *expires_at, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "SELECT coalesce(min(lease_expires_at), 0) FROM jobs"
        " WHERE state = 'running' AND (lease_owner IS NULL OR lease_owner <> ?1)");
    sql_bind_text(st, 1, owner);
    int rc = sql_step(st);
    int64_t at = rc == SQL_ROW ? sql_column_int64(st, 0) : 0;
    sql_reset(st);
    if (rc != SQL_ROW) {
        /* The listener's connection failed: if the driver reopens it, the
         * new one listens to nothing until storage_jobs_wait LISTENs again. */
        if (db == jobs_listening) jobs_listening = NULL;
        return storage_fail(db, rc, "read job leases", e);
    }
    *expires_at = at;
    return 0;
}

/* Sets the state of a job this replica holds: AD_ECANCELLED when it does
 * not (another replica took it over, or it ended or went). */
static int jobs_set_state(storage_conn *db, int64_t job_id, job_state state, const char *error,
                          ad_err *e)
{
    char owner[STORAGE_JOBS_OWNER_MAX];
    jobs_replica(owner);
    sql_stmt *st = storage_stmt(db,
        "UPDATE jobs SET state = ?2, error = ?3, updated_at = ?4"
        " WHERE id = ?1 AND state = 'running' AND lease_owner = ?5");
    sql_bind_int64(st, 1, job_id);
    sql_bind_text(st, 2, job_state_to_string(state));
    if (error) sql_bind_text(st, 3, error);
    sql_bind_int64(st, 4, ad_clock_now_ms());
    sql_bind_text(st, 5, owner);
    int rc = sql_step(st);
    if (rc != SQL_DONE) return storage_fail(db, rc, "update job", e);
    return sql_changes(st) == 1 ? 0 : ad_err_set(e, AD_ECANCELLED, "the job is not this replica's");
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

/* Runs `sql` (?1 job id, ?2 now, ?3 this replica) that puts a job this
 * replica holds back in the queue, and when it did, clears its agent's eta
 * and wakes the workers, in one unit of work. Returns 1 when the job was
 * put back, 0 when it was not held, or an error. */
static int jobs_put_back(storage_conn *db, const char *sql, int64_t job_id, const char *what, ad_err *e)
{
    char owner[STORAGE_JOBS_OWNER_MAX];
    jobs_replica(owner);
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    sql_stmt *st = storage_stmt(db, sql);
    sql_bind_int64(st, 1, job_id);
    sql_bind_int64(st, 2, ad_clock_now_ms());
    sql_bind_text(st, 3, owner);
    int step = sql_step(st);
    int changed = step == SQL_DONE && sql_changes(st) > 0;
    rc = step == SQL_DONE ? 0 : storage_fail(db, step, what, e);
    if (rc == 0 && changed) rc = jobs_clear_eta(db, job_id, e);
    if (rc == 0 && changed) rc = jobs_notify(db, e);
    rc = storage_end(db, rc, e);
    return rc < 0 ? rc : changed;
}

int storage_jobs_release(storage_conn *db, int64_t job_id, ad_err *e)
{
    /* Only a held job goes back: one cancelled meanwhile (a training stop)
     * stays cancelled, however late its worker lets go, and one another
     * replica took over stays its. */
    int rc = jobs_put_back(db,
        "UPDATE jobs SET state = 'queued', error = NULL, updated_at = ?2, lease_owner = NULL,"
        " lease_expires_at = NULL WHERE id = ?1 AND state = 'running' AND lease_owner = ?3",
        job_id, "release job", e);
    return rc < 0 ? rc : 0;
}

int storage_jobs_postpone(storage_conn *db, int64_t job_id, ad_err *e)
{
    return jobs_put_back(db,
        "UPDATE jobs SET state = 'queued', attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,"
        " updated_at = ?2, lease_owner = NULL, lease_expires_at = NULL"
        " WHERE id = ?1 AND state = 'running' AND lease_owner = ?3", job_id, "postpone job", e);
}

int storage_jobs_recover(storage_conn *db, int *count, ad_err *e)
{
    if (count) *count = 0;
    if (storage_is_pg(db)) return 0;
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    sql_stmt *st = storage_stmt(db,
        "UPDATE jobs SET lease_owner = NULL, lease_expires_at = 0 WHERE state = 'running'");
    int step = sql_step(st);
    if (step != SQL_DONE) rc = storage_fail(db, step, "recover jobs", e);
    int n = rc == 0 ? (int)sql_changes(st) : 0;
    /* At start no job runs: every eta_at left is from before the stop. */
    if (rc == 0) {
        step = sql_step(storage_stmt(db, "UPDATE agents SET eta_at = NULL WHERE eta_at IS NOT NULL"));
        if (step != SQL_DONE) rc = storage_fail(db, step, "recover jobs", e);
    }
    rc = storage_end(db, rc, e);
    if (rc < 0) return rc;
    if (count) *count = n;
    return 0;
}

int storage_jobs_shared(storage_conn *db)
{
    return storage_is_pg(db);
}

int storage_jobs_wait(storage_conn *db, int timeout_ms, ad_err *e)
{
    if (!storage_is_pg(db)) return 0;
    if (jobs_listening != db) {
        int rc = pg_listen(db, JOBS_CHANNEL, e);
        if (rc < 0) return rc;
        jobs_listening = db;
    }
    int rc = pg_wait_notify(db, timeout_ms);
    if (rc < 0) {
        jobs_listening = NULL;
        return ad_err_set(e, rc, "the connection waiting for jobs failed");
    }
    return rc;
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
