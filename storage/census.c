#include "storage/census.h"

#include <string.h>

#include "storage/internal.h"
#include "storage/states.h"

/* Runs one "SELECT name, count(*) ... GROUP BY name" and files each count
 * under the index whose `name_of` matches; names it does not know (a newer
 * release's) are left out. */
static int census_count(storage_conn *db, const char *sql, const char *(*name_of)(int), int n, int64_t *out,
                        const char *what, ad_err *e)
{
    memset(out, 0, (size_t)n * sizeof(out[0]));
    sql_stmt *st = storage_stmt(db, sql);
    int rc;
    while ((rc = sql_step(st)) == SQL_ROW) {
        const char *name = sql_column_text(st, 0);
        for (int i = 0; name && i < n; i++)
            if (!strcmp(name, name_of(i))) out[i] = sql_column_int64(st, 1);
    }
    sql_reset(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, what, e);
}

static const char *census_agent_state(int i)
{
    return agent_state_to_string((agent_state)i);
}

static const char *census_job_state(int i)
{
    return job_state_to_string((job_state)i);
}

int storage_census_agents(storage_conn *db, int64_t out[4], ad_err *e)
{
    return census_count(db, "SELECT status, count(*) FROM agents GROUP BY status", census_agent_state, 4, out,
                        "count agents", e);
}

int storage_census_jobs(storage_conn *db, int64_t out[5], ad_err *e)
{
    return census_count(db, "SELECT state, count(*) FROM jobs GROUP BY state", census_job_state, 5, out,
                        "count jobs", e);
}
