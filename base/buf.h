/*
 * A growable byte buffer. Caller-owned storage: ad_buf_init/ad_buf_cleanup.
 * `data` is always NUL-terminated (the NUL is not counted in `len`), so a
 * buffer of text can be handed to C string functions directly.
 */
#ifndef AD_BUF_H
#define AD_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct ad_buf {
    char *data;
    size_t len;
    size_t cap;
} ad_buf;

void ad_buf_init(ad_buf *b);
void ad_buf_cleanup(ad_buf *b);
/* Appends n bytes; may move `data`. */
void ad_buf_append(ad_buf *b, const void *p, size_t n);
void ad_buf_puts(ad_buf *b, const char *s);
void ad_buf_putc(ad_buf *b, char c);
void ad_buf_printf(ad_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ad_buf_vprintf(ad_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Appends `s` as a JSON string literal, quotes included. A byte that is not
 * part of valid UTF-8 becomes the four characters `\xNN` in the decoded
 * string, so the output is valid JSON whatever `s` holds. */
void ad_buf_json_string(ad_buf *b, const char *s, size_t n);
void ad_buf_reset(ad_buf *b);
/* Hands the bytes to the caller (free() them) and leaves `b` empty. */
char *ad_buf_steal(ad_buf *b, size_t *len);

#endif
