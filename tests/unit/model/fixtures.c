#include "tests/unit/model/fixtures.h"

#include <stdio.h>
#include <stdlib.h>

#include "base/buf.h"

cJSON *model_fixture_dataset(const char *name)
{
    ad_buf path;
    ad_buf_init(&path);
    ad_buf_printf(&path, "tests/data/%s", name);
    FILE *f = fopen(path.data, "rb");
    ad_buf_cleanup(&path);
    if (!f) return NULL;
    ad_buf text;
    ad_buf_init(&text);
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) ad_buf_append(&text, chunk, got);
    fclose(f);
    cJSON *root = text.data ? cJSON_ParseWithLength(text.data, text.len) : NULL;
    ad_buf_cleanup(&text);
    return root;
}

char *model_fixture_answers(size_t *len)
{
    static const char *const names[] = {"ml_expert_dataset.json", "python_expert_dataset.json"};
    ad_buf out;
    ad_buf_init(&out);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        cJSON *root = model_fixture_dataset(names[i]);
        const cJSON *pair;
        cJSON_ArrayForEach(pair, cJSON_GetObjectItemCaseSensitive(root, "training_data"))
        {
            const cJSON *answer = cJSON_GetObjectItemCaseSensitive(pair, "answer");
            if (!cJSON_IsString(answer)) continue;
            if (out.len) ad_buf_puts(&out, "\n\n");
            ad_buf_puts(&out, answer->valuestring);
        }
        cJSON_Delete(root);
    }
    if (out.len == 0) {
        ad_buf_cleanup(&out);
        return NULL;
    }
    return ad_buf_steal(&out, len);
}
