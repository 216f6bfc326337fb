/*
 * The SQLite database: one file in the data dir, WAL mode, one connection per
 * thread, forward-only migrations keyed by PRAGMA user_version.
 *
 * storage_open() is called once by main before any thread uses the database;
 * every thread then gets its own connection from storage_conn(), opened on
 * first use and closed when the thread exits (or by storage_thread_release()).
 * Nothing above storage/ sees a SQL string.
 */
#ifndef AD_STORAGE_DB_H
#define AD_STORAGE_DB_H

#include <sqlite3.h>
#include <stdint.h>

#include "base/err.h"

/* Creates the data dir if needed, takes its lock (storage/lock.h: AD_EBUSY
 * when another process holds it), opens or creates agentd.db in it and runs
 * the migrations. Refuses a database whose schema is newer than this binary. */
int storage_open(const char *data_dir, ad_err *e);

/* Closes the calling thread's connection, forgets the path and releases the
 * data dir's lock; call last. */
void storage_close(void);

/* The calling thread's connection, opened on first use; NULL if it cannot be
 * opened (the reason is logged). Valid until the thread exits. */
sqlite3 *storage_conn(void);

/* Closes the calling thread's connection now (threads not created by agentd,
 * or the main thread before exit). */
void storage_thread_release(void);

/* A prepared statement for `sql`, cached per connection and keyed by the
 * pointer: pass only string literals. The statement is reset and its bindings
 * cleared; it stays owned by the cache. */
sqlite3_stmt *storage_stmt(sqlite3 *db, const char *sql);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK on the calling thread's connection. */
int storage_begin(sqlite3 *db, ad_err *e);
int storage_commit(sqlite3 *db, ad_err *e);
void storage_rollback(sqlite3 *db);

/* Maps a SQLite result code to an AD_E* code and fills `e` with its message. */
int storage_fail(sqlite3 *db, int rc, const char *what, ad_err *e);

/* The schema version this binary migrates to. */
int storage_schema_version(void);

#endif
