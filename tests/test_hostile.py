"""Replies a faulty board or link can give, from a board-side wrapper around the real C runner (as
its session) on a local board: none may become an `ok` record with numbers other than the clean run's, none may
raise a traceback or end the run. The test prints a table of cases and outcomes."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, require_tool

WRAPPER = Path(__file__).parent / "data" / "hostile_runner.py"
EXPERIMENT = """name = "hostile"
tasks = ["synthetic"]
methods = ["skip2-lora", "lora-all", "oselm-head"]
seeds = [0, 1]
impls = ["c"]
[model]
hidden = [16]
[pretrain]
epochs = 2
[finetune]
epochs = 3
"""
# How many of the run's 6 jobs each damage leaves ok: those whose numbers are intact (a replayed
# reply is the first job's own).
CASES = {"clean": 6, "banner": 6, "replay": 1, "truncated": 0, "deep": 0, "nan": 0, "negative": 0, "macs": 0,
         "accuracy": 0, "epochs": 0, "samples": 0, "markup": 0, "echo": 0, "stale": 0,
         # The runner session's own reply line: another job's, not JSON, a key missing; 17 MB long
         # once (the next jobs get a new session).
         "session-other-dir": 0, "session-garbled": 0, "session-shape": 0, "session-huge": 5,
         # Progress lines before the reply: one per epoch, well-formed; one of another job's folder;
         # one of an epoch beyond the job's count (both taken as the reply, and refused).
         "progress": 6, "progress-other-dir": 0, "progress-beyond": 0}
# Fields that differ between two runs of the same job.
VOLATILE = ("run_id", "started_at", "wall_s", "runner_wall_s", "ft_time_s", "fwd_time_s", "bwd_time_s",
            "upd_time_s", "cache_time_s", "epoch_times_s", "peak_rss_bytes", "board_fingerprint")
OUTCOMES = {}


def run(tmp_path: Path, mode: str, cache: Path) -> subprocess.CompletedProcess:
    """The experiment on a local board through this mode's wrapper. Every case shares the board's
    work root (its folder in `cache`), as a board keeps its root across runs: the C runner is built
    once."""
    state = tmp_path / "state"
    state.mkdir()
    prefix = "" if mode == "clean" else f'run_prefix = "{sys.executable} {WRAPPER} {mode} {state}"\n'
    (tmp_path / "lab.toml").write_text(f'name = "hostile"\n[[boards]]\nname = "host"\ntransport = "local"\n'
                                       f'impls = ["c"]\nwork_root = "{cache / "board"}"\n{prefix}')
    (tmp_path / "exp.toml").write_text(EXPERIMENT)
    return subprocess.run([sys.executable, "-m", "harness", "run", "-e", str(tmp_path / "exp.toml"), "-l",
                           str(tmp_path / "lab.toml"), "-o", str(tmp_path / "run"), "--no-report"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, SKIP2BENCH_CACHE=str(cache)))


def records(tmp_path: Path) -> dict:
    lines = (tmp_path / "run" / "records.jsonl").read_text().splitlines()
    return {(r["job_id"], r["impl"]): r for r in map(json.loads, lines)}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def clean(tmp_path_factory, cache):
    require_tool("cc")
    path = tmp_path_factory.mktemp("clean")
    assert run(path, "clean", cache).returncode == 0
    return records(path)


@pytest.mark.parametrize("mode", [m for m in CASES if m != "clean"])
def test_a_damaged_reply_is_never_an_ok_record_of_other_numbers(tmp_path, cache, clean, mode):
    done = run(tmp_path, mode, cache)
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    assert done.returncode == (0 if CASES[mode] == len(clean) else 1), done.stdout + done.stderr
    got = records(tmp_path)
    assert set(got) == set(clean)  # the run went on to its last job
    for key, rec in got.items():
        assert rec["status"] in ("ok", "error"), rec
        if rec["status"] == "ok":
            assert {k: v for k, v in rec.items() if k not in VOLATILE} == \
                {k: v for k, v in clean[key].items() if k not in VOLATILE}
        else:
            assert rec["error"] and "\n" not in rec["error"] and "Traceback" not in rec["error"]
    ok = sum(rec["status"] == "ok" for rec in got.values())
    assert ok == CASES[mode]
    errors = [rec["error"] for rec in got.values() if rec["status"] == "error"]
    if mode in ("session-other-dir", "progress-other-dir", "progress-beyond"):
        assert all("answered with a reply of another job or shape" in e for e in errors), errors
    OUTCOMES[mode] = f"{ok} ok, {len(errors)} error" + (f": {errors[0]}" if errors else "")


def test_print_the_table_of_cases(clean):
    print("\ncase        outcome (of 6 jobs; the first error)")
    for mode, outcome in OUTCOMES.items():
        print(f"{mode:<11} {outcome[:160]}")
    assert len(OUTCOMES) == len(CASES) - 1


def test_an_exception_in_one_job_is_that_jobs_error_and_the_run_goes_on(tmp_path, cache, clean, monkeypatch):
    # A fault no real part raises on demand (a bug of the harness's own reply handling), injected
    # into one job: it becomes that job's error, its traceback goes to run.log, the rest run.
    from rich.console import Console
    from harness.run import run_experiment
    from harness.targets.posix import PosixTarget
    real, calls = PosixTarget.run_job, []

    def broken_once(self, job, *args):
        calls.append(job["method"])
        if len(calls) == 2:
            raise KeyError("returncode")
        return real(self, job, *args)

    monkeypatch.setattr(PosixTarget, "run_job", broken_once)
    monkeypatch.setenv("SKIP2BENCH_CACHE", str(cache))
    assert run(tmp_path, "clean", cache).returncode == 0  # writes the lab and experiment files
    out, counts = run_experiment(tmp_path / "exp.toml", tmp_path / "lab.toml", tmp_path / "again", False, None,
                                 Console(file=open(os.devnull, "w")))
    assert counts["ok"] == 5 and counts["error"] == 1
    errors = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    errors = [r for r in errors if r["status"] == "error"]
    assert errors[0]["error"] == "KeyError: 'returncode' (traceback in run.log)"
    assert "Traceback" in (out / "run.log").read_text()
