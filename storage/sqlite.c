/*
 * The SQLite backend: one file in the data dir, WAL mode, one connection per
 * thread, forward-only migrations keyed by PRAGMA user_version.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "storage/conn.h"
#include "storage/internal.h"
#include "storage/lock.h"
#include "storage/schema.h"

static char *db_path;
static char *db_dir;

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

static storage_conn *db_conn_new(sqlite3 *db)
{
    storage_conn *c = ad_calloc(1, sizeof(*c));
    c->kind = STORAGE_SQLITE;
    c->db = db;
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
    int version = storage_pragma_int(c, "PRAGMA user_version");
    if (version < 0) return storage_fail(c, SQL_EERROR, "read schema version", e);

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

int lite_open(const char *data_dir, ad_err *e)
{
    /* Allocation statistics take a process-wide mutex on every malloc:
     * connections are per thread, so that mutex is the only contention left.
     * Must precede any other SQLite call; fails harmlessly if one came first. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
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

    int why = 0;
    sqlite3 *db = db_open_connection(&why, e);
    if (!db) return db_explain_open_failure(why, e);
    storage_conn *c = db_conn_new(db);
    storage_conn_install(c);
    rc = db_migrate(c, e);
    if (rc < 0) {
        why = sqlite3_extended_errcode(db);
        if ((why & 0xff) == SQLITE_NOTADB || (why & 0xff) == SQLITE_CORRUPT ||
            (why & 0xff) == SQLITE_READONLY || (why & 0xff) == SQLITE_CANTOPEN)
            rc = db_explain_open_failure(why, e);
        else if (e && !strstr(e->msg, db_path)) {
            char msg[AD_ERR_MSG_MAX];
            snprintf(msg, sizeof(msg), "%s", e->msg);
            ad_err_set(e, rc, "cannot migrate database '%s': %s", db_path, msg);
        }
    }
    return rc;
}

void lite_close(void)
{
    free(db_path);
    free(db_dir);
    db_path = db_dir = NULL;
    storage_lock_release();
}

storage_conn *lite_connect(ad_err *e)
{
    if (!db_path) {
        ad_err_set(e, AD_EIO, "storage used before storage_open");
        return NULL;
    }
    sqlite3 *db = db_open_connection(NULL, e);
    return db ? db_conn_new(db) : NULL;
}

void lite_disconnect(storage_conn *c)
{
    storage_stmt_cache_free(c);
    sqlite3_close(c->db);
    free(c);
}
