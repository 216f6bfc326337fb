/* `agentd --healthcheck`: a minimal HTTP/1.0 client for the service's own
 * GET /health, so a container needs no curl. */
#ifndef AD_SERVER_HEALTHCHECK_H
#define AD_SERVER_HEALTHCHECK_H

/* Returns 0 when GET /health on host:port answers 200 within timeout_ms. */
int healthcheck_probe(const char *host, int port, int timeout_ms);

#endif
