/* agentctl's training verbs: `train AGENT -n N --name NAME` (its arguments
 * checked here before any request, then the run followed with progress) and
 * `replay AGENT --task-id ID`. Each returns an exit code (session.h). */
#ifndef CTL_TRAINING_H
#define CTL_TRAINING_H

#include "base/err.h"
#include "ctl/session.h"

/* The checks `train` makes before sending anything (seed 000's: a positive
 * integer number of iterations, a valid name); 0 or AD_EINVAL with a message
 * that says exactly what is wrong and what was given. */
int ctl_training_check_iterations(const char *text, long long *out, ad_err *e);
int ctl_training_check_name(const char *name, ad_err *e);

int ctl_train(ctl_session *s, int argc, char **argv);
int ctl_replay(ctl_session *s, int argc, char **argv);

#endif
