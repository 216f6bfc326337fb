#include "storage/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"

static int lock_fd = -1;
static char *lock_dir;

int storage_lock_acquire(const char *data_dir, ad_err *e)
{
    if (lock_fd >= 0 && strcmp(lock_dir, data_dir) == 0) return 0;
    storage_lock_release();
    size_t n = ad_size_add(strlen(data_dir), sizeof("/agentd.lock"));
    char *path = ad_malloc(n);
    snprintf(path, n, "%s/agentd.lock", data_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        int rc = ad_err_set(e, AD_EIO, "cannot create agentd.lock in '%s': %s", data_dir, strerror(errno));
        free(path);
        return rc;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int err = errno;
        char pid[24] = "";
        ssize_t got = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[got > 0 ? got : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        int rc = err == EWOULDBLOCK
                     ? ad_err_set(e, AD_ECONFLICT,
                                  "data dir '%s' is in use by another agentd (pid %s holds %s); "
                                  "stop it, or give this one another data_dir",
                                  data_dir, *pid ? pid : "unknown", path)
                     : ad_err_set(e, AD_EIO, "cannot lock '%s': %s", path, strerror(err));
        free(path);
        return rc;
    }
    char pid[24];
    int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    /* The pid is for people reading a refusal; the lock itself is flock's, so
     * failing to write it costs only the pid in that message. */
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len)
        ad_log(AD_LOG_WARN, "cannot write the pid into '%s': %s", path, strerror(errno));
    free(path);
    lock_fd = fd;
    lock_dir = ad_strdup(data_dir);
    return 0;
}

void storage_lock_release(void)
{
    if (lock_fd < 0) return;
    close(lock_fd);
    lock_fd = -1;
    free(lock_dir);
    lock_dir = NULL;
}
