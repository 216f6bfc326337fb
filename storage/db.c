#include "storage/db.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "storage/lock.h"
#include "storage/schema.h"

/* Per-thread connection with its statement cache (open addressing on the SQL
 * pointer; string literals have stable addresses). */
typedef struct stmt_slot {
    const char *sql;
    sqlite3_stmt *stmt;
} stmt_slot;

typedef struct db_conn {
    sqlite3 *db;
    stmt_slot *slots;
    size_t cap, used;
} db_conn;

static char *db_path;
static pthread_key_t db_key;
static pthread_once_t db_key_once = PTHREAD_ONCE_INIT;

static void db_conn_free(void *p)
{
    db_conn *c = p;
    if (!c) return;
    for (size_t i = 0; i < c->cap; i++)
        if (c->slots[i].stmt) sqlite3_finalize(c->slots[i].stmt);
    free(c->slots);
    sqlite3_close(c->db);
    free(c);
}

static void db_key_create(void)
{
    pthread_key_create(&db_key, db_conn_free);
}

static int db_exec(sqlite3 *db, const char *sql, ad_err *e)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        ad_err_set(e, AD_EIO, "sqlite: %s", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return AD_EIO;
    }
    return 0;
}

/* Waits for a writer to finish. sqlite3_busy_timeout sleeps in steps of up
 * to 100 ms, far longer than our write transactions last; short sleeps
 * first keep waiting writers' latency near the holder's. Gives up after
 * about 30 s, like the timeout it replaces. */
static int db_busy(void *ud, int count)
{
    (void)ud;
    useconds_t us = count < 20 ? 50 : count < 200 ? 500 : 5000;
    if (count > 6200) return 0;
    usleep(us);
    return 1;
}

static sqlite3 *db_open_connection(ad_err *e)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(db_path, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        ad_err_set(e, AD_EIO, "cannot open database '%s': %s", db_path,
                   db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_handler(db, db_busy, NULL);
    sqlite3_extended_result_codes(db, 1);
    if (db_exec(db,
                "PRAGMA journal_mode = WAL;"
                "PRAGMA synchronous = NORMAL;"
                "PRAGMA foreign_keys = ON;"
                "PRAGMA temp_store = MEMORY;"
                "PRAGMA cache_size = -2048;",
                e) < 0) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

static int db_migrate(sqlite3 *db, ad_err *e)
{
    sqlite3_stmt *st;
    int version = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return storage_fail(db, sqlite3_errcode(db), "read schema version", e);
    if (sqlite3_step(st) == SQLITE_ROW) version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);

    int latest = (int)storage_migration_count;
    if (version > latest)
        return ad_err_set(e, AD_EIO,
                          "database '%s' has schema version %d, newer than this agentd (%d): "
                          "upgrade agentd or use another data dir",
                          db_path, version, latest);
    for (int v = version; v < latest; v++) {
        if (storage_begin(db, e) < 0) return AD_EIO;
        if (db_exec(db, storage_migrations[v], e) < 0) {
            storage_rollback(db);
            return AD_EIO;
        }
        if (storage_commit(db, e) < 0) return AD_EIO;
        ad_log(AD_LOG_INFO, "database migrated to schema version %d", v + 1);
    }
    return 0;
}

int storage_open(const char *data_dir, ad_err *e)
{
    /* Allocation statistics take a process-wide mutex on every malloc:
     * connections are per thread, so that mutex is the only contention left.
     * Must precede any other SQLite call; fails harmlessly if one came first. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    pthread_once(&db_key_once, db_key_create);
    if (mkdir(data_dir, 0750) < 0 && errno != EEXIST)
        return ad_err_set(e, AD_EIO, "cannot create data dir '%s': %s", data_dir, strerror(errno));
    int rc = storage_lock_acquire(data_dir, e);
    if (rc < 0) return rc;
    size_t n = ad_size_add(strlen(data_dir), sizeof("/agentd.db"));
    free(db_path);
    db_path = ad_malloc(n);
    snprintf(db_path, n, "%s/agentd.db", data_dir);

    storage_thread_release();
    sqlite3 *db = storage_conn();
    if (!db) {
        /* Open it again only to say why, in the caller's words. */
        sqlite3 *probe = db_open_connection(e);
        sqlite3_close(probe);
        return AD_EIO;
    }
    return db_migrate(db, e);
}

void storage_thread_release(void)
{
    pthread_once(&db_key_once, db_key_create);
    db_conn *c = pthread_getspecific(db_key);
    if (c) {
        pthread_setspecific(db_key, NULL);
        db_conn_free(c);
    }
}

void storage_close(void)
{
    storage_thread_release();
    free(db_path);
    db_path = NULL;
    storage_lock_release();
}

sqlite3 *storage_conn(void)
{
    pthread_once(&db_key_once, db_key_create);
    db_conn *c = pthread_getspecific(db_key);
    if (c) return c->db;
    ad_err e = {0};
    sqlite3 *db = db_path ? db_open_connection(&e) : NULL;
    if (!db) {
        ad_log(AD_LOG_ERROR, "%s", db_path ? e.msg : "storage used before storage_open");
        return NULL;
    }
    c = ad_calloc(1, sizeof(*c));
    c->db = db;
    c->cap = 64;
    c->slots = ad_calloc(c->cap, sizeof(*c->slots));
    pthread_setspecific(db_key, c);
    return db;
}

static size_t stmt_hash(const char *sql, size_t cap)
{
    uintptr_t h = (uintptr_t)sql;
    h ^= h >> 17;
    h *= (uintptr_t)0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 7) & (cap - 1);
}

static void stmt_cache_grow(db_conn *c)
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

sqlite3_stmt *storage_stmt(sqlite3 *db, const char *sql)
{
    db_conn *c = pthread_getspecific(db_key);
    ad_assert(c && c->db == db);
    size_t i = stmt_hash(sql, c->cap);
    while (c->slots[i].sql && c->slots[i].sql != sql) i = (i + 1) & (c->cap - 1);
    if (c->slots[i].sql) {
        sqlite3_stmt *st = c->slots[i].stmt;
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return st;
    }
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK) {
        /* A statement that does not prepare is a bug in storage/, not bad input. */
        ad_log(AD_LOG_ERROR, "prepare failed: %s: %s", sqlite3_errmsg(db), sql);
        ad_assert(!"SQL statement failed to prepare");
    }
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

int storage_fail(sqlite3 *db, int rc, const char *what, ad_err *e)
{
    int code = AD_EIO;
    int primary = rc & 0xff;
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) code = AD_EEXIST;
    else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) code = AD_ENOTFOUND;
    else if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) code = AD_EBUSY;
    return ad_err_set(e, code, "%s: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

int storage_begin(sqlite3 *db, ad_err *e)
{
    int rc = sqlite3_step(storage_stmt(db, "BEGIN IMMEDIATE"));
    return rc == SQLITE_DONE ? 0 : storage_fail(db, rc, "begin transaction", e);
}

int storage_commit(sqlite3 *db, ad_err *e)
{
    int rc = sqlite3_step(storage_stmt(db, "COMMIT"));
    if (rc == SQLITE_DONE) return 0;
    storage_rollback(db);
    return storage_fail(db, rc, "commit", e);
}

void storage_rollback(sqlite3 *db)
{
    if (!sqlite3_get_autocommit(db)) sqlite3_step(storage_stmt(db, "ROLLBACK"));
}

int storage_schema_version(void)
{
    return (int)storage_migration_count;
}
