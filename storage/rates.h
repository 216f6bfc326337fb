/*
 * The request windows several replicas share (issue 13; server/limits.h
 * counts with them when the database is shared): one row per caller, the
 * wall-clock ms its current window opened and the requests counted in it.
 *
 * A take is one autocommit statement, an upsert whose row lock orders
 * concurrent takes of one caller, on any replica: no unit of work, so it
 * never waits behind the unit lock. Rows of callers gone quiet are pruned
 * by the maintenance pass (storage/maintenance.h).
 */
#ifndef AD_STORAGE_RATES_H
#define AD_STORAGE_RATES_H

#include <stdint.h>

#include "base/err.h"
#include "storage/db.h"

/* The window server/limits.h counts in (its LIMITS_WINDOW_MS, asserted
 * equal there); the maintenance pass prunes by it. */
#define STORAGE_RATES_WINDOW_MS 60000

/* Counts one request of `caller` at `now_ms`: when its window has ended
 * (window_start + window_ms <= now_ms), or when the clock stepped back by
 * more than a whole window behind its start, a new window opens at now_ms
 * with a count of 1; otherwise the count goes up by one. `*window_start` and
 * `*count` are the row as the statement left it (the count goes on past any
 * limit: the caller compares). Ends a read snapshot left open on `db`.
 * AD_EUNAVAILABLE when the database server cannot be reached. */
int storage_rates_take(storage_conn *db, const char *caller, int64_t now_ms, int64_t window_ms,
                       int64_t *window_start, int64_t *count, ad_err *e);

/* Deletes the rows whose window ended more than a window before `now_ms`
 * (window_start + 2 * window_ms < now_ms): nothing reads them again, a
 * caller's next take opens a new window anyway. `*removed` (may be NULL)
 * gets the number of rows deleted. */
int storage_rates_prune(storage_conn *db, int64_t now_ms, int64_t window_ms, int64_t *removed, ad_err *e);

#endif
