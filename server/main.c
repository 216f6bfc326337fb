/* agentd: start-up, the signal wait, and an orderly shutdown. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/app.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/series.h"
#include "config/config.h"
#include "llm/client.h"
#include "pipeline/eta.h"
#include "pipeline/pool.h"
#include "pipeline/reindex.h"
#include "server/hangup.h"
#include "server/healthcheck.h"
#include "server/http.h"
#include "server/limits.h"
#include "server/sse.h"
#include "storage/db.h"
#include "storage/inferences.h"
#include "storage/maintenance.h"

extern char **environ;

static int main_print(const ad_buf *b, FILE *to, int code)
{
    fwrite(b->data ? b->data : "", 1, b->len, to);
    return code;
}

static llm_config main_llm_config(const ad_config *cfg)
{
    llm_config lc = {
        .api_key = cfg->gemini_api_key,
        .model = cfg->gemini_model,
        .base_url = cfg->gemini_base_url,
        .deadline_ms = cfg->gemini_deadline_ms,
        .max_attempts = cfg->gemini_max_attempts,
        .backoff_base_ms = cfg->gemini_backoff_base_ms,
        .max_transfers = cfg->gemini_max_concurrency,
    };
    return lc;
}

/* --check-config with a Gemini key: looks the model up and says on stderr
 * what it found. Returns the exit code: 1 when the model is missing,
 * retired or cannot generate content, else 0 (a lookup that could not
 * complete is reported, not fatal: the network may come later). */
static int main_check_model(const ad_config *cfg)
{
    if (!cfg->gemini_api_key || cfg->gemini_check_timeout_ms == 0) return 0;
    llm_config lc = main_llm_config(cfg);
    llm_model_check mc;
    llm_model_lookup(&lc, cfg->gemini_check_timeout_ms, &mc);
    fprintf(stderr, "agentd: gemini model %s: %s: %s\n", mc.model, llm_model_state_name(mc.state),
            mc.message);
    return mc.state == LLM_MODEL_MISSING || mc.state == LLM_MODEL_UNUSABLE ? 1 : 0;
}

/* Runs the actions that exit without serving; returns -1 to go on serving. */
static int main_action(ad_config_action action, const ad_config *cfg)
{
    ad_buf b;
    ad_buf_init(&b);
    int code = -1;
    switch (action) {
    case AD_CONFIG_HELP: config_usage(&b); code = main_print(&b, stdout, 0); break;
    case AD_CONFIG_VERSION: ad_buf_puts(&b, "agentd " AGENTD_VERSION "\n"); code = main_print(&b, stdout, 0); break;
    case AD_CONFIG_CHECK:
        config_to_json(cfg, &b);
        ad_buf_putc(&b, '\n');
        code = main_print(&b, stdout, main_check_model(cfg));
        break;
    case AD_CONFIG_HEALTHCHECK:
        code = healthcheck_probe(cfg->bind, cfg->port, 3000, &b) == 0 ? 0 : 1;
        main_print(&b, stdout, code);
        break;
    case AD_CONFIG_RUN: break;
    }
    ad_buf_cleanup(&b);
    return code;
}

static void main_log_listening(const ad_config *cfg, uint16_t port)
{
    ad_buf f;
    ad_buf_init(&f);
    ad_buf_printf(&f, "\"msg\":\"listening\",\"bind\":");
    ad_buf_json_string(&f, cfg->bind, strlen(cfg->bind));
    ad_buf_printf(&f, ",\"port\":%u,\"version\":\"%s\",\"backend\":\"%s\",\"workers\":%d", port,
                  AGENTD_VERSION, cfg->gemini_api_key ? "gemini" : "local", cfg->workers);
    ad_log_fields(AD_LOG_INFO, &f);
    ad_buf_cleanup(&f);
}

/* Opens the database the configuration names: PostgreSQL at database_url,
 * else SQLite in data_dir; logs which (never the URL's password). */
static int main_open_storage(const ad_config *cfg, ad_err *e)
{
    ad_buf f;
    ad_buf_init(&f);
    int rc;
    if (cfg->database_url) {
        storage_url_target t;
        storage_url_parse(cfg->database_url, &t);
        rc = storage_open_url(cfg->database_url, e);
        ad_buf_puts(&f, "\"msg\":\"database opened\",\"backend\":\"postgresql\",\"host\":");
        ad_buf_json_string(&f, t.host, strlen(t.host));
        ad_buf_puts(&f, ",\"port\":");
        ad_buf_json_string(&f, t.port, strlen(t.port));
        ad_buf_puts(&f, ",\"db\":");
        ad_buf_json_string(&f, t.db, strlen(t.db));
    } else {
        rc = storage_open(cfg->data_dir, e);
        ad_buf_puts(&f, "\"msg\":\"database opened\",\"backend\":\"sqlite\",\"data_dir\":");
        ad_buf_json_string(&f, cfg->data_dir, strlen(cfg->data_dir));
    }
    if (rc == 0) ad_log_fields(AD_LOG_INFO, &f);
    ad_buf_cleanup(&f);
    return rc;
}

int main(int argc, char **argv)
{
    /* Signals go to the main thread's sigwait only: block them first, before
     * any thread starts (every thread inherits the mask), so a stop that
     * arrives during start-up is held and ends in an orderly shutdown. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

    ad_config cfg;
    ad_config_action action;
    ad_err e = {0};
    config_init(&cfg);
    if (config_load(&cfg, argc, argv, environ, &action, &e) < 0) {
        fprintf(stderr, "agentd: %s\n", e.msg);
        config_cleanup(&cfg);
        return 2;
    }
    int code = main_action(action, &cfg);
    if (code >= 0) {
        config_cleanup(&cfg);
        return code;
    }
    ad_log_level level = AD_LOG_INFO;
    ad_log_level_from_string(cfg.log_level, &level);
    ad_log_set_level(level);


    /* Before any thread that counts starts: the flag is read without a lock. */
    series_start(cfg.metrics);
    ad_log_start_async();
    ad_app app = {.cfg = &cfg, .started_ms = ad_clock_now_ms(), .started_mono_ms = ad_clock_mono_ms()};
    ad_http *http = NULL;
    limits *lim = NULL;
    code = 1;
    if (main_open_storage(&cfg, &e) < 0) {
        ad_log(AD_LOG_ERROR, "%s", e.msg);
        goto out;
    }
    /* Versions from before the per-version index get theirs before anything
     * can search them: before the workers start and the server listens. */
    storage_conn *db = storage_conn_get();
    if (!db || pipeline_reindex_versions(db, NULL, &e) < 0) goto out;
    /* Status's eta_s starts from this machine's recent stage timings. */
    if (eta_seed(db, &e) < 0) ad_log(AD_LOG_WARN, "stage timings not read (eta_s uses defaults): %s", e.msg);
    if (cfg.gemini_api_key) {
        llm_config lc = main_llm_config(&cfg);
        if (llm_client_start(&app.llm, &lc, &e) < 0) {
            ad_log(AD_LOG_ERROR, "%s", e.msg);
            goto out;
        }
        /* In the background: serving starts now, /health tells the outcome. */
        if (cfg.gemini_check_timeout_ms > 0) llm_client_check_model(app.llm, cfg.gemini_check_timeout_ms);
    }
    storage_inferences_start();
    storage_retention retention = {
        .max_age_ms = (int64_t)cfg.log_retention_s * 1000,
        .max_rows_per_agent = cfg.log_max_rows_per_agent,
    };
    storage_maintenance_start(&retention, cfg.maintenance_interval_s);
    if (hangup_start() < 0) {
        ad_log(AD_LOG_ERROR, "cannot start the hang-up watcher");
        goto out;
    }
    sse_ticker_start(15000);
    if (pipeline_pool_start(&app.pool, cfg.workers, cfg.job_lease_ms, &e) < 0) {
        ad_log(AD_LOG_ERROR, "%s", e.msg);
        goto out;
    }
    /* Replicas on one database share each caller's request budget through
     * it; on SQLite this process alone serves the file: memory will do. */
    lim = storage_is_shared() ? limits_open_storage() : limits_open_memory();
    if (http_start(&http, &app, lim, &e) < 0) {
        ad_log(AD_LOG_ERROR, "%s", e.msg);
        goto out;
    }
    main_log_listening(&cfg, http_port(http));

    int sig = 0;
    sigwait(&stop_signals, &sig);
    ad_log(AD_LOG_INFO, "received %s: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    http_quiesce(http);
    int left = http_drain(http, ad_clock_mono_ms() + cfg.shutdown_timeout_ms);
    if (left) ad_log(AD_LOG_WARN, "%d request(s) still in flight at the shutdown deadline", left);
    code = 0;
out:
    /* Upstream calls still running end as cancelled and answer their clients;
     * give those answers a moment to leave before the connections close. The
     * client stays allocated until no handler can reach it. */
    if (app.llm) {
        llm_client_stop(app.llm);
        if (http) http_drain(http, ad_clock_mono_ms() + 1000);
    }
    sse_ticker_stop();
    http_stop(http);
    limits_close(lim);
    hangup_stop();
    llm_client_free(app.llm);
    storage_inferences_stop();
    pipeline_pool_stop(app.pool);
    storage_maintenance_stop();
    storage_close();
    series_stop();
    if (code == 0) ad_log(AD_LOG_INFO, "stopped");
    ad_log_stop_async();
    config_cleanup(&cfg);
    return code;
}
