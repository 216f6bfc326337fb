#include "api/async.h"

void ad_async_on_hangup(ad_async *a, void (*fn)(void *ud), void *ud)
{
    a->ops->on_hangup(a, fn, ud);
}

void ad_async_complete(ad_async *a, ad_response *res)
{
    a->ops->complete(a, res);
}
