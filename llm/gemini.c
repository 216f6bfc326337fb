#include "llm/gemini.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

static const char *const thinking_levels[] = {"minimal", "low", "medium", "high"};

int gemini_thinking_level_valid(const char *level)
{
    for (size_t i = 0; i < sizeof(thinking_levels) / sizeof(thinking_levels[0]); i++)
        if (level && strcmp(level, thinking_levels[i]) == 0) return 1;
    return 0;
}

int gemini_thinking_level_rank(const char *level)
{
    for (size_t i = 0; i < sizeof(thinking_levels) / sizeof(thinking_levels[0]); i++)
        if (level && strcmp(level, thinking_levels[i]) == 0) return (int)i;
    return -1;
}

int gemini_min_output_tokens(const char *thinking_level, int thinking_budget)
{
    static const int level_reserve[] = {0, 512, 2048, 8192};
    int rank = gemini_thinking_level_rank(thinking_level);
    if (rank >= 0) return GEMINI_ANSWER_MIN_TOKENS + level_reserve[rank];
    if (thinking_budget > 0) return GEMINI_ANSWER_MIN_TOKENS + thinking_budget;
    if (thinking_budget == GEMINI_THINKING_BUDGET_OFF) return GEMINI_ANSWER_MIN_TOKENS;
    return GEMINI_ANSWER_MIN_TOKENS + 1024;
}

/* generationConfig.thinkingConfig: Gemini 3 takes a level, Gemini 2.5 a
 * budget, and a request with both is refused, so at most one is sent. */
static void json_add_thinking(cJSON *gc, const llm_request *req)
{
    cJSON *tc = json_checked(cJSON_AddObjectToObject(gc, "thinkingConfig"));
    if (req->thinking_level && req->thinking_level[0]) {
        char upper[16];
        size_t i = 0;
        for (; i < sizeof(upper) - 1 && req->thinking_level[i]; i++)
            upper[i] = (char)toupper((unsigned char)req->thinking_level[i]);
        upper[i] = '\0';
        json_checked(cJSON_AddStringToObject(tc, "thinkingLevel", upper));
        return;
    }
    int budget = req->thinking_budget == GEMINI_THINKING_BUDGET_OFF ? 0 : req->thinking_budget;
    json_checked(cJSON_AddNumberToObject(tc, "thinkingBudget", budget));
}

char *gemini_request_json(const llm_request *req, ad_err *e)
{
    if (!req->prompt || !req->prompt[0]) {
        ad_err_set(e, AD_EINVAL, "prompt is required");
        return NULL;
    }
    if (req->thinking_level && req->thinking_level[0] &&
        !gemini_thinking_level_valid(req->thinking_level)) {
        ad_err_set(e, AD_EINVAL, "thinking level must be minimal, low, medium or high");
        return NULL;
    }
    if (req->thinking_budget < GEMINI_THINKING_BUDGET_OFF) {
        ad_err_set(e, AD_EINVAL, "thinking budget %d is not a budget", req->thinking_budget);
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
    int thinking = (req->thinking_level && req->thinking_level[0]) || req->thinking_budget != 0;
    if (req->max_output_tokens > 0 || req->temperature >= 0 || thinking) {
        cJSON *gc = json_checked(cJSON_AddObjectToObject(root, "generationConfig"));
        if (req->max_output_tokens > 0)
            json_checked(cJSON_AddNumberToObject(gc, "maxOutputTokens", req->max_output_tokens));
        if (req->temperature >= 0)
            json_checked(cJSON_AddNumberToObject(gc, "temperature", req->temperature));
        if (thinking) json_add_thinking(gc, req);
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
    r->prompt_tokens = r->output_tokens = r->thinking_tokens = r->total_tokens = -1;
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

/* Reads an optional token count. proto3 JSON writes int64 as a number or as
 * a decimal string, and both are valid; anything else fails. */
static int read_count(const cJSON *obj, const char *name, long *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!v) return 0;
    if (cJSON_IsString(v)) {
        const char *s = v->valuestring;
        long n = 0;
        if (!*s) return -1;
        for (; *s; s++) {
            if (!isdigit((unsigned char)*s) || n > 100000000000000L) return -1;
            n = n * 10 + (*s - '0');
        }
        *out = n;
        return 0;
    }
    /* The upper bound keeps the cast defined (1e99 or inf would overflow it). */
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 1e15)) return -1;
    *out = (long)v->valuedouble;
    return 0;
}

/* Reads an optional string field into a fixed buffer; a non-string fails. */
static int read_text(const cJSON *obj, const char *name, char *dst, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!v) return 0;
    if (!cJSON_IsString(v)) return -1;
    snprintf(dst, cap, "%s", v->valuestring);
    return 0;
}

/* Nonzero when `content` is a Content: an object whose keys are parts and
 * role only. {} is an empty Content; {"invalid-field": true} is not one. */
static int content_is_content(const cJSON *content)
{
    const cJSON *k;
    cJSON_ArrayForEach(k, content)
    {
        if (strcmp(k->string, "parts") != 0 && strcmp(k->string, "role") != 0) return 0;
    }
    return 1;
}

static int parse_parts(const cJSON *parts, gemini_reply *r, int relay, ad_err *e)
{
    const cJSON *part;
    cJSON_ArrayForEach(part, parts)
    {
        if (!cJSON_IsObject(part)) return parse_fail(e, "part is not an object");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        const cJSON *thought = cJSON_GetObjectItemCaseSensitive(part, "thought");
        if (thought && !cJSON_IsBool(thought)) return parse_fail(e, "part thought is not a boolean");
        if (text && !cJSON_IsString(text)) return parse_fail(e, "part text is not a string");
        /* A thought summary is the model talking to itself, not the answer. */
        if (cJSON_IsTrue(thought)) {
            r->thought_parts++;
            continue;
        }
        /* Parts without text (function calls, inline data, a lone thought
         * signature) carry nothing this client relays. */
        if (!text) {
            if (!cJSON_GetObjectItemCaseSensitive(part, "thoughtSignature") || part->child->next)
                r->other_parts++;
            continue;
        }
        if (relay) ad_buf_puts(&r->text, text->valuestring);
    }
    return 0;
}

/* The candidate this client reads: the one with index 0 (an absent index is
 * 0), or none. Several come only when candidateCount > 1 was asked. */
static const cJSON *candidate_zero(const cJSON *cands)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cands)
    {
        const cJSON *idx = cJSON_IsObject(c) ? cJSON_GetObjectItemCaseSensitive(c, "index") : NULL;
        if (!idx || (cJSON_IsNumber(idx) && idx->valuedouble == 0)) return c;
    }
    return NULL;
}

static int parse_candidate(const cJSON *cand, gemini_reply *r, ad_err *e)
{
    if (!cJSON_IsObject(cand)) return parse_fail(e, "candidate is not an object");
    r->candidates_seen++;
    const cJSON *finish = cJSON_GetObjectItemCaseSensitive(cand, "finishReason");
    if (finish && !cJSON_IsString(finish)) return parse_fail(e, "finishReason is not a string");
    if (read_text(cand, "finishMessage", r->finish_message, sizeof(r->finish_message)) != 0)
        return parse_fail(e, "finishMessage is not a string");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(cand, "content");
    if (content) {
        if (!cJSON_IsObject(content)) return parse_fail(e, "content is not an object");
        const cJSON *parts = cJSON_GetObjectItemCaseSensitive(content, "parts");
        if (parts && !cJSON_IsArray(parts)) return parse_fail(e, "parts is not an array");
        if (!content_is_content(content)) r->malformed_content = 1;
        /* The text that comes with a refusal is what the filter judged. */
        int relay = gemini_finish_relays_text(finish ? finish->valuestring : "");
        if (parse_parts(parts, r, relay, e) != 0) return AD_EUPSTREAM;
    }
    if (finish) copy_reason(r->finish_reason, finish->valuestring);
    return 0;
}

static int parse_usage(const cJSON *usage, gemini_reply *r, ad_err *e)
{
    if (!cJSON_IsObject(usage)) return parse_fail(e, "usageMetadata is not an object");
    if (read_count(usage, "promptTokenCount", &r->prompt_tokens) != 0 ||
        read_count(usage, "candidatesTokenCount", &r->output_tokens) != 0 ||
        read_count(usage, "thoughtsTokenCount", &r->thinking_tokens) != 0 ||
        read_count(usage, "totalTokenCount", &r->total_tokens) != 0)
        return parse_fail(e, "usageMetadata count is not a number");
    r->has_usage = 1;
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
        if (cJSON_GetArraySize(cands) == 0) r->empty_candidates = 1;
        const cJSON *first = candidate_zero(cands);
        if (first && parse_candidate(first, r, e) != 0) return AD_EUPSTREAM;
    }
    if (feedback) {
        if (!cJSON_IsObject(feedback)) return parse_fail(e, "promptFeedback is not an object");
        const cJSON *block = cJSON_GetObjectItemCaseSensitive(feedback, "blockReason");
        if (block) {
            if (!cJSON_IsString(block)) return parse_fail(e, "blockReason is not a string");
            copy_reason(r->block_reason, block->valuestring);
        }
        if (read_text(feedback, "blockReasonMessage", r->block_message, sizeof(r->block_message)) != 0)
            return parse_fail(e, "blockReasonMessage is not a string");
    }
    if (usage && parse_usage(usage, r, e) != 0) return AD_EUPSTREAM;
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
        rc = parse_reply_object(root, r, e);
        if (rc != 0) {
            /* Leave no half-appended text behind a failed chunk. */
            r->text.len = before;
            if (r->text.data) r->text.data[before] = '\0';
        }
    }
    cJSON_Delete(root);
    return rc;
}

gemini_finish_kind gemini_finish_classify(const char *finish_reason)
{
    static const char *const blocked[] = {"SAFETY",        "PROHIBITED_CONTENT", "BLOCKLIST",
                                          "SPII",          "IMAGE_SAFETY",       "IMAGE_PROHIBITED_CONTENT",
                                          "IMAGE_RECITATION"};
    if (!finish_reason || !finish_reason[0]) return GEMINI_FINISH_NONE;
    if (strcmp(finish_reason, "STOP") == 0) return GEMINI_FINISH_ANSWER;
    if (strcmp(finish_reason, "MAX_TOKENS") == 0) return GEMINI_FINISH_TRUNCATED;
    if (strcmp(finish_reason, "RECITATION") == 0) return GEMINI_FINISH_RECITATION;
    for (size_t i = 0; i < sizeof(blocked) / sizeof(blocked[0]); i++)
        if (strcmp(finish_reason, blocked[i]) == 0) return GEMINI_FINISH_BLOCKED;
    return GEMINI_FINISH_NO_ANSWER;
}

int gemini_finish_relays_text(const char *finish_reason)
{
    gemini_finish_kind k = gemini_finish_classify(finish_reason);
    return k == GEMINI_FINISH_NONE || k == GEMINI_FINISH_ANSWER || k == GEMINI_FINISH_TRUNCATED;
}

int gemini_reply_blocked(const gemini_reply *r, const char **reason)
{
    if (r->block_reason[0]) {
        if (reason) *reason = r->block_reason;
        return 1;
    }
    gemini_finish_kind k = gemini_finish_classify(r->finish_reason);
    if (k == GEMINI_FINISH_BLOCKED || k == GEMINI_FINISH_RECITATION) {
        if (reason) *reason = r->finish_reason;
        return 1;
    }
    return 0;
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

/* Copies `src`, every run of digits that follows "project" (within a few
 * characters: "projects/123", "project_number: 123", "project 123")
 * replaced by "[redacted]". */
static void redact_projects(char *dst, size_t cap, const char *src)
{
    ad_buf b;
    ad_buf_init(&b);
    const char *s = src;
    while (*s) {
        if (strncasecmp(s, "project", 7) != 0) {
            ad_buf_putc(&b, *s++);
            continue;
        }
        ad_buf_append(&b, s, 7);
        s += 7;
        const char *t = s;
        while (*t && !isdigit((unsigned char)*t) && t - s < 12 && *t != '.' && *t != ',') t++;
        if (!isdigit((unsigned char)*t)) continue;
        ad_buf_append(&b, s, (size_t)(t - s));
        while (isdigit((unsigned char)*t)) t++;
        ad_buf_puts(&b, "[redacted]");
        s = t;
    }
    snprintf(dst, cap, "%s", b.data ? b.data : "");
    ad_buf_cleanup(&b);
}

int gemini_error_retryable(const gemini_error *ge)
{
    long c = ge->code;
    return c == 0 || c == 429 || c == 499 || c == 500 || c == 502 || c == 503 || c == 504;
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
    if (cJSON_IsString(message)) redact_projects(out->message, sizeof(out->message), message->valuestring);
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
    ad_buf_init(&p->stray);
}

void gemini_sse_cleanup(gemini_sse *p)
{
    ad_buf_cleanup(&p->line);
    ad_buf_cleanup(&p->data);
    ad_buf_cleanup(&p->stray);
}

static int sse_dispatch(gemini_sse *p, gemini_sse_event_fn fn, void *ud)
{
    if (!p->has_data) return 0;
    p->has_data = 0;
    int rc = fn(ud, p->data.data ? p->data.data : "", p->data.len);
    ad_buf_reset(&p->data);
    return rc;
}

static int sse_known_field(const char *name, size_t len)
{
    return (len == 5 && memcmp(name, "event", 5) == 0) || (len == 2 && memcmp(name, "id", 2) == 0) ||
           (len == 5 && memcmp(name, "retry", 5) == 0);
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
    if (name_len != 4 || memcmp(s, "data", 4) != 0) {
        if (!sse_known_field(s, name_len) && p->stray.len + n + 1 <= GEMINI_SSE_STRAY_MAX) {
            ad_buf_append(&p->stray, s, n);
            ad_buf_putc(&p->stray, '\n');
        }
        return 0;
    }
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
