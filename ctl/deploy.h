/* agentctl's `deploy` verbs over an agent's deployments: create (and push
 * unless --no-push), push, status, logs, list, remove. Each returns an exit
 * code (session.h); a deployment the gate rejected is exit 5. */
#ifndef CTL_DEPLOY_H
#define CTL_DEPLOY_H

#include "ctl/session.h"

int ctl_deploy_create(ctl_session *s, int argc, char **argv);
int ctl_deploy_push(ctl_session *s, int argc, char **argv);
int ctl_deploy_status(ctl_session *s, int argc, char **argv);
int ctl_deploy_logs(ctl_session *s, int argc, char **argv);
int ctl_deploy_list(ctl_session *s, int argc, char **argv);
int ctl_deploy_remove(ctl_session *s, int argc, char **argv);

#endif
