/*
 * Fuzz target: the Gemini wire format (llm/gemini.c). The input is read as a
 * whole response body (gemini_parse_response, gemini_parse_error) and as an
 * SSE stream fed to gemini_sse_feed in chunks whose sizes come from the
 * first bytes, each event parsed as a streamed chunk, as llm/client.c does.
 * The events must not depend on where the stream was cut: a second feed in
 * one piece must yield the same events.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "llm/gemini.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(c) ((c) ? (void)0 : abort())
#define FUZZ_CUTS 8

typedef struct fuzz_stream {
    gemini_reply reply;
    ad_buf events; /* each event's data, then a 0xFF separator */
    size_t count;
} fuzz_stream;

static int fuzz_on_event(void *ud, const char *data, size_t len)
{
    fuzz_stream *s = ud;
    FUZZ_ASSERT(data[len] == '\0');
    ad_buf_append(&s->events, data, len);
    ad_buf_putc(&s->events, (char)0xFF);
    s->count++;
    size_t before = s->reply.text.len, off = 0;
    ad_err e = {0};
    int rc = gemini_parse_response(data, len, &s->reply, &off, &e);
    FUZZ_ASSERT(off == before);
    FUZZ_ASSERT(rc == 0 ? s->reply.text.len >= before : (s->reply.text.len == before && e.msg[0]));
    return 0;
}

static void fuzz_check_reply(const gemini_reply *r)
{
    FUZZ_ASSERT(memchr(r->finish_reason, '\0', GEMINI_REASON_MAX) != NULL);
    FUZZ_ASSERT(memchr(r->block_reason, '\0', GEMINI_REASON_MAX) != NULL);
    FUZZ_ASSERT(r->text.data == NULL || r->text.data[r->text.len] == '\0');
    const char *why = NULL;
    if (gemini_reply_blocked(r, &why)) FUZZ_ASSERT(why != NULL);
}

static void fuzz_stream_init(fuzz_stream *s)
{
    gemini_reply_init(&s->reply);
    ad_buf_init(&s->events);
    s->count = 0;
}

static void fuzz_stream_cleanup(fuzz_stream *s)
{
    gemini_reply_cleanup(&s->reply);
    ad_buf_cleanup(&s->events);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;

    gemini_reply whole;
    gemini_reply_init(&whole);
    ad_err e = {0};
    size_t off = 1;
    if (gemini_parse_response(body, size, &whole, &off, &e) != 0) FUZZ_ASSERT(whole.text.len == 0);
    FUZZ_ASSERT(off == 0);
    fuzz_check_reply(&whole);
    gemini_reply_cleanup(&whole);

    gemini_error err;
    if (gemini_parse_error(body, size, &err) == 0) {
        FUZZ_ASSERT(memchr(err.status, '\0', sizeof(err.status)) != NULL);
        FUZZ_ASSERT(memchr(err.message, '\0', sizeof(err.message)) != NULL);
        FUZZ_ASSERT(err.retry_delay_ms >= -1);
    } else {
        FUZZ_ASSERT(err.code == 0 && err.retry_delay_ms == -1);
    }

    /* The stream, cut where the first bytes say (the cut bytes are part of
     * the stream too, so every input is also a plain stream). */
    size_t cuts[FUZZ_CUTS];
    for (size_t i = 0; i < FUZZ_CUTS; i++)
        cuts[i] = i < size ? data[i] : 1;
    fuzz_stream chunked, flat;
    fuzz_stream_init(&chunked);
    fuzz_stream_init(&flat);
    gemini_sse sse;
    gemini_sse_init(&sse);
    size_t pos = 0;
    for (size_t k = 0; pos < size; k++) {
        size_t n = cuts[k % FUZZ_CUTS] % 64;
        if (n == 0) /* an empty read, then one byte, so the loop moves on */
            FUZZ_ASSERT(gemini_sse_feed(&sse, body + pos, 0, fuzz_on_event, &chunked) == 0), n = 1;
        if (n > size - pos) n = size - pos;
        FUZZ_ASSERT(gemini_sse_feed(&sse, body + pos, n, fuzz_on_event, &chunked) == 0);
        pos += n;
    }
    FUZZ_ASSERT(gemini_sse_finish(&sse, fuzz_on_event, &chunked) == 0);
    gemini_sse_cleanup(&sse);

    gemini_sse_init(&sse);
    FUZZ_ASSERT(gemini_sse_feed(&sse, body, size, fuzz_on_event, &flat) == 0);
    FUZZ_ASSERT(gemini_sse_finish(&sse, fuzz_on_event, &flat) == 0);
    gemini_sse_cleanup(&sse);

    FUZZ_ASSERT(chunked.count == flat.count && chunked.events.len == flat.events.len);
    FUZZ_ASSERT(chunked.events.len == 0 ||
                !memcmp(chunked.events.data, flat.events.data, flat.events.len));
    FUZZ_ASSERT(chunked.reply.text.len == flat.reply.text.len);
    fuzz_check_reply(&chunked.reply);
    fuzz_stream_cleanup(&chunked);
    fuzz_stream_cleanup(&flat);
    return 0;
}
