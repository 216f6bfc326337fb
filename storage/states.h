/*
 * The states of agentd's records as C enums: an agent's place in its life,
 * a job's, a model version's, a pipeline stage's and a training run's. The
 * database stores each as its lowercase word (the words the API shows), so
 * the enums change no schema; these functions are the one place that maps
 * between the two, and storage/ is the only caller of the from_string side
 * for stored words.
 */
#ifndef AD_STORAGE_STATES_H
#define AD_STORAGE_STATES_H

#include "base/err.h"

/* An agent: created, running its pipeline, serving, or stopped by a failed stage. */
typedef enum agent_state { AGENT_INITIALIZING, AGENT_PROCESSING, AGENT_READY, AGENT_ERROR } agent_state;

/* A queued job: waiting, claimed by a worker, or ended. */
typedef enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_FAILED, JOB_CANCELLED } job_state;

/* A model version: being built, a training run's unpublished candidate,
 * built, serving, replaced by a later deployment, or refused. */
typedef enum version_state {
    VERSION_BUILDING,
    VERSION_CANDIDATE,
    VERSION_TRAINED,
    VERSION_DEPLOYED,
    VERSION_RETIRED,
    VERSION_REJECTED
} version_state;

/* A pipeline stage's row in the execution log. */
typedef enum exec_status { EXEC_PENDING, EXEC_RUNNING, EXEC_COMPLETED, EXEC_FAILED } exec_status;

/* A training run. */
typedef enum training_state {
    TRAINING_QUEUED,
    TRAINING_RUNNING,
    TRAINING_DONE,
    TRAINING_FAILED,
    TRAINING_CANCELLED
} training_state;

/* A deployment (storage/deployments.h): made and not pushed yet, serving,
 * replaced by a later one, refused by the gate, failed, or removed. */
typedef enum deployment_state {
    DEPLOYMENT_PENDING,
    DEPLOYMENT_LIVE,
    DEPLOYMENT_SUPERSEDED,
    DEPLOYMENT_REJECTED,
    DEPLOYMENT_FAILED,
    DEPLOYMENT_REMOVED
} deployment_state;

/* The stored and shown word for a state ("initializing", "queued", ...): a
 * string literal. A value outside the enum is a bug and fails an assertion. */
const char *agent_state_to_string(agent_state s);
const char *job_state_to_string(job_state s);
const char *version_state_to_string(version_state s);
const char *exec_status_to_string(exec_status s);
const char *training_state_to_string(training_state s);
const char *deployment_state_to_string(deployment_state s);

/* Parses a word back: 0 and `*out`, or AD_EINVAL (naming the word in `e`)
 * for any other string, NULL included; the match is exact and case-sensitive. */
int agent_state_from_string(const char *s, agent_state *out, ad_err *e);
int job_state_from_string(const char *s, job_state *out, ad_err *e);
int version_state_from_string(const char *s, version_state *out, ad_err *e);
int exec_status_from_string(const char *s, exec_status *out, ad_err *e);
int training_state_from_string(const char *s, training_state *out, ad_err *e);
int deployment_state_from_string(const char *s, deployment_state *out, ad_err *e);

#endif
