/*
 * Fuzz target: server/router.c against the service's real table (ad_routes).
 * The input is the path (cut at its first NUL, as a URL from libmicrohttpd
 * is); every method is tried with a scratch buffer of exactly strlen+1 bytes,
 * as server/http.c allocates it. A found route must belong to the method, its
 * parameters must be non-empty, slash-free substrings of the path that fit
 * in the scratch, and the Allow header must fit any buffer it is given.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(c) ((c) ? (void)0 : abort())

static size_t fuzz_count_params(const char *pattern)
{
    size_t n = 0;
    for (const char *p = pattern; *p; p++)
        n += *p == '{';
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *path = malloc(size + 1);
    memcpy(path, data, size);
    path[size] = '\0';
    size_t len = strlen(path);
    size_t scratch_len = len + 1;
    char *scratch = malloc(scratch_len);
    static const ad_method methods[] = {AD_GET,   AD_POST,    AD_PUT, AD_DELETE,
                                        AD_PATCH, AD_OPTIONS, AD_HEAD};
    unsigned first_allowed = 0;
    for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
        const ad_route *route = NULL;
        const char *params[AD_MAX_PARAMS];
        size_t nparams = 0;
        unsigned allowed = 0;
        ad_route_result rr = ad_router_match(ad_routes, ad_nroutes, methods[m], path, &route,
                                             params, &nparams, scratch, scratch_len, &allowed);
        /* Which methods a path allows does not depend on the method asked. */
        if (m == 0) first_allowed = allowed;
        FUZZ_ASSERT(allowed == first_allowed);
        if (rr == AD_ROUTE_NO_PATH) {
            FUZZ_ASSERT(route == NULL && allowed == 0);
            continue;
        }
        FUZZ_ASSERT(allowed & AD_OPTIONS);
        if (rr == AD_ROUTE_NO_METHOD) {
            FUZZ_ASSERT(route == NULL && !(allowed & methods[m] && methods[m] != AD_OPTIONS));
            continue;
        }
        FUZZ_ASSERT(rr == AD_ROUTE_FOUND && route && route->method == methods[m]);
        FUZZ_ASSERT(allowed & methods[m]);
        FUZZ_ASSERT(nparams == fuzz_count_params(route->pattern) && nparams <= AD_MAX_PARAMS);
        size_t used = 0;
        for (size_t i = 0; i < nparams; i++) {
            size_t plen = strlen(params[i]);
            FUZZ_ASSERT(plen > 0 && !strchr(params[i], '/'));
            FUZZ_ASSERT(params[i] >= scratch && params[i] + plen < scratch + scratch_len);
            FUZZ_ASSERT(memmem(path, len, params[i], plen) != NULL);
            used += plen + 1;
        }
        FUZZ_ASSERT(used <= scratch_len);
        /* A literal segment beats a parameter: a route of this method whose
         * pattern is the path itself wins (DELETE /api/v1/agents/all). */
        for (size_t i = 0; i < ad_nroutes; i++)
            if (ad_routes[i].method == methods[m] && !strcmp(ad_routes[i].pattern, path))
                FUZZ_ASSERT(route == &ad_routes[i]);
    }
    /* The Allow header, in buffers of every small size. */
    char allow[64];
    for (size_t cap = 1; cap <= sizeof(allow); cap += 7) {
        memset(allow, 'x', sizeof(allow));
        ad_router_allow_header(first_allowed, allow, cap);
        FUZZ_ASSERT(memchr(allow, '\0', cap) != NULL);
    }
    free(scratch);
    free(path);
    return 0;
}
