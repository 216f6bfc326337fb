/*
 * The routing table: method + path pattern ("/api/v1/agents/{id}/status")
 * mapped to a handler. A literal segment beats a parameter, so
 * DELETE /api/v1/agents/all is not taken for the agent "all".
 */
#ifndef AD_SERVER_ROUTER_H
#define AD_SERVER_ROUTER_H

#include <stddef.h>

#include "api/request.h"

typedef void (*ad_handler)(ad_request *req, ad_response *res);

/* Which body limit a route accepts. */
typedef enum ad_body_limit { AD_BODY_DEFAULT, AD_BODY_TRAINING } ad_body_limit;

typedef struct ad_route {
    ad_method method;
    const char *pattern;
    ad_handler handler;
    ad_body_limit body_limit;
    unsigned scope;          /* the ad_scope a caller needs (AD_SCOPE_NONE: any caller) */
} ad_route;

/* A route's answer while the server drains for shutdown, in its own shape;
 * a route without one gets 503 service_stopping. */
typedef struct ad_drain_answer {
    ad_handler handler;    /* the route's normal handler */
    ad_handler draining;
} ad_drain_answer;

typedef enum ad_route_result { AD_ROUTE_FOUND, AD_ROUTE_NO_PATH, AD_ROUTE_NO_METHOD } ad_route_result;

/*
 * Matches `method path` against `routes`. On AD_ROUTE_FOUND, `*out` is the
 * route and `params` holds the path parameters as NUL-terminated copies in
 * `scratch` (`scratch_len` bytes; a path that does not fit matches nothing).
 * `*allowed` is the OR of the methods the path accepts (for 405 and OPTIONS).
 * HEAD is served by a path's GET route, so it is allowed wherever GET is.
 * An unknown method (0) finds no route but still fills `*allowed`.
 */
ad_route_result ad_router_match(const ad_route *routes, size_t nroutes, ad_method method,
                                const char *path, const ad_route **out, const char **params,
                                size_t *nparams, char *scratch, size_t scratch_len,
                                unsigned *allowed);

/* Writes the Allow header value for a method mask ("GET, DELETE, OPTIONS"). */
void ad_router_allow_header(unsigned allowed, char *out, size_t out_len);

/* The service's routing table (server/routes.c). */
extern const ad_route ad_routes[];
extern const size_t ad_nroutes;
extern const ad_drain_answer ad_drain_answers[];
extern const size_t ad_ndrain_answers;

#endif
