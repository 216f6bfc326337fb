#include "handlers/metrics.h"

#include "api/app.h"
#include "base/procstat.h"
#include "base/prom.h"
#include "base/series.h"
#include "config/config.h"
#include "handlers/agents.h"
#include "storage/census.h"
#include "storage/db.h"
#include "storage/states.h"

/* The agents and jobs gauges, read in one snapshot so the two agree. */
static int metrics_census(ad_request *req, ad_response *res, ad_buf *b)
{
    /* No connection is 503 database_unavailable, as on every other route
     * (not storage_unavailable, which tells of a full disk). */
    storage_conn *db = agents_db(req, res);
    if (!db) return AD_EIO;
    ad_err e = {0};
    int64_t agents[4], jobs[5];
    int rc = storage_snapshot_begin(db, &e);
    if (rc == 0) rc = storage_census_agents(db, agents, &e);
    if (rc == 0) rc = storage_census_jobs(db, jobs, &e);
    storage_snapshot_end(db);
    if (rc < 0) {
        agents_answer_storage(req, res, rc, NULL, &e);
        return rc;
    }
    const char *names[5];
    double values[5];
    for (int s = 0; s < 4; s++) {
        names[s] = agent_state_to_string((agent_state)s);
        values[s] = (double)agents[s];
    }
    prom_write_simple(b, PROM_GAUGE, "agentd_agents", "Agents by status, read at scrape time.", "status",
                      names, values, 4);
    for (int s = 0; s < 5; s++) {
        names[s] = job_state_to_string((job_state)s);
        values[s] = (double)jobs[s];
    }
    prom_write_simple(b, PROM_GAUGE, "agentd_jobs", "Pipeline jobs by state, read at scrape time.", "state",
                      names, values, 5);
    return 0;
}

void handle_metrics(ad_request *req, ad_response *res)
{
    if (!req->app->cfg->metrics) {
        ad_response_error(res, req, 404, "metrics_disabled", "metrics are turned off (metrics: false)");
        return;
    }
    ad_buf b;
    ad_buf_init(&b);
    series_write_all(&b);
    if (metrics_census(req, res, &b) < 0) {
        ad_buf_cleanup(&b);
        return;
    }
    procstat_write(&b);
    const char *version = AGENTD_VERSION;
    double one = 1;
    prom_write_simple(&b, PROM_GAUGE, "agentd_build_info", "agentd's version; the value is always 1.",
                      "version", &version, &one, 1);
    res->status = 200;
    res->content_type = "text/plain; version=0.0.4; charset=utf-8";
    ad_buf_cleanup(&res->body);
    res->body = b;
}
