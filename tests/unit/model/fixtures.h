/*
 * Test fixtures for the model suites: the example datasets the repository
 * carries in tests/data/, read relative to the repository root (where the
 * suites run).
 */
#ifndef AD_TESTS_UNIT_MODEL_FIXTURES_H
#define AD_TESTS_UNIT_MODEL_FIXTURES_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* Parses tests/data/<name>; the caller cJSON_Delete()s it.
 * Returns NULL if the file is missing or not JSON. */
cJSON *model_fixture_dataset(const char *name);

/* Every "answer" of every test dataset, joined by "\n\n", NUL-terminated and
 * owned by the caller (free()); *len gets its length. NULL if none found. */
char *model_fixture_answers(size_t *len);

#endif
