"""How fine-tuning time grows with epochs and with samples (`skip2bench growth`).

The C runner of one board runs each method of the bench experiment at several epoch counts,
on the fine-tuning set as it is and tiled (every sample repeated, so the data outgrows the
caches as a larger set would); every configuration runs once per repetition, in a seeded random
order, so a slow moment of the machine does not fall on one of them. Per (method, tiling):
time = fixed + per_epoch x epochs by least squares on the medians, and the cost per sample of a
later epoch; skip2-lora's cut against each rival is the median of ratios within a repetition.
"""
import dataclasses
import random
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from rich.console import Console

from harness import paths
from harness.artifacts import prepare
from harness.bench.bench import DEFAULT_EXPERIMENT, DEFAULT_LAB, pick_board
from harness.report.speed import RIVALS, SKIP2
from harness.config import load_experiment, load_lab
from harness.errors import TargetError, UserError
from harness.plan import Job, runner_job
from harness.report.tables import markdown
from harness.rundir import prepare_out_dir
from harness.kinds import open_target
from harness.tasks import load_task

EPOCHS = (1, 5, 20, 40)
TILES = (1, 8)
METHODS = (SKIP2, *RIVALS)
ORDER_SEED = 0


def tiled(data, copies: int):
    """The task with its fine-tuning set repeated `copies` times (the same samples, more of them)."""
    if copies == 1:
        return data
    return dataclasses.replace(data, name=f"{data.name}-x{copies}", x_ft=np.tile(data.x_ft, (copies, 1)),
                               y_ft=np.tile(data.y_ft, copies))


def run_growth(reps: int = 5, out: Path | None = None, console: Console | None = None, data_root: Path | None = None,
               lab_file: Path = DEFAULT_LAB, board_name: str | None = None) -> Path:
    console = console or Console(highlight=False, soft_wrap=True)
    exp, lab = load_experiment(DEFAULT_EXPERIMENT), load_lab(lab_file)
    board = pick_board(lab, board_name)
    task, seed = exp.tasks[0], exp.seeds[0]
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    cache = paths.cache_dir()
    data = load_task(task, data_root=data_root, cache_dir=cache, spec=exp.task_spec(task))
    arts = {tile: prepare(tiled(data, tile), seed, exp.model, exp.pretrain, cache) for tile in TILES}
    out = prepare_out_dir(Path(out) if out else paths.runs_dir() / f"growth-{stamp}", resume=False)
    configs = [(m, e, t) for m in METHODS for e in EPOCHS for t in TILES]
    order = random.Random(ORDER_SEED)
    rows = []
    target = open_target(board, f"growth-{stamp}", cache)
    try:
        target.prepare(("c",), list(arts.values()))
        if target.down or "c" in target.unsupported:
            raise UserError(f"board {board.name} cannot run the C runner: {target.down or target.unsupported['c']}")
        for rep in range(reps):
            order.shuffle(configs)
            for method, epochs, tile in configs:
                job = runner_job(Job(task, seed, method, board=board.name, impl="c", repetition=rep),
                                 exp.finetune.for_variant(method).model_copy(update={"epochs": epochs}))
                try:
                    r = target.run_job(job, "c", arts[tile], f"{method}-e{epochs}-x{tile}-{rep}")
                except TargetError as e:
                    raise UserError(f"C runner on {method}, {epochs} epochs, x{tile}: {e}") from None
                rows.append({"method": method, "epochs": epochs, "tile": tile, "rep": rep, "n_ft": r.n_ft,
                             "ft_time_s": r.ft_time_s, "later_epoch_s": float(np.median(r.epoch_times_s[1:]))
                             if epochs > 1 else None, "ft_macs": r.ft_macs})
            console.print(f"[{rep + 1}/{reps}] {len(configs)} jobs", highlight=False)
    finally:
        target.close()
    runs = pd.DataFrame(rows)
    runs.to_csv(out / "growth.csv", index=False)
    text = _markdown(runs, task, board.name, reps)
    (out / "growth.md").write_text(text)
    _plot(runs, out / "growth.png", task)
    console.print(text, markup=False)
    console.print(f"growth: {out / 'growth.md'}")
    return out


def fits(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (method, tiling): the line through the median times over epochs, and the cost per sample."""
    rows = []
    for (method, tile), g in runs.groupby(["method", "tile"], sort=False):
        med = g.groupby("epochs")["ft_time_s"].median()
        per_epoch, fixed = np.polyfit(med.index.to_numpy(float), med.to_numpy(), 1)
        n = int(g["n_ft"].iloc[0])
        later = g["later_epoch_s"].dropna().median()
        rows.append({"method": method, "tile": tile, "n_ft": n, "fixed_ms": 1e3 * fixed, "per_epoch_ms": 1e3 * per_epoch,
                     "later_epoch_us_per_sample": 1e6 * later / n})
    return pd.DataFrame(rows).sort_values(["method", "tile"], key=lambda c: c.map(
        {m: i for i, m in enumerate(METHODS)}) if c.name == "method" else c)


def cuts(runs: pd.DataFrame) -> pd.DataFrame:
    """skip2-lora's time cut against each rival in %, per epochs and tiling: median of per-repetition ratios."""
    t = runs.pivot_table(index=["tile", "epochs", "rep"], columns="method", values="ft_time_s")
    per = {f"cut vs {rival} %": 100 * (1 - t[SKIP2] / t[rival]) for rival in RIVALS}
    return pd.DataFrame(per).groupby(level=["tile", "epochs"]).median().reset_index()


def _markdown(runs: pd.DataFrame, task: str, board: str, reps: int) -> str:
    f = fits(runs)
    growth = f.pivot_table(index="method", columns="tile", values="later_epoch_us_per_sample", sort=False)
    rise = ", ".join(f"{m} {100 * (growth.loc[m, TILES[-1]] / growth.loc[m, TILES[0]] - 1):+.0f} %" for m in growth.index)
    return "\n".join([
        f"# Growth of fine-tuning time: {task}, C runner on {board}", "",
        f"Epochs {', '.join(map(str, EPOCHS))}; the fine-tuning set as it is and tiled "
        f"{' and '.join(f'x{t}' for t in TILES[1:])}; {reps} repetitions, every configuration once per repetition "
        "in a seeded random order. Fixed and per-epoch costs: least squares through the median times.", "",
        markdown(f), "",
        f"Cost per sample of a later epoch, x{TILES[-1]} against x{TILES[0]}: {rise}.", "",
        "Skip2-LoRA's cut (median over repetitions of the cut within one):", "",
        markdown(cuts(runs)), "",
    ])


def _plot(runs: pd.DataFrame, path: Path, task: str) -> None:
    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(TILES), squeeze=False)[0]
    for ax, tile in zip(axes, TILES):
        here = runs[runs["tile"] == tile]
        for i, method in enumerate(METHODS):  # one colour per method in both panels
            med = here[here["method"] == method].groupby("epochs")["ft_time_s"].median()
            ax.plot(med.index, 1e3 * med.to_numpy(), marker="o", color=f"C{i}", label=method)
        ax.set_title(f"{task}, fine-tuning set x{tile} ({int(here['n_ft'].iloc[0])} samples)")
        ax.set_xlabel("epochs")
        ax.set_ylabel("fine-tuning time (ms, median)")
        ax.grid(alpha=0.3)
    axes[0].legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
