/*
 * Model versions: list them, deploy one (rollback or forward), and export one
 * as a portable JSON document (passages, params, persona, metrics).
 */
#ifndef AD_HANDLERS_MODELS_H
#define AD_HANDLERS_MODELS_H

#include "api/request.h"

void handle_agent_models(ad_request *req, ad_response *res);
void handle_agent_model_deploy(ad_request *req, ad_response *res);
void handle_agent_model_export(ad_request *req, ad_response *res);

#endif
