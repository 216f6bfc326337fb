/* The web dashboard: its page at GET / and its files at GET /assets/{name},
 * built into the binary (web/, tools/embed_assets.c). */
#ifndef AD_HANDLERS_DASHBOARD_H
#define AD_HANDLERS_DASHBOARD_H

#include "api/request.h"

/* The page (web/index.html). */
void handle_dashboard_index(ad_request *req, ad_response *res);

/* One of the page's files; 404 not_found for a name that is none. */
void handle_dashboard_asset(ad_request *req, ad_response *res);

#endif
