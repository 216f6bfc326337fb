/*
 * agentctl's HTTP client: one request to agentd with libcurl, the token as a
 * Bearer header, JSON in and out; or one streamed inference, its
 * Server-Sent Events handed to a callback as they arrive. agentctl talks to
 * agentd over HTTP only.
 */
#ifndef CTL_CLIENT_H
#define CTL_CLIENT_H

#include "base/err.h"

#include <cjson/cJSON.h>
#include <stddef.h>

/* Borrowed strings; they must outlive every call. */
typedef struct ctl_client {
    const char *url;   /* "http://host:port", no trailing '/' */
    const char *token; /* NULL: no Authorization header */
    /* Sent as Idempotency-Key on every POST but a stream's (NULL: none). */
    const char *idempotency_key;
    /* Seconds without a byte from the server before a request is given up
     * (0: CTL_STALL_DEFAULT_S). */
    long stall_s;
} ctl_client;

/* agentd's streams send a keep-alive every 15 s by default, and no answer
 * takes minutes to start: five silent minutes mean it is stuck. */
#define CTL_STALL_DEFAULT_S 300

/* The longest Idempotency-Key agentd accepts. */
#define CTL_IDEMPOTENCY_KEY_MAX 255

/* One answer. Caller-owned: ctl_reply_cleanup frees body and json. */
typedef struct ctl_reply {
    long status;
    char *body; /* NUL-terminated; empty for a stream that succeeded */
    size_t len;
    cJSON *json; /* the parsed body, or NULL when it is not JSON */
} ctl_reply;

/* Called for each event of a stream: `event` ("token", "done", "error") and
 * its `data` line, both NUL-terminated and valid only during the call. */
typedef void (*ctl_sse_fn)(const char *event, const char *data, void *arg);

/* Initializes libcurl once for the process; 0 or AD_EINTERNAL. */
int ctl_client_global_init(ad_err *e);
void ctl_client_global_cleanup(void);

/* `method` `path` (starting with '/') with `body` as JSON (NULL: none). Any
 * HTTP status is a success of this call (the reply says which); AD_EUPSTREAM
 * when the server cannot be reached or the exchange breaks. A POST with an
 * idempotency key whose connection broke before any answer is sent once
 * more, with the same key, so agentd does its work at most once. */
int ctl_client_call(const ctl_client *c, const char *method, const char *path, const cJSON *body,
                    ctl_reply *out, ad_err *e);

/* POST `path` with `body`, asking for text/event-stream. When the server
 * streams, each event goes to `fn` as it arrives and the reply's body stays
 * empty; otherwise (an error before the stream) the reply has the JSON. */
int ctl_client_stream(const ctl_client *c, const char *path, const cJSON *body, ctl_sse_fn fn,
                      void *arg, ctl_reply *out, ad_err *e);

/* Fills `out` with a fresh random key ("agentctl-" and 32 hex digits, from
 * getrandom()); 0 or AD_EIO. */
int ctl_client_random_key(char out[42], ad_err *e);

/* 0 when `key` is one agentd accepts as an Idempotency-Key (1 to 255
 * printable ASCII characters), else AD_EINVAL saying why. */
int ctl_client_check_key(const char *key, ad_err *e);

/* `s` percent-encoded for one path segment or query value, malloc'ed. */
char *ctl_client_escape(const char *s);

void ctl_reply_cleanup(ctl_reply *r);

#endif
