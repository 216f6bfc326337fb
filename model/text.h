/*
 * Text normalization and tokenization: the one place that decides what a
 * "word" is for passages, statistics, metrics and text analysis.
 *
 * A token is a maximal run of ASCII letters/digits or non-ASCII UTF-8 bytes,
 * except that common non-ASCII punctuation and spaces (U+0080..U+00BF, × ÷,
 * U+2000..U+207F, U+3000..U+303F, U+FEFF) separate tokens like ASCII
 * punctuation does. Tokens are lowercased: ASCII A-Z and Latin-1 À..Þ.
 * Lowercasing never changes a byte length, so token offsets are offsets into
 * the original text.
 */
#ifndef AD_MODEL_TEXT_H
#define AD_MODEL_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/utf8.h"

/* Appends the normalized form of in[0..n) to `out` (caller-owned): control
 * characters dropped (except \n and \t), \r\n and \r become \n, runs of
 * spaces/tabs/NBSP become one space, lines trimmed, 3+ newlines become "\n\n",
 * the whole trimmed. The result is never longer than the input. Invalid UTF-8
 * returns AD_EINVAL (message names the byte offset) and appends nothing. */
int text_normalize(const char *in, size_t n, ad_buf *out, ad_err *e);

/* One token: `length` bytes at `offset`, in both the input and `lower`. */
typedef struct text_token {
    size_t offset;
    size_t length;
} text_token;

/* Tokenizer output, caller-owned storage (text_tokens_init/cleanup). `lower`
 * is an owned, NUL-terminated lowercased copy of the whole input; token i is
 * the bytes lower + items[i].offset, items[i].length. Reusing one
 * text_tokens for many texts reuses its memory. */
typedef struct text_tokens {
    char *lower;
    size_t lower_cap;
    text_token *items;
    size_t count;
    size_t cap;
} text_tokens;

/* Prepares an empty token list. */
void text_tokens_init(text_tokens *t);

/* Frees what `t` owns and leaves it empty and reusable. */
void text_tokens_cleanup(text_tokens *t);

/* Replaces the contents of `t` with the tokens of s[0..n) and returns their
 * count. O(n); any byte string is accepted (invalid UTF-8 bytes are word
 * bytes). */
size_t text_tokenize(const char *s, size_t n, text_tokens *t);

/* Allocation-free scanner: finds the next token at or after *pos in s[0..n),
 * stores its offset/length, moves *pos past it and returns 1; returns 0 when
 * there is none. The token bytes are not lowercased (see text_lower_copy). */
int text_next_token(const char *s, size_t n, size_t *pos, size_t *offset, size_t *length);

/* Writes the lowercased form of src[0..n) to dst[0..n) (no NUL added);
 * dst may equal src. */
void text_lower_copy(char *dst, const char *src, size_t n);

/* Returns 1 if the lowercased token tok[0..len) is an English or Portuguese
 * stopword (model/stopwords.h's lists), else 0. */
int text_is_stopword(const char *tok, size_t len);

/* 64-bit FNV-1a of p[0..n), continuing from `h` (start with TEXT_HASH_SEED). */
static inline uint64_t text_hash64(const void *p, size_t n, uint64_t h)
{
    /* Inline: the analyzer's token cache and the stopword set hash every
     * token, and an out-of-line call per token showed in indexing profiles. */
    const unsigned char *u = p;
    for (size_t i = 0; i < n; i++) {
        h ^= u[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}
#define TEXT_HASH_SEED UINT64_C(0xcbf29ce484222325)

#endif
