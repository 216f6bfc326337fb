/* agentctl's libcurl client (see client.h). */
#include "ctl/client.h"

#include "base/buf.h"
#include "base/mem.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* A reply larger than this is not one agentd sends; stop reading. */
#define REPLY_MAX ((size_t)256 << 20)
/* One event of a stream (agentd's largest is the done event: the whole
 * answer and its sources) is far below this; a stream that never ends an
 * event must not grow the buffer without bound. */
#define EVENT_MAX ((size_t)4 << 20)
/* A POST whose connection broke before any answer is sent once more, with
 * the same Idempotency-Key, after this pause. */
#define RETRY_PAUSE_MS 300
/* A 429 (the caller's rate limit, or its cap on inferences running at once)
 * is waited out and asked again, as often as this, when its Retry-After is
 * no longer than RATE_WAIT_MAX_S; a longer wait is the user's to decide. */
#define RATE_TRIES 3
#define RATE_WAIT_MAX_S 60

typedef struct exchange {
    ad_buf body;
    CURL *curl;
    int is_stream;  /* -1 until the first bytes decide */
    ad_buf pending; /* stream bytes not yet ending an event */
    ctl_sse_fn fn;
    void *arg;
    const char *overflow; /* why on_data stopped the transfer, or NULL */
} exchange;

int ctl_client_global_init(ad_err *e)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return ad_err_set(e, AD_EINTERNAL, "libcurl failed to initialize");
    return 0;
}

void ctl_client_global_cleanup(void)
{
    curl_global_cleanup();
}

/* One event block ("event: x\ndata: {...}"), without its blank line. */
static void dispatch_event(exchange *x, char *block)
{
    const char *event = "message";
    ad_buf data;
    ad_buf_init(&data);
    for (char *line = block; line && *line;) {
        char *next = strchr(line, '\n');
        if (next) *next++ = '\0';
        size_t n = strlen(line);
        if (n && line[n - 1] == '\r') line[n - 1] = '\0';
        if (!strncmp(line, "event:", 6)) {
            event = line + 6 + (line[6] == ' ');
        } else if (!strncmp(line, "data:", 5)) {
            if (data.len) ad_buf_putc(&data, '\n');
            ad_buf_puts(&data, line + 5 + (line[5] == ' '));
        }
        line = next;
    }
    if (data.len || strcmp(event, "message")) x->fn(event, data.data ? data.data : "", x->arg);
    ad_buf_cleanup(&data);
}

/* Hands every complete event (ended by a blank line) to the callback; -1
 * when the bytes not yet ending an event pass EVENT_MAX. */
static int feed_stream(exchange *x, const char *p, size_t n)
{
    if (x->pending.len + n > EVENT_MAX) return -1;
    ad_buf_append(&x->pending, p, n);
    if (!x->pending.data) return 0;
    for (;;) {
        char *end = strstr(x->pending.data, "\n\n");
        size_t sep = 2;
        char *crlf = strstr(x->pending.data, "\r\n\r\n");
        if (crlf && (!end || crlf < end)) end = crlf, sep = 4;
        if (!end) return 0;
        *end = '\0';
        size_t used = (size_t)(end - x->pending.data) + sep;
        dispatch_event(x, x->pending.data);
        memmove(x->pending.data, x->pending.data + used, x->pending.len - used + 1);
        x->pending.len -= used;
    }
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *arg)
{
    exchange *x = arg;
    size_t n = ad_size_mul(size, nmemb);
    if (x->is_stream < 0) {
        const char *ct = NULL;
        x->is_stream = x->fn &&
                       curl_easy_getinfo(x->curl, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct &&
                       !strncmp(ct, "text/event-stream", 17);
    }
    if (x->is_stream) {
        if (feed_stream(x, p, n) == 0) return n;
        x->overflow = "an event of agentd's stream is over 4 MiB; stopped reading";
        return 0;
    }
    if (x->body.len + n > REPLY_MAX) {
        x->overflow = "agentd's answer is over 256 MiB; stopped reading";
        return 0;
    }
    ad_buf_append(&x->body, p, n);
    return n;
}

/* The seconds a 429's Retry-After asks for, or -1 when it is missing, not
 * delta-seconds, or longer than RATE_WAIT_MAX_S. */
static long rate_wait_s(CURL *curl)
{
    struct curl_header *h = NULL;
    if (curl_easy_header(curl, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK) return -1;
    char *end;
    errno = 0;
    long s = strtol(h->value, &end, 10);
    if (errno || end == h->value || *end || s < 0 || s > RATE_WAIT_MAX_S) return -1;
    return s;
}

/* Whether a failed exchange may be sent again: the connection broke before
 * any answer came (agentd may or may not have done the work, which the
 * Idempotency-Key makes safe to ask twice). */
static int worth_retrying(CURLcode cc, long status)
{
    return status == 0 &&
           (cc == CURLE_GOT_NOTHING || cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR);
}

static int perform(const ctl_client *c, const char *method, const char *path, const cJSON *body,
                   int stream, ctl_sse_fn fn, void *arg, ctl_reply *out, ad_err *e)
{
    memset(out, 0, sizeof(*out));
    exchange x = {.is_stream = -1, .fn = fn, .arg = arg};
    ad_buf_init(&x.body);
    ad_buf_init(&x.pending);
    ad_buf url, auth, idem;
    ad_buf_init(&url);
    ad_buf_init(&auth);
    ad_buf_init(&idem);
    ad_buf_printf(&url, "%s%s", c->url, path);
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    /* cJSON fails only when out of memory, which is fatal here as elsewhere. */
    ad_assert(text || !body);
    struct curl_slist *hdrs = NULL;
    CURL *curl = curl_easy_init();
    ad_assert(curl);
    x.curl = curl;
    hdrs =
        curl_slist_append(hdrs, stream ? "Accept: text/event-stream" : "Accept: application/json");
    if (text) hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    if (c->token) {
        ad_buf_printf(&auth, "Authorization: Bearer %s", c->token);
        hdrs = curl_slist_append(hdrs, auth.data);
    }
    /* A stream cannot be replayed by agentd, so it is never sent twice and
     * carries no key. */
    int keyed = !stream && c->idempotency_key && !strcmp(method, "POST");
    if (keyed) {
        ad_buf_printf(&idem, "Idempotency-Key: %s", c->idempotency_key);
        hdrs = curl_slist_append(hdrs, idem.data);
    }
    hdrs = curl_slist_append(hdrs, "Expect:");
    ad_assert(hdrs);
    curl_easy_setopt(curl, CURLOPT_URL, url.data);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (!strcmp(method, "HEAD")) curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    if (text) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, text);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(text));
    } else if (!strcmp(method, "POST")) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    long stall_s = c->stall_s > 0 ? c->stall_s : CTL_STALL_DEFAULT_S;
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, stall_s);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "agentctl/0.1");
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode cc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK && keyed && worth_retrying(cc, status)) {
        struct timespec pause = {0, RETRY_PAUSE_MS * 1000000L};
        nanosleep(&pause, NULL);
        errbuf[0] = '\0';
        ad_buf_reset(&x.body);
        cc = curl_easy_perform(curl);
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    }
    /* A 429 did nothing (a POST's key is not taken by it), so asking again
     * after the wait it names is safe for every method. */
    for (int tries = 1; cc == CURLE_OK && status == 429 && tries < RATE_TRIES; tries++) {
        long wait = rate_wait_s(curl);
        if (wait < 0) break;
        fprintf(stderr, "agentctl: agentd says too many requests (429); asking again in %ld s\n", wait);
        struct timespec pause = {wait, 0};
        nanosleep(&pause, NULL);
        errbuf[0] = '\0';
        ad_buf_reset(&x.body);
        ad_buf_reset(&x.pending);
        x.is_stream = -1;
        cc = curl_easy_perform(curl);
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    }
    int rc = 0;
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
    if (cc != CURLE_OK && x.overflow) {
        rc = ad_err_set(e, AD_EUPSTREAM, "%s", x.overflow);
    } else if (cc == CURLE_OPERATION_TIMEDOUT) {
        rc = ad_err_set(e, AD_EUPSTREAM, "agentd at %s sent nothing for %ld s; gave up", c->url,
                        stall_s);
    } else if (cc != CURLE_OK && status) {
        /* It answered, then the exchange broke: "cannot reach" would mislead. */
        rc = ad_err_set(e, AD_EUPSTREAM, "the connection to agentd at %s broke off: %s", c->url,
                        why);
    } else if (cc != CURLE_OK) {
        rc = ad_err_set(e, AD_EUPSTREAM, "cannot reach agentd at %s: %s", c->url, why);
    } else {
        out->status = status;
        if (!x.body.data) ad_buf_puts(&x.body, "");
        out->body = ad_buf_steal(&x.body, &out->len);
        out->json = cJSON_ParseWithLength(out->body, out->len);
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
    cJSON_free(text);
    ad_buf_cleanup(&x.body);
    ad_buf_cleanup(&x.pending);
    ad_buf_cleanup(&url);
    ad_buf_cleanup(&idem);
    /* The header held the token; wipe it before the memory goes back. */
    if (auth.data) memset(auth.data, 0, auth.len);
    ad_buf_cleanup(&auth);
    return rc;
}

int ctl_client_call(const ctl_client *c, const char *method, const char *path, const cJSON *body,
                    ctl_reply *out, ad_err *e)
{
    return perform(c, method, path, body, 0, NULL, NULL, out, e);
}

int ctl_client_stream(const ctl_client *c, const char *path, const cJSON *body, ctl_sse_fn fn,
                      void *arg, ctl_reply *out, ad_err *e)
{
    return perform(c, "POST", path, body, 1, fn, arg, out, e);
}

int ctl_client_random_key(char out[42], ad_err *e)
{
    unsigned char raw[16];
    size_t got = 0;
    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return ad_err_set(e, AD_EIO, "getrandom: %s", strerror(errno));
        got += (size_t)n;
    }
    memcpy(out, "agentctl-", 9);
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(out + 9 + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

int ctl_client_check_key(const char *key, ad_err *e)
{
    size_t n = strlen(key);
    if (n == 0 || n > CTL_IDEMPOTENCY_KEY_MAX)
        return ad_err_set(e, AD_EINVAL, "--idempotency-key must be 1 to %d characters, got %zu",
                          CTL_IDEMPOTENCY_KEY_MAX, n);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)key[i] < 0x20 || (unsigned char)key[i] > 0x7e)
            return ad_err_set(e, AD_EINVAL,
                              "--idempotency-key must be printable ASCII, got byte 0x%02x at %zu",
                              (unsigned char)key[i], i + 1);
    return 0;
}

char *ctl_client_escape(const char *s)
{
    char *esc = curl_easy_escape(NULL, s, 0);
    ad_assert(esc);
    char *copy = ad_strdup(esc);
    curl_free(esc);
    return copy;
}

void ctl_reply_cleanup(ctl_reply *r)
{
    free(r->body);
    cJSON_Delete(r->json);
    memset(r, 0, sizeof(*r));
}
