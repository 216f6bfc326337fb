#include "model/text.h"

#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "model/stopwords.h"

static size_t utf8_seq_len(unsigned char lead)
{
    if (lead < 0x80) return 1;
    if (lead < 0xE0) return 2;
    if (lead < 0xF0) return 3;
    return 4;
}

int text_normalize(const char *in, size_t n, ad_buf *out, ad_err *e)
{
    size_t bad;
    if (ad_utf8_validate(in, n, &bad) != 0)
        return ad_err_set(e, AD_EINVAL, "text is not valid UTF-8 (byte offset %zu)", bad);

    /* Normalized in place, in `out`: the output never outgrows the input
     * (every separator written stands for at least one input byte that was
     * not copied), so a write never passes the read position. */
    size_t base = out->len;
    ad_buf_append(out, in, n);
    char *dst = out->data + base;
    const unsigned char *u = (const unsigned char *)dst;
    size_t o = 0;
    int pending_space = 0;
    size_t pending_nl = 0;
    size_t i = 0;
    while (i < n) {
        unsigned char c = u[i];
        size_t len = 1;
        if (c == '\r' || c == '\n') {
            pending_nl++;
            pending_space = 0;
            i += (c == '\r' && i + 1 < n && u[i + 1] == '\n') ? 2 : 1;
            continue;
        }
        if (c == ' ' || c == '\t') {
            pending_space = 1;
            i++;
            continue;
        }
        if (c < 0x20 || c == 0x7F) {
            i++;
            continue;
        }
        if (c >= 0x80) {
            len = utf8_seq_len(c);
            if (c == 0xC2 && u[i + 1] < 0xA0) { /* C1 controls */
                i += 2;
                continue;
            }
            if (c == 0xC2 && u[i + 1] == 0xA0) { /* no-break space */
                pending_space = 1;
                i += 2;
                continue;
            }
            if (c == 0xEF && u[i + 1] == 0xBB && u[i + 2] == 0xBF) { /* BOM */
                i += 3;
                continue;
            }
        }
        if (o > 0) {
            if (pending_nl) {
                dst[o++] = '\n';
                if (pending_nl > 1) dst[o++] = '\n';
            } else if (pending_space) {
                dst[o++] = ' ';
            }
        }
        pending_nl = 0;
        pending_space = 0;
        memmove(dst + o, u + i, len);
        o += len;
        i += len;
    }
    out->len = base + o;
    out->data[out->len] = '\0';
    return 0;
}

static inline int ascii_alnum(unsigned char c)
{
    return (unsigned)(c - '0') < 10u || (unsigned)((c | 0x20) - 'a') < 26u;
}

/* Length of a non-ASCII separator starting at u[i], or 0 if u[i] starts a
 * word byte. Only lead bytes can match, so a continuation byte is a word byte. */
static inline size_t nonascii_sep_len(const unsigned char *u, size_t i, size_t n)
{
    unsigned char c = u[i];
    if (c == 0xC2 && i + 1 < n && u[i + 1] >= 0x80 && u[i + 1] <= 0xBF) return 2;
    if (c == 0xC3 && i + 1 < n && (u[i + 1] == 0x97 || u[i + 1] == 0xB7)) return 2;
    if (c == 0xE2 && i + 2 < n && (u[i + 1] == 0x80 || u[i + 1] == 0x81) &&
        (u[i + 2] & 0xC0) == 0x80)
        return 3;
    if (c == 0xE3 && i + 2 < n && u[i + 1] == 0x80 && (u[i + 2] & 0xC0) == 0x80) return 3;
    if (c == 0xEF && i + 2 < n && u[i + 1] == 0xBB && u[i + 2] == 0xBF) return 3;
    return 0;
}

int text_next_token(const char *s, size_t n, size_t *pos, size_t *offset, size_t *length)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = *pos;
    while (i < n) {
        unsigned char c = u[i];
        if (c < 0x80) {
            if (ascii_alnum(c)) break;
            i++;
            continue;
        }
        size_t k = nonascii_sep_len(u, i, n);
        if (k == 0) break;
        i += k;
    }
    if (i >= n) {
        *pos = n;
        return 0;
    }
    size_t start = i;
    while (i < n) {
        unsigned char c = u[i];
        if (c < 0x80) {
            if (!ascii_alnum(c)) break;
        } else if (nonascii_sep_len(u, i, n)) {
            break;
        }
        i++;
    }
    *offset = start;
    *length = i - start;
    *pos = i;
    return 1;
}

void text_lower_copy(char *dst, const char *src, size_t n)
{
    const unsigned char *u = (const unsigned char *)src;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = u[i];
        if (c >= 'A' && c <= 'Z') {
            dst[i] = (char)(c | 0x20);
        } else if (c == 0xC3 && i + 1 < n) {
            /* U+00C0..U+00DE (except U+00D7 ×) lowercase to +0x20 in the
             * second byte; this covers Portuguese and most Latin-1 letters. */
            unsigned char d = u[i + 1];
            if (d >= 0x80 && d <= 0x9E && d != 0x97) d = (unsigned char)(d + 0x20);
            dst[i] = (char)c;
            dst[i + 1] = (char)d;
            i++;
        } else {
            dst[i] = (char)c;
        }
    }
}

void text_tokens_init(text_tokens *t)
{
    memset(t, 0, sizeof(*t));
}

void text_tokens_cleanup(text_tokens *t)
{
    free(t->lower);
    free(t->items);
    text_tokens_init(t);
}

size_t text_tokenize(const char *s, size_t n, text_tokens *t)
{
    size_t need = ad_size_add(n, 1);
    if (t->lower_cap < need) {
        free(t->lower);
        t->lower = ad_malloc(need);
        t->lower_cap = need;
    }
    text_lower_copy(t->lower, s, n);
    t->lower[n] = '\0';
    t->count = 0;
    size_t pos = 0, off, len;
    while (text_next_token(t->lower, n, &pos, &off, &len)) {
        if (t->count == t->cap) {
            size_t cap = t->cap ? ad_size_mul(t->cap, 2) : 64;
            t->items = ad_realloc(t->items, ad_size_mul(cap, sizeof(*t->items)));
            t->cap = cap;
        }
        t->items[t->count].offset = off;
        t->items[t->count].length = len;
        t->count++;
    }
    return t->count;
}

int text_is_stopword(const char *tok, size_t len)
{
    return (stopwords_languages(tok, len) & (1u << ANALYSIS_EN | 1u << ANALYSIS_PT)) != 0;
}

