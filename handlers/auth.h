/*
 * Who a request is, and what it may reach (issue 11): the API-token side of
 * authentication (the server parses the header and checks the bootstrap
 * key; a token is looked up here, in storage), the scope and agent checks
 * every route gets, and the audit of failed authentications.
 */
#ifndef AD_HANDLERS_AUTH_H
#define AD_HANDLERS_AUTH_H

#include "api/request.h"
#include "base/err.h"
#include "storage/audit.h"

/* Authenticates the bearer credential `token` (an `agd_...` secret): one
 * indexed read, the hash compared in constant time, then revocation,
 * expiry and the secret's own end (rotation). Fills `out` (a TOKEN
 * principal whose agents list the caller frees with ad_principal_cleanup).
 * AD_EINVAL: no valid token (answer 401; `e` says why, for the audit log,
 * never naming the secret); another code: storage failed
 * (auth_answer_storage: 503), AD_EUNAVAILABLE when there is no connection.
 * Records the token's use at most once a minute. */
int auth_token_principal(const char *token, ad_principal *out, ad_err *e);

/* Answers a token check that storage could not finish (a code of
 * auth_token_principal other than AD_EINVAL): 503 database_unavailable when
 * the database cannot be reached (AD_EUNAVAILABLE), else 503
 * storage_unavailable; both with Retry-After: 1. Never 401, 403 or 500: the
 * token may well be valid, and a retry will tell. */
void auth_answer_storage(const ad_request *req, ad_response *res, int rc, const ad_err *e);

/* Records a failed authentication in the audit log. A flood is coalesced:
 * at most one `auth.failed` row a second, whose detail counts the failures
 * since the previous row. `token` (may be NULL) is what was presented; only
 * an `agd_` secret's public prefix is recorded. */
void auth_note_failure(const char *token, const char *reason, const char *request_id);

/* The scope check of a route: 0, or -1 with `res` set to 403
 * insufficient_scope naming the scope. */
int auth_check_scope(const ad_request *req, unsigned scope, ad_response *res);

/* The agent check of a route under /api/v1/agents/{id}: 0, or -1 with `res`
 * set to the very 404 an agent that does not exist gets. */
int auth_check_agent(const ad_request *req, const char *pattern, ad_response *res);

/* The caller's agents as a JSON array (malloc'ed), or NULL when it sees
 * every agent: the filter storage applies to lists. */
char *auth_agents_json(const ad_principal *p);

/* Fills `out` with the audit row of an action by the request's caller, for
 * a unit of work that writes it with the action itself; `who` (48 bytes or
 * more) holds the caller's label and must outlive `out`. */
void auth_audit_entry(const ad_request *req, const char *action, const char *target, const char *detail_json,
                      char *who, size_t who_cap, audit_entry *out);

#endif
