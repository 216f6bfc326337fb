#include "storage/units.h"

#include "storage/internal.h"

static int units_clear(storage_conn *db, int64_t agent_id, ad_err *e)
{
    sql_stmt *st = storage_stmt(db, "DELETE FROM units WHERE agent_id = ?1");
    sql_bind_int64(st, 1, agent_id);
    int rc = sql_step(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "clear units", e);
}

static int units_add(storage_conn *db, int64_t agent_id, const unit_row *u, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "INSERT INTO units (agent_id, ord, question, body, answer, category, probe)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    sql_bind_int64(st, 1, agent_id);
    sql_bind_int(st, 2, u->ord);
    sql_bind_text(st, 3, u->question ? u->question : "");
    sql_bind_text(st, 4, u->body);
    if (u->answer) sql_bind_text(st, 5, u->answer);
    if (u->category) sql_bind_text(st, 6, u->category);
    if (u->probe) sql_bind_text(st, 7, u->probe);
    int rc = sql_step(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "store unit", e);
}

static int units_set_statistics(storage_conn *db, int64_t agent_id, const char *json, ad_err *e)
{
    sql_stmt *st = storage_stmt(db, "UPDATE agents SET statistics = ?2 WHERE id = ?1");
    sql_bind_int64(st, 1, agent_id);
    sql_bind_text(st, 2, json);
    int rc = sql_step(st);
    if (rc != SQL_DONE) return storage_fail(db, rc, "store statistics", e);
    return sql_changes(st) ? 0 : ad_err_set(e, AD_ENOTFOUND, "agent not found");
}

int storage_units_replace(storage_conn *db, int64_t agent_id, const unit_row *units, size_t count,
                          const char *statistics, const exec_step *step, ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    /* The job first: a cancelled job writes nothing, however many units. */
    rc = storage_exec_write_step(db, step, NULL, e);
    if (rc == 0) rc = units_clear(db, agent_id, e);
    for (size_t i = 0; rc == 0 && i < count; i++) rc = units_add(db, agent_id, &units[i], e);
    if (rc == 0) rc = units_set_statistics(db, agent_id, statistics, e);
    return storage_end(db, rc, e);
}

int storage_units_each(storage_conn *db, int64_t agent_id, unit_visit_fn fn, void *ud, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "SELECT ord, question, body, answer, category, probe FROM units WHERE agent_id = ?1"
        " ORDER BY ord");
    sql_bind_int64(st, 1, agent_id);
    int rc;
    while ((rc = sql_step(st)) == SQL_ROW) {
        unit_row u = {
            .ord = sql_column_int(st, 0),
            .question = sql_column_text(st, 1),
            .body = sql_column_text(st, 2),
            .answer = sql_column_text(st, 3),
            .category = sql_column_text(st, 4),
            .probe = sql_column_text(st, 5),
        };
        fn(ud, &u);
    }
    sql_reset(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "read units", e);
}
