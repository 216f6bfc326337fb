#include "model/metrics.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "model/text.h"

typedef struct tok_ref {
    const char *p;
    size_t len;
} tok_ref;

static int tok_ref_cmp(const void *a, const void *b)
{
    const tok_ref *x = a, *y = b;
    int c = memcmp(x->p, y->p, x->len < y->len ? x->len : y->len);
    if (c) return c;
    return (x->len > y->len) - (x->len < y->len);
}

/* The tokens of one text, sorted: all of them, and the distinct content ones. */
typedef struct token_bag {
    text_tokens t;
    tok_ref *all;
    size_t nall;
    tok_ref *content; /* distinct, non-stopword */
    size_t ncontent;
    tok_ref *distinct; /* distinct, all tokens */
    size_t ndistinct;
} token_bag;

static size_t unique_sorted(tok_ref *v, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || tok_ref_cmp(&v[k - 1], &v[i]) != 0) v[k++] = v[i];
    return k;
}

static void bag_build(token_bag *b, const char *s, size_t n)
{
    text_tokens_init(&b->t);
    size_t count = text_tokenize(s, n, &b->t);
    size_t bytes = ad_size_mul(count, sizeof(tok_ref));
    b->all = ad_malloc(bytes);
    b->content = ad_malloc(bytes);
    b->distinct = ad_malloc(bytes);
    b->nall = count;
    b->ncontent = 0;
    for (size_t i = 0; i < count; i++) {
        tok_ref r = {b->t.lower + b->t.items[i].offset, b->t.items[i].length};
        b->all[i] = r;
        if (!text_is_stopword(r.p, r.len)) b->content[b->ncontent++] = r;
    }
    qsort(b->all, b->nall, sizeof(tok_ref), tok_ref_cmp);
    qsort(b->content, b->ncontent, sizeof(tok_ref), tok_ref_cmp);
    b->ncontent = unique_sorted(b->content, b->ncontent);
    if (count) memcpy(b->distinct, b->all, bytes);
    b->ndistinct = unique_sorted(b->distinct, count);
}

static void bag_free(token_bag *b)
{
    free(b->all);
    free(b->content);
    free(b->distinct);
    text_tokens_cleanup(&b->t);
}

/* Size of the (multi)set intersection of two sorted arrays. */
static size_t intersection(const tok_ref *a, size_t na, const tok_ref *b, size_t nb)
{
    size_t i = 0, j = 0, common = 0;
    while (i < na && j < nb) {
        int c = tok_ref_cmp(&a[i], &b[j]);
        if (c == 0) {
            common++;
            i++;
            j++;
        } else if (c < 0) {
            i++;
        } else {
            j++;
        }
    }
    return common;
}

static double bag_f1(const token_bag *p, const token_bag *e)
{
    if (p->nall == 0 || e->nall == 0) return p->nall == e->nall ? 1.0 : 0.0;
    size_t common = intersection(p->all, p->nall, e->all, e->nall);
    if (common == 0) return 0.0;
    double precision = (double)common / (double)p->nall;
    double recall = (double)common / (double)e->nall;
    return 2.0 * precision * recall / (precision + recall);
}

/* Picks the token sets Jaccard and containment compare (see metrics.h). */
static void bag_sets(const token_bag *p, const token_bag *e, const tok_ref **ps, size_t *pn,
                     const tok_ref **es, size_t *en)
{
    int content = p->ncontent > 0 && e->ncontent > 0;
    *ps = content ? p->content : p->distinct;
    *pn = content ? p->ncontent : p->ndistinct;
    *es = content ? e->content : e->distinct;
    *en = content ? e->ncontent : e->ndistinct;
}

static double bag_jaccard(const token_bag *p, const token_bag *e)
{
    const tok_ref *ps, *es;
    size_t pn, en;
    bag_sets(p, e, &ps, &pn, &es, &en);
    if (pn == 0 || en == 0) return pn == en ? 1.0 : 0.0;
    size_t common = intersection(ps, pn, es, en);
    return (double)common / (double)(pn + en - common);
}

static double bag_containment(const token_bag *p, const token_bag *e)
{
    const tok_ref *ps, *es;
    size_t pn, en;
    bag_sets(p, e, &ps, &pn, &es, &en);
    if (pn == 0 || en == 0) return pn == en ? 1.0 : 0.0;
    return (double)intersection(ps, pn, es, en) / (double)en;
}

double metrics_token_f1(const char *pred, size_t pn, const char *expected, size_t en)
{
    metrics_scores s;
    metrics_compare_tokens(pred, pn, expected, en, &s);
    return s.token_f1;
}

double metrics_jaccard(const char *pred, size_t pn, const char *expected, size_t en)
{
    metrics_scores s;
    metrics_compare_tokens(pred, pn, expected, en, &s);
    return s.jaccard;
}

double metrics_containment(const char *pred, size_t pn, const char *expected, size_t en)
{
    metrics_scores s;
    metrics_compare_tokens(pred, pn, expected, en, &s);
    return s.containment;
}

/* Decodes s[0..n) into at most `cap` comparison units: code points, ASCII
 * lowercased, whitespace runs as one space, trimmed. A byte that does not
 * start a valid sequence becomes a unit of its own outside Unicode's range. */
static size_t char_units(const char *s, size_t n, uint32_t *out, size_t cap)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t k = 0, i = 0;
    int pending_space = 0;
    while (i < n && k < cap) {
        unsigned char c = u[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            pending_space = k > 0;
            i++;
            continue;
        }
        uint32_t cp;
        size_t len = 1;
        if (c < 0x80) {
            cp = (c >= 'A' && c <= 'Z') ? (uint32_t)(c | 0x20) : c;
        } else {
            len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
            size_t bad = 0;
            if (len == 1 || ad_utf8_validate(s + i, n - i < len ? n - i : len, &bad) != 0) {
                cp = 0x110000u + c;
                len = 1;
            } else {
                cp = c & (0xFFu >> (len + 1));
                for (size_t j = 1; j < len; j++) cp = (cp << 6) | (u[i + j] & 0x3Fu);
            }
        }
        if (pending_space) {
            out[k++] = ' ';
            pending_space = 0;
            if (k == cap) break;
        }
        out[k++] = cp;
        i += len;
    }
    return k;
}

double metrics_char_similarity(const char *pred, size_t pn, const char *expected, size_t en)
{
    uint32_t *a = ad_malloc(METRICS_CHAR_CAP * sizeof(uint32_t));
    uint32_t *b = ad_malloc(METRICS_CHAR_CAP * sizeof(uint32_t));
    size_t na = char_units(pred, pn, a, METRICS_CHAR_CAP);
    size_t nb = char_units(expected, en, b, METRICS_CHAR_CAP);
    double r;
    if (na == nb && memcmp(a, b, na * sizeof(uint32_t)) == 0) {
        r = 1.0; /* the common case of an exact answer needs no edit table */
    } else if (na == 0 || nb == 0) {
        r = 0.0;
    } else {
        /* Two rows of the edit-distance table; values fit in uint32_t. */
        uint32_t *prev = ad_malloc((nb + 1) * sizeof(uint32_t));
        uint32_t *cur = ad_malloc((nb + 1) * sizeof(uint32_t));
        for (size_t j = 0; j <= nb; j++) prev[j] = (uint32_t)j;
        for (size_t i = 1; i <= na; i++) {
            cur[0] = (uint32_t)i;
            for (size_t j = 1; j <= nb; j++) {
                uint32_t best = prev[j - 1] + (a[i - 1] != b[j - 1]);
                if (prev[j] + 1 < best) best = prev[j] + 1;
                if (cur[j - 1] + 1 < best) best = cur[j - 1] + 1;
                cur[j] = best;
            }
            uint32_t *t = prev;
            prev = cur;
            cur = t;
        }
        size_t longer = na > nb ? na : nb;
        r = 1.0 - (double)prev[nb] / (double)longer;
        free(prev);
        free(cur);
    }
    free(a);
    free(b);
    return r;
}

double metrics_overall(const metrics_scores *s)
{
    return 0.4 * s->token_f1 + 0.2 * s->jaccard + 0.2 * s->containment +
           0.2 * s->char_similarity;
}

void metrics_compare_tokens(const char *pred, size_t pn, const char *expected, size_t en,
                            metrics_scores *out)
{
    token_bag p, e;
    bag_build(&p, pred, pn);
    bag_build(&e, expected, en);
    out->token_f1 = bag_f1(&p, &e);
    out->jaccard = bag_jaccard(&p, &e);
    out->containment = bag_containment(&p, &e);
    bag_free(&p);
    bag_free(&e);
    out->char_similarity = 0;
    out->overall = (out->token_f1 + out->jaccard + out->containment) / 3.0;
}

void metrics_compare(const char *pred, size_t pn, const char *expected, size_t en,
                     metrics_scores *out)
{
    metrics_compare_tokens(pred, pn, expected, en, out);
    out->char_similarity = metrics_char_similarity(pred, pn, expected, en);
    out->overall = metrics_overall(out);
}

const char *metrics_quality_label(double score)
{
    if (score >= 0.8) return "HIGH";
    if (score >= 0.5) return "MEDIUM";
    return "LOW";
}

void metrics_retrieval_init(metrics_retrieval *r)
{
    memset(r, 0, sizeof(*r));
}

void metrics_retrieval_add(metrics_retrieval *r, size_t rank)
{
    r->queries++;
    if (rank == 0) return;
    r->hits_at_1 += rank == 1;
    r->hits_at_3 += rank <= 3;
    r->reciprocal_rank_sum += 1.0 / (double)rank;
}

double metrics_retrieval_hit_at_1(const metrics_retrieval *r)
{
    return r->queries ? (double)r->hits_at_1 / (double)r->queries : 0.0;
}

double metrics_retrieval_hit_at_3(const metrics_retrieval *r)
{
    return r->queries ? (double)r->hits_at_3 / (double)r->queries : 0.0;
}

double metrics_retrieval_mrr(const metrics_retrieval *r)
{
    return r->queries ? r->reciprocal_rank_sum / (double)r->queries : 0.0;
}
