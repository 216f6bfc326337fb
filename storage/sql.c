#include "storage/sql.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/mem.h"
#include "storage/conn.h"
#include "storage/internal.h"

int storage_is_pg(const storage_conn *db)
{
    return db->kind == STORAGE_PG;
}

int storage_conn_failed(storage_conn *c, int code, const char *fmt, ...)
{
    if (!c) return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errmsg, sizeof(c->errmsg), fmt, ap);
    va_end(ap);
    return code;
}

static size_t stmt_hash(const char *sql, size_t cap)
{
    uintptr_t h = (uintptr_t)sql;
    h ^= h >> 17;
    h *= (uintptr_t)0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 7) & (cap - 1);
}

static void stmt_cache_grow(storage_conn *c)
{
    stmt_slot *old = c->slots;
    size_t oldcap = c->cap;
    c->cap = ad_size_mul(oldcap, 2);
    c->slots = ad_calloc(c->cap, sizeof(*c->slots));
    for (size_t i = 0; i < oldcap; i++) {
        if (!old[i].sql) continue;
        size_t j = stmt_hash(old[i].sql, c->cap);
        while (c->slots[j].sql) j = (j + 1) & (c->cap - 1);
        c->slots[j] = old[i];
    }
    free(old);
}

void storage_stmt_cache_free(storage_conn *c)
{
    for (size_t i = 0; i < c->cap; i++) {
        sql_stmt *st = c->slots[i].stmt;
        if (!st) continue;
        if (st->lite) sqlite3_finalize(st->lite);
        if (st->pg) pg_finalize(st->pg);
        free(st);
    }
    free(c->slots);
    c->slots = NULL;
    c->cap = c->used = 0;
}

/* A new statement in the backend of `c`; asserts when it does not prepare. */
static sql_stmt *stmt_prepare(storage_conn *c, const char *sql)
{
    sql_stmt *st = ad_calloc(1, sizeof(*st));
    st->conn = c;
    st->sql = sql;
    if (c->kind == STORAGE_PG) {
        st->pg = pg_prepare(c, sql);
        return st;
    }
    int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st->lite, NULL);
    if (rc != SQLITE_OK) {
        /* A statement that does not prepare is a bug in storage/, not bad input. */
        ad_log(AD_LOG_ERROR, "prepare failed: %s: %s", sqlite3_errmsg(c->db), sql);
        ad_assert(!"SQL statement failed to prepare");
    }
    return st;
}

sql_stmt *storage_stmt(storage_conn *c, const char *sql)
{
    storage_conn_assert_own(c);
    if (!c->slots) {
        c->cap = 64;
        c->slots = ad_calloc(c->cap, sizeof(*c->slots));
    }
    size_t i = stmt_hash(sql, c->cap);
    while (c->slots[i].sql && c->slots[i].sql != sql) i = (i + 1) & (c->cap - 1);
    if (c->slots[i].sql) {
        sql_stmt *st = c->slots[i].stmt;
        if (st->lite) {
            sqlite3_reset(st->lite);
            sqlite3_clear_bindings(st->lite);
        } else {
            pg_reset(st->pg);
            pg_clear_bindings(st->pg);
        }
        return st;
    }
    sql_stmt *st = stmt_prepare(c, sql);
    if ((c->used + 1) * 2 > c->cap) {
        stmt_cache_grow(c);
        i = stmt_hash(sql, c->cap);
        while (c->slots[i].sql) i = (i + 1) & (c->cap - 1);
    }
    c->slots[i].sql = sql;
    c->slots[i].stmt = st;
    c->used++;
    return st;
}

void sql_bind_int64(sql_stmt *st, int i, int64_t v)
{
    if (st->lite) sqlite3_bind_int64(st->lite, i, v);
    else pg_bind_int64(st->pg, i, v);
}

void sql_bind_int(sql_stmt *st, int i, int v)
{
    sql_bind_int64(st, i, v);
}

void sql_bind_double(sql_stmt *st, int i, double v)
{
    if (st->lite) sqlite3_bind_double(st->lite, i, v);
    else pg_bind_double(st->pg, i, v);
}

void sql_bind_text(sql_stmt *st, int i, const char *s)
{
    if (!s) sql_bind_null(st, i);
    else sql_bind_textn(st, i, s, strlen(s));
}

void sql_bind_textn(sql_stmt *st, int i, const char *s, size_t n)
{
    if (!s) sql_bind_null(st, i);
    else if (st->lite) sqlite3_bind_text64(st->lite, i, s, n, SQLITE_STATIC, SQLITE_UTF8);
    else pg_bind_text(st->pg, i, s, n);
}

void sql_bind_blob(sql_stmt *st, int i, const void *p, size_t n)
{
    /* A zero-length blob is a blob, not NULL: give both backends a pointer. */
    static const char empty[1];
    if (!p) p = empty;
    if (st->lite) sqlite3_bind_blob64(st->lite, i, p, n, SQLITE_STATIC);
    else pg_bind_blob(st->pg, i, p, n);
}

void sql_bind_null(sql_stmt *st, int i)
{
    if (st->lite) sqlite3_bind_null(st->lite, i);
    else pg_bind_null(st->pg, i);
}

/* SQLite's result code as one of sql.h's, its words kept on the connection. */
static int lite_code(storage_conn *c, int rc)
{
    c->last_rc = rc;
    snprintf(c->errmsg, sizeof(c->errmsg), "%s", sqlite3_errmsg(c->db));
    int primary = rc & 0xff;
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) return SQL_EUNIQUE;
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) return SQL_EFOREIGN;
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) return SQL_EBUSY;
    if (primary == SQLITE_FULL || primary == SQLITE_IOERR || primary == SQLITE_CANTOPEN ||
        primary == SQLITE_READONLY || primary == SQLITE_NOMEM || primary == SQLITE_PROTOCOL)
        return SQL_EIO;
    return SQL_EERROR;
}

int sql_step(sql_stmt *st)
{
    if (!st->lite) return pg_step(st->pg);
    int rc = sqlite3_step(st->lite);
    if (rc == SQLITE_ROW) return SQL_ROW;
    if (rc == SQLITE_DONE) return SQL_DONE;
    return lite_code(st->conn, rc);
}

int sql_step_id(sql_stmt *st, int64_t *id)
{
    int64_t got = 0;
    int rc = sql_step(st);
    if (rc == SQL_ROW) {
        got = sql_column_int64(st, 0);
        rc = sql_step(st);
    }
    sql_reset(st);
    if (rc == SQL_DONE) *id = got;
    return rc;
}

void sql_reset(sql_stmt *st)
{
    if (st->lite) sqlite3_reset(st->lite);
    else pg_reset(st->pg);
}

int64_t sql_changes(sql_stmt *st)
{
    if (st->lite) return sqlite3_changes64(st->conn->db);
    return pg_changes(st->pg);
}

int sql_column_is_null(sql_stmt *st, int i)
{
    if (st->lite) return sqlite3_column_type(st->lite, i) == SQLITE_NULL;
    return pg_column_is_null(st->pg, i);
}

int64_t sql_column_int64(sql_stmt *st, int i)
{
    if (st->lite) return sqlite3_column_int64(st->lite, i);
    return pg_column_int64(st->pg, i);
}

int sql_column_int(sql_stmt *st, int i)
{
    return (int)sql_column_int64(st, i);
}

double sql_column_double(sql_stmt *st, int i)
{
    if (st->lite) return sqlite3_column_double(st->lite, i);
    return pg_column_double(st->pg, i);
}

const char *sql_column_text(sql_stmt *st, int i)
{
    if (st->lite) return (const char *)sqlite3_column_text(st->lite, i);
    return pg_column_text(st->pg, i);
}

const void *sql_column_blob(sql_stmt *st, int i)
{
    if (st->lite) return sqlite3_column_blob(st->lite, i);
    return pg_column_blob(st->pg, i);
}

size_t sql_column_bytes(sql_stmt *st, int i)
{
    if (st->lite) return (size_t)sqlite3_column_bytes(st->lite, i);
    return pg_column_bytes(st->pg, i);
}

int storage_exec(storage_conn *c, const char *sql, ad_err *e)
{
    if (c->kind == STORAGE_PG) return pg_exec(c, sql, e);
    char *msg = NULL;
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, &msg);
    if (rc == SQLITE_OK) return 0;
    int code = lite_code(c, rc);
    if (msg) snprintf(c->errmsg, sizeof(c->errmsg), "%s", msg);
    sqlite3_free(msg);
    return storage_fail(c, code, "run statements", e);
}
