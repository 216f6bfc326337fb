#include "config/config.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/mem.h"
#include "llm/client.h" /* LLM_DEFAULT_MODEL: one default for both */

/* OPT_DURATION: seconds, given as an integer with an optional s, m, h or d suffix. */
/* OPT_DBURL: a database URL, which may hold a password (shown redacted). */
typedef enum { OPT_INT, OPT_SIZE, OPT_BOOL, OPT_STRING, OPT_SECRET, OPT_LOGLEVEL, OPT_IPV4,
               OPT_THINKING, OPT_DURATION, OPT_DBURL } opt_type;

typedef struct config_opt {
    const char *key;    /* JSON key */
    const char *env;
    const char *flag;
    opt_type type;
    size_t offset;
    long long min, max; /* integers only */
    const char *help;
} config_opt;

#define OFF(field) offsetof(ad_config, field)

static const config_opt config_opts[] = {
    {"port", "AGENTD_PORT", "--port", OPT_INT, OFF(port), 0, 65535, "TCP port (0: ephemeral)"},
    {"bind", "AGENTD_BIND", "--bind", OPT_IPV4, OFF(bind), 0, 0, "listen address (IPv4)"},
    {"data_dir", "AGENTD_DATA_DIR", "--data-dir", OPT_STRING, OFF(data_dir), 0, 0,
     "directory of the SQLite database"},
    {"workers", "AGENTD_WORKERS", "--workers", OPT_INT, OFF(workers), 1, 256,
     "pipeline worker threads"},
    {"http_threads", "AGENTD_HTTP_THREADS", "--http-threads", OPT_INT, OFF(http_threads), 1, 256,
     "HTTP thread pool size"},
    {"max_body_bytes", "AGENTD_MAX_BODY_BYTES", "--max-body-bytes", OPT_SIZE, OFF(max_body_bytes),
     1024, 1LL << 30, "request body limit"},
    {"max_training_bytes", "AGENTD_MAX_TRAINING_BYTES", "--max-training-bytes", OPT_SIZE,
     OFF(max_training_bytes), 1024, 1LL << 30, "training material limit (agent creation)"},
    {"max_prompt_bytes", "AGENTD_MAX_PROMPT_BYTES", "--max-prompt-bytes", OPT_SIZE,
     OFF(max_prompt_bytes), 16, 1LL << 24, "inference prompt limit"},
    {"connection_timeout_s", "AGENTD_CONNECTION_TIMEOUT_S", "--connection-timeout", OPT_INT,
     OFF(connection_timeout_s), 1, 3600, "idle connection timeout (s)"},
    {"connection_limit", "AGENTD_CONNECTION_LIMIT", "--connection-limit", OPT_INT,
     OFF(connection_limit), 1, 1000000, "maximum open connections"},
    {"per_ip_connection_limit", "AGENTD_PER_IP_CONNECTION_LIMIT", "--per-ip-connection-limit", OPT_INT,
     OFF(per_ip_connection_limit), 0, 1000000, "maximum open connections from one client address (0: no limit)"},
    {"header_timeout_s", "AGENTD_HEADER_TIMEOUT_S", "--header-timeout", OPT_INT, OFF(header_timeout_s), 1,
     3600, "time allowed to send a request's headers (s)"},
    {"shutdown_timeout_ms", "AGENTD_SHUTDOWN_TIMEOUT_MS", "--shutdown-timeout-ms", OPT_INT,
     OFF(shutdown_timeout_ms), 0, 600000, "grace period for in-flight requests"},
    {"api_key", "AGENTD_API_KEY", "--api-key", OPT_SECRET, OFF(api_key), 0, 0,
     "bearer token required on /api/v1/* when set"},
    {"rate_limit_per_min", "AGENTD_RATE_LIMIT_PER_MIN", "--rate-limit-per-min", OPT_INT,
     OFF(rate_limit_per_min), 0, 1000000, "requests per minute per token, and for the admin key (0: no limit)"},
    {"max_concurrent_inferences", "AGENTD_MAX_CONCURRENT_INFERENCES", "--max-concurrent-inferences", OPT_INT,
     OFF(max_concurrent_inferences), 0, 100000, "inferences in flight per token, and for the admin key (0: no cap)"},
    {"cors_origins", "AGENTD_CORS_ORIGINS", "--cors-origins", OPT_STRING, OFF(cors_origins), 0, 0,
     "allowed CORS origins: * or a comma-separated list"},
    {"log_level", "AGENTD_LOG_LEVEL", "--log-level", OPT_LOGLEVEL, OFF(log_level), 0, 0,
     "debug, info, warn or error"},
    {"log_prompts", "AGENTD_LOG_PROMPTS", "--log-prompts", OPT_BOOL, OFF(log_prompts), 0, 1,
     "store inference prompt text in the inference log"},
    {"metrics", "AGENTD_METRICS", "--metrics", OPT_BOOL, OFF(metrics), 0, 1,
     "serve GET /metrics and count its series (false: 404, counters idle)"},
    {"gemini_api_key", "GEMINI_API_KEY", "--gemini-api-key", OPT_SECRET, OFF(gemini_api_key), 0, 0,
     "Gemini API key (unset: local answerer)"},
    {"gemini_model", "GEMINI_MODEL", "--gemini-model", OPT_STRING, OFF(gemini_model), 0, 0,
     "Gemini model"},
    {"gemini_base_url", "GEMINI_BASE_URL", "--gemini-base-url", OPT_STRING, OFF(gemini_base_url), 0,
     0, "Gemini API base URL"},
    {"gemini_deadline_ms", "GEMINI_DEADLINE_MS", "--gemini-deadline-ms", OPT_INT,
     OFF(gemini_deadline_ms), 100, 600000, "overall deadline of one Gemini call, retries included"},
    {"gemini_max_attempts", "GEMINI_MAX_ATTEMPTS", "--gemini-max-attempts", OPT_INT,
     OFF(gemini_max_attempts), 1, 20, "attempts per Gemini call"},
    {"gemini_backoff_base_ms", "GEMINI_BACKOFF_BASE_MS", "--gemini-backoff-base-ms", OPT_INT,
     OFF(gemini_backoff_base_ms), 1, 60000, "first retry backoff"},
    {"gemini_max_concurrency", "GEMINI_MAX_CONCURRENCY", "--gemini-max-concurrency", OPT_INT,
     OFF(gemini_max_concurrency), 1, 100000, "concurrent Gemini transfers"},
    {"gemini_thinking_level", "GEMINI_THINKING_LEVEL", "--gemini-thinking-level", OPT_THINKING,
     OFF(gemini_thinking_level), 0, 0, "thinking level: minimal, low, medium, high, or none"},
    {"gemini_thinking_budget", "GEMINI_THINKING_BUDGET", "--gemini-thinking-budget", OPT_INT,
     OFF(gemini_thinking_budget), -1, 32768,
     "thinking tokens when the level is none (-1: not sent, 0: off)"},
    {"gemini_max_thinking_level", "GEMINI_MAX_THINKING_LEVEL", "--gemini-max-thinking-level",
     OPT_THINKING, OFF(gemini_max_thinking_level), 0, 0, "highest thinking_level a request may ask"},
    {"gemini_max_thinking_budget", "GEMINI_MAX_THINKING_BUDGET", "--gemini-max-thinking-budget", OPT_INT,
     OFF(gemini_max_thinking_budget), 0, 32768, "largest thinking_budget a request may ask"},
    {"gemini_check_timeout_ms", "GEMINI_CHECK_TIMEOUT_MS", "--gemini-check-timeout-ms", OPT_INT,
     OFF(gemini_check_timeout_ms), 0, 60000, "bound of the model lookup at start-up (0: no lookup)"},
    {"log_retention", "AGENTD_LOG_RETENTION", "--log-retention", OPT_DURATION, OFF(log_retention_s),
     0, 3650LL * 86400, "age at which log rows are pruned (s, or with m/h/d; 0: never)"},
    {"log_max_rows_per_agent", "AGENTD_LOG_MAX_ROWS_PER_AGENT", "--log-max-rows-per-agent", OPT_SIZE,
     OFF(log_max_rows_per_agent), 0, 1LL << 40, "inference-log and feedback rows kept per agent (0: no limit)"},
    {"maintenance_interval", "AGENTD_MAINTENANCE_INTERVAL", "--maintenance-interval", OPT_DURATION,
     OFF(maintenance_interval_s), 1, 86400, "period of log pruning and space reclaiming"},
    {"database_url", "AGENTD_DATABASE_URL", "--database-url", OPT_DBURL, OFF(database_url), 0, 0,
     "PostgreSQL URL, postgresql://user:pass@host:port/db (unset: SQLite in data_dir)"},
    {"job_lease_ms", "AGENTD_JOB_LEASE_MS", "--job-lease-ms", OPT_INT, OFF(job_lease_ms), 1000, 600000,
     "a running job's lease: another replica takes the job over once it expires"},
};

#define NOPTS (sizeof(config_opts) / sizeof(config_opts[0]))

static int config_default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

void config_init(ad_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->port = 8080;
    cfg->bind = ad_strdup("0.0.0.0");
    cfg->data_dir = ad_strdup("./data");
    cfg->workers = config_default_threads();
    cfg->http_threads = config_default_threads();
    cfg->max_body_bytes = 1LL << 20;
    cfg->max_training_bytes = 10LL << 20;
    cfg->max_prompt_bytes = 32LL << 10;
    cfg->connection_timeout_s = 30;
    cfg->connection_limit = 4096;
    /* A quarter of the connections: one address (a client, or a proxy in
     * front of many) cannot starve every other one. */
    cfg->per_ip_connection_limit = 1024;
    cfg->header_timeout_s = 10;
    cfg->shutdown_timeout_ms = 5000;
    cfg->rate_limit_per_min = 600;
    cfg->max_concurrent_inferences = 4;
    cfg->metrics = 1;
    cfg->cors_origins = ad_strdup("*");
    cfg->log_level = ad_strdup("info");
    cfg->gemini_model = ad_strdup(LLM_DEFAULT_MODEL);
    cfg->gemini_base_url = ad_strdup("https://generativelanguage.googleapis.com");
    cfg->gemini_deadline_ms = 30000;
    cfg->gemini_max_attempts = 4;
    cfg->gemini_backoff_base_ms = 250;
    cfg->gemini_max_concurrency = 1000;
    /* Short answers grounded in given passages need little reasoning. */
    cfg->gemini_thinking_level = ad_strdup("low");
    cfg->gemini_thinking_budget = -1;
    cfg->gemini_max_thinking_level = ad_strdup("medium");
    cfg->gemini_max_thinking_budget = 8192;
    cfg->gemini_check_timeout_ms = 3000;
    cfg->log_retention_s = 30 * 86400;
    cfg->log_max_rows_per_agent = 100000;
    cfg->maintenance_interval_s = 60;
    cfg->job_lease_ms = 15000;
}

void config_cleanup(ad_config *cfg)
{
    for (size_t i = 0; i < NOPTS; i++) {
        const config_opt *o = &config_opts[i];
        if (o->type == OPT_STRING || o->type == OPT_SECRET || o->type == OPT_LOGLEVEL ||
            o->type == OPT_IPV4 || o->type == OPT_THINKING || o->type == OPT_DBURL) {
            char **slot = (char **)((char *)cfg + o->offset);
            free(*slot);
            *slot = NULL;
        }
    }
}

static const config_opt *config_find(const char *key)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (strcmp(config_opts[i].key, key) == 0) return &config_opts[i];
    return NULL;
}

/* Parses a whole decimal integer with an optional K/M/G suffix (sizes only). */
static int config_parse_int(const config_opt *o, const char *value, long long *out, ad_err *e)
{
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (end == value || errno == ERANGE)
        return ad_err_set(e, AD_EINVAL, "%s: '%s' is not an integer", o->key, value);
    if (o->type == OPT_DURATION && *end) {
        long long mult = *end == 's' ? 1 : *end == 'm' ? 60 : *end == 'h' ? 3600 : *end == 'd' ? 86400 : 0;
        if (!mult || end[1] != '\0' || __builtin_mul_overflow(v, mult, &v))
            return ad_err_set(e, AD_EINVAL, "%s: '%s' is not a duration (seconds, or with s, m, h, d)",
                              o->key, value);
        end++;
    }
    if (o->type == OPT_SIZE && *end) {
        long long mult = *end == 'K' || *end == 'k' ? 1LL << 10
                       : *end == 'M' || *end == 'm' ? 1LL << 20
                       : *end == 'G' || *end == 'g' ? 1LL << 30 : 0;
        if (!mult || end[1] != '\0' || __builtin_mul_overflow(v, mult, &v))
            return ad_err_set(e, AD_EINVAL, "%s: '%s' is not a size (bytes, or with K, M, G)", o->key,
                              value);
        end++;
    }
    if (*end) return ad_err_set(e, AD_EINVAL, "%s: '%s' is not an integer", o->key, value);
    if (v < o->min || v > o->max)
        return ad_err_set(e, AD_EINVAL, "%s: %lld is out of range (%lld to %lld)", o->key, v, o->min,
                          o->max);
    *out = v;
    return 0;
}

static int config_apply(ad_config *cfg, const config_opt *o, const char *value, ad_err *e)
{
    void *slot = (char *)cfg + o->offset;
    long long v = 0;
    switch (o->type) {
    case OPT_INT:
    case OPT_SIZE:
    case OPT_DURATION:
        if (config_parse_int(o, value, &v, e) < 0) return AD_EINVAL;
        if (o->type != OPT_SIZE) *(int *)slot = (int)v;
        else *(long long *)slot = v;
        return 0;
    case OPT_BOOL:
        if (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes")) *(int *)slot = 1;
        else if (!strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "no"))
            *(int *)slot = 0;
        else return ad_err_set(e, AD_EINVAL, "%s: '%s' is not a boolean (true or false)", o->key, value);
        return 0;
    case OPT_LOGLEVEL: {
        static const char *const levels[] = {"debug", "info", "warn", "error"};
        int ok = 0;
        for (int i = 0; i < 4; i++) ok |= !strcmp(levels[i], value);
        if (!ok)
            return ad_err_set(e, AD_EINVAL, "%s: '%s' is not one of debug, info, warn, error", o->key,
                              value);
        break;
    }
    case OPT_THINKING: {
        static const char *const levels[] = {"minimal", "low", "medium", "high", "none"};
        int ok = 0;
        for (int i = 0; i < 5; i++) ok |= !strcmp(levels[i], value);
        if (!ok)
            return ad_err_set(e, AD_EINVAL, "%s: '%s' is not one of minimal, low, medium, high, none",
                              o->key, value);
        break;
    }
    case OPT_STRING:
        if (!*value) return ad_err_set(e, AD_EINVAL, "%s: must not be empty", o->key);
        break;
    case OPT_IPV4: {
        struct in_addr a;
        if (inet_pton(AF_INET, value, &a) != 1)
            return ad_err_set(e, AD_EINVAL, "%s: '%.64s' is not an IPv4 address (e.g. 0.0.0.0 or 127.0.0.1)",
                              o->key, value);
        break;
    }
    case OPT_SECRET:
        break;
    case OPT_DBURL:
        /* The value is not echoed: it may hold a password. */
        if (*value && strncmp(value, "postgresql://", 13) != 0 && strncmp(value, "postgres://", 11) != 0)
            return ad_err_set(e, AD_EINVAL, "%s: not a PostgreSQL URL (postgresql://user:pass@host:port/db)",
                              o->key);
        break;
    }
    if (strlen(value) > 4096) return ad_err_set(e, AD_EINVAL, "%s: longer than 4096 bytes", o->key);
    char **s = slot;
    free(*s);
    /* An empty secret means unset, so `GEMINI_API_KEY= agentd` selects the
     * local answerer; an empty database URL, SQLite. */
    *s = ((o->type == OPT_SECRET || o->type == OPT_DBURL) && !*value) ? NULL : ad_strdup(value);
    return 0;
}

int config_set(ad_config *cfg, const char *key, const char *value, ad_err *e)
{
    const config_opt *o = config_find(key);
    if (!o) return ad_err_set(e, AD_EINVAL, "unknown configuration key '%s'", key);
    return config_apply(cfg, o, value, e);
}

static int config_load_file(ad_config *cfg, const char *path, ad_err *e)
{
    FILE *f = fopen(path, "rb");
    if (!f) return ad_err_set(e, AD_EINVAL, "config: cannot read '%s': %s", path, strerror(errno));
    ad_buf text;
    ad_buf_init(&text);
    char chunk[4096];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (text.len + n > (1u << 20)) {
            rc = ad_err_set(e, AD_EINVAL, "config: '%s' is larger than 1 MiB", path);
            break;
        }
        ad_buf_append(&text, chunk, n);
    }
    if (!rc && ferror(f)) rc = ad_err_set(e, AD_EINVAL, "config: error reading '%s'", path);
    fclose(f);
    cJSON *root = rc ? NULL : cJSON_ParseWithLength(text.data ? text.data : "", text.len);
    if (!rc && !cJSON_IsObject(root))
        rc = ad_err_set(e, AD_EINVAL, "config: '%s' is not a JSON object", path);
    for (cJSON *it = root && !rc ? root->child : NULL; it && !rc; it = it->next) {
        const config_opt *o = config_find(it->string);
        char num[32];
        const char *value;
        if (!o) {
            rc = ad_err_set(e, AD_EINVAL, "config: unknown key '%s' in '%s'", it->string, path);
            break;
        }
        if (cJSON_IsString(it)) {
            value = it->valuestring;
        } else if (cJSON_IsBool(it)) {
            value = cJSON_IsTrue(it) ? "true" : "false";
        } else if (cJSON_IsNumber(it) && it->valuedouble >= -9e15 && it->valuedouble <= 9e15 &&
                   it->valuedouble == (double)(long long)it->valuedouble) {
            snprintf(num, sizeof(num), "%lld", (long long)it->valuedouble);
            value = num;
        } else {
            rc = ad_err_set(e, AD_EINVAL, "config: '%s' in '%s' must be a string, integer or boolean",
                            it->string, path);
            break;
        }
        rc = config_apply(cfg, o, value, e);
    }
    cJSON_Delete(root);
    ad_buf_cleanup(&text);
    return rc;
}

static const char *config_env(char **envp, const char *name)
{
    size_t n = strlen(name);
    for (char **p = envp; p && *p; p++)
        if (strncmp(*p, name, n) == 0 && (*p)[n] == '=') return *p + n + 1;
    return NULL;
}

int config_load(ad_config *cfg, int argc, char **argv, char **envp, ad_config_action *action,
                ad_err *e)
{
    const char *file = config_env(envp, "AGENTD_CONFIG");
    *action = AD_CONFIG_RUN;

    /* First pass: actions, --config, and the shape of every flag. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) *action = AD_CONFIG_HELP;
        else if (!strcmp(a, "--version")) *action = AD_CONFIG_VERSION;
        else if (!strcmp(a, "--check-config")) *action = AD_CONFIG_CHECK;
        else if (!strcmp(a, "--healthcheck")) *action = AD_CONFIG_HEALTHCHECK;
        else if (!strcmp(a, "--config")) {
            if (i + 1 >= argc) return ad_err_set(e, AD_EINVAL, "--config needs a value");
            file = argv[++i];
        } else if (!strncmp(a, "--config=", 9)) {
            file = a + 9;
        } else {
            const char *eq = strchr(a, '=');
            size_t len = eq ? (size_t)(eq - a) : strlen(a);
            int found = 0;
            for (size_t k = 0; k < NOPTS && !found; k++)
                found = strlen(config_opts[k].flag) == len && !strncmp(config_opts[k].flag, a, len);
            if (!found) return ad_err_set(e, AD_EINVAL, "unknown option '%s' (see --help)", a);
            if (!eq && ++i >= argc) return ad_err_set(e, AD_EINVAL, "%s needs a value", a);
        }
    }
    if (*action == AD_CONFIG_HELP || *action == AD_CONFIG_VERSION) return 0;

    if (file && config_load_file(cfg, file, e) < 0) return AD_EINVAL;

    for (size_t k = 0; k < NOPTS; k++) {
        const char *v = config_env(envp, config_opts[k].env);
        if (v && config_apply(cfg, &config_opts[k], v, e) < 0) {
            char msg[AD_ERR_MSG_MAX];
            snprintf(msg, sizeof(msg), "%s", e ? e->msg : "");
            return ad_err_set(e, AD_EINVAL, "%s (from %s)", msg, config_opts[k].env);
        }
    }

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--config")) {
            i++;
            continue;
        }
        if (!strncmp(a, "--config=", 9) || strncmp(a, "--", 2) != 0 || !strcmp(a, "--help") || !strcmp(a, "--version") ||
            !strcmp(a, "--check-config") || !strcmp(a, "--healthcheck"))
            continue;
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        for (size_t k = 0; k < NOPTS; k++) {
            const config_opt *o = &config_opts[k];
            if (strlen(o->flag) != len || strncmp(o->flag, a, len) != 0) continue;
            const char *v = eq ? eq + 1 : argv[++i];
            if (config_apply(cfg, o, v, e) < 0) return AD_EINVAL;
            break;
        }
    }
    return 0;
}

void config_to_json(const ad_config *cfg, ad_buf *out)
{
    ad_buf_putc(out, '{');
    for (size_t k = 0; k < NOPTS; k++) {
        const config_opt *o = &config_opts[k];
        const void *slot = (const char *)cfg + o->offset;
        if (k) ad_buf_putc(out, ',');
        ad_buf_json_string(out, o->key, strlen(o->key));
        ad_buf_putc(out, ':');
        switch (o->type) {
        case OPT_INT:
        case OPT_DURATION: ad_buf_printf(out, "%d", *(const int *)slot); break;
        case OPT_SIZE: ad_buf_printf(out, "%lld", *(const long long *)slot); break;
        case OPT_BOOL: ad_buf_puts(out, *(const int *)slot ? "true" : "false"); break;
        case OPT_SECRET: ad_buf_puts(out, *(char *const *)slot ? "\"set\"" : "\"unset\""); break;
        case OPT_DBURL: {
            const char *url = *(char *const *)slot;
            ad_buf shown;
            ad_buf_init(&shown);
            if (url) config_redact_url(url, &shown);
            else ad_buf_puts(&shown, "unset");
            ad_buf_json_string(out, shown.data, shown.len);
            ad_buf_cleanup(&shown);
            break;
        }
        case OPT_STRING:
        case OPT_IPV4:
        case OPT_THINKING:
        case OPT_LOGLEVEL: {
            const char *s = *(char *const *)slot;
            ad_buf_json_string(out, s, strlen(s));
            break;
        }
        }
    }
    ad_buf_printf(out, ",\"backend\":\"%s\"}", cfg->gemini_api_key ? "gemini" : "local");
}

/* The length of "password=" at the start of `s[0..n)`, its letters in any
 * case and any of them %-escaped (libpq decodes a parameter's name), or 0. */
static size_t config_password_key(const char *s, size_t n)
{
    static const char key[] = "password=";
    size_t i = 0;
    for (size_t k = 0; key[k]; k++) {
        int c;
        if (i < n && s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
            isxdigit((unsigned char)s[i + 2])) {
            char hex[3] = {s[i + 1], s[i + 2], '\0'};
            c = (int)strtol(hex, NULL, 16);
            i += 3;
        } else if (i < n) {
            c = (unsigned char)s[i++];
        } else {
            return 0;
        }
        if (tolower(c) != key[k]) return 0;
    }
    return i;
}

/* Appends `s[0..n)` with the value of every password= parameter in it
 * (up to '&', a blank or the end) replaced by ***. */
static void config_redact_params(const char *s, size_t n, ad_buf *out)
{
    size_t i = 0;
    while (i < n) {
        int starts = i == 0 || s[i - 1] == '?' || s[i - 1] == '&' || s[i - 1] == ' ';
        size_t key = starts ? config_password_key(s + i, n - i) : 0;
        if (key) {
            ad_buf_append(out, s + i, key);
            ad_buf_puts(out, "***");
            i += key;
            while (i < n && s[i] != '&' && s[i] != ' ') i++;
            continue;
        }
        ad_buf_putc(out, s[i++]);
    }
}

void config_redact_url(const char *url, ad_buf *out)
{
    size_t n = strlen(url);
    const char *scheme_end = strstr(url, "://");
    if (!scheme_end) {
        config_redact_params(url, n, out);
        return;
    }
    const char *auth = scheme_end + 3;
    /* The last '@' before the parameters ends the user info: a password may
     * hold '@', or an unescaped '/' that libpq would not parse but that is
     * still the password (showing a path's ':' to '@' masked is harmless). */
    size_t auth_len = strcspn(auth, "?#");
    const char *at = NULL;
    for (const char *p = auth; p < auth + auth_len; p++)
        if (*p == '@') at = p;
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (colon) {
        ad_buf_append(out, url, (size_t)(colon + 1 - url));
        ad_buf_puts(out, "***");
        config_redact_params(at, n - (size_t)(at - url), out);
    } else {
        config_redact_params(url, n, out);
    }
}

void config_usage(ad_buf *out)
{
    ad_buf_puts(out,
                "usage: agentd [options]\n\n"
                "  --config PATH        JSON configuration file (also AGENTD_CONFIG)\n"
                "  --check-config       print the effective configuration and exit\n"
                "  --healthcheck        probe GET /health on the configured port; exit 0 if healthy\n"
                "  --version            print the version and exit\n"
                "  --help               this text\n\n"
                "Settings (JSON key / environment / flag), later sources win:\n"
                "defaults < config file < environment < flags\n\n");
    for (size_t k = 0; k < NOPTS; k++) {
        const config_opt *o = &config_opts[k];
        ad_buf_printf(out, "  %-24s %-28s %-22s %s\n", o->flag, o->env, o->key, o->help);
    }
}
