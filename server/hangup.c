#include "server/hangup.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/mem.h"

typedef struct hangup_slot {
    uint64_t ticket;      /* 0: free */
    int fd;
    hangup_fn fn;
    void *ud;
} hangup_slot;

static pthread_mutex_t hu_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t hu_thread;
static int hu_epoll = -1, hu_wake = -1, hu_running;
static hangup_slot *hu_slots;
static size_t hu_cap;
static uint64_t hu_next = 1;

/* The slot of `ticket`, or NULL; caller holds hu_lock. Tickets carry their
 * slot index in the low 32 bits. */
static hangup_slot *hu_find(uint64_t ticket)
{
    size_t i = (size_t)(ticket & 0xffffffffu);
    return i < hu_cap && hu_slots[i].ticket == ticket ? &hu_slots[i] : NULL;
}

static void *hu_main(void *arg)
{
    (void)arg;
    struct epoll_event ev[64];
    for (;;) {
        int n = epoll_wait(hu_epoll, ev, 64, -1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        int stop = 0;
        pthread_mutex_lock(&hu_lock);
        for (int i = 0; i < n; i++) {
            if (ev[i].data.u64 == 0) {
                stop = !hu_running;
                continue;
            }
            hangup_slot *s = hu_find(ev[i].data.u64);
            if (!s) continue; /* forgotten after epoll_wait returned */
            epoll_ctl(hu_epoll, EPOLL_CTL_DEL, s->fd, NULL);
            hangup_fn fn = s->fn;
            void *ud = s->ud;
            s->fn = NULL; /* once */
            /* Under the lock: hangup_forget() waits for us, so `ud` is alive. */
            if (fn) fn(ud);
        }
        pthread_mutex_unlock(&hu_lock);
        if (stop) break;
    }
    return NULL;
}

int hangup_start(void)
{
    hu_epoll = epoll_create1(EPOLL_CLOEXEC);
    hu_wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (hu_epoll < 0 || hu_wake < 0) return -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
    epoll_ctl(hu_epoll, EPOLL_CTL_ADD, hu_wake, &ev);
    hu_running = 1;
    if (pthread_create(&hu_thread, NULL, hu_main, NULL) != 0) {
        hu_running = 0;
        return -1;
    }
    return 0;
}

void hangup_stop(void)
{
    pthread_mutex_lock(&hu_lock);
    int was = hu_running;
    hu_running = 0;
    pthread_mutex_unlock(&hu_lock);
    if (was) {
        uint64_t one = 1;
        ssize_t w = write(hu_wake, &one, sizeof(one));
        (void)w;
        pthread_join(hu_thread, NULL);
    }
    if (hu_epoll >= 0) close(hu_epoll);
    if (hu_wake >= 0) close(hu_wake);
    hu_epoll = hu_wake = -1;
    free(hu_slots);
    hu_slots = NULL;
    hu_cap = 0;
}

uint64_t hangup_watch(int fd, hangup_fn fn, void *ud)
{
    pthread_mutex_lock(&hu_lock);
    if (!hu_running || fd < 0) {
        pthread_mutex_unlock(&hu_lock);
        return 0;
    }
    size_t i = 0;
    while (i < hu_cap && hu_slots[i].ticket) i++;
    if (i == hu_cap) {
        size_t cap = hu_cap ? hu_cap * 2 : 256;
        hu_slots = ad_realloc(hu_slots, ad_size_mul(cap, sizeof(*hu_slots)));
        for (size_t k = hu_cap; k < cap; k++) hu_slots[k].ticket = 0;
        hu_cap = cap;
    }
    uint64_t ticket = (hu_next++ << 32) | (uint64_t)i;
    hu_slots[i] = (hangup_slot){ticket, fd, fn, ud};
    struct epoll_event ev = {.events = EPOLLRDHUP, .data.u64 = ticket};
    if (epoll_ctl(hu_epoll, EPOLL_CTL_ADD, fd, &ev) < 0) {
        hu_slots[i].ticket = 0;
        ticket = 0;
    }
    pthread_mutex_unlock(&hu_lock);
    return ticket;
}

void hangup_forget(uint64_t ticket)
{
    if (!ticket) return;
    pthread_mutex_lock(&hu_lock);
    hangup_slot *s = hu_find(ticket);
    if (s) {
        if (s->fn) epoll_ctl(hu_epoll, EPOLL_CTL_DEL, s->fd, NULL);
        s->ticket = 0;
    }
    pthread_mutex_unlock(&hu_lock);
}
