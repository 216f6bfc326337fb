/* agentctl's `tokens` verbs (admin): create, list, revoke, rotate. A new
 * secret is printed once, on stdout. Each returns an exit code (session.h). */
#ifndef CTL_TOKENS_H
#define CTL_TOKENS_H

#include "ctl/session.h"

int ctl_tokens_create(ctl_session *s, int argc, char **argv);
int ctl_tokens_list(ctl_session *s, int argc, char **argv);
int ctl_tokens_revoke(ctl_session *s, int argc, char **argv);
int ctl_tokens_rotate(ctl_session *s, int argc, char **argv);

#endif
