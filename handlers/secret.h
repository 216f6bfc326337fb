/*
 * The text of an API token secret (issue 11): `agd_`, a 12-character public
 * prefix of [a-z0-9] (the lookup key), `_`, then 43 characters of base64url
 * of 32 bytes from getrandom(). Stored only as the SHA-256 of the whole text
 * (libcrypto); compared in constant time. No crypto is written here, only
 * the calls to it.
 */
#ifndef AD_HANDLERS_SECRET_H
#define AD_HANDLERS_SECRET_H

#include <stddef.h>

#include "base/err.h"
#include "storage/tokens.h"

#define SECRET_RANDOM_BYTES 32
#define SECRET_TAIL_LEN 43   /* base64url of 32 bytes, unpadded */
#define SECRET_TEXT_LEN (4 + TOKEN_PREFIX_LEN + 1 + SECRET_TAIL_LEN)

/* Fills `buf` with `n` bytes from getrandom(), retrying on EINTR and short
 * reads; AD_EIO when the kernel refuses. */
int secret_random(void *buf, size_t n, ad_err *e);

/* Draws a new secret: `text` (NUL-terminated) and its `prefix`. */
int secret_mint(char text[SECRET_TEXT_LEN + 1], char prefix[TOKEN_PREFIX_LEN + 1], ad_err *e);

/* 0 and the public prefix when `text` has a secret's exact shape; -1 when
 * it does not (then it is no token of ours). */
int secret_parse(const char *text, char prefix[TOKEN_PREFIX_LEN + 1]);

/* The SHA-256 of `text` (the whole secret). */
void secret_hash(const char *text, unsigned char out[TOKEN_HASH_LEN]);

/* 1 when two hashes are equal, in time independent of where they differ. */
int secret_hash_equal(const unsigned char a[TOKEN_HASH_LEN], const unsigned char b[TOKEN_HASH_LEN]);

#endif
