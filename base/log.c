#include "base/log.h"

#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"

static ad_log_level log_threshold = AD_LOG_INFO;
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
    /* One write per line keeps concurrent lines whole; a short write to a
     * closed stderr is not worth failing a request over. */
    ssize_t w = write(STDERR_FILENO, line.data, line.len);
    (void)w;
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
