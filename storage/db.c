#include "storage/db.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "storage/conn.h"
#include "storage/internal.h"
#include "storage/schema.h"

static storage_backend db_kind;
static int db_opened;

/* The database's ability to write, shared by every connection: the times of
 * the last commit and of the last write that failed for lack of space or an
 * I/O error, and the backend's words for that failure. */
static atomic_llong db_commit_ms, db_failed_ms, db_probe_ms;
static pthread_mutex_t db_fail_lock = PTHREAD_MUTEX_INITIALIZER;
static char db_fail_reason[160];
static pthread_key_t db_key;
static pthread_once_t db_key_once = PTHREAD_ONCE_INIT;

static void db_conn_free(void *p)
{
    storage_conn *c = p;
    if (!c) return;
    if (c->kind == STORAGE_PG) pg_disconnect(c);
    else lite_disconnect(c);
}

static void db_key_create(void)
{
    pthread_key_create(&db_key, db_conn_free);
}

storage_backend storage_backend_kind(void)
{
    return db_kind;
}

int storage_open(const char *data_dir, ad_err *e)
{
    pthread_once(&db_key_once, db_key_create);
    storage_thread_release();
    atomic_store(&db_failed_ms, 0);
    db_kind = STORAGE_SQLITE;
    int rc = lite_open(data_dir, e);
    db_opened = rc == 0;
    return rc;
}

int storage_open_url(const char *url, ad_err *e)
{
    pthread_once(&db_key_once, db_key_create);
    storage_thread_release();
    atomic_store(&db_failed_ms, 0);
    db_kind = STORAGE_PG;
    int rc = pg_open(url, e);
    db_opened = rc == 0;
    return rc;
}

int storage_is_shared(void)
{
    return db_kind == STORAGE_PG;
}

int storage_pragma_int(storage_conn *c, const char *sql)
{
    sql_stmt *st = storage_stmt(c, sql);
    int v = sql_step(st) == SQL_ROW ? sql_column_int(st, 0) : -1;
    sql_reset(st);
    return v;
}

void storage_thread_release(void)
{
    pthread_once(&db_key_once, db_key_create);
    storage_conn *c = pthread_getspecific(db_key);
    if (c) {
        pthread_setspecific(db_key, NULL);
        db_conn_free(c);
    }
}

void storage_close(void)
{
    storage_thread_release();
    if (db_kind == STORAGE_PG) pg_close();
    else lite_close();
    db_opened = 0;
}

storage_conn *storage_conn_get(void)
{
    pthread_once(&db_key_once, db_key_create);
    storage_conn *c = pthread_getspecific(db_key);
    if (c) return c;
    ad_err e = {0};
    if (!db_opened) {
        ad_log(AD_LOG_ERROR, "cannot open the database: storage used before storage_open");
        return NULL;
    }
    c = db_kind == STORAGE_PG ? pg_connect(&e) : lite_connect(&e);
    if (!c) {
        ad_log(AD_LOG_ERROR, "cannot open the database: %s", e.msg);
        return NULL;
    }
    pthread_setspecific(db_key, c);
    return c;
}

void storage_conn_assert_own(const storage_conn *c)
{
    ad_assert(c != NULL && c == pthread_getspecific(db_key));
}

void storage_conn_install(storage_conn *c)
{
    pthread_once(&db_key_once, db_key_create);
    storage_thread_release();
    pthread_setspecific(db_key, c);
}

/* Remembers a write that failed for lack of space or an I/O error. */
static void db_note_failure(const char *reason)
{
    pthread_mutex_lock(&db_fail_lock);
    snprintf(db_fail_reason, sizeof(db_fail_reason), "%.159s", reason);
    pthread_mutex_unlock(&db_fail_lock);
    atomic_store(&db_failed_ms, ad_clock_now_ms());
}

int storage_fail(storage_conn *c, int rc, const char *what, ad_err *e)
{
    const char *words = c && c->errmsg[0] ? c->errmsg : "unknown error";
    int code = AD_EINTERNAL;
    switch (rc) {
    case SQL_EUNIQUE: code = AD_EEXIST; break;
    case SQL_EFOREIGN: code = AD_ENOTFOUND; break;
    case SQL_EBUSY: code = AD_EBUSY; break;
    case SQL_EIO: code = AD_EIO; break;
    case SQL_EDOWN: code = AD_EUNAVAILABLE; break;
    case SQL_ROW: words = "a row where none was expected"; break;
    case SQL_DONE: words = "no row where one was expected"; break;
    default: break;
    }
    if (code == AD_EIO) db_note_failure(words);
    return ad_err_set(e, code, "%s: %s", what, words);
}

int storage_begin(storage_conn *db, ad_err *e)
{
    storage_snapshot_end(db);
    int rc;
    if (db->kind == STORAGE_PG) {
        rc = pg_begin(db, e);
    } else {
        int step = sql_step(storage_stmt(db, "BEGIN IMMEDIATE"));
        rc = step == SQL_DONE ? 0 : storage_fail(db, step, "begin transaction", e);
    }
    if (rc == 0) db->in_unit = 1;
    return rc;
}

int storage_commit(storage_conn *db, ad_err *e)
{
    int rc;
    if (db->kind == STORAGE_PG) {
        rc = pg_commit(db, e);
    } else {
        int step = sql_step(storage_stmt(db, "COMMIT"));
        rc = step == SQL_DONE ? 0 : storage_fail(db, step, "commit", e);
    }
    if (rc == 0) {
        db->in_unit = 0;
        atomic_store(&db_commit_ms, ad_clock_now_ms());
        return 0;
    }
    storage_rollback(db);
    return rc;
}

void storage_rollback(storage_conn *db)
{
    db->in_unit = 0;
    if (db->kind == STORAGE_PG) pg_rollback(db);
    else if (!sqlite3_get_autocommit(db->db)) sql_step(storage_stmt(db, "ROLLBACK"));
}

int storage_end(storage_conn *db, int rc, ad_err *e)
{
    if (rc == 0) return storage_commit(db, e);
    storage_rollback(db);
    return rc;
}

int storage_snapshot_begin(storage_conn *c, ad_err *e)
{
    storage_conn_assert_own(c);
    storage_snapshot_end(c);
    if (c->in_unit || (c->kind == STORAGE_SQLITE && !sqlite3_get_autocommit(c->db)))
        return ad_err_set(e, AD_EINTERNAL, "read snapshot requested inside a write transaction");
    int rc;
    if (c->kind == STORAGE_PG) {
        rc = pg_snapshot_begin(c, e);
    } else {
        int step = sql_step(storage_stmt(c, "BEGIN DEFERRED"));
        rc = step == SQL_DONE ? 0 : storage_fail(c, step, "begin read snapshot", e);
    }
    if (rc == 0) c->snapshot = 1;
    return rc;
}

void storage_snapshot_end(storage_conn *c)
{
    if (!c || !c->snapshot) return;
    c->snapshot = 0;
    if (c->kind == STORAGE_PG) {
        pg_snapshot_end(c);
        return;
    }
    /* COMMIT, not ROLLBACK: for reads alone they are the same, but an
     * autocommit write that ran inside the snapshot by mistake joined its
     * transaction, and a ROLLBACK would drop it after its request had been
     * told it was stored. */
    if (!sqlite3_get_autocommit(c->db) && sql_step(storage_stmt(c, "COMMIT")) != SQL_DONE)
        storage_rollback(c);
}

int64_t storage_last_commit_ms(void)
{
    return atomic_load(&db_commit_ms);
}

/* A write big enough to need fresh pages: a full disk refuses it. */
static int db_probe_write(storage_conn *db)
{
    ad_err e = {0};
    if (storage_begin(db, &e) < 0) return -1;
    /* The zeros are a parameter: SQLite's zeroblob() has no PostgreSQL twin. */
    static const unsigned char zeros[65536];
    sql_stmt *st = storage_stmt(db,
        "INSERT INTO write_probe (id, at, pad) VALUES (1, ?1, ?2)"
        " ON CONFLICT (id) DO UPDATE SET at = excluded.at, pad = excluded.pad");
    sql_bind_int64(st, 1, ad_clock_now_ms());
    sql_bind_blob(st, 2, zeros, sizeof(zeros));
    int rc = sql_step(st);
    if (rc != SQL_DONE) {
        storage_fail(db, rc, "probe write", &e);
        storage_rollback(db);
        return -1;
    }
    return storage_commit(db, &e);
}

void storage_health_check(storage_conn *db, storage_health *out)
{
    memset(out, 0, sizeof(*out));
    int64_t now = ad_clock_now_ms(), failed = atomic_load(&db_failed_ms);
    if (!failed) return;
    int64_t committed = atomic_load(&db_commit_ms);
    if (now - failed >= STORAGE_FAILING_HOLD_MS && committed > failed) return;
    if (now - failed >= STORAGE_FAILING_HOLD_MS && db &&
        now - atomic_load(&db_probe_ms) >= STORAGE_FAILING_HOLD_MS / 2) {
        atomic_store(&db_probe_ms, now);
        if (db_probe_write(db) == 0) return;
        failed = atomic_load(&db_failed_ms);
    }
    out->writes_failing = 1;
    out->last_failure_ms = failed;
    pthread_mutex_lock(&db_fail_lock);
    snprintf(out->reason, sizeof(out->reason), "%s", db_fail_reason);
    pthread_mutex_unlock(&db_fail_lock);
}

int storage_schema_version(void)
{
    return (int)storage_migration_count;
}
