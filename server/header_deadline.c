#include "server/header_deadline.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/mem.h"

typedef struct hd_slot {
    uint64_t ticket;      /* 0: free */
    int fd;               /* our duplicate of the connection's socket */
    int64_t deadline_ms;  /* monotonic; 0 while paused or once shut down */
} hd_slot;

static pthread_mutex_t hd_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hd_cond;
static pthread_t hd_thread;
static int hd_running, hd_timeout_ms;
static hd_slot *hd_slots;
static size_t hd_cap, hd_free_hint;
static uint64_t hd_next = 1;

/* Tickets carry their slot index in the low 32 bits. */
static hd_slot *hd_find(uint64_t ticket)
{
    size_t i = (size_t)(ticket & 0xffffffffu);
    return i < hd_cap && hd_slots[i].ticket == ticket ? &hd_slots[i] : NULL;
}

/* The watchdog's period: deadlines are in whole seconds, so a tenth of the
 * timeout (at most a quarter second) keeps the overshoot small. */
static int64_t hd_period_ms(void)
{
    int64_t p = hd_timeout_ms / 10;
    return p < 10 ? 10 : p > 250 ? 250 : p;
}

static void *hd_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&hd_lock);
    while (hd_running) {
        int64_t now = ad_clock_mono_ms();
        for (size_t i = 0; i < hd_cap; i++) {
            hd_slot *s = &hd_slots[i];
            if (!s->ticket || !s->deadline_ms || now < s->deadline_ms) continue;
            /* Reading and writing stop; libmicrohttpd's next read sees the
             * end of the stream and closes the connection, which disarms. */
            shutdown(s->fd, SHUT_RDWR);
            s->deadline_ms = 0;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = ts.tv_nsec + hd_period_ms() * 1000000;
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&hd_cond, &hd_lock, &ts);
    }
    pthread_mutex_unlock(&hd_lock);
    return NULL;
}

int header_deadline_start(int timeout_ms)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&hd_cond, &ca);
    pthread_condattr_destroy(&ca);
    hd_timeout_ms = timeout_ms;
    hd_running = 1;
    if (pthread_create(&hd_thread, NULL, hd_main, NULL) != 0) {
        hd_running = 0;
        pthread_cond_destroy(&hd_cond);
        return AD_EIO;
    }
    return 0;
}

void header_deadline_stop(void)
{
    pthread_mutex_lock(&hd_lock);
    int was = hd_running;
    hd_running = 0;
    pthread_cond_signal(&hd_cond);
    pthread_mutex_unlock(&hd_lock);
    if (!was) return;
    pthread_join(hd_thread, NULL);
    pthread_cond_destroy(&hd_cond);
    for (size_t i = 0; i < hd_cap; i++)
        if (hd_slots[i].ticket) close(hd_slots[i].fd);
    free(hd_slots);
    hd_slots = NULL;
    hd_cap = hd_free_hint = 0;
}

uint64_t header_deadline_watch(int fd)
{
    pthread_mutex_lock(&hd_lock);
    if (!hd_running) {
        pthread_mutex_unlock(&hd_lock);
        return 0;
    }
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) {
        /* Out of descriptors: the connection is served without the bound
         * (libmicrohttpd's idle timeout still applies) rather than refused. */
        pthread_mutex_unlock(&hd_lock);
        return 0;
    }
    size_t i = hd_free_hint;
    while (i < hd_cap && hd_slots[i].ticket) i++;
    if (i == hd_cap) {
        size_t ncap = hd_cap ? ad_size_mul(hd_cap, 2) : 64;
        hd_slots = ad_realloc(hd_slots, ad_size_mul(ncap, sizeof(*hd_slots)));
        for (size_t k = hd_cap; k < ncap; k++) hd_slots[k].ticket = 0;
        hd_cap = ncap;
    }
    uint64_t ticket = (hd_next++ << 32) | (uint64_t)i;
    hd_slots[i] = (hd_slot){.ticket = ticket, .fd = dup_fd,
                            .deadline_ms = ad_clock_mono_ms() + hd_timeout_ms};
    hd_free_hint = i + 1;
    pthread_mutex_unlock(&hd_lock);
    return ticket;
}

/* Sets a watched connection's deadline (0: none). */
static void hd_set_deadline(uint64_t ticket, int64_t deadline_ms)
{
    if (!ticket) return;
    pthread_mutex_lock(&hd_lock);
    hd_slot *s = hd_find(ticket);
    if (s) s->deadline_ms = deadline_ms;
    pthread_mutex_unlock(&hd_lock);
}

void header_deadline_pause(uint64_t ticket)
{
    hd_set_deadline(ticket, 0);
}

void header_deadline_rearm(uint64_t ticket)
{
    hd_set_deadline(ticket, ad_clock_mono_ms() + hd_timeout_ms);
}

void header_deadline_forget(uint64_t ticket)
{
    if (!ticket) return;
    pthread_mutex_lock(&hd_lock);
    hd_slot *s = hd_find(ticket);
    if (s) {
        close(s->fd);
        s->ticket = 0;
        size_t i = (size_t)(s - hd_slots);
        if (i < hd_free_hint) hd_free_hint = i;
    }
    pthread_mutex_unlock(&hd_lock);
}
