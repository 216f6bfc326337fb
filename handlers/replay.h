/*
 * Replay (seed 004): re-run the pipeline from a stage, reusing the stored
 * outputs of the stages before it, and reset an agent's execution log.
 */
#ifndef AD_HANDLERS_REPLAY_H
#define AD_HANDLERS_REPLAY_H

#include "api/request.h"

void handle_agent_replay(ad_request *req, ad_response *res);
void handle_agent_executions_reset(ad_request *req, ad_response *res);

#endif
