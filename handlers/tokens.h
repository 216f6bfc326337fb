/*
 * The API tokens resource (issue 11, admin scope): create, list, read,
 * revoke, rotate. A secret is shown once, in the answer that made it; with
 * auth off (no AGENTD_API_KEY) every route answers 409 auth_disabled.
 */
#ifndef AD_HANDLERS_TOKENS_H
#define AD_HANDLERS_TOKENS_H

#include "api/request.h"

void handle_tokens_create(ad_request *req, ad_response *res);
void handle_tokens_list(ad_request *req, ad_response *res);
void handle_token_get(ad_request *req, ad_response *res);
void handle_token_revoke(ad_request *req, ad_response *res);
void handle_token_rotate(ad_request *req, ad_response *res);

/* 1 after answering 409 auth_disabled when the service runs without an API
 * key (tokens and the audit log mean nothing then); else 0. */
int tokens_auth_disabled(ad_request *req, ad_response *res);

/* Reads ?limit= (1..TOKENS_LIST_MAX, default 50) and ?cursor= (a positive
 * id this server returned); answers 400 and returns -1 when either is bad. */
int tokens_read_page(ad_request *req, ad_response *res, int *limit, int64_t *before);

/* Answers 200 `{<key>: list, count, next_cursor}` for a page read by id,
 * newest first: next_cursor is the `last` id shown when `more` remain, else
 * null. Takes `list`. */
void tokens_answer_page(ad_response *res, const char *key, cJSON *list, int count, int more, int64_t last);

#define TOKENS_LIST_DEFAULT 50
#define TOKENS_LIST_MAX 500

#endif
