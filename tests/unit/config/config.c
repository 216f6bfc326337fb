/* Tests config/config.c: defaults, the four sources and their order, validation, secrets. */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

Suite *config_config_suite(void);

/* A temporary JSON config file holding `text`; the caller unlinks `path`. */
static void write_temp_config(char path[64], const char *text)
{
    snprintf(path, 64, "/tmp/agentd-config-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    size_t n = strlen(text);
    ck_assert_int_eq(write(fd, text, n), (ssize_t)n);
    close(fd);
}

/* Loads with `argv` (NULL-terminated, argv[0] included) and `envp`; returns the code. */
static int load(ad_config *cfg, char **argv, char **envp, ad_config_action *action, ad_err *e)
{
    int argc = 0;
    while (argv[argc]) argc++;
    memset(e, 0, sizeof(*e));
    return config_load(cfg, argc, argv, envp, action, e);
}

/* Loads and expects AD_EINVAL with a message containing each of `words`. */
static void expect_invalid(char **argv, char **envp, const char *const *words)
{
    ad_config cfg;
    config_init(&cfg);
    ad_config_action action;
    ad_err e;
    int rc = load(&cfg, argv, envp, &action, &e);
    ck_assert_int_eq(rc, AD_EINVAL);
    for (; *words; words++)
        ck_assert_msg(strstr(e.msg, *words) != NULL, "'%s' not in message '%s'", *words, e.msg);
    config_cleanup(&cfg);
}

START_TEST(test_config_defaults)
{
    ad_config cfg;
    config_init(&cfg);
    ck_assert_int_eq(cfg.port, 8080);
    ck_assert_str_eq(cfg.bind, "0.0.0.0");
    ck_assert_str_eq(cfg.data_dir, "./data");
    ck_assert_int_ge(cfg.workers, 1);
    ck_assert_int_le(cfg.workers, 256);
    ck_assert_int_eq(cfg.max_body_bytes, 1LL << 20);
    ck_assert_ptr_null(cfg.api_key);
    ck_assert_ptr_null(cfg.gemini_api_key);
    ck_assert_str_eq(cfg.log_level, "info");
    ck_assert_int_eq(cfg.log_prompts, 0);
    /* A current model, and little thinking for short grounded answers. */
    ck_assert_str_eq(cfg.gemini_model, "gemini-3.8-flash");
    ck_assert_str_eq(cfg.gemini_thinking_level, "low");
    ck_assert_int_eq(cfg.gemini_thinking_budget, -1);
    ck_assert_str_eq(cfg.gemini_max_thinking_level, "medium");
    ck_assert_int_eq(cfg.gemini_max_thinking_budget, 8192);
    ck_assert_int_eq(cfg.gemini_check_timeout_ms, 3000);
    /* The drain ends well inside the 10 s that `docker stop` waits before SIGKILL. */
    ck_assert_int_eq(cfg.shutdown_timeout_ms, 5000);

    /* Loading nothing keeps the defaults. */
    char *argv[] = {"agentd", NULL};
    char *envp[] = {NULL};
    ad_config_action action = AD_CONFIG_HELP;
    ad_err e;
    ck_assert_int_eq(load(&cfg, argv, envp, &action, &e), 0);
    ck_assert_int_eq(action, AD_CONFIG_RUN);
    ck_assert_int_eq(cfg.port, 8080);
    ck_assert_str_eq(cfg.data_dir, "./data");
    config_cleanup(&cfg);
    ck_assert_ptr_null(cfg.data_dir);
}
END_TEST

START_TEST(test_config_precedence)
{
    char path[64];
    write_temp_config(path, "{\"port\": 1111, \"workers\": 3, \"data_dir\": \"/from/file\","
                            " \"log_level\": \"warn\"}");
    char file_env[96];
    snprintf(file_env, sizeof(file_env), "AGENTD_CONFIG=%s", path);
    ad_config cfg;
    ad_config_action action;
    ad_err e;

    /* File only. */
    {
        config_init(&cfg);
        char *argv[] = {"agentd", NULL};
        char *envp[] = {file_env, NULL};
        ck_assert_int_eq(load(&cfg, argv, envp, &action, &e), 0);
        ck_assert_int_eq(cfg.port, 1111);
        ck_assert_int_eq(cfg.workers, 3);
        ck_assert_str_eq(cfg.data_dir, "/from/file");
        ck_assert_str_eq(cfg.log_level, "warn");
        config_cleanup(&cfg);
    }
    /* Environment beats the file. */
    {
        config_init(&cfg);
        char *argv[] = {"agentd", NULL};
        char *envp[] = {"AGENTD_PORT=2222", file_env, "AGENTD_WORKERS=4", "PATH=/bin", NULL};
        ck_assert_int_eq(load(&cfg, argv, envp, &action, &e), 0);
        ck_assert_int_eq(cfg.port, 2222);
        ck_assert_int_eq(cfg.workers, 4);
        ck_assert_str_eq(cfg.data_dir, "/from/file");
        config_cleanup(&cfg);
    }
    /* Flags beat the environment; --config names the file. */
    {
        config_init(&cfg);
        char *argv[] = {"agentd", "--port", "3333", "--config", path, "--data-dir=/from/flag", NULL};
        char *envp[] = {"AGENTD_PORT=2222", "AGENTD_WORKERS=4", "AGENTD_DATA_DIR=/from/env", NULL};
        ck_assert_int_eq(load(&cfg, argv, envp, &action, &e), 0);
        ck_assert_int_eq(cfg.port, 3333);
        ck_assert_int_eq(cfg.workers, 4);
        ck_assert_str_eq(cfg.data_dir, "/from/flag");
        ck_assert_str_eq(cfg.log_level, "warn");
        config_cleanup(&cfg);
    }
    /* The environment variable name must match whole, not by prefix. */
    {
        config_init(&cfg);
        char *argv[] = {"agentd", NULL};
        char *envp[] = {"AGENTD_PORTX=9", "AGENTD_POR=9", NULL};
        ck_assert_int_eq(load(&cfg, argv, envp, &action, &e), 0);
        ck_assert_int_eq(cfg.port, 8080);
        config_cleanup(&cfg);
    }
    unlink(path);
}
END_TEST

START_TEST(test_config_flag_forms)
{
    ad_config cfg;
    config_init(&cfg);
    char *argv[] = {"agentd", "--port=9001", "--workers", "7", "--log-prompts", "true",
                    "--max-body-bytes=2M", "--bind", "127.0.0.1", NULL};
    ad_config_action action;
    ad_err e;
    ck_assert_int_eq(load(&cfg, argv, NULL, &action, &e), 0);
    ck_assert_int_eq(cfg.port, 9001);
    ck_assert_int_eq(cfg.workers, 7);
    ck_assert_int_eq(cfg.log_prompts, 1);
    ck_assert_int_eq(cfg.max_body_bytes, 2LL << 20);
    ck_assert_str_eq(cfg.bind, "127.0.0.1");
    /* The last of two flags wins. */
    char *argv2[] = {"agentd", "--port=1", "--port", "2", NULL};
    ck_assert_int_eq(load(&cfg, argv2, NULL, &action, &e), 0);
    ck_assert_int_eq(cfg.port, 2);
    config_cleanup(&cfg);
}
END_TEST

START_TEST(test_config_invalid_values_name_the_key)
{
    {
        char *argv[] = {"agentd", "--port", "70000", NULL};
        expect_invalid(argv, NULL, (const char *const[]){"port", "70000", NULL});
    }
    {
        char *argv[] = {"agentd", NULL};
        char *envp[] = {"AGENTD_PORT=-1", NULL};
        expect_invalid(argv, envp, (const char *const[]){"port", "AGENTD_PORT", NULL});
    }
    {
        char *argv[] = {"agentd", "--workers=0", NULL};
        expect_invalid(argv, NULL, (const char *const[]){"workers", NULL});
    }
    {
        char *argv[] = {"agentd", "--workers", "abc", NULL};
        expect_invalid(argv, NULL, (const char *const[]){"workers", "abc", NULL});
    }
    {
        char *argv[] = {"agentd", "--workers", "4x", NULL};
        expect_invalid(argv, NULL, (const char *const[]){"workers", NULL});
    }
    {
        char *argv[] = {"agentd", "--port=", NULL};
        expect_invalid(argv, NULL, (const char *const[]){"port", NULL});
    }
    {
        char *argv[] = {"agentd", "--log-level", "verbose", NULL};
        expect_invalid(argv, NULL, (const char *const[]){"log_level", "verbose", NULL});
    }
    {
        char *argv[] = {"agentd", "--max-body-bytes=2X", NULL};
        expect_invalid(argv, NULL, (const char *const[]){"max_body_bytes", "2X", NULL});
    }
    {
        char *argv[] = {"agentd", "--max-body-bytes=2MB", NULL};
        expect_invalid(argv, NULL, (const char *const[]){"max_body_bytes", NULL});
    }
    {
        char *argv[] = {"agentd", "--log-prompts=maybe", NULL};
        expect_invalid(argv, NULL, (const char *const[]){"log_prompts", NULL});
    }
    {
        char *argv[] = {"agentd", "--data-dir=", NULL};
        expect_invalid(argv, NULL, (const char *const[]){"data_dir", NULL});
    }
    {
        char *argv[] = {"agentd", "--nope", "1", NULL};
        expect_invalid(argv, NULL, (const char *const[]){"--nope", NULL});
    }
    {
        char *argv[] = {"agentd", "--port", NULL};
        expect_invalid(argv, NULL, (const char *const[]){"--port", "value", NULL});
    }
    {
        char *argv[] = {"agentd", "--config", NULL};
        expect_invalid(argv, NULL, (const char *const[]){"--config", NULL});
    }
    {
        char *argv[] = {"agentd", "--config", "/nonexistent/dir/agentd.json", NULL};
        expect_invalid(argv, NULL, (const char *const[]){"/nonexistent/dir/agentd.json", NULL});
    }
}
END_TEST

START_TEST(test_config_thinking_settings)
{
    ad_config cfg;
    config_init(&cfg);
    ad_err e;
    ck_assert_int_eq(config_set(&cfg, "gemini_thinking_level", "none", &e), 0);
    ck_assert_int_eq(config_set(&cfg, "gemini_thinking_level", "high", &e), 0);
    ck_assert_str_eq(cfg.gemini_thinking_level, "high");
    ck_assert_int_eq(config_set(&cfg, "gemini_thinking_level", "HIGH", &e), AD_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "gemini_thinking_level"));
    ck_assert_int_eq(config_set(&cfg, "gemini_max_thinking_level", "", &e), AD_EINVAL);
    ck_assert_int_eq(config_set(&cfg, "gemini_thinking_budget", "-2", &e), AD_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "gemini_thinking_budget"));
    ck_assert_int_eq(config_set(&cfg, "gemini_thinking_budget", "0", &e), 0);
    ck_assert_int_eq(config_set(&cfg, "gemini_max_thinking_budget", "40000", &e), AD_EINVAL);
    ck_assert_int_eq(config_set(&cfg, "gemini_check_timeout_ms", "0", &e), 0);
    ad_buf b;
    ad_buf_init(&b);
    config_to_json(&cfg, &b);
    ck_assert_ptr_nonnull(strstr(b.data, "\"gemini_thinking_level\":\"high\""));
    ck_assert_ptr_nonnull(strstr(b.data, "\"gemini_check_timeout_ms\":0"));
    ad_buf_cleanup(&b);
    config_cleanup(&cfg);
}
END_TEST

START_TEST(test_config_bad_files)
{
    char path[64];
    {
        write_temp_config(path, "{\"port\": 1, \"colour\": \"blue\"}");
        char *argv[] = {"agentd", "--config", path, NULL};
        expect_invalid(argv, NULL, (const char *const[]){"colour", NULL});
        unlink(path);
    }
    {
        write_temp_config(path, "port = 8080\n");
        char *argv[] = {"agentd", "--config", path, NULL};
        expect_invalid(argv, NULL, (const char *const[]){"JSON", NULL});
        unlink(path);
    }
    {
        write_temp_config(path, "[1, 2]");
        char *argv[] = {"agentd", "--config", path, NULL};
        expect_invalid(argv, NULL, (const char *const[]){"JSON object", NULL});
        unlink(path);
    }
    {
        write_temp_config(path, "");
        char *argv[] = {"agentd", "--config", path, NULL};
        expect_invalid(argv, NULL, (const char *const[]){"JSON", NULL});
        unlink(path);
    }
    {
        write_temp_config(path, "{\"port\": 70000}");
        char *argv[] = {"agentd", "--config", path, NULL};
        expect_invalid(argv, NULL, (const char *const[]){"port", "70000", NULL});
        unlink(path);
    }
    {
        write_temp_config(path, "{\"workers\": 2.5}");
        char *argv[] = {"agentd", "--config", path, NULL};
        expect_invalid(argv, NULL, (const char *const[]){"workers", NULL});
        unlink(path);
    }
    {
        /* A file that exists but cannot be read: a directory. */
        char *argv[] = {"agentd", "--config", "/tmp", NULL};
        ad_config cfg;
        config_init(&cfg);
        ad_config_action action;
        ad_err e;
        ck_assert_int_eq(load(&cfg, argv, NULL, &action, &e), AD_EINVAL);
        ck_assert_ptr_nonnull(strstr(e.msg, "/tmp"));
        config_cleanup(&cfg);
    }
    {
        /* Strings, integers and booleans in the file are all accepted. */
        write_temp_config(path, "{\"port\": \"8081\", \"log_prompts\": true, \"max_body_bytes\": \"2M\"}");
        char *argv[] = {"agentd", "--config", path, NULL};
        ad_config cfg;
        config_init(&cfg);
        ad_config_action action;
        ad_err e;
        ck_assert_int_eq(load(&cfg, argv, NULL, &action, &e), 0);
        ck_assert_int_eq(cfg.port, 8081);
        ck_assert_int_eq(cfg.log_prompts, 1);
        ck_assert_int_eq(cfg.max_body_bytes, 2LL << 20);
        config_cleanup(&cfg);
        unlink(path);
    }
}
END_TEST

START_TEST(test_config_set_by_key)
{
    ad_config cfg;
    config_init(&cfg);
    ad_err e = {0};
    ck_assert_int_eq(config_set(&cfg, "max_body_bytes", "64K", &e), 0);
    ck_assert_int_eq(cfg.max_body_bytes, 64LL << 10);
    ck_assert_int_eq(config_set(&cfg, "max_body_bytes", "1G", &e), 0);
    ck_assert_int_eq(cfg.max_body_bytes, 1LL << 30);
    ck_assert_int_eq(config_set(&cfg, "max_body_bytes", "2G", &e), AD_EINVAL);
    ck_assert_int_eq(config_set(&cfg, "max_body_bytes", "1023", &e), AD_EINVAL);
    ck_assert_int_eq(cfg.max_body_bytes, 1LL << 30);
    ck_assert_int_eq(config_set(&cfg, "port", "0", &e), 0);
    ck_assert_int_eq(cfg.port, 0);
    ck_assert_int_eq(config_set(&cfg, "port", "65535", &e), 0);
    ck_assert_int_eq(config_set(&cfg, "port", "99999999999999999999", &e), AD_EINVAL);
    ck_assert_int_eq(config_set(&cfg, "port", "8080 ", &e), AD_EINVAL);
    ck_assert_int_eq(config_set(&cfg, "nope", "1", &e), AD_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "nope"));
    for (const char *const *l = (const char *const[]){"debug", "info", "warn", "error", NULL}; *l; l++)
        ck_assert_int_eq(config_set(&cfg, "log_level", *l, &e), 0);
    ck_assert_str_eq(cfg.log_level, "error");
    config_cleanup(&cfg);
}
END_TEST

START_TEST(test_config_secrets_never_shown)
{
    ad_config cfg;
    config_init(&cfg);
    char *argv[] = {"agentd", "--api-key=hunter2-api", NULL};
    char *envp[] = {"GEMINI_API_KEY=hunter2-gemini", NULL};
    ad_config_action action;
    ad_err e;
    ck_assert_int_eq(load(&cfg, argv, envp, &action, &e), 0);
    ck_assert_str_eq(cfg.api_key, "hunter2-api");
    ck_assert_str_eq(cfg.gemini_api_key, "hunter2-gemini");
    ad_buf out;
    ad_buf_init(&out);
    config_to_json(&cfg, &out);
    ck_assert_ptr_null(strstr(out.data, "hunter2"));
    cJSON *j = cJSON_Parse(out.data);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "api_key")), "set");
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "gemini_api_key")), "set");
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "backend")), "gemini");
    ck_assert_int_eq((int)cJSON_GetObjectItemCaseSensitive(j, "port")->valuedouble, 8080);
    cJSON_Delete(j);
    ad_buf_cleanup(&out);
    config_cleanup(&cfg);

    /* A bad secret-free value's message does not carry other settings' secrets either. */
    config_init(&cfg);
    char *argv2[] = {"agentd", "--api-key", "hunter2-api", "--port", "x", NULL};
    ck_assert_int_eq(load(&cfg, argv2, NULL, &action, &e), AD_EINVAL);
    ck_assert_ptr_null(strstr(e.msg, "hunter2"));
    config_cleanup(&cfg);
}
END_TEST

START_TEST(test_config_empty_secret_means_unset)
{
    ad_config cfg;
    config_init(&cfg);
    char *argv[] = {"agentd", NULL};
    char *envp[] = {"GEMINI_API_KEY=", "AGENTD_API_KEY=", NULL};
    ad_config_action action;
    ad_err e;
    ck_assert_int_eq(load(&cfg, argv, envp, &action, &e), 0);
    ck_assert_ptr_null(cfg.gemini_api_key);
    ck_assert_ptr_null(cfg.api_key);
    ad_buf out;
    ad_buf_init(&out);
    config_to_json(&cfg, &out);
    cJSON *j = cJSON_Parse(out.data);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "gemini_api_key")), "unset");
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "api_key")), "unset");
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "backend")), "local");
    cJSON_Delete(j);
    ad_buf_cleanup(&out);

    /* An empty flag unsets a key the environment set. */
    char *argv2[] = {"agentd", "--gemini-api-key=", NULL};
    char *envp2[] = {"GEMINI_API_KEY=abc", NULL};
    ck_assert_int_eq(load(&cfg, argv2, envp2, &action, &e), 0);
    ck_assert_ptr_null(cfg.gemini_api_key);
    config_cleanup(&cfg);
}
END_TEST

START_TEST(test_config_actions)
{
    ad_config cfg;
    ad_config_action action;
    ad_err e;
    {
        config_init(&cfg);
        /* --help wins even over a file that would fail to load. */
        char *argv[] = {"agentd", "--config", "/nonexistent.json", "--help", NULL};
        ck_assert_int_eq(load(&cfg, argv, NULL, &action, &e), 0);
        ck_assert_int_eq(action, AD_CONFIG_HELP);
        config_cleanup(&cfg);
    }
    {
        config_init(&cfg);
        char *argv[] = {"agentd", "-h", NULL};
        ck_assert_int_eq(load(&cfg, argv, NULL, &action, &e), 0);
        ck_assert_int_eq(action, AD_CONFIG_HELP);
        config_cleanup(&cfg);
    }
    {
        config_init(&cfg);
        char *argv[] = {"agentd", "--version", NULL};
        ck_assert_int_eq(load(&cfg, argv, NULL, &action, &e), 0);
        ck_assert_int_eq(action, AD_CONFIG_VERSION);
        config_cleanup(&cfg);
    }
    {
        /* --check-config still loads and validates every setting. */
        config_init(&cfg);
        char *argv[] = {"agentd", "--check-config", "--port", "4444", NULL};
        ck_assert_int_eq(load(&cfg, argv, NULL, &action, &e), 0);
        ck_assert_int_eq(action, AD_CONFIG_CHECK);
        ck_assert_int_eq(cfg.port, 4444);
        config_cleanup(&cfg);
        config_init(&cfg);
        char *bad[] = {"agentd", "--check-config", "--port", "-5", NULL};
        ck_assert_int_eq(load(&cfg, bad, NULL, &action, &e), AD_EINVAL);
        config_cleanup(&cfg);
    }
    {
        config_init(&cfg);
        char *argv[] = {"agentd", "--healthcheck", NULL};
        ck_assert_int_eq(load(&cfg, argv, NULL, &action, &e), 0);
        ck_assert_int_eq(action, AD_CONFIG_HEALTHCHECK);
        config_cleanup(&cfg);
    }
}
END_TEST

START_TEST(test_config_usage_lists_every_flag)
{
    ad_buf out;
    ad_buf_init(&out);
    config_usage(&out);
    static const char *const flags[] = {"--port", "--data-dir", "--workers", "--api-key",
                                        "--gemini-api-key", "--max-body-bytes", "--config",
                                        "--check-config", "AGENTD_PORT", "GEMINI_API_KEY"};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        ck_assert_msg(strstr(out.data, flags[i]) != NULL, "%s missing from usage", flags[i]);
    ad_buf_cleanup(&out);
}
END_TEST

/* --bind is checked with the rest of the configuration, so --check-config
 * (and start-up) stop with exit 2 naming the key, not at listen time. */
START_TEST(test_config_bind_must_be_ipv4)
{
    static const char *const words[] = {"bind", "not an IPv4 address", NULL};
    char *a1[] = {"agentd", "--bind", "localhost", "--check-config", NULL};
    expect_invalid(a1, NULL, words);
    char *a2[] = {"agentd", "--bind=300.1.2.3", NULL};
    expect_invalid(a2, NULL, words);
    char *env[] = {"AGENTD_BIND=::1", NULL};
    char *a3[] = {"agentd", NULL};
    static const char *const env_words[] = {"bind", "AGENTD_BIND", NULL};
    expect_invalid(a3, env, env_words);

    ad_config cfg;
    config_init(&cfg);
    ad_config_action action;
    ad_err e;
    char *ok[] = {"agentd", "--bind", "127.0.0.2", "--check-config", NULL};
    ck_assert_int_eq(load(&cfg, ok, NULL, &action, &e), 0);
    ck_assert_str_eq(cfg.bind, "127.0.0.2");
    config_cleanup(&cfg);
}
END_TEST

/* The slow-client settings: defaults below connection_limit, every source. */
START_TEST(test_config_slow_client_limits)
{
    ad_config cfg;
    config_init(&cfg);
    ck_assert_int_gt(cfg.per_ip_connection_limit, 0);
    ck_assert_int_lt(cfg.per_ip_connection_limit, cfg.connection_limit);
    ck_assert_int_eq(cfg.header_timeout_s, 10);
    ad_config_action action;
    ad_err e;
    char *env[] = {"AGENTD_PER_IP_CONNECTION_LIMIT=7", "AGENTD_HEADER_TIMEOUT_S=3", NULL};
    char *argv[] = {"agentd", "--header-timeout", "2", NULL};
    ck_assert_int_eq(load(&cfg, argv, env, &action, &e), 0);
    ck_assert_int_eq(cfg.per_ip_connection_limit, 7);
    ck_assert_int_eq(cfg.header_timeout_s, 2);
    ad_buf b;
    ad_buf_init(&b);
    config_to_json(&cfg, &b);
    ck_assert_ptr_nonnull(strstr(b.data, "\"per_ip_connection_limit\":7"));
    ck_assert_ptr_nonnull(strstr(b.data, "\"header_timeout_s\":2"));
    ad_buf_cleanup(&b);
    config_cleanup(&cfg);

    static const char *const w1[] = {"header_timeout_s", NULL};
    char *bad1[] = {"agentd", "--header-timeout", "0", NULL};
    expect_invalid(bad1, NULL, w1);
    static const char *const w2[] = {"per_ip_connection_limit", NULL};
    char *bad2[] = {"agentd", "--per-ip-connection-limit", "-1", NULL};
    expect_invalid(bad2, NULL, w2);
}
END_TEST

START_TEST(test_config_retention_durations)
{
    ad_config cfg;
    config_init(&cfg);
    ck_assert_int_eq(cfg.log_retention_s, 30 * 86400);
    ck_assert_int_eq(cfg.log_max_rows_per_agent, 100000);
    ck_assert_int_eq(cfg.maintenance_interval_s, 60);
    ad_err e = {0};
    static const struct { const char *in; int secs; } ok[] = {
        {"0", 0}, {"90", 90}, {"45s", 45}, {"10m", 600}, {"2h", 7200}, {"7d", 7 * 86400}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        ck_assert_int_eq(config_set(&cfg, "log_retention", ok[i].in, &e), 0);
        ck_assert_int_eq(cfg.log_retention_s, ok[i].secs);
    }
    static const char *const bad[] = {"1w", "5mm", "-1", "3651d", "d", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(config_set(&cfg, "log_retention", bad[i], &e), AD_EINVAL);
        ck_assert_msg(strstr(e.msg, "log_retention") != NULL, "%s: %s", bad[i], e.msg);
    }
    ck_assert_int_eq(config_set(&cfg, "maintenance_interval", "0", &e), AD_EINVAL);
    ck_assert_int_eq(config_set(&cfg, "maintenance_interval", "1", &e), 0);
    ck_assert_int_eq(config_set(&cfg, "log_max_rows_per_agent", "0", &e), 0);
    ck_assert_int_eq(config_set(&cfg, "log_max_rows_per_agent", "-5", &e), AD_EINVAL);
    ad_buf b;
    ad_buf_init(&b);
    config_to_json(&cfg, &b);
    cJSON *j = cJSON_ParseWithLength(b.data, b.len);
    ck_assert_int_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "log_retention")), 7 * 86400);
    ck_assert_int_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "maintenance_interval")), 1);
    ck_assert_int_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "log_max_rows_per_agent")), 0);
    cJSON_Delete(j);
    ad_buf_cleanup(&b);
    config_cleanup(&cfg);
}
END_TEST

/* database_url as --check-config shows it: the password replaced by ***. */
static void expect_url_shown(const char *url, const char *shown)
{
    ad_config cfg;
    config_init(&cfg);
    ad_err e = {0};
    ck_assert_msg(config_set(&cfg, "database_url", url, &e) == 0, "%s: %s", url, e.msg);
    ad_buf out;
    ad_buf_init(&out);
    config_to_json(&cfg, &out);
    ck_assert_ptr_null(strstr(out.data, "s3cret"));
    cJSON *j = cJSON_Parse(out.data);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "database_url")), shown);
    cJSON_Delete(j);
    ad_buf_cleanup(&out);
    config_cleanup(&cfg);
}

START_TEST(test_config_database_url)
{
    ad_config cfg;
    config_init(&cfg);
    ck_assert_ptr_null(cfg.database_url);
    ad_buf out;
    ad_buf_init(&out);
    config_to_json(&cfg, &out);
    cJSON *j = cJSON_Parse(out.data);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "database_url")), "unset");
    cJSON_Delete(j);
    ad_buf_cleanup(&out);
    config_cleanup(&cfg);

    /* From the environment, a flag (which wins) and a file. */
    config_init(&cfg);
    char *argv[] = {"agentd", NULL};
    char *envp[] = {"AGENTD_DATABASE_URL=postgresql://agentd:s3cret@db:5432/agentd", NULL};
    ad_config_action action;
    ad_err e;
    ck_assert_int_eq(load(&cfg, argv, envp, &action, &e), 0);
    ck_assert_str_eq(cfg.database_url, "postgresql://agentd:s3cret@db:5432/agentd");
    char *argv2[] = {"agentd", "--database-url", "postgresql:///other?host=/run/pg", NULL};
    ck_assert_int_eq(load(&cfg, argv2, envp, &action, &e), 0);
    ck_assert_str_eq(cfg.database_url, "postgresql:///other?host=/run/pg");
    config_cleanup(&cfg);
    char path[64];
    write_temp_config(path, "{\"database_url\": \"postgres://a@h/d\"}");
    config_init(&cfg);
    char *argv3[] = {"agentd", "--config", path, NULL};
    ck_assert_int_eq(load(&cfg, argv3, NULL, &action, &e), 0);
    ck_assert_str_eq(cfg.database_url, "postgres://a@h/d");
    /* Empty means unset: SQLite again. */
    char *argv4[] = {"agentd", "--database-url=", NULL};
    ck_assert_int_eq(load(&cfg, argv4, NULL, &action, &e), 0);
    ck_assert_ptr_null(cfg.database_url);
    config_cleanup(&cfg);
    unlink(path);

    /* Not a PostgreSQL URL: named, without echoing the value (it may hold a password). */
    char *argv5[] = {"agentd", "--database-url=mysql://u:s3cret@h/d", NULL};
    expect_invalid(argv5, NULL, (const char *const[]){"database_url", "postgresql://", NULL});
    config_init(&cfg);
    ck_assert_int_eq(load(&cfg, argv5, NULL, &action, &e), AD_EINVAL);
    ck_assert_ptr_null(strstr(e.msg, "s3cret"));
    config_cleanup(&cfg);

    expect_url_shown("postgresql://agentd:s3cret@db:5432/agentd", "postgresql://agentd:***@db:5432/agentd");
    expect_url_shown("postgresql://agentd:p@ss:s3cret@db/agentd", "postgresql://agentd:***@db/agentd");
    expect_url_shown("postgresql://agentd@db/agentd?password=s3cret&sslmode=require",
                     "postgresql://agentd@db/agentd?password=***&sslmode=require");
    expect_url_shown("postgresql:///agentd?host=/run/pg", "postgresql:///agentd?host=/run/pg");
    /* libpq %-decodes a parameter's name: an escaped "password" is one. */
    expect_url_shown("postgresql://agentd@db/agentd?pass%77ord=s3cret&sslmode=require",
                     "postgresql://agentd@db/agentd?pass%77ord=***&sslmode=require");
    expect_url_shown("postgresql://agentd@db/agentd?%70ASSWORD=s3cret",
                     "postgresql://agentd@db/agentd?%70ASSWORD=***");
    /* A password with an unescaped '/' (which libpq does not parse) is
     * hidden all the same. */
    expect_url_shown("postgresql://agentd:pa/s3cret@db/agentd", "postgresql://agentd:***@db/agentd");
}
END_TEST

START_TEST(test_config_job_lease_ms)
{
    ad_config cfg;
    config_init(&cfg);
    ck_assert_int_eq(cfg.job_lease_ms, 15000);
    char *argv[] = {"agentd", "--job-lease-ms", "3000", NULL};
    char *envp[] = {"AGENTD_JOB_LEASE_MS=2000", NULL};
    ad_config_action action;
    ad_err e;
    ck_assert_int_eq(load(&cfg, argv, envp, &action, &e), 0);
    ck_assert_int_eq(cfg.job_lease_ms, 3000);
    char *argv2[] = {"agentd", NULL};
    ck_assert_int_eq(load(&cfg, argv2, envp, &action, &e), 0);
    ck_assert_int_eq(cfg.job_lease_ms, 2000);
    config_cleanup(&cfg);
    char path[64];
    write_temp_config(path, "{\"job_lease_ms\": 60000}");
    config_init(&cfg);
    char *argv3[] = {"agentd", "--config", path, NULL};
    ck_assert_int_eq(load(&cfg, argv3, NULL, &action, &e), 0);
    ck_assert_int_eq(cfg.job_lease_ms, 60000);
    ad_buf out;
    ad_buf_init(&out);
    config_to_json(&cfg, &out);
    cJSON *j = cJSON_Parse(out.data);
    ck_assert_int_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "job_lease_ms")), 60000);
    cJSON_Delete(j);
    ad_buf_cleanup(&out);
    config_cleanup(&cfg);
    unlink(path);

    char *low[] = {"agentd", "--job-lease-ms=999", NULL};
    expect_invalid(low, NULL, (const char *const[]){"job_lease_ms", "999", "out of range", NULL});
    char *high[] = {"agentd", NULL};
    char *high_env[] = {"AGENTD_JOB_LEASE_MS=600001", NULL};
    expect_invalid(high, high_env, (const char *const[]){"job_lease_ms", "AGENTD_JOB_LEASE_MS", NULL});
    char *word[] = {"agentd", "--job-lease-ms", "soon", NULL};
    expect_invalid(word, NULL, (const char *const[]){"job_lease_ms", "soon", "not an integer", NULL});
}
END_TEST

Suite *config_config_suite(void)
{
    Suite *s = suite_create("config_config");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_config_defaults);
    tcase_add_test(tc, test_config_precedence);
    tcase_add_test(tc, test_config_flag_forms);
    tcase_add_test(tc, test_config_invalid_values_name_the_key);
    tcase_add_test(tc, test_config_bad_files);
    tcase_add_test(tc, test_config_thinking_settings);
    tcase_add_test(tc, test_config_set_by_key);
    tcase_add_test(tc, test_config_secrets_never_shown);
    tcase_add_test(tc, test_config_empty_secret_means_unset);
    tcase_add_test(tc, test_config_actions);
    tcase_add_test(tc, test_config_usage_lists_every_flag);
    tcase_add_test(tc, test_config_bind_must_be_ipv4);
    tcase_add_test(tc, test_config_slow_client_limits);
    tcase_add_test(tc, test_config_retention_durations);
    tcase_add_test(tc, test_config_database_url);
    tcase_add_test(tc, test_config_job_lease_ms);
    suite_add_tcase(s, tc);
    return s;
}
