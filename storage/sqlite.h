/*
 * The SQLite backend's private side of storage/db.h: what a file in storage/
 * needs to run SQL on a connection. Never included above storage/.
 */
#ifndef AD_STORAGE_SQLITE_H
#define AD_STORAGE_SQLITE_H

#include <sqlite3.h>

#include "storage/db.h"

/* A thread's connection with its statement cache (open addressing on the SQL
 * pointer; string literals have stable addresses). */
typedef struct stmt_slot {
    const char *sql;
    sqlite3_stmt *stmt;
} stmt_slot;

struct storage_conn {
    sqlite3 *db;
    stmt_slot *slots;
    size_t cap, used;
    int snapshot;            /* a read snapshot is open (storage_snapshot_begin) */
};

/* A prepared statement for `sql`, cached per connection and keyed by the
 * pointer: pass only string literals. The statement is reset and its bindings
 * cleared; it stays owned by the cache. */
sqlite3_stmt *storage_stmt(storage_conn *db, const char *sql);

/* Maps a SQLite result code to an AD_E* code and fills `e` with its message
 * (SQLite's words: for the log, never for a client). Unique-key conflicts
 * are AD_EEXIST, a vanished parent row (foreign key) AD_ENOTFOUND, lock
 * contention AD_EBUSY, lack of space and I/O errors AD_EIO (the database is
 * unavailable for writing; /health reports it), anything else AD_EINTERNAL. */
int storage_fail(storage_conn *db, int rc, const char *what, ad_err *e);

/* The integer a one-value PRAGMA query returns (e.g. "PRAGMA freelist_count"),
 * -1 on failure. Pass only string literals. */
int storage_pragma_int(storage_conn *db, const char *pragma);

#endif
