/*
 * Fuzz target: text analysis (model/analysis.c, model/stopwords.c) on
 * arbitrary bytes, as material to index and as a prompt.
 *
 * Input: byte 0 chooses the language; the rest is the text. Invariants
 * checked: every term is 1..ANALYSIS_MAX_TERM bytes of valid UTF-8, terms
 * come in strictly increasing positions, the count returned is the count
 * delivered, the same text analysed twice by one analyzer (its token cache
 * warm the second time) gives the same terms, and detection names a language.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "model/analysis.h"
#include "model/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
    FUZZ_ASSERT(analyzer_terms(a, in, n, fuzz_term, &again) == again.count);
    FUZZ_ASSERT(first.count == again.count && first.hash == again.hash);
    analyzer_free(a);

    FUZZ_ASSERT((unsigned)analysis_detect(in, n) < ANALYSIS_LANGUAGE_COUNT);
    return 0;
}
