#include "model/params.h"

void model_params_default(model_params *p)
{
    p->passage_chars = 600;
    p->overlap = 1;
    p->top_k = 3;
    p->w_question = 1.0;
    p->w_body = 1.0;
    p->fewshot = 3;
}

cJSON *model_params_to_json(const model_params *p)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "passage_chars", p->passage_chars);
    cJSON_AddNumberToObject(o, "overlap", p->overlap);
    cJSON_AddNumberToObject(o, "top_k", p->top_k);
    cJSON_AddNumberToObject(o, "w_question", p->w_question);
    cJSON_AddNumberToObject(o, "w_body", p->w_body);
    cJSON_AddNumberToObject(o, "fewshot", p->fewshot);
    return o;
}

static double params_clamp(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static void params_read(const cJSON *obj, const char *key, double lo, double hi, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsNumber(v)) *out = params_clamp(v->valuedouble, lo, hi);
}

void model_params_from_json(model_params *p, const cJSON *obj)
{
    double d;
    if (!cJSON_IsObject(obj)) return;
    d = p->passage_chars, params_read(obj, "passage_chars", 200, 2000, &d), p->passage_chars = (int)d;
    d = p->overlap, params_read(obj, "overlap", 0, 3, &d), p->overlap = (int)d;
    d = p->top_k, params_read(obj, "top_k", 1, 10, &d), p->top_k = (int)d;
    params_read(obj, "w_question", 0.0, 10.0, &p->w_question);
    params_read(obj, "w_body", 0.1, 10.0, &p->w_body);
    d = p->fewshot, params_read(obj, "fewshot", 0, 8, &d), p->fewshot = (int)d;
}
