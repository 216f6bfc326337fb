/* agentctl's progress bar and plain progress lines (see progress.h). */
#include "ctl/progress.h"

#include <stdio.h>
#include <string.h>

#define BAR_WIDTH 30

void ctl_progress_init(ctl_progress *p, int tty, int quiet)
{
    memset(p, 0, sizeof(*p));
    p->tty = tty;
    p->quiet = quiet;
    p->last_percent = -1;
}

void ctl_progress_update(ctl_progress *p, const char *label, int percent, const char *note)
{
    if (p->quiet) return;
    if (percent < 0) percent = 0;
    if (percent > 100) percent = 100;
    if (!note) note = "";
    if (percent == p->last_percent && !strcmp(note, p->last_note)) return;
    p->last_percent = percent;
    snprintf(p->last_note, sizeof(p->last_note), "%s", note);
    if (!p->tty) {
        fprintf(stderr, "%s: %d%%%s%s\n", label, percent, *note ? " " : "", note);
        fflush(stderr);
        return;
    }
    char bar[BAR_WIDTH + 1];
    int filled = percent * BAR_WIDTH / 100;
    for (int i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < filled ? '#' : '-';
    bar[BAR_WIDTH] = '\0';
    /* \r back to the line's start, \033[K clears what a longer note left. */
    fprintf(stderr, "\r%s [%s] %3d%% %s\033[K", label, bar, percent, note);
    fflush(stderr);
    p->drawn = 1;
}

void ctl_progress_finish(ctl_progress *p)
{
    if (p->drawn) {
        fputc('\n', stderr);
        fflush(stderr);
    }
    p->drawn = 0;
}
