#include "server/healthcheck.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/err.h"

/* Reads the whole answer (HTTP/1.0: the server closes after it) into `b`;
 * 0, or the errno of the failed read. */
static int healthcheck_read(int fd, ad_buf *b)
{
    char chunk[2048];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n == 0) return 0;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno;
        if (b->len < 65536) ad_buf_append(b, chunk, (size_t)n);
    }
}

int healthcheck_probe(const char *host, int port, int timeout_ms, ad_buf *report)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    /* A server bound to every address is reached on loopback. */
    if (strcmp(host, "0.0.0.0") == 0) host = "127.0.0.1";
    char url[96];
    snprintf(url, sizeof(url), "http://%.40s:%d/health", host, port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        ad_buf_printf(report, "unreachable: %s: not an IPv4 address\n", url);
        return AD_EINVAL;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        ad_buf_printf(report, "unreachable: %s: %s\n", url, strerror(errno));
        return AD_EIO;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    static const char req[] = "GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n";
    int64_t t0 = ad_clock_mono_ms();
    ad_buf resp;
    ad_buf_init(&resp);
    int err = 0;
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1))
        err = errno;
    else
        err = healthcheck_read(fd, &resp);
    close(fd);
    long long ms = (long long)(ad_clock_mono_ms() - t0);
    int status = 0;
    if (resp.len) sscanf(resp.data, "HTTP/%*d.%*d %d", &status);
    int rc = AD_EIO;
    if (!status) {
        if (err == EAGAIN || err == EWOULDBLOCK || err == EINPROGRESS)
            ad_buf_printf(report, "unreachable: %s: no answer within %d ms\n", url, timeout_ms);
        else if (err)
            ad_buf_printf(report, "unreachable: %s: %s\n", url, strerror(err));
        else
            ad_buf_printf(report, "unreachable: %s: not an HTTP answer\n", url);
    } else {
        /* The body's own status ("unhealthy", "stopping") says why. */
        const char *body = strstr(resp.data, "\r\n\r\n");
        cJSON *j = body ? cJSON_Parse(body + 4) : NULL;
        const char *st = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "status"));
        if (status == 200) rc = 0;
        ad_buf_printf(report, "%s: %s %d in %lld ms", status == 200 ? "healthy" : "unhealthy", url, status, ms);
        if (status != 200 && st) ad_buf_printf(report, " (status \"%.32s\")", st);
        ad_buf_putc(report, '\n');
        cJSON_Delete(j);
    }
    ad_buf_cleanup(&resp);
    return rc;
}
