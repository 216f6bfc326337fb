#include "server/limits.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/series.h"
#include "storage/db.h"
#include "storage/rates.h"

_Static_assert(LIMITS_WINDOW_MS == STORAGE_RATES_WINDOW_MS, "the maintenance pass prunes by the window");

#define LIMITS_KEY_MAX 40
#define LIMITS_BUCKETS 64      /* per stripe: 4096 chains in all */
#define LIMITS_SWEEP_MIN 32    /* a stripe is swept once it holds this many cells, ... */

struct limits {
    const limits_backend *backend;
    void *self;
    atomic_uint_fast64_t rate_limited;
    atomic_uint_fast64_t inference_capped;
};

limits *limits_open(const limits_backend *backend, void *self)
{
    limits *l = ad_calloc(1, sizeof(*l));
    l->backend = backend;
    l->self = self;
    return l;
}

void limits_close(limits *l)
{
    if (!l) return;
    l->backend->destroy(l->self);
    free(l);
}

void limits_take(limits *l, const char *caller, int limit, int64_t now_ms, limits_decision *out)
{
    l->backend->take(l->self, caller, limit, now_ms, out);
    if (!out->allowed) {
        atomic_fetch_add(&l->rate_limited, 1);
        series_rate_limited();
    }
}

int limits_inference_enter(limits *l, const char *caller, int cap)
{
    int ok = l->backend->enter(l->self, caller, cap);
    if (!ok) {
        atomic_fetch_add(&l->inference_capped, 1);
        series_inference_capped();
    }
    return ok;
}

void limits_inference_leave(limits *l, const char *caller)
{
    l->backend->leave(l->self, caller);
}

void limits_get_stats(const limits *l, limits_stats *out)
{
    out->rate_limited = atomic_load(&l->rate_limited);
    out->inference_capped = atomic_load(&l->inference_capped);
}

/* ---- the in-memory backend ---- */

typedef struct mem_cell {
    struct mem_cell *next;
    uint64_t hash;
    int64_t window_start_ms;
    int count;                 /* requests in the window */
    int inflight;              /* inferences in flight */
    char caller[LIMITS_KEY_MAX];
} mem_cell;

/* Padded to its own cache lines, so stripes locked by different threads do
 * not share one. */
typedef struct mem_stripe {
    pthread_mutex_t mu;
    mem_cell *buckets[LIMITS_BUCKETS];
    size_t ncells;
    size_t sweep_at;           /* ... and again once it has doubled since */
    char pad[64];
} mem_stripe;

typedef struct mem_limits {
    mem_stripe stripes[LIMITS_STRIPES];
} mem_limits;

/* FNV-1a: the callers are short labels, not attacker-chosen keys (they come
 * after authentication). */
static uint64_t mem_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static mem_stripe *mem_stripe_of(mem_limits *m, uint64_t h)
{
    return &m->stripes[h % LIMITS_STRIPES];
}

static mem_cell **mem_bucket(mem_stripe *s, uint64_t h)
{
    return &s->buckets[(h / LIMITS_STRIPES) % LIMITS_BUCKETS];
}

/* Whether the cell's window is over; also when the wall clock stepped back
 * well behind its start, which would otherwise refuse the caller until the
 * clock caught up again. Not for a few milliseconds back: a thread that read
 * the clock just before another opened the window is no step. */
static int mem_window_over(const mem_cell *c, int64_t now_ms)
{
    return now_ms < c->window_start_ms - 1000 || now_ms - c->window_start_ms >= LIMITS_WINDOW_MS;
}

/* A cell that says nothing any more: its window is over and nothing of its
 * caller is in flight. */
static int mem_cell_idle(const mem_cell *c, int64_t now_ms)
{
    return c->inflight == 0 && mem_window_over(c, now_ms);
}

/* Drops the stripe's idle cells; caller holds s->mu. */
static void mem_sweep(mem_stripe *s, int64_t now_ms)
{
    for (size_t b = 0; b < LIMITS_BUCKETS; b++) {
        for (mem_cell **p = &s->buckets[b]; *p;) {
            mem_cell *c = *p;
            if (mem_cell_idle(c, now_ms)) {
                *p = c->next;
                free(c);
                s->ncells--;
            } else {
                p = &c->next;
            }
        }
    }
    s->sweep_at = s->ncells * 2 > LIMITS_SWEEP_MIN ? s->ncells * 2 : LIMITS_SWEEP_MIN;
}

/* The caller's cell, created when `create`; caller holds s->mu. */
static mem_cell *mem_find(mem_stripe *s, uint64_t h, const char *caller, int create, int64_t now_ms)
{
    mem_cell **bucket = mem_bucket(s, h);
    for (mem_cell *c = *bucket; c; c = c->next)
        if (c->hash == h && strcmp(c->caller, caller) == 0) return c;
    if (!create) return NULL;
    if (s->ncells >= s->sweep_at) {
        mem_sweep(s, now_ms);
        bucket = mem_bucket(s, h);
    }
    mem_cell *c = ad_calloc(1, sizeof(*c));
    c->hash = h;
    c->window_start_ms = now_ms - LIMITS_WINDOW_MS; /* no window open yet */
    ad_assert(strlen(caller) < sizeof(c->caller));
    strcpy(c->caller, caller);
    c->next = *bucket;
    *bucket = c;
    s->ncells++;
    return c;
}

static void mem_take(void *self, const char *caller, int limit, int64_t now_ms, limits_decision *out)
{
    mem_limits *m = self;
    uint64_t h = mem_hash(caller);
    mem_stripe *s = mem_stripe_of(m, h);
    pthread_mutex_lock(&s->mu);
    mem_cell *c = mem_find(s, h, caller, 1, now_ms);
    if (mem_window_over(c, now_ms)) {
        c->window_start_ms = now_ms;
        c->count = 0;
    }
    out->allowed = c->count < limit;
    if (out->allowed) c->count++;
    out->limit = limit;
    out->remaining = limit - c->count;
    int64_t left_ms = c->window_start_ms + LIMITS_WINDOW_MS - now_ms;
    pthread_mutex_unlock(&s->mu);
    int reset = (int)((left_ms + 999) / 1000);
    out->reset_s = reset < 1 ? 1 : reset;
}

static int mem_enter(void *self, const char *caller, int cap)
{
    mem_limits *m = self;
    uint64_t h = mem_hash(caller);
    mem_stripe *s = mem_stripe_of(m, h);
    pthread_mutex_lock(&s->mu);
    mem_cell *c = mem_find(s, h, caller, 1, ad_clock_now_ms());
    int ok = c->inflight < cap;
    if (ok) c->inflight++;
    pthread_mutex_unlock(&s->mu);
    return ok;
}

static void mem_leave(void *self, const char *caller)
{
    mem_limits *m = self;
    uint64_t h = mem_hash(caller);
    mem_stripe *s = mem_stripe_of(m, h);
    pthread_mutex_lock(&s->mu);
    mem_cell *c = mem_find(s, h, caller, 0, ad_clock_now_ms());
    ad_assert(c && c->inflight > 0);
    c->inflight--;
    pthread_mutex_unlock(&s->mu);
}

static void mem_destroy(void *self)
{
    mem_limits *m = self;
    for (size_t i = 0; i < LIMITS_STRIPES; i++) {
        mem_stripe *s = &m->stripes[i];
        for (size_t b = 0; b < LIMITS_BUCKETS; b++) {
            for (mem_cell *c = s->buckets[b], *next; c; c = next) {
                next = c->next;
                free(c);
            }
        }
        pthread_mutex_destroy(&s->mu);
    }
    free(m);
}

static const limits_backend mem_backend = {mem_take, mem_enter, mem_leave, mem_destroy};

static mem_limits *mem_new(void)
{
    mem_limits *m = ad_calloc(1, sizeof(*m));
    for (size_t i = 0; i < LIMITS_STRIPES; i++) {
        pthread_mutex_init(&m->stripes[i].mu, NULL);
        m->stripes[i].sweep_at = LIMITS_SWEEP_MIN;
    }
    return m;
}

limits *limits_open_memory(void)
{
    return limits_open(&mem_backend, mem_new());
}

size_t limits_memory_cells(const limits *l)
{
    if (l->backend != &mem_backend) return 0;
    mem_limits *m = l->self;
    size_t n = 0;
    for (size_t i = 0; i < LIMITS_STRIPES; i++) {
        pthread_mutex_lock(&m->stripes[i].mu);
        n += m->stripes[i].ncells;
        pthread_mutex_unlock(&m->stripes[i].mu);
    }
    return n;
}

/* ---- the backend on the shared database ---- */

#define STORE_LOG_EVERY_MS 60000

typedef struct store_limits {
    mem_limits *inflight;      /* enter/leave: this process's inferences */
    atomic_llong logged_ms;    /* when a failure was last logged */
    atomic_long unlogged;      /* failures since */
} store_limits;

/* Logs a failed take, at most once a minute (a database that is down fails
 * every request: one line says it), with the count of those not logged. */
static void store_note_failure(store_limits *s, int64_t now_ms, const ad_err *e)
{
    long long last = atomic_load(&s->logged_ms);
    if (now_ms - last < STORE_LOG_EVERY_MS || !atomic_compare_exchange_strong(&s->logged_ms, &last, now_ms)) {
        atomic_fetch_add(&s->unlogged, 1);
        return;
    }
    long more = atomic_exchange(&s->unlogged, 0);
    ad_log(AD_LOG_WARN, "rate limits: the database did not count a request, admitted uncounted (%ld more "
           "since the last such line): %s", more, e->msg);
}

static void store_take(void *self, const char *caller, int limit, int64_t now_ms, limits_decision *out)
{
    store_limits *s = self;
    storage_conn *db = storage_conn_get();
    int64_t start = now_ms, count = 1;
    ad_err e = {0};
    int rc = db ? storage_rates_take(db, caller, now_ms, LIMITS_WINDOW_MS, &start, &count, &e)
                : ad_err_set(&e, AD_EUNAVAILABLE, "no database connection");
    if (rc < 0) {
        /* Fail open: the request is the first of a fresh window. */
        store_note_failure(s, now_ms, &e);
        start = now_ms;
        count = 1;
    }
    out->allowed = count <= limit;
    out->limit = limit;
    out->remaining = count >= limit ? 0 : (int)(limit - count);
    int64_t left_ms = start + LIMITS_WINDOW_MS - now_ms;
    if (left_ms > LIMITS_WINDOW_MS) left_ms = LIMITS_WINDOW_MS; /* another replica's clock ahead */
    int reset = (int)((left_ms + 999) / 1000);
    out->reset_s = reset < 1 ? 1 : reset;
}

static int store_enter(void *self, const char *caller, int cap)
{
    store_limits *s = self;
    return mem_enter(s->inflight, caller, cap);
}

static void store_leave(void *self, const char *caller)
{
    store_limits *s = self;
    mem_leave(s->inflight, caller);
}

static void store_destroy(void *self)
{
    store_limits *s = self;
    mem_destroy(s->inflight);
    free(s);
}

static const limits_backend store_backend = {store_take, store_enter, store_leave, store_destroy};

limits *limits_open_storage(void)
{
    store_limits *s = ad_calloc(1, sizeof(*s));
    s->inflight = mem_new();
    atomic_init(&s->logged_ms, 0);
    atomic_init(&s->unlogged, 0);
    return limits_open(&store_backend, s);
}
