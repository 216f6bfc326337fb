#include "storage/deployments.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/mem.h"
#include "storage/audit.h"
#include "storage/internal.h"

#define DEPLOYMENT_COLUMNS                                                                     \
    "id, uuid, agent_id, coalesce(version_id, 0), model, status, created_by, created_at,"     \
    " updated_at, coalesce(live_at, 0), metrics, quality, reason, forced"

void deployment_row_cleanup(deployment_row *d)
{
    free(d->metrics);
    free(d->reason);
    d->metrics = d->reason = NULL;
}

static char *dep_dup(sql_stmt *st, int i)
{
    const char *s = sql_column_text(st, i);
    return s ? ad_strdup((const char *)s) : NULL;
}

/* Fills `d`; AD_EINTERNAL for a status no deployment_state has (a database
 * agentd did not write), with nothing to clean up. */
static int dep_from_row(sql_stmt *st, deployment_row *d, ad_err *e)
{
    memset(d, 0, sizeof(*d));
    if (deployment_state_from_string(sql_column_text(st, 5), &d->status, NULL) < 0)
        return ad_err_set(e, AD_EINTERNAL, "a deployment row holds an unknown status");
    d->id = sql_column_int64(st, 0);
    snprintf(d->uuid, sizeof(d->uuid), "%s", sql_column_text(st, 1));
    d->agent_id = sql_column_int64(st, 2);
    d->version_id = sql_column_int64(st, 3);
    snprintf(d->model, sizeof(d->model), "%s", sql_column_text(st, 4));
    snprintf(d->created_by, sizeof(d->created_by), "%s", sql_column_text(st, 6));
    d->created_at = sql_column_int64(st, 7);
    d->updated_at = sql_column_int64(st, 8);
    d->live_at = sql_column_int64(st, 9);
    d->metrics = dep_dup(st, 10);
    d->has_quality = !sql_column_is_null(st, 11);
    d->quality = sql_column_double(st, 11);
    d->reason = dep_dup(st, 12);
    d->forced = sql_column_int(st, 13) != 0;
    return 0;
}

static int dep_read_one(storage_conn *db, sql_stmt *st, deployment_row *out, ad_err *e)
{
    int rc = sql_step(st);
    int bad = rc == SQL_ROW ? dep_from_row(st, out, e) : 0;
    sql_reset(st);
    if (rc == SQL_ROW) return bad;
    if (rc == SQL_DONE) return ad_err_set(e, AD_ENOTFOUND, "deployment not found");
    return storage_fail(db, rc, "read deployment", e);
}

static int dep_get_by_id(storage_conn *db, int64_t id, deployment_row *out, ad_err *e)
{
    sql_stmt *st = storage_stmt(db, "SELECT " DEPLOYMENT_COLUMNS " FROM deployments WHERE id = ?1");
    sql_bind_int64(st, 1, id);
    return dep_read_one(db, st, out, e);
}

int storage_deployments_get(storage_conn *db, int64_t agent_id, const char *uuid, deployment_row *out,
                            ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "SELECT " DEPLOYMENT_COLUMNS " FROM deployments WHERE uuid = ?1 AND agent_id = ?2");
    sql_bind_text(st, 1, uuid);
    sql_bind_int64(st, 2, agent_id);
    return dep_read_one(db, st, out, e);
}

static int dep_exec(storage_conn *db, sql_stmt *st, const char *what, ad_err *e)
{
    int rc = sql_step(st);
    if (rc != SQL_DONE) return storage_fail(db, rc, what, e);
    return sql_changes(st) ? 0 : ad_err_set(e, AD_ENOTFOUND, "deployment not found");
}

/* Appends an event to deployment `id`'s log, after its last. */
static int dep_event(storage_conn *db, int64_t id, const char *event, const char *message, const char *detail,
                     ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "INSERT INTO deployment_events (deployment_id, seq, at, event, message, detail)"
        " SELECT ?1, coalesce(max(seq), 0) + 1, ?2, ?3, ?4, ?5 FROM deployment_events"
        " WHERE deployment_id = ?1");
    sql_bind_int64(st, 1, id);
    sql_bind_int64(st, 2, ad_clock_now_ms());
    sql_bind_text(st, 3, event);
    sql_bind_text(st, 4, message);
    if (detail) sql_bind_text(st, 5, detail);
    int rc = sql_step(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "log deployment event", e);
}

/* The audit row of `action` on deployment `id`: its uuid is the target; the
 * agent, the model and the status it has now are the detail. */
static int dep_audit(storage_conn *db, int64_t id, const char *action, const char *actor,
                     const char *request_id, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "SELECT d.uuid, a.user_id, d.model, d.status FROM deployments d JOIN agents a ON a.id = d.agent_id"
        " WHERE d.id = ?1");
    sql_bind_int64(st, 1, id);
    int rc = sql_step(st);
    if (rc != SQL_ROW) {
        sql_reset(st);
        return rc == SQL_DONE ? ad_err_set(e, AD_ENOTFOUND, "deployment not found")
                                 : storage_fail(db, rc, "read deployment for audit", e);
    }
    char uuid[AD_UUID_LEN];
    snprintf(uuid, sizeof(uuid), "%s", sql_column_text(st, 0));
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "agent", sql_column_text(st, 1));
    cJSON_AddStringToObject(d, "model", sql_column_text(st, 2));
    cJSON_AddStringToObject(d, "status", sql_column_text(st, 3));
    sql_reset(st);
    char *detail = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    audit_entry a = {.actor = actor ? actor : "system",
                     .action = action,
                     .target = uuid,
                     .detail_json = detail,
                     .request_id = request_id};
    rc = storage_audit_insert(db, &a, e);
    cJSON_free(detail);
    return rc;
}

static int dep_set_status(storage_conn *db, int64_t id, deployment_state status, ad_err *e)
{
    sql_stmt *st = storage_stmt(db, "UPDATE deployments SET status = ?2, updated_at = ?3 WHERE id = ?1");
    sql_bind_int64(st, 1, id);
    sql_bind_text(st, 2, deployment_state_to_string(status));
    sql_bind_int64(st, 3, ad_clock_now_ms());
    return dep_exec(db, st, "set deployment status", e);
}

/* Inserts a pending deployment with its "created" event and audit row;
 * `*id` is its row id. */
static int dep_insert(storage_conn *db, const deployment_new *n, int64_t *id, ad_err *e)
{
    /* The version's name, metrics and quality as they are now (a training
     * run publishes its version earlier in the same unit of work). */
    sql_stmt *st = storage_stmt(db,
        "INSERT INTO deployments (uuid, agent_id, version_id, model, status, created_by, created_at,"
        "  updated_at, metrics, quality)"
        " SELECT ?1, v.agent_id, v.id, v.name, 'pending', ?3, ?4, ?4, v.metrics,"
        "  CASE WHEN v.metrics IS NULL THEN NULL ELSE v.quality END"
        " FROM versions v WHERE v.id = ?2 AND v.agent_id = ?5 RETURNING id");
    sql_bind_text(st, 1, n->uuid);
    sql_bind_int64(st, 2, n->version_id);
    sql_bind_text(st, 3, n->created_by);
    sql_bind_int64(st, 4, ad_clock_now_ms());
    sql_bind_int64(st, 5, n->agent_id);
    int rc = sql_step_id(st, id);
    if (rc != SQL_DONE) return storage_fail(db, rc, "create deployment", e);
    if (!*id) return ad_err_set(e, AD_ENOTFOUND, "model version not found");
    char msg[160];
    snprintf(msg, sizeof(msg), "created by %s", n->created_by);
    rc = dep_event(db, *id, "created", msg, NULL, e);
    if (rc == 0) rc = dep_audit(db, *id, "deployment.created", n->created_by, n->request_id, e);
    return rc;
}

int storage_deployments_create(storage_conn *db, const deployment_new *n, ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    int64_t id = 0;
    rc = dep_insert(db, n, &id, e);
    return storage_end(db, rc, e);
}

/* The agent's live deployment: `*id` 0 when none. */
static int dep_live(storage_conn *db, int64_t agent_id, int64_t *id, char uuid[AD_UUID_LEN], ad_err *e)
{
    sql_stmt *st = storage_stmt(db, "SELECT id, uuid FROM deployments WHERE agent_id = ?1 AND status = 'live'");
    sql_bind_int64(st, 1, agent_id);
    int rc = sql_step(st);
    *id = 0;
    if (rc == SQL_ROW) {
        *id = sql_column_int64(st, 0);
        snprintf(uuid, AD_UUID_LEN, "%s", sql_column_text(st, 1));
    }
    sql_reset(st);
    return rc == SQL_ROW || rc == SQL_DONE ? 0 : storage_fail(db, rc, "read live deployment", e);
}

/* Deployment `id` (uuid `uuid`) goes live in place of the agent's live one,
 * which is superseded; the versions and the agent follow. `note` is why. */
static int dep_switch(storage_conn *db, int64_t agent_id, int64_t id, const char *uuid, int64_t version_id,
                      const char *note, int forced, ad_err *e)
{
    int64_t prev = 0;
    char prev_uuid[AD_UUID_LEN] = "";
    int rc = dep_live(db, agent_id, &prev, prev_uuid, e);
    if (rc == 0 && prev) {
        char msg[80];
        snprintf(msg, sizeof(msg), "superseded by %s", uuid);
        rc = dep_set_status(db, prev, DEPLOYMENT_SUPERSEDED, e);
        if (rc == 0) rc = dep_event(db, prev, "superseded", msg, NULL, e);
    }
    if (rc < 0) return rc;
    int64_t now = ad_clock_now_ms();
    sql_stmt *st = storage_stmt(db,
        "UPDATE deployments SET status = 'live', updated_at = ?2, live_at = ?2, reason = ?3, forced = ?4,"
        " replaced_id = nullif(CAST(?5 AS BIGINT), 0) WHERE id = ?1");
    sql_bind_int64(st, 1, id);
    sql_bind_int64(st, 2, now);
    sql_bind_text(st, 3, note);
    sql_bind_int(st, 4, forced);
    sql_bind_int64(st, 5, prev);
    rc = dep_exec(db, st, "put deployment live", e);
    if (rc < 0) return rc;
    char msg[160];
    if (prev) snprintf(msg, sizeof(msg), "live, in place of %s", prev_uuid);
    else snprintf(msg, sizeof(msg), "live");
    rc = dep_event(db, id, "live", msg, NULL, e);
    if (rc == 0) rc = storage_versions_deploy(db, agent_id, version_id, note, e);
    return rc;
}

int storage_deployments_apply(storage_conn *db, const version_verdict *v, ad_err *e)
{
    sql_stmt *st = storage_stmt(db, "SELECT coalesce(deployed_version_id, 0) FROM agents WHERE id = ?1");
    sql_bind_int64(st, 1, v->agent_id);
    int step = sql_step(st);
    int64_t deployed = step == SQL_ROW ? sql_column_int64(st, 0) : 0;
    sql_reset(st);
    if (step == SQL_DONE) return ad_err_set(e, AD_ENOTFOUND, "agent not found");
    if (step != SQL_ROW) return storage_fail(db, step, "read deployed version", e);
    if (deployed != v->expected_deployed)
        return ad_err_set(e, AD_ECONFLICT, "the agent's deployed version changed meanwhile");

    int64_t id = v->deployment_id;
    char uuid[AD_UUID_LEN];
    int rc = 0;
    if (!id) {
        deployment_new n = {.agent_id = v->agent_id,
                            .version_id = v->version_id,
                            .uuid = v->uuid,
                            .created_by = v->created_by,
                            .request_id = v->request_id};
        rc = dep_insert(db, &n, &id, e);
        snprintf(uuid, sizeof(uuid), "%s", v->uuid);
    } else {
        deployment_row d;
        rc = dep_get_by_id(db, id, &d, e);
        if (rc < 0) return rc;
        if (d.agent_id != v->agent_id || d.version_id != v->version_id)
            rc = ad_err_set(e, AD_ENOTFOUND, "deployment not found");
        else if (d.status != DEPLOYMENT_PENDING)
            rc = ad_err_set(e, AD_ESTATE, "deployment %s is %s, not pending", d.uuid,
                            deployment_state_to_string(d.status));
        snprintf(uuid, sizeof(uuid), "%s", d.uuid);
        deployment_row_cleanup(&d);
    }
    if (rc < 0) return rc;
    rc = dep_event(db, id, "gate", v->note, v->gate, e);
    if (rc == 0) rc = dep_audit(db, id, "deployment.pushed", v->actor, v->request_id, e);
    if (rc < 0) return rc;
    if (v->deploy) {
        rc = dep_switch(db, v->agent_id, id, uuid, v->version_id, v->note, v->forced, e);
        if (rc == 0) rc = dep_audit(db, id, "deployment.live", v->actor, v->request_id, e);
        return rc;
    }
    st = storage_stmt(db,
        "UPDATE deployments SET status = 'rejected', updated_at = ?2, reason = ?3, forced = ?4 WHERE id = ?1");
    sql_bind_int64(st, 1, id);
    sql_bind_int64(st, 2, ad_clock_now_ms());
    sql_bind_text(st, 3, v->note);
    sql_bind_int(st, 4, v->forced);
    rc = dep_exec(db, st, "reject deployment", e);
    if (rc == 0) rc = dep_event(db, id, "rejected", v->note, v->gate, e);
    if (rc == 0) rc = storage_versions_reject(db, v->version_id, v->note, e);
    if (rc == 0) rc = dep_audit(db, id, "deployment.rejected", v->actor, v->request_id, e);
    return rc;
}

int storage_deployments_push(storage_conn *db, const version_verdict *v, ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    rc = storage_deployments_apply(db, v, e);
    return storage_end(db, rc, e);
}

/* The deployment that comes back when the agent's live one `gone` is
 * removed: the one live before it, found by following replaced_id (each
 * deployment names the one it replaced when it went live), past those
 * removed since or whose version is gone (`*id` 0: none). The chain, not
 * the times: the wall clock can step back, and updated_at with it. The
 * chain has no cycle (each link went live earlier); the depth bound keeps a
 * damaged database from looping. */
static int dep_rollback_target(storage_conn *db, int64_t agent_id, int64_t gone, int64_t *id, int64_t *version_id,
                               char uuid[AD_UUID_LEN], ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "WITH RECURSIVE back(id, depth) AS ("
        "  SELECT replaced_id, 1 FROM deployments WHERE id = ?2 AND replaced_id IS NOT NULL"
        "  UNION ALL"
        "  SELECT d.replaced_id, b.depth + 1 FROM deployments d JOIN back b ON d.id = b.id"
        "  WHERE d.replaced_id IS NOT NULL AND b.depth < 1000000)"
        " SELECT d.id, d.version_id, d.uuid FROM back b JOIN deployments d ON d.id = b.id"
        " JOIN versions v ON v.id = d.version_id"
        " WHERE d.agent_id = ?1 AND d.status = 'superseded' ORDER BY b.depth LIMIT 1");
    sql_bind_int64(st, 1, agent_id);
    sql_bind_int64(st, 2, gone);
    int rc = sql_step(st);
    *id = 0;
    if (rc == SQL_ROW) {
        *id = sql_column_int64(st, 0);
        *version_id = sql_column_int64(st, 1);
        snprintf(uuid, AD_UUID_LEN, "%s", sql_column_text(st, 2));
    }
    sql_reset(st);
    return rc == SQL_ROW || rc == SQL_DONE ? 0 : storage_fail(db, rc, "find rollback target", e);
}

/* The live deployment `d` is removed: the rollback target is live again,
 * or with none the agent serves nothing. */
static int dep_take_down(storage_conn *db, const deployment_row *d, const char *actor, const char *request_id,
                         ad_err *e)
{
    int64_t back = 0, back_version = 0;
    char back_uuid[AD_UUID_LEN] = "";
    int rc = dep_rollback_target(db, d->agent_id, d->id, &back, &back_version, back_uuid, e);
    if (rc < 0) return rc;
    char msg[160];
    if (!back) {
        rc = dep_event(db, d->id, "removed", "removed while live; no earlier deployment to return to: the agent "
                       "serves nothing", NULL, e);
        sql_stmt *st = storage_stmt(db,
            "UPDATE versions SET state = 'retired' WHERE agent_id = ?1 AND state = 'deployed'");
        sql_bind_int64(st, 1, d->agent_id);
        int step = rc == 0 ? sql_step(st) : SQL_DONE;
        if (step != SQL_DONE) rc = storage_fail(db, step, "retire version", e);
        if (rc == 0) {
            st = storage_stmt(db, "UPDATE agents SET deployed_version_id = NULL, updated_at = ?2 WHERE id = ?1");
            sql_bind_int64(st, 1, d->agent_id);
            sql_bind_int64(st, 2, ad_clock_now_ms());
            step = sql_step(st);
            if (step != SQL_DONE) rc = storage_fail(db, step, "clear deployed version", e);
        }
        return rc;
    }
    snprintf(msg, sizeof(msg), "removed while live; rolled back to %s", back_uuid);
    rc = dep_event(db, d->id, "removed", msg, NULL, e);
    snprintf(msg, sizeof(msg), "rolled back to %s", back_uuid);
    if (rc == 0) rc = dep_event(db, d->id, "rolled_back_to", msg, NULL, e);
    if (rc == 0) rc = dep_set_status(db, back, DEPLOYMENT_LIVE, e);
    snprintf(msg, sizeof(msg), "live again: %s was removed", d->uuid);
    if (rc == 0) rc = dep_event(db, back, "restored", msg, NULL, e);
    char note[160];
    snprintf(note, sizeof(note), "restored: deployment %s was removed", d->uuid);
    if (rc == 0) rc = storage_versions_deploy(db, d->agent_id, back_version, note, e);
    if (rc == 0) rc = dep_audit(db, back, "deployment.live", actor, request_id, e);
    return rc;
}

int storage_deployments_remove(storage_conn *db, int64_t agent_id, const char *uuid, const char *actor,
                               const char *request_id, deployment_row *out, ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    deployment_row d;
    rc = storage_deployments_get(db, agent_id, uuid, &d, e);
    if (rc < 0) return storage_end(db, rc, e);
    if (d.status != DEPLOYMENT_REMOVED) {
        deployment_state was = d.status;
        rc = dep_set_status(db, d.id, DEPLOYMENT_REMOVED, e);
        if (rc == 0 && was == DEPLOYMENT_LIVE) rc = dep_take_down(db, &d, actor, request_id, e);
        else if (rc == 0) {
            char msg[80];
            snprintf(msg, sizeof(msg), "removed (was %s)", deployment_state_to_string(was));
            rc = dep_event(db, d.id, "removed", msg, NULL, e);
        }
        if (rc == 0) rc = dep_audit(db, d.id, "deployment.removed", actor, request_id, e);
    }
    deployment_row_cleanup(&d);
    rc = storage_end(db, rc, e);
    if (rc < 0) return rc;
    return storage_deployments_get(db, agent_id, uuid, out, e);
}

int storage_deployments_list(storage_conn *db, int64_t agent_id, const char *after, int limit,
                             deployment_visit_fn fn, void *ud, ad_err *e)
{
    int64_t before = INT64_MAX;
    if (after) {
        sql_stmt *c = storage_stmt(db, "SELECT id FROM deployments WHERE uuid = ?1 AND agent_id = ?2");
        sql_bind_text(c, 1, after);
        sql_bind_int64(c, 2, agent_id);
        int rc = sql_step(c);
        if (rc == SQL_ROW) before = sql_column_int64(c, 0);
        sql_reset(c);
        if (rc == SQL_DONE) return ad_err_set(e, AD_EINVAL, "cursor is not one this server returned");
        if (rc != SQL_ROW) return storage_fail(db, rc, "read cursor", e);
    }
    sql_stmt *st = storage_stmt(db,
        "SELECT " DEPLOYMENT_COLUMNS " FROM deployments WHERE agent_id = ?1 AND id < ?2"
        " ORDER BY id DESC LIMIT ?3");
    sql_bind_int64(st, 1, agent_id);
    sql_bind_int64(st, 2, before);
    sql_bind_int(st, 3, limit);
    int rc;
    while ((rc = sql_step(st)) == SQL_ROW) {
        deployment_row d;
        int bad = dep_from_row(st, &d, e);
        if (bad < 0) {
            sql_reset(st);
            return bad;
        }
        fn(ud, &d);
        deployment_row_cleanup(&d);
    }
    sql_reset(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "list deployments", e);
}

int storage_deployments_events(storage_conn *db, int64_t deployment_id, deployment_event_fn fn, void *ud,
                               ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "SELECT seq, at, event, message, detail FROM deployment_events WHERE deployment_id = ?1 ORDER BY seq");
    sql_bind_int64(st, 1, deployment_id);
    int rc;
    while ((rc = sql_step(st)) == SQL_ROW) {
        deployment_event ev = {.seq = sql_column_int(st, 0),
                               .at = sql_column_int64(st, 1),
                               .event = sql_column_text(st, 2),
                               .message = sql_column_text(st, 3),
                               .detail = sql_column_text(st, 4)};
        fn(ud, &ev);
    }
    sql_reset(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "read deployment events", e);
}
