#include "pipeline/reindex.h"

#include "base/clock.h"
#include "base/log.h"
#include "model/answerer.h"
#include "model/index.h"
#include "storage/index.h"
#include "storage/versions.h"

#define REINDEX_BATCH 64

static void reindex_visit(void *ud, const passage_hit *p)
{
    index_add(ud, p->question, p->body);
}

/* Rebuilds one version's index from its stored passages, which never
 * change once the version is built: read first, stored in one unit of work. */
static int reindex_version(storage_conn *db, int64_t vid, ad_err *e)
{
    version_row v;
    int rc = storage_versions_get(db, vid, &v, e);
    if (rc < 0) return rc;
    index_mem *ix = index_new(answerer_language(v.language));
    version_row_cleanup(&v);
    rc = storage_index_each_passage(db, vid, reindex_visit, ix, e);
    if (rc == 0) {
        index_finish(ix);
        index_rows rows;
        index_rows_init(&rows, ix);
        rc = storage_index_store(db, vid, &rows, e);
        index_rows_cleanup(&rows);
    }
    index_free(ix);
    return rc;
}

int pipeline_reindex_versions(storage_conn *db, int64_t *count, ad_err *e)
{
    int64_t started = ad_clock_mono_ms(), built = 0, after = 0;
    int64_t ids[REINDEX_BATCH];
    int n = 0, rc = 0;
    do {
        rc = storage_index_missing(db, after, ids, REINDEX_BATCH, &n, e);
        for (int i = 0; rc == 0 && i < n; i++) {
            rc = reindex_version(db, ids[i], e);
            /* A version deleted since the listing needs nothing. */
            if (rc == AD_ENOTFOUND) rc = 0;
            else if (rc == 0) built++;
            after = ids[i];
        }
    } while (rc == 0 && n == REINDEX_BATCH);
    if (built > 0 || rc < 0)
        ad_log(rc < 0 ? AD_LOG_ERROR : AD_LOG_INFO,
               "built the retrieval index of %lld model version(s) from before schema 6 in %lld ms%s%s",
               (long long)built, (long long)(ad_clock_mono_ms() - started), rc < 0 ? ": " : "",
               rc < 0 && e ? e->msg : "");
    if (count) *count = built;
    return rc;
}
