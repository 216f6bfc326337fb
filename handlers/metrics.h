/* GET /metrics: the Prometheus text exposition of agentd's series
 * (docs/metrics.md lists every one). */
#ifndef AD_HANDLERS_METRICS_H
#define AD_HANDLERS_METRICS_H

#include "api/request.h"

/* The series, the gauges read now (agents, jobs), the process metrics;
 * 404 metrics_disabled when `metrics` is off. */
void handle_metrics(ad_request *req, ad_response *res);

#endif
