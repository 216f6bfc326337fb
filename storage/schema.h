/* The forward-only migrations, in order; migration i brings user_version to i+1. */
#ifndef AD_STORAGE_SCHEMA_H
#define AD_STORAGE_SCHEMA_H

#include <stddef.h>

extern const char *const storage_migrations[];
extern const size_t storage_migration_count;

#endif
