/*
 * The data dir's lock: one agentd process per data dir. Two processes on one
 * database would each believe they own its jobs and leases.
 *
 * The lock is flock(2) on <data_dir>/agentd.lock, which holds the pid of the
 * process that has it. The kernel drops it when that process exits, however
 * it exits, so a crash never leaves a stale lock behind; the file stays.
 */
#ifndef AD_STORAGE_LOCK_H
#define AD_STORAGE_LOCK_H

#include "base/err.h"

/* Takes the lock of `data_dir` (which must exist) for this process. Taking the
 * lock already held is a no-op; taking another dir's lock releases the first.
 * AD_ECONFLICT when another process holds it, with the dir and that process's
 * pid in `e`; AD_EIO when the lock file cannot be opened. */
int storage_lock_acquire(const char *data_dir, ad_err *e);

/* Releases the lock, if held. */
void storage_lock_release(void);

#endif
