"""`skip2bench bench`: the speed benchmark, as a run of the engine into an ordinary run directory.

The experiment (experiments/bench.toml by default) runs on one board of the lab with the C,
NumPy and PyTorch runners in paired rounds (experiment order "rounds"): each round runs every
method once, its runners back to back, then probes the board (the C core's ceiling, NumPy's
sgemm peak). The report's speed tables (harness/report/speed.py) form every ratio within a
round. A runner the board cannot run (no NumPy, no PyTorch) gives unsupported records that say
why; `--resume` continues a benchmark stopped in the middle.
"""
from functools import partial
from pathlib import Path

from harness import paths
from harness.config import Experiment
from harness.errors import UserError
from harness.run import run_experiment

IMPLS = ("c", "numpy", "torch")
PROBES = ("ceiling", "sgemm-peak")
DEFAULT_EXPERIMENT = paths.EXPERIMENTS / "bench.toml"
DEFAULT_LAB = paths.LABS / "local.toml"


def pick_board(lab, name: str | None):
    if name is None:
        return lab.boards[0]
    for board in lab.boards:
        if board.name == name:
            return board
    raise UserError(f"no board named {name!r} in lab '{lab.name}' (boards: {', '.join(b.name for b in lab.boards)}); "
                    f"fix --board")


def bench_shape(exp, lab, reps: int, board_name: str | None):
    """The experiment as the benchmark runs it: on one board, which offers every runner of the
    benchmark, in `reps` paired rounds with the probes."""
    board = pick_board(lab, board_name)
    timed = board.model_copy(update={"impls": list(dict.fromkeys([*board.impls, *IMPLS]))})
    lab = lab.model_copy(update={"boards": [timed if b is board else b for b in lab.boards]})
    exp = Experiment.model_validate({**exp.model_dump(), "impls": list(IMPLS), "repetitions": reps,
                                     "order": "rounds", "probes": list(PROBES), "boards": [board.name]})
    return exp, lab


def run_bench(experiment: Path, reps: int, out: Path | None, resume: bool, console, data_root: Path | None,
              lab_file: Path, board_name: str | None) -> tuple[Path, dict]:
    """Benchmark every (task, seed, method) of `experiment` on one board; the run directory and its counts."""
    return run_experiment(experiment, lab_file, out, resume, data_root, console,
                          shape=partial(bench_shape, reps=reps, board_name=board_name))
