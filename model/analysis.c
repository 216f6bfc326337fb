#include "model/analysis.h"

#include <libstemmer.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/mem.h"
#include "base/utf8.h"
#include "model/stopwords.h"
#include "model/text.h"

static const struct {
    const char *code;
    const char *stemmer; /* libstemmer's algorithm name */
} languages[ANALYSIS_LANGUAGE_COUNT] = {
    [ANALYSIS_EN] = {"en", "english"}, [ANALYSIS_PT] = {"pt", "portuguese"},
    [ANALYSIS_ES] = {"es", "spanish"}, [ANALYSIS_FR] = {"fr", "french"},
    [ANALYSIS_DE] = {"de", "german"},  [ANALYSIS_IT] = {"it", "italian"},
    [ANALYSIS_NL] = {"nl", "dutch"},
};

/* Case folding keeps text composed (NFC), the form the stemmers' rules and
 * the stopword lists are written in, whatever form the text came in. */
#define FOLD_OPTIONS (UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD)
/* Stripping marks decomposes, drops the marks and composes again, so what is
 * left of a script that has no marks to lose (Hangul) stays composed. */
#define STRIP_OPTIONS (UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_STRIPMARK)

/* Bytes of a token that analysis reads. Stemmers change a word's end, so
 * past this length the cut term would only differ for a token made mostly of
 * combining marks; the bound keeps one giant "word" from costing a buffer as
 * large as the text. */
#define TOKEN_READ_MAX (16 * ANALYSIS_MAX_TERM)

/* What detection reads: enough text to count stopwords reliably, bounded so
 * that detecting a 10 MiB text costs what detecting 64 KiB does. */
#define DETECT_MAX ((size_t)64 * 1024)

/*
 * Portuguese typed without accents. Snowball's Portuguese stemmer knows its
 * endings accented ("-ção", "-ência", "-ável"), so "informacao" stemmed to
 * "informaca" and never met "informação" ("inform"), nor "nao" the stopword
 * "não". An ASCII word with one of these endings gets its accents back
 * before the stopword check and the stemmer: written unaccented, no
 * Portuguese word ends this way, so no correctly written word is changed.
 * Longer endings come first; a word must be longer than its ending ("ao" is
 * a word of its own).
 */
#define PT_ACCENTS_GROWTH 2 /* "cao" is "ção" */
#define ENDING(plain, accented) {plain, accented, sizeof(plain) - 1, sizeof(accented) - 1}
static const struct {
    const char *plain, *accented;
    size_t plain_len, accented_len;
} pt_endings[] = {
    ENDING("ancias", "âncias"), ENDING("encias", "ências"), ENDING("ancia", "ância"),
    ENDING("encia", "ência"),   ENDING("aveis", "áveis"),   ENDING("iveis", "íveis"),
    ENDING("avel", "ável"),     ENDING("ivel", "ível"),     ENDING("coes", "ções"),
    ENDING("cao", "ção"),       ENDING("oes", "ões"),       ENDING("aes", "ães"),
    ENDING("ao", "ão"),
};

/* Gives w[0..len), a lower-case ASCII word with room for PT_ACCENTS_GROWTH
 * more bytes, its Portuguese accents back; returns its new length. */
static size_t pt_accents(char *w, size_t len)
{
    char last = w[len - 1];
    if (last != 's' && last != 'a' && last != 'l' && last != 'o') return len;
    for (size_t i = 0; i < sizeof(pt_endings) / sizeof(pt_endings[0]); i++) {
        size_t pl = pt_endings[i].plain_len;
        if (len > pl && memcmp(w + len - pl, pt_endings[i].plain, pl) == 0) {
            memcpy(w + len - pl, pt_endings[i].accented, pt_endings[i].accented_len);
            return len - pl + pt_endings[i].accented_len;
        }
    }
    return len;
}

/* The recent-token cache: tokens follow Zipf's law, so most of a long text's
 * tokens were seen a moment ago, and the stemmer is most of the cost of the
 * rest. A direct-mapped table of one-cache-line entries, allocated once the
 * analyzer has read enough text to pay for it, in one text or in many (an
 * index analyses a long document passage by passage). */
#define CACHE_SLOTS 4096
#define CACHE_MIN_TEXT (16 * 1024)
#define CACHE_KEY_MAX 24
#define CACHE_TERM_MAX 38

typedef struct cache_entry {
    unsigned char key_len; /* 0: empty */
    unsigned char term_len; /* 0: the token gives no term */
    char key[CACHE_KEY_MAX];
    char term[CACHE_TERM_MAX];
} cache_entry;

struct analyzer {
    analysis_language lang;
    struct sb_stemmer *stemmer;
    /* utf8proc's scratch: code points in, the UTF-8 result written over them. */
    utf8proc_int32_t *cps;
    size_t cps_cap;
    char lower[TOKEN_READ_MAX + PT_ACCENTS_GROWTH];
    char term[ANALYSIS_MAX_TERM];
    cache_entry *cache; /* CACHE_SLOTS entries, or NULL */
    size_t read;        /* bytes analysed while there was no cache */
};

const char *analysis_language_code(analysis_language l)
{
    ad_assert((unsigned)l < ANALYSIS_LANGUAGE_COUNT);
    return languages[l].code;
}

int analysis_language_from_code(const char *code, analysis_language *out)
{
    if (!code) return AD_EINVAL;
    for (int l = 0; l < ANALYSIS_LANGUAGE_COUNT; l++) {
        if (strcmp(code, languages[l].code) == 0) {
            *out = (analysis_language)l;
            return 0;
        }
    }
    return AD_EINVAL;
}

static inline unsigned char ascii_lower(unsigned char c)
{
    return (unsigned)(c - 'A') < 26u ? (unsigned char)(c | 0x20) : c;
}

static int is_ascii(const char *s, size_t n)
{
    unsigned char any = 0;
    for (size_t i = 0; i < n; i++) any |= (unsigned char)s[i];
    return any < 0x80;
}

static int is_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned)((unsigned char)s[i] - '0') >= 10u) return 0;
    return 1;
}

/* The longest prefix of s[0..n) of at most max bytes that ends on a UTF-8
 * boundary; max bytes if there is none (bytes that are not UTF-8 anyway). */
static size_t utf8_cut(const char *s, size_t n, size_t max)
{
    if (n <= max) return n;
    size_t cut = max;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80) cut--;
    return cut ? cut : max;
}

/* Runs utf8proc over valid UTF-8 s[0..n) into the analyzer's scratch and
 * points *out at the UTF-8 result; returns its length, or -1 if utf8proc
 * refuses the text. */
static long utf8_map(analyzer *a, const char *s, size_t n, utf8proc_option_t options,
                     const char **out)
{
    for (;;) {
        utf8proc_ssize_t got =
            utf8proc_decompose((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, a->cps,
                               (utf8proc_ssize_t)a->cps_cap, options);
        if (got < 0) return -1;
        /* reencode writes a NUL past the result: one spare code point. */
        if ((size_t)got < a->cps_cap) {
            got = utf8proc_reencode(a->cps, got, options);
            if (got < 0) return -1;
            *out = (const char *)a->cps;
            return (long)got;
        }
        a->cps_cap = ad_size_add((size_t)got, 1);
        free(a->cps);
        a->cps = ad_malloc(ad_size_mul(a->cps_cap, sizeof(*a->cps)));
    }
}

/* A token with invalid UTF-8 in it is kept as it is written, ASCII
 * lowercased, unstemmed; each invalid byte reads as the Latin-1 letter it
 * would be, so the term is valid UTF-8 and different byte strings stay
 * different terms. */
static size_t raw_term(analyzer *a, const char *tok, size_t len)
{
    size_t o = 0, i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)tok[i];
        if (c < 0x80) {
            if (o + 1 > ANALYSIS_MAX_TERM) break;
            a->term[o++] = (char)ascii_lower(c);
            i++;
            continue;
        }
        size_t k = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        if (k <= len - i && ad_utf8_validate(tok + i, k, NULL) == 0) {
            if (o + k > ANALYSIS_MAX_TERM) break;
            memcpy(a->term + o, tok + i, k);
            o += k;
            i += k;
        } else {
            if (o + 2 > ANALYSIS_MAX_TERM) break;
            a->term[o++] = (char)(0xC0 | c >> 6);
            a->term[o++] = (char)(0x80 | (c & 0x3F));
            i++;
        }
    }
    return o;
}

/* Stems the folded word w[0..n) and strips the stem's diacritics into the
 * analyzer's term; returns the term's length (0 when nothing is left). */
static size_t stem_term(analyzer *a, const char *w, size_t n)
{
    const sb_symbol *stem = sb_stemmer_stem(a->stemmer, (const sb_symbol *)w, (int)n);
    ad_assert(stem != NULL); /* libstemmer's out of memory */
    const char *out = (const char *)stem;
    long len = sb_stemmer_length(a->stemmer);
    if (!is_ascii(out, (size_t)len)) {
        len = utf8_map(a, out, (size_t)len, STRIP_OPTIONS, &out);
        if (len < 0) return 0;
    }
    size_t cut = utf8_cut(out, (size_t)len, ANALYSIS_MAX_TERM);
    memcpy(a->term, out, cut);
    return cut;
}

/* The term of one token into a->term; returns its length, 0 for none (a
 * stopword, or a token of marks only). */
static size_t token_term(analyzer *a, const char *tok, size_t len)
{
    len = utf8_cut(tok, len, TOKEN_READ_MAX);
    unsigned lang_bit = 1u << a->lang;
    if (is_ascii(tok, len)) {
        if (is_digits(tok, len)) {
            size_t cut = len < ANALYSIS_MAX_TERM ? len : ANALYSIS_MAX_TERM;
            memcpy(a->term, tok, cut);
            return cut;
        }
        for (size_t i = 0; i < len; i++) a->lower[i] = (char)ascii_lower((unsigned char)tok[i]);
        if (a->lang == ANALYSIS_PT) len = pt_accents(a->lower, len);
        if (stopwords_languages(a->lower, len) & lang_bit) return 0;
        return stem_term(a, a->lower, len);
    }
    const char *folded;
    long flen;
    if (ad_utf8_validate(tok, len, NULL) != 0 ||
        (flen = utf8_map(a, tok, len, FOLD_OPTIONS, &folded)) < 0)
        return raw_term(a, tok, len);
    if (stopwords_languages(folded, (size_t)flen) & lang_bit) return 0;
    /* The stemmer's result is its own; stripping it may reuse the scratch
     * that holds the folded word. */
    return stem_term(a, folded, (size_t)flen);
}

analyzer *analyzer_new(analysis_language l)
{
    ad_assert((unsigned)l < ANALYSIS_LANGUAGE_COUNT);
    analyzer *a = ad_calloc(1, sizeof(*a));
    a->lang = l;
    a->stemmer = sb_stemmer_new(languages[l].stemmer, "UTF_8");
    ad_assert(a->stemmer != NULL); /* every algorithm is in libstemmer; NULL is out of memory */
    return a;
}

void analyzer_free(analyzer *a)
{
    if (!a) return;
    sb_stemmer_delete(a->stemmer);
    free(a->cps);
    free(a->cache);
    free(a);
}

analysis_language analyzer_language(const analyzer *a)
{
    return a->lang;
}

/* token_term through the cache; *term points at the term. */
static size_t cached_term(analyzer *a, const char *tok, size_t len, const char **term)
{
    if (!a->cache || len > CACHE_KEY_MAX) {
        *term = a->term;
        return token_term(a, tok, len);
    }
    cache_entry *e = &a->cache[text_hash64(tok, len, TEXT_HASH_SEED) & (CACHE_SLOTS - 1)];
    if (e->key_len == len && memcmp(e->key, tok, len) == 0) {
        *term = e->term;
        return e->term_len;
    }
    size_t tl = token_term(a, tok, len);
    *term = a->term;
    if (tl <= CACHE_TERM_MAX) {
        e->key_len = (unsigned char)len;
        memcpy(e->key, tok, len);
        e->term_len = (unsigned char)tl;
        memcpy(e->term, a->term, tl);
    }
    return tl;
}

size_t analyzer_terms(analyzer *a, const char *text, size_t n, analysis_term_fn fn, void *ud)
{
    if (!a->cache && (a->read += n) >= CACHE_MIN_TEXT)
        a->cache = ad_calloc(CACHE_SLOTS, sizeof(*a->cache));
    size_t pos = 0, off, len, position = 0, terms = 0;
    while (text_next_token(text, n, &pos, &off, &len)) {
        const char *term;
        size_t tl = cached_term(a, text + off, len, &term);
        if (tl) {
            fn(ud, term, tl, position);
            terms++;
        }
        position++;
    }
    return terms;
}

analysis_language analysis_detect(const char *text, size_t n)
{
    if (n > DETECT_MAX) n = utf8_cut(text, n, DETECT_MAX);
    size_t hits[ANALYSIS_LANGUAGE_COUNT] = {0};
    /* Folding a stopword-sized token needs no allocation: code points of at
     * most this many bytes fit on the stack. */
    enum { FOLD_MAX = 4 * STOPWORDS_MAX_LEN };
    utf8proc_int32_t cps[FOLD_MAX + 1];
    char lower[FOLD_MAX + PT_ACCENTS_GROWTH];
    size_t pos = 0, off, len;
    while (text_next_token(text, n, &pos, &off, &len)) {
        const char *tok = text + off;
        unsigned in;
        if (len > FOLD_MAX) continue;
        if (is_ascii(tok, len)) {
            for (size_t i = 0; i < len; i++) lower[i] = (char)ascii_lower((unsigned char)tok[i]);
            /* Portuguese typed without accents counts as Portuguese analysis
             * reads it ("nao" is "não"). */
            in = stopwords_languages(lower, len) & ~(1u << ANALYSIS_PT);
            in |= stopwords_languages(lower, pt_accents(lower, len)) & (1u << ANALYSIS_PT);
        } else {
            if (ad_utf8_validate(tok, len, NULL) != 0) continue;
            utf8proc_ssize_t got = utf8proc_decompose((const utf8proc_uint8_t *)tok,
                                                      (utf8proc_ssize_t)len, cps, FOLD_MAX,
                                                      FOLD_OPTIONS);
            if (got < 0 || got > FOLD_MAX) continue;
            got = utf8proc_reencode(cps, got, FOLD_OPTIONS);
            if (got < 0) continue;
            in = stopwords_languages((const char *)cps, (size_t)got);
        }
        for (int l = 0; in; l++, in >>= 1) hits[l] += in & 1u;
    }
    analysis_language best = ANALYSIS_EN;
    int tied = 0;
    for (int l = 1; l < ANALYSIS_LANGUAGE_COUNT; l++) {
        if (hits[l] > hits[best]) {
            best = (analysis_language)l;
            tied = 0;
        } else if (hits[l] == hits[best]) {
            tied = 1;
        }
    }
    return tied ? ANALYSIS_EN : best;
}
