/*
 * Deployments: each puts one model version of one agent live, or records why
 * it did not, with a UUID, a status (storage/states.h), who made it, the
 * version's metrics as they were, and a log of timestamped events. Every
 * switch of an agent's serving version (the pipeline's ModelDeployer, a
 * training run's finish, a client's push) is a deployment carried out by
 * storage_deployments_apply (storage/sqlite.h) inside the caller's unit of
 * work, so the switch, its record, its events and its audit rows commit
 * together or not at all. At most one deployment per agent is live, and its
 * version is agents.deployed_version_id (none live: NULL).
 */
#ifndef AD_STORAGE_DEPLOYMENTS_H
#define AD_STORAGE_DEPLOYMENTS_H

#include <stdint.h>

#include "base/err.h"
#include "base/uuid.h"
#include "storage/db.h"
#include "storage/states.h"
#include "storage/versions.h"

typedef struct deployment_row {
    int64_t id;
    char uuid[AD_UUID_LEN];
    int64_t agent_id;
    int64_t version_id;       /* 0 when the version is gone */
    char model[65];           /* the version's name */
    deployment_state status;
    char created_by[64];
    int64_t created_at, updated_at;
    int64_t live_at;          /* 0: never live */
    char *metrics;            /* JSON or NULL; owned: deployment_row_cleanup */
    int has_quality;
    double quality;
    char *reason;             /* NULL until pushed */
    int forced;
} deployment_row;

void deployment_row_cleanup(deployment_row *d);

/* A deployment to make, pending. */
typedef struct deployment_new {
    int64_t agent_id;
    int64_t version_id;       /* a version of the agent */
    const char *uuid;         /* ad_uuid_v4 */
    const char *created_by;   /* "system" or a principal label */
    const char *request_id;   /* NULL outside a request */
} deployment_new;

/* Makes a pending deployment with its "created" event and audit row, in one
 * unit of work; AD_ENOTFOUND when the agent or the version (of this agent)
 * is gone. */
int storage_deployments_create(storage_conn *db, const deployment_new *n, ad_err *e);

/* Pushes: carries out `v` (a gate decision, storage/versions.h) in one unit
 * of work. AD_ECONFLICT when the agent's deployed version changed since the
 * decision (decide again), AD_ESTATE when the deployment is not pending,
 * AD_ENOTFOUND when the agent is gone. */
int storage_deployments_push(storage_conn *db, const version_verdict *v, ad_err *e);

/* Removes the agent's deployment `uuid` in one unit of work and fills `out`
 * with it as it ends. A live one takes its version out of service: the
 * deployment live before it (the one it replaced, or that one's own
 * predecessor when it was removed since or its version is gone, and so on)
 * is live again (a rollback; events on both),
 * and with none the agent serves nothing (deployed_version_id NULL). One
 * already removed is answered as it is. `actor` and `request_id` are for the
 * audit log. AD_ENOTFOUND when there is no such deployment. */
int storage_deployments_remove(storage_conn *db, int64_t agent_id, const char *uuid, const char *actor,
                               const char *request_id, deployment_row *out, ad_err *e);

/* The agent's deployment `uuid`; AD_ENOTFOUND when it has none such. */
int storage_deployments_get(storage_conn *db, int64_t agent_id, const char *uuid, deployment_row *out,
                            ad_err *e);

/* Visits up to `limit` of the agent's deployments, newest first, starting
 * after the one named `after` (a uuid; NULL: from the newest). AD_EINVAL
 * when `after` is not one of the agent's. */
typedef void (*deployment_visit_fn)(void *ud, const deployment_row *d);
int storage_deployments_list(storage_conn *db, int64_t agent_id, const char *after, int limit,
                             deployment_visit_fn fn, void *ud, ad_err *e);

/* One entry of a deployment's log. */
typedef struct deployment_event {
    int seq;
    int64_t at;
    const char *event;        /* created, gate, live, superseded, rejected, removed,
                               * rolled_back_to, restored */
    const char *message;
    const char *detail;       /* JSON or NULL */
} deployment_event;

/* Visits deployment `deployment_id`'s events in order; the strings are
 * valid during the call only. */
typedef void (*deployment_event_fn)(void *ud, const deployment_event *ev);
int storage_deployments_events(storage_conn *db, int64_t deployment_id, deployment_event_fn fn, void *ud,
                               ad_err *e);

#endif
