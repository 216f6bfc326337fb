/*
 * Test fixtures for the storage and pipeline suites: a real SQLite database
 * in a fresh temporary directory, and plain row counts that bypass storage/.
 */
#ifndef AD_TESTS_UNIT_STORAGE_FIXTURES_H
#define AD_TESTS_UNIT_STORAGE_FIXTURES_H

#include <stdint.h>

/* The tests reach under the storage interface to set up and inspect rows. */
#include "storage/conn.h"
#include "storage/internal.h"
#include "tests/common/pgserver.h"

typedef struct storage_fixture {
    char root[64];       /* the mkdtemp directory */
    char data_dir[96];   /* root/data: storage_open creates it */
    storage_conn *db;         /* the calling thread's connection */
} storage_fixture;

/* The replica the fixture's process plays: storage_fixture_open makes it
 * this replica's lease owner (storage_jobs_set_owner), with this lease. */
#define FIXTURE_REPLICA "fixture:1:00000000"
#define FIXTURE_LEASE_MS 15000

/* Creates the directory and opens storage in it, as replica FIXTURE_REPLICA;
 * fails the test on error. */
void storage_fixture_open(storage_fixture *f);

/* storage_close() and removes the directory with everything in it. */
void storage_fixture_close(storage_fixture *f);

/* Removes the directory with everything in it but leaves storage open: for a
 * test that ends in an abort, so that it leaves nothing behind. */
void storage_fixture_remove_files(storage_fixture *f);

/* Claims the next job as FIXTURE_REPLICA (storage_jobs_claim). */
struct job_row;
int storage_fixture_claim(storage_conn *db, struct job_row *out, ad_err *e);

/* Runs a one-integer query with `arg` bound to ?1 (when the query has it). */
int64_t storage_fixture_count(storage_conn *db, const char *sql, int64_t arg);

/* Same, with a text argument. */
int64_t storage_fixture_count_text(storage_conn *db, const char *sql, const char *arg);

/* Runs one statement that returns no row, with `arg` bound to ?1; fails the
 * test on error. Sets up rows no unit of work writes on its own. */
void storage_fixture_exec(storage_conn *db, const char *sql, int64_t arg);

/* Makes the first statement on `db` whose SQL contains `sql_part` fail as
 * interrupted (sqlite3_interrupt: storage's AD_EINTERNAL), as a failing
 * database would; with `after_rows` > 0, it fails after returning that many
 * rows instead of at its start. `sql_part` NULL turns it off. The fragment
 * must outlive the call. Returns how many times it fired since the last call. */
int storage_fixture_fail_statement(storage_conn *db, const char *sql_part, int after_rows);

/* A client's forced switch to `version_id`: a deployment made and pushed
 * live in one unit of work (storage/deployments.h), against the agent's
 * deployed version as it is now. Returns storage_deployments_push's code. */
int storage_fixture_deploy(storage_conn *db, int64_t agent_id, int64_t version_id, ad_err *e);

/* The throwaway PostgreSQL server of a suite that needs one: start it as an
 * unchecked fixture (before the suite's tests, in the runner's process, so
 * each forked test finds it) and destroy it after. */
extern pgserver storage_fixture_pg_server;
void storage_fixture_pg_start(void);
void storage_fixture_pg_stop(void);

/* A fresh database on that server named `<prefix>_<pid>_<n>`, opened by
 * storage_open_url (so migrated to agentd's schema); returns the calling
 * thread's connection. */
storage_conn *storage_fixture_pg_fresh(const char *prefix);

/* A one-integer query on either backend, `sql` a string literal (the
 * statement cache's key) with ?1 bound to `arg`. */
int64_t storage_fixture_int(storage_conn *db, const char *sql, int64_t arg);

#endif
