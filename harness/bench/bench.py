"""Runs the speed benchmark: every method of an experiment on the C, NumPy and PyTorch runners.

Each method's job is staged once and all three runners read the same work directory. The
repetitions are interleaved (C, NumPy, PyTorch, C, ...) so that slow drifts of the machine
(heat, other load) touch the three alike; each runner times its own fine-tuning loop.
"""
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console

from harness import paths
from harness.artifacts import prepare
from harness.bench import summary
from harness.bench.peak import SQUARE, model_shapes
from harness.config import load_experiment
from harness.errors import TargetError, UserError
from harness.plan import Job, runner_job
from harness.run import prepare_out_dir
from harness.targets import parse_result
from harness.targets.local import build_c_runner, write_job
from harness.tasks import load_task

IMPLS = ("c", "numpy", "torch")
DEFAULT_EXPERIMENT = paths.REPO / "experiments" / "bench.toml"
TORCH_RUNNER = Path(__file__).with_name("torch_runner.py")
# The C core is single-threaded, so every runner and the peak measurement get one thread too,
# whatever the caller's environment says.
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
TIMEOUT_S = 600


def _commands() -> dict:
    if importlib.util.find_spec("torch") is None:
        raise UserError("PyTorch is not installed: run `.venv/bin/pip install -e '.[bench]'` (torch 2.13.0 CPU)")
    try:
        c_runner = build_c_runner()
    except TargetError as e:
        raise UserError(f"{e}; the benchmark needs the C runner") from None
    return {"c": [str(c_runner)],
            "numpy": [sys.executable, str(paths.NUMPY_RUNNER_DIR / "skip2_runner.py")],
            "torch": [sys.executable, str(TORCH_RUNNER)]}


def _child(cmd, env, what) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise UserError(f"{what} timed out after {TIMEOUT_S} s") from None


def measure_peaks(models: dict, env) -> dict:
    """Single-thread sgemm GFLOP/s: a SQUARE^3 product and each model's (name -> sizes, batch) own products."""
    workloads = {"square": [[SQUARE] * 3],
                 **{name: model_shapes(sizes, batch) for name, (sizes, batch) in models.items()}}
    proc = _child([sys.executable, "-m", "harness.bench.peak", json.dumps(workloads)], env,
                  "the sgemm peak measurement")
    if proc.returncode != 0:
        raise UserError(f"the sgemm peak measurement failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout)


def run_bench(experiment: Path = DEFAULT_EXPERIMENT, reps: int = 5, out: Path | None = None,
              console: Console | None = None, data_root: Path | None = None) -> Path:
    """Benchmarks every (task, seed, method) of `experiment`; writes bench.md/csv/json into `out`."""
    console = console or Console(highlight=False, soft_wrap=True)
    commands = _commands()
    exp = load_experiment(experiment)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = prepare_out_dir(Path(out) if out else paths.REPO / "results" / "runs" / f"bench-{stamp}", resume=False)
    env = {**os.environ, **ONE_THREAD}

    cache = paths.cache_dir()
    groups = []
    for task in exp.tasks:
        data = load_task(task, data_root=data_root, cache_dir=cache)
        sizes = [data.n_features, *exp.model.hidden, len(data.classes)]
        for seed in exp.seeds:
            art = prepare(data, seed, exp.model, exp.pretrain, cache)
            groups.append((task, seed, art, "-".join(map(str, sizes)), sizes))
    models = {name: (sizes, exp.finetune.batch_size) for *_, name, sizes in groups}
    peaks = measure_peaks(models, env)
    console.print(f"single-thread sgemm peak: {SQUARE}^3 {peaks['square']:.1f} GFLOP/s; "
                  + "; ".join(f"model {name} {peaks[name]:.1f} GFLOP/s" for name in models))

    samples = []
    total = len(groups) * len(exp.methods) * reps * len(IMPLS)
    with tempfile.TemporaryDirectory(prefix="skip2bench-") as work:
        for task, seed, art, model, _ in groups:
            for variant in exp.methods:
                workdir = Path(work) / f"{task}-{seed}-{variant}"
                workdir.mkdir()
                job = runner_job(Job(task, seed, variant, board="local", impl="all", repetition=0),
                                 exp.finetune.for_variant(variant))
                write_job(workdir, job, art)
                for rep in range(reps):
                    for impl in IMPLS:
                        what = f"{impl} runner on {task} {variant}"
                        proc = _child([*commands[impl], str(workdir)], env, what)
                        try:
                            result = parse_result(proc.stdout, proc.stderr, proc.returncode, what)
                        except TargetError as e:
                            raise UserError(str(e)) from None
                        samples.append({"task": task, "seed": seed, "variant": variant, "model": model,
                                        "rep": rep, **result})
                        console.print(_progress(len(samples), total, samples[-1], reps), highlight=False)

    console.print(summary.write(out, experiment, exp, reps, samples, peaks), markup=False)
    console.print(f"bench: {out / 'bench.md'}")
    return out


def _progress(i, n, s, reps) -> str:
    head = f"[{i:>{len(str(n))}}/{n}] {s['task']:<12} {s['variant']:<15} {s['impl']:<6} rep {s['rep'] + 1}/{reps}"
    after = "diverged" if s["acc_after"] is None else f"{100 * s['acc_after']:5.1f}%"
    return f"{head}  ft {s['ft_time_s']:8.4f} s  acc {100 * s['acc_before']:5.1f}% -> {after}"
