#include "storage/rates.h"

#include "storage/internal.h"

int storage_rates_take(storage_conn *db, const char *caller, int64_t now_ms, int64_t window_ms,
                       int64_t *window_start, int64_t *count, ad_err *e)
{
    /* A write inside a read snapshot would join it (SQLite) or see its old
     * rows: count against the table as it is now. */
    storage_snapshot_end(db);
    /* Both assignments read the row as it was before the update (both
     * backends evaluate every SET expression on the old row). */
    sql_stmt *st = storage_stmt(db,
        "INSERT INTO rate_windows (caller, window_start, count) VALUES (?1, ?2, 1)"
        " ON CONFLICT (caller) DO UPDATE SET"
        "  window_start = CASE WHEN rate_windows.window_start + ?3 <= ?2"
        "    OR rate_windows.window_start > ?2 + ?3 THEN ?2 ELSE rate_windows.window_start END,"
        "  count = CASE WHEN rate_windows.window_start + ?3 <= ?2"
        "    OR rate_windows.window_start > ?2 + ?3 THEN 1 ELSE rate_windows.count + 1 END"
        " RETURNING window_start, count");
    sql_bind_text(st, 1, caller);
    sql_bind_int64(st, 2, now_ms);
    sql_bind_int64(st, 3, window_ms);
    int rc = sql_step(st);
    if (rc == SQL_ROW) {
        *window_start = sql_column_int64(st, 0);
        *count = sql_column_int64(st, 1);
        rc = sql_step(st);
    }
    sql_reset(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "count a request", e);
}

int storage_rates_prune(storage_conn *db, int64_t now_ms, int64_t window_ms, int64_t *removed, ad_err *e)
{
    sql_stmt *st = storage_stmt(db, "DELETE FROM rate_windows WHERE window_start < ?1");
    sql_bind_int64(st, 1, now_ms - 2 * window_ms);
    int rc = sql_step(st);
    int64_t n = rc == SQL_DONE ? sql_changes(st) : 0;
    sql_reset(st);
    if (rc != SQL_DONE) return storage_fail(db, rc, "prune rate windows", e);
    if (removed) *removed = n;
    return 0;
}
