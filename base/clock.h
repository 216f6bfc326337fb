/* Wall-clock and monotonic time, and the one timestamp format agentd prints. */
#ifndef AD_CLOCK_H
#define AD_CLOCK_H

#include <stdint.h>

#define AD_ISO8601_LEN 32

/* Milliseconds since the Unix epoch (wall clock). */
int64_t ad_clock_now_ms(void);
/* Monotonic milliseconds, for durations and deadlines. */
int64_t ad_clock_mono_ms(void);
/* Monotonic nanoseconds, for latencies below a millisecond (the metrics'
 * histograms). */
int64_t ad_clock_mono_ns(void);
/* Writes `ms` as UTC ISO-8601 with milliseconds, e.g. 2026-11-22T06:14:14.123Z. */
void ad_clock_iso8601(int64_t ms, char out[AD_ISO8601_LEN]);

#endif
