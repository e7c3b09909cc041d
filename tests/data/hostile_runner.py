"""A board-side wrapper around a real runner that damages its reply the way faulty boards and
links do: `hostile_runner.py MODE STATE_DIR PROGRAM WORKDIR` (a local board's run_prefix)."""
import json
import subprocess
import sys
from pathlib import Path

mode, state, program, workdir = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]
done = subprocess.run([program, workdir], capture_output=True, text=True)
out = done.stdout
result = json.loads(out) if done.returncode == 0 else None
if workdir.startswith("--"):  # the harness's probes (--about) pass: the jobs' replies are damaged
    pass
elif mode == "replay":  # every job gets the first job's reply
    first = state / "first.json"
    if not first.exists():
        first.write_text(out)
    out = first.read_text()
elif mode == "banner":
    out = "Welcome to the board!\n" + out
elif mode == "truncated":
    out = out[: len(out) // 2]
elif mode == "deep":
    out = "[" * 100000 + "]" * 100000 + "\n"
elif mode == "nan":
    out = json.dumps(dict(result, acc_after=float("nan"))) + "\n"
elif mode == "negative":
    out = json.dumps(dict(result, ft_time_s=-1.0)) + "\n"
elif mode == "macs":  # the right job, a wrong count
    out = json.dumps(dict(result, ft_macs=result["ft_macs"] * 4)) + "\n"
elif mode == "accuracy":
    out = json.dumps(dict(result, acc_after=result["acc_after"] + 1e-3)) + "\n"
elif mode == "epochs":
    out = json.dumps(dict(result, epoch_loss=result["epoch_loss"] + [0.1],
                          epoch_times_s=result["epoch_times_s"] + [0.0])) + "\n"
elif mode == "samples":
    out = json.dumps(dict(result, n_test=result["n_test"] + 1)) + "\n"
elif mode == "markup":
    sys.stderr.write("[/] [bold red]boom[/] [link=x]\n")
    sys.exit(1)
elif mode == "stale":  # the same job's reply from an earlier attempt: the same numbers, its old token
    out = json.dumps(dict(result, token="0" * 16)) + "\n"
elif mode == "echo":  # the job it ran was another one
    out = json.dumps(dict(result, job=dict(result["job"], seed=result["job"]["seed"] + 1))) + "\n"
sys.stdout.write(out)
sys.stderr.write(done.stderr)
sys.exit(done.returncode)
