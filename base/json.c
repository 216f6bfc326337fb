#include "base/json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/utf8.h"

void ad_json_add_time(cJSON *obj, const char *key, int64_t ms)
{
    if (ms <= 0) {
        cJSON_AddNullToObject(obj, key);
        return;
    }
    char ts[AD_ISO8601_LEN];
    ad_clock_iso8601(ms, ts);
    cJSON_AddStringToObject(obj, key, ts);
}

void ad_json_add_str(cJSON *obj, const char *key, const char *s)
{
    if (s && *s) cJSON_AddStringToObject(obj, key, s);
    else cJSON_AddNullToObject(obj, key);
}

void ad_json_add_int(cJSON *obj, const char *key, long long v)
{
    char num[24];
    snprintf(num, sizeof(num), "%lld", v);
    cJSON_AddRawToObject(obj, key, num);
}

void ad_json_add_raw(cJSON *obj, const char *key, const char *text)
{
    cJSON *v = text ? cJSON_Parse(text) : NULL;
    cJSON_AddItemToObject(obj, key, v ? v : cJSON_CreateNull());
}

static int json_missing(const cJSON *v)
{
    return !v || cJSON_IsNull(v);
}

int ad_json_string(const cJSON *obj, const char *key, int required, size_t max_bytes,
                   const char **out, ad_err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (json_missing(v))
        return required ? ad_err_set(e, AD_EINVAL, "%s is required", key) : AD_ENOTFOUND;
    if (!cJSON_IsString(v)) return ad_err_set(e, AD_EINVAL, "%s must be a string", key);
    const char *s = v->valuestring;
    size_t n = strlen(s);
    if (n > max_bytes)
        return ad_err_set(e, AD_EINVAL, "%s is %zu bytes, more than the limit of %zu", key, n,
                          max_bytes);
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    if (i == n) return ad_err_set(e, AD_EINVAL, "%s must not be empty", key);
    *out = s;
    return 0;
}

int ad_json_number(const cJSON *obj, const char *key, int required, double min, double max,
                   double *out, ad_err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (json_missing(v))
        return required ? ad_err_set(e, AD_EINVAL, "%s is required", key) : AD_ENOTFOUND;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < min ||
        v->valuedouble > max)
        return ad_err_set(e, AD_EINVAL, "%s must be a number between %g and %g", key, min, max);
    *out = v->valuedouble;
    return 0;
}

int ad_json_int(const cJSON *obj, const char *key, int required, long long min, long long max,
                long long *out, ad_err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (json_missing(v) && !required) return AD_ENOTFOUND;
    if (json_missing(v) || !cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
        v->valuedouble != floor(v->valuedouble) || v->valuedouble < (double)min ||
        v->valuedouble > (double)max)
        return ad_err_set(e, AD_EINVAL, "%s must be %s integer between %lld and %lld", key,
                          min > 0 ? "a positive" : "an", min, max);
    *out = (long long)v->valuedouble;
    return 0;
}

int ad_json_bool(const cJSON *obj, const char *key, int required, int *out, ad_err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (json_missing(v))
        return required ? ad_err_set(e, AD_EINVAL, "%s is required", key) : AD_ENOTFOUND;
    if (!cJSON_IsBool(v)) return ad_err_set(e, AD_EINVAL, "%s must be true or false", key);
    *out = cJSON_IsTrue(v);
    return 0;
}

/* Depth-first over `node`, whose path so far is in `path`. */
static int json_check_utf8_at(const cJSON *node, ad_buf *path, ad_err *e)
{
    size_t bad = 0;
    if (cJSON_IsString(node) && node->valuestring &&
        ad_utf8_validate(node->valuestring, strlen(node->valuestring), &bad) < 0)
        return ad_err_set(e, AD_EINVAL, "%s is not valid UTF-8 (at byte %zu)",
                          path->len ? path->data : "the body", bad);
    if (!cJSON_IsObject(node) && !cJSON_IsArray(node)) return 0;
    size_t mark = path->len;
    int index = 0;
    for (const cJSON *c = node->child; c; c = c->next, index++) {
        if (cJSON_IsObject(node)) {
            const char *k = c->string ? c->string : "";
            if (ad_utf8_validate(k, strlen(k), NULL) < 0)
                return ad_err_set(e, AD_EINVAL, "a member name in %s is not valid UTF-8",
                                  path->len ? path->data : "the body");
            ad_buf_printf(path, "%s%s", path->len ? "." : "", k);
        } else {
            ad_buf_printf(path, "[%d]", index);
        }
        int rc = json_check_utf8_at(c, path, e);
        if (rc < 0) return rc;
        path->len = mark;
        if (path->data) path->data[mark] = '\0';
    }
    return 0;
}

int ad_json_check_utf8(const cJSON *root, ad_err *e)
{
    ad_buf path;
    ad_buf_init(&path);
    int rc = json_check_utf8_at(root, &path, e);
    ad_buf_cleanup(&path);
    return rc;
}
