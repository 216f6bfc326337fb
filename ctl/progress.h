/*
 * agentctl's progress display for long waits (an agent's pipeline, a
 * training run): on a terminal a bar redrawn in place on stderr; otherwise
 * one plain line per change, which logs and pipes read well.
 */
#ifndef CTL_PROGRESS_H
#define CTL_PROGRESS_H

/* Caller-owned state; no allocation. */
typedef struct ctl_progress {
    int tty;          /* draw a bar (stderr is a terminal) */
    int quiet;        /* --json: nothing at all */
    int last_percent; /* what was shown last, to print plain lines only on change */
    char last_note[128];
    int drawn; /* a bar is on the current line */
} ctl_progress;

/* `tty`: stderr is a terminal; `quiet`: show nothing. */
void ctl_progress_init(ctl_progress *p, int tty, int quiet);

/* Shows `label` at `percent` (0..100) with a short `note` (a stage, "3/5
 * iterations"; may be NULL). */
void ctl_progress_update(ctl_progress *p, const char *label, int percent, const char *note);

/* Ends the bar's line, if one is drawn. */
void ctl_progress_finish(ctl_progress *p);

#endif
