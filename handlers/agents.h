/*
 * The agents resource: create (plain and the Flask "advanced" alias), list,
 * read, status, pipeline view, delete one or all. Also the two helpers every
 * per-agent handler starts with: user_id validation and agent lookup.
 */
#ifndef AD_HANDLERS_AGENTS_H
#define AD_HANDLERS_AGENTS_H

#include "server/request.h"
#include "storage/agents.h"

/* 0 when `id` is a valid user_id: 1-64 of [A-Za-z0-9_.-], not "." or "..",
 * not a reserved word ("all", "advanced", "start-training"); else AD_EINVAL
 * with the reason. */
int agents_check_user_id(const char *id, ad_err *e);

/* Reads the agent named by the first path parameter into `out`. On failure
 * fills `res` (400 bad id, 404 unknown, 500) and returns a negative code. */
int agents_lookup(ad_request *req, ad_response *res, agent_row *out);

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
