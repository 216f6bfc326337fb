#include "base/clock.h"

#include <stdio.h>
#include <stddef.h>
#include <time.h>

int64_t ad_clock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ad_clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ad_clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void ad_clock_iso8601(int64_t ms, char out[AD_ISO8601_LEN])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, AD_ISO8601_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, AD_ISO8601_LEN - n, ".%03dZ", (int)(((ms % 1000) + 1000) % 1000));
}
