/*
 * A bound on the time a connection may take to send a request's headers.
 *
 * libmicrohttpd 0.9.75 only times out connections that are idle: a client
 * that drips one header byte a second is never idle and holds its connection
 * for as long as it likes. Here a watchdog thread shuts down the socket of any
 * connection whose headers are not complete when its deadline passes, so
 * libmicrohttpd sees the peer gone and closes it.
 *
 * The watchdog works on its own duplicate of the socket descriptor, taken once
 * when the connection is first watched and closed when it is forgotten: it can
 * never shut down a descriptor number that libmicrohttpd closed and the kernel
 * reused. Between the requests of a keep-alive connection only the deadline
 * changes (no system call on the request path).
 */
#ifndef AD_SERVER_HEADER_DEADLINE_H
#define AD_SERVER_HEADER_DEADLINE_H

#include <stdint.h>

/* Starts the watchdog; deadlines are `timeout_ms` after arming. 0 or AD_EIO. */
int header_deadline_start(int timeout_ms);

/* Stops the watchdog and closes every descriptor it still holds. */
void header_deadline_stop(void);

/* Starts watching socket `fd` (a connection was accepted: its first request's
 * headers start now) with its deadline armed; returns a ticket for the calls
 * below, or 0 when it cannot be watched (no watchdog, or the descriptor could
 * not be duplicated: the connection is then served without the bound). */
uint64_t header_deadline_watch(int fd);

/* The headers of the connection's request are complete: no deadline until
 * header_deadline_rearm. 0 is ignored. */
void header_deadline_pause(uint64_t ticket);

/* The connection waits for its next request's headers: the deadline is now +
 * the timeout. 0 is ignored. */
void header_deadline_rearm(uint64_t ticket);

/* The connection is closed: after this returns the watchdog no longer touches
 * the socket and its duplicate is closed. 0 is ignored. */
void header_deadline_forget(uint64_t ticket);

#endif
