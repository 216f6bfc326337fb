/* The forward-only migrations, in order; migration i brings user_version to i+1. */
#ifndef AD_STORAGE_SCHEMA_H
#define AD_STORAGE_SCHEMA_H

#include <stddef.h>

extern const char *const storage_migrations[];
extern const size_t storage_migration_count;

/* PostgreSQL's migrations (storage/schema_pg.c), numbered as SQLite's:
 * storage_pg_migrations has storage_migration_count entries and entry i
 * brings the schema to version i+1. PostgreSQL support starts at version
 * 11: entries 0..9 are NULL, and entry 10 creates the whole schema as of
 * version 11 (the same tables, columns, keys and indexes as SQLite's after
 * its eleventh migration). Later versions get an entry in both arrays. */
extern const char *const storage_pg_migrations[];

#endif
