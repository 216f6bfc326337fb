/*
 * The private side of storage/db.h for the files of table families: the
 * statement API (storage/sql.h), the transaction of a unit of work, and the
 * steps units of work are made of. Never included above storage/.
 */
#ifndef AD_STORAGE_INTERNAL_H
#define AD_STORAGE_INTERNAL_H

#include "storage/db.h"
#include "storage/executions.h"
#include "storage/index.h"
#include "storage/sql.h"
#include "storage/states.h"
#include "storage/versions.h"

/* Maps sql_step's code (storage/sql.h) to an AD_E* code and fills `e` with
 * `what` and the backend's words (for the log, never for a client).
 * Unique-key conflicts are AD_EEXIST, a vanished parent row (foreign key)
 * AD_ENOTFOUND, lock contention AD_EBUSY, lack of space and I/O errors AD_EIO
 * (the database is unavailable for writing; /health reports it), a server
 * that cannot be reached AD_EUNAVAILABLE, anything else (and an unexpected
 * SQL_ROW or SQL_DONE) AD_EINTERNAL. */
int storage_fail(storage_conn *db, int rc, const char *what, ad_err *e);

/* The transaction of a unit of work on the calling thread's connection:
 * SQLite's BEGIN IMMEDIATE, or PostgreSQL's BEGIN with the advisory lock
 * that makes units of work run one at a time there too; then COMMIT or
 * ROLLBACK. storage_begin first ends a read
 * snapshot the thread still holds. Above storage/, code calls the units of
 * work, never these. */
int storage_begin(storage_conn *db, ad_err *e);
int storage_commit(storage_conn *db, ad_err *e);
void storage_rollback(storage_conn *db);

/* Ends the unit of work storage_begin opened: commits when `rc` is 0, else
 * rolls back. Returns the commit's code, or `rc`. */
int storage_end(storage_conn *db, int rc, ad_err *e);

/*
 * Steps of units of work: each runs inside a transaction that a unit of work
 * in storage/ opened, and commits nothing itself.
 */

/* Sets status, stage and progress (and error, or clears it when NULL) and
 * when the pipeline job should end (wall ms; 0 clears it); AD_ENOTFOUND when
 * the agent is gone. */
int storage_agents_set_state(storage_conn *db, int64_t agent_id, agent_state status, const char *stage,
                             int progress, const char *error, int64_t eta_at, ad_err *e);

/* Writes the agent's execution-log rows, pending, with fresh task ids. */
int storage_exec_create_log(storage_conn *db, int64_t agent_id, const exec_plan *plan, int64_t now,
                            ad_err *e);

/* Writes `step` (storage/executions.h): holds its job, completes its stage's
 * row, moves the agent on and starts the next row or finishes the job.
 * `output` replaces step->output when not NULL. */
int storage_exec_write_step(storage_conn *db, const exec_step *step, const char *output, ad_err *e);

/* Ends a run: done with its version and trained data, or failed with a
 * reason. A run that has already ended (stopped: cancelled) keeps its end. */
int storage_trainings_finish(storage_conn *db, int64_t training_id, training_state status,
                             int best_iteration, int64_t version_id, const char *trained_data,
                             const char *error, ad_err *e);

/* A version's parts (storage/versions.h has the units of work made of them):
 * create one in state "building", to be indexed with `language` (AD_EEXIST
 * when the name is taken), mark it "trained" with its passage count, store its
 * evaluation, deploy it (the previous deployed one is retired; the agent
 * points at it) or reject it, delete it with its index, delete an
 * agent's candidates (training tries a crash left). */
int storage_versions_create(storage_conn *db, int64_t agent_id, const char *name, const char *language,
                            const char *params, const char *persona, const char *fewshot,
                            int64_t *version_id, ad_err *e);
int storage_versions_set_built(storage_conn *db, int64_t version_id, int64_t passages, ad_err *e);
int storage_versions_set_metrics(storage_conn *db, int64_t version_id, const char *metrics,
                                 double quality, ad_err *e);
int storage_versions_deploy(storage_conn *db, int64_t agent_id, int64_t version_id, const char *note,
                            ad_err *e);
int storage_versions_reject(storage_conn *db, int64_t version_id, const char *note, ad_err *e);
int storage_versions_delete(storage_conn *db, int64_t version_id, ad_err *e);
int storage_versions_delete_candidates(storage_conn *db, int64_t agent_id, ad_err *e);

/* A version's index rows (storage/index.h): one passage (`question` NULL is
 * stored as ""), one term's postings, the statistics and lengths blob (this
 * row marks the version indexed, so it goes last), and all of a built
 * index's terms then its statistics. */
int storage_index_put_passage(storage_conn *db, int64_t version_id, int ord, const char *question,
                              const char *body, const char *answer, const char *category, ad_err *e);
int storage_index_put_term(storage_conn *db, int64_t version_id, const char *term, size_t len,
                           const void *postings, size_t n, ad_err *e);
int storage_index_put_stats(storage_conn *db, int64_t version_id, const index_stats_row *s,
                            const void *lengths, size_t n, ad_err *e);
int storage_index_write(storage_conn *db, int64_t version_id, const index_rows *rows, ad_err *e);

/* Carries out `v` (storage/versions.h) with its deployment's record: checks
 * first that the agent's deployed version is still `v->expected_deployed`
 * (AD_ECONFLICT otherwise), makes the deployment when `v->deployment_id` is
 * 0 or takes the pending one (AD_ESTATE when it is not pending), logs the
 * gate's decision, and either switches (the live deployment superseded, this
 * one live, the versions' states and agents.deployed_version_id with it) or
 * rejects; each with its events and audit rows (storage/deployments.c). */
int storage_deployments_apply(storage_conn *db, const version_verdict *v, ad_err *e);

/* A training run's best candidate becomes version `name`, trained, with its
 * metrics and quality. */
int storage_versions_publish(storage_conn *db, int64_t version_id, const char *name, const char *metrics,
                             double quality, ad_err *e);

/* The integer a one-value query returns (e.g. "PRAGMA freelist_count"), -1
 * on failure. Pass only string literals. */
int storage_pragma_int(storage_conn *db, const char *sql);

/* Adds an audit row (storage/audit.h) inside the caller's unit of work, so
 * an action and its record commit together. */
struct audit_entry;
int storage_audit_insert(storage_conn *db, const struct audit_entry *a, ad_err *e);

#endif
