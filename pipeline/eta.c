#include "pipeline/eta.h"

#include <stdatomic.h>

#include "pipeline/plan.h"
#include "storage/executions.h"

#define ETA_MIB (1024.0 * 1024.0)
#define ETA_FIXED_MS 4.0
/* A learned rate above this (a minute per MiB) is a stall, not a rate. */
#define ETA_MAX_US_PER_MIB (60LL * 1000 * 1000)

/* BENCHMARKS.md, issue 10's 10 MiB run (see eta.h), in µs per MiB. */
#define ETA_DEFAULT_US_PER_MIB {46000, 32000, 10000, 0}
static const int64_t eta_default_us_per_mib[PIPELINE_STAGES] = ETA_DEFAULT_US_PER_MIB;

/* The learned rates: integers, so an update is one compare-and-swap. */
static atomic_int_fast64_t eta_us_per_mib[PIPELINE_STAGES] = ETA_DEFAULT_US_PER_MIB;

void eta_reset(void)
{
    for (int i = 0; i < PIPELINE_STAGES; i++)
        atomic_store_explicit(&eta_us_per_mib[i], eta_default_us_per_mib[i], memory_order_relaxed);
}

/* µs per MiB above the fixed part for `count` runs taking `ms` in all on `bytes` in all. */
static int64_t eta_rate(int64_t count, int64_t ms, int64_t bytes)
{
    double over = (double)ms - (double)count * ETA_FIXED_MS;
    if (over < 0) over = 0;
    double us = over * 1000.0 * ETA_MIB / (double)bytes;
    return us > (double)ETA_MAX_US_PER_MIB ? ETA_MAX_US_PER_MIB : (int64_t)us;
}

int eta_seed(storage_conn *db, ad_err *e)
{
    exec_stage_sample s[PIPELINE_STAGES];
    int rc = storage_exec_stage_samples(db, PIPELINE_STAGES, ETA_SEED_RUNS, ETA_LEARN_MIN_BYTES, s, e);
    if (rc < 0) return rc;
    for (int i = 0; i < PIPELINE_STAGES; i++)
        if (s[i].count > 0 && s[i].total_bytes > 0)
            atomic_store_explicit(&eta_us_per_mib[i], eta_rate(s[i].count, s[i].total_ms, s[i].total_bytes),
                                  memory_order_relaxed);
    return 0;
}

double eta_stage_ms(int stage, int64_t bytes)
{
    if (stage < 0 || stage >= PIPELINE_STAGES) return 0;
    int64_t us = atomic_load_explicit(&eta_us_per_mib[stage], memory_order_relaxed);
    return ETA_FIXED_MS + (double)us / 1000.0 * ((double)bytes / ETA_MIB);
}

void eta_learn(int stage, int64_t bytes, int64_t ms)
{
    if (stage < 0 || stage >= PIPELINE_STAGES || bytes < ETA_LEARN_MIN_BYTES) return;
    int64_t sample = eta_rate(1, ms, bytes);
    int_fast64_t old = atomic_load_explicit(&eta_us_per_mib[stage], memory_order_relaxed);
    /* Weight 1/4 for the newest run: a few runs move it, one outlier does
     * not. A lost race retries with the winner's value. */
    while (!atomic_compare_exchange_weak_explicit(&eta_us_per_mib[stage], &old, old + (sample - old) / 4,
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

void eta_run_init(eta_run *r, int64_t bytes)
{
    r->bytes = bytes;
    r->actual_ms = 0;
    r->predicted_ms = 0;
}

void eta_run_stage_done(eta_run *r, int stage, int64_t ms)
{
    r->predicted_ms += eta_stage_ms(stage, r->bytes);
    r->actual_ms += ms > 0 ? ms : 0;
}

int64_t eta_run_remaining_ms(const eta_run *r, int from_stage)
{
    double left = 0;
    for (int i = from_stage < 0 ? 0 : from_stage; i < PIPELINE_STAGES; i++) left += eta_stage_ms(i, r->bytes);
    double scale = r->predicted_ms > 0 ? (double)r->actual_ms / r->predicted_ms : 1.0;
    if (scale < ETA_SCALE_MIN) scale = ETA_SCALE_MIN;
    if (scale > ETA_SCALE_MAX) scale = ETA_SCALE_MAX;
    return (int64_t)(left * scale + 0.5);
}
