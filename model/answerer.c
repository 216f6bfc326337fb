#include "model/answerer.h"

#include <string.h>

#include "base/buf.h"
#include "model/index.h"
#include "model/text.h"

/* Fraction of the prompt's distinct content words found in `text`. */
static double answerer_coverage(const char *prompt, const char *question, const char *body)
{
    text_tokens pt, ht;
    text_tokens_init(&pt);
    text_tokens_init(&ht);
    text_tokenize(prompt, strlen(prompt), &pt);
    ad_buf all;
    ad_buf_init(&all);
    ad_buf_puts(&all, question ? question : "");
    ad_buf_putc(&all, ' ');
    ad_buf_puts(&all, body ? body : "");
    text_tokenize(all.data, all.len, &ht);
    size_t total = 0, found = 0;
    for (size_t i = 0; i < pt.count; i++) {
        const char *w = pt.lower + pt.items[i].offset;
        size_t wl = pt.items[i].length;
        if (text_is_stopword(w, wl)) continue;
        int dup = 0;
        for (size_t j = 0; j < i && !dup; j++)
            dup = pt.items[j].length == wl && memcmp(pt.lower + pt.items[j].offset, w, wl) == 0;
        if (dup) continue;
        total++;
        for (size_t j = 0; j < ht.count; j++) {
            if (ht.items[j].length == wl && memcmp(ht.lower + ht.items[j].offset, w, wl) == 0) {
                found++;
                break;
            }
        }
    }
    text_tokens_cleanup(&pt);
    text_tokens_cleanup(&ht);
    ad_buf_cleanup(&all);
    return total ? (double)found / (double)total : 0.0;
}

analysis_language answerer_language(const char *code)
{
    analysis_language l = ANALYSIS_EN;
    if (code && analysis_language_from_code(code, &l) < 0) l = ANALYSIS_EN;
    return l;
}

int answerer_answer(storage_conn *db, int64_t version_id, analysis_language language,
                    const model_params *p, const char *prompt, int k, answerer_fields fields,
                    answerer_result *out, ad_err *e)
{
    memset(out, 0, sizeof(*out));
    if (k < 1) k = 1;
    if (k > ANSWERER_MAX_HITS) k = ANSWERER_MAX_HITS;
    model_params search = *p;
    if (fields == ANSWERER_BODY_ONLY) search.w_question = 0.0;
    /* One extra hit gives the margin between the best and the runner-up. */
    int want = k < ANSWERER_MAX_HITS ? k + 1 : k;
    int rc = index_search(db, version_id, language, &search, prompt, want, out->hits, &out->nhits, e);
    if (rc < 0 || out->nhits == 0) return rc;

    const passage_hit *best = &out->hits[0];
    out->text = best->answer ? best->answer : best->body;
    double coverage = answerer_coverage(prompt, best->question, best->body);
    double margin = 1.0;
    if (out->nhits > 1 && best->score > 0) margin = 1.0 - out->hits[1].score / best->score;
    if (margin < 0) margin = 0;
    out->confidence = 0.75 * coverage + 0.25 * margin;
    if (out->nhits > k) {
        passage_hits_cleanup(&out->hits[k], out->nhits - k);
        out->nhits = k;
    }
    return 0;
}

void answerer_result_cleanup(answerer_result *a)
{
    passage_hits_cleanup(a->hits, a->nhits);
    a->nhits = 0;
    a->text = NULL;
}
