/*
 * Request authentication, in one place. Today: a single service API key sent
 * as `Authorization: Bearer <key>` on every /api/v1 route; /health stays open.
 */
#ifndef AD_SERVER_AUTH_H
#define AD_SERVER_AUTH_H

#include "config/config.h"

/* Returns 0 when the request may proceed; AD_EINVAL (answer 401) otherwise,
 * with the reason in `e` (never echoing the presented token). The header is
 * `Bearer <key>`: the scheme in any case, then exactly one space. */
int auth_check(const ad_config *cfg, const char *path, const char *authorization, ad_err *e);

/* Compares two strings in time independent of where they differ. */
int auth_equal(const char *a, const char *b);

#endif
