/* agentctl ask AGENT PROMPT: streams the answer (Server-Sent Events) to
 * stdout as it arrives, then the sources; with --json, one request without
 * streaming and the server's JSON. Returns an exit code (session.h). */
#ifndef CTL_ASK_H
#define CTL_ASK_H

#include "ctl/session.h"

int ctl_ask(ctl_session *s, int argc, char **argv);

#endif
