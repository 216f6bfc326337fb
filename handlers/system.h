/* Service-level routes: GET /health and GET /api/v1/config. */
#ifndef AD_HANDLERS_SYSTEM_H
#define AD_HANDLERS_SYSTEM_H

#include "api/request.h"

/* Liveness and readiness: database, workers, queue depth; 503 when unhealthy. */
void handle_health(ad_request *req, ad_response *res);

/* The same shape while the server drains for shutdown: status "stopping", 503. */
void handle_health_stopping(ad_request *req, ad_response *res);

/* The effective configuration, secrets shown only as set/unset. */
void handle_config(ad_request *req, ad_response *res);

#endif
