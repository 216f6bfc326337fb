#include "storage/inferences.h"

#include "base/clock.h"
#include "storage/agents.h"
#include "storage/db.h"

int storage_inferences_record(sqlite3 *db, const inference_record *r, ad_err *e)
{
    int code = storage_begin(db, e);
    if (code < 0) return code;
    sqlite3_stmt *st = storage_stmt(db,
        "INSERT INTO inferences (agent_id, backend, status, outcome, latency_ms, prompt_tokens,"
        " output_tokens, retries, prompt, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
    sqlite3_bind_int64(st, 1, r->agent_id);
    sqlite3_bind_text(st, 2, r->backend, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, r->status);
    sqlite3_bind_text(st, 4, r->outcome, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, r->latency_ms);
    sqlite3_bind_int(st, 6, r->prompt_tokens);
    sqlite3_bind_int(st, 7, r->output_tokens);
    sqlite3_bind_int(st, 8, r->retries);
    if (r->prompt) sqlite3_bind_text(st, 9, r->prompt, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 10, ad_clock_now_ms());
    int rc = sqlite3_step(st);
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
        storage_rollback(db);
        return 0;
    }
    if (rc != SQLITE_DONE) {
        code = storage_fail(db, rc, "record inference", e);
        storage_rollback(db);
        return code;
    }
    int ok = r->status >= 200 && r->status < 300;
    code = storage_agents_count_inference(db, r->agent_id, ok, r->prompt_tokens, r->output_tokens, e);
    if (code < 0) {
        storage_rollback(db);
        return code;
    }
    return storage_commit(db, e);
}
