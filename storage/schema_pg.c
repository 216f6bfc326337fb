#include "storage/schema.h"

/* Written by the PostgreSQL backend's work (issue 13): see schema.h. */
const char *const storage_pg_migrations[11] = {0};
