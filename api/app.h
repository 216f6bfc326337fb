/* What every handler may read about the running service. Built by main(),
 * immutable while the server runs (the pointed-to modules are thread-safe). */
#ifndef AD_API_APP_H
#define AD_API_APP_H

#include <stdint.h>

#include "config/config.h"

struct pipeline_pool;
struct llm_client;

typedef struct ad_app {
    const ad_config *cfg;
    int64_t started_ms;          /* wall clock at start-up */
    int64_t started_mono_ms;
    struct pipeline_pool *pool;  /* NULL in handler unit tests */
    struct llm_client *llm;      /* NULL when no Gemini key is configured */
} ad_app;

#endif
