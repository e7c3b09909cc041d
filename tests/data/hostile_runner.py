"""A board-side wrapper around a real runner that damages its replies the way faulty boards and
links do: `hostile_runner.py MODE STATE_DIR PROGRAM ARG` (a local board's run_prefix). With ARG
`--session` it is the runner's session (the protocol of targets/numpy/skip2_session.py), running
`PROGRAM WORKDIR` for each job and damaging the job's output, the session's reply line or the
progress lines before it; any other `--` argument (the harness's probes) passes through
untouched."""
import json
import os
import subprocess
import sys
from pathlib import Path

mode, state, program, arg = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]


def damaged(out: str, err: str, code: int) -> tuple:
    """A job's (stdout, stderr, returncode) as this mode's board gives them."""
    result = json.loads(out) if code == 0 else None
    if mode == "replay":  # every job gets the first job's reply
        first = state / "first.json"
        if not first.exists():
            first.write_text(out)
        return first.read_text(), err, code
    if mode == "banner":
        return "Welcome to the board!\n" + out, err, code
    if mode == "truncated":
        return out[: len(out) // 2], err, code
    if mode == "deep":
        return "[" * 100000 + "]" * 100000 + "\n", err, code
    if mode == "markup":
        return out, "[/] [bold red]boom[/] [link=x]\n", 1
    changes = {
        "nan": lambda r: dict(r, acc_after=float("nan")),
        "negative": lambda r: dict(r, ft_time_s=-1.0),
        "macs": lambda r: dict(r, ft_macs=r["ft_macs"] * 4),  # the right job, a wrong count
        "accuracy": lambda r: dict(r, acc_after=r["acc_after"] + 1e-3),
        "epochs": lambda r: dict(r, epoch_loss=r["epoch_loss"] + [0.1], epoch_times_s=r["epoch_times_s"] + [0.0]),
        "samples": lambda r: dict(r, n_test=r["n_test"] + 1),
        # the same job's reply from an earlier attempt: the same numbers, its old token
        "stale": lambda r: dict(r, token="0" * 16),
        "echo": lambda r: dict(r, job=dict(r["job"], seed=r["job"]["seed"] + 1)),  # it ran another job
    }
    if mode in changes and result is not None:
        return json.dumps(changes[mode](result)) + "\n", err, code
    return out, err, code


def progress_lines(request: dict) -> str:
    """The progress lines the session writes before its reply: none, a well-formed one per epoch,
    or one that is not this job's (another job's folder, an epoch beyond the job's count)."""
    job = request["job"]
    of = job["oselm_passes"] if job["method"] == "oselm-head" else job["epochs"]
    lines = {"progress": [{"dir": request["dir"], "epoch": n, "of": of} for n in range(1, of + 1)],
             "progress-other-dir": [{"dir": request["dir"] + "-other", "epoch": 1, "of": of}],
             "progress-beyond": [{"dir": request["dir"], "epoch": of + 1, "of": of}]}.get(mode, [])
    return "".join(json.dumps(line) + "\n" for line in lines)


def session_reply(request: dict, reply: dict) -> str:
    """The session's reply line, damaged in the modes that damage the exchange itself."""
    if mode == "session-other-dir":  # an answer for another job's folder
        reply = dict(reply, dir=reply["dir"] + "-other")
    if mode == "session-garbled":
        return "Segmentation fault (core dumped)"
    if mode == "session-shape":
        reply = {k: v for k, v in reply.items() if k != "returncode"}
    if mode == "session-huge" and not (state / "huge").exists():  # once: a runaway reply, longer
        (state / "huge").touch()                                   # than the host reads in one line
        return "x" * (17 << 20)
    return json.dumps(reply)


if arg != "--session":  # the harness's probes (--about)
    os.execv(program, [program, arg])
for line in sys.stdin:
    request = json.loads(line)
    folder = Path(request["dir"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.json").write_text(json.dumps(request["job"]))
    done = subprocess.run([program, str(folder)], capture_output=True, text=True)
    out, err, code = damaged(done.stdout, done.stderr, done.returncode)
    print(progress_lines(request) + session_reply(request, {"dir": request["dir"], "returncode": code, "stdout": out, "stderr": err}),
          flush=True)
