#include "pipeline/stages.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/json.h"
#include "base/mem.h"
#include "model/answerer.h"
#include "model/index.h"
#include "model/metrics.h"
#include "model/passages.h"
#include "model/perturb.h"
#include "model/stats.h"
#include "model/text.h"
#include "storage/deployments.h"
#include "storage/executions.h"
#include "storage/units.h"
#include "storage/versions.h"

const stage_fn pipeline_stages[PIPELINE_STAGES] = {stage_process, stage_train, stage_evaluate,
                                                   stage_deploy};

/* Most evaluation queries of each kind per version: bounds evaluation time on
 * large material while sampling all of it evenly. */
#define EVAL_MAX_PERTURBED 120
#define EVAL_MAX_HELD_OUT 40
/* Free-text passages that get a derived question besides the evaluation
 * sample: the few-shot examples are chosen among the first ones. */
#define FEWSHOT_CANDIDATES 16
/* A new version scoring this much below the deployed one is refused. */
#define DEPLOY_MARGIN 0.05

/* The stride of the evaluation sample over `n` units. */
static size_t eval_step(size_t n)
{
    return n > EVAL_MAX_PERTURBED ? (n + EVAL_MAX_PERTURBED - 1) / EVAL_MAX_PERTURBED : 1;
}

/* ---- units held in memory between storage and the model ---- */

static void unit_set_push(unit_set *s, const char *q, const char *body, const char *answer,
                          const char *category, const char *probe)
{
    if (s->count == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->items = ad_realloc(s->items, ad_size_mul(s->cap, sizeof(*s->items)));
    }
    unit_mem *u = &s->items[s->count++];
    u->question = ad_strdup(q ? q : "");
    u->body = ad_strdup(body);
    u->answer = answer ? ad_strdup(answer) : NULL;
    u->category = category ? ad_strdup(category) : NULL;
    u->probe = probe ? ad_strdup(probe) : NULL;
}

void unit_set_cleanup(unit_set *s)
{
    for (size_t i = 0; i < s->count; i++) {
        unit_mem *u = &s->items[i];
        free(u->question), free(u->body), free(u->answer), free(u->category), free(u->probe);
    }
    free(s->items);
    memset(s, 0, sizeof(*s));
}

static void unit_set_visit(void *ud, const unit_row *u)
{
    unit_set_push(ud, u->question, u->body, u->answer, u->category, u->probe);
}

/* The units as rows for storage, borrowing their strings; free() the array. */
static unit_row *unit_set_rows(const unit_set *s)
{
    unit_row *rows = ad_calloc(s->count ? s->count : 1, sizeof(*rows));
    for (size_t i = 0; i < s->count; i++) {
        const unit_mem *u = &s->items[i];
        rows[i] = (unit_row){(int)i, u->question, u->body, u->answer, u->category, u->probe};
    }
    return rows;
}

int unit_set_load(storage_conn *db, int64_t agent_id, unit_set *s, ad_err *e)
{
    memset(s, 0, sizeof(*s));
    int rc = storage_units_each(db, agent_id, unit_set_visit, s, e);
    if (rc < 0) {
        unit_set_cleanup(s); /* the units read before the failure */
        return rc;
    }
    if (s->count == 0) return ad_err_set(e, AD_ESTATE, "no processed material (DataProcessor output missing)");
    return 0;
}

/* Reads a stored stage output as JSON into `*out` (the caller deletes it).
 * A failed read keeps its code; a stage that has no output yet is AD_ESTATE. */
static int stage_stored_output(storage_conn *db, int64_t agent_id, int task_index, cJSON **out,
                               ad_err *e)
{
    exec_row r;
    *out = NULL;
    int rc = storage_exec_get(db, agent_id, task_index, &r, e);
    if (rc < 0) return rc;
    *out = r.output && r.status == EXEC_COMPLETED ? cJSON_Parse(r.output) : NULL;
    exec_row_cleanup(&r);
    if (!*out)
        return ad_err_set(e, AD_ESTATE, "%s has no stored output to build on (run it first)",
                          pipeline_stage_names[task_index]);
    return 0;
}

void stage_ctx_cleanup(stage_ctx *c)
{
    cJSON_Delete(c->inputs);
    cJSON_Delete(c->output);
    cJSON_free(c->inputs_json);
    cJSON_free(c->output_json);
    c->inputs = c->output = NULL;
    c->inputs_json = c->output_json = NULL;
}

/* Completes the log record the runner prepared with what the stage did: its
 * inputs and output as text, its duration up to its unit of work, and when
 * the job should end, counting this stage's time in the job's scale. */
static const exec_step *stage_record(stage_ctx *c)
{
    cJSON_free(c->inputs_json);
    cJSON_free(c->output_json);
    c->inputs_json = c->inputs ? cJSON_PrintUnformatted(c->inputs) : NULL;
    c->output_json = c->output ? cJSON_PrintUnformatted(c->output) : NULL;
    c->step.inputs = c->inputs_json ? c->inputs_json : "{}";
    c->step.output = c->output_json ? c->output_json : "{}";
    c->step.duration_ms = ad_clock_mono_ms() - c->started_ms;
    if (c->eta && c->step.next_stage) {
        eta_run seen = *c->eta;
        eta_run_stage_done(&seen, c->step.task_index, c->step.duration_ms);
        c->step.eta_at = ad_clock_now_ms() + eta_run_remaining_ms(&seen, c->step.task_index + 1);
    }
    return &c->step;
}

static int64_t json_int(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

/* ---- 1. DataProcessor ---- */

typedef struct dedupe_set {
    uint64_t *slots;
    size_t cap, used;
} dedupe_set;

/* Adds a fingerprint; returns 0 if it was already there. */
static int dedupe_add(dedupe_set *d, uint64_t h)
{
    if (h == 0) h = 1;
    if ((d->used + 1) * 2 > d->cap) {
        dedupe_set n = {ad_calloc(d->cap ? d->cap * 2 : 256, sizeof(uint64_t)), d->cap ? d->cap * 2 : 256, 0};
        for (size_t i = 0; i < d->cap; i++)
            if (d->slots[i]) dedupe_add(&n, d->slots[i]);
        free(d->slots);
        *d = n;
    }
    size_t i = (size_t)(h ^ (h >> 29)) & (d->cap - 1);
    while (d->slots[i]) {
        if (d->slots[i] == h) return 0;
        i = (i + 1) & (d->cap - 1);
    }
    d->slots[i] = h;
    d->used++;
    return 1;
}

static int process_text(const model_params *params, atomic_int *stop, const char *material,
                        size_t len, unit_set *units, stats *st, size_t *duplicates, ad_err *e)
{
    ad_buf norm;
    ad_buf_init(&norm);
    if (text_normalize(material, len, &norm, e) < 0) {
        ad_buf_cleanup(&norm);
        return AD_EINVAL;
    }
    if (norm.len == 0) {
        ad_buf_cleanup(&norm);
        return ad_err_set(e, AD_EINVAL, "training_data has no text after normalization");
    }
    stats_add_text(st, norm.data, norm.len);
    passages_params pp;
    passages_params_default(&pp);
    pp.target_chars = (size_t)params->passage_chars;
    pp.max_chars = pp.target_chars + pp.target_chars / 2;
    pp.overlap_sentences = (size_t)params->overlap;
    passages_list list;
    passages_list_init(&list);
    int rc = passages_split(norm.data, norm.len, &pp, &list, e);
    dedupe_set seen = {0};
    for (size_t i = 0; rc == 0 && i < list.count; i++) {
        if ((i & 255) == 0 && atomic_load(stop)) rc = ad_err_set(e, AD_ECANCELLED, "cancelled");
        const char *p = norm.data + list.items[i].offset;
        size_t n = list.items[i].length;
        if (!dedupe_add(&seen, passages_fingerprint(p, n))) {
            (*duplicates)++;
            continue;
        }
        char *body = ad_strndup(p, n);
        stats_add_passage(st, p, n);
        unit_set_push(units, "", body, NULL, NULL, NULL);
        free(body);
    }
    free(seen.slots);
    /* Question/answer pairs are derived for the passages that use them: the
     * evaluation sample (every `step`-th, as pipeline_evaluate walks them)
     * and the first ones, which the few-shot examples come from. */
    size_t step = eval_step(units->count);
    for (size_t i = 0; rc == 0 && i < units->count; i++) {
        if (i % step != 0 && i >= FEWSHOT_CANDIDATES) continue;
        unit_mem *u = &units->items[i];
        u->probe = passages_derive_question(u->body, strlen(u->body));
    }
    passages_list_cleanup(&list);
    ad_buf_cleanup(&norm);
    return rc;
}

static int process_dataset(atomic_int *stop, const char *material, size_t len, unit_set *units,
                           stats *st, size_t *duplicates, cJSON *categories, ad_err *e)
{
    cJSON *arr = cJSON_ParseWithLength(material, len);
    if (!cJSON_IsArray(arr)) {
        cJSON_Delete(arr);
        return ad_err_set(e, AD_EINVAL, "stored dataset is not a JSON array");
    }
    dedupe_set seen = {0};
    ad_buf q, a, key;
    ad_buf_init(&q), ad_buf_init(&a), ad_buf_init(&key);
    int rc = 0, i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, arr) {
        if ((i++ & 255) == 0 && atomic_load(stop)) {
            rc = ad_err_set(e, AD_ECANCELLED, "cancelled");
            break;
        }
        const char *prompt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "prompt"));
        const char *answer = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "answer"));
        const char *category = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "category"));
        if (!prompt || !answer) {
            rc = ad_err_set(e, AD_EINVAL, "dataset[%d] lacks prompt or answer", i - 1);
            break;
        }
        ad_buf_reset(&q), ad_buf_reset(&a), ad_buf_reset(&key);
        if (text_normalize(prompt, strlen(prompt), &q, e) < 0 ||
            text_normalize(answer, strlen(answer), &a, e) < 0) {
            rc = AD_EINVAL;
            break;
        }
        if (q.len == 0 || a.len == 0) continue;
        ad_buf_append(&key, q.data, q.len);
        ad_buf_putc(&key, '\n');
        ad_buf_append(&key, a.data, a.len);
        if (!dedupe_add(&seen, passages_fingerprint(key.data, key.len))) {
            (*duplicates)++;
            continue;
        }
        stats_add_text(st, q.data, q.len);
        stats_add_text(st, a.data, a.len);
        stats_add_passage(st, a.data, a.len);
        if (category && *category) {
            cJSON *n = cJSON_GetObjectItemCaseSensitive(categories, category);
            if (n) cJSON_SetNumberValue(n, n->valuedouble + 1);
            else cJSON_AddNumberToObject(categories, category, 1);
        }
        unit_set_push(units, q.data, a.data, a.data, category && *category ? category : NULL, q.data);
    }
    ad_buf_cleanup(&q), ad_buf_cleanup(&a), ad_buf_cleanup(&key);
    free(seen.slots);
    cJSON_Delete(arr);
    if (rc == 0 && units->count == 0) rc = ad_err_set(e, AD_EINVAL, "dataset has no usable pairs");
    return rc;
}

int pipeline_process(storage_conn *db, const agent_row *agent, const model_params *params,
                     atomic_int *stop, unit_set *units, stats *st, size_t *duplicates,
                     cJSON *categories, size_t *material_len, ad_err *e)
{
    char *material = NULL;
    size_t len = 0;
    int rc = storage_agents_material(db, agent->id, &material, &len, e);
    if (rc < 0) return rc;
    rc = strcmp(agent->source, "text") == 0
                 ? process_text(params, stop, material, len, units, st, duplicates, e)
                 : process_dataset(stop, material, len, units, st, duplicates, categories, e);
    free(material);
    if (material_len) *material_len = len;
    return rc;
}

int stage_process(stage_ctx *c, ad_err *e)
{
    size_t len = 0;
    int is_text = strcmp(c->agent->source, "text") == 0;
    unit_set units = {0};
    stats st;
    stats_init(&st, STATS_DEFAULT_MAX_VOCABULARY);
    size_t duplicates = 0;
    cJSON *categories = cJSON_CreateObject();
    int rc = pipeline_process(c->db, c->agent, &c->params, c->stop, &units, &st, &duplicates,
                              categories, &len, e);

    c->inputs = cJSON_CreateObject();
    cJSON_AddStringToObject(c->inputs, "source", c->agent->source);
    cJSON_AddNumberToObject(c->inputs, "material_bytes", (double)len);
    cJSON_AddNumberToObject(c->inputs, "passage_chars", c->params.passage_chars);
    cJSON_AddNumberToObject(c->inputs, "overlap", c->params.overlap);

    ad_buf stats_json;
    ad_buf_init(&stats_json);
    if (rc == 0) {
        stats_to_json(&st, 10, &stats_json);
        cJSON *sj = cJSON_ParseWithLength(stats_json.data, stats_json.len);
        if (!sj) sj = cJSON_CreateObject();
        if (!is_text) cJSON_AddItemToObject(sj, "categories", cJSON_Duplicate(categories, 1));
        cJSON_AddNumberToObject(sj, "duplicates_removed", (double)duplicates);
        ad_buf_reset(&stats_json);
        char *txt = cJSON_PrintUnformatted(sj);
        ad_buf_puts(&stats_json, txt);
        cJSON_free(txt);

        c->output = cJSON_CreateObject();
        cJSON_AddNumberToObject(c->output, "units", (double)units.count);
        size_t derived = 0;
        for (size_t i = 0; i < units.count; i++) derived += units.items[i].probe != NULL;
        cJSON_AddNumberToObject(c->output, is_text ? "derived_pairs" : "pairs",
                                (double)(is_text ? derived : units.count));
        cJSON_AddNumberToObject(c->output, "duplicates_removed", (double)duplicates);
        cJSON_AddItemToObject(c->output, "statistics", sj);
        if (is_text && units.count) {
            cJSON *ex = cJSON_AddArrayToObject(c->output, "derived_examples");
            for (size_t i = 0; i < units.count && i < 3; i++) {
                cJSON *pair = cJSON_CreateObject();
                cJSON_AddStringToObject(pair, "question", units.items[i].probe ? units.items[i].probe : "");
                char *snip = ad_strndup(units.items[i].body, strlen(units.items[i].body) > 160 ? 160 : strlen(units.items[i].body));
                cJSON_AddStringToObject(pair, "answer", snip);
                free(snip);
                cJSON_AddItemToArray(ex, pair);
            }
        }
    }
    if (rc == 0) {
        unit_row *rows = unit_set_rows(&units);
        rc = storage_units_replace(c->db, c->agent->id, rows, units.count, stats_json.data,
                                   stage_record(c), e);
        free(rows);
    }
    ad_buf_cleanup(&stats_json);
    cJSON_Delete(categories);
    stats_cleanup(&st);
    unit_set_cleanup(&units);
    return rc;
}

/* ---- 2. ModelTrainer ---- */

char *pipeline_persona(const agent_row *agent, const cJSON *statistics, const cJSON *suggestions)
{
    ad_buf b;
    ad_buf_init(&b);
    ad_buf_printf(&b, "You are the personal assistant of %s", agent->user_id);
    if (agent->description && *agent->description)
        ad_buf_printf(&b, ", described as: %s", agent->description);
    ad_buf_puts(&b, ".");
    const cJSON *cats = cJSON_GetObjectItemCaseSensitive(statistics, "categories");
    const cJSON *terms = cJSON_GetObjectItemCaseSensitive(statistics, "top_terms");
    int n = 0;
    const cJSON *it;
    if (cJSON_IsObject(cats) && cats->child) {
        ad_buf_puts(&b, " Your expertise covers ");
        cJSON_ArrayForEach(it, cats) {
            if (n == 8) break;
            ad_buf_printf(&b, "%s%s", n++ ? ", " : "", it->string);
        }
        ad_buf_puts(&b, ".");
    }
    n = 0;
    if (cJSON_IsArray(terms) && cJSON_GetArraySize(terms) > 0) {
        ad_buf_puts(&b, " Key topics in your material: ");
        cJSON_ArrayForEach(it, terms) {
            const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "term"));
            if (!t) continue;
            if (n == 8) break;
            ad_buf_printf(&b, "%s%s", n++ ? ", " : "", t);
        }
        ad_buf_puts(&b, ".");
    }
    ad_buf_puts(&b,
                " Answer from the context passages given with each question, faithfully and "
                "concisely. If the context does not contain the answer, say that you do not know "
                "instead of guessing.");
    const cJSON *s;
    cJSON_ArrayForEach(s, suggestions) {
        if (cJSON_IsString(s)) ad_buf_printf(&b, " %s", s->valuestring);
    }
    return ad_buf_steal(&b, NULL);
}

/* Few-shot examples: the first pair of each category, then pairs in order. */
cJSON *pipeline_fewshot(const model_params *params, const unit_set *units)
{
    cJSON *arr = cJSON_CreateArray();
    int want = params->fewshot;
    size_t n = units->count;
    unsigned char *taken = ad_calloc(n ? n : 1, 1);
    /* The units taken so far (at most `want`): a category is checked against
     * them, not against every earlier unit (free text has thousands). */
    size_t *picked = ad_malloc(ad_size_mul(want > 0 ? (size_t)want : 1, sizeof(*picked)));
    size_t npicked = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n && cJSON_GetArraySize(arr) < want; i++) {
            const unit_mem *u = &units->items[i];
            if (taken[i]) continue;
            if (pass == 0) {
                if (!u->category) continue;
                int seen = 0;
                for (size_t j = 0; j < npicked && !seen; j++)
                    seen = units->items[picked[j]].category &&
                           strcmp(units->items[picked[j]].category, u->category) == 0;
                if (seen) continue;
            }
            const char *q = u->answer ? u->question : u->probe;
            if (!q || !*q) continue;
            cJSON *pair = cJSON_CreateObject();
            cJSON_AddStringToObject(pair, "prompt", q);
            size_t blen = strlen(u->body);
            char *ans = ad_strndup(u->body, blen > 600 ? 600 : blen);
            cJSON_AddStringToObject(pair, "answer", ans);
            free(ans);
            cJSON_AddItemToArray(arr, pair);
            taken[i] = 1;
            picked[npicked++] = i;
        }
    }
    free(picked);
    free(taken);
    return arr;
}

int pipeline_index_version(storage_conn *db, version_build *b, const model_params *params,
                           const unit_set *units, stage_ctx *stage, int64_t *version_id, ad_err *e)
{
    /* The index is built in memory first: the unit of work then holds the
     * database only for the inserts. */
    index_mem *ix = index_new(answerer_language(b->language));
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < units->count; i++) {
        if ((i & 1023) == 0 && b->stop && atomic_load(b->stop)) rc = ad_err_set(e, AD_ECANCELLED, "cancelled");
        if (rc == 0) index_add(ix, units->items[i].question, units->items[i].body);
    }
    index_finish(ix);
    if (rc < 0) {
        index_free(ix);
        return rc;
    }
    cJSON *pj = model_params_to_json(params);
    char *params_txt = cJSON_PrintUnformatted(pj);
    cJSON_Delete(pj);
    unit_row *rows = unit_set_rows(units);
    index_rows index;
    index_rows_init(&index, ix);
    b->params = params_txt;
    b->passages = rows;
    b->count = units->count;
    b->index = &index;
    /* The stage's duration runs to here: the index build is its work. */
    rc = storage_versions_build(db, b, stage ? stage_record(stage) : NULL, version_id, e);
    b->params = NULL;
    b->passages = NULL;
    b->index = NULL;
    index_rows_cleanup(&index);
    index_free(ix);
    free(rows);
    cJSON_free(params_txt);
    return rc;
}

/* The ModelTrainer's output once its unit of work knows the new version's id. */
static char *stage_train_output(void *ud, int64_t version_id)
{
    cJSON *out = ud;
    cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(out, "version_id"), (double)version_id);
    return cJSON_PrintUnformatted(out);
}

int stage_train(stage_ctx *c, ad_err *e)
{
    cJSON *prev;
    int rc = stage_stored_output(c->db, c->agent->id, 0, &prev, e);
    if (rc < 0) return rc;
    unit_set units;
    rc = unit_set_load(c->db, c->agent->id, &units, e);
    if (rc < 0) {
        cJSON_Delete(prev);
        return rc;
    }
    const cJSON *statistics = cJSON_GetObjectItemCaseSensitive(prev, "statistics");
    char *persona = pipeline_persona(c->agent, statistics, c->suggestions);
    cJSON *fewshot = pipeline_fewshot(&c->params, &units);
    char *fewshot_txt = cJSON_PrintUnformatted(fewshot);
    cJSON *params = model_params_to_json(&c->params);

    c->inputs = cJSON_CreateObject();
    cJSON_AddNumberToObject(c->inputs, "units", (double)units.count);
    cJSON_AddItemToObject(c->inputs, "params", cJSON_Duplicate(params, 1));

    /* The name is chosen before the unit of work: one job per agent runs at
     * a time, and a name taken meanwhile fails the build with AD_EEXIST. */
    char name[65];
    if (c->version_name) snprintf(name, sizeof(name), "%s", c->version_name);
    else rc = storage_versions_next_name(c->db, c->agent->id, name, sizeof(name), e);
    if (rc == 0) {
        c->output = cJSON_CreateObject();
        cJSON_AddNumberToObject(c->output, "version_id", 0); /* set by stage_train_output */
        cJSON_AddStringToObject(c->output, "name", name);
        cJSON_AddNumberToObject(c->output, "passages", (double)units.count);
        cJSON_AddItemToObject(c->output, "params", cJSON_Duplicate(params, 1));
        cJSON_AddStringToObject(c->output, "persona", persona);
        cJSON_AddNumberToObject(c->output, "fewshot", cJSON_GetArraySize(fewshot));
        c->step.output_for = stage_train_output;
        c->step.output_ud = c->output;
        version_build b = {.agent_id = c->agent->id,
                           .name = name,
                           .language = c->agent->language,
                           .persona = persona,
                           .fewshot = fewshot_txt,
                           .state = VERSION_TRAINED,
                           .job_id = c->step.job_id,
                           .stop = c->stop};
        int64_t vid = 0;
        rc = pipeline_index_version(c->db, &b, &c->params, &units, c, &vid, e);
    }
    free(persona);
    cJSON_free(fewshot_txt);
    cJSON_Delete(fewshot);
    cJSON_Delete(params);
    cJSON_Delete(prev);
    unit_set_cleanup(&units);
    return rc;
}

/* ---- 3. ModelEvaluator ---- */

typedef struct eval_acc {
    metrics_retrieval retrieval;
    double f1, jaccard, containment, overall;
    size_t answered;
} eval_acc;

/* Runs one query; `expected_ord` is the unit it should find (-1: none, only
 * the answer is scored). */
static int eval_query(storage_conn *db, int64_t vid, analysis_language lang, const model_params *params,
                      const char *query, answerer_fields fields, int expected_ord,
                      const char *expected_answer, eval_acc *acc, ad_err *e)
{
    answerer_result a;
    int rc = answerer_answer(db, vid, lang, params, query, ANSWERER_MAX_HITS, fields, &a, e);
    if (rc < 0) return rc;
    if (expected_ord >= 0) {
        size_t rank = 0;
        for (int i = 0; i < a.nhits && !rank; i++)
            if (a.hits[i].ord == expected_ord) rank = (size_t)i + 1;
        metrics_retrieval_add(&acc->retrieval, rank);
    }
    metrics_scores s = {0};
    const char *pred = a.text ? a.text : "";
    metrics_compare_tokens(pred, strlen(pred), expected_answer, strlen(expected_answer), &s);
    acc->f1 += s.token_f1;
    acc->jaccard += s.jaccard;
    acc->containment += s.containment;
    acc->overall += s.overall;
    acc->answered++;
    answerer_result_cleanup(&a);
    return 0;
}

static uint64_t eval_seed(const agent_row *agent, size_t i)
{
    return text_hash64(agent->user_id, strlen(agent->user_id), TEXT_HASH_SEED) ^
           ((uint64_t)i * 0x9E3779B97F4A7C15ull);
}

static double round3(double v)
{
    return floor(v * 1000.0 + 0.5) / 1000.0;
}

int pipeline_evaluate(storage_conn *db, const agent_row *agent, int64_t vid, const model_params *params,
                      const unit_set *units, const cJSON *extra_cases, atomic_int *stop,
                      cJSON **metrics, double *quality_out, ad_err *e)
{
    int is_dataset = strcmp(agent->source, "dataset") == 0;
    /* The version was indexed in its agent's language (pipeline_index_version). */
    analysis_language lang = answerer_language(agent->language);
    eval_acc acc;
    memset(&acc, 0, sizeof(acc));
    metrics_retrieval_init(&acc.retrieval);
    size_t perturbed = 0, held_out = 0, derived = 0, feedback = 0;
    int rc = 0;
    size_t n = units->count;
    size_t step = eval_step(n);
    for (size_t i = 0; rc == 0 && i < n; i += step) {
        if (atomic_load(stop)) rc = ad_err_set(e, AD_ECANCELLED, "cancelled");
        const unit_mem *u = &units->items[i];
        const char *expected = u->answer ? u->answer : u->body;
        if (rc) break;
        if (is_dataset) {
            perturb_op op;
            char *q = perturb_prompt(u->question, strlen(u->question), eval_seed(agent, i), &op);
            rc = eval_query(db, vid, lang, params, q, ANSWERER_ALL, (int)i, expected, &acc, e);
            free(q);
            perturbed++;
        } else if (u->probe && *u->probe) {
            rc = eval_query(db, vid, lang, params, u->probe, ANSWERER_ALL, (int)i, expected, &acc, e);
            derived++;
        }
    }
    /* Held-out pairs: the prompt is searched against the answers only, as if
     * the version had been built without that pair's question. */
    size_t hstep = n > EVAL_MAX_HELD_OUT * 4 ? (n + EVAL_MAX_HELD_OUT - 1) / EVAL_MAX_HELD_OUT : 4;
    for (size_t i = hstep / 2; is_dataset && rc == 0 && i < n; i += hstep) {
        const unit_mem *u = &units->items[i];
        rc = eval_query(db, vid, lang, params, u->question, ANSWERER_BODY_ONLY, (int)i, u->answer, &acc, e);
        held_out++;
    }
    /* Feedback cases: a prompt and the answer a person approved of. */
    const cJSON *fc;
    cJSON_ArrayForEach(fc, extra_cases) {
        const char *q = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(fc, "prompt"));
        const char *want = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(fc, "expected"));
        if (rc || !q || !want) continue;
        rc = eval_query(db, vid, lang, params, q, ANSWERER_ALL, -1, want, &acc, e);
        feedback++;
    }
    if (rc < 0) return rc;

    double q = acc.answered ? (double)acc.answered : 1.0;
    double mrr = metrics_retrieval_mrr(&acc.retrieval);
    double overall = acc.overall / q;
    double quality = 0.5 * mrr + 0.5 * overall;
    cJSON *m = cJSON_CreateObject();
    cJSON_AddNumberToObject(m, "queries", (double)acc.answered);
    cJSON_AddNumberToObject(m, "perturbed_queries", (double)perturbed);
    cJSON_AddNumberToObject(m, "held_out_queries", (double)held_out);
    cJSON_AddNumberToObject(m, "derived_queries", (double)derived);
    cJSON_AddNumberToObject(m, "feedback_queries", (double)feedback);
    cJSON_AddNumberToObject(m, "hit_at_1", round3(metrics_retrieval_hit_at_1(&acc.retrieval)));
    cJSON_AddNumberToObject(m, "hit_at_3", round3(metrics_retrieval_hit_at_3(&acc.retrieval)));
    cJSON_AddNumberToObject(m, "mrr", round3(mrr));
    cJSON_AddNumberToObject(m, "token_f1", round3(acc.f1 / q));
    cJSON_AddNumberToObject(m, "jaccard", round3(acc.jaccard / q));
    cJSON_AddNumberToObject(m, "containment", round3(acc.containment / q));
    cJSON_AddNumberToObject(m, "overall_similarity", round3(overall));
    cJSON_AddNumberToObject(m, "quality_score", round3(quality));
    cJSON_AddStringToObject(m, "quality_label", metrics_quality_label(quality));
    *metrics = m;
    *quality_out = round3(quality);
    return 0;
}

int stage_evaluate(stage_ctx *c, ad_err *e)
{
    cJSON *prev;
    int rc = stage_stored_output(c->db, c->agent->id, 1, &prev, e);
    if (rc < 0) return rc;
    int64_t vid = json_int(prev, "version_id");
    cJSON_Delete(prev);
    version_row v;
    /* A busy or failing database keeps its code, so the runner retries
     * instead of failing the agent. */
    rc = storage_versions_get(c->db, vid, &v, e);
    if (rc < 0) return rc;
    cJSON *vp = cJSON_Parse(v.params);
    model_params_from_json(&c->params, vp);
    cJSON_Delete(vp);
    version_row_cleanup(&v);

    unit_set units;
    rc = unit_set_load(c->db, c->agent->id, &units, e);
    if (rc < 0) return rc;
    cJSON *m = NULL;
    double quality = 0;
    rc = pipeline_evaluate(c->db, c->agent, vid, &c->params, &units, NULL, c->stop, &m, &quality, e);
    c->inputs = cJSON_CreateObject();
    cJSON_AddNumberToObject(c->inputs, "version_id", (double)vid);
    cJSON_AddNumberToObject(c->inputs, "units", (double)units.count);
    unit_set_cleanup(&units);
    if (rc < 0) return rc;
    char *txt = cJSON_PrintUnformatted(m);
    c->output = cJSON_CreateObject();
    cJSON_AddNumberToObject(c->output, "version_id", (double)vid);
    cJSON_AddItemToObject(c->output, "metrics", m);
    rc = storage_versions_record_evaluation(c->db, vid, txt, quality, stage_record(c), e);
    cJSON_free(txt);
    return rc;
}

/* ---- 4. ModelDeployer ---- */

int pipeline_deploy_verdict(storage_conn *db, int64_t agent_id, const deploy_candidate *cand,
                            deploy_decision *d, cJSON **output, ad_err *e)
{
    version_row cur;
    agent_row agent;
    int rc = storage_agents_get_by_id(db, agent_id, &agent, e);
    if (rc < 0) return rc;
    int64_t vid = cand->version_id, deployed = agent.deployed_version_id;
    agent_row_cleanup(&agent);
    int already = deployed == vid;
    int has_cur = 0;
    if (deployed && !already) {
        /* The serving version goes only with its agent: gone, it is none. */
        rc = storage_versions_get(db, deployed, &cur, e);
        has_cur = rc == 0;
        if (rc < 0 && rc != AD_ENOTFOUND) return rc;
    }

    int deploy = 1;
    char *note = d->note;
    size_t note_cap = sizeof(d->note);
    if (already) {
        snprintf(note, note_cap, "deployed: %s is already the serving version (quality %.3f)", cand->name,
                 cand->quality);
    } else if (has_cur && cand->force) {
        snprintf(note, note_cap, "deployed (forced, gate skipped): quality %.3f against %.3f of %s",
                 cand->quality, cur.quality, cur.name);
    } else if (has_cur && cand->quality < cur.quality - DEPLOY_MARGIN) {
        deploy = 0;
        snprintf(note, note_cap,
                 "not deployed: quality %.3f is clearly below the deployed %s (%.3f, margin %.2f)",
                 cand->quality, cur.name, cur.quality, DEPLOY_MARGIN);
    } else if (has_cur) {
        snprintf(note, note_cap, "deployed: quality %.3f against %.3f of %s, which is kept for rollback",
                 cand->quality, cur.quality, cur.name);
    } else {
        snprintf(note, note_cap, "deployed: first version, quality %.3f", cand->quality);
    }
    if (cand->deployment_id) snprintf(d->uuid, sizeof(d->uuid), "%s", cand->uuid);
    else ad_uuid_v4(d->uuid);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "deployed", deploy);
    cJSON_AddStringToObject(o, "deployment", d->uuid);
    cJSON_AddStringToObject(o, "version", cand->name);
    cJSON_AddNumberToObject(o, "version_id", (double)vid);
    cJSON_AddNumberToObject(o, "quality", cand->quality);
    if (has_cur) cJSON_AddStringToObject(o, "previous", cur.name);
    else cJSON_AddNullToObject(o, "previous");
    if (has_cur) cJSON_AddNumberToObject(o, "previous_quality", cur.quality);
    else cJSON_AddNullToObject(o, "previous_quality");
    cJSON_AddNumberToObject(o, "margin", DEPLOY_MARGIN);
    cJSON_AddBoolToObject(o, "forced", cand->force);
    cJSON_AddStringToObject(o, "reason", note);
    char *gate = cJSON_PrintUnformatted(o);
    snprintf(d->gate, sizeof(d->gate), "%s", gate);
    cJSON_free(gate);
    d->verdict = (version_verdict){.agent_id = agent_id,
                                   .version_id = vid,
                                   .deploy = deploy,
                                   .note = note,
                                   .expected_deployed = deployed,
                                   .deployment_id = cand->deployment_id,
                                   .uuid = d->uuid,
                                   .created_by = cand->created_by ? cand->created_by : "system",
                                   .actor = cand->actor ? cand->actor : "system",
                                   .request_id = cand->request_id,
                                   .forced = cand->force,
                                   .gate = d->gate};
    *output = o;
    if (has_cur) version_row_cleanup(&cur);
    return 0;
}

int pipeline_deploy(storage_conn *db, int64_t agent_id, const deploy_candidate *cand, char uuid[AD_UUID_LEN],
                    ad_err *e)
{
    int rc;
    for (int tries = 1;; tries++) {
        deploy_decision d;
        cJSON *out = NULL;
        rc = pipeline_deploy_verdict(db, agent_id, cand, &d, &out, e);
        cJSON_Delete(out);
        if (rc == 0) rc = storage_deployments_push(db, &d.verdict, e);
        if (rc == 0) snprintf(uuid, AD_UUID_LEN, "%s", d.uuid);
        if (rc != AD_ECONFLICT || tries == PIPELINE_DEPLOY_TRIES) break;
    }
    return rc;
}

int stage_deploy(stage_ctx *c, ad_err *e)
{
    cJSON *prev;
    int rc = stage_stored_output(c->db, c->agent->id, 2, &prev, e);
    if (rc < 0) return rc;
    int64_t vid = json_int(prev, "version_id");
    cJSON_Delete(prev);
    c->inputs = cJSON_CreateObject();
    cJSON_AddNumberToObject(c->inputs, "version_id", (double)vid);
    /* The evaluated version does not change while it waits: read it once;
     * the serving one is read again by each decision. */
    version_row v;
    rc = storage_versions_get(c->db, vid, &v, e);
    if (rc < 0) return rc;
    deploy_candidate cand = {.version_id = vid, .name = v.name, .quality = v.quality};
    for (int tries = 1;; tries++) {
        deploy_decision d;
        cJSON_Delete(c->output);
        c->output = NULL;
        rc = pipeline_deploy_verdict(c->db, c->agent->id, &cand, &d, &c->output, e);
        if (rc == 0) rc = storage_versions_settle(c->db, &d.verdict, stage_record(c), e);
        if (rc != AD_ECONFLICT || tries == PIPELINE_DEPLOY_TRIES) break;
    }
    version_row_cleanup(&v);
    return rc;
}
