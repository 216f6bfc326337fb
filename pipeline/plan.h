/*
 * What the pipeline asks storage to keep for it, in the pipeline's own words:
 * the names of its four stages and what each is expected to produce (the
 * execution log's rows), and the kinds of job its runner knows. Storage
 * stores these words as given and knows none of their meanings.
 */
#ifndef AD_PIPELINE_PLAN_H
#define AD_PIPELINE_PLAN_H

#include "storage/agents.h"

#define PIPELINE_STAGES 4

/* The stage names, in order: DataProcessor, ModelTrainer, ModelEvaluator, ModelDeployer. */
extern const char *const pipeline_stage_names[PIPELINE_STAGES];

/* What each stage is expected to produce, as the execution log shows it. */
extern const char *const pipeline_stage_outputs[PIPELINE_STAGES];

/* The job kinds: the whole pipeline from a stage (what a new agent queues),
 * a replay from a stage of the stored log, and an iterative training run. */
#define PIPELINE_JOB_PIPELINE "pipeline"
#define PIPELINE_JOB_REPLAY "replay"
#define PIPELINE_JOB_TRAIN "train"

/* Fills the pipeline's part of a new agent: its execution log's rows and the
 * job that runs its stages from the first. The strings are static. */
void pipeline_plan_agent(agent_new *a);

#endif
