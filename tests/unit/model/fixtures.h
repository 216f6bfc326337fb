/*
 * Test fixtures for the model suites: the shared example datasets, found
 * through $AGENTD_SHARED or ../shared relative to the repository root.
 */
#ifndef AD_TESTS_UNIT_MODEL_FIXTURES_H
#define AD_TESTS_UNIT_MODEL_FIXTURES_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* Parses data/<name> from the shared folder; the caller cJSON_Delete()s it.
 * Returns NULL if the file is missing or not JSON. */
cJSON *model_fixture_dataset(const char *name);

/* Every "answer" of every shared dataset, joined by "\n\n", NUL-terminated and
 * owned by the caller (free()); *len gets its length. NULL if none found. */
char *model_fixture_answers(size_t *len);

#endif
