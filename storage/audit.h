/*
 * TEMPORARY (deploy branch): the audit log's signature from the issue-11
 * contract, so the deployment code can write its rows. The auth branch owns
 * the real storage/audit.{h,c} (table, route); this pair is replaced by
 * theirs when i11-auth is merged.
 */
#ifndef AD_STORAGE_AUDIT_H
#define AD_STORAGE_AUDIT_H

#include "base/err.h"
#include "storage/db.h"

/* One audit row. */
typedef struct audit_entry {
    const char *actor;       /* ad_principal_label, or "system" */
    const char *action;      /* e.g. "deployment.live" */
    const char *target;
    const char *detail_json; /* may be NULL */
    const char *request_id;
} audit_entry;

/* Appends `a` inside the caller's unit of work. */
int storage_audit_add(storage_conn *db, const audit_entry *a, ad_err *e);

#endif
