#include "storage/agents.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/mem.h"
#include "storage/sqlite.h"
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

static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    return s ? ad_strdup((const char *)s) : NULL;
}

static void col_copy(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    snprintf(dst, cap, "%s", s ? (const char *)s : "");
}

/* A stored word no enum value has: only a database that agentd did not
 * write holds one. */
static int agents_bad_state(ad_err *e)
{
    return ad_err_set(e, AD_EINTERNAL, "an agent row holds an unknown status");
}

/* Fills `a`; AD_EINTERNAL (with nothing to clean up) for an unknown status. */
static int agent_from_row(sqlite3_stmt *st, agent_row *a, ad_err *e)
{
    memset(a, 0, sizeof(*a));
    if (agent_state_from_string((const char *)sqlite3_column_text(st, 2), &a->status, NULL) < 0)
        return agents_bad_state(e);
    a->id = sqlite3_column_int64(st, 0);
    col_copy(st, 1, a->user_id, sizeof(a->user_id));
    col_copy(st, 3, a->stage, sizeof(a->stage));
    a->progress = sqlite3_column_int(st, 4);
    a->error = col_dup(st, 5);
    a->base_model = col_dup(st, 6);
    a->description = col_dup(st, 7);
    col_copy(st, 8, a->source, sizeof(a->source));
    a->deployed_version_id = sqlite3_column_int64(st, 9);
    a->statistics = col_dup(st, 10);
    a->inference_count = sqlite3_column_int64(st, 11);
    a->inference_errors = sqlite3_column_int64(st, 12);
    a->prompt_tokens = sqlite3_column_int64(st, 13);
    a->output_tokens = sqlite3_column_int64(st, 14);
    a->created_at = sqlite3_column_int64(st, 15);
    a->updated_at = sqlite3_column_int64(st, 16);
    col_copy(st, 17, a->language, sizeof(a->language));
    col_copy(st, 18, a->language_requested, sizeof(a->language_requested));
    a->material_bytes = sqlite3_column_int64(st, 19);
    a->has_quality = sqlite3_column_type(st, 20) != SQLITE_NULL;
    a->quality = a->has_quality ? sqlite3_column_double(st, 20) : 0;
    return 0;
}

int storage_agents_create(storage_conn *db, const agent_new *a, int64_t *agent_id, ad_err *e)
{
    int64_t now = ad_clock_now_ms();
    int rc0 = storage_begin(db, e);
    if (rc0 < 0) return rc0;
    sqlite3_stmt *st = storage_stmt(db,
        "INSERT INTO agents (user_id, status, stage, progress, base_model, description, source,"
        " created_at, updated_at, language, language_requested, material_bytes)"
        " VALUES (?1, 'initializing', NULL, 0, ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?8)");
    sqlite3_bind_text(st, 1, a->user_id, -1, SQLITE_STATIC);
    if (a->base_model) sqlite3_bind_text(st, 2, a->base_model, -1, SQLITE_STATIC);
    if (a->description) sqlite3_bind_text(st, 3, a->description, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, a->source, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now);
    sqlite3_bind_text(st, 6, a->language ? a->language : "en", -1, SQLITE_STATIC);
    if (a->language_requested) sqlite3_bind_text(st, 7, a->language_requested, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)a->material_len);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
        int code = storage_fail(db, rc, "create agent", e);
        storage_rollback(db);
        if (code == AD_EEXIST)
            ad_err_set(e, AD_EEXIST, "an agent with user_id '%s' already exists", a->user_id);
        return code;
    }
    int64_t id = sqlite3_last_insert_rowid(db->db);
    st = storage_stmt(db, "INSERT INTO materials (agent_id, body) VALUES (?1, ?2)");
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text64(st, 2, a->material, (sqlite3_uint64)a->material_len, SQLITE_STATIC, SQLITE_UTF8);
    rc = sqlite3_step(st);
    int code = rc == SQLITE_DONE ? 0 : storage_fail(db, rc, "store material", e);
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

static int agents_read_one(storage_conn *db, sqlite3_stmt *st, agent_row *out, ad_err *e)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        rc = agent_from_row(st, out, e);
        sqlite3_reset(st);
        return rc;
    }
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) return ad_err_set(e, AD_ENOTFOUND, "agent not found");
    return storage_fail(db, rc, "read agent", e);
}

int storage_agents_get(storage_conn *db, const char *user_id, agent_row *out, ad_err *e)
{
    sqlite3_stmt *st = storage_stmt(db, "SELECT " AGENT_COLUMNS " FROM agents WHERE user_id = ?1");
    sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
    return agents_read_one(db, st, out, e);
}

int storage_agents_get_by_id(storage_conn *db, int64_t id, agent_row *out, ad_err *e)
{
    sqlite3_stmt *st = storage_stmt(db, "SELECT " AGENT_COLUMNS " FROM agents WHERE id = ?1");
    sqlite3_bind_int64(st, 1, id);
    return agents_read_one(db, st, out, e);
}

int storage_agents_status(storage_conn *db, const char *user_id, agent_status *out, ad_err *e)
{
    /* The latest run by the max(id) of trainings_by_agent; a done one is
     * not shown, a failed or cancelled one until the next run is queued. */
    sqlite3_stmt *st = storage_stmt(db,
        "SELECT a.user_id, a.status, a.stage, a.progress, a.error, a.created_at, a.updated_at,"
        " a.eta_at, t.id, t.status, t.done_iterations, t.iterations, t.error, t.started_at,"
        " t.finished_at FROM agents a"
        " LEFT JOIN trainings t ON t.id = (SELECT max(id) FROM trainings WHERE agent_id = a.id)"
        "   AND t.status <> 'done'"
        " WHERE a.user_id = ?1");
    sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof(*out));
        col_copy(st, 0, out->user_id, sizeof(out->user_id));
        if (agent_state_from_string((const char *)sqlite3_column_text(st, 1), &out->status, NULL) < 0)
            rc = agents_bad_state(e);
        col_copy(st, 2, out->stage, sizeof(out->stage));
        out->progress = sqlite3_column_int(st, 3);
        col_copy(st, 4, out->error, sizeof(out->error));
        out->created_at = sqlite3_column_int64(st, 5);
        out->updated_at = sqlite3_column_int64(st, 6);
        out->eta_at = sqlite3_column_int64(st, 7);
        out->training_id = sqlite3_column_int64(st, 8);
        if (out->training_id &&
            training_state_from_string((const char *)sqlite3_column_text(st, 9),
                                       &out->training_status, NULL) < 0)
            rc = agents_bad_state(e);
        out->training_done = sqlite3_column_int(st, 10);
        out->training_iterations = sqlite3_column_int(st, 11);
        col_copy(st, 12, out->training_error, sizeof(out->training_error));
        out->training_started_at = sqlite3_column_int64(st, 13);
        out->training_finished_at = sqlite3_column_int64(st, 14);
    }
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) return 0;
    if (rc == AD_EINTERNAL) return rc;
    if (rc == SQLITE_DONE) return ad_err_set(e, AD_ENOTFOUND, "agent not found");
    return storage_fail(db, rc, "read agent status", e);
}

int storage_agents_material(storage_conn *db, int64_t agent_id, char **out, size_t *len, ad_err *e)
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
        return storage_fail(db, rc, "read material", e);
    }
    size_t n = (size_t)sqlite3_blob_bytes(blob);
    char *buf = ad_malloc(ad_size_add(n, 1));
    rc = n ? sqlite3_blob_read(blob, buf, (int)n, 0) : SQLITE_OK;
    sqlite3_blob_close(blob);
    if (rc != SQLITE_OK) {
        free(buf);
        return storage_fail(db, rc, "read material", e);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static int agents_step_changed(storage_conn *db, sqlite3_stmt *st, const char *what, ad_err *e)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) return storage_fail(db, rc, what, e);
    return sqlite3_changes(db->db) ? 0 : ad_err_set(e, AD_ENOTFOUND, "agent not found");
}

int storage_agents_set_state(storage_conn *db, int64_t agent_id, agent_state status, const char *stage,
                             int progress, const char *error, int64_t eta_at, ad_err *e)
{
    sqlite3_stmt *st = storage_stmt(db,
        "UPDATE agents SET status = ?2, stage = ?3, progress = ?4, error = ?5, updated_at = ?6,"
        " eta_at = ?7 WHERE id = ?1");
    sqlite3_bind_int64(st, 1, agent_id);
    sqlite3_bind_text(st, 2, agent_state_to_string(status), -1, SQLITE_STATIC);
    if (stage) sqlite3_bind_text(st, 3, stage, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, progress);
    if (error) sqlite3_bind_text(st, 5, error, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, ad_clock_now_ms());
    if (eta_at) sqlite3_bind_int64(st, 7, eta_at);
    return agents_step_changed(db, st, "update agent", e);
}

int storage_agents_count_inference(storage_conn *db, int64_t agent_id, int ok, int prompt_tokens,
                                   int output_tokens, ad_err *e)
{
    sqlite3_stmt *st = storage_stmt(db,
        "UPDATE agents SET inference_count = inference_count + 1,"
        " inference_errors = inference_errors + ?2, prompt_tokens = prompt_tokens + ?3,"
        " output_tokens = output_tokens + ?4 WHERE id = ?1");
    sqlite3_bind_int64(st, 1, agent_id);
    sqlite3_bind_int(st, 2, ok ? 0 : 1);
    sqlite3_bind_int(st, 3, prompt_tokens);
    sqlite3_bind_int(st, 4, output_tokens);
    return agents_step_changed(db, st, "count inference", e);
}

int storage_agents_list(storage_conn *db, const agent_state *status, const char *only, const char *after,
                        int limit, agent_visit_fn fn, void *ud, int *more, int64_t *total, ad_err *e)
{
    sqlite3_stmt *st = storage_stmt(db,
        "SELECT count(*) FROM agents WHERE (?1 IS NULL OR status = ?1)"
        " AND (?2 IS NULL OR user_id IN (SELECT value FROM json_each(?2)))");
    if (status) sqlite3_bind_text(st, 1, agent_state_to_string(*status), -1, SQLITE_STATIC);
    if (only) sqlite3_bind_text(st, 2, only, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) return storage_fail(db, rc, "count agents", e);
    *total = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);

    st = storage_stmt(db,
        "SELECT " AGENT_COLUMNS " FROM agents WHERE (?1 IS NULL OR status = ?1)"
        " AND (?2 IS NULL OR user_id > ?2)"
        " AND (?4 IS NULL OR user_id IN (SELECT value FROM json_each(?4))) ORDER BY user_id LIMIT ?3");
    if (status) sqlite3_bind_text(st, 1, agent_state_to_string(*status), -1, SQLITE_STATIC);
    if (after) sqlite3_bind_text(st, 2, after, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, limit + 1);
    if (only) sqlite3_bind_text(st, 4, only, -1, SQLITE_STATIC);
    int n = 0;
    *more = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == limit) {
            *more = 1;
            break;
        }
        agent_row a;
        int bad = agent_from_row(st, &a, e);
        if (bad < 0) {
            sqlite3_reset(st);
            return bad;
        }
        fn(ud, &a);
        agent_row_cleanup(&a);
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return storage_fail(db, rc, "list agents", e);
    return 0;
}

int storage_agents_delete(storage_conn *db, const char *user_id, const audit_entry *audit, int64_t *agent_id,
                          ad_err *e)
{
    int rc0 = storage_begin(db, e);
    if (rc0 < 0) return rc0;
    sqlite3_stmt *st = storage_stmt(db, "DELETE FROM agents WHERE user_id = ?1 RETURNING id");
    sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    if (rc == SQLITE_ROW) rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
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

int storage_agents_delete_all(storage_conn *db, const audit_entry *audit, int64_t *count,
                              void (*fn)(void *ud, int64_t id),
                              void *ud, ad_err *e)
{
    int began = storage_begin(db, e);
    if (began < 0) return began;
    sqlite3_stmt *st = storage_stmt(db, "DELETE FROM agents RETURNING id");
    int rc;
    int64_t n = 0, cap = 0, *ids = NULL;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            ids = ad_realloc(ids, ad_size_mul((size_t)cap, sizeof(*ids)));
        }
        ids[n++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
    int code = rc == SQLITE_DONE ? 0 : storage_fail(db, rc, "delete agents", e);
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
    for (int64_t i = 0; code == 0 && fn && i < n; i++) fn(ud, ids[i]);
    free(ids);
    if (code < 0) return code;
    *count = n;
    storage_maintenance_poke();
    return 0;
}
