#include "llm/gemini.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "llm/retry.h"

/* cJSON reports allocation failure as NULL; agentd treats OOM as fatal in one
 * place, so every builder call goes through this. */
static cJSON *json_checked(cJSON *item)
{
    ad_assert(item != NULL);
    return item;
}

static void json_add_text_part(cJSON *parts, const char *text)
{
    cJSON *part = json_checked(cJSON_CreateObject());
    json_checked(cJSON_AddStringToObject(part, "text", text));
    cJSON_AddItemToArray(parts, part);
}

static cJSON *json_add_turn(cJSON *contents, const char *role)
{
    cJSON *turn = json_checked(cJSON_CreateObject());
    json_checked(cJSON_AddStringToObject(turn, "role", role));
    cJSON *parts = json_checked(cJSON_AddArrayToObject(turn, "parts"));
    cJSON_AddItemToArray(contents, turn);
    return parts;
}

char *gemini_request_json(const llm_request *req, ad_err *e)
{
    if (!req->prompt || !req->prompt[0]) {
        ad_err_set(e, AD_EINVAL, "prompt is required");
        return NULL;
    }
    for (size_t i = 0; i < req->fewshot_count; i++) {
        if (!req->fewshot_prompts || !req->fewshot_answers || !req->fewshot_prompts[i] ||
            !req->fewshot_answers[i]) {
            ad_err_set(e, AD_EINVAL, "few-shot pair %zu lacks a prompt or an answer", i);
            return NULL;
        }
    }
    cJSON *root = json_checked(cJSON_CreateObject());
    if (req->system_instruction && req->system_instruction[0]) {
        cJSON *si = json_checked(cJSON_AddObjectToObject(root, "systemInstruction"));
        cJSON *parts = json_checked(cJSON_AddArrayToObject(si, "parts"));
        json_add_text_part(parts, req->system_instruction);
    }
    cJSON *contents = json_checked(cJSON_AddArrayToObject(root, "contents"));
    for (size_t i = 0; i < req->fewshot_count; i++) {
        json_add_text_part(json_add_turn(contents, "user"), req->fewshot_prompts[i]);
        json_add_text_part(json_add_turn(contents, "model"), req->fewshot_answers[i]);
    }
    /* The context and the question travel as two parts of one user turn, the
     * question last, so the model reads the passages before what to do with them. */
    cJSON *parts = json_add_turn(contents, "user");
    if (req->context && req->context[0]) {
        ad_buf ctx;
        ad_buf_init(&ctx);
        ad_buf_puts(&ctx, "Context:\n");
        ad_buf_puts(&ctx, req->context);
        json_add_text_part(parts, ctx.data);
        ad_buf_cleanup(&ctx);
    }
    json_add_text_part(parts, req->prompt);
    if (req->max_output_tokens > 0 || req->temperature >= 0) {
        cJSON *gc = json_checked(cJSON_AddObjectToObject(root, "generationConfig"));
        if (req->max_output_tokens > 0)
            json_checked(cJSON_AddNumberToObject(gc, "maxOutputTokens", req->max_output_tokens));
        if (req->temperature >= 0)
            json_checked(cJSON_AddNumberToObject(gc, "temperature", req->temperature));
    }
    char *out = cJSON_PrintUnformatted(root);
    ad_assert(out != NULL);
    cJSON_Delete(root);
    return out;
}

void gemini_reply_init(gemini_reply *r)
{
    memset(r, 0, sizeof(*r));
    ad_buf_init(&r->text);
    r->prompt_tokens = r->output_tokens = r->total_tokens = -1;
}

void gemini_reply_cleanup(gemini_reply *r)
{
    ad_buf_cleanup(&r->text);
}

static void copy_reason(char dst[GEMINI_REASON_MAX], const char *src)
{
    snprintf(dst, GEMINI_REASON_MAX, "%s", src);
}

static int parse_fail(ad_err *e, const char *what)
{
    return ad_err_set(e, AD_EUPSTREAM, "response is not a Gemini reply: %s", what);
}

/* Reads an optional integer field; a present field of the wrong type fails. */
static int read_count(const cJSON *obj, const char *name, long *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!v) return 0;
    /* The upper bound keeps the cast defined (1e99 or inf would overflow it). */
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 1e15)) return -1;
    *out = (long)v->valuedouble;
    return 0;
}

static int parse_candidate(const cJSON *cand, gemini_reply *r, ad_err *e)
{
    if (!cJSON_IsObject(cand)) return parse_fail(e, "candidate is not an object");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(cand, "content");
    if (content) {
        if (!cJSON_IsObject(content)) return parse_fail(e, "content is not an object");
        const cJSON *parts = cJSON_GetObjectItemCaseSensitive(content, "parts");
        if (parts && !cJSON_IsArray(parts)) return parse_fail(e, "parts is not an array");
        const cJSON *part;
        cJSON_ArrayForEach(part, parts)
        {
            if (!cJSON_IsObject(part)) return parse_fail(e, "part is not an object");
            const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
            /* Parts without text (function calls, thoughts signatures) carry
             * nothing this client relays; a text that is not a string is wrong. */
            if (!text) continue;
            if (!cJSON_IsString(text)) return parse_fail(e, "part text is not a string");
            ad_buf_puts(&r->text, text->valuestring);
        }
    }
    const cJSON *finish = cJSON_GetObjectItemCaseSensitive(cand, "finishReason");
    if (finish) {
        if (!cJSON_IsString(finish)) return parse_fail(e, "finishReason is not a string");
        copy_reason(r->finish_reason, finish->valuestring);
    }
    return 0;
}

static int parse_reply_object(const cJSON *root, gemini_reply *r, ad_err *e)
{
    const cJSON *cands = cJSON_GetObjectItemCaseSensitive(root, "candidates");
    const cJSON *feedback = cJSON_GetObjectItemCaseSensitive(root, "promptFeedback");
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(root, "usageMetadata");
    if (!cands && !feedback && !usage)
        return parse_fail(e, "no candidates, promptFeedback or usageMetadata");
    if (cands) {
        if (!cJSON_IsArray(cands)) return parse_fail(e, "candidates is not an array");
        const cJSON *first = cJSON_GetArrayItem(cands, 0);
        if (first && parse_candidate(first, r, e) != 0) return AD_EUPSTREAM;
        if (first) r->candidates++;
    }
    if (feedback) {
        if (!cJSON_IsObject(feedback)) return parse_fail(e, "promptFeedback is not an object");
        const cJSON *block = cJSON_GetObjectItemCaseSensitive(feedback, "blockReason");
        if (block) {
            if (!cJSON_IsString(block)) return parse_fail(e, "blockReason is not a string");
            copy_reason(r->block_reason, block->valuestring);
        }
    }
    if (usage) {
        if (!cJSON_IsObject(usage)) return parse_fail(e, "usageMetadata is not an object");
        if (read_count(usage, "promptTokenCount", &r->prompt_tokens) != 0 ||
            read_count(usage, "candidatesTokenCount", &r->output_tokens) != 0 ||
            read_count(usage, "totalTokenCount", &r->total_tokens) != 0)
            return parse_fail(e, "usageMetadata count is not a number");
    }
    return 0;
}

int gemini_parse_response(const char *body, size_t len, gemini_reply *r, size_t *delta_off,
                          ad_err *e)
{
    if (delta_off) *delta_off = r->text.len;
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!root) return parse_fail(e, "not JSON");
    int rc;
    if (!cJSON_IsObject(root)) {
        rc = parse_fail(e, "not a JSON object");
    } else {
        size_t before = r->text.len;
        int candidates = r->candidates;
        rc = parse_reply_object(root, r, e);
        if (rc != 0) {
            /* Leave no half-appended text behind a failed chunk. */
            r->candidates = candidates;
            r->text.len = before;
            if (r->text.data) r->text.data[before] = '\0';
        }
    }
    cJSON_Delete(root);
    return rc;
}

int gemini_reply_blocked(const gemini_reply *r, const char **reason)
{
    static const char *const refusals[] = {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII",
                                           "IMAGE_SAFETY"};
    if (r->block_reason[0]) {
        if (reason) *reason = r->block_reason;
        return 1;
    }
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
        if (strcmp(r->finish_reason, refusals[i]) == 0) {
            if (reason) *reason = r->finish_reason;
            return 1;
        }
    }
    return 0;
}

int gemini_reply_empty(const gemini_reply *r)
{
    return r->candidates == 0 && !r->block_reason[0];
}

static void parse_retry_info(const cJSON *details, gemini_error *out)
{
    const cJSON *d;
    cJSON_ArrayForEach(d, details)
    {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(d, "@type");
        const cJSON *delay = cJSON_GetObjectItemCaseSensitive(d, "retryDelay");
        if (!cJSON_IsString(type) || !cJSON_IsString(delay)) continue;
        if (strcmp(type->valuestring, "type.googleapis.com/google.rpc.RetryInfo") != 0) continue;
        out->retry_delay_ms = llm_retry_parse_duration(delay->valuestring);
        return;
    }
}

int gemini_parse_error(const char *body, size_t len, gemini_error *out)
{
    memset(out, 0, sizeof(*out));
    out->retry_delay_ms = -1;
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *err = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "error") : NULL;
    if (!cJSON_IsObject(err)) {
        cJSON_Delete(root);
        return AD_EUPSTREAM;
    }
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code");
    const cJSON *message = cJSON_GetObjectItemCaseSensitive(err, "message");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(err, "status");
    const cJSON *details = cJSON_GetObjectItemCaseSensitive(err, "details");
    /* Only a plausible HTTP status converts: a huge number would overflow the cast. */
    if (cJSON_IsNumber(code) && code->valuedouble >= 0 && code->valuedouble <= 999)
        out->code = (long)code->valuedouble;
    if (cJSON_IsString(message)) snprintf(out->message, sizeof(out->message), "%s", message->valuestring);
    if (cJSON_IsString(status)) copy_reason(out->status, status->valuestring);
    if (cJSON_IsArray(details)) parse_retry_info(details, out);
    cJSON_Delete(root);
    return 0;
}

void gemini_sse_init(gemini_sse *p)
{
    memset(p, 0, sizeof(*p));
    ad_buf_init(&p->line);
    ad_buf_init(&p->data);
}

void gemini_sse_cleanup(gemini_sse *p)
{
    ad_buf_cleanup(&p->line);
    ad_buf_cleanup(&p->data);
}

static int sse_dispatch(gemini_sse *p, gemini_sse_event_fn fn, void *ud)
{
    if (!p->has_data) return 0;
    p->has_data = 0;
    int rc = fn(ud, p->data.data ? p->data.data : "", p->data.len);
    ad_buf_reset(&p->data);
    return rc;
}

/* One complete line, without its terminator. */
static int sse_line(gemini_sse *p, gemini_sse_event_fn fn, void *ud)
{
    const char *s = p->line.data ? p->line.data : "";
    size_t n = p->line.len;
    if (n == 0) return sse_dispatch(p, fn, ud);
    if (s[0] == ':') return 0;
    const char *colon = memchr(s, ':', n);
    size_t name_len = colon ? (size_t)(colon - s) : n;
    if (name_len != 4 || memcmp(s, "data", 4) != 0) return 0;
    const char *v = colon ? colon + 1 : s + n;
    if (v < s + n && *v == ' ') v++;
    if (p->has_data) ad_buf_putc(&p->data, '\n');
    ad_buf_append(&p->data, v, (size_t)(s + n - v));
    p->has_data = 1;
    return 0;
}

int gemini_sse_feed(gemini_sse *p, const char *bytes, size_t n, gemini_sse_event_fn fn, void *ud)
{
    size_t i = 0;
    while (i < n) {
        if (p->after_cr && bytes[i] == '\n') {
            p->after_cr = 0;
            i++;
            continue;
        }
        p->after_cr = 0;
        size_t j = i;
        while (j < n && bytes[j] != '\n' && bytes[j] != '\r') j++;
        if (p->line.len + (j - i) > GEMINI_SSE_LINE_MAX) return AD_ETOOBIG;
        ad_buf_append(&p->line, bytes + i, j - i);
        if (j == n) break;
        p->after_cr = bytes[j] == '\r';
        i = j + 1;
        int rc = sse_line(p, fn, ud);
        ad_buf_reset(&p->line);
        if (rc != 0) return rc;
    }
    return 0;
}

int gemini_sse_finish(gemini_sse *p, gemini_sse_event_fn fn, void *ud)
{
    if (p->line.len > 0) {
        int rc = sse_line(p, fn, ud);
        ad_buf_reset(&p->line);
        if (rc != 0) return rc;
    }
    return sse_dispatch(p, fn, ud);
}
