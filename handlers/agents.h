/*
 * The agents resource: create (plain and the Flask "advanced" alias), list,
 * read, status, pipeline view, delete one or all. Also the two helpers every
 * per-agent handler starts with: user_id validation and agent lookup.
 */
#ifndef AD_HANDLERS_AGENTS_H
#define AD_HANDLERS_AGENTS_H

#include "api/request.h"
#include "storage/agents.h"

/* 0 when `id` is a valid user_id: 1-64 of [A-Za-z0-9_.-], not "." or "..",
 * not a reserved word ("all", "advanced", "start-training"); else AD_EINVAL
 * with the reason. */
int agents_check_user_id(const char *id, ad_err *e);

/* Reads the agent named by the first path parameter into `out`. On failure
 * fills `res` (400 bad id, 404 unknown, 503/500) and returns a negative code. */
int agents_lookup(ad_request *req, ad_response *res, agent_row *out);

/* Cancels the running or queued pipeline work of one agent; `app` is the
 * request's `const ad_app *` (a storage callback's user data). The pool is
 * thread-safe, and the app is only read. */
void agents_cancel_jobs(void *app, int64_t agent_id);

/* The calling thread's database connection, or NULL after answering 503
 * `database_unavailable` (as agents_answer_storage does AD_EUNAVAILABLE). */
storage_conn *agents_db(ad_request *req, ad_response *res);

/* agents_lookup inside a read snapshot (storage/db.h), so that the request's
 * later reads (versions, passages, the execution log) see the agent as it was
 * at the lookup even if it is deleted meanwhile. The caller ends it with
 * storage_snapshot_end once its reads are done, before any write; on failure
 * it is already ended. */
int agents_lookup_snapshot(ad_request *req, ad_response *res, agent_row *out);

/* Answers a failed storage call of a request about agent `user_id` (NULL
 * when the request names none): 404 agent_not_found when the agent vanished
 * (AD_ENOTFOUND), 409 conflict when a conflicting job or run holds the agent
 * (AD_ECONFLICT, with storage's message), 503 database_busy,
 * database_unavailable or storage_unavailable (with Retry-After) when the
 * database is busy (AD_EBUSY, also a statement past its deadline), cannot
 * be reached (AD_EUNAVAILABLE: the server is down, the connection lost) or
 * refuses writes
 * (disk full, I/O error), else 500 storage_error. The client never sees the
 * database's words: they go to the log with the request id. Returns `rc`. */
int agents_answer_storage(ad_request *req, ad_response *res, int rc, const char *user_id,
                          const ad_err *e);

/* Answers 409 not_deployed and returns 1 when agent `a` is ready but serves
 * nothing (every deployment removed: waiting will not help, unlike
 * agent_not_ready); returns 0, answering nothing, otherwise. For the routes
 * that read the deployed version (inference, evaluate). */
int agents_answer_not_deployed(ad_request *req, ad_response *res, const agent_row *a);

void handle_agents_create(ad_request *req, ad_response *res);
void handle_agents_create_advanced(ad_request *req, ad_response *res);
void handle_agents_list(ad_request *req, ad_response *res);
void handle_agent_get(ad_request *req, ad_response *res);
void handle_agent_status(ad_request *req, ad_response *res);
void handle_agent_pipeline(ad_request *req, ad_response *res);
void handle_agent_executions(ad_request *req, ad_response *res);
void handle_agent_delete(ad_request *req, ad_response *res);
void handle_agents_delete_all(ad_request *req, ad_response *res);

#endif
