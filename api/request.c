#include "api/request.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/stream.h"
#include "base/err.h"
#include "base/mem.h"

int ad_principal_has(const ad_principal *p, unsigned scope)
{
    return (p->scopes & scope) == scope;
}

int ad_principal_sees(const ad_principal *p, const char *user_id)
{
    if (p->all_agents) return 1;
    for (size_t i = 0; i < p->nagents; i++)
        if (strcmp(p->agents[i], user_id) == 0) return 1;
    return 0;
}

void ad_principal_cleanup(ad_principal *p)
{
    for (size_t i = 0; i < p->nagents; i++) free(p->agents[i]);
    free(p->agents);
    memset(p, 0, sizeof(*p));
}

static const struct {
    unsigned bit;
    const char *name;
} request_scopes[] = {
    {AD_SCOPE_AGENTS_READ, "agents:read"}, {AD_SCOPE_AGENTS_WRITE, "agents:write"},
    {AD_SCOPE_INFERENCE, "inference"},     {AD_SCOPE_TRAINING, "training"},
    {AD_SCOPE_DEPLOY, "deploy"},           {AD_SCOPE_ADMIN, "admin"},
    {AD_SCOPE_METRICS, "metrics"},
};

const char *ad_scope_name(unsigned scope)
{
    for (size_t i = 0; i < sizeof(request_scopes) / sizeof(request_scopes[0]); i++)
        if (request_scopes[i].bit == scope) return request_scopes[i].name;
    return NULL;
}

unsigned ad_scope_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof(request_scopes) / sizeof(request_scopes[0]); i++)
        if (!strcmp(request_scopes[i].name, name)) return request_scopes[i].bit;
    return 0;
}

const char *ad_principal_label(const ad_principal *p, char *buf, size_t cap)
{
    switch (p->kind) {
    case AD_CALLER_TOKEN: snprintf(buf, cap, "token:%lld", (long long)p->token_id); break;
    case AD_CALLER_ADMIN: snprintf(buf, cap, "admin"); break;
    default: snprintf(buf, cap, "anonymous"); break;
    }
    return buf;
}

const char *ad_request_query(const ad_request *req, const char *key)
{
    for (size_t i = 0; i < req->nquery; i++)
        if (strcmp(req->query[i].key, key) == 0) return req->query[i].value;
    return NULL;
}

void ad_response_init(ad_response *res)
{
    memset(res, 0, sizeof(*res));
    res->status = 200;
    ad_buf_init(&res->body);
}

void ad_response_cleanup(ad_response *res)
{
    ad_buf_cleanup(&res->body);
    for (size_t i = 0; i < res->nheaders; i++) free(res->headers[i].value);
    res->nheaders = 0;
    if (res->stream) ad_stream_release(res->stream);
    res->stream = NULL;
}

void ad_response_json(ad_response *res, int status, cJSON *json)
{
    res->status = status;
    ad_buf_reset(&res->body);
    char *text = cJSON_PrintUnformatted(json);
    if (!text) ad_malloc((size_t)-1); /* cJSON fails only on allocation: fatal, like ad_malloc */
    ad_buf_puts(&res->body, text);
    cJSON_free(text);
    cJSON_Delete(json);
}

void ad_response_error(ad_response *res, const ad_request *req, int status, const char *code,
                       const char *fmt, ...)
{
    ad_buf msg;
    ad_buf_init(&msg);
    va_list ap;
    va_start(ap, fmt);
    ad_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    res->status = status;
    res->content_type = NULL;
    ad_buf_reset(&res->body);
    ad_buf_puts(&res->body, "{\"error\":");
    ad_buf_json_string(&res->body, msg.data ? msg.data : "", msg.len);
    ad_buf_puts(&res->body, ",\"code\":");
    ad_buf_json_string(&res->body, code, strlen(code));
    ad_buf_puts(&res->body, ",\"request_id\":");
    const char *rid = req && req->request_id ? req->request_id : "";
    ad_buf_json_string(&res->body, rid, strlen(rid));
    ad_buf_putc(&res->body, '}');
    ad_buf_cleanup(&msg);
}

void ad_response_header(ad_response *res, const char *name, const char *value)
{
    for (size_t i = 0; i < res->nheaders; i++) {
        if (strcmp(res->headers[i].name, name) == 0) {
            free(res->headers[i].value);
            res->headers[i].value = ad_strdup(value);
            return;
        }
    }
    ad_assert(res->nheaders < AD_MAX_HEADERS);
    res->headers[res->nheaders].name = name;
    res->headers[res->nheaders].value = ad_strdup(value);
    res->nheaders++;
}

static const struct {
    ad_method m;
    const char *name;
} method_names[] = {
    {AD_GET, "GET"},         {AD_POST, "POST"},       {AD_PUT, "PUT"},   {AD_DELETE, "DELETE"},
    {AD_PATCH, "PATCH"},     {AD_OPTIONS, "OPTIONS"}, {AD_HEAD, "HEAD"},
};

const char *ad_method_name(ad_method m)
{
    for (size_t i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++)
        if (method_names[i].m == m) return method_names[i].name;
    return "?";
}

ad_method ad_method_from_string(const char *s)
{
    for (size_t i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++)
        if (strcmp(method_names[i].name, s) == 0) return method_names[i].m;
    return (ad_method)0;
}
