/* agentctl login [--url URL] [--token TOKEN]: checks the URL and token
 * against the server, then saves them in the config file (config.h). On a
 * terminal a missing URL or token is asked for, the token without echo.
 * Returns an exit code (session.h). */
#ifndef CTL_LOGIN_H
#define CTL_LOGIN_H

#include "ctl/session.h"

int ctl_login(ctl_session *s, const char *url_flag, const char *token_flag, int argc, char **argv);

#endif
