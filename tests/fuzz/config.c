/*
 * Fuzz target: the configuration file reader (config/config.c). Each input
 * is written to one memfd, and config_load reads it through
 * `--config /proc/self/fd/N`. It must return 0 or AD_EINVAL with a message;
 * a loaded configuration must stay within the table's bounds and serialize.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "base/buf.h"
#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(c) ((c) ? (void)0 : abort())

static int fuzz_fd = -1;
static char fuzz_path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fuzz_fd < 0) {
        fuzz_fd = memfd_create("agentd-fuzz-config", 0);
        FUZZ_ASSERT(fuzz_fd >= 0);
        snprintf(fuzz_path, sizeof(fuzz_path), "/proc/self/fd/%d", fuzz_fd);
    }
    FUZZ_ASSERT(ftruncate(fuzz_fd, 0) == 0);
    FUZZ_ASSERT(pwrite(fuzz_fd, data, size, 0) == (ssize_t)size);

    char *argv[] = {"agentd", "--config", fuzz_path, NULL};
    char *envp[] = {NULL};
    ad_config cfg;
    config_init(&cfg);
    ad_config_action action = AD_CONFIG_HELP;
    ad_err e = {0};
    int rc = config_load(&cfg, 3, argv, envp, &action, &e);
    FUZZ_ASSERT(action == AD_CONFIG_RUN);
    FUZZ_ASSERT(rc == 0 || (rc == AD_EINVAL && e.msg[0] != '\0'));
    if (rc == 0) {
        FUZZ_ASSERT(cfg.port >= 0 && cfg.port <= 65535);
        FUZZ_ASSERT(cfg.workers >= 1 && cfg.http_threads >= 1);
        FUZZ_ASSERT(cfg.max_body_bytes >= 1024 && cfg.max_prompt_bytes >= 16);
        FUZZ_ASSERT(cfg.bind && *cfg.bind && cfg.data_dir && *cfg.data_dir && cfg.log_level);
        ad_buf json;
        ad_buf_init(&json);
        config_to_json(&cfg, &json);
        cJSON *parsed = cJSON_ParseWithLength(json.data, json.len);
        FUZZ_ASSERT(cJSON_IsObject(parsed));
        cJSON_Delete(parsed);
        ad_buf_cleanup(&json);
    }
    config_cleanup(&cfg);
    return 0;
}
