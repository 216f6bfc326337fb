#include "server/auth.h"

#include <string.h>
#include <strings.h>

int auth_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);
    /* Walk the expected key's whole length whatever the presented one is. */
    for (size_t i = 0; i < lb; i++) diff |= (unsigned char)(b[i] ^ (i < la ? a[i] : 0));
    return diff == 0;
}

int auth_bearer(const char *authorization, const char **token, ad_err *e)
{
    if (!authorization || !*authorization)
        return ad_err_set(e, AD_EINVAL, "missing Authorization header (expected: Bearer <api key or token>)");
    if (strncasecmp(authorization, "Bearer ", 7) != 0)
        return ad_err_set(e, AD_EINVAL, "Authorization must use the Bearer scheme");
    *token = authorization + 7;
    /* One grammar only (RFC 6750: the scheme, one space, the token), so a
     * proxy in front and agentd never read two different keys from one header. */
    if (**token == ' ' || **token == '\t')
        return ad_err_set(e, AD_EINVAL, "exactly one space must separate Bearer and the API key");
    return 0;
}
