/* The PostgreSQL backend: not built yet (stubs). */
#include "storage/conn.h"

int pg_open(const char *url, ad_err *e) { (void)url; return ad_err_set(e, AD_EIO, "PostgreSQL is not built in yet"); }
void pg_close(void) {}
storage_conn *pg_connect(ad_err *e) { ad_err_set(e, AD_EIO, "no PostgreSQL"); return NULL; }
void pg_disconnect(storage_conn *c) { (void)c; }
pg_stmt *pg_prepare(storage_conn *c, const char *sql) { (void)c; (void)sql; return NULL; }
void pg_finalize(pg_stmt *st) { (void)st; }
void pg_bind_int64(pg_stmt *st, int i, int64_t v) { (void)st; (void)i; (void)v; }
void pg_bind_double(pg_stmt *st, int i, double v) { (void)st; (void)i; (void)v; }
void pg_bind_text(pg_stmt *st, int i, const char *s, size_t n) { (void)st; (void)i; (void)s; (void)n; }
void pg_bind_blob(pg_stmt *st, int i, const void *p, size_t n) { (void)st; (void)i; (void)p; (void)n; }
void pg_bind_null(pg_stmt *st, int i) { (void)st; (void)i; }
void pg_clear_bindings(pg_stmt *st) { (void)st; }
int pg_step(pg_stmt *st) { (void)st; return SQL_EDOWN; }
void pg_reset(pg_stmt *st) { (void)st; }
int64_t pg_changes(pg_stmt *st) { (void)st; return 0; }
int pg_column_is_null(pg_stmt *st, int i) { (void)st; (void)i; return 1; }
int64_t pg_column_int64(pg_stmt *st, int i) { (void)st; (void)i; return 0; }
double pg_column_double(pg_stmt *st, int i) { (void)st; (void)i; return 0; }
const char *pg_column_text(pg_stmt *st, int i) { (void)st; (void)i; return NULL; }
const void *pg_column_blob(pg_stmt *st, int i) { (void)st; (void)i; return NULL; }
size_t pg_column_bytes(pg_stmt *st, int i) { (void)st; (void)i; return 0; }
int pg_exec(storage_conn *c, const char *sql, ad_err *e) { (void)c; (void)sql; return ad_err_set(e, AD_EIO, "no PostgreSQL"); }
int pg_begin(storage_conn *c, ad_err *e) { (void)c; return ad_err_set(e, AD_EIO, "no PostgreSQL"); }
int pg_commit(storage_conn *c, ad_err *e) { (void)c; return ad_err_set(e, AD_EIO, "no PostgreSQL"); }
void pg_rollback(storage_conn *c) { (void)c; }
int pg_snapshot_begin(storage_conn *c, ad_err *e) { (void)c; return ad_err_set(e, AD_EIO, "no PostgreSQL"); }
void pg_snapshot_end(storage_conn *c) { (void)c; }
int pg_listen(storage_conn *c, const char *channel, ad_err *e) { (void)c; (void)channel; return ad_err_set(e, AD_EIO, "no PostgreSQL"); }
int pg_wait_notify(storage_conn *c, int timeout_ms) { (void)c; (void)timeout_ms; return AD_EUNAVAILABLE; }
