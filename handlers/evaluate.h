/* POST /api/v1/agents/{id}/evaluate: scores the deployed model's local answer
 * to a test prompt against an expected answer. */
#ifndef AD_HANDLERS_EVALUATE_H
#define AD_HANDLERS_EVALUATE_H

#include "api/request.h"

void handle_agent_evaluate(ad_request *req, ad_response *res);

#endif
