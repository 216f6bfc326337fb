#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/gemini.h"

Suite *llm_gemini_suite(void);

static const char *const fs_prompts[] = {"What do you sell?", "Open on Sunday?"};
static const char *const fs_answers[] = {"Bread and cakes.", "No, closed on Sundays."};

static llm_request sample_request(void)
{
    llm_request r = {
        .system_instruction = "You are Ana's bakery assistant. Answer from the context; "
                              "say you do not know when it is not there.",
        .fewshot_prompts = fs_prompts,
        .fewshot_answers = fs_answers,
        .fewshot_count = 2,
        .context = "[1] We bake sourdough daily.",
        .prompt = "Do you have sourdough?",
        .max_output_tokens = 256,
        .temperature = 0.2,
    };
    return r;
}

static const char *text_of(const cJSON *turn, int part)
{
    const cJSON *p = cJSON_GetArrayItem(cJSON_GetObjectItem(turn, "parts"), part);
    const cJSON *t = cJSON_GetObjectItem(p, "text");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

START_TEST(test_request_json_shape)
{
    llm_request req = sample_request();
    char *json = gemini_request_json(&req, NULL);
    ck_assert_ptr_nonnull(json);
    cJSON *root = cJSON_Parse(json);
    ck_assert_ptr_nonnull(root);
    ck_assert_str_eq(text_of(cJSON_GetObjectItem(root, "systemInstruction"), 0),
                     req.system_instruction);
    const cJSON *contents = cJSON_GetObjectItem(root, "contents");
    ck_assert_int_eq(cJSON_GetArraySize(contents), 5);
    const char *roles[] = {"user", "model", "user", "model", "user"};
    for (int i = 0; i < 5; i++)
        ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(contents, i), "role")->valuestring,
                         roles[i]);
    ck_assert_str_eq(text_of(cJSON_GetArrayItem(contents, 0), 0), "What do you sell?");
    ck_assert_str_eq(text_of(cJSON_GetArrayItem(contents, 3), 0), "No, closed on Sundays.");
    const cJSON *last = cJSON_GetArrayItem(contents, 4);
    ck_assert_ptr_nonnull(strstr(text_of(last, 0), "We bake sourdough daily."));
    ck_assert_str_eq(text_of(last, 1), "Do you have sourdough?");
    const cJSON *gc = cJSON_GetObjectItem(root, "generationConfig");
    ck_assert_int_eq(cJSON_GetObjectItem(gc, "maxOutputTokens")->valueint, 256);
    ck_assert_double_eq_tol(cJSON_GetObjectItem(gc, "temperature")->valuedouble, 0.2, 1e-9);
    cJSON_Delete(root);
    free(json);
}
END_TEST

START_TEST(test_request_json_minimal_and_escaping)
{
    llm_request req = {.prompt = "quote \" and \n newline", .temperature = -1};
    char *json = gemini_request_json(&req, NULL);
    cJSON *root = cJSON_Parse(json);
    ck_assert_ptr_null(cJSON_GetObjectItem(root, "systemInstruction"));
    ck_assert_ptr_null(cJSON_GetObjectItem(root, "generationConfig"));
    const cJSON *contents = cJSON_GetObjectItem(root, "contents");
    ck_assert_int_eq(cJSON_GetArraySize(contents), 1);
    ck_assert_str_eq(text_of(cJSON_GetArrayItem(contents, 0), 0), "quote \" and \n newline");
    cJSON_Delete(root);
    free(json);
}
END_TEST

START_TEST(test_request_json_rejects_bad_input)
{
    ad_err e;
    llm_request req = {.prompt = ""};
    ck_assert_ptr_null(gemini_request_json(&req, &e));
    ck_assert_int_eq(e.code, AD_EINVAL);
    const char *answers[] = {NULL};
    const char *prompts[] = {"q"};
    llm_request bad = {.prompt = "p", .fewshot_prompts = prompts, .fewshot_answers = answers,
                       .fewshot_count = 1};
    ck_assert_ptr_null(gemini_request_json(&bad, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "few-shot pair 0"));
}
END_TEST

START_TEST(test_parse_response_multipart_and_usage)
{
    const char *body =
        "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Hello, \"},"
        "{\"functionCall\":{}},{\"text\":\"world.\"}]},\"finishReason\":\"STOP\"}],"
        "\"usageMetadata\":{\"promptTokenCount\":12,\"candidatesTokenCount\":3,"
        "\"totalTokenCount\":15}}";
    gemini_reply r;
    gemini_reply_init(&r);
    ck_assert_int_eq(gemini_parse_response(body, strlen(body), &r, NULL, NULL), 0);
    ck_assert_str_eq(r.text.data, "Hello, world.");
    ck_assert_str_eq(r.finish_reason, "STOP");
    ck_assert_int_eq(r.prompt_tokens, 12);
    ck_assert_int_eq(r.output_tokens, 3);
    ck_assert_int_eq(r.total_tokens, 15);
    ck_assert(!gemini_reply_blocked(&r, NULL));
    gemini_reply_cleanup(&r);
}
END_TEST

START_TEST(test_parse_response_block_reason)
{
    const char *body = "{\"promptFeedback\":{\"blockReason\":\"PROHIBITED_CONTENT\"},"
                       "\"usageMetadata\":{\"promptTokenCount\":4,\"totalTokenCount\":4}}";
    gemini_reply r;
    gemini_reply_init(&r);
    ck_assert_int_eq(gemini_parse_response(body, strlen(body), &r, NULL, NULL), 0);
    const char *why = NULL;
    ck_assert(gemini_reply_blocked(&r, &why));
    ck_assert_str_eq(why, "PROHIBITED_CONTENT");
    ck_assert_int_eq(r.output_tokens, -1);
    gemini_reply_cleanup(&r);
}
END_TEST

START_TEST(test_parse_response_safety_finish)
{
    const char *body = "{\"candidates\":[{\"finishReason\":\"SAFETY\",\"safetyRatings\":[]}]}";
    gemini_reply r;
    gemini_reply_init(&r);
    ck_assert_int_eq(gemini_parse_response(body, strlen(body), &r, NULL, NULL), 0);
    const char *why = NULL;
    ck_assert(gemini_reply_blocked(&r, &why));
    ck_assert_str_eq(why, "SAFETY");
    ck_assert_uint_eq(r.text.len, 0);
    gemini_reply_cleanup(&r);
}
END_TEST

/* candidates: [] parses (it is Gemini's shape) but is an empty reply, unless
 * the prompt was blocked; one candidate in any chunk makes it a reply. */
START_TEST(test_reply_without_candidates_is_empty)
{
    const char *none = "{\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":3}}";
    gemini_reply r;
    gemini_reply_init(&r);
    ck_assert_int_eq(gemini_parse_response(none, strlen(none), &r, NULL, NULL), 0);
    ck_assert_int_eq(r.candidates_seen, 0);
    ck_assert(r.empty_candidates);
    ck_assert(!gemini_reply_blocked(&r, NULL));
    const char *one = "{\"candidates\":[{\"finishReason\":\"STOP\"}]}";
    ck_assert_int_eq(gemini_parse_response(one, strlen(one), &r, NULL, NULL), 0);
    ck_assert_int_eq(r.candidates_seen, 1);
    gemini_reply_cleanup(&r);

    const char *blocked = "{\"candidates\":[],\"promptFeedback\":{\"blockReason\":\"SAFETY\"}}";
    gemini_reply_init(&r);
    ck_assert_int_eq(gemini_parse_response(blocked, strlen(blocked), &r, NULL, NULL), 0);
    ck_assert_int_eq(r.candidates_seen, 0);
    ck_assert(gemini_reply_blocked(&r, NULL));
    gemini_reply_cleanup(&r);
}
END_TEST

START_TEST(test_parse_response_not_gemini)
{
    const char *bad[] = {"<html>502</html>", "[1,2]", "{\"foo\":1}",
                         "{\"candidates\":{}}", "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":7}]}}]}",
                         "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]}}],"
                         "\"usageMetadata\":{\"promptTokenCount\":\"x\"}}",
                         ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gemini_reply r;
        gemini_reply_init(&r);
        ad_err e;
        ck_assert_int_eq(gemini_parse_response(bad[i], strlen(bad[i]), &r, NULL, &e), AD_EUPSTREAM);
        ck_assert_uint_eq(r.text.len, 0); /* no half-appended text */
        gemini_reply_cleanup(&r);
    }
}
END_TEST

START_TEST(test_parse_error_envelope_with_retry_info)
{
    const char *body =
        "{\"error\":{\"code\":429,\"message\":\"Quota exceeded.\",\"status\":\"RESOURCE_EXHAUSTED\","
        "\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.QuotaFailure\"},"
        "{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":\"1.5s\"}]}}";
    gemini_error ge;
    ck_assert_int_eq(gemini_parse_error(body, strlen(body), &ge), 0);
    ck_assert_int_eq(ge.code, 429);
    ck_assert_str_eq(ge.message, "Quota exceeded.");
    ck_assert_str_eq(ge.status, "RESOURCE_EXHAUSTED");
    ck_assert_int_eq(ge.retry_delay_ms, 1500);

    const char *plain = "{\"error\":{\"code\":400,\"message\":\"Bad.\",\"status\":\"INVALID_ARGUMENT\"}}";
    ck_assert_int_eq(gemini_parse_error(plain, strlen(plain), &ge), 0);
    ck_assert_int_eq(ge.retry_delay_ms, -1);
    ck_assert_int_eq(gemini_parse_error("oops", 4, &ge), AD_EUPSTREAM);
    ck_assert_int_eq(gemini_parse_error("{\"candidates\":[]}", 17, &ge), AD_EUPSTREAM);
}
END_TEST

typedef struct events {
    char got[8][128];
    int n;
} events;

static int collect(void *ud, const char *data, size_t len)
{
    events *ev = ud;
    ck_assert_int_lt(ev->n, 8);
    ck_assert_uint_eq(strlen(data), len);
    snprintf(ev->got[ev->n++], sizeof(ev->got[0]), "%s", data);
    return 0;
}

START_TEST(test_sse_split_at_every_boundary)
{
    const char stream[] = ": keep-alive comment\r\n"
                          "data: {\"a\":1}\r\n\r\n"
                          "event: message\n"
                          "data:{\"b\":2}\n"
                          "data: {\"c\":3}\n\n"
                          "id: 7\r"
                          "data: last\r\r";
    size_t n = sizeof(stream) - 1;
    for (size_t cut1 = 0; cut1 <= n; cut1++) {
        for (size_t cut2 = cut1; cut2 <= n; cut2 += 7) {
            events ev = {.n = 0};
            gemini_sse p;
            gemini_sse_init(&p);
            ck_assert_int_eq(gemini_sse_feed(&p, stream, cut1, collect, &ev), 0);
            ck_assert_int_eq(gemini_sse_feed(&p, stream + cut1, cut2 - cut1, collect, &ev), 0);
            ck_assert_int_eq(gemini_sse_feed(&p, stream + cut2, n - cut2, collect, &ev), 0);
            ck_assert_int_eq(gemini_sse_finish(&p, collect, &ev), 0);
            ck_assert_int_eq(ev.n, 3);
            ck_assert_str_eq(ev.got[0], "{\"a\":1}");
            ck_assert_str_eq(ev.got[1], "{\"b\":2}\n{\"c\":3}");
            ck_assert_str_eq(ev.got[2], "last");
            gemini_sse_cleanup(&p);
        }
    }
}
END_TEST

START_TEST(test_sse_finish_flushes_unterminated_event)
{
    events ev = {.n = 0};
    gemini_sse p;
    gemini_sse_init(&p);
    ck_assert_int_eq(gemini_sse_feed(&p, "data: tail", 10, collect, &ev), 0);
    ck_assert_int_eq(ev.n, 0);
    ck_assert_int_eq(gemini_sse_finish(&p, collect, &ev), 0);
    ck_assert_int_eq(ev.n, 1);
    ck_assert_str_eq(ev.got[0], "tail");
    gemini_sse_cleanup(&p);
}
END_TEST

static int stop_at_first(void *ud, const char *data, size_t len)
{
    (void)data;
    (void)len;
    ++*(int *)ud;
    return 42;
}

START_TEST(test_sse_callback_stops_feed)
{
    int calls = 0;
    gemini_sse p;
    gemini_sse_init(&p);
    const char s[] = "data: 1\n\ndata: 2\n\n";
    ck_assert_int_eq(gemini_sse_feed(&p, s, sizeof(s) - 1, stop_at_first, &calls), 42);
    ck_assert_int_eq(calls, 1);
    gemini_sse_cleanup(&p);
}
END_TEST

START_TEST(test_stream_chunks_merge_into_reply)
{
    const char *chunks[] = {
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hel\"}]}}]}",
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"lo\"}]},\"finishReason\":\"STOP\"}],"
        "\"usageMetadata\":{\"promptTokenCount\":5,\"candidatesTokenCount\":2,\"totalTokenCount\":7}}"};
    gemini_reply r;
    gemini_reply_init(&r);
    size_t off;
    ck_assert_int_eq(gemini_parse_response(chunks[0], strlen(chunks[0]), &r, &off, NULL), 0);
    ck_assert_uint_eq(off, 0);
    ck_assert_int_eq(gemini_parse_response(chunks[1], strlen(chunks[1]), &r, &off, NULL), 0);
    ck_assert_uint_eq(off, 3);
    ck_assert_str_eq(r.text.data + off, "lo");
    ck_assert_str_eq(r.text.data, "Hello");
    ck_assert_str_eq(r.finish_reason, "STOP");
    ck_assert_int_eq(r.total_tokens, 7);
    gemini_reply_cleanup(&r);
}
END_TEST

START_TEST(test_request_json_thinking)
{
    llm_request req = sample_request();
    req.thinking_level = "low";
    req.thinking_budget = 4096; /* a level wins: Gemini refuses both at once */
    char *json = gemini_request_json(&req, NULL);
    cJSON *root = cJSON_Parse(json);
    const cJSON *tc = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "generationConfig"), "thinkingConfig");
    ck_assert_str_eq(cJSON_GetObjectItem(tc, "thinkingLevel")->valuestring, "LOW");
    ck_assert_ptr_null(cJSON_GetObjectItem(tc, "thinkingBudget"));
    cJSON_Delete(root);
    free(json);

    req.thinking_level = NULL;
    json = gemini_request_json(&req, NULL);
    root = cJSON_Parse(json);
    tc = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "generationConfig"), "thinkingConfig");
    ck_assert_int_eq(cJSON_GetObjectItem(tc, "thinkingBudget")->valueint, 4096);
    cJSON_Delete(root);
    free(json);

    req.thinking_budget = GEMINI_THINKING_BUDGET_OFF;
    json = gemini_request_json(&req, NULL);
    ck_assert_ptr_nonnull(strstr(json, "\"thinkingConfig\":{\"thinkingBudget\":0}"));
    free(json);

    /* Nothing set: no thinkingConfig, the model's own default. */
    req.thinking_budget = 0;
    json = gemini_request_json(&req, NULL);
    ck_assert_ptr_null(strstr(json, "thinkingConfig"));
    free(json);

    ad_err e;
    req.thinking_level = "extreme";
    ck_assert_ptr_null(gemini_request_json(&req, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "thinking level"));
}
END_TEST

START_TEST(test_min_output_tokens)
{
    ck_assert_int_eq(gemini_min_output_tokens("minimal", 0), GEMINI_ANSWER_MIN_TOKENS);
    ck_assert_int_eq(gemini_min_output_tokens("low", 0), GEMINI_ANSWER_MIN_TOKENS + 512);
    ck_assert_int_eq(gemini_min_output_tokens("high", 0), GEMINI_ANSWER_MIN_TOKENS + 8192);
    ck_assert_int_eq(gemini_min_output_tokens(NULL, 300), GEMINI_ANSWER_MIN_TOKENS + 300);
    ck_assert_int_eq(gemini_min_output_tokens(NULL, GEMINI_THINKING_BUDGET_OFF), GEMINI_ANSWER_MIN_TOKENS);
    ck_assert_int_eq(gemini_min_output_tokens(NULL, 0), GEMINI_ANSWER_MIN_TOKENS + 1024);
    ck_assert_int_eq(gemini_thinking_level_rank("medium"), 2);
    ck_assert_int_eq(gemini_thinking_level_rank("MEDIUM"), -1);
}
END_TEST

START_TEST(test_finish_classes)
{
    ck_assert_int_eq(gemini_finish_classify(""), GEMINI_FINISH_NONE);
    ck_assert_int_eq(gemini_finish_classify("STOP"), GEMINI_FINISH_ANSWER);
    ck_assert_int_eq(gemini_finish_classify("MAX_TOKENS"), GEMINI_FINISH_TRUNCATED);
    ck_assert_int_eq(gemini_finish_classify("RECITATION"), GEMINI_FINISH_RECITATION);
    const char *blocked[] = {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "IMAGE_SAFETY"};
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(gemini_finish_classify(blocked[i]), GEMINI_FINISH_BLOCKED);
        ck_assert(!gemini_finish_relays_text(blocked[i]));
    }
    const char *none[] = {"OTHER", "LANGUAGE", "MALFORMED_FUNCTION_CALL", "FINISH_REASON_UNSPECIFIED",
                          "FAKE_NEW_FINISH_REASON"};
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(gemini_finish_classify(none[i]), GEMINI_FINISH_NO_ANSWER);
        ck_assert(!gemini_finish_relays_text(none[i]));
    }
    ck_assert(gemini_finish_relays_text("STOP") && gemini_finish_relays_text("MAX_TOKENS") &&
              gemini_finish_relays_text(""));
}
END_TEST

START_TEST(test_error_message_loses_project_numbers)
{
    const char *body = "{\"error\":{\"code\":403,\"status\":\"PERMISSION_DENIED\",\"message\":"
                       "\"Generative Language API has not been used in project 1234567890 before. "
                       "See projects/987654321/services; project_number:555444333 too. Projects are fine.\"}}";
    gemini_error ge;
    ck_assert_int_eq(gemini_parse_error(body, strlen(body), &ge), 0);
    ck_assert_str_eq(ge.message, "Generative Language API has not been used in project [redacted] before. "
                                 "See projects/[redacted]/services; project_number:[redacted] too. "
                                 "Projects are fine.");
    ck_assert(!gemini_error_retryable(&ge));
    ge.code = 499;
    ck_assert(gemini_error_retryable(&ge));
    ge.code = 0;
    ck_assert(gemini_error_retryable(&ge));
}
END_TEST

static int count_event(void *ud, const char *data, size_t len)
{
    (void)data;
    (void)len;
    (*(int *)ud)++;
    return 0;
}

START_TEST(test_sse_keeps_stray_lines)
{
    const char *wire = "data: {\"a\":1}\n\nevent: x\nid: 3\nretry: 10\n: comment\n{\n  \"error\": {\n"
                       "    \"code\": 499\n  }\n}\n";
    gemini_sse p;
    gemini_sse_init(&p);
    int seen = 0;
    ck_assert_int_eq(gemini_sse_feed(&p, wire, strlen(wire), count_event, &seen), 0);
    ck_assert_int_eq(gemini_sse_finish(&p, count_event, &seen), 0);
    ck_assert_int_eq(seen, 1);
    ck_assert_str_eq(p.stray.data, "{\n  \"error\": {\n    \"code\": 499\n  }\n}\n");
    gemini_error ge;
    ck_assert_int_eq(gemini_parse_error(p.stray.data, p.stray.len, &ge), 0);
    ck_assert_int_eq(ge.code, 499);
    gemini_sse_cleanup(&p);
}
END_TEST

START_TEST(test_parse_thought_parts_and_string_counts)
{
    const char *body = "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"plan\",\"thought\":true},"
                       "{\"thoughtSignature\":\"c2ln\"},{\"text\":\"Answer.\"}]},\"finishReason\":\"STOP\"}],"
                       "\"usageMetadata\":{\"promptTokenCount\":\"7\",\"candidatesTokenCount\":2,"
                       "\"thoughtsTokenCount\":\"9\",\"totalTokenCount\":\"18\"}}";
    gemini_reply r;
    gemini_reply_init(&r);
    ck_assert_int_eq(gemini_parse_response(body, strlen(body), &r, NULL, NULL), 0);
    ck_assert_str_eq(r.text.data, "Answer.");
    ck_assert_int_eq(r.thought_parts, 1);
    ck_assert_int_eq(r.other_parts, 0);
    ck_assert_int_eq(r.prompt_tokens, 7);
    ck_assert_int_eq(r.thinking_tokens, 9);
    ck_assert_int_eq(r.total_tokens, 18);
    ck_assert(r.has_usage);
    gemini_reply_cleanup(&r);
    const char *bad[] = {"{\"usageMetadata\":{\"promptTokenCount\":\"7x\"}}",
                         "{\"usageMetadata\":{\"promptTokenCount\":\"-7\"}}",
                         "{\"usageMetadata\":{\"promptTokenCount\":\"\"}}",
                         "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\",\"thought\":1}]}}]}"};
    for (int i = 0; i < 4; i++) {
        gemini_reply_init(&r);
        ck_assert_int_eq(gemini_parse_response(bad[i], strlen(bad[i]), &r, NULL, NULL), AD_EUPSTREAM);
        gemini_reply_cleanup(&r);
    }
}
END_TEST

Suite *llm_gemini_suite(void)
{
    Suite *s = suite_create("llm_gemini");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_request_json_shape);
    tcase_add_test(tc, test_request_json_minimal_and_escaping);
    tcase_add_test(tc, test_request_json_rejects_bad_input);
    tcase_add_test(tc, test_parse_response_multipart_and_usage);
    tcase_add_test(tc, test_parse_response_block_reason);
    tcase_add_test(tc, test_parse_response_safety_finish);
    tcase_add_test(tc, test_parse_response_not_gemini);
    tcase_add_test(tc, test_reply_without_candidates_is_empty);
    tcase_add_test(tc, test_parse_error_envelope_with_retry_info);
    tcase_add_test(tc, test_sse_split_at_every_boundary);
    tcase_add_test(tc, test_sse_finish_flushes_unterminated_event);
    tcase_add_test(tc, test_sse_callback_stops_feed);
    tcase_add_test(tc, test_stream_chunks_merge_into_reply);
    tcase_add_test(tc, test_request_json_thinking);
    tcase_add_test(tc, test_min_output_tokens);
    tcase_add_test(tc, test_finish_classes);
    tcase_add_test(tc, test_error_message_loses_project_numbers);
    tcase_add_test(tc, test_sse_keeps_stray_lines);
    tcase_add_test(tc, test_parse_thought_parts_and_string_counts);
    suite_add_tcase(s, tc);
    return s;
}
