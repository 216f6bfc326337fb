/*
 * Processed material (the DataProcessor's stored output): the agent's
 * normalized units in order. A unit is a dataset pair (question = prompt,
 * body = answer) or a passage of free text (question empty, `probe` a question
 * derived from it, used for evaluation only).
 */
#ifndef AD_STORAGE_UNITS_H
#define AD_STORAGE_UNITS_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "storage/db.h"
#include "storage/executions.h"

typedef struct unit_row {
    int ord;
    const char *question;  /* borrowed: valid during the visit only */
    const char *body;
    const char *answer;    /* NULL for text passages */
    const char *category;  /* may be NULL */
    const char *probe;     /* may be NULL */
} unit_row;

/* The DataProcessor's unit of work: replaces the agent's units with `units`
 * (`count` of them, in order) and its statistics (JSON) with `statistics`,
 * and records `step` (storage/executions.h), all or nothing. */
int storage_units_replace(storage_conn *db, int64_t agent_id, const unit_row *units, size_t count,
                          const char *statistics, const exec_step *step, ad_err *e);

/* Visits the agent's units in order. */
typedef void (*unit_visit_fn)(void *ud, const unit_row *u);
int storage_units_each(storage_conn *db, int64_t agent_id, unit_visit_fn fn, void *ud, ad_err *e);

#endif
