#include "handlers/metrics.h"

/* Groundwork for issue 12: the route and its guard exist; the series come
 * with the metrics branch. */
void handle_metrics(ad_request *req, ad_response *res)
{
    (void)req;
    res->status = 200;
    res->content_type = "text/plain; version=0.0.4; charset=utf-8";
}
