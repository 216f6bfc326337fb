/*
 * Structured logging: one JSON object per line on stderr, written with a
 * single write(2) so lines from different threads never interleave.
 * Callers must never pass a secret (API keys, tokens) to these functions.
 */
#ifndef AD_LOG_H
#define AD_LOG_H

#include "base/buf.h"

typedef enum ad_log_level { AD_LOG_DEBUG, AD_LOG_INFO, AD_LOG_WARN, AD_LOG_ERROR } ad_log_level;

void ad_log_set_level(ad_log_level level);
int ad_log_level_from_string(const char *s, ad_log_level *out);
const char *ad_log_level_name(ad_log_level level);
int ad_log_enabled(ad_log_level level);

/* Logs {"ts":..., "level":..., "msg": <formatted>}. */
void ad_log(ad_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes a prepared line of JSON fields (without braces), adding ts and level:
 * used by the access log, which builds its own fields. */
void ad_log_fields(ad_log_level level, const ad_buf *fields);

#endif
