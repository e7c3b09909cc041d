#!/usr/bin/env python3
"""A runner session: `python3 skip2_session.py RUNNER` imports the Python runner (and NumPy) once,
then runs one job per line of stdin in a forked child, so a job pays a fork, not an interpreter
start and NumPy's import (a fork server, as asv runs its benchmarks).

Protocol, one line in per job and, after a progress line per finished epoch, one reply line out:
    in:  {"dir": JOBDIR, "job": {...job.json...}}      (the session writes JOBDIR/job.json)
    out: {"dir": JOBDIR, "epoch": n, "of": N}          (the child, as epoch n of N ends; n from 1)
         {"dir": JOBDIR, "returncode": N, "stdout": "...", "stderr": "...", "wall_s": S}
The child runs in a process group of its own and writes "PID STARTTIME" to JOBDIR/runner.pid,
so the host can kill it (and only it) on a timeout; the session then reports the kill and goes
on. A child's peak RSS starts, as a fresh runner's would, with Python and NumPy loaded.
"""
import importlib
import io
import json
import os
import sys
import time
import traceback


def _starttime(pid) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[19]


def _exit_code(status) -> int:
    """os.waitstatus_to_exitcode, which boards with Python 3.8 lack: the code, or -SIGNAL."""
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _child(runner, jobdir) -> int:
    """In the forked child: the runner's main on jobdir, its output kept for the parent, its
    progress lines written at once to the session's own stdout (which the parent flushed before
    the fork), apart from the job's output."""
    os.setpgid(0, 0)
    with open(os.path.join(jobdir, "runner.pid"), "w") as f:
        f.write(f"{os.getpid()} {_starttime(os.getpid())}\n")
    out, err = io.StringIO(), io.StringIO()
    sys.stdout, sys.stderr = out, err

    reporting = True

    def progress(epoch, of):
        nonlocal reporting
        if reporting:
            try:
                print(json.dumps({"dir": jobdir, "epoch": epoch, "of": of}), file=sys.__stdout__, flush=True)
            except OSError:  # the host has gone: the job goes on, as it would without progress
                reporting = False

    try:
        runner.main(["runner", jobdir], on_epoch=progress)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
        if e.code is not None and not isinstance(e.code, int):
            print(e.code, file=err)
    except BaseException:  # a crash is the job's result (an infrastructure error), not the session's
        traceback.print_exc(file=err)
        code = 1
    with open(os.path.join(jobdir, "runner.out.json"), "w") as f:
        json.dump({"stdout": out.getvalue(), "stderr": err.getvalue()}, f)
    return code


def serve(runner):
    for line in sys.stdin:
        request = json.loads(line)
        jobdir = request["dir"]
        os.makedirs(jobdir, exist_ok=True)
        with open(os.path.join(jobdir, "job.json"), "w") as f:
            json.dump(request["job"], f)
        sys.stdout.flush()
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _child(runner, jobdir)
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        wall = time.monotonic() - started  # the child's time on the board: the record's runner time
        code = _exit_code(status)
        try:
            with open(os.path.join(jobdir, "runner.out.json")) as f:
                output = json.load(f)
        except (OSError, ValueError):  # killed before it wrote anything
            output = {"stdout": "", "stderr": f"the runner was stopped (exit status {code})"}
        print(json.dumps({"dir": jobdir, "returncode": code, **output, "wall_s": wall}), flush=True)


if __name__ == "__main__":
    serve(importlib.import_module(sys.argv[1]))
