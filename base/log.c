#include "base/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"

static ad_log_level log_threshold = AD_LOG_INFO;

/* The asynchronous writer: lines wait in `log_pending` until the writer
 * thread swaps the buffer out and writes it with one call. */
#define LOG_FLUSH_MS 20
#define LOG_SOON_BYTES (64u << 10)  /* wake the writer early past this */
#define LOG_MAX_BYTES (8u << 20)    /* past this, callers write themselves */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t log_wake = PTHREAD_COND_INITIALIZER;
static pthread_t log_thread;
static int log_async, log_stopping;
static ad_buf log_pending;

static void log_write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w <= 0) return; /* a closed stderr is not worth failing a request over */
        p += w, n -= (size_t)w;
    }
}

static void *log_main(void *arg)
{
    (void)arg;
    ad_buf out;
    ad_buf_init(&out);
    pthread_mutex_lock(&log_lock);
    for (;;) {
        if (log_pending.len == 0 && !log_stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += LOG_FLUSH_MS * 1000000L;
            if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&log_wake, &log_lock, &ts);
        }
        ad_buf tmp = out;
        out = log_pending;
        log_pending = tmp;
        ad_buf_reset(&log_pending);
        int stop = log_stopping && out.len == 0;
        pthread_mutex_unlock(&log_lock);
        if (stop) break;
        if (out.len) log_write_all(out.data, out.len);
        ad_buf_reset(&out);
        pthread_mutex_lock(&log_lock);
    }
    ad_buf_cleanup(&out);
    return NULL;
}

void ad_log_start_async(void)
{
    pthread_mutex_lock(&log_lock);
    log_stopping = 0;
    int ok = pthread_create(&log_thread, NULL, log_main, NULL) == 0;
    log_async = ok;
    pthread_mutex_unlock(&log_lock);
}

void ad_log_stop_async(void)
{
    pthread_mutex_lock(&log_lock);
    if (!log_async) {
        pthread_mutex_unlock(&log_lock);
        return;
    }
    log_stopping = 1;
    pthread_cond_signal(&log_wake);
    pthread_mutex_unlock(&log_lock);
    pthread_join(log_thread, NULL);
    pthread_mutex_lock(&log_lock);
    log_async = 0;
    if (log_pending.len) log_write_all(log_pending.data, log_pending.len);
    ad_buf_cleanup(&log_pending);
    pthread_mutex_unlock(&log_lock);
}
static const char *const log_names[] = {"debug", "info", "warn", "error"};

void ad_log_set_level(ad_log_level level)
{
    log_threshold = level;
}

int ad_log_level_from_string(const char *s, ad_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, log_names[i]) == 0) {
            *out = (ad_log_level)i;
            return 0;
        }
    }
    return -1;
}

const char *ad_log_level_name(ad_log_level level)
{
    return log_names[level];
}

int ad_log_enabled(ad_log_level level)
{
    return level >= log_threshold;
}

static void log_write(ad_log_level level, const char *fields, size_t len)
{
    char ts[AD_ISO8601_LEN];
    ad_buf line;
    ad_buf_init(&line);
    ad_clock_iso8601(ad_clock_now_ms(), ts);
    ad_buf_printf(&line, "{\"ts\":\"%s\",\"level\":\"%s\",", ts, log_names[level]);
    ad_buf_append(&line, fields, len);
    ad_buf_puts(&line, "}\n");
    pthread_mutex_lock(&log_lock);
    int queued = log_async && log_pending.len + line.len <= LOG_MAX_BYTES;
    if (queued) {
        ad_buf_append(&log_pending, line.data, line.len);
        if (log_pending.len >= LOG_SOON_BYTES) pthread_cond_signal(&log_wake);
    }
    pthread_mutex_unlock(&log_lock);
    /* Unqueued lines go out with one write each, so they stay whole. */
    if (!queued) log_write_all(line.data, line.len);
    ad_buf_cleanup(&line);
}

void ad_log(ad_log_level level, const char *fmt, ...)
{
    if (!ad_log_enabled(level)) return;
    ad_buf msg, fields;
    ad_buf_init(&msg);
    ad_buf_init(&fields);
    va_list ap;
    va_start(ap, fmt);
    ad_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    ad_buf_puts(&fields, "\"msg\":");
    ad_buf_json_string(&fields, msg.data ? msg.data : "", msg.len);
    log_write(level, fields.data, fields.len);
    ad_buf_cleanup(&msg);
    ad_buf_cleanup(&fields);
}

void ad_log_fields(ad_log_level level, const ad_buf *fields)
{
    if (!ad_log_enabled(level)) return;
    log_write(level, fields->data ? fields->data : "", fields->len);
}
