/*
 * agentctl's settings: the server URL and the token, from (strongest first)
 * the --url/--token flags, AGENTD_URL/AGENTD_TOKEN, and the config file
 * `login` writes ($XDG_CONFIG_HOME/agentctl/config, by default
 * ~/.config/agentctl/config: mode 0600 in a 0700 directory, because it holds
 * a secret).
 */
#ifndef CTL_CONFIG_H
#define CTL_CONFIG_H

#include "base/err.h"

#define CTL_DEFAULT_URL "http://localhost:8080"

/* Caller-owned; the strings are malloc'ed (ctl_config_cleanup frees them). */
typedef struct ctl_config {
    char *url;   /* never NULL after ctl_config_load */
    char *token; /* NULL: send no Authorization header */
} ctl_config;

/* The config file's path, malloc'ed; AD_EINVAL when neither XDG_CONFIG_HOME
 * nor HOME is set. */
int ctl_config_path(char **out, ad_err *e);

/* Fills `c` from the file (a missing file is no error), then the
 * environment, then `url_flag`/`token_flag` (NULL when not given). AD_EIO
 * when the file exists but cannot be read. */
int ctl_config_load(ctl_config *c, const char *url_flag, const char *token_flag, ad_err *e);

/* Writes `url` and `token` (may be NULL) to the config file, replacing it
 * atomically, creating the directory (0700) if needed; the file is 0600
 * from its first byte. */
int ctl_config_save(const char *url, const char *token, ad_err *e);

void ctl_config_cleanup(ctl_config *c);

#endif
