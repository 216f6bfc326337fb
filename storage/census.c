#include "storage/census.h"

#include <string.h>

#include "storage/sqlite.h"
#include "storage/states.h"

int storage_census_agents(storage_conn *db, int64_t out[4], ad_err *e)
{
    memset(out, 0, 4 * sizeof(out[0]));
    sqlite3_stmt *st = storage_stmt(db, "SELECT status, count(*) FROM agents GROUP BY status");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        agent_state s;
        if (agent_state_from_string((const char *)sqlite3_column_text(st, 0), &s, NULL) == 0)
            out[s] = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : storage_fail(db, rc, "count agents", e);
}

int storage_census_jobs(storage_conn *db, int64_t out[5], ad_err *e)
{
    memset(out, 0, 5 * sizeof(out[0]));
    sqlite3_stmt *st = storage_stmt(db, "SELECT state, count(*) FROM jobs GROUP BY state");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        job_state s;
        if (job_state_from_string((const char *)sqlite3_column_text(st, 0), &s, NULL) == 0)
            out[s] = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : storage_fail(db, rc, "count jobs", e);
}
