/* skip2run --session: the runner as a fork server, one job per line of stdin (the protocol of
 * targets/numpy/skip2_session.py), so that a job costs the host one exchange over a channel it
 * keeps open, and the board a fork instead of a process start and its shells. */
#ifndef SESSION_H
#define SESSION_H

/* Serves jobs until stdin ends: each in a forked child that runs `job(WORKDIR)` with its stdout
 * and stderr in files of WORKDIR; returns the exit status for main. */
int session_serve(int (*job)(const char *workdir));

/* In a session's job: epoch `epoch` (from 1) of `of` is done, said at once on the session's
 * stdout as {"dir": WORKDIR, "epoch": n, "of": N}, its time left out of the core's clock. Does
 * nothing outside a session. */
void session_progress(int epoch, int of);

#endif
