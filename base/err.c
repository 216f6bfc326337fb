#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int ad_err_set(ad_err *e, int code, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        e->code = code;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *ad_err_name(int code)
{
    switch (code) {
    case AD_OK: return "ok";
    case AD_EINVAL: return "invalid";
    case AD_ENOTFOUND: return "not_found";
    case AD_EEXIST: return "exists";
    case AD_EBUSY: return "busy";
    case AD_ECONFLICT: return "conflict";
    case AD_ESTATE: return "bad_state";
    case AD_ETOOBIG: return "too_large";
    case AD_EIO: return "io_error";
    case AD_EUNAVAILABLE: return "unavailable";
    case AD_ECANCELLED: return "cancelled";
    case AD_EUPSTREAM: return "upstream_error";
    default: return "internal_error";
    }
}

void ad_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"assertion failed: %s\",\"file\":\"%s\",\"line\":%d}\n",
            expr, file, line);
    abort();
}
