"""Runs the speed benchmark: every method of an experiment on the C, NumPy and PyTorch runners
of one lab board, through the same target seam as `skip2bench run`.

The repetitions are interleaved (C, NumPy, PyTorch, C, ...) so that slow drifts of the board
(heat, other load) touch the runners alike; each runner times its own fine-tuning loop. A runner
the board cannot run (no NumPy, no PyTorch) is left out with a note; the C runner is required.
"""
import json
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console

from harness import paths
from harness.artifacts import prepare
from harness.bench import summary
from harness.config import load_experiment, load_lab
from harness.errors import TargetError, UserError
from harness.plan import Job, runner_job
from harness.rundir import prepare_out_dir
from harness.kinds import open_target
from harness.tasks import load_task
import skip2_peak  # (the probe runs on the board; its workload shapes are built here)

IMPLS = ("c", "numpy", "torch")
DEFAULT_EXPERIMENT = paths.EXPERIMENTS / "bench.toml"
DEFAULT_LAB = paths.LABS / "local.toml"
PEAK_TIMEOUT_S = 600
PEAK_ROUNDS = 3  # per repetition: the peak is measured beside every set of runs, not once before them


def pick_board(lab, name: str | None):
    if name is None:
        return lab.boards[0]
    for board in lab.boards:
        if board.name == name:
            return board
    raise UserError(f"no board named {name!r} in lab '{lab.name}' (boards: {', '.join(b.name for b in lab.boards)}); "
                    f"fix --board")


def measure_ceiling(target) -> dict:
    """The C core's own ceiling on the board (`skip2run --ceiling`): 'core' GFLOP/s, and the read
    bandwidth per working-set size as 'read_BYTES' GB/s."""
    try:
        found = json.loads(target.run_program("c", "--ceiling", timeout=PEAK_TIMEOUT_S))
    except (TargetError, ValueError) as e:
        raise UserError(f"the C core's ceiling measurement on board {target.board.name} failed: {e}") from None
    return {"core": found["core_gflops"], **{f"read_{size}": gbs for size, gbs in found["read_gbs"]}}


def measure_peaks(target, models: dict, rounds: int) -> dict:
    """Single-thread sgemm GFLOP/s on the board: a SQUARE^3 product and each model's own products."""
    workloads = {"square": [[skip2_peak.SQUARE] * 3],
                 **{name: skip2_peak.model_shapes(sizes, batch) for name, (sizes, batch) in models.items()}}
    try:
        return json.loads(target.run_script("numpy", "skip2_peak.py", json.dumps(workloads), str(rounds),
                                            timeout=PEAK_TIMEOUT_S))
    except (TargetError, ValueError) as e:
        raise UserError(f"the sgemm peak measurement on board {target.board.name} failed: {e}") from None


def run_bench(experiment: Path = DEFAULT_EXPERIMENT, reps: int = 5, out: Path | None = None,
              console: Console | None = None, data_root: Path | None = None,
              lab_file: Path = DEFAULT_LAB, board_name: str | None = None) -> Path:
    """Benchmarks every (task, seed, method) of `experiment` on one board; writes bench.md/csv/json into `out`."""
    console = console or Console(highlight=False, soft_wrap=True)
    exp, lab = load_experiment(experiment), load_lab(lab_file)
    board = pick_board(lab, board_name)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    cache = paths.cache_dir()
    groups = []
    for task in exp.tasks:
        data = load_task(task, data_root=data_root, cache_dir=cache, spec=exp.task_spec(task))
        sizes = [data.n_features, *exp.model.hidden, len(data.classes)]
        for seed in exp.seeds:
            art = prepare(data, seed, exp.model, exp.pretrain, cache)
            groups.append((task, seed, art, "-".join(map(str, sizes)), sizes))
    out = prepare_out_dir(Path(out) if out else paths.runs_dir() / f"bench-{stamp}", resume=False)

    target = open_target(board, f"bench-{stamp}", cache)
    try:
        target.prepare(IMPLS, [art for _, _, art, _, _ in groups])
        if target.down:
            raise UserError(f"board {board.name} cannot run the benchmark: {target.down}")
        if "c" in target.unsupported:
            raise UserError(f"the benchmark needs the C runner: {target.unsupported['c']}")
        impls = [i for i in IMPLS if i not in target.unsupported]
        notes = [f"{summary.NAMES[i]} left out: {why}" for i, why in target.unsupported.items()]
        for note in notes:
            console.print(f"[yellow]{note}[/]")
        models = {name: (sizes, exp.finetune.batch_size) for *_, name, sizes in groups}
        if "numpy" not in impls:
            notes.append("no sgemm peak: it is measured with NumPy on the board")

        def limits():
            blas = measure_peaks(target, models, PEAK_ROUNDS) if "numpy" in impls else {}
            return {**blas, **measure_ceiling(target)}

        samples, peaks = _time_runners(target, exp, groups, impls, reps, limits, console)
    finally:
        target.close()
    console.print(summary.write(out, experiment, exp, reps, samples, peaks,
                                {"name": board.name, "facts": target.facts, "notes": notes}), markup=False)
    console.print(f"bench: {out / 'bench.md'}")
    return out


def _time_runners(target, exp, groups, impls, reps, limits, console) -> tuple[list, list]:
    """Every repetition runs each runner once, then measures the sgemm peak and the core's
    ceiling: every ratio of the summary is then formed within one repetition, from runs taken
    back to back."""
    samples, peaks = [], []
    total = len(groups) * len(exp.methods) * reps * len(impls)
    for task, seed, art, model, _ in groups:
        for variant in exp.methods:
            job = runner_job(Job(task, seed, variant, board=target.board.name, impl="all", repetition=0),
                             exp.finetune.for_variant(variant))
            for rep in range(reps):
                key = {"task": task, "seed": seed, "variant": variant, "model": model, "rep": rep}
                for impl in impls:
                    try:
                        result = target.run_job(job, impl, art, f"{task}-{seed}-{variant}-{impl}")
                    except TargetError as e:
                        raise UserError(f"{impl} runner on {task} {variant}: {e}") from None
                    samples.append({**key, **result.model_dump()})
                    console.print(_progress(len(samples), total, samples[-1], reps), highlight=False)
                peaks.append({**key, **limits()})
    return samples, peaks


def _progress(i, n, s, reps) -> str:
    head = f"[{i:>{len(str(n))}}/{n}] {s['task']:<12} {s['variant']:<15} {s['impl']:<6} rep {s['rep'] + 1}/{reps}"
    after = "diverged" if s["acc_after"] is None else f"{100 * s['acc_after']:5.1f}%"
    return f"{head}  ft {s['ft_time_s']:8.4f} s  acc {100 * s['acc_before']:5.1f}% -> {after}"
