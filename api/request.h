/*
 * The boundary between the HTTP layer and the handlers: a request struct in,
 * a response struct out. No libmicrohttpd type appears here, so handlers can
 * be unit-tested and fuzzed without a socket.
 *
 * Ownership: the server owns the request and everything it points to for the
 * duration of the handler call (and, for async handlers, until the response is
 * delivered). The handler fills the response; the server frees it.
 */
#ifndef AD_API_REQUEST_H
#define AD_API_REQUEST_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

typedef enum ad_method {
    AD_GET = 1,
    AD_POST = 2,
    AD_PUT = 4,
    AD_DELETE = 8,
    AD_PATCH = 16,
    AD_OPTIONS = 32,
    AD_HEAD = 64
} ad_method;

#define AD_MAX_PARAMS 4
#define AD_MAX_QUERY 16
#define AD_MAX_HEADERS 8

typedef struct ad_kv {
    const char *key;
    const char *value;
} ad_kv;

struct ad_app;
struct ad_async;

/* What a caller may do (issue 11): a token carries a set of these; a route
 * names the one it needs (server/routes.c). */
typedef enum ad_scope {
    AD_SCOPE_NONE = 0,             /* any authenticated caller */
    AD_SCOPE_AGENTS_READ = 1 << 0, /* agents:read */
    AD_SCOPE_AGENTS_WRITE = 1 << 1,/* agents:write: create, delete, feedback */
    AD_SCOPE_INFERENCE = 1 << 2,   /* inference */
    AD_SCOPE_TRAINING = 1 << 3,    /* training: train, replay, start-training */
    AD_SCOPE_DEPLOY = 1 << 4,      /* deploy: deployments, models deploy */
    AD_SCOPE_ADMIN = 1 << 5,       /* admin: tokens, delete-all, audit */
    AD_SCOPE_METRICS = 1 << 6      /* metrics: GET /metrics (issue 12) */
} ad_scope;

#define AD_SCOPE_LAST AD_SCOPE_METRICS
#define AD_SCOPE_ALL 0x7fu

/* Who is calling. With auth off (no AGENTD_API_KEY) every request is
 * AD_CALLER_OPEN and may do everything; the bootstrap key is AD_CALLER_ADMIN
 * (every scope, every agent); an API token is AD_CALLER_TOKEN with its own
 * scopes and agents. */
typedef enum ad_caller_kind { AD_CALLER_OPEN, AD_CALLER_ADMIN, AD_CALLER_TOKEN } ad_caller_kind;

typedef struct ad_principal {
    ad_caller_kind kind;
    int64_t token_id;              /* AD_CALLER_TOKEN only; else 0 */
    unsigned scopes;               /* OR of ad_scope */
    int all_agents;                /* 1: every agent ("*") */
    char **agents;                 /* the user_ids it may see when !all_agents; owned by
                                    * the request (ad_principal_cleanup) */
    size_t nagents;
    int rate_limit_per_min;        /* the token's own limits; 0 = the configured default */
    int max_concurrent_inferences;
} ad_principal;

/* Frees the agents list and zeroes `p`. */
void ad_principal_cleanup(ad_principal *p);
/* The JSON name of one scope bit ("agents:read"), or NULL. */
const char *ad_scope_name(unsigned scope);
/* The scope bit named `name`, or 0 when it is no scope. */
unsigned ad_scope_from_name(const char *name);

/* 1 when `p` holds `scope` (AD_SCOPE_NONE: always). */
int ad_principal_has(const ad_principal *p, unsigned scope);
/* 1 when `p` may see the agent `user_id`. */
int ad_principal_sees(const ad_principal *p, const char *user_id);
/* The name the audit and access logs give the caller: "token:<id>",
 * "admin", or "anonymous" (auth off). */
const char *ad_principal_label(const ad_principal *p, char *buf, size_t cap);

typedef struct ad_request {
    ad_method method;
    const char *path;
    const char *params[AD_MAX_PARAMS]; /* path parameters, in pattern order */
    size_t nparams;
    ad_kv query[AD_MAX_QUERY];
    size_t nquery;
    const char *accept;                /* Accept header, "" when absent */
    const char *if_none_match;         /* If-None-Match header, "" when absent */
    const char *body;
    size_t body_len;
    cJSON *json;                       /* parsed JSON body, NULL when there was none */
    const char *request_id;
    const ad_principal *who;           /* never NULL inside a handler */
    const struct ad_app *app;
    struct ad_async *async;            /* set by the server; see api/async.h */
} ad_request;

/* Extra response headers own their value strings. */
typedef struct ad_header {
    const char *name;                  /* a string literal */
    char *value;
} ad_header;

struct ad_stream;

typedef struct ad_response {
    int status;
    ad_buf body;
    const char *content_type;          /* a string literal; NULL means application/json */
    ad_header headers[AD_MAX_HEADERS];
    size_t nheaders;
    int deferred;                      /* the handler will answer through ad_async_complete */
    struct ad_stream *stream;          /* an event stream instead of `body`: owns one
                                        * reference (ad_stream_ref, api/stream.h) */
} ad_response;

/* The value of query parameter `key`, or NULL. */
const char *ad_request_query(const ad_request *req, const char *key);

void ad_response_init(ad_response *res);
/* Frees what the response owns (body, header values, a stream reference). */
void ad_response_cleanup(ad_response *res);

/* Serializes `json` as the body and frees it (ownership passes in). */
void ad_response_json(ad_response *res, int status, cJSON *json);

/* Sets the error body {"error", "code", "request_id"}; replaces any earlier body. */
void ad_response_error(ad_response *res, const ad_request *req, int status, const char *code,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Adds a header; a second call with the same name replaces the value. */
void ad_response_header(ad_response *res, const char *name, const char *value);

/* Maps a method to its name ("GET") and back; 0 for an unknown name. */
const char *ad_method_name(ad_method m);
ad_method ad_method_from_string(const char *s);

#endif
