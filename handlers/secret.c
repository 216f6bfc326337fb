#include "handlers/secret.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define SECRET_PREFIX_ALPHABET "abcdefghijklmnopqrstuvwxyz0123456789"

int secret_random(void *buf, size_t n, ad_err *e)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            return ad_err_set(e, AD_EIO, "getrandom failed: %s", strerror(errno));
        }
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

/* Twelve characters of [a-z0-9], each uniform: bytes at or above 252 (the
 * largest multiple of 36 that fits) are drawn again. */
static int secret_draw_prefix(char prefix[TOKEN_PREFIX_LEN + 1], ad_err *e)
{
    size_t have = 0;
    unsigned char pool[32];
    while (have < TOKEN_PREFIX_LEN) {
        if (secret_random(pool, sizeof(pool), e) < 0) return AD_EIO;
        for (size_t i = 0; i < sizeof(pool) && have < TOKEN_PREFIX_LEN; i++)
            if (pool[i] < 252) prefix[have++] = SECRET_PREFIX_ALPHABET[pool[i] % 36];
    }
    prefix[TOKEN_PREFIX_LEN] = '\0';
    OPENSSL_cleanse(pool, sizeof(pool));
    return 0;
}

int secret_mint(char text[SECRET_TEXT_LEN + 1], char prefix[TOKEN_PREFIX_LEN + 1], ad_err *e)
{
    unsigned char raw[SECRET_RANDOM_BYTES];
    /* EVP_EncodeBlock writes 4 characters per 3 bytes, padded, and a NUL. */
    unsigned char b64[4 * ((SECRET_RANDOM_BYTES + 2) / 3) + 1];
    if (secret_draw_prefix(prefix, e) < 0 || secret_random(raw, sizeof(raw), e) < 0) return AD_EIO;
    int n = EVP_EncodeBlock(b64, raw, (int)sizeof(raw));
    OPENSSL_cleanse(raw, sizeof(raw));
    /* Standard base64 to base64url (RFC 4648 section 5), without padding. */
    while (n > 0 && b64[n - 1] == '=') n--;
    for (int i = 0; i < n; i++) {
        if (b64[i] == '+') b64[i] = '-';
        else if (b64[i] == '/') b64[i] = '_';
    }
    b64[n] = '\0';
    snprintf(text, SECRET_TEXT_LEN + 1, "agd_%s_%s", prefix, (const char *)b64);
    OPENSSL_cleanse(b64, sizeof(b64));
    return n == SECRET_TAIL_LEN ? 0 : ad_err_set(e, AD_EINTERNAL, "base64url of the secret has %d characters", n);
}

static int secret_is_b64url(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int secret_parse(const char *text, char prefix[TOKEN_PREFIX_LEN + 1])
{
    if (strlen(text) != SECRET_TEXT_LEN || strncmp(text, "agd_", 4) != 0 || text[4 + TOKEN_PREFIX_LEN] != '_')
        return -1;
    for (size_t i = 0; i < TOKEN_PREFIX_LEN; i++) {
        char c = text[4 + i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return -1;
        prefix[i] = c;
    }
    prefix[TOKEN_PREFIX_LEN] = '\0';
    for (size_t i = 5 + TOKEN_PREFIX_LEN; i < SECRET_TEXT_LEN; i++)
        if (!secret_is_b64url(text[i])) return -1;
    return 0;
}

void secret_hash(const char *text, unsigned char out[TOKEN_HASH_LEN])
{
    unsigned int len = 0;
    /* One-shot digest: fails only when libcrypto cannot allocate. */
    if (!EVP_Digest(text, strlen(text), out, &len, EVP_sha256(), NULL) || len != TOKEN_HASH_LEN) {
        fprintf(stderr, "agentd: SHA-256 failed in libcrypto\n");
        abort();
    }
}

int secret_hash_equal(const unsigned char a[TOKEN_HASH_LEN], const unsigned char b[TOKEN_HASH_LEN])
{
    return CRYPTO_memcmp(a, b, TOKEN_HASH_LEN) == 0;
}
