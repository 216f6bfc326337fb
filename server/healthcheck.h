/* `agentd --healthcheck`: a minimal HTTP/1.0 client for the service's own
 * GET /health, so a container needs no curl. */
#ifndef AD_SERVER_HEALTHCHECK_H
#define AD_SERVER_HEALTHCHECK_H

#include "base/buf.h"

/* Returns 0 when GET /health on host:port answers 200 within timeout_ms.
 * Appends one line to `report` saying what it found, e.g.
 * "healthy: http://127.0.0.1:8080/health 200 in 3 ms" or
 * "unreachable: http://127.0.0.1:8080/health: Connection refused". */
int healthcheck_probe(const char *host, int port, int timeout_ms, ad_buf *report);

#endif
