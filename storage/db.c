#include "storage/db.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"
#include "storage/lock.h"
#include "storage/sqlite.h"
#include "storage/schema.h"


static char *db_path;
static char *db_dir;

/* The database's ability to write, shared by every connection: the times of
 * the last commit and of the last write that failed for lack of space or an
 * I/O error, and SQLite's words for that failure. */
static atomic_llong db_commit_ms, db_failed_ms, db_probe_ms;
static pthread_mutex_t db_fail_lock = PTHREAD_MUTEX_INITIALIZER;
static char db_fail_reason[160];
static pthread_key_t db_key;
static pthread_once_t db_key_once = PTHREAD_ONCE_INIT;

static void db_conn_free(void *p)
{
    storage_conn *c = p;
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

/* Runs `sql`; on failure fills `e` and, when `why` is not NULL, stores
 * SQLite's result code there. */
static int db_exec(sqlite3 *db, const char *sql, int *why, ad_err *e)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        if (why) *why = rc;
        ad_err_set(e, AD_EIO, "%s", msg ? msg : sqlite3_errstr(rc));
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

/* Opens a connection; on failure fills `e` with SQLite's words and `*why`
 * (when not NULL) with its result code. */
static sqlite3 *db_open_connection(int *why, ad_err *e)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(db_path, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        if (why) *why = rc;
        ad_err_set(e, AD_EIO, "%s", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_handler(db, db_busy, NULL);
    sqlite3_extended_result_codes(db, 1);
    /* page_size: takes effect only when the file is created (an existing
     * database keeps its own). 8 KiB halves the overflow pages a 10 MiB text
     * takes on its three writes and reads (material, units, a version's
     * passages): the 10 MiB pipeline ran 7% faster, while small commits
     * (status, jobs) showed no change; 16 KiB was no faster on big texts and
     * slowed the many-small-agents case. journal_size_limit: a WAL that a checkpoint has emptied is cut back to
     * this size instead of keeping its peak size on disk. */
    if (db_exec(db,
                "PRAGMA page_size = 8192;"
                "PRAGMA journal_mode = WAL;"
                "PRAGMA synchronous = NORMAL;"
                "PRAGMA foreign_keys = ON;"
                "PRAGMA temp_store = MEMORY;"
                "PRAGMA journal_size_limit = 4194304;"
                "PRAGMA cache_size = -2048;",
                why, e) < 0) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

/* Makes `db` the calling thread's connection. */
static storage_conn *db_conn_install(sqlite3 *db)
{
    storage_conn *c = ad_calloc(1, sizeof(*c));
    c->db = db;
    c->cap = 64;
    c->slots = ad_calloc(c->cap, sizeof(*c->slots));
    pthread_setspecific(db_key, c);
    return c;
}

/* Rewrites `e` (SQLite's reason for failing to open or migrate the database)
 * into one message that names the file, the user agentd runs as, and what to
 * do about it. */
static int db_explain_open_failure(int why, ad_err *e)
{
    char reason[96];
    snprintf(reason, sizeof(reason), "%.80s", e ? e->msg : "");
    int primary = why & 0xff;
    if (primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT)
        return ad_err_set(e, AD_EIO,
                          "database '%s' is corrupt or not a SQLite database (%s): restore it from a "
                          "backup, or move it aside to start with an empty one",
                          db_path, reason);
    unsigned uid = (unsigned)geteuid(), gid = (unsigned)getegid();
    struct stat st;
    char where[96] = "check the data dir's ownership";
    if (stat(db_path, &st) == 0 && access(db_path, R_OK | W_OK) < 0)
        snprintf(where, sizeof(where), "the file is owned by %u:%u, mode %04o", (unsigned)st.st_uid,
                 (unsigned)st.st_gid, (unsigned)(st.st_mode & 07777));
    else if (stat(db_dir, &st) == 0 && access(db_dir, W_OK | X_OK) < 0)
        snprintf(where, sizeof(where), "the data dir is owned by %u:%u, mode %04o", (unsigned)st.st_uid,
                 (unsigned)st.st_gid, (unsigned)(st.st_mode & 07777));
    return ad_err_set(e, AD_EIO,
                      "cannot open database '%s' (%s): agentd runs as uid %u gid %u; %s: chown -R %u:%u "
                      "the data dir, or run agentd as its owner (docker: --user)",
                      db_path, reason, uid, gid, where, uid, gid);
}

static int db_migrate(storage_conn *c, ad_err *e)
{
    sqlite3 *db = c->db;
    sqlite3_stmt *st;
    int version = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return storage_fail(c, sqlite3_errcode(db), "read schema version", e);
    if (sqlite3_step(st) == SQLITE_ROW) version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);

    int latest = (int)storage_migration_count;
    if (version > latest)
        return ad_err_set(e, AD_EIO,
                          "database '%s' has schema version %d, newer than this agentd (%d): "
                          "upgrade agentd or use another data dir",
                          db_path, version, latest);
    /* auto_vacuum must be chosen before the first table exists; an older
     * database is converted once, by a VACUUM outside any transaction. */
    int rc = version == 0 ? db_exec(db, "PRAGMA auto_vacuum = INCREMENTAL", NULL, e) : 0;
    if (rc < 0) return rc;
    for (int v = version; v < latest; v++) {
        rc = storage_begin(c, e);
        if (rc < 0) return rc;
        rc = storage_end(c, db_exec(db, storage_migrations[v], NULL, e), e);
        if (rc < 0) return rc;
        ad_log(AD_LOG_INFO, "database migrated to schema version %d", v + 1);
    }
    if (storage_pragma_int(c, "PRAGMA auto_vacuum") != 2) {
        ad_log(AD_LOG_INFO, "converting the database to incremental auto-vacuum (a one-time VACUUM)");
        ad_err ve = {0};
        /* VACUUM needs room for a copy of the database: without it, start
         * anyway; freed pages are then reused but not given back. */
        if (db_exec(db, "PRAGMA auto_vacuum = INCREMENTAL; VACUUM", NULL, &ve) < 0)
            ad_log(AD_LOG_WARN, "database '%s' not converted to incremental auto-vacuum: %s", db_path,
                   ve.msg);
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
    if (mkdir(data_dir, 0750) < 0 && errno != EEXIST) {
        int err = errno;
        return ad_err_set(e, AD_EIO,
                          "cannot create data dir '%s': %s; agentd runs as uid %u gid %u: create it "
                          "(under a directory) writable by that user, or choose another --data-dir",
                          data_dir, strerror(err), (unsigned)geteuid(), (unsigned)getegid());
    }
    size_t n = ad_size_add(strlen(data_dir), sizeof("/agentd.db"));
    free(db_path);
    free(db_dir);
    db_path = ad_malloc(n);
    snprintf(db_path, n, "%s/agentd.db", data_dir);
    db_dir = ad_strdup(data_dir);
    /* The lock comes first, so two processes never migrate one file; a data
     * dir it cannot be created in is explained like an unopenable database. */
    int rc = storage_lock_acquire(data_dir, e);
    if (rc == AD_EIO) return db_explain_open_failure(SQLITE_CANTOPEN, e);
    if (rc < 0) return rc;
    atomic_store(&db_failed_ms, 0);

    storage_thread_release();
    int why = 0;
    sqlite3 *db = db_open_connection(&why, e);
    if (!db) return db_explain_open_failure(why, e);
    rc = db_migrate(db_conn_install(db), e);
    if (rc < 0) {
        why = sqlite3_extended_errcode(db);
        if ((why & 0xff) == SQLITE_NOTADB || (why & 0xff) == SQLITE_CORRUPT ||
            (why & 0xff) == SQLITE_READONLY || (why & 0xff) == SQLITE_CANTOPEN)
            return db_explain_open_failure(why, e);
        if (e && !strstr(e->msg, db_path)) {
            char msg[AD_ERR_MSG_MAX];
            snprintf(msg, sizeof(msg), "%s", e->msg);
            ad_err_set(e, rc, "cannot migrate database '%s': %s", db_path, msg);
        }
    }
    return rc;
}

int storage_pragma_int(storage_conn *c, const char *pragma)
{
    sqlite3 *db = c->db;
    sqlite3_stmt *st;
    int v = -1;
    if (sqlite3_prepare_v2(db, pragma, -1, &st, NULL) != SQLITE_OK) return -1;
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
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
    free(db_path);
    free(db_dir);
    db_path = db_dir = NULL;
    storage_lock_release();
}

storage_conn *storage_conn_get(void)
{
    pthread_once(&db_key_once, db_key_create);
    storage_conn *c = pthread_getspecific(db_key);
    if (c) return c;
    ad_err e = {0};
    sqlite3 *db = db_path ? db_open_connection(NULL, &e) : NULL;
    if (!db) {
        ad_log(AD_LOG_ERROR, "cannot open the database: %s", db_path ? e.msg : "storage used before storage_open");
        return NULL;
    }
    return db_conn_install(db);
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

/* Asserts that `c` is the calling thread's own connection: its statement
 * cache and snapshot flag are unlocked, so a connection handed to another
 * thread would race on them (docs/threads.md: no connection is shared). */
static void db_assert_own(const storage_conn *c)
{
    ad_assert(c != NULL && c == pthread_getspecific(db_key));
}

sqlite3_stmt *storage_stmt(storage_conn *c, const char *sql)
{
    db_assert_own(c);
    sqlite3 *db = c->db;
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

/* Remembers a write that failed for lack of space or an I/O error. */
static void db_note_failure(sqlite3 *db, int rc)
{
    pthread_mutex_lock(&db_fail_lock);
    snprintf(db_fail_reason, sizeof(db_fail_reason), "%s",
             db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    pthread_mutex_unlock(&db_fail_lock);
    atomic_store(&db_failed_ms, ad_clock_now_ms());
}

int storage_fail(storage_conn *c, int rc, const char *what, ad_err *e)
{
    sqlite3 *db = c ? c->db : NULL;
    int code = AD_EINTERNAL;
    int primary = rc & 0xff;
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) code = AD_EEXIST;
    else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) code = AD_ENOTFOUND;
    else if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) code = AD_EBUSY;
    else if (primary == SQLITE_FULL || primary == SQLITE_IOERR || primary == SQLITE_CANTOPEN ||
             primary == SQLITE_READONLY || primary == SQLITE_NOMEM || primary == SQLITE_PROTOCOL)
        code = AD_EIO;
    if (code == AD_EIO) db_note_failure(db, rc);
    return ad_err_set(e, code, "%s: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

int storage_begin(storage_conn *db, ad_err *e)
{
    storage_snapshot_end(db);
    int rc = sqlite3_step(storage_stmt(db, "BEGIN IMMEDIATE"));
    return rc == SQLITE_DONE ? 0 : storage_fail(db, rc, "begin transaction", e);
}

int storage_commit(storage_conn *db, ad_err *e)
{
    int rc = sqlite3_step(storage_stmt(db, "COMMIT"));
    if (rc == SQLITE_DONE) {
        atomic_store(&db_commit_ms, ad_clock_now_ms());
        return 0;
    }
    int code = storage_fail(db, rc, "commit", e);
    storage_rollback(db);
    return code;
}

void storage_rollback(storage_conn *db)
{
    if (!sqlite3_get_autocommit(db->db)) sqlite3_step(storage_stmt(db, "ROLLBACK"));
}

int storage_end(storage_conn *db, int rc, ad_err *e)
{
    if (rc == 0) return storage_commit(db, e);
    storage_rollback(db);
    return rc;
}

int storage_snapshot_begin(storage_conn *c, ad_err *e)
{
    db_assert_own(c);
    storage_conn *db = c;
    storage_snapshot_end(db);
    if (!sqlite3_get_autocommit(db->db))
        return ad_err_set(e, AD_EINTERNAL, "read snapshot requested inside a write transaction");
    int rc = sqlite3_step(storage_stmt(db, "BEGIN DEFERRED"));
    if (rc != SQLITE_DONE) return storage_fail(db, rc, "begin read snapshot", e);
    c->snapshot = 1;
    return 0;
}

void storage_snapshot_end(storage_conn *c)
{
    storage_conn *db = c;
    if (!c || !c->snapshot) return;
    c->snapshot = 0;
    /* COMMIT, not ROLLBACK: for reads alone they are the same, but an
     * autocommit write that ran inside the snapshot by mistake joined its
     * transaction, and a ROLLBACK would drop it after its request had been
     * told it was stored. */
    if (!sqlite3_get_autocommit(db->db) && sqlite3_step(storage_stmt(db, "COMMIT")) != SQLITE_DONE)
        storage_rollback(db);
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
    sqlite3_stmt *st = storage_stmt(db,
        "INSERT OR REPLACE INTO write_probe (id, at, pad) VALUES (1, ?1, zeroblob(65536))");
    sqlite3_bind_int64(st, 1, ad_clock_now_ms());
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
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
