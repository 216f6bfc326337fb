/* The service's routing table: every route that exists is here and in openapi.yaml. */
#include "handlers/agents.h"
#include "handlers/evaluate.h"
#include "handlers/inference.h"
#include "handlers/system.h"
#include "server/router.h"

const ad_route ad_routes[] = {
    {AD_GET, "/health", handle_health, AD_BODY_DEFAULT},
    {AD_GET, "/api/v1/config", handle_config, AD_BODY_DEFAULT},
    {AD_POST, "/api/v1/agents", handle_agents_create, AD_BODY_TRAINING},
    {AD_GET, "/api/v1/agents", handle_agents_list, AD_BODY_DEFAULT},
    {AD_POST, "/api/v1/agents/advanced", handle_agents_create_advanced, AD_BODY_TRAINING},
    {AD_DELETE, "/api/v1/agents/all", handle_agents_delete_all, AD_BODY_DEFAULT},
    {AD_GET, "/api/v1/agents/{id}", handle_agent_get, AD_BODY_DEFAULT},
    {AD_DELETE, "/api/v1/agents/{id}", handle_agent_delete, AD_BODY_DEFAULT},
    {AD_GET, "/api/v1/agents/{id}/status", handle_agent_status, AD_BODY_DEFAULT},
    {AD_GET, "/api/v1/agents/{id}/pipeline", handle_agent_pipeline, AD_BODY_DEFAULT},
    {AD_GET, "/api/v1/agents/{id}/executions", handle_agent_executions, AD_BODY_DEFAULT},
    {AD_POST, "/api/v1/agents/{id}/evaluate", handle_agent_evaluate, AD_BODY_DEFAULT},
    {AD_POST, "/api/v1/agents/{id}/inference", handle_agent_inference, AD_BODY_DEFAULT},
};

const size_t ad_nroutes = sizeof(ad_routes) / sizeof(ad_routes[0]);
