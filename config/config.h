/*
 * agentd's configuration: defaults < JSON file < environment < command line.
 *
 * Every setting is one row of a table (config.c) that names its JSON key, its
 * environment variable and its flag, so the four sources share one parser and
 * one validator. A bad value stops start-up with a message naming the key.
 */
#ifndef AD_CONFIG_H
#define AD_CONFIG_H

#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"

#define AGENTD_VERSION "0.1.0"

typedef struct ad_config {
    int port;                   /* 0 = ephemeral (the bound port is logged) */
    char *bind;
    char *data_dir;
    int workers;                /* pipeline worker threads */
    int http_threads;           /* libmicrohttpd thread pool size */
    long long max_body_bytes;
    long long max_training_bytes;
    long long max_prompt_bytes;
    int connection_timeout_s;
    int connection_limit;
    int per_ip_connection_limit; /* open connections from one client address; 0 = no limit */
    int header_timeout_s;       /* time allowed to send a request's headers */
    int shutdown_timeout_ms;
    char *api_key;              /* secret; NULL when unset */
    int rate_limit_per_min;     /* requests per minute per authenticated caller; 0 = no limit */
    int max_concurrent_inferences; /* inferences in flight per authenticated caller; 0 = no cap */
    char *cors_origins;         /* "*" or a comma-separated list */
    char *log_level;
    int log_prompts;            /* store inference prompt text */
    int metrics;                /* serve /metrics and count its series */
    char *gemini_api_key;       /* secret; NULL when unset */
    char *gemini_model;
    char *gemini_base_url;
    int gemini_deadline_ms;
    int gemini_max_attempts;
    int gemini_backoff_base_ms;
    int gemini_max_concurrency;
    char *gemini_thinking_level;     /* minimal|low|medium|high, or "none": not sent */
    int gemini_thinking_budget;      /* used when the level is "none": -1 not sent, 0 off, > 0 tokens */
    char *gemini_max_thinking_level; /* the highest thinking_level a request may ask */
    int gemini_max_thinking_budget;  /* the largest thinking_budget a request may ask */
    int gemini_check_timeout_ms;     /* the start-up model lookup's bound; 0: no lookup */
    int log_retention_s;        /* log rows older than this are pruned; 0 = no age limit */
    long long log_max_rows_per_agent; /* inference-log and feedback rows kept per agent; 0 = no limit */
    int maintenance_interval_s; /* period of log pruning and space reclaiming */
    char *database_url;         /* PostgreSQL (libpq URI, may hold a password); NULL: SQLite in data_dir */
    int job_lease_ms;           /* a running job's lease; the heartbeat renews it every third */
} ad_config;

/* What the command line asked for besides settings. */
typedef enum ad_config_action {
    AD_CONFIG_RUN,
    AD_CONFIG_HELP,
    AD_CONFIG_VERSION,
    AD_CONFIG_CHECK,        /* print the effective configuration and exit */
    AD_CONFIG_HEALTHCHECK   /* probe GET /health on the configured port */
} ad_config_action;

/* Fills `cfg` with the defaults. Pair with config_cleanup. */
void config_init(ad_config *cfg);
void config_cleanup(ad_config *cfg);

/*
 * Builds the effective configuration from the JSON file (--config PATH or
 * AGENTD_CONFIG), the environment `envp` (NULL-terminated "K=V" strings) and
 * `argv`. On failure returns AD_EINVAL with the key and the reason in `e`.
 */
int config_load(ad_config *cfg, int argc, char **argv, char **envp, ad_config_action *action,
                ad_err *e);

/* Sets one setting by its JSON key from text, validating it. */
int config_set(ad_config *cfg, const char *key, const char *value, ad_err *e);

/* Appends the configuration as a JSON object; secrets appear as "set"/"unset",
 * database_url with its password redacted (or "unset"). */
void config_to_json(const ad_config *cfg, ad_buf *out);

/* Appends `url` (a database URL) with its password, if any, replaced by
 * "***": the user:password@ part of a URI and any password= parameter. */
void config_redact_url(const char *url, ad_buf *out);

/* Writes the --help text. */
void config_usage(ad_buf *out);

#endif
