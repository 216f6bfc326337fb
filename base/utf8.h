/* UTF-8 validation, shared by the HTTP layer (every text it accepts) and the
 * text analysis of model/. */
#ifndef AD_UTF8_H
#define AD_UTF8_H

#include <stddef.h>

/* Returns 0 if s[0..n) is strict UTF-8 (no overlongs, surrogates or code
 * points past U+10FFFF), else AD_EINVAL with the offset of the first byte of
 * the offending sequence in *bad_offset (bad_offset may be NULL). */
int ad_utf8_validate(const char *s, size_t n, size_t *bad_offset);

#endif
