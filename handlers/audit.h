/* GET /api/v1/audit (admin scope): the audit log, newest first, paginated. */
#ifndef AD_HANDLERS_AUDIT_H
#define AD_HANDLERS_AUDIT_H

#include "api/request.h"

void handle_audit_list(ad_request *req, ad_response *res);

#endif
