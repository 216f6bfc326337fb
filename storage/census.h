/*
 * Counts of agents by status and of jobs by state, for the gauges /metrics
 * shows (agentd_agents, agentd_jobs). Each is one indexed GROUP BY; read
 * both inside one storage_snapshot_begin/end to see one moment.
 */
#ifndef AD_STORAGE_CENSUS_H
#define AD_STORAGE_CENSUS_H

#include <stdint.h>

#include "base/err.h"
#include "storage/db.h"

/* Agents per agent_state (storage/states.h), indexed by the enum. */
int storage_census_agents(storage_conn *db, int64_t out[4], ad_err *e);

/* Jobs per job_state, indexed by the enum. */
int storage_census_jobs(storage_conn *db, int64_t out[5], ad_err *e);

#endif
