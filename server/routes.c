/* The service's routing table: every route that exists is here and in openapi.yaml. */
#include "handlers/agents.h"
#include "handlers/deployments.h"
#include "handlers/audit.h"
#include "handlers/dashboard.h"
#include "handlers/evaluate.h"
#include "handlers/inference.h"
#include "handlers/metrics.h"
#include "handlers/models.h"
#include "handlers/replay.h"
#include "handlers/training.h"
#include "handlers/training_groups.h"
#include "handlers/system.h"
#include "handlers/tokens.h"
#include "server/router.h"

const ad_route ad_routes[] = {
    {AD_GET, "/health", handle_health, AD_BODY_DEFAULT, AD_SCOPE_NONE},
    {AD_GET, "/metrics", handle_metrics, AD_BODY_DEFAULT, AD_SCOPE_METRICS},
    {AD_GET, "/", handle_dashboard_index, AD_BODY_DEFAULT, AD_SCOPE_NONE},
    {AD_GET, "/assets/{name}", handle_dashboard_asset, AD_BODY_DEFAULT, AD_SCOPE_NONE},
    {AD_GET, "/api/v1/config", handle_config, AD_BODY_DEFAULT, AD_SCOPE_NONE},
    {AD_POST, "/api/v1/agents", handle_agents_create, AD_BODY_TRAINING, AD_SCOPE_AGENTS_WRITE},
    {AD_GET, "/api/v1/agents", handle_agents_list, AD_BODY_DEFAULT, AD_SCOPE_AGENTS_READ},
    {AD_POST, "/api/v1/agents/advanced", handle_agents_create_advanced, AD_BODY_TRAINING, AD_SCOPE_AGENTS_WRITE},
    {AD_DELETE, "/api/v1/agents/all", handle_agents_delete_all, AD_BODY_DEFAULT, AD_SCOPE_ADMIN},
    {AD_POST, "/api/v1/agents/start-training", handle_training_start_group, AD_BODY_DEFAULT, AD_SCOPE_TRAINING},
    {AD_GET, "/api/v1/training/status", handle_training_status, AD_BODY_DEFAULT, AD_SCOPE_AGENTS_READ},
    {AD_POST, "/api/v1/training/stop", handle_training_stop, AD_BODY_DEFAULT, AD_SCOPE_TRAINING},
    {AD_GET, "/api/v1/training/metrics", handle_training_metrics, AD_BODY_DEFAULT, AD_SCOPE_AGENTS_READ},
    {AD_GET, "/api/v1/agents/{id}", handle_agent_get, AD_BODY_DEFAULT, AD_SCOPE_AGENTS_READ},
    {AD_DELETE, "/api/v1/agents/{id}", handle_agent_delete, AD_BODY_DEFAULT, AD_SCOPE_AGENTS_WRITE},
    {AD_GET, "/api/v1/agents/{id}/status", handle_agent_status, AD_BODY_DEFAULT, AD_SCOPE_AGENTS_READ},
    {AD_GET, "/api/v1/agents/{id}/pipeline", handle_agent_pipeline, AD_BODY_DEFAULT, AD_SCOPE_AGENTS_READ},
    {AD_GET, "/api/v1/agents/{id}/executions", handle_agent_executions, AD_BODY_DEFAULT, AD_SCOPE_AGENTS_READ},
    {AD_POST, "/api/v1/agents/{id}/evaluate", handle_agent_evaluate, AD_BODY_DEFAULT, AD_SCOPE_TRAINING},
    {AD_POST, "/api/v1/agents/{id}/inference", handle_agent_inference, AD_BODY_DEFAULT, AD_SCOPE_INFERENCE},
    {AD_DELETE, "/api/v1/agents/{id}/executions", handle_agent_executions_reset, AD_BODY_DEFAULT, AD_SCOPE_TRAINING},
    {AD_POST, "/api/v1/agents/{id}/replay", handle_agent_replay, AD_BODY_DEFAULT, AD_SCOPE_TRAINING},
    {AD_POST, "/api/v1/agents/{id}/train", handle_agent_train, AD_BODY_DEFAULT, AD_SCOPE_TRAINING},
    {AD_GET, "/api/v1/agents/{id}/training", handle_agent_training, AD_BODY_DEFAULT, AD_SCOPE_AGENTS_READ},
    {AD_POST, "/api/v1/agents/{id}/feedback", handle_agent_feedback_add, AD_BODY_DEFAULT, AD_SCOPE_AGENTS_WRITE},
    {AD_GET, "/api/v1/agents/{id}/feedback", handle_agent_feedback_list, AD_BODY_DEFAULT, AD_SCOPE_AGENTS_READ},
    {AD_GET, "/api/v1/agents/{id}/models", handle_agent_models, AD_BODY_DEFAULT, AD_SCOPE_AGENTS_READ},
    {AD_POST, "/api/v1/agents/{id}/models/{name}/deploy", handle_agent_model_deploy, AD_BODY_DEFAULT, AD_SCOPE_DEPLOY},
    {AD_GET, "/api/v1/agents/{id}/models/{name}/export", handle_agent_model_export, AD_BODY_DEFAULT, AD_SCOPE_AGENTS_READ},
    {AD_POST, "/api/v1/agents/{id}/deployments", handle_deployments_create, AD_BODY_DEFAULT, AD_SCOPE_DEPLOY},
    {AD_GET, "/api/v1/agents/{id}/deployments", handle_deployments_list, AD_BODY_DEFAULT, AD_SCOPE_AGENTS_READ},
    {AD_GET, "/api/v1/agents/{id}/deployments/{uuid}", handle_deployment_get, AD_BODY_DEFAULT, AD_SCOPE_AGENTS_READ},
    {AD_DELETE, "/api/v1/agents/{id}/deployments/{uuid}", handle_deployment_delete, AD_BODY_DEFAULT, AD_SCOPE_DEPLOY},
    {AD_POST, "/api/v1/agents/{id}/deployments/{uuid}/push", handle_deployment_push, AD_BODY_DEFAULT, AD_SCOPE_DEPLOY},
    {AD_GET, "/api/v1/agents/{id}/deployments/{uuid}/logs", handle_deployment_logs, AD_BODY_DEFAULT, AD_SCOPE_AGENTS_READ},
    {AD_POST, "/api/v1/tokens", handle_tokens_create, AD_BODY_DEFAULT, AD_SCOPE_ADMIN},
    {AD_GET, "/api/v1/tokens", handle_tokens_list, AD_BODY_DEFAULT, AD_SCOPE_ADMIN},
    {AD_GET, "/api/v1/tokens/{id}", handle_token_get, AD_BODY_DEFAULT, AD_SCOPE_ADMIN},
    {AD_DELETE, "/api/v1/tokens/{id}", handle_token_revoke, AD_BODY_DEFAULT, AD_SCOPE_ADMIN},
    {AD_POST, "/api/v1/tokens/{id}/rotate", handle_token_rotate, AD_BODY_DEFAULT, AD_SCOPE_ADMIN},
    {AD_GET, "/api/v1/audit", handle_audit_list, AD_BODY_DEFAULT, AD_SCOPE_ADMIN},
};

const size_t ad_nroutes = sizeof(ad_routes) / sizeof(ad_routes[0]);

const ad_drain_answer ad_drain_answers[] = {
    {handle_health, handle_health_stopping},
};

const size_t ad_ndrain_answers = sizeof(ad_drain_answers) / sizeof(ad_drain_answers[0]);
