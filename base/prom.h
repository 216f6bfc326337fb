/*
 * Prometheus counters and histograms whose hot path takes no lock, and their
 * text exposition (format 0.0.4). Nothing here knows agentd's series: those
 * are base/series.h.
 *
 * A family is one metric name with its children (one per combination of
 * label values) fixed when it is initialized and addressed by index. Each
 * family keeps PROM_SHARDS copies of its cells, shard-major, every shard on
 * cache lines of its own; a thread adds to the shard it was given at its
 * first add (a _Thread_local index), with relaxed atomic adds: threads that
 * share a shard still count exactly, and no add waits on another thread. A
 * scrape sums the shards; it may miss an add in flight, never lose one.
 *
 * Ownership: the caller owns the prom_family (prom_family_init /
 * prom_family_cleanup); the family copies nothing of its name, HELP or label
 * strings, which must outlive it (string literals, a static table). Adds may
 * run on any thread between init and cleanup; cleanup runs when no thread can
 * add any more.
 */
#ifndef AD_PROM_H
#define AD_PROM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define PROM_SHARDS 16
#define PROM_MAX_BUCKETS 16
#define PROM_MAX_LABELS 4

typedef enum prom_type { PROM_COUNTER, PROM_GAUGE, PROM_HISTOGRAM } prom_type;

/* One family: made by prom_family_init; then each child's label values are
 * set (prom_family_label) and, if wanted, `sparse`. */
typedef struct prom_family {
    const char *name;
    const char *help;
    prom_type type;                  /* PROM_COUNTER or PROM_HISTOGRAM */
    const char *const *label_names;  /* nlabels names */
    size_t nlabels;
    size_t nchildren;
    const double *bounds_s;          /* histograms: ascending upper bounds in seconds */
    size_t nbuckets;                 /* <= PROM_MAX_BUCKETS; +Inf is implicit */
    int sparse;                      /* 1: a child whose cells are all 0 is not written */
    /* Set by prom_family_init: */
    const char **values;             /* nchildren * nlabels label values, child-major */
    int64_t bounds_ns[PROM_MAX_BUCKETS];
    size_t child_cells;              /* cells per child: 1, or nbuckets + 2 (+Inf, sum in ns) */
    size_t shard_cells;              /* cells per shard, rounded up to whole cache lines */
    atomic_uint_fast64_t *cells;     /* PROM_SHARDS * shard_cells, 64-byte aligned */
    void *mem;                       /* the allocation `cells` lies in */
} prom_family;

/* Makes `f` a family of `nchildren` children with `nlabels` labels each, all
 * at 0, and every label value "" until set with prom_family_label. A
 * histogram's `bounds_s` (ascending, at most PROM_MAX_BUCKETS) are its `le`
 * bounds; counters pass NULL, 0. Aborts on a bound count over the limit. */
void prom_family_init(prom_family *f, prom_type type, const char *name, const char *help,
                      const char *const *label_names, size_t nlabels, size_t nchildren,
                      const double *bounds_s, size_t nbuckets);

/* Sets label `label` of child `child` to `value` (not copied). Only before
 * any scrape may run. */
void prom_family_label(prom_family *f, size_t child, size_t label, const char *value);

/* Frees the cells and the label table; `f` may be initialized again. */
void prom_family_cleanup(prom_family *f);

/* Turns every add on or off (one relaxed flag, off until set): while off,
 * prom_counter_add and prom_histogram_observe_ns return at once. Call before
 * the threads that add start. */
void prom_set_enabled(int on);
int prom_enabled(void);

/* Adds `n` to a counter's child. */
void prom_counter_add(prom_family *f, size_t child, uint64_t n);

/* Counts one observation of `ns` nanoseconds in a histogram's child: the
 * first bucket whose bound is >= the value (`le` is inclusive), and the sum. */
void prom_histogram_observe_ns(prom_family *f, size_t child, int64_t ns);

/* A counter child's value now (the sum of the shards). */
uint64_t prom_counter_value(const prom_family *f, size_t child);

/* A histogram child's count now, and its sum in nanoseconds (either may be
 * NULL). */
void prom_histogram_value(const prom_family *f, size_t child, uint64_t *count, uint64_t *sum_ns);

/* Appends the family in the text format: HELP, TYPE, then a sample per
 * child (a histogram's buckets cumulative with `le`, +Inf last, then _sum in
 * seconds and _count). */
void prom_write_family(ad_buf *b, const prom_family *f);

/* Appends a family read at scrape time: HELP, TYPE (PROM_COUNTER or
 * PROM_GAUGE), then `n` samples `name{label_name="label_values[i]"}
 * values[i]`; with `label_name` NULL, one sample `name values[0]`. */
void prom_write_simple(ad_buf *b, prom_type type, const char *name, const char *help,
                       const char *label_name, const char *const *label_values, const double *values,
                       size_t n);

/* Appends `v` as the format writes a float: the shortest decimal that reads
 * back as `v`, "+Inf", "-Inf" or "NaN". */
void prom_write_double(ad_buf *b, double v);

/* Appends a label value with `\`, `"` and newline escaped. */
void prom_write_label_value(ad_buf *b, const char *s);

#endif
