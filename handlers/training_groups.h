/*
 * The Flask original's group training routes, over agentd's training runs:
 * POST /api/v1/agents/start-training starts one run per listed agent as one
 * group; GET /api/v1/training/status reads the latest group; POST
 * /api/v1/training/stop cancels every group run still going; GET
 * /api/v1/training/metrics shows every agent's serving quality and its runs.
 */
#ifndef AD_HANDLERS_TRAINING_GROUPS_H
#define AD_HANDLERS_TRAINING_GROUPS_H

#include "api/request.h"

/* Quality score at and above which an agent counts as a high performer
 * (the evaluator's HIGH label). */
#define TRAINING_HIGH_QUALITY 0.8

/* POST /api/v1/agents/start-training: 202 with the group, or 400/404/409 and nothing started. */
void handle_training_start_group(ad_request *req, ad_response *res);
/* GET /api/v1/training/status: the latest group's progress and outcome. */
void handle_training_status(ad_request *req, ad_response *res);
/* POST /api/v1/training/stop: cancels every group's runs still going. */
void handle_training_stop(ad_request *req, ad_response *res);
/* GET /api/v1/training/metrics: totals over all agents and one page of them. */
void handle_training_metrics(ad_request *req, ad_response *res);

#endif
