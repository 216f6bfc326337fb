/*
 * The hang-up watcher: libmicrohttpd does not notice a client going away
 * while its connection is suspended, so the sockets of suspended requests
 * sit in one epoll set watched for EPOLLRDHUP by one thread. When a peer
 * hangs up, the request's abort callback runs (once).
 *
 * Registrations are named by a ticket, not a pointer, so an event that races
 * with hangup_forget() can never reach freed memory: after hangup_forget()
 * returns, the callback is not running and will not run.
 */
#ifndef AD_SERVER_HANGUP_H
#define AD_SERVER_HANGUP_H

#include <stdint.h>

typedef void (*hangup_fn)(void *ud);

int hangup_start(void);
void hangup_stop(void);

/* Watches `fd`; returns a ticket (0 when the watcher is not running). */
uint64_t hangup_watch(int fd, hangup_fn fn, void *ud);

/* Stops watching; waits for a callback of this ticket in progress. */
void hangup_forget(uint64_t ticket);

#endif
