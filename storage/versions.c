#include "storage/versions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/mem.h"
#include "storage/jobs.h"
#include "storage/internal.h"

#define VERSION_COLUMNS                                                                        \
    "id, agent_id, name, state, params, persona, fewshot, metrics, note, quality, passages,"  \
    " created_at, deployed_at, language"

void version_row_cleanup(version_row *v)
{
    free(v->params);
    free(v->persona);
    free(v->fewshot);
    free(v->metrics);
    free(v->note);
    v->params = v->persona = v->fewshot = v->metrics = v->note = NULL;
}

static char *ver_dup(sql_stmt *st, int i)
{
    const char *s = sql_column_text(st, i);
    return s ? ad_strdup((const char *)s) : NULL;
}

/* Fills `v`; AD_EINTERNAL (with nothing to clean up) for a state no
 * version_state has, which only a database agentd did not write holds. */
static int version_from_row(sql_stmt *st, version_row *v, ad_err *e)
{
    memset(v, 0, sizeof(*v));
    if (version_state_from_string(sql_column_text(st, 3), &v->state, NULL) < 0)
        return ad_err_set(e, AD_EINTERNAL, "a model version row holds an unknown state");
    v->id = sql_column_int64(st, 0);
    v->agent_id = sql_column_int64(st, 1);
    snprintf(v->name, sizeof(v->name), "%s", sql_column_text(st, 2));
    v->params = ver_dup(st, 4);
    v->persona = ver_dup(st, 5);
    v->fewshot = ver_dup(st, 6);
    v->metrics = ver_dup(st, 7);
    v->note = ver_dup(st, 8);
    v->quality = sql_column_double(st, 9);
    v->passages = sql_column_int64(st, 10);
    v->created_at = sql_column_int64(st, 11);
    v->deployed_at = sql_column_int64(st, 12);
    snprintf(v->language, sizeof(v->language), "%s", sql_column_text(st, 13));
    return 0;
}

int storage_versions_create(storage_conn *db, int64_t agent_id, const char *name, const char *language,
                            const char *params, const char *persona, const char *fewshot,
                            int64_t *version_id, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "INSERT INTO versions (agent_id, name, params, persona, fewshot, state, created_at, language)"
        " VALUES (?1, ?2, ?3, ?4, ?5, 'building', ?6, ?7) RETURNING id");
    sql_bind_int64(st, 1, agent_id);
    sql_bind_text(st, 2, name);
    sql_bind_text(st, 3, params);
    sql_bind_text(st, 4, persona);
    sql_bind_text(st, 5, fewshot);
    sql_bind_int64(st, 6, ad_clock_now_ms());
    sql_bind_text(st, 7, language);
    int rc = sql_step_id(st, version_id);
    if (rc != SQL_DONE) {
        int code = storage_fail(db, rc, "create version", e);
        if (code == AD_EEXIST)
            ad_err_set(e, AD_EEXIST, "a model version named '%s' already exists", name);
        return code;
    }
    return 0;
}

int storage_versions_next_name(storage_conn *db, int64_t agent_id, char *out, size_t cap, ad_err *e)
{
    sql_stmt *st = storage_stmt(db, "SELECT count(*) FROM versions WHERE agent_id = ?1");
    sql_bind_int64(st, 1, agent_id);
    int rc = sql_step(st);
    if (rc != SQL_ROW) return storage_fail(db, rc, "count versions", e);
    long long n = sql_column_int64(st, 0);
    sql_reset(st);
    /* A user may have taken "v<N>" by hand: step past names in use. */
    sql_stmt *q = storage_stmt(db, "SELECT 1 FROM versions WHERE agent_id = ?1 AND name = ?2");
    for (long long k = n + 1;; k++) {
        snprintf(out, cap, "v%lld", k);
        sql_reset(q);
        sql_bind_int64(q, 1, agent_id);
        sql_bind_text(q, 2, out);
        rc = sql_step(q);
        sql_reset(q);
        if (rc == SQL_DONE) return 0;
        if (rc != SQL_ROW) return storage_fail(db, rc, "name version", e);
    }
}

static int ver_exec(storage_conn *db, sql_stmt *st, const char *what, ad_err *e)
{
    int rc = sql_step(st);
    if (rc != SQL_DONE) return storage_fail(db, rc, what, e);
    return sql_changes(st) ? 0 : ad_err_set(e, AD_ENOTFOUND, "model version not found");
}

int storage_versions_set_built(storage_conn *db, int64_t version_id, int64_t passages, ad_err *e)
{
    sql_stmt *st =
        storage_stmt(db, "UPDATE versions SET state = 'trained', passages = ?2 WHERE id = ?1");
    sql_bind_int64(st, 1, version_id);
    sql_bind_int64(st, 2, passages);
    return ver_exec(db, st, "finish version", e);
}

int storage_versions_set_metrics(storage_conn *db, int64_t version_id, const char *metrics,
                                 double quality, ad_err *e)
{
    sql_stmt *st =
        storage_stmt(db, "UPDATE versions SET metrics = ?2, quality = ?3 WHERE id = ?1");
    sql_bind_int64(st, 1, version_id);
    sql_bind_text(st, 2, metrics);
    sql_bind_double(st, 3, quality);
    return ver_exec(db, st, "store metrics", e);
}

int storage_versions_deploy(storage_conn *db, int64_t agent_id, int64_t version_id, const char *note,
                            ad_err *e)
{
    /* Check ownership first, so a wrong id retires nothing. */
    sql_stmt *st = storage_stmt(db, "SELECT 1 FROM versions WHERE id = ?1 AND agent_id = ?2");
    sql_bind_int64(st, 1, version_id);
    sql_bind_int64(st, 2, agent_id);
    int rc = sql_step(st);
    sql_reset(st);
    if (rc == SQL_DONE) return ad_err_set(e, AD_ENOTFOUND, "model version not found");
    if (rc != SQL_ROW) return storage_fail(db, rc, "check version", e);
    st = storage_stmt(db,
        "UPDATE versions SET state = 'retired' WHERE agent_id = ?1 AND state = 'deployed'"
        " AND id <> ?2");
    sql_bind_int64(st, 1, agent_id);
    sql_bind_int64(st, 2, version_id);
    rc = sql_step(st);
    if (rc != SQL_DONE) return storage_fail(db, rc, "retire version", e);
    st = storage_stmt(db,
        "UPDATE versions SET state = 'deployed', deployed_at = ?3, note = ?4"
        " WHERE id = ?2 AND agent_id = ?1");
    sql_bind_int64(st, 1, agent_id);
    sql_bind_int64(st, 2, version_id);
    sql_bind_int64(st, 3, ad_clock_now_ms());
    if (note) sql_bind_text(st, 4, note);
    rc = ver_exec(db, st, "deploy version", e);
    if (rc < 0) return rc;
    st = storage_stmt(db, "UPDATE agents SET deployed_version_id = ?2, updated_at = ?3 WHERE id = ?1");
    sql_bind_int64(st, 1, agent_id);
    sql_bind_int64(st, 2, version_id);
    sql_bind_int64(st, 3, ad_clock_now_ms());
    return ver_exec(db, st, "point agent at version", e);
}

int storage_versions_reject(storage_conn *db, int64_t version_id, const char *note, ad_err *e)
{
    sql_stmt *st =
        storage_stmt(db, "UPDATE versions SET state = 'rejected', note = ?2 WHERE id = ?1");
    sql_bind_int64(st, 1, version_id);
    sql_bind_text(st, 2, note);
    return ver_exec(db, st, "reject version", e);
}

static int versions_set_state(storage_conn *db, int64_t version_id, version_state state, ad_err *e)
{
    sql_stmt *st = storage_stmt(db, "UPDATE versions SET state = ?2 WHERE id = ?1");
    sql_bind_int64(st, 1, version_id);
    sql_bind_text(st, 2, version_state_to_string(state));
    return ver_exec(db, st, "set version state", e);
}

static int versions_rename(storage_conn *db, int64_t version_id, const char *name, ad_err *e)
{
    sql_stmt *st = storage_stmt(db, "UPDATE versions SET name = ?2 WHERE id = ?1");
    sql_bind_int64(st, 1, version_id);
    sql_bind_text(st, 2, name);
    int rc = sql_step(st);
    if (rc != SQL_DONE) {
        int code = storage_fail(db, rc, "rename version", e);
        if (code == AD_EEXIST) ad_err_set(e, AD_EEXIST, "a model version named '%s' already exists", name);
        return code;
    }
    return 0;
}

int storage_versions_delete(storage_conn *db, int64_t version_id, ad_err *e)
{
    /* The version's index rows go by cascade. */
    sql_stmt *st = storage_stmt(db, "DELETE FROM versions WHERE id = ?1");
    sql_bind_int64(st, 1, version_id);
    int rc = sql_step(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "delete version", e);
}

int storage_versions_delete_candidates(storage_conn *db, int64_t agent_id, ad_err *e)
{
    int64_t ids[64];
    int n, rc = 0;
    do {
        sql_stmt *st = storage_stmt(db,
            "SELECT id FROM versions WHERE agent_id = ?1 AND state = 'candidate' LIMIT 64");
        sql_bind_int64(st, 1, agent_id);
        int step = SQL_DONE;
        n = 0;
        while (n < 64 && (step = sql_step(st)) == SQL_ROW) ids[n++] = sql_column_int64(st, 0);
        sql_reset(st);
        /* A failed read is not "no candidates": the caller's unit of work
         * must not commit with them left. */
        if (step != SQL_ROW && step != SQL_DONE) return storage_fail(db, step, "list candidates", e);
        for (int i = 0; i < n && rc == 0; i++) rc = storage_versions_delete(db, ids[i], e);
    } while (n == 64 && rc == 0);
    return rc;
}

int storage_versions_build(storage_conn *db, const version_build *b, const exec_step *step,
                           int64_t *version_id, ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    int64_t vid = 0;
    int64_t job = step ? step->job_id : b->job_id;
    rc = job ? storage_jobs_hold(db, job, e) : 0;
    if (rc == 0)
        rc = storage_versions_create(db, b->agent_id, b->name, b->language, b->params, b->persona,
                                     b->fewshot, &vid, e);
    for (size_t i = 0; rc == 0 && i < b->count; i++) {
        if ((i & 1023) == 0 && b->stop && atomic_load(b->stop)) rc = ad_err_set(e, AD_ECANCELLED, "cancelled");
        const unit_row *u = &b->passages[i];
        if (rc == 0)
            rc = storage_index_put_passage(db, vid, u->ord, u->question, u->body, u->answer, u->category, e);
    }
    if (rc == 0) rc = storage_index_write(db, vid, b->index, e);
    if (rc == 0) rc = storage_versions_set_built(db, vid, (int64_t)b->count, e);
    if (rc == 0 && b->state != VERSION_TRAINED) rc = versions_set_state(db, vid, b->state, e);
    if (rc == 0 && step) {
        char *out = step->output_for ? step->output_for(step->output_ud, vid) : NULL;
        rc = storage_exec_write_step(db, step, out, e);
        free(out);
    }
    rc = storage_end(db, rc, e);
    if (rc == 0) *version_id = vid;
    return rc;
}

int storage_versions_record_evaluation(storage_conn *db, int64_t version_id, const char *metrics,
                                       double quality, const exec_step *step, ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    rc = storage_exec_write_step(db, step, NULL, e);
    if (rc == 0) rc = storage_versions_set_metrics(db, version_id, metrics, quality, e);
    return storage_end(db, rc, e);
}

int storage_versions_settle(storage_conn *db, const version_verdict *verdict, const exec_step *step,
                            ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    rc = storage_exec_write_step(db, step, NULL, e);
    if (rc == 0) rc = storage_deployments_apply(db, verdict, e);
    return storage_end(db, rc, e);
}

int storage_versions_publish(storage_conn *db, int64_t version_id, const char *name, const char *metrics,
                             double quality, ad_err *e)
{
    int rc = versions_rename(db, version_id, name, e);
    if (rc == 0) rc = versions_set_state(db, version_id, VERSION_TRAINED, e);
    if (rc == 0) rc = storage_versions_set_metrics(db, version_id, metrics, quality, e);
    return rc;
}

int storage_versions_drop(storage_conn *db, int64_t version_id, int64_t job_id, ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    rc = job_id ? storage_jobs_hold(db, job_id, e) : 0;
    if (rc == 0) rc = storage_versions_delete(db, version_id, e);
    return storage_end(db, rc, e);
}

static int ver_read_one(storage_conn *db, sql_stmt *st, version_row *out, ad_err *e)
{
    int rc = sql_step(st);
    int bad = rc == SQL_ROW ? version_from_row(st, out, e) : 0;
    sql_reset(st);
    if (rc == SQL_ROW) return bad;
    if (rc == SQL_DONE) return ad_err_set(e, AD_ENOTFOUND, "model version not found");
    return storage_fail(db, rc, "read version", e);
}

int storage_versions_get(storage_conn *db, int64_t version_id, version_row *out, ad_err *e)
{
    sql_stmt *st = storage_stmt(db, "SELECT " VERSION_COLUMNS " FROM versions WHERE id = ?1");
    sql_bind_int64(st, 1, version_id);
    return ver_read_one(db, st, out, e);
}

int storage_versions_get_by_name(storage_conn *db, int64_t agent_id, const char *name,
                                 version_row *out, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "SELECT " VERSION_COLUMNS " FROM versions WHERE agent_id = ?1 AND name = ?2");
    sql_bind_int64(st, 1, agent_id);
    sql_bind_text(st, 2, name);
    return ver_read_one(db, st, out, e);
}

int storage_versions_each(storage_conn *db, int64_t agent_id, version_visit_fn fn, void *ud, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "SELECT " VERSION_COLUMNS " FROM versions WHERE agent_id = ?1 AND state <> 'candidate'"
        " ORDER BY id");
    sql_bind_int64(st, 1, agent_id);
    int rc;
    while ((rc = sql_step(st)) == SQL_ROW) {
        version_row v;
        int bad = version_from_row(st, &v, e);
        if (bad < 0) {
            sql_reset(st);
            return bad;
        }
        fn(ud, &v);
        version_row_cleanup(&v);
    }
    sql_reset(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "list versions", e);
}
