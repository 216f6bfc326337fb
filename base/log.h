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

/* Hands lines to one writer thread that writes them in batches (every few
 * milliseconds, or sooner when many are waiting), instead of one write(2)
 * per line from every request. Lines stay whole and in order per thread.
 * Before start and after stop, lines are written at once. */
void ad_log_start_async(void);
/* Writes what is waiting and stops the writer thread. */
void ad_log_stop_async(void);

/* Logs {"ts":..., "level":..., "msg": <formatted>}. */
void ad_log(ad_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes a prepared line of JSON fields (without braces), adding ts and level:
 * used by the access log, which builds its own fields. */
void ad_log_fields(ad_log_level level, const ad_buf *fields);

#endif
