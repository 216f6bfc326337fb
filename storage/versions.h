/*
 * Model versions. A version is what serves inference: retrieval parameters,
 * a persona, few-shot examples, evaluation metrics, the text-analysis
 * language it was indexed with, and its own retrieval index (storage/index.h),
 * deleted with it.
 */
#ifndef AD_STORAGE_VERSIONS_H
#define AD_STORAGE_VERSIONS_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "storage/db.h"
#include "storage/states.h"

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

/* Creates a version in state "building", to be indexed with `language` (an
 * ISO 639-1 code). AD_EEXIST when the name is taken. */
int storage_versions_create(storage_conn *db, int64_t agent_id, const char *name, const char *language,
                            const char *params, const char *persona, const char *fewshot,
                            int64_t *version_id, ad_err *e);

/* The next default name, "v<N>". */
int storage_versions_next_name(storage_conn *db, int64_t agent_id, char *out, size_t cap, ad_err *e);

/* Sets state "trained" with the passage count. */
int storage_versions_set_built(storage_conn *db, int64_t version_id, int64_t passages, ad_err *e);
int storage_versions_set_metrics(storage_conn *db, int64_t version_id, const char *metrics,
                                 double quality, ad_err *e);
/* Makes `version_id` the deployed one (the previous deployed becomes retired)
 * and points the agent at it; caller's transaction. */
int storage_versions_deploy(storage_conn *db, int64_t agent_id, int64_t version_id, const char *note,
                            ad_err *e);
/* A client's rollback: makes `version_id` the agent's deployed version in a
 * transaction of its own that first checks the agent still exists, so a
 * delete that won the race gives AD_ENOTFOUND, not a half-made change. */
int storage_versions_redeploy(storage_conn *db, int64_t agent_id, int64_t version_id, const char *note,
                              ad_err *e);

int storage_versions_reject(storage_conn *db, int64_t version_id, const char *note, ad_err *e);

/* Training candidates: a version in state "candidate" is never served or
 * listed; the best one of a run is renamed and becomes "trained". */
int storage_versions_set_state(storage_conn *db, int64_t version_id, version_state state, ad_err *e);
int storage_versions_rename(storage_conn *db, int64_t version_id, const char *name, ad_err *e);
/* Deletes a version and its index. */
int storage_versions_delete(storage_conn *db, int64_t version_id, ad_err *e);
/* Deletes the agent's leftover candidates (a run interrupted by a crash). */
int storage_versions_delete_candidates(storage_conn *db, int64_t agent_id, ad_err *e);

int storage_versions_get(storage_conn *db, int64_t version_id, version_row *out, ad_err *e);
int storage_versions_get_by_name(storage_conn *db, int64_t agent_id, const char *name,
                                 version_row *out, ad_err *e);

/* Visits the agent's versions, oldest first (candidates excluded). */
typedef void (*version_visit_fn)(void *ud, const version_row *v);
int storage_versions_each(storage_conn *db, int64_t agent_id, version_visit_fn fn, void *ud, ad_err *e);

#endif
