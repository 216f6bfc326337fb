/*
 * The SQLite database: one file in the data dir, WAL mode, one connection per
 * thread, forward-only migrations keyed by PRAGMA user_version.
 *
 * storage_open() is called once by main before any thread uses the database;
 * every thread then gets its own connection from storage_conn_get(), opened on
 * first use and closed when the thread exits (or by storage_thread_release()).
 * Nothing above storage/ sees a SQL string, a SQLite type or a transaction:
 * callers hold an opaque storage_conn and call units of work named for what
 * they do, each of which commits all its rows or none (storage/sqlite.h is
 * the backend's private side; scripts/check_storage_seam.sh keeps it so).
 */
#ifndef AD_STORAGE_DB_H
#define AD_STORAGE_DB_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

/* A thread's connection to the database: opaque above storage/. */
typedef struct storage_conn storage_conn;

/* Creates the data dir if needed, takes its lock (storage/lock.h: AD_ECONFLICT
 * when another process holds it), opens or creates agentd.db in it and runs
 * the migrations. Refuses a database whose schema is newer than this binary. */
int storage_open(const char *data_dir, ad_err *e);

/* The same on PostgreSQL (storage/conn.h: pg_open): `url` is a libpq
 * connection URI (postgresql://...). No data dir lock: any number of
 * replicas share one database. */
int storage_open_url(const char *url, ad_err *e);

/* 1 when the database is shared by several processes (PostgreSQL, opened
 * by storage_open_url), 0 on SQLite (one process owns the file, by its data
 * dir lock): state a single process may keep in memory must go to the
 * database when it is shared. */
int storage_is_shared(void);

/* The server and database a database URL points at, for log lines and
 * messages: never its password. Unset parts read "(default)". */
typedef struct storage_url_target {
    char host[128];
    char port[16];
    char db[64];
} storage_url_target;

/* Fills `t` from `url`; 0, or -1 when libpq cannot parse it. */
int storage_url_parse(const char *url, storage_url_target *t);

/* "host H port P database D" for `url`, in `out`. */
void storage_url_describe(const char *url, char *out, size_t cap);

/* Closes the calling thread's connection, forgets the path and releases the
 * data dir's lock; call last. */
void storage_close(void);

/* The calling thread's connection, opened on first use; NULL if it cannot be
 * opened (the reason is logged). Valid until the thread exits. */
storage_conn *storage_conn_get(void);

/* Closes the calling thread's connection now (threads not created by agentd,
 * or the main thread before exit). */
void storage_thread_release(void);

/* A read snapshot, the one transaction callers above storage/ hold: every
 * read on this thread's connection between storage_snapshot_begin and
 * storage_snapshot_end sees the database as it was at the first of them, so
 * a request that reads an agent and then its versions or passages never
 * sees half of a concurrent delete. Writes are never made in one: a unit of
 * work (every storage call that writes several rows owns its transaction)
 * ends the snapshot first; a one-statement write must not run inside one
 * (one that does is kept when the snapshot ends, but it fails busy if
 * another connection wrote since the snapshot began). Ending a snapshot that
 * is not open does nothing. */
int storage_snapshot_begin(storage_conn *db, ad_err *e);
void storage_snapshot_end(storage_conn *db);

/* What /health shows of the database's ability to write. */
typedef struct storage_health {
    int writes_failing;      /* a write failed for lack of space or an I/O error */
    int64_t last_failure_ms; /* ms since the epoch of the last such failure */
    char reason[160];        /* SQLite's words for the last such failure */
} storage_health;

/* Fills `out`. Writes count as failing from a failure until a later write
 * commits (and for at least STORAGE_FAILING_HOLD_MS after the failure, so a
 * small write that still fits does not hide a full disk); once the hold is
 * over and nothing else has written, a small probe write on the calling
 * thread's connection decides. */
void storage_health_check(storage_conn *db, storage_health *out);

#define STORAGE_FAILING_HOLD_MS 2000

/* Milliseconds since the epoch of the last committed write transaction (0:
 * none yet); the maintenance thread treats a quiet database as idle. */
int64_t storage_last_commit_ms(void);

/* The schema version this binary migrates to. */
int storage_schema_version(void);

#endif
