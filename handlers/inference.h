/*
 * POST /api/v1/agents/{id}/inference: retrieval over the deployed version,
 * then generation by Gemini (deferred: no server thread waits on the
 * network) or, with no key configured, by the local answerer. Streams
 * Server-Sent Events when asked to.
 */
#ifndef AD_HANDLERS_INFERENCE_H
#define AD_HANDLERS_INFERENCE_H

#include "api/request.h"

void handle_agent_inference(ad_request *req, ad_response *res);

#endif
