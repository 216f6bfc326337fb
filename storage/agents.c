#include "storage/agents.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/mem.h"
#include "storage/conn.h"
#include "storage/dialect.h"
#include "storage/internal.h"
#include "storage/executions.h"
#include "storage/jobs.h"
#include "storage/maintenance.h"

/* Read FROM agents (not aliased): the last column is the deployed version's
 * quality, one lookup by its primary key. */
#define AGENT_COLUMNS                                                                          \
    "id, user_id, status, stage, progress, error, base_model, description, source, "          \
    "deployed_version_id, statistics, inference_count, inference_errors, prompt_tokens, "     \
    "output_tokens, created_at, updated_at, language, language_requested, material_bytes, "   \
    "(SELECT v.quality FROM versions v WHERE v.id = agents.deployed_version_id)"

void agent_row_cleanup(agent_row *a)
{
    free(a->error);
    free(a->base_model);
    free(a->description);
    free(a->statistics);
    a->error = a->base_model = a->description = a->statistics = NULL;
}

static char *col_dup(sql_stmt *st, int i)
{
    const char *s = sql_column_text(st, i);
    return s ? ad_strdup((const char *)s) : NULL;
}

static void col_copy(sql_stmt *st, int i, char *dst, size_t cap)
{
    const char *s = sql_column_text(st, i);
    snprintf(dst, cap, "%s", s ? (const char *)s : "");
}

/* A stored word no enum value has: only a database that agentd did not
 * write holds one. */
static int agents_bad_state(ad_err *e)
{
    return ad_err_set(e, AD_EINTERNAL, "an agent row holds an unknown status");
}

/* Fills `a`; AD_EINTERNAL (with nothing to clean up) for an unknown status. */
static int agent_from_row(sql_stmt *st, agent_row *a, ad_err *e)
{
    memset(a, 0, sizeof(*a));
    if (agent_state_from_string(sql_column_text(st, 2), &a->status, NULL) < 0)
        return agents_bad_state(e);
    a->id = sql_column_int64(st, 0);
    col_copy(st, 1, a->user_id, sizeof(a->user_id));
    col_copy(st, 3, a->stage, sizeof(a->stage));
    a->progress = sql_column_int(st, 4);
    a->error = col_dup(st, 5);
    a->base_model = col_dup(st, 6);
    a->description = col_dup(st, 7);
    col_copy(st, 8, a->source, sizeof(a->source));
    a->deployed_version_id = sql_column_int64(st, 9);
    a->statistics = col_dup(st, 10);
    a->inference_count = sql_column_int64(st, 11);
    a->inference_errors = sql_column_int64(st, 12);
    a->prompt_tokens = sql_column_int64(st, 13);
    a->output_tokens = sql_column_int64(st, 14);
    a->created_at = sql_column_int64(st, 15);
    a->updated_at = sql_column_int64(st, 16);
    col_copy(st, 17, a->language, sizeof(a->language));
    col_copy(st, 18, a->language_requested, sizeof(a->language_requested));
    a->material_bytes = sql_column_int64(st, 19);
    a->has_quality = !sql_column_is_null(st, 20);
    a->quality = a->has_quality ? sql_column_double(st, 20) : 0;
    return 0;
}

int storage_agents_create(storage_conn *db, const agent_new *a, int64_t *agent_id, ad_err *e)
{
    int64_t now = ad_clock_now_ms();
    int rc0 = storage_begin(db, e);
    if (rc0 < 0) return rc0;
    sql_stmt *st = storage_stmt(db,
        "INSERT INTO agents (user_id, status, stage, progress, base_model, description, source,"
        " created_at, updated_at, language, language_requested, material_bytes)"
        " VALUES (?1, 'initializing', NULL, 0, ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?8) RETURNING id");
    sql_bind_text(st, 1, a->user_id);
    if (a->base_model) sql_bind_text(st, 2, a->base_model);
    if (a->description) sql_bind_text(st, 3, a->description);
    sql_bind_text(st, 4, a->source);
    sql_bind_int64(st, 5, now);
    sql_bind_text(st, 6, a->language ? a->language : "en");
    if (a->language_requested) sql_bind_text(st, 7, a->language_requested);
    sql_bind_int64(st, 8, (int64_t)a->material_len);
    int rc = sql_step(st);
    int64_t id = rc == SQL_ROW ? sql_column_int64(st, 0) : 0;
    if (rc != SQL_ROW) {
        int code = storage_fail(db, rc, "create agent", e);
        storage_rollback(db);
        if (code == AD_EEXIST)
            ad_err_set(e, AD_EEXIST, "an agent with user_id '%s' already exists", a->user_id);
        return code;
    }
    sql_reset(st);
    st = storage_stmt(db, "INSERT INTO materials (agent_id, body) VALUES (?1, ?2)");
    sql_bind_int64(st, 1, id);
    sql_bind_textn(st, 2, a->material, a->material_len);
    rc = sql_step(st);
    int code = rc == SQL_DONE ? 0 : storage_fail(db, rc, "store material", e);
    if (code == 0) code = storage_exec_create_log(db, id, &a->log, now, e);
    if (code == 0 && a->first_job.kind) code = storage_jobs_enqueue(db, id, &a->first_job, NULL, e);
    if (code < 0) {
        storage_rollback(db);
        return code;
    }
    code = storage_commit(db, e);
    if (code < 0) return code;
    *agent_id = id;
    return 0;
}

static int agents_read_one(storage_conn *db, sql_stmt *st, agent_row *out, ad_err *e)
{
    int rc = sql_step(st);
    if (rc == SQL_ROW) {
        rc = agent_from_row(st, out, e);
        sql_reset(st);
        return rc;
    }
    sql_reset(st);
    if (rc == SQL_DONE) return ad_err_set(e, AD_ENOTFOUND, "agent not found");
    return storage_fail(db, rc, "read agent", e);
}

int storage_agents_get(storage_conn *db, const char *user_id, agent_row *out, ad_err *e)
{
    sql_stmt *st = storage_stmt(db, "SELECT " AGENT_COLUMNS " FROM agents WHERE user_id = ?1");
    sql_bind_text(st, 1, user_id);
    return agents_read_one(db, st, out, e);
}

int storage_agents_get_by_id(storage_conn *db, int64_t id, agent_row *out, ad_err *e)
{
    sql_stmt *st = storage_stmt(db, "SELECT " AGENT_COLUMNS " FROM agents WHERE id = ?1");
    sql_bind_int64(st, 1, id);
    return agents_read_one(db, st, out, e);
}

int storage_agents_status(storage_conn *db, const char *user_id, agent_status *out, ad_err *e)
{
    /* The latest run by the max(id) of trainings_by_agent; a done one is
     * not shown, a failed or cancelled one until the next run is queued. */
    sql_stmt *st = storage_stmt(db,
        "SELECT a.user_id, a.status, a.stage, a.progress, a.error, a.created_at, a.updated_at,"
        " a.eta_at, t.id, t.status, t.done_iterations, t.iterations, t.error, t.started_at,"
        " t.finished_at FROM agents a"
        " LEFT JOIN trainings t ON t.id = (SELECT max(id) FROM trainings WHERE agent_id = a.id)"
        "   AND t.status <> 'done'"
        " WHERE a.user_id = ?1");
    sql_bind_text(st, 1, user_id);
    int rc = sql_step(st);
    if (rc == SQL_ROW) {
        memset(out, 0, sizeof(*out));
        col_copy(st, 0, out->user_id, sizeof(out->user_id));
        if (agent_state_from_string(sql_column_text(st, 1), &out->status, NULL) < 0)
            rc = agents_bad_state(e);
        col_copy(st, 2, out->stage, sizeof(out->stage));
        out->progress = sql_column_int(st, 3);
        col_copy(st, 4, out->error, sizeof(out->error));
        out->created_at = sql_column_int64(st, 5);
        out->updated_at = sql_column_int64(st, 6);
        out->eta_at = sql_column_int64(st, 7);
        out->training_id = sql_column_int64(st, 8);
        if (out->training_id &&
            training_state_from_string(sql_column_text(st, 9),
                                       &out->training_status, NULL) < 0)
            rc = agents_bad_state(e);
        out->training_done = sql_column_int(st, 10);
        out->training_iterations = sql_column_int(st, 11);
        col_copy(st, 12, out->training_error, sizeof(out->training_error));
        out->training_started_at = sql_column_int64(st, 13);
        out->training_finished_at = sql_column_int64(st, 14);
    }
    sql_reset(st);
    if (rc == SQL_ROW) return 0;
    if (rc == AD_EINTERNAL) return rc;
    if (rc == SQL_DONE) return ad_err_set(e, AD_ENOTFOUND, "agent not found");
    return storage_fail(db, rc, "read agent status", e);
}

/* SQLite's way to the material. */
static int agents_material_lite(storage_conn *db, int64_t agent_id, char **out, size_t *len, ad_err *e)
{
    /* Incremental blob I/O reads the overflow pages straight into the
     * caller's buffer; a column read would assemble the whole text in
     * SQLite's memory first and we would copy it again (10 MiB of material:
     * 8% of a pipeline run). materials.agent_id is the table's rowid. */
    sqlite3_blob *blob = NULL;
    int rc = sqlite3_blob_open(db->db, "main", "materials", "body", agent_id, 0, &blob);
    if (rc != SQLITE_OK) {
        sqlite3_blob_close(blob);
        if (rc == SQLITE_ERROR) return ad_err_set(e, AD_ENOTFOUND, "agent material not found");
        return ad_err_set(e, AD_EIO, "read material: %s", sqlite3_errstr(rc));
    }
    size_t n = (size_t)sqlite3_blob_bytes(blob);
    char *buf = ad_malloc(ad_size_add(n, 1));
    rc = n ? sqlite3_blob_read(blob, buf, (int)n, 0) : SQLITE_OK;
    sqlite3_blob_close(blob);
    if (rc != SQLITE_OK) {
        free(buf);
        return ad_err_set(e, AD_EIO, "read material: %s", sqlite3_errstr(rc));
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

int storage_agents_material(storage_conn *db, int64_t agent_id, char **out, size_t *len, ad_err *e)
{
    if (!storage_is_pg(db)) return agents_material_lite(db, agent_id, out, len, e);
    sql_stmt *st = storage_stmt(db, "SELECT body FROM materials WHERE agent_id = ?1");
    sql_bind_int64(st, 1, agent_id);
    int rc = sql_step(st);
    if (rc == SQL_DONE) return ad_err_set(e, AD_ENOTFOUND, "agent material not found");
    if (rc != SQL_ROW) return storage_fail(db, rc, "read material", e);
    size_t n = sql_column_bytes(st, 0);
    char *buf = ad_malloc(ad_size_add(n, 1));
    memcpy(buf, sql_column_text(st, 0), n);
    buf[n] = '\0';
    sql_reset(st);
    *out = buf;
    *len = n;
    return 0;
}

static int agents_step_changed(storage_conn *db, sql_stmt *st, const char *what, ad_err *e)
{
    int rc = sql_step(st);
    if (rc != SQL_DONE) return storage_fail(db, rc, what, e);
    return sql_changes(st) ? 0 : ad_err_set(e, AD_ENOTFOUND, "agent not found");
}

int storage_agents_set_state(storage_conn *db, int64_t agent_id, agent_state status, const char *stage,
                             int progress, const char *error, int64_t eta_at, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "UPDATE agents SET status = ?2, stage = ?3, progress = ?4, error = ?5, updated_at = ?6,"
        " eta_at = ?7 WHERE id = ?1");
    sql_bind_int64(st, 1, agent_id);
    sql_bind_text(st, 2, agent_state_to_string(status));
    if (stage) sql_bind_text(st, 3, stage);
    sql_bind_int(st, 4, progress);
    if (error) sql_bind_text(st, 5, error);
    sql_bind_int64(st, 6, ad_clock_now_ms());
    if (eta_at) sql_bind_int64(st, 7, eta_at);
    return agents_step_changed(db, st, "update agent", e);
}

int storage_agents_count_inference(storage_conn *db, int64_t agent_id, int ok, int prompt_tokens,
                                   int output_tokens, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "UPDATE agents SET inference_count = inference_count + 1,"
        " inference_errors = inference_errors + ?2, prompt_tokens = prompt_tokens + ?3,"
        " output_tokens = output_tokens + ?4 WHERE id = ?1");
    sql_bind_int64(st, 1, agent_id);
    sql_bind_int(st, 2, ok ? 0 : 1);
    sql_bind_int(st, 3, prompt_tokens);
    sql_bind_int(st, 4, output_tokens);
    return agents_step_changed(db, st, "count inference", e);
}

/* storage_agents_list's count (?1 status, ?2 the JSON array of user_ids it
 * is limited to) and page (?1 status, ?2 the cursor, ?3 the limit, ?4 that
 * array); a NULL parameter is no limit. Two dialects: each backend reads the
 * JSON array with its own function (storage/dialect.h). A parameter used
 * only in IS NULL has no type PostgreSQL can infer: CAST gives it one. */
#define AGENTS_COUNT_SQL(D)                                                                    \
    "SELECT count(*) FROM agents WHERE (CAST(?1 AS TEXT) IS NULL OR status = ?1)"            \
    " AND (CAST(?2 AS TEXT) IS NULL OR user_id IN (" D##_JSON_TEXTS("?2") "))"
#define AGENTS_LIST_SQL(D)                                                                     \
    "SELECT " AGENT_COLUMNS " FROM agents WHERE (CAST(?1 AS TEXT) IS NULL OR status = ?1)"  \
    " AND (CAST(?2 AS TEXT) IS NULL OR user_id > ?2)"                                         \
    " AND (CAST(?4 AS TEXT) IS NULL OR user_id IN (" D##_JSON_TEXTS("?4") "))"              \
    " ORDER BY user_id LIMIT ?3"

int storage_agents_list(storage_conn *db, const agent_state *status, const char *only, const char *after,
                        int limit, agent_visit_fn fn, void *ud, int *more, int64_t *total, ad_err *e)
{
    sql_stmt *st = storage_stmt2(db, AGENTS_COUNT_SQL(SQL_LITE), AGENTS_COUNT_SQL(SQL_PG));
    if (status) sql_bind_text(st, 1, agent_state_to_string(*status));
    if (only) sql_bind_text(st, 2, only);
    int rc = sql_step(st);
    if (rc != SQL_ROW) return storage_fail(db, rc, "count agents", e);
    *total = sql_column_int64(st, 0);
    sql_reset(st);

    st = storage_stmt2(db, AGENTS_LIST_SQL(SQL_LITE), AGENTS_LIST_SQL(SQL_PG));
    if (status) sql_bind_text(st, 1, agent_state_to_string(*status));
    if (after) sql_bind_text(st, 2, after);
    sql_bind_int(st, 3, limit + 1);
    if (only) sql_bind_text(st, 4, only);
    int n = 0;
    *more = 0;
    while ((rc = sql_step(st)) == SQL_ROW) {
        if (n == limit) {
            *more = 1;
            break;
        }
        agent_row a;
        int bad = agent_from_row(st, &a, e);
        if (bad < 0) {
            sql_reset(st);
            return bad;
        }
        fn(ud, &a);
        agent_row_cleanup(&a);
        n++;
    }
    sql_reset(st);
    if (rc != SQL_ROW && rc != SQL_DONE) return storage_fail(db, rc, "list agents", e);
    return 0;
}

int storage_agents_delete(storage_conn *db, const char *user_id, const audit_entry *audit, int64_t *agent_id,
                          ad_err *e)
{
    int rc0 = storage_begin(db, e);
    if (rc0 < 0) return rc0;
    sql_stmt *st = storage_stmt(db, "DELETE FROM agents WHERE user_id = ?1 RETURNING id");
    sql_bind_text(st, 1, user_id);
    int rc = sql_step(st);
    int64_t id = rc == SQL_ROW ? sql_column_int64(st, 0) : 0;
    if (rc == SQL_ROW) rc = sql_step(st);
    sql_reset(st);
    if (rc != SQL_DONE) {
        int code = storage_fail(db, rc, "delete agent", e);
        storage_rollback(db);
        return code;
    }
    if (!id) {
        storage_rollback(db);
        return ad_err_set(e, AD_ENOTFOUND, "no agent with user_id '%s'", user_id);
    }
    /* Versions and their index rows go by cascade. */
    int code = audit ? storage_audit_insert(db, audit, e) : 0;
    if (code < 0) {
        storage_rollback(db);
        return code;
    }
    code = storage_commit(db, e);
    if (code < 0) return code;
    *agent_id = id;
    storage_maintenance_poke();
    return 0;
}

int storage_agents_delete_all(storage_conn *db, const audit_entry *audit, int64_t *count, agent_deleted_fn fn,
                              void *ud, ad_err *e)
{
    int began = storage_begin(db, e);
    if (began < 0) return began;
    sql_stmt *st = storage_stmt(db, "DELETE FROM agents RETURNING id, user_id");
    int rc;
    int64_t n = 0, cap = 0, *ids = NULL;
    char **names = NULL;
    while ((rc = sql_step(st)) == SQL_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            ids = ad_realloc(ids, ad_size_mul((size_t)cap, sizeof(*ids)));
            names = ad_realloc(names, ad_size_mul((size_t)cap, sizeof(*names)));
        }
        ids[n] = sql_column_int64(st, 0);
        names[n++] = ad_strdup(sql_column_text(st, 1));
    }
    sql_reset(st);
    int code = rc == SQL_DONE ? 0 : storage_fail(db, rc, "delete agents", e);
    if (code == 0 && audit) {
        char detail[48];
        snprintf(detail, sizeof(detail), "{\"deleted\":%lld}", (long long)n);
        audit_entry a = *audit;
        a.detail_json = detail;
        code = storage_audit_insert(db, &a, e);
    }
    if (code == 0)
        code = storage_commit(db, e);
    else
        storage_rollback(db);
    /* Running jobs are told only once the deletion is committed. */
    for (int64_t i = 0; i < n; i++) {
        if (code == 0 && fn) fn(ud, ids[i], names[i]);
        free(names[i]);
    }
    free(names);
    free(ids);
    if (code < 0) return code;
    *count = n;
    storage_maintenance_poke();
    return 0;
}
