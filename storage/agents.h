/*
 * The agents table: one row per user_id, its material, and its place in the
 * pipeline. Creation writes the agent, its material, its execution-log rows
 * (pending, with stable task ids) and its first job in one unit of work; the
 * log's stages and the job are the caller's (pipeline/plan.h).
 */
#ifndef AD_STORAGE_AGENTS_H
#define AD_STORAGE_AGENTS_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "storage/audit.h"
#include "storage/db.h"
#include "storage/executions.h"
#include "storage/jobs.h"
#include "storage/states.h"

#define AGENT_USER_ID_MAX 64

typedef struct agent_row {
    int64_t id;
    char user_id[AGENT_USER_ID_MAX + 1];
    agent_state status;
    char stage[32];
    int progress;
    char *error;              /* owned strings below: agent_row_cleanup frees them */
    char *base_model;
    char *description;
    char source[8];           /* "text" or "dataset" */
    int64_t deployed_version_id;
    char *statistics;         /* JSON */
    int64_t inference_count, inference_errors, prompt_tokens, output_tokens;
    int64_t created_at, updated_at;
    char language[8];           /* ISO 639-1 code its material is analysed in */
    char language_requested[8]; /* "auto" or a code as asked on create; "" before issue 10 */
    int64_t material_bytes;     /* the stored material's size in bytes */
    int has_quality;            /* the deployed version has a measured quality: */
    double quality;             /* its score, 0..1 */
} agent_row;

void agent_row_cleanup(agent_row *a);

typedef struct agent_new {
    const char *user_id;
    const char *source;       /* "text" or "dataset" */
    const char *material;     /* the text, or the dataset as a JSON array */
    size_t material_len;
    const char *base_model;   /* may be NULL */
    const char *description;  /* may be NULL */
    exec_plan log;            /* its execution log's rows */
    job_spec first_job;       /* queued with it; no job when `kind` is NULL */
    const char *language;     /* ISO 639-1 code (NULL: "en") */
    const char *language_requested; /* "auto" or the code asked for; may be NULL */
} agent_new;

/* Creates the agent with its material, its log and its first job, in one
 * unit of work. AD_EEXIST if the user_id is taken. */
int storage_agents_create(storage_conn *db, const agent_new *a, int64_t *agent_id, ad_err *e);

/* Reads one agent by user_id (AD_ENOTFOUND when there is none) or by id. */
int storage_agents_get(storage_conn *db, const char *user_id, agent_row *out, ad_err *e);
int storage_agents_get_by_id(storage_conn *db, int64_t id, agent_row *out, ad_err *e);

/* What GET .../status shows: the agent's place in the pipeline, when its
 * running pipeline job should end, and its latest training run unless that
 * one is done, read in one statement (the hot polling route). */
typedef struct agent_status {
    char user_id[AGENT_USER_ID_MAX + 1];
    agent_state status;
    char stage[32];
    int progress;
    char error[512];
    int64_t created_at, updated_at;
    int64_t eta_at;           /* wall ms the pipeline job should end; 0 when none runs */
    int64_t training_id;      /* 0 when there is no run, or the latest is done */
    training_state training_status;  /* meaningful when training_id is not 0 */
    int training_done, training_iterations;
    char training_error[512]; /* why a failed run failed; "" otherwise */
    int64_t training_started_at, training_finished_at;  /* wall ms; 0 when not yet */
} agent_status;

int storage_agents_status(storage_conn *db, const char *user_id, agent_status *out, ad_err *e);

/* The agent's material; `*out` is owned by the caller (free). */
int storage_agents_material(storage_conn *db, int64_t agent_id, char **out, size_t *len, ad_err *e);

/* Adds one inference call to the agent's running totals. */
int storage_agents_count_inference(storage_conn *db, int64_t agent_id, int ok, int prompt_tokens,
                                   int output_tokens, ad_err *e);

/* Calls `fn` for up to `limit` agents with user_id > `after` (NULL: from the
 * start), ordered by user_id, only those in `*status` unless `status` is
 * NULL, and only those named in `only` (a JSON array of user_ids: a token's
 * agents) unless it is NULL. `*more` says whether agents remain past the
 * page; `*total` counts all that match. */
typedef void (*agent_visit_fn)(void *ud, const agent_row *a);
int storage_agents_list(storage_conn *db, const agent_state *status, const char *only, const char *after,
                        int limit, agent_visit_fn fn, void *ud, int *more, int64_t *total, ad_err *e);

/* Deletes an agent and everything stored for it, with `audit`'s row (NULL:
 * none), in one unit of work. */
int storage_agents_delete(storage_conn *db, const char *user_id, const audit_entry *audit, int64_t *agent_id,
                          ad_err *e);

/* Deletes every agent, with `audit`'s row (NULL: none; its detail becomes
 * {"deleted": N}), in one unit of work; `*count` says how many. `fn` is
 * told each deleted id once the deletion is committed. */
int storage_agents_delete_all(storage_conn *db, const audit_entry *audit, int64_t *count,
                              void (*fn)(void *ud, int64_t id),
                              void *ud, ad_err *e);

#endif
