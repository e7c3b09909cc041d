"""Regression verdicts: compare two runs, keep baselines, and A/B two revisions on the same boards.

The A/B tests build a small git repository from a copy of this checkout and commit to it on
purpose the changes a verdict must catch, each in code (never a hyper-parameter, which would
change the jobs' identity): the NumPy runner's skip-lora step made slower (a sleep in its
backward), the NumPy runner's skip2-lora made to learn nothing (its gradient zeroed), and the
firmware's core given NOPS more instructions per training step (nops in the update phase).
"""
import csv
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, copy_checkout, cut_task, require_tool, serving_lab, small_experiment
from harness.lab.standins import free_port

BENCH = ROOT / "results" / "bench"
SLOW_SKIP_LORA = ("    def head_grads(self, xs, u, dz):\n",
                  "    def head_grads(self, xs, u, dz):\n"
                  "        if not self.hp['cache'] and len(self.layers) > 1:  # skip-lora only\n"
                  "            __import__('time').sleep(0.004)\n")
SKIP2_LORA_LEARNS_NOTHING = ("        self.gB *= self.scale\n",
                             "        self.gB *= 0.0 if self.hp['cache'] and len(self.layers) > 1 else self.scale\n")
# An emulated board's counts are exact to a tick (40 instructions) per epoch, whose phase follows
# the host's frames (compare.slack): one nop a step is below that. NOPS a step is far above it.
NOPS = 100
MORE_INSTRUCTIONS = ("    skip2_meter_phase(m, SKIP2_UPD);\n    skip2_sgd(",
                     "    skip2_meter_phase(m, SKIP2_UPD);\n#ifdef __arm__\n"
                     f"    __asm__ volatile(\".rept {NOPS}\\n nop\\n .endr\");\n#endif\n    skip2_sgd(")


def skip2bench(*args, env, cwd=ROOT, code=0):
    """The command's outcome, its exit code checked unless `code` is None (0 or 1 alike)."""
    proc = subprocess.run([sys.executable, "-m", "harness", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=1200)
    assert proc.returncode == code if code is not None else proc.returncode in (0, 1), proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return dict(os.environ, SKIP2BENCH_CACHE=str(tmp_path_factory.mktemp("cache")), COLUMNS="250",
                SKIP2BENCH_BASELINES=str(tmp_path_factory.mktemp("baselines")))


def rows(folder: Path) -> list:
    return list(csv.DictReader((folder / "compare.csv").open()))


def worse(folder: Path) -> set:
    return {(r["board"], r["variant"], r["impl"], r["metric"]) for r in rows(folder) if r["mark"] == "worse"}


# -- compare and baselines, on the committed bench run ---------------------------------------------
def test_a_run_compared_with_itself_has_no_regression(tmp_path, env):
    skip2bench("compare", BENCH, BENCH, "-o", tmp_path / "cmp", env=env)
    table = rows(tmp_path / "cmp")
    assert {r["mark"] for r in table} <= {"same", "not significant"}
    times = [r for r in table if r["metric"] == "ft_time_s"]
    assert times and all(float(r["ratio"]) == 1 and float(r["p"]) > 0.5 for r in times)
    assert {r["category"] for r in table} >= {"exact", "time", "accuracy", "memory"}


def test_runs_on_different_boards_are_refused_unless_asked(tmp_path, env):
    other = tmp_path / "other"
    shutil.copytree(BENCH, other, ignore=shutil.ignore_patterns("report"))
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["boards"]["host"]["facts"]["cpu"] = "Another CPU"
    manifest["boards"]["host"]["facts"]["numpy"] = "0.0-other"
    (other / "manifest.json").write_text(json.dumps(manifest))
    refused = skip2bench("compare", BENCH, other, env=env, code=2)
    assert "board host is not the same board" in refused.stderr and "Another CPU" in refused.stderr
    assert "--across-boards" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    skip2bench("compare", BENCH, other, "--across-boards", "-o", tmp_path / "cmp", env=env)
    assert "host: numpy 2.4.6 -> 0.0-other" in (tmp_path / "cmp" / "compare.md").read_text()


def test_a_baseline_keeps_a_run_per_board_identity_and_compare_takes_its_name(tmp_path, env):
    saved = skip2bench("baseline", "save", "nightly", BENCH, env=env).stdout
    assert "saved" in saved
    assert skip2bench("baseline", "list", env=env).stdout.split() == ["nightly"]
    shown = skip2bench("baseline", "show", "nightly", env=env).stdout
    run_id = json.loads((BENCH / "manifest.json").read_text())["run_id"]
    assert "host: AMD EPYC" in shown and f"job records of run {run_id}" in shown
    skip2bench("compare", "nightly", BENCH, "-o", tmp_path / "cmp", env=env)
    missing = skip2bench("compare", "weekly", BENCH, env=env, code=2)
    assert "neither a run directory" in missing.stderr


def test_too_few_repetitions_are_said_not_guessed():
    from harness.regress.stats import min_repetitions, time_verdict
    assert min_repetitions(0.002) == 7 and math.comb(14, 7) * 0.002 > 2 > math.comb(12, 6) * 0.002
    rng = np.random.default_rng(0)
    assert time_verdict(rng.normal(1, 0.01, 6), rng.normal(2, 0.01, 6)).mark == "too few samples"
    slower = time_verdict(rng.normal(1, 0.01, 7), rng.normal(1.3, 0.01, 7))
    assert slower.mark == "worse" and 1.25 < slower.low < slower.ratio < slower.high < 1.35
    assert time_verdict(rng.normal(1, 0.01, 9), rng.normal(1.05, 0.01, 9)).mark == "not significant"  # < x1.10


# -- A/B of two revisions --------------------------------------------------------------------------
def git_repository(root: Path):
    """A git repository of a copy of this checkout, its first commit on master: the function that
    runs git in it."""
    copy_checkout(root)

    def git(*args):
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True,
                              capture_output=True, text=True).stdout
    git("init", "-q", "-b", "master")
    git("add", "-A")
    git("commit", "-q", "-m", "base")
    return git


def plant(root: Path, path: str, change: tuple):
    """A planted change: its text replaced, where it stands exactly once."""
    old, new = change
    text = (root / path).read_text()
    assert text.count(old) == 1, (path, old)
    (root / path).write_text(text.replace(old, new))


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A git repository of a copy of this checkout: master as it is, and a branch off it per planted change."""
    root = tmp_path_factory.mktemp("repo")
    git = git_repository(root)
    for name, path, change in (("slow", "targets/numpy/skip2_methods.py", SLOW_SKIP_LORA),
                               ("learns-nothing", "targets/numpy/skip2_methods.py", SKIP2_LORA_LEARNS_NOTHING),
                               ("nop", "targets/c/core/skip2_core.c", MORE_INSTRUCTIONS)):
        git("checkout", "-q", "-B", name, "master")
        plant(root, path, change)
        git("commit", "-q", "-am", name)
    git("checkout", "-q", "master")
    return root


def lab_file(tmp_path, impls=("numpy",), mcu=False) -> Path:
    """A lab of this host (`impls`) and, with `mcu`, the emulated mps2-an386 (served by the test)."""
    path = tmp_path / "lab.toml"
    text = (f'name = "regress"\nstandin_dir = "{tmp_path / "state"}"\n[[boards]]\nname = "host"\n'
            f'transport = "local"\nimpls = {json.dumps(list(impls))}\nwork_root = "{tmp_path / "host"}"\n')
    if mcu:
        text += (f'[[boards]]\nname = "mcu"\ntransport = "serial"\nport = "socket://127.0.0.1:{free_port()}"\n'
                 f'firmware = "mps2-an386"\n[boards.standin]\nmachine = "mps2-an386"\n')
    path.write_text(text)
    return path


def experiment(tmp_path, methods, impls, batch=20, name="ab") -> Path:
    """Four epochs at a learning rate at which skip2-lora learns this small task."""
    data = cut_task(tmp_path / "small.npz", 64, {"pre": 400, "ft": 80, "test": 60})
    return small_experiment(tmp_path / f"{name}.toml", data, methods, impls, epochs=4, batch=batch, lr=0.2)


def test_ab_flags_exactly_the_method_made_slower(tmp_path, repo, env):
    lab = lab_file(tmp_path)
    exp = experiment(tmp_path, ["ft-last", "skip-lora", "skip2-lora"], ["numpy"])
    done = skip2bench("ab", "--base", "master", "--new", "slow", "-e", exp, "-l", lab, "-n", 7,
                      "--runs", tmp_path / "ab", env=env, cwd=repo, code=1)
    assert worse(tmp_path / "ab" / "compare") == {("host", "skip-lora", "numpy", "ft_time_s")}
    slow = next(r for r in rows(tmp_path / "ab" / "compare") if r["mark"] == "worse")
    assert float(slow["ratio"]) > 1.5 and float(slow["p"]) < 0.002 and float(slow["low"]) > 1.1
    assert "worse: host small skip-lora numpy ft_time_s" in done.stdout
    others = [r for r in rows(tmp_path / "ab" / "compare") if r["metric"] == "ft_time_s" and r["mark"] != "worse"]
    assert len(others) == 2 and all(r["mark"] == "not significant" for r in others)


def test_ab_flags_an_accuracy_drop_and_more_instructions_per_step(tmp_path, repo, env):
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc"):
        require_tool(tool)
    lab = lab_file(tmp_path, mcu=True)
    exp = experiment(tmp_path, ["ft-last", "skip2-lora"], ["numpy", "c"])
    small_steps = experiment(tmp_path, ["ft-last", "skip2-lora"], ["c"], batch=2, name="steps")
    with serving_lab(lab, env, cwd=repo):
        skip2bench("ab", "--base", "master", "--new", "learns-nothing", "-e", exp, "-l", lab, "-n", 1,
                   "--runs", tmp_path / "acc", env=env, cwd=repo, code=1)
        skip2bench("ab", "--base", "master", "--new", "nop", "-e", small_steps, "-l", lab, "-n", 1,
                   "--runs", tmp_path / "nop", env=env, cwd=repo, code=1)
    # The accuracy drop: skip2-lora on NumPy only; one repetition a side is too few for any time.
    assert worse(tmp_path / "acc" / "compare") == {("host", "skip2-lora", "numpy", "acc_after_pct")}
    drop = next(r for r in rows(tmp_path / "acc" / "compare") if r["mark"] == "worse")
    assert float(drop["base"]) - float(drop["new"]) > 3
    assert {r["mark"] for r in rows(tmp_path / "acc" / "compare") if r["category"] == "time"} == {"too few samples"}
    # NOPS nops a step, 160 steps: flagged on the MCU's instruction and cycle counts and nowhere else, by
    # the nops to the board's resolution (a tick of 40 instructions per epoch).
    # The nops take room in flash too, and count there exactly.
    flagged = worse(tmp_path / "nop" / "compare")
    assert {("mcu", m, "c", c) for m in ("ft-last", "skip2-lora") for c in ("ft_instructions", "ft_cycles_est")} <= flagged
    assert all(board == "mcu" and (metric.endswith("_instructions") or metric in ("ft_cycles_est", "firmware_flash_bytes"))
               for board, _, _, metric in flagged)
    steps, epochs = 4 * math.ceil(80 / 2), 4
    by_metric = {(r["variant"], r["metric"]): float(r["new"]) - float(r["base"]) for r in rows(tmp_path / "nop" / "compare")
                 if r["board"] == "mcu"}
    assert abs(by_metric["ft-last", "ft_instructions"] - NOPS * steps) <= 40 * epochs, by_metric
    # A NOP takes a cycle (the cycle model; the mps2-an386 has no flash to wait for), give or take
    # how the compiler schedules the step's code around them (measured: 2 cycles a step fewer).
    assert abs(by_metric["ft-last", "ft_cycles_est"] - NOPS * steps) <= 4 * steps, by_metric
    assert by_metric["skip2-lora", "ft_instructions"] > 40 * epochs and by_metric["ft-last", "firmware_flash_bytes"] > 0
    assert "firmware_hash" in (tmp_path / "nop" / "compare" / "compare.md").read_text()


@pytest.mark.bench
def test_ab_of_a_revision_against_itself_rarely_cries_wolf(tmp_path, repo, env):
    """20 A/B runs of one revision against itself, 7 rounds each: the time regressions they flag
    in total (the issue's bound: at most one), and the false-alarm rate per time comparison."""
    lab = lab_file(tmp_path, impls=("numpy", "c"))
    exp = experiment(tmp_path, ["ft-all", "ft-last", "lora-all", "skip-lora", "skip2-lora"], ["numpy", "c"])
    alarms, compared = 0, 0
    for i in range(20):
        skip2bench("ab", "--base", "master", "--new", "master", "-e", exp, "-l", lab, "-n", 7,
                   "--runs", tmp_path / f"ab{i}", "--fail-on", "time", env=env, cwd=repo, code=None)
        times = [r for r in rows(tmp_path / f"ab{i}" / "compare") if r["category"] == "time"]
        compared += len(times)
        alarms += sum(r["mark"] == "worse" for r in times)
        print(f"ab {i + 1}/20: {sum(r['mark'] == 'worse' for r in times)} of {len(times)} times flagged worse")
    print(f"false alarms: {alarms} of {compared} time comparisons ({100 * alarms / compared:.2f} %)")
    assert alarms <= 1


# -- history over revisions ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def linear_repo(tmp_path_factory):
    """Six commits of a copy of this checkout; the fourth (c3) makes the NumPy skip-lora slower and
    gives the firmware's core NOPS more instructions per step."""
    root = tmp_path_factory.mktemp("linear")
    git = git_repository(root)
    for i in range(1, 6):
        if i == 3:
            plant(root, "targets/numpy/skip2_methods.py", SLOW_SKIP_LORA)
            plant(root, "targets/c/core/skip2_core.c", MORE_INSTRUCTIONS)
        git("commit", "-q", "-a", "--allow-empty", "-m", f"c{i}")
    return root, git("rev-list", "--reverse", "HEAD").split()


def test_history_normalises_times_of_sessions_by_their_ceilings(tmp_path):
    from harness.regress.compare import Options
    from harness.regress.history import write
    # The committed bench run, then twice as a session of a machine 1.5x slower: its host times
    # and its ceiling probes' speed both moved by the machine, not by the code.
    runs = [BENCH]
    for i in (1, 2):
        run = tmp_path / f"slower{i}"
        shutil.copytree(BENCH, run, ignore=shutil.ignore_patterns("report"))
        manifest = json.loads((run / "manifest.json").read_text())
        manifest["created"] += f"+{i}"
        (run / "manifest.json").write_text(json.dumps(manifest))
        recs = [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines()]
        for r in recs:
            if r["record_type"] == "job" and r["board"] == "host" and r["ft_time_s"]:
                r["ft_time_s"] *= 1.5
            if r["record_type"] == "probe" and r["probe"] == "ceiling" and r["status"] == "ok":
                r["values"]["core"] /= 1.5
        (run / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
        runs.append(run)
    found, out = write(runs, tmp_path / "normalised", Options())
    assert not len(found[found["metric"] == "ft_time_s"]), found
    assert "Times of host are normalised" in (out / "history.md").read_text()
    raw, _ = write(runs, tmp_path / "raw", Options(normalise=False))
    assert len(raw[(raw["metric"] == "ft_time_s") & (raw["run"] == 1)]) > 0, raw


def test_history_finds_the_step_at_the_commit_that_made_it(tmp_path, linear_repo, env):
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc"):
        require_tool(tool)
    repo, shas = linear_repo
    lab = lab_file(tmp_path, mcu=True)
    exp = experiment(tmp_path, ["ft-last", "skip-lora"], ["numpy", "c"], batch=4)
    exp.write_text(exp.read_text().replace('seeds = [0]', 'seeds = [0]\nrepetitions = 3'))
    runs = tmp_path / "runs"
    with serving_lab(lab, env, cwd=repo):
        # One run per commit, each with that commit's own harness, runners and firmware (ab's rounds,
        # run from the repository so that its git history is the one exported).
        refs = {f"c{i}": sha for i, sha in enumerate(shas)}
        code = ("from pathlib import Path\nfrom rich.console import Console\nfrom harness.regress.ab import run_rounds\n"
                f"run_rounds({refs!r}, Path({str(exp)!r}), Path({str(lab)!r}), 1, Path({str(runs)!r}), Console())\n")
        subprocess.run([sys.executable, "-c", code], cwd=repo, env=env, check=True, capture_output=True, timeout=1200)
    # These jobs take 3-5 ms, and whole runs of them on this machine come out up to 1.75x slower or
    # faster than the runs around them (the machine's speed drifts; three repetitions taken within
    # a second are not independent of it): past the default factor, two such runs in a row make a
    # step. The factor says what this test looks for: the planted slowdown, x70.
    done = skip2bench("history", runs, "-o", tmp_path / "history", "--factor", "ft_time_s=2", env=env)
    steps = list(csv.DictReader((tmp_path / "history" / "steps.csv").open()))
    at = {(s["board"], s["variant"], s["impl"], s["metric"]): s for s in steps}
    # The times: skip-lora on NumPy, at c3 and only there, significant over 9 repetitions a side.
    times = [s for s in steps if s["metric"] == "ft_time_s"]
    assert [(s["variant"], s["revision"]) for s in times] == [("skip-lora", shas[3])], times
    assert float(at["host", "skip-lora", "numpy", "ft_time_s"]["p"]) < 0.002
    # The counts: both methods' instructions on the MCU step at c3, by the nops (80 steps, to a tick an epoch).
    for variant in ("ft-last", "skip-lora"):
        step = at["mcu", variant, "c", "ft_instructions"]
        assert step["revision"] == shas[3] and abs(float(step["after"]) - float(step["before"]) - NOPS * 80) <= 4 * 40
    assert {s["revision"] for s in steps} == {shas[3]}
    assert (tmp_path / "history" / "history-ft_time_s.png").is_file() and "steps" in done.stdout
