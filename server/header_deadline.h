/*
 * A bound on the time a connection may take to send a request's headers.
 *
 * libmicrohttpd 0.9.75 only times out connections that are idle: a client
 * that drips one header byte a second is never idle and holds its connection
 * for as long as it likes. Here a watchdog thread shuts down the socket of any
 * connection whose headers are not complete when its deadline passes, so
 * libmicrohttpd sees the peer gone and closes it.
 *
 * The watchdog works on its own duplicate of the socket descriptor, taken when
 * the deadline is armed and closed when it is disarmed: it can never shut down
 * a descriptor number that libmicrohttpd closed and the kernel reused.
 */
#ifndef AD_SERVER_HEADER_DEADLINE_H
#define AD_SERVER_HEADER_DEADLINE_H

#include <stdint.h>

/* Starts the watchdog; deadlines are `timeout_ms` after arming. 0 or AD_EIO. */
int header_deadline_start(int timeout_ms);

/* Stops the watchdog and closes every descriptor it still holds. */
void header_deadline_stop(void);

/* Arms a deadline for socket `fd` (a request's headers start now); returns a
 * ticket for header_deadline_disarm, or 0 when none could be armed (no
 * watchdog, or the descriptor could not be duplicated). */
uint64_t header_deadline_arm(int fd);

/* Disarms `ticket` (0 is ignored); after it returns the watchdog no longer
 * touches the socket. */
void header_deadline_disarm(uint64_t ticket);

#endif
