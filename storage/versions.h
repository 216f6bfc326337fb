/*
 * Model versions. A version is what serves inference: retrieval parameters,
 * a persona, few-shot examples, evaluation metrics, the text-analysis
 * language it was indexed with, and its own retrieval index (storage/index.h),
 * deleted with it.
 */
#ifndef AD_STORAGE_VERSIONS_H
#define AD_STORAGE_VERSIONS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "storage/db.h"
#include "storage/executions.h"
#include "storage/index.h"
#include "storage/states.h"
#include "storage/units.h"

typedef struct version_row {
    int64_t id;
    int64_t agent_id;
    char name[65];
    char language[8];      /* ISO 639-1 code its index was analysed with */
    version_state state;
    char *params;          /* JSON; owned strings: version_row_cleanup */
    char *persona;
    char *fewshot;         /* JSON array of {prompt, answer} */
    char *metrics;         /* JSON or NULL */
    char *note;
    double quality;
    int64_t passages;
    int64_t created_at, deployed_at;
} version_row;

void version_row_cleanup(version_row *v);

/* A version to build: its passages are borrowed units (storage/units.h;
 * `probe` is not stored with a version) and its index the rows its builder
 * made of them (storage/index.h). */
typedef struct version_build {
    int64_t agent_id;
    const char *name;
    const char *language;       /* ISO 639-1 code the index was analysed with */
    const char *params;         /* JSON */
    const char *persona;
    const char *fewshot;        /* JSON array of {prompt, answer} */
    const unit_row *passages;
    size_t count;
    const index_rows *index;
    version_state state;        /* VERSION_TRAINED, or VERSION_CANDIDATE for a training try */
    int64_t job_id;             /* the job building it, held first (0: none) */
    atomic_int *stop;           /* non-zero: give up with AD_ECANCELLED */
} version_build;

/* Builds a version with its passages and index in one unit of work, with
 * `step` (storage/executions.h) when the ModelTrainer builds it (NULL for a
 * training try): the whole version, or nothing. AD_EEXIST when the name is
 * taken, AD_ECANCELLED when the job no longer runs or `stop` was set. */
int storage_versions_build(storage_conn *db, const version_build *b, const exec_step *step,
                           int64_t *version_id, ad_err *e);

/* The next default name, "v<N>". */
int storage_versions_next_name(storage_conn *db, int64_t agent_id, char *out, size_t cap, ad_err *e);

/* The ModelEvaluator's unit of work: the version's metrics and quality, and
 * `step`, all or nothing. */
int storage_versions_record_evaluation(storage_conn *db, int64_t version_id, const char *metrics,
                                       double quality, const exec_step *step, ad_err *e);

/* What becomes of a version pushed to serve, decided by the caller (the one
 * gate, pipeline_deploy_verdict) against the agent's deployed version at the
 * time, `expected_deployed` (0: none), and the deployment that records it
 * (storage/deployments.h). */
typedef struct version_verdict {
    int64_t agent_id;
    int64_t version_id;
    int deploy;                 /* 1: it serves (the one serving is superseded); 0: rejected */
    const char *note;           /* why, shown with the version and the deployment */
    int64_t expected_deployed;
    int64_t deployment_id;      /* the pending deployment pushed; 0: a new one, made here */
    const char *uuid;           /* the new deployment's id (ad_uuid_v4) when deployment_id is 0 */
    const char *created_by;     /* the new deployment's maker: "system" or a principal label */
    const char *actor;          /* who pushes, for the audit log */
    const char *request_id;     /* NULL outside a request */
    int forced;                 /* the gate was skipped */
    const char *gate;           /* JSON: what the gate compared, logged with its decision */
} version_verdict;

/* The ModelDeployer's unit of work: deploys or rejects the version as
 * `verdict` says, with its deployment's record, and records `step`, all or
 * nothing. AD_ECONFLICT, with nothing written, when the agent's deployed
 * version is no longer `expected_deployed` (another deployment won): decide
 * again. */
int storage_versions_settle(storage_conn *db, const version_verdict *verdict, const exec_step *step,
                            ad_err *e);

/* Deletes a version and its index, in one unit of work (a training try
 * that lost) that first holds the job `job_id` (storage_jobs_hold): a
 * worker whose job is no longer its own gets AD_ECANCELLED and deletes
 * nothing. `job_id` 0 holds nothing: the cleanup of a run's own candidate
 * once its job is known not to be the worker's any more. */
int storage_versions_drop(storage_conn *db, int64_t version_id, int64_t job_id, ad_err *e);

int storage_versions_get(storage_conn *db, int64_t version_id, version_row *out, ad_err *e);
int storage_versions_get_by_name(storage_conn *db, int64_t agent_id, const char *name,
                                 version_row *out, ad_err *e);

/* Visits the agent's versions, oldest first (candidates excluded). */
typedef void (*version_visit_fn)(void *ud, const version_row *v);
int storage_versions_each(storage_conn *db, int64_t agent_id, version_visit_fn fn, void *ud, ad_err *e);

#endif
