/*
 * Fuzz target: the text model (model/text.c, passages.c, stats.c, metrics.c,
 * perturb.c, index.c) on arbitrary bytes, as training material, prompts and
 * answers.
 *
 * Input: byte 0 and 1 choose the passage sizes, byte 2 the overlap and the
 * index's analysis language; the rest is the text. Invariants checked: the
 * normalized text is valid UTF-8 and no longer than the input; every passage
 * is non-empty, within max_chars, inside the text, cut on UTF-8 boundaries,
 * in order; every score is in [0, 1]; a search over the passages returns
 * passages that exist, with positive scores, best first.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "model/index.h"
#include "model/metrics.h"
#include "model/passages.h"
#include "model/perturb.h"
#include "model/stats.h"
#include "model/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(c) ((c) ? (void)0 : abort())
#define FUZZ_EDIT_MAX 128

static int fuzz_is_cont(const char *s, size_t n, size_t at)
{
    return at < n && ((unsigned char)s[at] & 0xC0) == 0x80;
}

static void fuzz_check_spans(const char *text, size_t n, const passages_list *l, size_t max)
{
    size_t prev = 0;
    for (size_t i = 0; i < l->count; i++) {
        size_t off = l->items[i].offset, len = l->items[i].length;
        FUZZ_ASSERT(len > 0 && len <= max);
        FUZZ_ASSERT(off <= n && len <= n - off);
        FUZZ_ASSERT(off >= prev);
        FUZZ_ASSERT(!fuzz_is_cont(text, n, off) && !fuzz_is_cont(text, n, off + len));
        prev = off;
    }
}

static void fuzz_check_scores(const metrics_scores *s)
{
    const double v[] = {s->token_f1, s->jaccard, s->containment, s->char_similarity, s->overall};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        FUZZ_ASSERT(v[i] >= 0.0 && v[i] <= 1.0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) return 0;
    passages_params pp;
    passages_params_default(&pp);
    /* Small sizes too, where sentences have to be cut. */
    pp.target_chars = 1 + data[0] * 4u;
    pp.max_chars = pp.target_chars + data[1] * 2u;
    if (pp.max_chars < 4) pp.max_chars = 4;
    pp.overlap_sentences = data[2] & 3;
    analysis_language lang = (analysis_language)((data[2] >> 2) % ANALYSIS_LANGUAGE_COUNT);
    const char *in = (const char *)data + 3;
    size_t n = size - 3;

    size_t bad = 0;
    int valid = ad_utf8_validate(in, n, &bad) == 0;
    FUZZ_ASSERT(valid || bad < n);

    ad_buf norm;
    ad_buf_init(&norm);
    ad_err e = {0};
    int rc = text_normalize(in, n, &norm, &e);
    FUZZ_ASSERT((rc == 0) == valid);
    FUZZ_ASSERT(rc == 0 || (norm.len == 0 && e.msg[0]));
    FUZZ_ASSERT(norm.len <= n);
    if (rc == 0) FUZZ_ASSERT(ad_utf8_validate(norm.data ? norm.data : "", norm.len, NULL) == 0);
    const char *t = norm.data ? norm.data : "";
    size_t tn = norm.len;

    passages_list sentences, passages;
    passages_list_init(&sentences);
    passages_list_init(&passages);
    passages_sentences(t, tn, pp.max_chars, &sentences);
    fuzz_check_spans(t, tn, &sentences, pp.max_chars);
    FUZZ_ASSERT(passages_split(t, tn, &pp, &passages, &e) == 0);
    fuzz_check_spans(t, tn, &passages, pp.max_chars);

    stats st;
    stats_init(&st, 64);
    stats_add_text(&st, t, tn);
    index_mem *ix = index_new(lang);
    for (size_t i = 0; i < passages.count; i++) {
        const char *p = t + passages.items[i].offset;
        size_t pn = passages.items[i].length;
        char *body = ad_strndup(p, pn);
        index_add(ix, i & 1 ? body : NULL, body);
        free(body);
        stats_add_passage(&st, p, pn);
        (void)passages_fingerprint(p, pn);
        char *q = passages_derive_question(p, pn);
        if (q) FUZZ_ASSERT(ad_utf8_validate(q, strlen(q), NULL) == 0);
        free(q);
    }
    FUZZ_ASSERT(st.vocabulary_size <= 64);
    ad_buf json;
    ad_buf_init(&json);
    stats_to_json(&st, 5, &json);
    FUZZ_ASSERT(json.len > 0);
    ad_buf_cleanup(&json);
    stats_cleanup(&st);

    /* The raw input as a prompt: a search of the passages, perturbation. */
    index_finish(ix);
    char *prompt = ad_strndup(in, n);
    model_params mp;
    model_params_default(&mp);
    index_score top[5];
    int hits = index_search_mem(ix, &mp, prompt, 5, top);
    FUZZ_ASSERT(hits >= 0 && hits <= 5);
    for (int i = 0; i < hits; i++) {
        FUZZ_ASSERT(top[i].ord >= 0 && (size_t)top[i].ord < passages.count && top[i].score > 0);
        FUZZ_ASSERT(i == 0 || top[i - 1].score >= top[i].score);
    }
    free(prompt);
    index_free(ix);
    perturb_op op = PERTURB_NONE;
    char *variant = perturb_prompt(in, n, (uint64_t)data[0] << 8 | data[1], &op);
    FUZZ_ASSERT(variant != NULL && perturb_op_name(op) != NULL);
    free(variant);

    /* Prediction and expected answer: the two halves. The edit distance is
     * quadratic and its inner loop is all instrumented compares, so it sees
     * at most FUZZ_EDIT_MAX bytes of each half (its METRICS_CHAR_CAP cut is
     * left to the unit tests); the token metrics see everything. */
    size_t half = n / 2, rest = n - half;
    metrics_scores s;
    metrics_compare(in, half < FUZZ_EDIT_MAX ? half : FUZZ_EDIT_MAX, in + half,
                    rest < FUZZ_EDIT_MAX ? rest : FUZZ_EDIT_MAX, &s);
    fuzz_check_scores(&s);
    metrics_compare_tokens(in, half, in + half, rest, &s);
    fuzz_check_scores(&s);

    passages_list_cleanup(&sentences);
    passages_list_cleanup(&passages);
    ad_buf_cleanup(&norm);
    return 0;
}
