/*
 * The deployments resource (storage/deployments.h): create (and push),
 * push a pending one, list, read, read its log, remove (a rollback when it
 * is the live one). Pushes go through the one gate, pipeline_deploy.
 */
#ifndef AD_HANDLERS_DEPLOYMENTS_H
#define AD_HANDLERS_DEPLOYMENTS_H

#include "api/request.h"

void handle_deployments_create(ad_request *req, ad_response *res);
void handle_deployments_list(ad_request *req, ad_response *res);
void handle_deployment_get(ad_request *req, ad_response *res);
void handle_deployment_push(ad_request *req, ad_response *res);
void handle_deployment_logs(ad_request *req, ad_response *res);
void handle_deployment_delete(ad_request *req, ad_response *res);

#endif
