#include "model/index.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "model/text.h"

#define IX_LEN_MAX 65535u
#define IX_LENGTH_BYTES 4

/* A distinct term. While passages are added, `last`/`tfq`/`tfb` count the
 * current passage's occurrences; once finished, `post`/`post_len` locate its
 * postings in index_mem.post. */
typedef struct ix_term {
    uint64_t hash;
    uint32_t off;          /* the term's bytes in index_mem.arena */
    uint32_t len;
    uint32_t df;
    int64_t last;          /* ord of the passage the counters belong to; -1: none */
    uint32_t tfq, tfb;
    size_t post, post_len;
} ix_term;

/* A term's occurrence in one passage. */
typedef struct ix_entry {
    uint32_t ord;
    uint16_t tfq, tfb;
} ix_entry;

/* One (term, passage) pair, appended in passage order. */
typedef struct ix_occ {
    uint32_t tid;
    ix_entry e;
} ix_occ;

struct index_mem {
    analyzer *an;
    int finished;
    /* terms: interned bytes, an open-addressing table of term id + 1 */
    ix_term *terms;
    size_t nterms, terms_cap;
    uint32_t *table;
    size_t table_cap;
    char *arena;
    size_t arena_len, arena_cap;
    /* while adding */
    ix_occ *occ;
    size_t nocc, occ_cap;
    uint32_t *touched;     /* term ids seen in the current passage */
    size_t ntouched, touched_cap;
    int field;             /* 0: question, 1: body */
    /* statistics */
    size_t npassages;
    unsigned char *lengths;
    size_t lengths_cap;
    uint64_t question_terms, body_terms;
    /* finished */
    unsigned char *post;
    size_t post_len;
};

/* ---- varints ---- */

static size_t ix_varint_len(uint32_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Writes `v` at `w`; returns the byte after it. */
static unsigned char *ix_write_varint(unsigned char *w, uint32_t v)
{
    while (v >= 0x80) {
        *w++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *w++ = (unsigned char)v;
    return w;
}

/* Reads a varint at p[*i..n); 0 on a truncated or overlong one. */
static int ix_get_varint(const unsigned char *p, size_t n, size_t *i, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; *i < n && shift < 64; shift += 7) {
        unsigned char c = p[(*i)++];
        v |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return 1;
        }
    }
    return 0;
}

/* ---- building ---- */

index_mem *index_new(analysis_language l)
{
    index_mem *ix = ad_calloc(1, sizeof(*ix));
    ix->an = analyzer_new(l);
    ix->table_cap = 1024;
    ix->table = ad_calloc(ix->table_cap, sizeof(*ix->table));
    return ix;
}

void index_free(index_mem *ix)
{
    if (!ix) return;
    analyzer_free(ix->an);
    free(ix->terms);
    free(ix->table);
    free(ix->arena);
    free(ix->occ);
    free(ix->touched);
    free(ix->lengths);
    free(ix->post);
    free(ix);
}

/* Doubles `*cap` (from `first`) until it holds `need` items of `size` bytes
 * and moves `*p` there. */
static void ix_grow(void **p, size_t *cap, size_t need, size_t size, size_t first)
{
    if (need <= *cap) return;
    size_t c = *cap ? *cap : first;
    while (c < need) c = ad_size_mul(c, 2);
    *p = ad_realloc(*p, ad_size_mul(c, size));
    *cap = c;
}

static void ix_table_insert(uint32_t *table, size_t cap, uint64_t hash, uint32_t tid)
{
    size_t i = (size_t)hash & (cap - 1);
    while (table[i]) i = (i + 1) & (cap - 1);
    table[i] = tid + 1;
}

/* The id of term[0..len), or UINT32_MAX when the index has no such term. */
static uint32_t ix_lookup(const index_mem *ix, const char *term, size_t len, uint64_t hash)
{
    size_t i = (size_t)hash & (ix->table_cap - 1);
    for (uint32_t slot; (slot = ix->table[i]) != 0; i = (i + 1) & (ix->table_cap - 1)) {
        const ix_term *t = &ix->terms[slot - 1];
        if (t->hash == hash && t->len == len && memcmp(ix->arena + t->off, term, len) == 0)
            return slot - 1;
    }
    return UINT32_MAX;
}

static uint32_t ix_intern(index_mem *ix, const char *term, size_t len)
{
    uint64_t h = text_hash64(term, len, TEXT_HASH_SEED);
    uint32_t tid = ix_lookup(ix, term, len, h);
    if (tid != UINT32_MAX) return tid;
    if ((ix->nterms + 1) * 2 > ix->table_cap) {
        size_t cap = ad_size_mul(ix->table_cap, 2);
        uint32_t *table = ad_calloc(cap, sizeof(*table));
        for (size_t i = 0; i < ix->nterms; i++) ix_table_insert(table, cap, ix->terms[i].hash, (uint32_t)i);
        free(ix->table);
        ix->table = table;
        ix->table_cap = cap;
    }
    ix_grow((void **)&ix->terms, &ix->terms_cap, ix->nterms + 1, sizeof(*ix->terms), 1024);
    ix_grow((void **)&ix->arena, &ix->arena_cap, ad_size_add(ix->arena_len, len), 1, 16384);
    tid = (uint32_t)ix->nterms++;
    ix_term *t = &ix->terms[tid];
    memset(t, 0, sizeof(*t));
    t->hash = h;
    t->off = (uint32_t)ix->arena_len;
    t->len = (uint32_t)len;
    t->last = -1;
    memcpy(ix->arena + ix->arena_len, term, len);
    ix->arena_len += len;
    ix_table_insert(ix->table, ix->table_cap, h, tid);
    return tid;
}

static void ix_on_term(void *ud, const char *term, size_t len, size_t position)
{
    (void)position;
    index_mem *ix = ud;
    uint32_t tid = ix_intern(ix, term, len);
    ix_term *t = &ix->terms[tid];
    if (t->last != (int64_t)ix->npassages) {
        t->last = (int64_t)ix->npassages;
        t->tfq = t->tfb = 0;
        ix_grow((void **)&ix->touched, &ix->touched_cap, ix->ntouched + 1, sizeof(*ix->touched), 256);
        ix->touched[ix->ntouched++] = tid;
    }
    if (ix->field == 0) t->tfq++;
    else t->tfb++;
}

static uint16_t ix_cap16(size_t v)
{
    return (uint16_t)(v > IX_LEN_MAX ? IX_LEN_MAX : v);
}

void index_add(index_mem *ix, const char *question, const char *body)
{
    ix->ntouched = 0;
    ix->field = 0;
    size_t lq = question ? analyzer_terms(ix->an, question, strlen(question), ix_on_term, ix) : 0;
    ix->field = 1;
    size_t lb = analyzer_terms(ix->an, body, strlen(body), ix_on_term, ix);
    ix_grow((void **)&ix->occ, &ix->occ_cap, ad_size_add(ix->nocc, ix->ntouched), sizeof(*ix->occ),
            4096);
    for (size_t i = 0; i < ix->ntouched; i++) {
        ix_term *t = &ix->terms[ix->touched[i]];
        ix_occ *o = &ix->occ[ix->nocc++];
        o->tid = ix->touched[i];
        o->e.ord = (uint32_t)ix->npassages;
        o->e.tfq = ix_cap16(t->tfq);
        o->e.tfb = ix_cap16(t->tfb);
        t->df++;
    }
    uint16_t q16 = ix_cap16(lq), b16 = ix_cap16(lb);
    ix_grow((void **)&ix->lengths, &ix->lengths_cap,
            ad_size_mul(ad_size_add(ix->npassages, 1), IX_LENGTH_BYTES), 1, 4096);
    unsigned char *l = ix->lengths + ix->npassages * IX_LENGTH_BYTES;
    l[0] = (unsigned char)(q16 & 0xFF), l[1] = (unsigned char)(q16 >> 8);
    l[2] = (unsigned char)(b16 & 0xFF), l[3] = (unsigned char)(b16 >> 8);
    ix->question_terms += q16;
    ix->body_terms += b16;
    ix->npassages++;
}

void index_finish(index_mem *ix)
{
    if (ix->finished) return;
    ix->finished = 1;
    /* Group the pairs by term, keeping passage order within a term: a
     * counting sort that moves each pair once to its term's run (no
     * comparisons), then one sequential pass to encode. */
    size_t *start = ad_calloc(ix->nterms ? ix->nterms : 1, sizeof(*start));
    size_t sum = 0;
    for (size_t t = 0; t < ix->nterms; t++) {
        start[t] = sum;
        sum += ix->terms[t].df;
    }
    ix_entry *sorted = ad_malloc(ad_size_mul(ix->nocc ? ix->nocc : 1, sizeof(*sorted)));
    for (size_t i = 0; i < ix->nocc; i++) sorted[start[ix->occ[i].tid]++] = ix->occ[i].e;
    free(start);
    free(ix->occ);
    ix->occ = NULL;
    ix->nocc = ix->occ_cap = 0;
    /* Sizes first, so the postings are written into one exact allocation. */
    size_t total = 0;
    const ix_entry *e = sorted;
    for (size_t t = 0; t < ix->nterms; t++) {
        ix_term *term = &ix->terms[t];
        term->post = total;
        uint32_t prev = 0;
        for (uint32_t k = 0; k < term->df; k++, e++) {
            total += ix_varint_len(e->ord - prev) + ix_varint_len(e->tfq) + ix_varint_len(e->tfb);
            prev = e->ord;
        }
        term->post_len = total - term->post;
    }
    ix->post = ad_malloc(total ? total : 1);
    ix->post_len = total;
    unsigned char *w = ix->post;
    e = sorted;
    for (size_t t = 0; t < ix->nterms; t++) {
        uint32_t prev = 0;
        for (uint32_t k = 0; k < ix->terms[t].df; k++, e++) {
            w = ix_write_varint(w, e->ord - prev);
            w = ix_write_varint(w, e->tfq);
            w = ix_write_varint(w, e->tfb);
            prev = e->ord;
        }
    }
    free(sorted);
    free(ix->touched);
    ix->touched = NULL;
    ix->ntouched = ix->touched_cap = 0;
}

size_t index_passage_count(const index_mem *ix)
{
    return ix->npassages;
}

size_t index_term_count(const index_mem *ix)
{
    return ix->nterms;
}

/* ---- writing ---- */

/* Byte order, shorter first on a common prefix: the order of the stored
 * key, so rows are appended to the B-tree instead of split into it. */
static int ix_row_cmp(const void *a, const void *b)
{
    const index_term_row *x = a, *y = b;
    int c = memcmp(x->term, y->term, x->len < y->len ? x->len : y->len);
    if (c) return c;
    return (x->len > y->len) - (x->len < y->len);
}

void index_rows_init(index_rows *out, const index_mem *ix)
{
    index_term_row *t = ad_malloc(ad_size_mul(ix->nterms ? ix->nterms : 1, sizeof(*t)));
    for (size_t i = 0; i < ix->nterms; i++) {
        const ix_term *term = &ix->terms[i];
        t[i] = (index_term_row){ix->arena + term->off, term->len, ix->post + term->post, term->post_len};
    }
    qsort(t, ix->nterms, sizeof(*t), ix_row_cmp);
    *out = (index_rows){
        .terms = t,
        .nterms = ix->nterms,
        .stats = {.passages = (int64_t)ix->npassages,
                  .question_terms = (int64_t)ix->question_terms,
                  .body_terms = (int64_t)ix->body_terms},
        .lengths = ix->lengths,
        .lengths_len = ix->npassages * IX_LENGTH_BYTES,
    };
}

void index_rows_cleanup(index_rows *r)
{
    free(r->terms);
    r->terms = NULL;
    r->nterms = 0;
}

/* ---- ranking ---- */

/* The prompt's distinct terms, in order of first appearance. */
typedef struct ix_query {
    ad_buf bytes;
    size_t off[INDEX_MAX_QUERY_TERMS], len[INDEX_MAX_QUERY_TERMS];
    size_t n;
} ix_query;

static void ix_query_on_term(void *ud, const char *term, size_t len, size_t position)
{
    (void)position;
    ix_query *q = ud;
    if (q->n == INDEX_MAX_QUERY_TERMS) return;
    for (size_t i = 0; i < q->n; i++)
        if (q->len[i] == len && memcmp(q->bytes.data + q->off[i], term, len) == 0) return;
    q->off[q->n] = q->bytes.len;
    q->len[q->n] = len;
    ad_buf_append(&q->bytes, term, len);
    q->n++;
}

static void ix_query_analyse(ix_query *q, analysis_language l, const char *prompt)
{
    memset(q, 0, sizeof(*q));
    ad_buf_init(&q->bytes);
    analyzer *an = analyzer_new(l);
    analyzer_terms(an, prompt, strlen(prompt), ix_query_on_term, q);
    analyzer_free(an);
}

/* What a ranking reads: the version's statistics and each query term's
 * postings (len 0: the version lacks the term). */
typedef struct ix_source {
    size_t passages;
    uint64_t question_terms, body_terms;
    const unsigned char *lengths;
    size_t lengths_len;
    const unsigned char *post[INDEX_MAX_QUERY_TERMS];
    size_t post_len[INDEX_MAX_QUERY_TERMS];
    size_t nterms;
} ix_source;

typedef struct ix_cursor {
    const unsigned char *p;
    size_t n, i;
    uint64_t ord;          /* current entry; UINT64_MAX once exhausted */
    uint64_t tfq, tfb;
    double idf;
} ix_cursor;

/* Ords strictly increase along a list (ix_rank relies on it): a damaged
 * blob whose next entry does not (a delta of 0, or one that wraps) ends the
 * list there, so no passage is scored twice. */
static void ix_cursor_next(ix_cursor *c)
{
    uint64_t delta;
    if (c->i < c->n && ix_get_varint(c->p, c->n, &c->i, &delta) &&
        ix_get_varint(c->p, c->n, &c->i, &c->tfq) && ix_get_varint(c->p, c->n, &c->i, &c->tfb)) {
        int first = c->ord == UINT64_MAX;
        if (first || (delta > 0 && delta < UINT64_MAX - c->ord)) {
            c->ord = first ? delta : c->ord + delta;
            return;
        }
    }
    c->i = c->n;
    c->ord = UINT64_MAX;
}

/* Counts a postings blob's entries (its df): one varint in three. */
static size_t ix_postings_df(const unsigned char *p, size_t n)
{
    size_t ends = 0;
    for (size_t i = 0; i < n; i++) ends += !(p[i] & 0x80);
    return ends / 3;
}

static void ix_passage_lengths(const ix_source *s, uint64_t ord, double *lq, double *lb)
{
    size_t at = (size_t)ord * IX_LENGTH_BYTES;
    if (ord >= s->passages || at + IX_LENGTH_BYTES > s->lengths_len) {
        *lq = *lb = 0;
        return;
    }
    const unsigned char *l = s->lengths + at;
    *lq = (double)(l[0] | (l[1] << 8));
    *lb = (double)(l[2] | (l[3] << 8));
}

/* Keeps out[0..*n) the best `k` so far, best first; a later passage with an
 * equal score stays behind the earlier one. */
static void ix_top_insert(index_score *out, int *n, int k, int ord, double score)
{
    if (*n == k && score <= out[k - 1].score) return;
    int i = *n < k ? (*n)++ : k - 1;
    while (i > 0 && out[i - 1].score < score) {
        out[i] = out[i - 1];
        i--;
    }
    out[i].ord = ord;
    out[i].score = score;
}

/* Ranks the passages containing any query term, document at a time over the
 * postings (every posting list is in passage order): the cost is the query
 * terms' postings, whatever the version's size. */
static int ix_rank(const ix_source *s, const model_params *p, int k, index_score *out)
{
    if (k < 1 || s->passages == 0) return 0;
    double N = (double)s->passages;
    double avgq = (double)s->question_terms / N, avgb = (double)s->body_terms / N;
    ix_cursor cur[INDEX_MAX_QUERY_TERMS];
    size_t nc = 0;
    for (size_t t = 0; t < s->nterms; t++) {
        if (s->post_len[t] == 0) continue;
        ix_cursor *c = &cur[nc++];
        memset(c, 0, sizeof(*c));
        c->p = s->post[t];
        c->n = s->post_len[t];
        c->ord = UINT64_MAX;
        double df = (double)ix_postings_df(c->p, c->n);
        c->idf = log(1.0 + (N - df + 0.5) / (df + 0.5));
        ix_cursor_next(c);
    }
    int found = 0;
    for (;;) {
        uint64_t ord = UINT64_MAX;
        for (size_t i = 0; i < nc; i++)
            if (cur[i].ord < ord) ord = cur[i].ord;
        if (ord == UINT64_MAX || ord > (uint64_t)INT32_MAX) break;
        double lq, lb;
        ix_passage_lengths(s, ord, &lq, &lb);
        double bq = avgq > 0 ? 1.0 - INDEX_B + INDEX_B * lq / avgq : 1.0;
        double bb = avgb > 0 ? 1.0 - INDEX_B + INDEX_B * lb / avgb : 1.0;
        double score = 0.0;
        for (size_t i = 0; i < nc; i++) {
            ix_cursor *c = &cur[i];
            if (c->ord != ord) continue;
            double tf = p->w_question * (double)c->tfq / bq + p->w_body * (double)c->tfb / bb;
            if (tf > 0) score += c->idf * tf / (INDEX_K1 + tf);
            ix_cursor_next(c);
        }
        if (score > 0) ix_top_insert(out, &found, k, (int)ord, score);
    }
    return found;
}

int index_search_mem(const index_mem *ix, const model_params *p, const char *prompt, int k,
                     index_score *out)
{
    ix_query q;
    ix_query_analyse(&q, analyzer_language(ix->an), prompt);
    ix_source s = {
        .passages = ix->npassages,
        .question_terms = ix->question_terms,
        .body_terms = ix->body_terms,
        .lengths = ix->lengths,
        .lengths_len = ix->npassages * IX_LENGTH_BYTES,
        .nterms = q.n,
    };
    for (size_t t = 0; t < q.n; t++) {
        const char *term = q.bytes.data + q.off[t];
        uint32_t tid = ix_lookup(ix, term, q.len[t], text_hash64(term, q.len[t], TEXT_HASH_SEED));
        if (tid == UINT32_MAX || !ix->finished) continue;
        s.post[t] = ix->post + ix->terms[tid].post;
        s.post_len[t] = ix->terms[tid].post_len;
    }
    int n = ix_rank(&s, p, k, out);
    ad_buf_cleanup(&q.bytes);
    return n;
}

_Static_assert(INDEX_MAX_QUERY_TERMS <= STORAGE_INDEX_MANY, "a query's terms are read in one statement");

int index_search(storage_conn *db, int64_t version_id, analysis_language language,
                 const model_params *p, const char *prompt, int k, passage_hit *hits, int *count,
                 ad_err *e)
{
    *count = 0;
    ix_query q;
    ix_query_analyse(&q, language, prompt);
    if (q.n == 0 || k < 1) {
        ad_buf_cleanup(&q.bytes);
        return 0;
    }
    ad_buf lengths, post;
    ad_buf_init(&lengths);
    ad_buf_init(&post);
    index_stats_row st;
    int rc = storage_index_get_stats(db, version_id, &st, &lengths, e);
    size_t off[INDEX_MAX_QUERY_TERMS], size[INDEX_MAX_QUERY_TERMS];
    const char *terms[INDEX_MAX_QUERY_TERMS];
    for (size_t t = 0; t < q.n; t++) terms[t] = q.bytes.data + q.off[t];
    if (rc == 0)
        rc = storage_index_get_postings_many(db, version_id, terms, q.len, q.n, &post, off, size, e);
    index_score *top = ad_malloc(ad_size_mul((size_t)k, sizeof(*top)));
    int n = 0;
    if (rc == 0) {
        ix_source s = {
            .passages = st.passages > 0 ? (size_t)st.passages : 0,
            .question_terms = st.question_terms > 0 ? (uint64_t)st.question_terms : 0,
            .body_terms = st.body_terms > 0 ? (uint64_t)st.body_terms : 0,
            .lengths = (const unsigned char *)lengths.data,
            .lengths_len = lengths.len,
            .nterms = q.n,
        };
        for (size_t t = 0; t < q.n; t++) {
            s.post_len[t] = size[t];
            s.post[t] = size[t] ? (const unsigned char *)post.data + off[t] : NULL;
        }
        n = ix_rank(&s, p, k, top);
    }
    ad_buf_cleanup(&lengths);
    ad_buf_cleanup(&post);
    ad_buf_cleanup(&q.bytes);
    /* The ranked passages, read STORAGE_INDEX_MANY at a time into hits[]
     * (k slots) in rank order; one gone since the ranking (no snapshot) is
     * skipped and the later ones move up. */
    int kept = 0;
    for (int i = 0; rc == 0 && i < n; i += STORAGE_INDEX_MANY) {
        int m = n - i < STORAGE_INDEX_MANY ? n - i : STORAGE_INDEX_MANY;
        int ords[STORAGE_INDEX_MANY];
        for (int j = 0; j < m; j++) ords[j] = top[i + j].ord;
        rc = storage_index_get_passages(db, version_id, ords, m, &hits[kept], e);
        if (rc < 0) break;
        int w = kept;
        for (int j = 0; j < m; j++) {
            if (!hits[kept + j].body) continue;
            hits[kept + j].score = top[i + j].score;
            hits[w++] = hits[kept + j];
        }
        kept = w;
    }
    free(top);
    if (rc < 0) {
        passage_hits_cleanup(hits, kept);
        return rc;
    }
    *count = kept;
    return 0;
}
