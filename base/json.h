/*
 * Small cJSON helpers shared by handlers and the pipeline: timestamps, and
 * field readers that validate type and size and say what is wrong with the
 * field by name (the message goes straight into a 400 response).
 */
#ifndef AD_JSON_H
#define AD_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

/* Adds `key`: the UTC ISO-8601 form of `ms`, or null when ms <= 0. */
void ad_json_add_time(cJSON *obj, const char *key, int64_t ms);

/* Adds a string, or null when `s` is NULL or empty. */
void ad_json_add_str(cJSON *obj, const char *key, const char *s);

/* Adds an integer. cJSON prints every number through "%1.15g" and checks it
 * with sscanf; an integer written directly costs a fraction of that. */
void ad_json_add_int(cJSON *obj, const char *key, long long v);

/* Adds `key` parsed from stored JSON text, or null when `text` is NULL or not JSON. */
void ad_json_add_raw(cJSON *obj, const char *key, const char *text);

/*
 * Reads string field `key`. Missing or null: AD_ENOTFOUND when !required (and
 * *out = NULL), else AD_EINVAL. Wrong type, empty (after trimming
 * whitespace) or longer than `max_bytes`: AD_EINVAL naming the field.
 */
int ad_json_string(const cJSON *obj, const char *key, int required, size_t max_bytes,
                   const char **out, ad_err *e);

/* Reads a whole number within [min, max]; a fraction, a string or a bool is
 * AD_EINVAL. Missing: AD_ENOTFOUND when !required. */
int ad_json_int(const cJSON *obj, const char *key, int required, long long min, long long max,
                long long *out, ad_err *e);

/* Reads a number within [min, max]. Missing: AD_ENOTFOUND when !required. */
int ad_json_number(const cJSON *obj, const char *key, int required, double min, double max,
                   double *out, ad_err *e);

/* Reads a boolean. Missing: AD_ENOTFOUND when !required. */
int ad_json_bool(const cJSON *obj, const char *key, int required, int *out, ad_err *e);

/* 0 when every string and member name in `root` is strict UTF-8; else
 * AD_EINVAL with the first offender named by its path in `e`, e.g.
 * "dataset[2].answer is not valid UTF-8 (at byte 5)". */
int ad_json_check_utf8(const cJSON *root, ad_err *e);

#endif
