"""Benchmark: skip2-lora's small steps against lora-all and skip-lora in the C core on the paper's
tasks (fan-damage1, fan-damage2, HAR), and its first and later epochs against their bounds
(harness/bench/bounds.py, at the ceiling `skip2run --ceiling` measured in the same round).

The jobs are those of the paper experiments (seed 0, 20 and 40 epochs), made once by a run of
the engine; then skip2run runs each of them directly, in paired rounds: per round the ceiling,
then every task, epoch count, method and build back to back, the builds' order turning each
round. Builds: this tree's core and, when git has it, main's (`SKIP2_SMALL_STEPS_BASE` names
another revision; empty skips it). Figures are medians over rounds of per-round ratios.
`SKIP2_SMALL_STEPS_ROUNDS` sets the rounds (default 10). It prints figures; it asserts only
that the jobs ran and that both builds trained the same numbers.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness import paths
from harness.bench import bounds

pytestmark = pytest.mark.bench

ROOT = Path(__file__).resolve().parent.parent
TASKS = ["fan-damage1", "fan-damage2", "har"]
METHODS = ["lora-all", "skip-lora", "skip2-lora"]
EPOCHS = [20, 40]
HP = {"epochs": 20, "batch_size": 20, "lr": 0.01, "rank": 4, "scale": 1.0}

EXPERIMENT = """name = "small-steps"
tasks = {tasks}
methods = {methods}
seeds = [0]
impls = ["c"]
repetitions = 1

[model]
hidden = [96, 96]

[pretrain]
epochs = 40
batch_size = 32
lr = 0.05

[finetune]
epochs = 20
batch_size = 20
lr = 0.01
rank = 4
scale = 1.0
"""


def build(src: Path, out: Path) -> Path:
    subprocess.run(["make", "-s", "-C", str(src), f"BUILD={out}"], check=True)
    return out / "skip2run"


def base_core(rev: str, dest: Path) -> Path | None:
    """targets/c of git revision `rev`, in dest (None when git does not have it)."""
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", "-q", rev],
                      capture_output=True).returncode != 0:
        return None
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "targets/c"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest / "targets" / "c"


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """(task, method) -> the job.json body of its C job, and the task's layer sizes and n_ft."""
    tmp = tmp_path_factory.mktemp("small-steps")
    exp = tmp / "exp.toml"
    exp.write_text(EXPERIMENT.format(tasks=json.dumps(TASKS), methods=json.dumps(METHODS)))
    out = tmp / "run"
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "-e", str(exp), "-l",
                           str(ROOT / "labs" / "local.toml"), "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0 and "not found" in proc.stdout + proc.stderr:
        pytest.skip("the paper tasks' data sets are not here (skip2bench data)")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    work = paths.cache_dir() / "boards" / "host" / "jobs" / "run"
    found = {}
    for r in records:
        assert r["status"] == "ok", r
        job_dir = next(d for d in work.iterdir()
                       if d.name.startswith(r["job_id"][:12]) and d.name.endswith("-c-r0"))
        body = json.loads((job_dir / "job.json").read_text())
        found[r["task"], r["method"]] = (body, [int(v) for v in r["sizes"].split("-")], int(r["n_ft"]))
    return found


def run_job(binary: Path, body: dict, epochs: int, where: Path) -> dict:
    where.mkdir(parents=True, exist_ok=True)
    (where / "job.json").write_text(json.dumps({**body, "epochs": epochs}))
    proc = subprocess.run([str(binary), str(where)], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def ceiling(binary: Path) -> dict:
    return json.loads(subprocess.run([str(binary), "--ceiling"], capture_output=True, text=True,
                                     check=True).stdout)


def test_small_steps(jobs, tmp_path):
    rounds = int(os.environ.get("SKIP2_SMALL_STEPS_ROUNDS", "10"))
    builds = {"new": build(ROOT / "targets" / "c", tmp_path / "build-new")}
    rev = os.environ.get("SKIP2_SMALL_STEPS_BASE", "main")
    src = base_core(rev, tmp_path / "base") if rev else None
    if src is not None:
        builds["old"] = build(src, tmp_path / "build-old")
    names = list(builds)
    ft = {}      # (build, task, epochs, method) -> [ft seconds per round]
    ratio = {}   # (build, task, "first"/"later") -> [epoch / bound per round]
    counts = {}  # (build, task, epochs, method) -> deterministic fields
    for rnd in range(rounds):
        order = names if rnd % 2 == 0 else names[::-1]
        limit = {b: ceiling(builds[b]) for b in order}
        for task in TASKS:
            for epochs in EPOCHS:
                for method in METHODS:
                    body, sizes, n = jobs[task, method]
                    for b in order:
                        r = run_job(builds[b], body, epochs, tmp_path / "w" / b)
                        assert r["status"] == "ok", r
                        ft.setdefault((b, task, epochs, method), []).append(r["ft_time_s"])
                        counts.setdefault((b, task, epochs, method), (
                            r["acc_after"], r["epoch_loss"], r["ft_macs"], r["cache_hits"]))
                        if method == "skip2-lora" and epochs == EPOCHS[0]:
                            work = bounds.epoch_work(method, sizes, n, {**HP, "epochs": epochs})
                            gbs, core = limit[b]["read_gbs"], limit[b]["core_gflops"]
                            e = r["epoch_times_s"]
                            ratio.setdefault((b, task, "first"), []).append(
                                e[0] / bounds.bound_s(work["first"], core, gbs)[0])
                            ratio.setdefault((b, task, "later"), []).append(
                                float(np.median(e[1:])) / bounds.bound_s(work["later"], core, gbs)[0])
    if "old" in builds:
        for key in counts:
            if key[0] == "new":
                assert counts[key] == counts[("old",) + key[1:]], f"{key}: the builds trained differently"

    def cut(b, task, epochs, rival):
        s2 = np.array(ft[b, task, epochs, "skip2-lora"])
        return 100 * float(np.median(1 - s2 / np.array(ft[b, task, epochs, rival])))

    print(f"\nskip2-lora in C, {rounds} paired rounds (medians of per-round figures); builds: "
          + ", ".join(f"{b} = {'this tree' if b == 'new' else rev}" for b in names))
    print(f"{'task':12} {'build':5} {'ep':>3} {'skip2 ms':>9} {'% vs lora-all':>14} "
          f"{'% vs skip-lora':>15} {'first/bound':>12} {'later/bound':>12}")
    for task in TASKS:
        for epochs in EPOCHS:
            for b in names:
                s2 = 1e3 * float(np.median(ft[b, task, epochs, "skip2-lora"]))
                bound_cols = (f"{np.median(ratio[b, task, 'first']):12.2f} "
                              f"{np.median(ratio[b, task, 'later']):12.2f}"
                              if epochs == EPOCHS[0] else "")
                print(f"{task:12} {b:5} {epochs:3d} {s2:9.3f} {cut(b, task, epochs, 'lora-all'):14.1f} "
                      f"{cut(b, task, epochs, 'skip-lora'):15.1f} {bound_cols}")
        if "old" in builds:
            for epochs in EPOCHS:
                new = np.array(ft["new", task, epochs, "skip2-lora"])
                old = np.array(ft["old", task, epochs, "skip2-lora"])
                print(f"{task:12} new/old skip2-lora time at {epochs} epochs: "
                      f"{float(np.median(new / old)):.3f}")
