#include "storage/executions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/clock.h"
#include "base/mem.h"
#include "storage/jobs.h"
#include "storage/internal.h"

void exec_row_cleanup(exec_row *r)
{
    free(r->expected_output);
    free(r->inputs);
    free(r->output);
    r->expected_output = r->inputs = r->output = NULL;
}

/* A random RFC 4122 version-4 UUID. */
static void exec_uuid(char out[37])
{
    unsigned char b[16];
    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
        uint64_t t = (uint64_t)ad_clock_now_ms() ^ (uint64_t)(uintptr_t)out;
        for (int i = 0; i < 16; i++) b[i] = (unsigned char)(t >> ((i % 8) * 8)) ^ (unsigned char)i;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

int storage_exec_create_log(storage_conn *db, int64_t agent_id, const exec_plan *plan, int64_t now,
                            ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "INSERT INTO executions (agent_id, task_index, task_id, name, expected_output, status,"
        " timestamp) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6)");
    for (int i = 0; i < plan->count; i++) {
        char id[37];
        exec_uuid(id);
        sql_reset(st);
        sql_bind_int64(st, 1, agent_id);
        sql_bind_int(st, 2, i);
        sql_bind_text(st, 3, id);
        sql_bind_text(st, 4, plan->names[i]);
        sql_bind_text(st, 5, plan->outputs[i]);
        sql_bind_int64(st, 6, now);
        int rc = sql_step(st);
        if (rc != SQL_DONE) return storage_fail(db, rc, "create execution log", e);
    }
    return 0;
}

/* Marks a stage running for `job_id`; `replayed` sets was_replayed. */
static int exec_start(storage_conn *db, int64_t agent_id, int task_index, int64_t job_id,
                      int replayed, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "UPDATE executions SET status = 'running', job_id = ?3, inputs = '{}',"
        " was_replayed = ?4, started_at = ?5, finished_at = NULL, duration_ms = NULL,"
        " timestamp = ?5 WHERE agent_id = ?1 AND task_index = ?2");
    sql_bind_int64(st, 1, agent_id);
    sql_bind_int(st, 2, task_index);
    sql_bind_int64(st, 3, job_id);
    sql_bind_int(st, 4, replayed ? 1 : 0);
    sql_bind_int64(st, 5, ad_clock_now_ms());
    int rc = sql_step(st);
    if (rc != SQL_DONE) return storage_fail(db, rc, "start stage", e);
    return sql_changes(st) ? 0 : ad_err_set(e, AD_ENOTFOUND, "execution log row missing");
}

/* Stores a stage's inputs (when not NULL) and output and marks it completed
 * or failed with its duration. */
static int exec_finish(storage_conn *db, int64_t agent_id, int task_index, exec_status status,
                       const char *inputs, const char *output, int64_t duration_ms, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "UPDATE executions SET status = ?3, output = ?4, finished_at = ?5, duration_ms = ?6,"
        " timestamp = ?5, inputs = coalesce(?7, inputs) WHERE agent_id = ?1 AND task_index = ?2");
    sql_bind_int64(st, 1, agent_id);
    sql_bind_int(st, 2, task_index);
    sql_bind_text(st, 3, exec_status_to_string(status));
    if (output) sql_bind_text(st, 4, output);
    sql_bind_int64(st, 5, ad_clock_now_ms());
    sql_bind_int64(st, 6, duration_ms);
    if (inputs) sql_bind_text(st, 7, inputs);
    int rc = sql_step(st);
    if (rc != SQL_DONE) return storage_fail(db, rc, "finish stage", e);
    return sql_changes(st) ? 0 : ad_err_set(e, AD_ENOTFOUND, "execution log row missing");
}

int storage_exec_write_step(storage_conn *db, const exec_step *s, const char *output, ad_err *e)
{
    int last = s->next_stage == NULL;
    int rc = storage_jobs_hold(db, s->job_id, e);
    if (rc == 0)
        rc = exec_finish(db, s->agent_id, s->task_index, EXEC_COMPLETED, s->inputs,
                         output ? output : s->output, s->duration_ms, e);
    if (rc == 0)
        rc = storage_agents_set_state(db, s->agent_id, last ? AGENT_READY : AGENT_PROCESSING,
                                      s->next_stage, s->progress, NULL, last ? 0 : s->eta_at, e);
    if (rc == 0 && !last) rc = exec_start(db, s->agent_id, s->task_index + 1, s->job_id, s->replayed, e);
    if (rc == 0 && last) rc = storage_jobs_finish(db, s->job_id, JOB_DONE, NULL, e);
    return rc;
}

int storage_exec_start_job(storage_conn *db, int64_t agent_id, int64_t job_id, int task_index,
                           const char *stage, int progress, int replayed, int64_t eta_at, ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    rc = storage_jobs_hold(db, job_id, e);
    if (rc == 0)
        rc = storage_agents_set_state(db, agent_id, AGENT_PROCESSING, stage, progress, NULL, eta_at, e);
    if (rc == 0) rc = exec_start(db, agent_id, task_index, job_id, replayed, e);
    return storage_end(db, rc, e);
}

int storage_exec_fail_stage(storage_conn *db, int64_t agent_id, int64_t job_id, int task_index,
                            const char *stage, int progress, const char *reason, const char *output,
                            ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    rc = storage_jobs_hold(db, job_id, e);
    if (rc == 0) rc = storage_agents_set_state(db, agent_id, AGENT_ERROR, stage, progress, reason, 0, e);
    if (rc == 0) rc = exec_finish(db, agent_id, task_index, EXEC_FAILED, NULL, output, 0, e);
    if (rc == 0) rc = storage_jobs_finish(db, job_id, JOB_FAILED, reason, e);
    return storage_end(db, rc, e);
}

int storage_exec_finish_job(storage_conn *db, int64_t agent_id, int64_t job_id, ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    rc = storage_jobs_hold(db, job_id, e);
    if (rc == 0) rc = storage_agents_set_state(db, agent_id, AGENT_READY, NULL, 100, NULL, 0, e);
    if (rc == 0) rc = storage_jobs_finish(db, job_id, JOB_DONE, NULL, e);
    return storage_end(db, rc, e);
}

/* The reset's unit of work: see storage_exec_reset. */
static int exec_reset(storage_conn *db, int64_t agent_id, int *count, ad_err *e)
{
    /* A job queued outside a unit of work (a replay's single insert) does
     * not wait for the unit lock, and on PostgreSQL the check below would
     * not see it while its insert is uncommitted. That insert holds a key
     * share lock on the agent's row (its foreign key) until it commits: FOR
     * UPDATE waits for it, and the next statement, with a fresh snapshot,
     * sees the job. SQLite's BEGIN IMMEDIATE already waits for every other
     * writer and has no FOR UPDATE: two dialects of one lock. */
    sql_stmt *st = storage_stmt2(db, "SELECT id FROM agents WHERE id = ?1",
                                 "SELECT id FROM agents WHERE id = ?1 FOR UPDATE");
    sql_bind_int64(st, 1, agent_id);
    int rc = sql_step(st);
    sql_reset(st);
    if (rc != SQL_ROW && rc != SQL_DONE) return storage_fail(db, rc, "lock agent", e);
    /* The job check is part of the update: checked apart, a job queued in
     * between would run on (or replay from) a log wiped under it. */
    st = storage_stmt(db,
        "UPDATE executions SET status = 'pending', inputs = '{}', output = NULL, job_id = NULL,"
        " was_replayed = 0, started_at = NULL, finished_at = NULL, duration_ms = NULL,"
        " timestamp = ?2 WHERE agent_id = ?1 AND NOT EXISTS (SELECT 1 FROM jobs"
        " WHERE agent_id = ?1 AND state IN ('queued', 'running'))");
    sql_bind_int64(st, 1, agent_id);
    sql_bind_int64(st, 2, ad_clock_now_ms());
    rc = sql_step(st);
    if (rc != SQL_DONE) return storage_fail(db, rc, "reset execution log", e);
    *count = sql_changes(st);
    if (*count) return 0;
    /* Nothing reset: an agent's log always has its rows, so a job held it,
     * or the agent is gone (deleted since its caller looked it up). */
    st = storage_stmt(db,
        "SELECT count(*) FROM jobs WHERE agent_id = ?1 AND state IN ('queued', 'running')");
    sql_bind_int64(st, 1, agent_id);
    rc = sql_step(st);
    int active = rc == SQL_ROW && sql_column_int(st, 0) > 0;
    sql_reset(st);
    if (rc != SQL_ROW) return storage_fail(db, rc, "check jobs", e);
    return active ? ad_err_set(e, AD_ECONFLICT, "the agent has a job queued or running")
                  : ad_err_set(e, AD_ENOTFOUND, "agent not found");
}

int storage_exec_reset(storage_conn *db, int64_t agent_id, int *count, ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    rc = exec_reset(db, agent_id, count, e);
    return storage_end(db, rc, e);
}

#define EXEC_COLUMNS                                                                           \
    "task_index, task_id, name, expected_output, status, inputs, output, job_id,"            \
    " was_replayed, started_at, finished_at, duration_ms, timestamp"

static char *exec_dup(sql_stmt *st, int i)
{
    const char *s = sql_column_text(st, i);
    return s ? ad_strdup((const char *)s) : NULL;
}

/* Fills `r`; AD_EINTERNAL (with nothing to clean up) for a status no
 * exec_status has, which only a database agentd did not write holds. */
static int exec_from_row(sql_stmt *st, exec_row *r, ad_err *e)
{
    memset(r, 0, sizeof(*r));
    if (exec_status_from_string(sql_column_text(st, 4), &r->status, NULL) < 0)
        return ad_err_set(e, AD_EINTERNAL, "an execution row holds an unknown status");
    r->task_index = sql_column_int(st, 0);
    snprintf(r->task_id, sizeof(r->task_id), "%s", sql_column_text(st, 1));
    snprintf(r->name, sizeof(r->name), "%s", sql_column_text(st, 2));
    r->expected_output = exec_dup(st, 3);
    r->inputs = exec_dup(st, 5);
    r->output = exec_dup(st, 6);
    r->job_id = sql_column_int64(st, 7);
    r->was_replayed = sql_column_int(st, 8);
    r->started_at = sql_column_int64(st, 9);
    r->finished_at = sql_column_int64(st, 10);
    r->duration_ms = sql_column_int64(st, 11);
    r->timestamp = sql_column_int64(st, 12);
    return 0;
}

int storage_exec_stage_samples(storage_conn *db, int stages, int per_stage, int64_t min_bytes,
                               exec_stage_sample *out, ad_err *e)
{
    /* Read once at start: a scan of the log, ranked per task index. */
    sql_stmt *st = storage_stmt(db,
        "SELECT task_index, count(*), CAST(sum(duration_ms) AS BIGINT), CAST(sum(bytes) AS BIGINT)"
        " FROM ("
        "  SELECT x.task_index, x.duration_ms, a.material_bytes AS bytes, row_number()"
        "    OVER (PARTITION BY x.task_index ORDER BY x.finished_at DESC) AS n"
        "  FROM executions x JOIN agents a ON a.id = x.agent_id"
        "  WHERE x.status = 'completed' AND x.duration_ms IS NOT NULL AND a.material_bytes >= ?2"
        "    AND x.task_index < ?3) AS ranked"
        " WHERE n <= ?1 GROUP BY task_index");
    sql_bind_int(st, 1, per_stage);
    sql_bind_int64(st, 2, min_bytes);
    sql_bind_int(st, 3, stages);
    memset(out, 0, sizeof(*out) * (size_t)stages);
    int rc;
    while ((rc = sql_step(st)) == SQL_ROW) {
        int k = sql_column_int(st, 0);
        if (k < 0 || k >= stages) continue;
        out[k].count = sql_column_int64(st, 1);
        out[k].total_ms = sql_column_int64(st, 2);
        out[k].total_bytes = sql_column_int64(st, 3);
    }
    sql_reset(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "read stage timings", e);
}

int storage_exec_get(storage_conn *db, int64_t agent_id, int task_index, exec_row *out, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "SELECT " EXEC_COLUMNS " FROM executions WHERE agent_id = ?1 AND task_index = ?2");
    sql_bind_int64(st, 1, agent_id);
    sql_bind_int(st, 2, task_index);
    int rc = sql_step(st);
    int bad = rc == SQL_ROW ? exec_from_row(st, out, e) : 0;
    sql_reset(st);
    if (rc == SQL_ROW) return bad;
    if (rc == SQL_DONE) return ad_err_set(e, AD_ENOTFOUND, "no execution row %d", task_index);
    return storage_fail(db, rc, "read execution", e);
}

int storage_exec_list(storage_conn *db, int64_t agent_id, exec_row *rows, int max, int *count,
                      ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "SELECT " EXEC_COLUMNS " FROM executions WHERE agent_id = ?1 ORDER BY task_index");
    sql_bind_int64(st, 1, agent_id);
    int rc, n = 0, bad = 0;
    while (!bad && (rc = sql_step(st)) == SQL_ROW && n < max) {
        bad = exec_from_row(st, &rows[n], e);
        if (!bad) n++;
    }
    sql_reset(st);
    *count = n;
    if (bad || (rc != SQL_ROW && rc != SQL_DONE)) {
        for (int i = 0; i < n; i++) exec_row_cleanup(&rows[i]);
        *count = 0;
        return bad ? bad : storage_fail(db, rc, "list executions", e);
    }
    return 0;
}
