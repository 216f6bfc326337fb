/* agentctl's config file and environment (see config.h). */
#include "ctl/config.h"

#include "base/buf.h"
#include "base/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The directory holding the file: $XDG_CONFIG_HOME/agentctl or ~/.config/agentctl. */
static int config_dir(char **out, ad_err *e)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    ad_buf b;
    ad_buf_init(&b);
    if (xdg && *xdg)
        ad_buf_printf(&b, "%s/agentctl", xdg);
    else if (home && *home)
        ad_buf_printf(&b, "%s/.config/agentctl", home);
    else {
        ad_buf_cleanup(&b);
        return ad_err_set(e, AD_EINVAL,
                          "neither XDG_CONFIG_HOME nor HOME is set: no place for the config file");
    }
    *out = ad_buf_steal(&b, NULL);
    return 0;
}

int ctl_config_path(char **out, ad_err *e)
{
    char *dir = NULL;
    int rc = config_dir(&dir, e);
    if (rc < 0) return rc;
    ad_buf b;
    ad_buf_init(&b);
    ad_buf_printf(&b, "%s/config", dir);
    free(dir);
    *out = ad_buf_steal(&b, NULL);
    return 0;
}

static void set_str(char **slot, const char *v)
{
    free(*slot);
    *slot = v ? ad_strdup(v) : NULL;
}

/* Lines "key = value" ("#" comments, blanks ignored); keys url and token. */
static int read_file(ctl_config *c, ad_err *e)
{
    char *path = NULL;
    if (ctl_config_path(&path, NULL) < 0) return 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        int err = errno;
        int rc =
            err == ENOENT ? 0 : ad_err_set(e, AD_EIO, "cannot read %s: %s", path, strerror(err));
        free(path);
        return rc;
    }
    char line[4096];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = '\0';
        char *eq = strchr(line, '=');
        if (line[0] == '#' || !eq) continue;
        char *k = line, *v = eq + 1;
        *eq = '\0';
        while (*k == ' ' || *k == '\t')
            k++;
        for (char *p = eq - 1; p >= k && (*p == ' ' || *p == '\t'); p--)
            *p = '\0';
        while (*v == ' ' || *v == '\t')
            v++;
        for (char *p = v + strlen(v); p > v && (p[-1] == ' ' || p[-1] == '\t'); p--)
            p[-1] = '\0';
        if (!strcmp(k, "url") && *v) set_str(&c->url, v);
        if (!strcmp(k, "token")) set_str(&c->token, *v ? v : NULL);
    }
    fclose(f);
    free(path);
    return 0;
}

int ctl_config_load(ctl_config *c, const char *url_flag, const char *token_flag, ad_err *e)
{
    c->url = NULL;
    c->token = NULL;
    int rc = read_file(c, e);
    if (rc < 0) return rc;
    const char *env_url = getenv("AGENTD_URL");
    const char *env_token = getenv("AGENTD_TOKEN");
    if (env_url && *env_url) set_str(&c->url, env_url);
    if (env_token) set_str(&c->token, *env_token ? env_token : NULL);
    if (url_flag) set_str(&c->url, url_flag);
    if (token_flag) set_str(&c->token, *token_flag ? token_flag : NULL);
    if (!c->url) c->url = ad_strdup(CTL_DEFAULT_URL);
    /* "http://host:8080/" and "http://host:8080" name the same server; the
     * paths appended start with '/'. */
    size_t n = strlen(c->url);
    while (n > 0 && c->url[n - 1] == '/')
        c->url[--n] = '\0';
    return 0;
}

/* mkdir -p for the config directory; the last component gets 0700 even when
 * it already existed, since the token file lives in it. */
static int make_dir(char *dir, ad_err *e)
{
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        int rc = mkdir(dir, 0700);
        int err = errno;
        *p = '/';
        if (rc < 0 && err != EEXIST)
            return ad_err_set(e, AD_EIO, "cannot create %.*s: %s", (int)(p - dir), dir,
                              strerror(err));
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return ad_err_set(e, AD_EIO, "cannot create %s: %s", dir, strerror(errno));
    if (chmod(dir, 0700) < 0)
        return ad_err_set(e, AD_EIO, "cannot chmod %s: %s", dir, strerror(errno));
    return 0;
}

int ctl_config_save(const char *url, const char *token, ad_err *e)
{
    char *dir = NULL;
    int rc = config_dir(&dir, e);
    if (rc < 0) return rc;
    rc = make_dir(dir, e);
    ad_buf path, tmp, text;
    ad_buf_init(&path);
    ad_buf_init(&tmp);
    ad_buf_init(&text);
    ad_buf_printf(&path, "%s/config", dir);
    ad_buf_printf(&tmp, "%s/.config.%ld.tmp", dir, (long)getpid());
    ad_buf_printf(
        &text, "# written by agentctl login; holds a secret: keep it 0600\nurl = %s\ntoken = %s\n",
        url, token ? token : "");
    if (rc == 0) {
        int fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
            rc = ad_err_set(e, AD_EIO, "cannot write %s: %s", tmp.data, strerror(errno));
        } else {
            /* open's mode is filtered by the umask; 0600 is what we promise. */
            ssize_t w = fchmod(fd, 0600) == 0 ? write(fd, text.data, text.len) : -1;
            int err = errno;
            if (fsync(fd) < 0 && w >= 0) err = errno, w = -1;
            close(fd);
            if (w != (ssize_t)text.len)
                rc = ad_err_set(e, AD_EIO, "cannot write %s: %s", tmp.data, strerror(err));
            else if (rename(tmp.data, path.data) < 0)
                rc = ad_err_set(e, AD_EIO, "cannot replace %s: %s", path.data, strerror(errno));
            if (rc < 0) unlink(tmp.data);
        }
    }
    ad_buf_cleanup(&path);
    ad_buf_cleanup(&tmp);
    ad_buf_cleanup(&text);
    free(dir);
    return rc;
}

void ctl_config_cleanup(ctl_config *c)
{
    free(c->url);
    free(c->token);
    c->url = NULL;
    c->token = NULL;
}
