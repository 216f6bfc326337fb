#include "model/stats.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

/* Longer tokens (hashes, base64, URLs run together) are counted as tokens but
 * not kept as terms: they are not vocabulary, and skipping them bounds memory. */
#define STATS_MAX_TERM_BYTES 64

struct stats_slot {
    uint64_t hash;
    size_t offset; /* into arena */
    size_t length;
    uint64_t count; /* 0: empty slot */
};

void stats_init(stats *s, size_t max_vocabulary)
{
    memset(s, 0, sizeof(*s));
    s->max_vocabulary = max_vocabulary ? max_vocabulary : STATS_DEFAULT_MAX_VOCABULARY;
    ad_buf_init(&s->arena);
}

void stats_cleanup(stats *s)
{
    free(s->slots);
    ad_buf_cleanup(&s->arena);
    memset(s, 0, sizeof(*s));
}

static uint64_t count_code_points(const char *p, size_t n)
{
    uint64_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)p[i] & 0xC0) != 0x80;
    return c;
}

/* Doubles the table (or creates it) and reinserts every term. */
static void vocabulary_grow(stats *s)
{
    size_t count = s->slot_count ? ad_size_mul(s->slot_count, 2) : 1024;
    stats_slot *slots = ad_calloc(count, sizeof(*slots));
    for (size_t i = 0; i < s->slot_count; i++) {
        const stats_slot *old = &s->slots[i];
        if (!old->count) continue;
        size_t j = (size_t)old->hash & (count - 1);
        while (slots[j].count) j = (j + 1) & (count - 1);
        slots[j] = *old;
    }
    free(s->slots);
    s->slots = slots;
    s->slot_count = count;
}

static void vocabulary_add(stats *s, const char *term, size_t len)
{
    if (len > STATS_MAX_TERM_BYTES) return;
    /* Load factor stays at most 1/2, so probes stay short and a free slot exists. */
    if (ad_size_mul(s->vocabulary_size + 1, 2) > s->slot_count &&
        s->vocabulary_size < s->max_vocabulary)
        vocabulary_grow(s);
    uint64_t h = text_hash64(term, len, TEXT_HASH_SEED);
    size_t mask = s->slot_count - 1;
    for (size_t j = (size_t)h & mask;; j = (j + 1) & mask) {
        stats_slot *slot = &s->slots[j];
        if (!slot->count) {
            if (s->vocabulary_size >= s->max_vocabulary) {
                s->vocabulary_truncated = 1;
                return;
            }
            slot->hash = h;
            slot->offset = s->arena.len;
            slot->length = len;
            slot->count = 1;
            ad_buf_append(&s->arena, term, len);
            s->vocabulary_size++;
            return;
        }
        if (slot->hash == h && slot->length == len &&
            memcmp(s->arena.data + slot->offset, term, len) == 0) {
            slot->count++;
            return;
        }
    }
}

void stats_add_text(stats *s, const char *text, size_t n)
{
    s->documents++;
    s->characters += count_code_points(text, n);
    /* Token by token, lowercased one at a time: a whole-text copy and token
     * array cost more than the counting on megabytes of material. Only
     * tokens that can be terms are lowercased. */
    char lower[STATS_MAX_TERM_BYTES];
    size_t pos = 0, off, len;
    while (text_next_token(text, n, &pos, &off, &len)) {
        s->tokens++;
        if (len > STATS_MAX_TERM_BYTES) continue;
        text_lower_copy(lower, text + off, len);
        vocabulary_add(s, lower, len);
    }
}

void stats_add_passage(stats *s, const char *p, size_t n)
{
    uint64_t chars = count_code_points(p, n);
    if (s->passages == 0 || chars < s->min_passage_chars) s->min_passage_chars = chars;
    if (chars > s->max_passage_chars) s->max_passage_chars = chars;
    s->passages++;
    s->passage_chars_total += chars;
}

double stats_avg_passage_chars(const stats *s)
{
    return s->passages ? (double)s->passage_chars_total / (double)s->passages : 0.0;
}

typedef struct term_view {
    const char *p;
    size_t len;
    uint64_t count;
} term_view;

static int term_view_cmp(const void *a, const void *b)
{
    const term_view *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    int c = memcmp(x->p, y->p, x->len < y->len ? x->len : y->len);
    if (c) return c;
    return (x->len > y->len) - (x->len < y->len);
}

static int is_reportable_term(const char *t, size_t len)
{
    if (len < 2 || text_is_stopword(t, len)) return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned)(t[i] - '0') >= 10u) return 1;
    return 0;
}

size_t stats_top_terms(const stats *s, size_t n, stats_term **out)
{
    *out = NULL;
    if (n == 0 || s->vocabulary_size == 0) return 0;
    term_view *views = ad_malloc(ad_size_mul(s->vocabulary_size, sizeof(*views)));
    size_t nviews = 0;
    for (size_t i = 0; i < s->slot_count; i++) {
        const stats_slot *slot = &s->slots[i];
        const char *t = s->arena.data + slot->offset;
        if (slot->count && is_reportable_term(t, slot->length))
            views[nviews++] = (term_view){t, slot->length, slot->count};
    }
    qsort(views, nviews, sizeof(*views), term_view_cmp);
    size_t k = nviews < n ? nviews : n;
    stats_term *terms = k ? ad_malloc(ad_size_mul(k, sizeof(*terms))) : NULL;
    for (size_t i = 0; i < k; i++) {
        terms[i].term = ad_strndup(views[i].p, views[i].len);
        terms[i].count = views[i].count;
    }
    free(views);
    *out = terms;
    return k;
}

void stats_terms_free(stats_term *terms, size_t count)
{
    for (size_t i = 0; i < count; i++) free(terms[i].term);
    free(terms);
}

void stats_to_json(const stats *s, size_t top_n, ad_buf *out)
{
    ad_buf_printf(out,
                  "{\"documents\":%" PRIu64 ",\"passages\":%" PRIu64 ",\"characters\":%" PRIu64
                  ",\"tokens\":%" PRIu64 ",\"vocabulary_size\":%zu,\"avg_passage_chars\":%.2f"
                  ",\"min_passage_chars\":%" PRIu64 ",\"max_passage_chars\":%" PRIu64
                  ",\"top_terms\":[",
                  s->documents, s->passages, s->characters, s->tokens, s->vocabulary_size,
                  stats_avg_passage_chars(s), s->min_passage_chars, s->max_passage_chars);
    stats_term *terms;
    size_t k = stats_top_terms(s, top_n, &terms);
    int first = 1;
    for (size_t i = 0; i < k; i++) {
        size_t len = strlen(terms[i].term);
        /* Input that skipped text_normalize may hold invalid UTF-8: keep the
         * JSON valid by leaving such terms out. */
        if (ad_utf8_validate(terms[i].term, len, NULL) != 0) continue;
        if (!first) ad_buf_putc(out, ',');
        first = 0;
        ad_buf_puts(out, "{\"term\":");
        ad_buf_json_string(out, terms[i].term, len);
        ad_buf_printf(out, ",\"count\":%" PRIu64 "}", terms[i].count);
    }
    ad_buf_puts(out, "]}");
    stats_terms_free(terms, k);
}
