/* agentctl's `agents` verbs: create (optionally waiting, with progress, until
 * the agent is ready), list, status, delete. Each returns an exit code
 * (session.h); argv holds the verb's own arguments. */
#ifndef CTL_AGENTS_H
#define CTL_AGENTS_H

#include "ctl/session.h"

int ctl_agents_create(ctl_session *s, int argc, char **argv);
int ctl_agents_list(ctl_session *s, int argc, char **argv);
int ctl_agents_status(ctl_session *s, int argc, char **argv);
int ctl_agents_delete(ctl_session *s, int argc, char **argv);

#endif
