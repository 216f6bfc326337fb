#include "llm/retry.h"

#include <ctype.h>

#define RETRY_MAX_HINT_MS (24 * 3600 * 1000LL)

int llm_retry_status_retryable(long http_status)
{
    return http_status == 429 || http_status == 500 || http_status == 503 || http_status == 504;
}

/* base * 2^(retry-1), capped, without overflowing on a large retry number. */
static int64_t retry_exponential(const llm_retry_policy *p, int retry)
{
    int64_t d = p->base_ms;
    for (int i = 1; i < retry && d < p->cap_ms; i++) d *= 2;
    return d < p->cap_ms ? d : p->cap_ms;
}

static int64_t retry_uniform(int64_t lo, int64_t hi, llm_retry_rand_fn rnd, void *ud)
{
    if (hi <= lo) return lo;
    return lo + (int64_t)(rnd(ud) % (uint64_t)(hi - lo + 1));
}

int64_t llm_retry_backoff_ms(const llm_retry_policy *p, int retry, int64_t prev_wait_ms,
                             llm_retry_rand_fn rnd, void *rnd_ud)
{
    if (p->jitter == LLM_JITTER_DECORRELATED) {
        int64_t prev = prev_wait_ms > p->base_ms ? prev_wait_ms : p->base_ms;
        int64_t hi = prev > p->cap_ms / 3 ? p->cap_ms : prev * 3;
        return retry_uniform(p->base_ms < hi ? p->base_ms : hi, hi, rnd, rnd_ud);
    }
    return retry_uniform(0, retry_exponential(p, retry), rnd, rnd_ud);
}

llm_retry_plan llm_retry_plan_next(const llm_retry_policy *p, int attempts_made,
                                   int64_t prev_wait_ms, int64_t hint_ms, int64_t now_ms,
                                   int64_t deadline_ms, llm_retry_rand_fn rnd, void *rnd_ud)
{
    llm_retry_plan plan = {0, 0};
    plan.wait_ms = llm_retry_backoff_ms(p, attempts_made, prev_wait_ms, rnd, rnd_ud);
    if (hint_ms > plan.wait_ms) plan.wait_ms = hint_ms;
    if (attempts_made >= p->max_attempts) return plan;
    if (now_ms + plan.wait_ms >= deadline_ms) return plan;
    plan.retry = 1;
    return plan;
}

int64_t llm_retry_floor_ms(long http_status, int retry)
{
    if (http_status != 429) return 0;
    int64_t ms = 1000;
    for (int i = 1; i < retry && ms < 60000; i++) ms *= 2;
    return ms < 60000 ? ms : 60000;
}

int64_t llm_retry_parse_retry_after(const char *value)
{
    const char *s = value;
    while (*s == ' ' || *s == '\t') s++;
    if (!isdigit((unsigned char)*s)) return -1;
    int64_t secs = 0;
    for (; isdigit((unsigned char)*s); s++) {
        if (secs <= RETRY_MAX_HINT_MS / 1000) secs = secs * 10 + (*s - '0');
    }
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++;
    if (*s != '\0') return -1;
    int64_t ms = secs * 1000;
    return ms < RETRY_MAX_HINT_MS ? ms : RETRY_MAX_HINT_MS;
}

int64_t llm_retry_parse_duration(const char *value)
{
    const char *s = value;
    if (!isdigit((unsigned char)*s)) return -1;
    int64_t secs = 0;
    for (; isdigit((unsigned char)*s); s++) {
        if (secs <= RETRY_MAX_HINT_MS / 1000) secs = secs * 10 + (*s - '0');
    }
    int64_t ms = 0;
    if (*s == '.') {
        s++;
        if (!isdigit((unsigned char)*s)) return -1;
        int64_t scale = 100;
        int round_up = 0;
        for (; isdigit((unsigned char)*s); s++) {
            if (scale > 0) ms += (*s - '0') * scale;
            else if (*s != '0') round_up = 1;
            scale /= 10;
        }
        ms += round_up;
    }
    if (s[0] != 's' || s[1] != '\0') return -1;
    if (secs > RETRY_MAX_HINT_MS / 1000) return RETRY_MAX_HINT_MS;
    ms += secs * 1000;
    return ms < RETRY_MAX_HINT_MS ? ms : RETRY_MAX_HINT_MS;
}
