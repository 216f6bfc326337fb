#include "model/perturb.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "model/text.h"

typedef struct word {
    size_t offset;
    size_t length;
    int content; /* holds a token that is not a stopword */
} word;

typedef struct prompt_words {
    const char *text;
    word *items;
    size_t count;
    size_t content;
} prompt_words;

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* A uniform-enough draw in [0, bound) for small bounds; bound > 0. */
static size_t draw(uint64_t *state, size_t bound)
{
    return (size_t)(splitmix64(state) % bound);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int word_has_content(const char *w, size_t n)
{
    size_t pos = 0, off, len;
    char low[16];
    while (text_next_token(w, n, &pos, &off, &len)) {
        if (len >= sizeof(low)) return 1;
        text_lower_copy(low, w + off, len);
        if (!text_is_stopword(low, len)) return 1;
    }
    return 0;
}

static void split_words(const char *s, size_t n, prompt_words *pw)
{
    pw->text = s;
    pw->count = 0;
    pw->content = 0;
    /* At most one word per two bytes, plus one. */
    pw->items = ad_malloc(ad_size_mul(n / 2 + 1, sizeof(word)));
    size_t i = 0;
    while (i < n) {
        while (i < n && is_space(s[i])) i++;
        if (i == n) break;
        size_t start = i;
        while (i < n && !is_space(s[i])) i++;
        word *w = &pw->items[pw->count++];
        w->offset = start;
        w->length = i - start;
        w->content = word_has_content(s + start, w->length);
        pw->content += (size_t)w->content;
    }
}

/* Joins the words whose `keep` flag is set (all when keep is NULL), in the
 * order given by `order` (identity when NULL). */
static char *join_words(const prompt_words *pw, const unsigned char *keep, const size_t *order)
{
    ad_buf b;
    ad_buf_init(&b);
    for (size_t k = 0; k < pw->count; k++) {
        size_t i = order ? order[k] : k;
        if (keep && !keep[i]) continue;
        if (b.len) ad_buf_putc(&b, ' ');
        ad_buf_append(&b, pw->text + pw->items[i].offset, pw->items[i].length);
    }
    return ad_buf_steal(&b, NULL);
}

static char *perturb_drop(const prompt_words *pw, uint64_t *rng)
{
    if (pw->count < 2) return NULL;
    size_t max_drop = pw->content * 2 / 5; /* keep at least 60% of content words */
    int want_content = max_drop > 0;
    size_t pool_n = want_content ? pw->content : pw->count - pw->content;
    if (pool_n == 0) return NULL;
    size_t *pool = ad_malloc(ad_size_mul(pool_n, sizeof(size_t)));
    size_t k = 0;
    for (size_t i = 0; i < pw->count; i++)
        if (pw->items[i].content == want_content) pool[k++] = i;
    size_t drop = want_content ? 1 + draw(rng, max_drop) : 1;
    unsigned char *keep = ad_malloc(pw->count);
    memset(keep, 1, pw->count);
    for (size_t d = 0; d < drop; d++) { /* partial Fisher-Yates over the pool */
        size_t j = d + draw(rng, pool_n - d);
        size_t t = pool[d];
        pool[d] = pool[j];
        pool[j] = t;
        keep[pool[d]] = 0;
    }
    char *out = join_words(pw, keep, NULL);
    free(keep);
    free(pool);
    return out;
}

static int same_word(const prompt_words *pw, size_t a, size_t b)
{
    const word *x = &pw->items[a], *y = &pw->items[b];
    return x->length == y->length && memcmp(pw->text + x->offset, pw->text + y->offset,
                                            x->length) == 0;
}

static char *perturb_swap(const prompt_words *pw, uint64_t *rng)
{
    if (pw->count < 2) return NULL;
    size_t pairs = pw->count - 1, start = draw(rng, pairs);
    for (size_t t = 0; t < pairs; t++) {
        size_t i = (start + t) % pairs;
        if (same_word(pw, i, i + 1)) continue;
        size_t *order = ad_malloc(ad_size_mul(pw->count, sizeof(size_t)));
        for (size_t k = 0; k < pw->count; k++) order[k] = k;
        order[i] = i + 1;
        order[i + 1] = i;
        char *out = join_words(pw, NULL, order);
        free(order);
        return out;
    }
    return NULL;
}

/* Recases ASCII letters of a joined prompt: 0 lower, 1 upper, 2 capitalized words. */
static void recase(char *s, int variant)
{
    int word_start = 1;
    for (; *s; s++) {
        char c = *s;
        int upper = variant == 1 || (variant == 2 && word_start);
        if (upper && c >= 'a' && c <= 'z') *s = (char)(c - 32);
        else if (!upper && variant == 0 && c >= 'A' && c <= 'Z') *s = (char)(c + 32);
        word_start = c == ' ';
    }
}

static char *perturb_case(const prompt_words *pw, const char *canonical, uint64_t *rng)
{
    int first = (int)draw(rng, 3);
    for (int t = 0; t < 3; t++) {
        char *out = join_words(pw, NULL, NULL);
        recase(out, (first + t) % 3);
        if (strcmp(out, canonical) != 0) return out;
        free(out);
    }
    return NULL;
}

char *perturb_prompt(const char *prompt, size_t n, uint64_t seed, perturb_op *op)
{
    prompt_words pw;
    split_words(prompt, n, &pw);
    char *canonical = join_words(&pw, NULL, NULL);
    uint64_t rng = seed ^ text_hash64(prompt, n, TEXT_HASH_SEED);
    static const perturb_op ops[] = {PERTURB_DROP, PERTURB_SWAP, PERTURB_CASE};
    size_t first = draw(&rng, 3);
    char *out = NULL;
    perturb_op done = PERTURB_NONE;
    for (size_t t = 0; t < 3 && !out; t++) {
        perturb_op o = ops[(first + t) % 3];
        if (o == PERTURB_DROP) out = perturb_drop(&pw, &rng);
        else if (o == PERTURB_SWAP) out = perturb_swap(&pw, &rng);
        else out = perturb_case(&pw, canonical, &rng);
        if (out && strcmp(out, canonical) == 0) {
            free(out);
            out = NULL;
        }
        if (out) done = o;
    }
    free(pw.items);
    if (op) *op = done;
    if (!out) return canonical;
    free(canonical);
    return out;
}

const char *perturb_op_name(perturb_op op)
{
    switch (op) {
    case PERTURB_DROP: return "drop";
    case PERTURB_SWAP: return "swap";
    case PERTURB_CASE: return "case";
    case PERTURB_NONE: break;
    }
    return "none";
}
