#include "model/passages.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "model/text.h"

void passages_params_default(passages_params *p)
{
    p->target_chars = PASSAGES_DEFAULT_TARGET;
    p->max_chars = PASSAGES_DEFAULT_MAX;
    p->overlap_sentences = PASSAGES_DEFAULT_OVERLAP;
}

void passages_list_init(passages_list *l)
{
    l->items = NULL;
    l->count = 0;
    l->cap = 0;
}

void passages_list_cleanup(passages_list *l)
{
    free(l->items);
    passages_list_init(l);
}

static void list_push(passages_list *l, size_t offset, size_t length)
{
    if (l->count == l->cap) {
        size_t cap = l->cap ? ad_size_mul(l->cap, 2) : 32;
        l->items = ad_realloc(l->items, ad_size_mul(cap, sizeof(*l->items)));
        l->cap = cap;
    }
    l->items[l->count].offset = offset;
    l->items[l->count].length = length;
    l->count++;
}

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

static int is_ascii_alpha(unsigned char c)
{
    return (unsigned)((c | 0x20) - 'a') < 26u;
}

/* Pushes u[a..b) trimmed, cut into pieces of at most max bytes: at the last
 * whitespace that fits, else at the last UTF-8 character boundary. Each byte
 * is scanned a bounded number of times, so this stays O(b - a). */
static void push_sentence(const unsigned char *u, size_t a, size_t b, size_t max,
                          passages_list *out)
{
    while (a < b && is_ws(u[a])) a++;
    while (b > a && is_ws(u[b - 1])) b--;
    while (b - a > max) {
        size_t limit = a + max; /* < b: the piece is u[a..cut) */
        size_t cut = limit;
        while (cut > a && !is_ws(u[cut])) cut--;
        if (cut == a) {
            cut = limit;
            while (cut > a && (u[cut] & 0xC0) == 0x80) cut--;
            if (cut == a) cut = limit; /* not UTF-8 at all; any cut will do */
        }
        size_t end = cut;
        while (end > a && is_ws(u[end - 1])) end--;
        list_push(out, a, end - a);
        a = cut;
        while (a < b && is_ws(u[a])) a++;
    }
    if (b > a) list_push(out, a, b - a);
}

/* Closing quotes and brackets that may follow a sentence's final mark. */
static size_t skip_closers(const unsigned char *u, size_t j, size_t n)
{
    for (;;) {
        if (j < n && (u[j] == '"' || u[j] == '\'' || u[j] == ')' || u[j] == ']')) {
            j++;
        } else if (j + 1 < n && u[j] == 0xC2 && u[j + 1] == 0xBB) { /* » */
            j += 2;
        } else if (j + 2 < n && u[j] == 0xE2 && u[j + 1] == 0x80 &&
                   (u[j + 2] == 0x99 || u[j + 2] == 0x9D)) { /* ’ ” */
            j += 3;
        } else {
            return j;
        }
    }
}

/* Whether the '.' at u[dot] ends an abbreviation rather than a sentence that
 * began at `start`: dotted words ("e.g", "U.S"), single capitals (initials),
 * common titles, and list numbers ("1." at the start of a sentence). */
static int dot_is_abbreviation(const unsigned char *u, size_t start, size_t dot)
{
    static const char *const titles[] = {"approx", "cf", "dr", "dra", "fig", "jr", "mr",
                                         "mrs", "ms", "prof", "sr", "sra", "st", "vs"};
    size_t k = dot;
    while (k > start && (unsigned)(u[k - 1] - '0') < 10u) k--;
    if (k < dot) {
        size_t s = start;
        while (s < k && is_ws(u[s])) s++;
        return s == k;
    }
    int has_dot = 0;
    while (k > start && (is_ascii_alpha(u[k - 1]) || u[k - 1] == '.')) {
        has_dot |= u[k - 1] == '.';
        k--;
    }
    size_t len = dot - k;
    if (len == 0) return 0;
    if (k > start && u[k - 1] >= 0x80) return 0; /* tail of a non-ASCII word */
    if (has_dot) return 1;
    if (len == 1) return u[k] >= 'A' && u[k] <= 'Z';
    if (len > 6) return 0;
    char w[7];
    text_lower_copy(w, (const char *)u + k, len);
    w[len] = '\0';
    for (size_t i = 0; i < sizeof(titles) / sizeof(titles[0]); i++)
        if (strcmp(w, titles[i]) == 0) return 1;
    return 0;
}

void passages_sentences(const char *text, size_t n, size_t max_chars, passages_list *out)
{
    const unsigned char *u = (const unsigned char *)text;
    if (max_chars < 4) max_chars = 4;
    out->count = 0;
    size_t start = 0, i = 0;
    while (i < n) {
        unsigned char c = u[i];
        if (c == '\n' || c == '\r') {
            push_sentence(u, start, i, max_chars, out);
            start = ++i;
            continue;
        }
        if (c != '.' && c != '!' && c != '?') {
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < n && (u[j] == '.' || u[j] == '!' || u[j] == '?')) j++;
        int single_dot = c == '.' && j == i + 1;
        j = skip_closers(u, j, n);
        if ((j == n || is_ws(u[j])) && !(single_dot && dot_is_abbreviation(u, start, i))) {
            push_sentence(u, start, j, max_chars, out);
            start = j;
        }
        i = j;
    }
    push_sentence(u, start, n, max_chars, out);
}

int passages_split(const char *text, size_t n, const passages_params *params,
                   passages_list *out, ad_err *e)
{
    size_t target = params->target_chars, max = params->max_chars;
    if (target == 0 || max < target || max < 4)
        return ad_err_set(e, AD_EINVAL,
                          "passage sizes must satisfy 0 < target_chars <= max_chars and "
                          "max_chars >= 4 (got target %zu, max %zu)",
                          target, max);
    out->count = 0;
    passages_list s;
    passages_list_init(&s);
    passages_sentences(text, n, max, &s);
    const passages_span *sv = s.items;
#define SENT_END(k) (sv[k].offset + sv[k].length)
    size_t start = 0, must = 0;
    while (s.count > 0) {
        /* Overlap sentences are dropped from the front until the first new
         * sentence fits; it always fits alone (sentences are <= max). */
        while (start < must && SENT_END(must) - sv[start].offset > max) start++;
        size_t a = sv[start].offset;
        size_t j = must;
        while (j + 1 < s.count) {
            size_t cur = SENT_END(j) - a, next = SENT_END(j + 1) - a;
            if (next <= target || (cur < target / 2 && next <= max)) j++;
            else break;
        }
        list_push(out, a, SENT_END(j) - a);
        if (j + 1 >= s.count) break;
        must = j + 1;
        size_t ov = params->overlap_sentences;
        size_t next = ov >= must ? 0 : must - ov;
        start = next > start + 1 ? next : start + 1;
    }
#undef SENT_END
    passages_list_cleanup(&s);
    return 0;
}

/* Earliest occurrence of a copula in s[0..n): sets *verb and *vlen (without the
 * surrounding spaces) and returns its offset (the space before it), or n. */
static size_t find_copula(const char *s, size_t n, const char **verb, size_t *vlen)
{
    static const char *const copulas[] = {" is ", " are ", " é ", " são "};
    size_t best = n;
    for (size_t i = 0; i < sizeof(copulas) / sizeof(copulas[0]); i++) {
        size_t cl = strlen(copulas[i]);
        const char *hit = memmem(s, best, copulas[i], cl);
        if (hit && (size_t)(hit - s) < best) {
            best = (size_t)(hit - s);
            *verb = copulas[i] + 1;
            *vlen = cl - 2;
        }
    }
    return best;
}

static int is_article(const char *w, size_t len)
{
    static const char *const articles[] = {"a", "an", "the", "o", "os", "as", "um", "uma"};
    for (size_t i = 0; i < sizeof(articles) / sizeof(articles[0]); i++)
        if (strlen(articles[i]) == len && memcmp(articles[i], w, len) == 0) return 1;
    return 0;
}

/* "What is X?" for a sentence "X is Y" whose subject X is short, plain and has
 * a content word; NULL otherwise. */
static char *definition_question(const char *s, size_t n)
{
    if (n == 0 || s[n - 1] == '?') return NULL;
    const char *verb = NULL;
    size_t vlen = 0;
    size_t at = find_copula(s, n, &verb, &vlen);
    if (at == n || at == 0 || at > 60) return NULL;
    const unsigned char *x = (const unsigned char *)s;
    size_t words = 1;
    for (size_t i = 0; i < at; i++) {
        if (memchr(",;:()[]\"!?", x[i], 10)) return NULL;
        words += x[i] == ' ';
    }
    if (words > 6) return NULL;
    if (!(x[0] >= 0x80 || (unsigned)(x[0] - '0') < 10u || is_ascii_alpha(x[0]))) return NULL;
    size_t pos = 0, off, len;
    int content = 0, first_is_stop = -1, last_is_stop = 0;
    char w[16];
    while (text_next_token(s, at, &pos, &off, &len)) {
        int stop = 0;
        if (len < sizeof(w)) {
            text_lower_copy(w, s + off, len);
            stop = text_is_stopword(w, len);
        }
        if (first_is_stop < 0) {
            /* "Then the result is ..." or "If x is ..." is not a definition. */
            if (stop && !is_article(w, len)) return NULL;
            first_is_stop = stop;
        }
        content |= !stop;
        last_is_stop = stop;
    }
    /* "X outperforms but is ..." : a subject does not end in a function word. */
    if (last_is_stop) return NULL;
    size_t rest = at + 1 + vlen;
    pos = rest;
    if (!content || !text_next_token(s, n, &pos, &off, &len)) return NULL;

    int pt = verb[0] != 'i' && verb[0] != 'a';
    ad_buf q;
    ad_buf_init(&q);
    ad_buf_puts(&q, pt ? "O que " : "What ");
    ad_buf_append(&q, verb, vlen);
    ad_buf_putc(&q, ' ');
    size_t subj = q.len;
    ad_buf_append(&q, s, at);
    /* "The GIL is ..." asks "What is the GIL?", but "Python is" keeps its capital. */
    if (first_is_stop == 1 && q.data[subj] >= 'A' && q.data[subj] <= 'Z')
        q.data[subj] = (char)(q.data[subj] | 0x20);
    ad_buf_putc(&q, '?');
    return ad_buf_steal(&q, NULL);
}

typedef struct term_ref {
    const char *p;
    size_t len;
    size_t first; /* index of first occurrence */
    size_t count;
} term_ref;

static int term_ref_cmp_bytes(const void *a, const void *b)
{
    const term_ref *x = a, *y = b;
    int c = memcmp(x->p, y->p, x->len < y->len ? x->len : y->len);
    if (c) return c;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return (x->first > y->first) - (x->first < y->first);
}

static int term_ref_cmp_rank(const void *a, const void *b)
{
    const term_ref *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return (x->first > y->first) - (x->first < y->first);
}

static int is_ranking_term(const char *t, size_t len)
{
    if (len < 2 || text_is_stopword(t, len)) return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned)(t[i] - '0') >= 10u) return 1;
    return 0; /* all digits: list numbers and years say little */
}

static char *terms_question(const char *p, size_t n)
{
    text_tokens t;
    text_tokens_init(&t);
    if (text_tokenize(p, n, &t) == 0) {
        text_tokens_cleanup(&t);
        return NULL;
    }
    term_ref *refs = ad_malloc(ad_size_mul(t.count, sizeof(*refs)));
    size_t nrefs = 0;
    for (int pass = 0; pass < 2 && nrefs == 0; pass++) {
        for (size_t i = 0; i < t.count; i++) {
            const char *tok = t.lower + t.items[i].offset;
            if (pass == 0 && !is_ranking_term(tok, t.items[i].length)) continue;
            refs[nrefs++] = (term_ref){tok, t.items[i].length, i, 1};
        }
    }
    qsort(refs, nrefs, sizeof(*refs), term_ref_cmp_bytes);
    size_t distinct = 0;
    for (size_t i = 0; i < nrefs; i++) {
        if (distinct && refs[distinct - 1].len == refs[i].len &&
            memcmp(refs[distinct - 1].p, refs[i].p, refs[i].len) == 0) {
            refs[distinct - 1].count++;
        } else {
            refs[distinct++] = refs[i];
        }
    }
    qsort(refs, distinct, sizeof(*refs), term_ref_cmp_rank);
    size_t k = distinct < 3 ? distinct : 3;
    ad_buf q;
    ad_buf_init(&q);
    ad_buf_puts(&q, "What about ");
    for (size_t i = 0; i < k; i++) {
        if (i > 0) ad_buf_puts(&q, i + 1 == k ? " and " : ", ");
        ad_buf_append(&q, refs[i].p, refs[i].len);
    }
    ad_buf_putc(&q, '?');
    free(refs);
    text_tokens_cleanup(&t);
    return ad_buf_steal(&q, NULL);
}

char *passages_derive_question(const char *p, size_t n)
{
    passages_list s;
    passages_list_init(&s);
    passages_sentences(p, n, (size_t)-1, &s);
    char *q = NULL;
    for (size_t i = 0; i < s.count && !q; i++)
        q = definition_question(p + s.items[i].offset, s.items[i].length);
    passages_list_cleanup(&s);
    return q ? q : terms_question(p, n);
}

uint64_t passages_fingerprint(const char *s, size_t n)
{
    /* Token by token, lowercased through a small buffer: no allocation per
     * passage (a 10 MiB text has tens of thousands). A chunk never ends
     * between a two-byte character's bytes, which lowercase together. */
    uint64_t h = TEXT_HASH_SEED;
    static const unsigned char sep = 0xFF; /* never inside a UTF-8 token */
    char lower[256];
    size_t pos = 0, off, len;
    while (text_next_token(s, n, &pos, &off, &len)) {
        for (size_t done = 0; done < len;) {
            size_t k = len - done < sizeof(lower) ? len - done : sizeof(lower) - 1;
            if (done + k < len && (unsigned char)s[off + done + k - 1] == 0xC3) k--;
            text_lower_copy(lower, s + off + done, k);
            h = text_hash64(lower, k, h);
            done += k;
        }
        h = text_hash64(&sep, 1, h);
    }
    return h;
}
