"""What the harness itself costs: the demo's wall time, a ~100-job C run's and a ~400-job run of
tiny C jobs, split into the runners' time (each runner's execution, on the board's clock where a
session timed it: `runner_wall_s` in the records) and the
harness's (everything else: start-up, pre-training from the cache, preparing boards, staging,
records, progress, the report); and the NumPy runner's start-up per job.

Each part runs as a user runs it, `skip2bench run` / `skip2bench report` in a child process, on
the local board, with a fresh cache primed by a first run of each experiment, so that neither
pre-training nor building the C runner is timed; each timed run's directory (records, manifest)
is kept in OUT/runs/.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from harness import paths
from harness.records import RecordLog
from harness.report.tables import markdown

LAB = paths.LABS / "local.toml"
DEMO = paths.EXPERIMENTS / "demo.toml"
# About a hundred short C jobs: the demo's seven methods x five seeds x three repetitions.
MANY_C = DEMO.read_text().replace('seeds = [0]', 'seeds = [0, 1, 2, 3, 4]\nrepetitions = 3').replace(
    'impls = ["numpy"]', 'impls = ["c"]').replace('name = "demo"', 'name = "many-c"')
# Some 400 tiny C jobs (one epoch of a net with 8 hidden units): what is left is the harness's
# cost per job, from the run loop to the board's session and back.
TINY_C = DEMO.read_text().replace('seeds = [0]', f'seeds = {list(range(20))}\nrepetitions = 3').replace(
    'impls = ["numpy"]', 'impls = ["c"]').replace('name = "demo"', 'name = "tiny-c"').replace(
    "hidden = [96, 96]", "hidden = [8]").replace("epochs = 20", "epochs = 1")
# The NumPy runner on a job too small to cost anything but its start-up.
STARTUP = DEMO.read_text().replace('name = "demo"', 'name = "startup"').replace(
    'seeds = [0]', 'seeds = [0]\nrepetitions = 4').replace("hidden = [96, 96]", "hidden = [4]").replace(
    "epochs = 20", "epochs = 1")


def _cli(*args, env) -> float:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "harness", *map(str, args)], env=env, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise RuntimeError(f"skip2bench {' '.join(map(str, args))} failed: {done.stderr.strip()[-500:]}")
    return time.perf_counter() - t0


def _run(name: str, experiment: Path, runs: Path, env, report: bool) -> dict:
    out = runs / name.replace(" ", "-")  # kept: its records and report beside the figures
    wall = _cli("run", "-e", experiment, "-l", LAB, "-o", out, "--no-report", env=env)
    report_s = _cli("report", out, env=env) if report else 0.0
    records = RecordLog(out / "records.jsonl").read()
    runners = sum(r["runner_wall_s"] for r in records)
    return {"run": name, "jobs": len(records), "wall_s": wall + report_s, "report_s": report_s,
            "runners_s": runners, "harness_s": wall + report_s - runners,
            "harness_%": 100 * (wall + report_s - runners) / (wall + report_s),
            "harness_ms_per_job": 1e3 * (wall + report_s - runners) / len(records),
            "runner_wall_ms": [1e3 * r["runner_wall_s"] for r in records]}


def measure(out: Path, console) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="skip2bench-cost-") as tmp:
        work = Path(tmp)
        env = dict(os.environ, SKIP2BENCH_CACHE=str(work / "cache"))
        (work / "many-c.toml").write_text(MANY_C)
        (work / "startup.toml").write_text(STARTUP)
        (work / "tiny-c.toml").write_text(TINY_C)
        # Pre-train every backbone and build the C runner once: a user's runs find them cached.
        for i, experiment in enumerate((DEMO, work / "many-c.toml", work / "startup.toml", work / "tiny-c.toml")):
            _cli("run", "-e", experiment, "-l", LAB, "-o", work / f"prime-{i}", "--no-report", env=env)
        runs = out / "runs"
        rows = [_run("demo", DEMO, runs, env, report=True),
                _run("100 C jobs", work / "many-c.toml", runs, env, report=False),
                _run("NumPy start-up", work / "startup.toml", runs, env, report=False),
                _run("400 tiny C jobs", work / "tiny-c.toml", runs, env, report=False)]
    startup = rows[2]["runner_wall_ms"]
    summary = {"rows": [{k: v for k, v in r.items() if k != "runner_wall_ms"} for r in rows],
               "numpy_startup_first_ms": startup[0], "numpy_startup_later_median_ms": statistics.median(startup[1:])}
    (out / "harness-cost.json").write_text(json.dumps(summary, indent=1))
    table = pd.DataFrame(summary["rows"])
    text = "\n".join([
        "# What the harness costs", "",
        "Each run on the local board in a child process, with pre-trained backbones and the C runner already cached. "
        "runners_s is the sum of the runners' executions (host wall clock); harness_s is the rest "
        "of the wall time, the report included where it ran.", "",
        markdown(table), "",
        f"NumPy runner on a negligible job (its start-up): first job {summary['numpy_startup_first_ms']:.0f} ms, "
        f"later jobs median {summary['numpy_startup_later_median_ms']:.0f} ms.", ""])
    (out / "harness-cost.md").write_text(text)
    console.print(text, markup=False)
    return out
