#include "handlers/dashboard.h"

/* Groundwork for issue 12: the routes exist; the page comes with the
 * dashboard branch. */
void handle_dashboard_index(ad_request *req, ad_response *res)
{
    (void)req;
    res->status = 200;
    res->content_type = "text/html; charset=utf-8";
    ad_buf_puts(&res->body, "<!doctype html><title>agentd</title>\n");
}

void handle_dashboard_asset(ad_request *req, ad_response *res)
{
    ad_response_error(res, req, 404, "not_found", "no dashboard file named '%.64s'", req->params[0]);
}
