"""How fine-tuning time grows with epochs and with samples: the tables and the plot of a run that
swept epochs in paired rounds (`skip2bench growth`, experiments/growth.toml: the fine-tuning set
as it is and repeated, repeat_finetune).

Per board, task, method and impl: time = fixed + per_epoch × epochs by least squares through
the median times, and the cost per sample of a later epoch; skip2-lora's cut against each rival
at every epoch count is the median over rounds of the cut within one round. Each builder
returns None for a run that did not sweep epochs in rounds.
"""
from pathlib import Path

import numpy as np
import pandas as pd

from harness.report import plots
from harness.report.load import ordered, sweep_keys
from harness.report.tables import RIVALS, SKIP2

WHERE = ["board", "task", "impl"]


def _swept(df: pd.DataFrame) -> pd.DataFrame | None:
    """The run's finished jobs, when it swept epochs in paired rounds."""
    if not df.attrs.get("rounds") or "epochs" not in sweep_keys(df):
        return None
    return df[df["status"] == "ok"]


def fits(df: pd.DataFrame) -> pd.DataFrame | None:
    ok = _swept(df)
    if ok is None:
        return None
    rows = []
    for (board, task, impl, variant), g in ok.groupby([*WHERE, "variant"], sort=False):
        med = g.groupby("epochs")["ft_time_s"].median()
        if len(med) < 2:
            continue
        per_epoch, fixed = np.polyfit(med.index.to_numpy(float), med.to_numpy(), 1)
        n = int(g["n_ft"].iloc[0])
        later = g["epoch_times_s"].map(lambda t: float(np.median(t[1:])) if len(t) > 1 else np.nan).median()
        rows.append({"board": board, "task": task, "impl": impl, "method": variant, "n_ft": n,
                     "fixed_ms": 1e3 * fixed, "per_epoch_ms": 1e3 * per_epoch,
                     "later_epoch_us_per_sample": 1e6 * later / n})
    table = pd.DataFrame(rows)
    return table.sort_values(["board", "impl", "method", "n_ft"], key=_method_order, kind="stable") if rows else table


def _method_order(column: pd.Series) -> pd.Series:
    if column.name != "method":
        return column
    return column.map({m: i for i, m in enumerate(ordered(column))})


def cuts(df: pd.DataFrame) -> pd.DataFrame | None:
    """skip2-lora's time cut against each rival in %, per epoch count: median of per-round cuts."""
    ok = _swept(df)
    if ok is None:
        return None
    rows = []
    for (board, task, impl), g in ok.groupby(WHERE, sort=False):
        t = g.pivot_table(index=["epochs", "repetition"], columns="variant", values="ft_time_s")
        if SKIP2 not in t.columns:
            continue
        per = {f"cut vs {rival} %": 100 * (1 - t[SKIP2] / t[rival]) for rival in RIVALS if rival in t.columns}
        for epochs, cut in pd.DataFrame(per).groupby(level="epochs").median().iterrows():
            rows.append({"board": board, "task": task, "impl": impl, "epochs": epochs, **cut.to_dict()})
    return pd.DataFrame(rows)


def plot(df: pd.DataFrame, path: Path) -> bool | None:
    """Median fine-tuning time against epochs, one line per method, a panel per task; None for a
    run that did not sweep epochs in rounds."""
    ok = _swept(df)
    if ok is None:
        return None

    def draw(ax, rows):
        for variant in ordered(rows["variant"]):
            med = rows[rows["variant"] == variant].groupby("epochs")["ft_time_s"].median()
            ax.plot(med.index, 1e3 * med.to_numpy(), marker="o", label=variant)
        ax.set_xlabel("epochs")
        ax.set_ylabel("fine-tuning time (ms, median)")
    return plots.figure(ok, path, "Fine-tuning time against epochs (the fine-tuning set as it is and repeated)", draw)
