/*
 * The connection behind the opaque storage_conn, and the PostgreSQL driver's
 * entry points (storage/pg.c). Private to storage/: the files of table
 * families use storage/internal.h; db.c, sql.c, sqlite.c and pg.c use this.
 *
 * Both backends keep one connection per thread (storage/db.h), opened on the
 * thread's first use; sql.c keeps each connection's statement cache and
 * sends every sql_* call to the connection's backend.
 */
#ifndef AD_STORAGE_CONN_H
#define AD_STORAGE_CONN_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "storage/sql.h"

typedef enum storage_backend { STORAGE_SQLITE = 0, STORAGE_PG = 1 } storage_backend;

typedef struct pg_conn pg_conn;   /* storage/pg.c */
typedef struct pg_stmt pg_stmt;   /* storage/pg.c */

struct sql_stmt {
    storage_conn *conn;
    const char *sql;          /* the literal it was prepared from (the cache key) */
    sqlite3_stmt *lite;       /* SQLite: the prepared statement */
    pg_stmt *pg;              /* PostgreSQL: the driver's statement */
};

typedef struct stmt_slot {
    const char *sql;
    sql_stmt *stmt;
} stmt_slot;

struct storage_conn {
    storage_backend kind;
    sqlite3 *db;              /* SQLite's handle (kind STORAGE_SQLITE) */
    pg_conn *pg;              /* PostgreSQL's (kind STORAGE_PG) */
    stmt_slot *slots;         /* the statement cache: open addressing on the SQL pointer */
    size_t cap, used;
    int snapshot;             /* a read snapshot is open (storage_snapshot_begin) */
    int in_unit;              /* a unit of work is open (storage_begin) */
    int last_rc;              /* SQLite's extended result code of the last failure */
    char errmsg[256];         /* the backend's words for the last failure */
};

/* The backend chosen by storage_open. */
storage_backend storage_backend_kind(void);

/* Makes `c` the calling thread's connection (the one storage_conn_get
 * returns), closing any it had. */
void storage_conn_install(storage_conn *c);

/* Asserts that `c` is the calling thread's own connection: its statement
 * cache and transaction flags are unlocked, so a connection handed to
 * another thread would race on them (docs/threads.md: none is shared). */
void storage_conn_assert_own(const storage_conn *c);

/* Frees a connection's statements and the cache (sql.c); the caller closes
 * the backend's handle. */
void storage_stmt_cache_free(storage_conn *c);

/* Records a backend's failure on `c` (code and words) for storage_fail, and
 * returns `code`. */
int storage_conn_failed(storage_conn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * SQLite (storage/sqlite.c): agentd.db under `data_dir`, whose lock it takes
 * (storage/lock.h).
 */
int lite_open(const char *data_dir, ad_err *e);
void lite_close(void);
storage_conn *lite_connect(ad_err *e);
void lite_disconnect(storage_conn *c);

/*
 * PostgreSQL (storage/pg.c). `url` is a libpq connection URI
 * (postgresql://...) or keyword/value string.
 */

/* Checks the server once (connects, takes the migration advisory lock, runs
 * the migrations up to storage_schema_version, or waits for the replica that
 * runs them), then remembers `url` for the threads' connections. Refuses a
 * database whose schema is newer than this binary. */
int pg_open(const char *url, ad_err *e);
void pg_close(void);

/* The driver's tests: makes pg_open run `list` (`n` entries, NULL ones
 * skipped) instead of storage_pg_migrations; NULL goes back to those. */
void pg_use_migrations(const char *const *list, size_t n);

/* A new connection for the calling thread; NULL with `e` filled before
 * pg_open. A server that cannot be reached gives a broken connection, not
 * NULL: its statements fail with SQL_EDOWN until a reset (at most one per
 * 500 ms) reaches the server again. */
storage_conn *pg_connect(ad_err *e);
void pg_disconnect(storage_conn *c);

/* The value of libpq option `keyword` on `c`'s connection as it was made
 * (the defaults pg.c adds, overridden by the URL) into `out`: 0, or -1 when
 * the option is unset or unknown. */
int pg_conn_option(storage_conn *c, const char *keyword, char *out, size_t cap);

/* Statements: sql.c calls these for a connection of kind STORAGE_PG. */
pg_stmt *pg_prepare(storage_conn *c, const char *sql);
void pg_finalize(pg_stmt *st);
void pg_bind_int64(pg_stmt *st, int i, int64_t v);
void pg_bind_double(pg_stmt *st, int i, double v);
void pg_bind_text(pg_stmt *st, int i, const char *s, size_t n);
void pg_bind_blob(pg_stmt *st, int i, const void *p, size_t n);
void pg_bind_null(pg_stmt *st, int i);
void pg_clear_bindings(pg_stmt *st);
int pg_step(pg_stmt *st);
void pg_reset(pg_stmt *st);
int64_t pg_changes(pg_stmt *st);
int pg_column_is_null(pg_stmt *st, int i);
int64_t pg_column_int64(pg_stmt *st, int i);
double pg_column_double(pg_stmt *st, int i);
const char *pg_column_text(pg_stmt *st, int i);
const void *pg_column_blob(pg_stmt *st, int i);
size_t pg_column_bytes(pg_stmt *st, int i);
int pg_exec(storage_conn *c, const char *sql, ad_err *e);

/* Transactions: a unit of work (BEGIN, then the advisory lock every unit of
 * work takes, so that they run one at a time as SQLite's BEGIN IMMEDIATE
 * makes them), its end, and a read snapshot (REPEATABLE READ). */
int pg_begin(storage_conn *c, ad_err *e);
int pg_commit(storage_conn *c, ad_err *e);
void pg_rollback(storage_conn *c);
int pg_snapshot_begin(storage_conn *c, ad_err *e);
void pg_snapshot_end(storage_conn *c);

/* LISTEN on `channel` (an identifier) on `c`, a connection kept for waiting;
 * then pg_wait_notify blocks up to `timeout_ms` for a notification on it:
 * 1 when one (or more) arrived, 0 on timeout, AD_EUNAVAILABLE when the
 * connection broke or was reset by a statement since pg_listen (the caller
 * reconnects and listens again). */
int pg_listen(storage_conn *c, const char *channel, ad_err *e);
int pg_wait_notify(storage_conn *c, int timeout_ms);

#endif
