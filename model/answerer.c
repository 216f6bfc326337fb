#include "model/answerer.h"

#include <string.h>

#include "base/buf.h"
#include "model/index.h"

/* The prompt's distinct terms, and which of them the best passage holds. */
typedef struct coverage_terms {
    ad_buf text;            /* the terms, each followed by a NUL */
    size_t offsets[64];
    unsigned char found[64];
    size_t count;
} coverage_terms;

static void coverage_add_prompt_term(void *ud, const char *term, size_t len, size_t position)
{
    (void)position;
    coverage_terms *c = ud;
    for (size_t i = 0; i < c->count; i++)
        if (strlen(c->text.data + c->offsets[i]) == len && memcmp(c->text.data + c->offsets[i], term, len) == 0)
            return;
    if (c->count == sizeof(c->offsets) / sizeof(c->offsets[0])) return;
    c->offsets[c->count++] = c->text.len;
    ad_buf_append(&c->text, term, len);
    ad_buf_putc(&c->text, '\0');
}

static void coverage_mark_passage_term(void *ud, const char *term, size_t len, size_t position)
{
    (void)position;
    coverage_terms *c = ud;
    for (size_t i = 0; i < c->count; i++)
        if (!c->found[i] && strlen(c->text.data + c->offsets[i]) == len &&
            memcmp(c->text.data + c->offsets[i], term, len) == 0)
            c->found[i] = 1;
}

/* Fraction of the prompt's distinct terms (analysed in the version's
 * language, as retrieval analyses them, so an inflected or unaccented word
 * counts as found) that the passage's question or body holds. */
static double answerer_coverage(analysis_language language, const char *prompt,
                                const char *question, const char *body)
{
    coverage_terms c;
    memset(&c, 0, sizeof(c));
    ad_buf_init(&c.text);
    analyzer *a = analyzer_new(language);
    analyzer_terms(a, prompt, strlen(prompt), coverage_add_prompt_term, &c);
    if (question) analyzer_terms(a, question, strlen(question), coverage_mark_passage_term, &c);
    if (body) analyzer_terms(a, body, strlen(body), coverage_mark_passage_term, &c);
    analyzer_free(a);
    size_t found = 0;
    for (size_t i = 0; i < c.count; i++) found += c.found[i];
    ad_buf_cleanup(&c.text);
    return c.count ? (double)found / (double)c.count : 0.0;
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
    double coverage = answerer_coverage(language, prompt, best->question, best->body);
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
