/*
 * Fuzz target: text analysis (model/analysis.c, model/stopwords.c) on
 * arbitrary bytes, as material to index and as a prompt.
 *
 * Input: byte 0 chooses the language; the rest is the text. Invariants
 * checked: every term is 1..ANALYSIS_MAX_TERM bytes of valid UTF-8, terms
 * come in strictly increasing positions, the count returned is the count
 * delivered, the text gives the same terms to a fresh analyzer and to one
 * whose token cache a long text has filled (inputs are shorter than the text
 * that turns the cache on), and detection names a language.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "model/analysis.h"
#include "model/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Longer than the text for which an analyzer starts its token cache
 * (CACHE_MIN_TEXT in model/analysis.c). */
#define FUZZ_WARM_TEXT (20 * 1024)

#define FUZZ_ASSERT(c) ((c) ? (void)0 : abort())

typedef struct fuzz_terms {
    size_t count;
    size_t last_position;
    uint64_t hash;
} fuzz_terms;

static void fuzz_term(void *ud, const char *term, size_t len, size_t position)
{
    fuzz_terms *t = ud;
    FUZZ_ASSERT(len > 0 && len <= ANALYSIS_MAX_TERM);
    FUZZ_ASSERT(ad_utf8_validate(term, len, NULL) == 0);
    FUZZ_ASSERT(t->count == 0 || position > t->last_position);
    t->last_position = position;
    t->count++;
    t->hash = text_hash64(term, len, t->hash);
    t->hash = text_hash64(&position, sizeof(position), t->hash);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    analysis_language l = (analysis_language)(data[0] % ANALYSIS_LANGUAGE_COUNT);
    const char *in = (const char *)data + 1;
    size_t n = size - 1;

    analyzer *a = analyzer_new(l);
    fuzz_terms first = {0, 0, TEXT_HASH_SEED}, again = {0, 0, TEXT_HASH_SEED};
    FUZZ_ASSERT(analyzer_terms(a, in, n, fuzz_term, &first) == first.count);
    analyzer_free(a);

    /* The input repeated fills the cache with its tokens (and with the ones
     * the joins make); then the input alone must give the same terms. */
    analyzer *warm = analyzer_new(l);
    if (n > 0) {
        char *big = malloc(FUZZ_WARM_TEXT);
        FUZZ_ASSERT(big != NULL);
        for (size_t i = 0; i < FUZZ_WARM_TEXT; i += n)
            memcpy(big + i, in, n < FUZZ_WARM_TEXT - i ? n : FUZZ_WARM_TEXT - i);
        fuzz_terms ignored = {0, 0, TEXT_HASH_SEED};
        analyzer_terms(warm, big, FUZZ_WARM_TEXT, fuzz_term, &ignored);
        free(big);
    }
    FUZZ_ASSERT(analyzer_terms(warm, in, n, fuzz_term, &again) == again.count);
    FUZZ_ASSERT(first.count == again.count && first.hash == again.hash);
    analyzer_free(warm);

    FUZZ_ASSERT((unsigned)analysis_detect(in, n) < ANALYSIS_LANGUAGE_COUNT);
    return 0;
}
