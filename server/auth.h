/*
 * The HTTP side of authentication: the bearer credential of a request, and
 * the bootstrap (admin) key `Authorization: Bearer <key>` on every /api/
 * route; /health stays open. API tokens are looked up by handlers/auth.h.
 */
#ifndef AD_SERVER_AUTH_H
#define AD_SERVER_AUTH_H

#include "base/err.h"

/* Reads the credential of `Bearer <credential>` (the scheme in any case,
 * exactly one space) into `*token`, a pointer into `authorization`; AD_EINVAL
 * with the reason (never echoing the credential) otherwise. */
int auth_bearer(const char *authorization, const char **token, ad_err *e);

/* Compares two strings in time independent of where they differ. */
int auth_equal(const char *a, const char *b);

#endif
