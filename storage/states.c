#include "storage/states.h"

#include <string.h>

static const char *const agent_words[] = {"initializing", "processing", "ready", "error"};
static const char *const job_words[] = {"queued", "running", "done", "failed", "cancelled"};
static const char *const version_words[] = {"building", "candidate", "trained",
                                            "deployed", "retired",   "rejected"};
static const char *const exec_words[] = {"pending", "running", "completed", "failed"};
static const char *const training_words[] = {"queued", "running", "done", "failed", "cancelled"};
static const char *const deployment_words[] = {"pending", "live",   "superseded",
                                               "rejected", "failed", "removed"};

#define WORDS_N(w) (sizeof(w) / sizeof((w)[0]))

static const char *states_word(const char *const *words, size_t n, int s)
{
    ad_assert(s >= 0 && (size_t)s < n);
    return words[s];
}

/* The index of `s` in `words`, or AD_EINVAL. */
static int states_find(const char *const *words, size_t n, const char *what, const char *s, ad_err *e)
{
    for (size_t i = 0; s && i < n; i++)
        if (!strcmp(words[i], s)) return (int)i;
    return ad_err_set(e, AD_EINVAL, "unknown %s '%.64s'", what, s ? s : "(null)");
}

const char *agent_state_to_string(agent_state s)
{
    return states_word(agent_words, WORDS_N(agent_words), (int)s);
}

const char *job_state_to_string(job_state s)
{
    return states_word(job_words, WORDS_N(job_words), (int)s);
}

const char *version_state_to_string(version_state s)
{
    return states_word(version_words, WORDS_N(version_words), (int)s);
}

const char *exec_status_to_string(exec_status s)
{
    return states_word(exec_words, WORDS_N(exec_words), (int)s);
}

const char *training_state_to_string(training_state s)
{
    return states_word(training_words, WORDS_N(training_words), (int)s);
}

int agent_state_from_string(const char *s, agent_state *out, ad_err *e)
{
    int i = states_find(agent_words, WORDS_N(agent_words), "agent status", s, e);
    if (i < 0) return i;
    *out = (agent_state)i;
    return 0;
}

int job_state_from_string(const char *s, job_state *out, ad_err *e)
{
    int i = states_find(job_words, WORDS_N(job_words), "job state", s, e);
    if (i < 0) return i;
    *out = (job_state)i;
    return 0;
}

int version_state_from_string(const char *s, version_state *out, ad_err *e)
{
    int i = states_find(version_words, WORDS_N(version_words), "version state", s, e);
    if (i < 0) return i;
    *out = (version_state)i;
    return 0;
}

int exec_status_from_string(const char *s, exec_status *out, ad_err *e)
{
    int i = states_find(exec_words, WORDS_N(exec_words), "execution status", s, e);
    if (i < 0) return i;
    *out = (exec_status)i;
    return 0;
}

int training_state_from_string(const char *s, training_state *out, ad_err *e)
{
    int i = states_find(training_words, WORDS_N(training_words), "training status", s, e);
    if (i < 0) return i;
    *out = (training_state)i;
    return 0;
}

const char *deployment_state_to_string(deployment_state s)
{
    return states_word(deployment_words, WORDS_N(deployment_words), (int)s);
}

int deployment_state_from_string(const char *s, deployment_state *out, ad_err *e)
{
    int i = states_find(deployment_words, WORDS_N(deployment_words), "deployment status", s, e);
    if (i < 0) return i;
    *out = (deployment_state)i;
    return 0;
}
