#include "pipeline/plan.h"

const char *const pipeline_stage_names[PIPELINE_STAGES] = {"DataProcessor", "ModelTrainer",
                                                           "ModelEvaluator", "ModelDeployer"};

const char *const pipeline_stage_outputs[PIPELINE_STAGES] = {
    "normalized passages, derived question/answer pairs and dataset statistics",
    "a model version: passage index, persona, few-shot examples and retrieval parameters",
    "retrieval hit@1/hit@3/MRR, answer similarity and a quality label on held-out queries",
    "the version serving inference, or the reason it was not deployed",
};

void pipeline_plan_agent(agent_new *a)
{
    a->log.names = pipeline_stage_names;
    a->log.outputs = pipeline_stage_outputs;
    a->log.count = PIPELINE_STAGES;
    a->first_job = (job_spec){.kind = PIPELINE_JOB_PIPELINE, .start_stage = 0, .params = NULL};
}
