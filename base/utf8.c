#include "base/utf8.h"

#include <stdint.h>
#include <string.h>

#include "base/err.h"

int ad_utf8_validate(const char *s, size_t n, size_t *bad_offset)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        /* Most text is ASCII: skip it eight bytes at a time. */
        if (n - i >= 8) {
            uint64_t w;
            memcpy(&w, u + i, 8);
            if (!(w & UINT64_C(0x8080808080808080))) {
                i += 8;
                continue;
            }
        }
        unsigned char c = u[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        /* The second byte's range is what rules out overlongs (E0, F0),
         * surrogates (ED) and code points past U+10FFFF (F4). */
        size_t need;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c == 0xE0) {
            need = 2;
            lo = 0xA0;
        } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
            need = 2;
        } else if (c == 0xED) {
            need = 2;
            hi = 0x9F;
        } else if (c == 0xF0) {
            need = 3;
            lo = 0x90;
        } else if (c >= 0xF1 && c <= 0xF3) {
            need = 3;
        } else if (c == 0xF4) {
            need = 3;
            hi = 0x8F;
        } else {
            goto bad;
        }
        if (n - i - 1 < need) goto bad;
        if (u[i + 1] < lo || u[i + 1] > hi) goto bad;
        for (size_t k = 2; k <= need; k++)
            if ((u[i + k] & 0xC0) != 0x80) goto bad;
        i += need + 1;
    }
    return 0;
bad:
    if (bad_offset) *bad_offset = i;
    return AD_EINVAL;
}
