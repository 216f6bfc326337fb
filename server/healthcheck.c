#include "server/healthcheck.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/err.h"

int healthcheck_probe(const char *host, int port, int timeout_ms)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    /* A server bound to every address is reached on loopback. */
    if (strcmp(host, "0.0.0.0") == 0) host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) return AD_EINVAL;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return AD_EIO;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int rc = AD_EIO;
    static const char req[] = "GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n";
    char buf[64];
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
        write(fd, req, sizeof(req) - 1) == (ssize_t)(sizeof(req) - 1)) {
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        if (n > 12) {
            buf[n] = '\0';
            int status = 0;
            if (sscanf(buf, "HTTP/%*d.%*d %d", &status) == 1 && status == 200) rc = 0;
        }
    }
    close(fd);
    return rc;
}
