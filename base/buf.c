#include "base/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "base/utf8.h"

void ad_buf_init(ad_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void ad_buf_cleanup(ad_buf *b)
{
    free(b->data);
    ad_buf_init(b);
}

static void buf_reserve(ad_buf *b, size_t extra)
{
    size_t need = ad_size_add(ad_size_add(b->len, extra), 1);
    if (need <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap = ad_size_mul(cap, 2);
    b->data = ad_realloc(b->data, cap);
    b->cap = cap;
}

void ad_buf_append(ad_buf *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void ad_buf_puts(ad_buf *b, const char *s)
{
    ad_buf_append(b, s, strlen(s));
}

void ad_buf_putc(ad_buf *b, char c)
{
    ad_buf_append(b, &c, 1);
}

void ad_buf_vprintf(ad_buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0) return;
    buf_reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void ad_buf_printf(ad_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ad_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void ad_buf_json_string(ad_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    ad_buf_putc(b, '"');
    size_t valid_end = 0; /* s[i..valid_end) is known to be valid UTF-8 */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80 && i >= valid_end) {
            size_t bad = n - i;
            if (ad_utf8_validate(s + i, n - i, &bad) == 0 || bad > 0) {
                valid_end = i + bad;
            } else {
                /* JSON cannot carry a stray byte: it is written as the text \xNN. */
                char esc[5] = {'\\', '\\', 'x', hex[c >> 4], hex[c & 15]};
                ad_buf_append(b, esc, 5);
                continue;
            }
        }
        switch (c) {
        case '"': ad_buf_append(b, "\\\"", 2); break;
        case '\\': ad_buf_append(b, "\\\\", 2); break;
        case '\n': ad_buf_append(b, "\\n", 2); break;
        case '\r': ad_buf_append(b, "\\r", 2); break;
        case '\t': ad_buf_append(b, "\\t", 2); break;
        default:
            if (c < 0x20) {
                char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                ad_buf_append(b, esc, 6);
            } else {
                ad_buf_putc(b, (char)c);
            }
        }
    }
    ad_buf_putc(b, '"');
}

void ad_buf_reset(ad_buf *b)
{
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

char *ad_buf_steal(ad_buf *b, size_t *len)
{
    char *p = b->data;
    if (len) *len = b->len;
    if (!p) p = ad_strdup("");
    ad_buf_init(b);
    return p;
}
