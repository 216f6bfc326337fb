#include "base/prom.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/mem.h"

#define PROM_LINE 64
#define PROM_LINE_CELLS (PROM_LINE / sizeof(atomic_uint_fast64_t))

static atomic_int prom_on;
static atomic_uint prom_next_shard;
/* This thread's shard plus one; 0 until its first add. */
static _Thread_local unsigned prom_shard_plus1;

void prom_set_enabled(int on)
{
    atomic_store_explicit(&prom_on, on ? 1 : 0, memory_order_relaxed);
}

int prom_enabled(void)
{
    return atomic_load_explicit(&prom_on, memory_order_relaxed);
}

/* Threads take shards round-robin: below PROM_SHARDS threads, none shares. */
static unsigned prom_shard(void)
{
    unsigned s = prom_shard_plus1;
    if (!s) {
        s = atomic_fetch_add_explicit(&prom_next_shard, 1, memory_order_relaxed) % PROM_SHARDS + 1;
        prom_shard_plus1 = s;
    }
    return s - 1;
}

void prom_family_init(prom_family *f, prom_type type, const char *name, const char *help,
                      const char *const *label_names, size_t nlabels, size_t nchildren,
                      const double *bounds_s, size_t nbuckets)
{
    ad_assert(type == PROM_COUNTER || type == PROM_HISTOGRAM);
    ad_assert(nbuckets <= PROM_MAX_BUCKETS && nlabels <= PROM_MAX_LABELS && nchildren > 0);
    ad_assert(type == PROM_HISTOGRAM ? nbuckets > 0 : nbuckets == 0);
    memset(f, 0, sizeof(*f));
    f->name = name;
    f->help = help;
    f->type = type;
    f->label_names = label_names;
    f->nlabels = nlabels;
    f->nchildren = nchildren;
    f->bounds_s = bounds_s;
    f->nbuckets = nbuckets;
    for (size_t i = 0; i < nbuckets; i++) {
        ad_assert(i == 0 || bounds_s[i] > bounds_s[i - 1]);
        f->bounds_ns[i] = (int64_t)llround(bounds_s[i] * 1e9);
    }
    f->values = ad_calloc(nlabels ? ad_size_mul(nchildren, nlabels) : 1, sizeof(char *));
    for (size_t i = 0; i < nchildren * nlabels; i++) f->values[i] = "";
    f->child_cells = type == PROM_HISTOGRAM ? nbuckets + 2 : 1;
    size_t cells = ad_size_mul(nchildren, f->child_cells);
    /* Whole cache lines per shard: two shards never share a line. */
    f->shard_cells = (cells + PROM_LINE_CELLS - 1) / PROM_LINE_CELLS * PROM_LINE_CELLS;
    size_t bytes = ad_size_mul(ad_size_mul(f->shard_cells, PROM_SHARDS), sizeof(atomic_uint_fast64_t));
    f->mem = ad_malloc(ad_size_add(bytes, PROM_LINE));
    uintptr_t p = ((uintptr_t)f->mem + PROM_LINE - 1) & ~(uintptr_t)(PROM_LINE - 1);
    f->cells = (atomic_uint_fast64_t *)p;
    for (size_t i = 0; i < f->shard_cells * PROM_SHARDS; i++) atomic_init(&f->cells[i], 0);
}

void prom_family_label(prom_family *f, size_t child, size_t label, const char *value)
{
    ad_assert(child < f->nchildren && label < f->nlabels);
    f->values[child * f->nlabels + label] = value;
}

void prom_family_cleanup(prom_family *f)
{
    free(f->values);
    free(f->mem);
    memset(f, 0, sizeof(*f));
}

void prom_counter_add(prom_family *f, size_t child, uint64_t n)
{
    if (!atomic_load_explicit(&prom_on, memory_order_relaxed)) return;
    atomic_uint_fast64_t *cell = &f->cells[prom_shard() * f->shard_cells + child];
    atomic_fetch_add_explicit(cell, n, memory_order_relaxed);
}

void prom_histogram_observe_ns(prom_family *f, size_t child, int64_t ns)
{
    if (!atomic_load_explicit(&prom_on, memory_order_relaxed)) return;
    if (ns < 0) ns = 0;
    size_t b = 0;
    while (b < f->nbuckets && ns > f->bounds_ns[b]) b++;
    atomic_uint_fast64_t *cells = &f->cells[prom_shard() * f->shard_cells + child * f->child_cells];
    atomic_fetch_add_explicit(&cells[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&cells[f->nbuckets + 1], (uint64_t)ns, memory_order_relaxed);
}

/* Cell `i` of the family (child * child_cells + offset), summed over the shards. */
static uint64_t prom_sum(const prom_family *f, size_t i)
{
    uint64_t v = 0;
    for (size_t s = 0; s < PROM_SHARDS; s++)
        v += atomic_load_explicit(&f->cells[s * f->shard_cells + i], memory_order_relaxed);
    return v;
}

uint64_t prom_counter_value(const prom_family *f, size_t child)
{
    return prom_sum(f, child);
}

void prom_histogram_value(const prom_family *f, size_t child, uint64_t *count, uint64_t *sum_ns)
{
    size_t base = child * f->child_cells;
    uint64_t n = 0;
    for (size_t b = 0; b <= f->nbuckets; b++) n += prom_sum(f, base + b);
    if (count) *count = n;
    if (sum_ns) *sum_ns = prom_sum(f, base + f->nbuckets + 1);
}

void prom_write_double(ad_buf *b, double v)
{
    if (isnan(v)) {
        ad_buf_puts(b, "NaN");
        return;
    }
    if (isinf(v)) {
        ad_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char s[40];
    /* Whole numbers in full ("30", not "3e+01"): %g's shortest form of them
     * is an exponent. */
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(s, sizeof(s), "%.0f", v);
        ad_buf_puts(b, s);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(s, sizeof(s), "%.*g", prec, v);
        if (strtod(s, NULL) == v) break;
    }
    ad_buf_puts(b, s);
}

void prom_write_label_value(ad_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\') ad_buf_puts(b, "\\\\");
        else if (*s == '"') ad_buf_puts(b, "\\\"");
        else if (*s == '\n') ad_buf_puts(b, "\\n");
        else ad_buf_putc(b, *s);
    }
}

/* HELP text escapes only backslash and newline. */
static void prom_write_header(ad_buf *b, const char *name, const char *help, prom_type type)
{
    ad_buf_printf(b, "# HELP %s ", name);
    for (const char *s = help; *s; s++) {
        if (*s == '\\') ad_buf_puts(b, "\\\\");
        else if (*s == '\n') ad_buf_puts(b, "\\n");
        else ad_buf_putc(b, *s);
    }
    static const char *const types[] = {"counter", "gauge", "histogram"};
    ad_buf_printf(b, "\n# TYPE %s %s\n", name, types[type]);
}

/* `{a="x",b="y"` for a child's labels, then `,le="..."` when `le` is given
 * (+Inf for INFINITY), then `}`; nothing at all for no labels and no `le`. */
static void prom_write_labels(ad_buf *b, const prom_family *f, size_t child, const double *le)
{
    if (f->nlabels == 0 && !le) return;
    ad_buf_putc(b, '{');
    for (size_t l = 0; l < f->nlabels; l++) {
        ad_buf_printf(b, "%s%s=\"", l ? "," : "", f->label_names[l]);
        prom_write_label_value(b, f->values[child * f->nlabels + l]);
        ad_buf_putc(b, '"');
    }
    if (le) {
        ad_buf_puts(b, f->nlabels ? ",le=\"" : "le=\"");
        prom_write_double(b, *le);
        ad_buf_putc(b, '"');
    }
    ad_buf_putc(b, '}');
}

static void prom_write_histogram_child(ad_buf *b, const prom_family *f, size_t child)
{
    size_t base = child * f->child_cells;
    uint64_t cum = 0;
    for (size_t k = 0; k <= f->nbuckets; k++) {
        cum += prom_sum(f, base + k);
        double le = k < f->nbuckets ? f->bounds_s[k] : INFINITY;
        ad_buf_printf(b, "%s_bucket", f->name);
        prom_write_labels(b, f, child, &le);
        ad_buf_printf(b, " %llu\n", (unsigned long long)cum);
    }
    ad_buf_printf(b, "%s_sum", f->name);
    prom_write_labels(b, f, child, NULL);
    ad_buf_putc(b, ' ');
    prom_write_double(b, (double)prom_sum(f, base + f->nbuckets + 1) / 1e9);
    ad_buf_printf(b, "\n%s_count", f->name);
    prom_write_labels(b, f, child, NULL);
    ad_buf_printf(b, " %llu\n", (unsigned long long)cum);
}

/* Whether every cell of a child is 0 (a sparse family skips it). */
static int prom_child_zero(const prom_family *f, size_t child)
{
    for (size_t k = 0; k < f->child_cells; k++)
        if (prom_sum(f, child * f->child_cells + k)) return 0;
    return 1;
}

void prom_write_family(ad_buf *b, const prom_family *f)
{
    prom_write_header(b, f->name, f->help, f->type);
    for (size_t c = 0; c < f->nchildren; c++) {
        if (f->sparse && prom_child_zero(f, c)) continue;
        if (f->type == PROM_HISTOGRAM) {
            prom_write_histogram_child(b, f, c);
            continue;
        }
        ad_buf_puts(b, f->name);
        prom_write_labels(b, f, c, NULL);
        ad_buf_printf(b, " %llu\n", (unsigned long long)prom_sum(f, c));
    }
}

void prom_write_simple(ad_buf *b, prom_type type, const char *name, const char *help,
                       const char *label_name, const char *const *label_values, const double *values,
                       size_t n)
{
    ad_assert(type == PROM_COUNTER || type == PROM_GAUGE);
    prom_write_header(b, name, help, type);
    for (size_t i = 0; i < (label_name ? n : 1); i++) {
        ad_buf_puts(b, name);
        if (label_name) {
            ad_buf_printf(b, "{%s=\"", label_name);
            prom_write_label_value(b, label_values[i]);
            ad_buf_puts(b, "\"}");
        }
        ad_buf_putc(b, ' ');
        prom_write_double(b, values[i]);
        ad_buf_putc(b, '\n');
    }
}
