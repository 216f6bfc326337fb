#include "storage/audit.h"

#include "base/clock.h"
#include "storage/internal.h"

int storage_audit_insert(storage_conn *db, const audit_entry *a, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "INSERT INTO audit_log (at, actor, action, target, detail, request_id)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    sql_bind_int64(st, 1, ad_clock_now_ms());
    sql_bind_text(st, 2, a->actor);
    sql_bind_text(st, 3, a->action);
    if (a->target) sql_bind_text(st, 4, a->target);
    if (a->detail_json) sql_bind_text(st, 5, a->detail_json);
    if (a->request_id) sql_bind_text(st, 6, a->request_id);
    int rc = sql_step(st);
    sql_reset(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "add audit row", e);
}

int storage_audit_add(storage_conn *db, const audit_entry *a, ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    return storage_end(db, storage_audit_insert(db, a, e), e);
}

int storage_audit_list(storage_conn *db, const char *action, int64_t before, int limit,
                       audit_visit_fn fn, void *ud, int *more, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "SELECT id, at, actor, action, target, detail, request_id FROM audit_log"
        " WHERE (CAST(?1 AS TEXT) IS NULL OR action = ?1) AND (CAST(?2 AS BIGINT) = 0 OR id < ?2)"
        " ORDER BY id DESC LIMIT ?3");
    if (action) sql_bind_text(st, 1, action);
    sql_bind_int64(st, 2, before);
    sql_bind_int(st, 3, limit + 1);
    int rc, n = 0;
    *more = 0;
    while ((rc = sql_step(st)) == SQL_ROW) {
        if (n++ == limit) {
            *more = 1;
            break;
        }
        audit_row r = {
            .id = sql_column_int64(st, 0),
            .at = sql_column_int64(st, 1),
            .actor = sql_column_text(st, 2),
            .action = sql_column_text(st, 3),
            .target = sql_column_text(st, 4),
            .detail = sql_column_text(st, 5),
            .request_id = sql_column_text(st, 6),
        };
        fn(ud, &r);
    }
    sql_reset(st);
    return rc == SQL_ROW || rc == SQL_DONE ? 0 : storage_fail(db, rc, "list audit rows", e);
}
