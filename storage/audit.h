/*
 * The audit log: who did what to which object, when, under which request.
 * Rows are only ever added; GET /api/v1/audit pages them newest first.
 */
#ifndef AD_STORAGE_AUDIT_H
#define AD_STORAGE_AUDIT_H

#include <stdint.h>

#include "base/err.h"
#include "storage/db.h"

/* One row to add. Every string is borrowed for the call. */
typedef struct audit_entry {
    const char *actor;       /* ad_principal_label ("token:7", "admin", "anonymous"), or "system" */
    const char *action;      /* "token.created", "auth.failed", "agent.deleted", ... */
    const char *target;      /* the object acted on ("token:7", "alice"); may be NULL */
    const char *detail_json; /* a JSON document; may be NULL */
    const char *request_id;  /* may be NULL */
} audit_entry;

/* Adds `a` as one unit of work. */
int storage_audit_add(storage_conn *db, const audit_entry *a, ad_err *e);

/* One stored row, borrowed: valid during the visit only. */
typedef struct audit_row {
    int64_t id, at;
    const char *actor, *action, *target, *detail, *request_id; /* target, detail, request_id may be NULL */
} audit_row;

typedef void (*audit_visit_fn)(void *ud, const audit_row *r);

/* Visits up to `limit` rows with id < `before` (0: from the newest), newest
 * first, only those of `action` when it is not NULL; *more says whether
 * older ones remain. */
int storage_audit_list(storage_conn *db, const char *action, int64_t before, int limit,
                       audit_visit_fn fn, void *ud, int *more, ad_err *e);

#endif
