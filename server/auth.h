/*
 * The HTTP side of authentication: the bearer credential of a request, and
 * the bootstrap (admin) key `Authorization: Bearer <key>` on every /api/
 * route; /health stays open. API tokens are looked up by handlers/auth.h.
 */
#ifndef AD_SERVER_AUTH_H
#define AD_SERVER_AUTH_H

#include "config/config.h"

/* Returns 0 when the request may proceed; AD_EINVAL (answer 401) otherwise,
 * with the reason in `e` (never echoing the presented token). The header is
 * `Bearer <key>`: the scheme in any case, then exactly one space. */
int auth_check(const ad_config *cfg, const char *path, const char *authorization, ad_err *e);

/* Reads the credential of `Bearer <credential>` (the scheme in any case,
 * exactly one space) into `*token`, a pointer into `authorization`; AD_EINVAL
 * with the reason (never echoing the credential) otherwise. */
int auth_bearer(const char *authorization, const char **token, ad_err *e);

/* Compares two strings in time independent of where they differ. */
int auth_equal(const char *a, const char *b);

#endif
