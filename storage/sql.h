/*
 * The statement API every file in storage/ runs SQL with, whichever backend
 * holds the data: SQLite (storage/sqlite.c) or PostgreSQL (storage/pg.c).
 * Private to storage/ (scripts/check_storage_seam.sh keeps it so).
 *
 * The SQL is written once, in the subset both backends run the same way:
 * - parameters are numbered, ?1 ?2 ... (the PostgreSQL driver rewrites them
 *   to $1 $2 ...); a parameter may repeat;
 * - new rows' ids come back by RETURNING id, never last_insert_rowid();
 * - upserts are INSERT ... ON CONFLICT (cols) DO UPDATE / DO NOTHING, never
 *   INSERT OR REPLACE / OR IGNORE; COALESCE, never IFNULL; CASE, never the
 *   two-argument max()/min();
 * - an aggregate that PostgreSQL would widen to numeric (sum() of integers)
 *   is written CAST(... AS BIGINT);
 * - booleans are integers (0/1) in columns; a comparison read as a column
 *   reads back as 0/1 from both.
 * Where a statement cannot be common (JSON functions, blob sizes, locking
 * clauses), storage_stmt2() takes one text per backend.
 *
 * Lifetimes follow SQLite's: memory bound to a parameter must stay valid
 * until the statement's first sql_step; what a column accessor returns is
 * valid until the next sql_step or reset of that statement.
 */
#ifndef AD_STORAGE_SQL_H
#define AD_STORAGE_SQL_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "storage/db.h"

typedef struct sql_stmt sql_stmt;

/* sql_step's outcomes: a row is ready, or the statement is done. */
enum { SQL_DONE = 0, SQL_ROW = 1 };

/* sql_step's failures, the same from both backends. The backend's own words
 * stay on the connection for storage_fail. */
enum {
    SQL_EUNIQUE = -1,   /* a unique or primary key would be duplicated */
    SQL_EFOREIGN = -2,  /* a foreign key's parent row is missing */
    SQL_EBUSY = -3,     /* lock contention: retrying may succeed */
    SQL_EIO = -4,       /* no space, an I/O error, a read-only database */
    SQL_EDOWN = -5,     /* the database server is unreachable (connection lost) */
    SQL_EERROR = -6     /* anything else: a bug in storage/, or a corrupt database */
};

/* A prepared statement for `sql`, cached per connection and keyed by the
 * pointer: pass only string literals. The statement is reset and its
 * bindings cleared (unbound parameters are NULL); it stays owned by the
 * cache. A statement that fails to prepare is a bug in storage/: it is
 * logged and asserted. */
sql_stmt *storage_stmt(storage_conn *db, const char *sql);

/* Which backend `db` runs on. */
int storage_is_pg(const storage_conn *db);

/* One statement in two dialects: SQLite's text, then PostgreSQL's. */
#define storage_stmt2(db, lite_sql, pg_sql) \
    storage_stmt((db), storage_is_pg(db) ? (pg_sql) : (lite_sql))

void sql_bind_int64(sql_stmt *st, int i, int64_t v);
void sql_bind_int(sql_stmt *st, int i, int v);
void sql_bind_double(sql_stmt *st, int i, double v);
/* NUL-terminated text; NULL binds SQL NULL. */
void sql_bind_text(sql_stmt *st, int i, const char *s);
/* `n` bytes of text (need not be NUL-terminated). */
void sql_bind_textn(sql_stmt *st, int i, const char *s, size_t n);
/* `n` bytes of binary data (PostgreSQL: bytea). */
void sql_bind_blob(sql_stmt *st, int i, const void *p, size_t n);
void sql_bind_null(sql_stmt *st, int i);

/* Runs the statement (its first call) or moves to its next row:
 * SQL_ROW, SQL_DONE, or a negative SQL_E* code. */
int sql_step(sql_stmt *st);

/* Runs an INSERT ... RETURNING id to its end: SQL_DONE with the new row's id
 * in `*id` (left as it was on failure; 0 when it inserted no row: an INSERT ... SELECT that matched
 * nothing), or a failure code. The statement is reset. */
int sql_step_id(sql_stmt *st, int64_t *id);

/* Resets the statement (its result is freed; bindings are kept). */
void sql_reset(sql_stmt *st);

/* Rows the statement's last run inserted, updated or deleted. */
int64_t sql_changes(sql_stmt *st);

/* The current row's column `i`, from 0. NULL reads as 0, 0.0 or NULL;
 * integers read as text in decimal; text reads as an integer by strtoll. */
int sql_column_is_null(sql_stmt *st, int i);
int64_t sql_column_int64(sql_stmt *st, int i);
int sql_column_int(sql_stmt *st, int i);
double sql_column_double(sql_stmt *st, int i);
const char *sql_column_text(sql_stmt *st, int i);
const void *sql_column_blob(sql_stmt *st, int i);
size_t sql_column_bytes(sql_stmt *st, int i);

/* Runs `sql` (one or more statements, no parameters, no rows wanted) on
 * `db`: schema migrations and fixed maintenance statements. */
int storage_exec(storage_conn *db, const char *sql, ad_err *e);

#endif
