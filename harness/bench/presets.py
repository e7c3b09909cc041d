"""`skip2bench bench`, `growth` and `overhead`: presets of an experiment run by the engine on one
board of a lab, in paired rounds (experiment order "rounds"), into an ordinary run directory
whose report holds their tables; `--resume` continues one stopped in the middle.

- bench (experiments/bench.toml): every method with the C, NumPy and PyTorch runners; each round
  runs every method once, its runners back to back, then probes the board (the C core's ceiling,
  NumPy's sgemm peak); the report's speed tables (harness/report/speed.py).
- growth (experiments/growth.toml): skip2-lora and its rivals on the C runner over a sweep of
  epochs, on the fine-tuning set as it is and repeated; the report's growth tables and plot
  (harness/report/growth.py).
- overhead (experiments/demo.toml): the demo's methods on the C runner, on the board and on this
  host as the reference, taking turns job by job; the report's overhead table
  (harness/report/overhead.py): what the board's transport adds per job.

A runner the board cannot run (no NumPy, no PyTorch) gives unsupported records that say why.
"""
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from harness import paths
from harness.boards import LocalBoard
from harness.config import Experiment
from harness.errors import UserError
from harness.run import run_experiment

DEFAULT_LAB = paths.LABS / "local.toml"


# The board every job of `overhead` also runs on: this host, beside the board under test (which
# may be this host itself: it takes no board-wide lock).
REFERENCE = LocalBoard(name="reference-host", transport="local", impls=["c"], exclusive=False)


@dataclass(frozen=True)
class Preset:
    experiment: Path        # the default experiment file
    impls: tuple            # the runners every job runs on
    probes: tuple = ()
    reference: bool = False  # pair the board with this host (REFERENCE)


BENCH = Preset(paths.EXPERIMENTS / "bench.toml", ("c", "numpy", "torch"), ("ceiling", "sgemm-peak"))
GROWTH = Preset(paths.EXPERIMENTS / "growth.toml", ("c",))
OVERHEAD = Preset(paths.EXPERIMENTS / "demo.toml", ("c",), reference=True)


def pick_board(lab, name: str | None):
    if name is None:
        return lab.boards[0]
    for board in lab.boards:
        if board.name == name:
            return board
    raise UserError(f"no board named {name!r} in lab '{lab.name}' (boards: {', '.join(b.name for b in lab.boards)}); "
                    f"fix --board")


def on_one_board(exp, lab, preset: Preset, reps: int, board_name: str | None):
    """The experiment as the preset runs it: on one board, which offers every runner of the
    preset, in `reps` paired rounds with the preset's probes."""
    board = pick_board(lab, board_name)
    timed = board.model_copy(update={"impls": list(dict.fromkeys([*board.impls, *preset.impls]))})
    boards = [timed if b is board else b for b in lab.boards]
    if preset.reference:
        if REFERENCE.name in {b.name for b in boards}:
            raise UserError(f"lab '{lab.name}' has a board named {REFERENCE.name}, the name of the reference; "
                            f"rename that board")
        boards.append(REFERENCE)
    lab = lab.model_copy(update={"boards": boards})
    exp = Experiment.model_validate({
        **exp.model_dump(), "impls": list(preset.impls), "repetitions": reps, "order": "rounds",
        "probes": list(preset.probes), "boards": [board.name, *([REFERENCE.name] * preset.reference)],
        "reference": REFERENCE.name if preset.reference else None})
    return exp, lab


def run_preset(preset: Preset, experiment: Path | None, reps: int, out: Path | None, resume: bool, console,
               data_root: Path | None, lab_file: Path | None, board_name: str | None) -> tuple[Path, dict]:
    """Run the preset's experiment (or `experiment`) on one board; the run directory and its counts."""
    return run_experiment(experiment or preset.experiment, lab_file or DEFAULT_LAB, out, resume, data_root, console,
                          shape=partial(on_one_board, preset=preset, reps=reps, board_name=board_name))
