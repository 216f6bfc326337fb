/* agentctl login (see login.h). */
#include "ctl/login.h"

#include "base/mem.h"
#include "ctl/args.h"
#include "ctl/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* One line from stdin after `prompt` on stderr (NULL: none), without its
 * newline; `echo` 0 turns the terminal's echo off meanwhile. A copy the
 * caller frees, or NULL at end of input. */
static char *prompt_line(const char *prompt, int echo)
{
    char line[4096];
    struct termios old, quiet;
    int restore = 0;
    /* Echo goes off before the prompt shows, and without TCSAFLUSH: what
     * is typed as soon as the prompt appears must not be thrown away. */
    if (!echo && tcgetattr(STDIN_FILENO, &old) == 0) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        quiet.c_lflag |= ECHONL;
        restore = tcsetattr(STDIN_FILENO, TCSANOW, &quiet) == 0;
    }
    if (prompt) {
        fputs(prompt, stderr);
        fflush(stderr);
    }
    char *got = fgets(line, sizeof(line), stdin);
    if (restore) tcsetattr(STDIN_FILENO, TCSANOW, &old);
    char *copy = NULL;
    if (got) {
        line[strcspn(line, "\r\n")] = '\0';
        copy = ad_strdup(line);
    }
    /* The line may be the token: no copy of it left on the stack. */
    memset(line, 0, sizeof(line));
    return copy;
}

int ctl_login(ctl_session *s, const char *url_flag, const char *token_flag, int argc, char **argv)
{
    ctl_args a;
    ad_err e = {0};
    if (ctl_args_parse(argc, argv, NULL, 0, &a, &e) < 0) return ctl_session_usage(s, "%s", e.msg);
    if (a.npos)
        return ctl_session_usage(s, "takes no argument, got '%s' (use --url and --token)",
                                 a.pos[0]);
    int ask = isatty(STDIN_FILENO);
    /* What is not given as a flag comes from AGENTD_URL / AGENTD_TOKEN,
     * then from a prompt on a terminal. "--token -" reads the token from
     * stdin: neither way puts it in argv, which any user sees in ps. */
    const char *env_url = getenv("AGENTD_URL");
    const char *env_token = getenv("AGENTD_TOKEN");
    if (!url_flag && env_url && *env_url) url_flag = env_url;
    if (!token_flag && env_token) token_flag = env_token;
    char *url = url_flag ? ad_strdup(url_flag) : NULL;
    char *token = NULL;
    if (token_flag && !strcmp(token_flag, "-")) {
        token = prompt_line(ask ? "token: " : NULL, 0);
        if (!token) {
            free(url);
            return ctl_session_usage(s, "--token -: no token on stdin");
        }
    } else if (token_flag) {
        token = ad_strdup(token_flag);
    }
    if (!url && ask) {
        char *l = prompt_line("agentd URL [" CTL_DEFAULT_URL "]: ", 1);
        url = ad_strdup(l && *l ? l : CTL_DEFAULT_URL);
        free(l);
    }
    if (!url) url = ad_strdup(CTL_DEFAULT_URL);
    if (!token && !token_flag && ask)
        token = prompt_line("token (empty when the server has no API key): ", 0);
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        url[--n] = '\0';
    if (token && !*token) {
        free(token);
        token = NULL;
    }
    /* GET /api/v1/config needs no scope but does need a valid token when
     * the server has a key: a wrong URL or token is found now, not at the
     * next command. */
    s->client.url = url;
    s->client.token = token;
    ctl_reply r;
    int rc = ctl_session_call(s, "GET", "/api/v1/config", NULL, &r);
    if (!rc) {
        ctl_reply_cleanup(&r);
        char *path = NULL;
        rc = ctl_config_path(&path, &e) < 0 || ctl_config_save(url, token, &e) < 0 ? -1 : 0;
        if (rc < 0) {
            fprintf(stderr, "agentctl %s: %s\n", s->verb, e.msg);
            rc = CTL_EXIT_USAGE;
        } else if (s->json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "url", url);
            cJSON_AddStringToObject(o, "config", path);
            cJSON_AddStringToObject(o, "token", token ? "set" : "unset");
            char *text = cJSON_PrintUnformatted(o);
            ad_assert(text);
            printf("%s\n", text);
            cJSON_free(text);
            cJSON_Delete(o);
        } else {
            printf("logged in to %s%s; saved in %s\n", url, token ? " with a token" : " (no token)",
                   path);
        }
        free(path);
    }
    s->client.url = NULL;
    s->client.token = NULL;
    if (token) memset(token, 0, strlen(token));
    free(token);
    free(url);
    return rc;
}
