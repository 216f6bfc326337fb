/*
 * Start-up work for databases from before the per-version index (schema 6):
 * their versions' passages were moved over by the migration, and their terms
 * and statistics are built here, in C, before the server listens.
 */
#ifndef AD_PIPELINE_REINDEX_H
#define AD_PIPELINE_REINDEX_H

#include <stdint.h>

#include "base/err.h"
#include "storage/db.h"

/* Builds the index of every version that has none, each in a unit of work of
 * its own (a crash leaves the rest for the next start), and logs how many
 * and how long it took. `*count` (may be NULL) says how many were built. */
int pipeline_reindex_versions(storage_conn *db, int64_t *count, ad_err *e);

#endif
