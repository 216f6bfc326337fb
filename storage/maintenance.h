/*
 * Background upkeep of the database: log retention and giving space back.
 *
 * Logs that grow with traffic (inference calls, finished jobs, finished
 * training runs with their iterations, feedback) are pruned by age and by
 * rows per agent, idempotency keys after STORAGE_IDEM_TTL_MS, the rate
 * windows of callers gone quiet (storage/rates.h), in small
 * batches, each its own short transaction, so no
 * request waits long behind them. Pages freed by pruning or by deleting
 * agents go back to the file system (incremental auto-vacuum) and the WAL is
 * checkpointed, and truncated when the database is idle or after a delete.
 * One thread runs it every interval, or at once when poked.
 */
#ifndef AD_STORAGE_MAINTENANCE_H
#define AD_STORAGE_MAINTENANCE_H

#include <stdatomic.h>
#include <stdint.h>

#include "base/err.h"
#include "storage/db.h"

typedef struct storage_retention {
    int64_t max_age_ms;           /* older log rows go; 0: no age limit */
    int64_t max_rows_per_agent;   /* inference-log and feedback rows kept per agent; 0: no limit */
} storage_retention;

/* One pruning pass over every log and the ended rate windows, in batches;
 * stops early when `*stop` is set (NULL: never). `*removed` (when not NULL) counts the rows deleted,
 * cascaded rows not included. */
int storage_prune_logs(storage_conn *db, const storage_retention *r, atomic_int *stop,
                       int64_t *removed, ad_err *e);

/* Returns free pages to the file system (incremental vacuum, in batches) and
 * checkpoints the WAL: a TRUNCATE checkpoint, which leaves it empty, when
 * `truncate_wal`, else a PASSIVE one that never waits. */
int storage_reclaim_space(storage_conn *db, int truncate_wal, ad_err *e);

/* Starts the maintenance thread: a pass every `interval_s` seconds. */
void storage_maintenance_start(const storage_retention *r, int interval_s);

/* Asks for a pass now (after a large delete); a no-op when the thread is not
 * running. Thread-safe, never blocks on the database. */
void storage_maintenance_poke(void);

/* Stops the thread (a running pass ends at its next batch) and joins it. */
void storage_maintenance_stop(void);

#endif
