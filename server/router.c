#include "server/router.h"

#include <stdio.h>
#include <string.h>

/* Matches one pattern; returns the number of literal segments matched (its
 * specificity) or -1. Parameters are copied into `scratch`. */
static int router_match_one(const char *pattern, const char *path, const char **params,
                            size_t *nparams, char *scratch, size_t scratch_len)
{
    const char *p = pattern, *s = path;
    size_t used = 0, np = 0;
    int literals = 0;
    while (*p && *s) {
        if (*p != '/' || *s != '/') return -1;
        p++, s++;
        const char *pend = strchr(p, '/');
        const char *send = strchr(s, '/');
        size_t plen = pend ? (size_t)(pend - p) : strlen(p);
        size_t slen = send ? (size_t)(send - s) : strlen(s);
        if (plen > 1 && p[0] == '{' && p[plen - 1] == '}') {
            if (slen == 0 || np == AD_MAX_PARAMS || used + slen + 1 > scratch_len) return -1;
            memcpy(scratch + used, s, slen);
            scratch[used + slen] = '\0';
            params[np++] = scratch + used;
            used += slen + 1;
        } else {
            if (plen != slen || memcmp(p, s, plen) != 0) return -1;
            literals++;
        }
        p += plen, s += slen;
    }
    if (*p || *s) return -1;
    *nparams = np;
    return literals;
}

ad_route_result ad_router_match(const ad_route *routes, size_t nroutes, ad_method method,
                                const char *path, const ad_route **out, const char **params,
                                size_t *nparams, char *scratch, size_t scratch_len,
                                unsigned *allowed)
{
    const char *tmp_params[AD_MAX_PARAMS];
    size_t tmp_n;
    int best = -1;
    ad_method want = method == AD_HEAD ? AD_GET : method;
    *allowed = 0;
    *out = NULL;
    for (size_t i = 0; i < nroutes; i++) {
        int score = router_match_one(routes[i].pattern, path, tmp_params, &tmp_n, scratch,
                                     scratch_len);
        if (score < 0) continue;
        *allowed |= routes[i].method;
        if (want && routes[i].method == want && score > best) {
            best = score;
            *out = &routes[i];
        }
    }
    if (!*allowed) return AD_ROUTE_NO_PATH;
    *allowed |= AD_OPTIONS;
    if (*allowed & AD_GET) *allowed |= AD_HEAD;
    if (!*out) return AD_ROUTE_NO_METHOD;
    /* Copy the winner's parameters last, so scratch holds its values. */
    router_match_one((*out)->pattern, path, params, nparams, scratch, scratch_len);
    return AD_ROUTE_FOUND;
}

void ad_router_allow_header(unsigned allowed, char *out, size_t out_len)
{
    static const ad_method order[] = {AD_GET, AD_HEAD, AD_POST, AD_PUT, AD_PATCH, AD_DELETE, AD_OPTIONS};
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        if (!(allowed & order[i])) continue;
        int n = snprintf(out + used, out_len - used, "%s%s", used ? ", " : "", ad_method_name(order[i]));
        if (n < 0 || (size_t)n >= out_len - used) {
            out[used] = '\0'; /* never leave half a name */
            break;
        }
        used += (size_t)n;
    }
}
