"""The report's figures: one panel per task (and per impl/board when the run has several)."""
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from harness.report.load import impl_key, ordered, scored, training_memory_kib

PHASES = [("fwd_time_s", "forward"), ("bwd_time_s", "backward"), ("upd_time_s", "update"),
          ("cache_time_s", "cache")]
MARKERS = "osD^vP*Xh<>p"
# A log axis once the values span more than this factor, so the fast variants stay visible.
WIDE = 10


def time_breakdown(df: pd.DataFrame, path: Path) -> bool:
    """Stacked bars per variant: mean forward, backward, update, cache and other time."""
    def draw(ax, rows):
        means = rows.groupby("variant")[["ft_time_s", *(c for c, _ in PHASES)]].mean()
        means = means.reindex(ordered(means.index))
        bottom = np.zeros(len(means))
        for (column, label), colour in zip([*PHASES, ("other", "other")], colormaps["tab10"].colors):
            if column == "other":
                # Whatever the runner did not attribute to a phase (data shuffles, bookkeeping).
                values = (means["ft_time_s"] - means[[c for c, _ in PHASES]].sum(axis=1)).clip(lower=0)
            else:
                values = means[column].fillna(0)
            ax.bar(means.index, values, bottom=bottom, label=label, color=colour)
            bottom += values.to_numpy()
        ax.bar_label(ax.containers[-1], labels=[f"{t:.3g}" for t in means["ft_time_s"]], fontsize=7)
        ax.set_ylabel("fine-tuning time [s]")
        ax.tick_params(axis="x", labelrotation=45)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    return figure(df, path, "Fine-tuning time by phase (mean over seeds)", draw)


def acc_vs_time(df: pd.DataFrame, path: Path) -> bool:
    """Pareto picture: accuracy after fine-tuning against fine-tuning time."""
    return _tradeoff(df, path, "ft_time_s", "fine-tuning time [s]", "Accuracy vs fine-tuning time")


def acc_vs_memory(df: pd.DataFrame, path: Path) -> bool:
    """Pareto picture: accuracy after fine-tuning against the training memory (analytic model)."""
    rows = df.assign(train_mem_kib=training_memory_kib(df))
    return _tradeoff(rows, path, "train_mem_kib", "training memory [KiB] (weights, grads, activations, cache)",
                     "Accuracy vs training memory")


def _tradeoff(df: pd.DataFrame, path: Path, column: str, label: str, title: str) -> bool:
    """Accuracy against a cost, mean ± std over seeds, one point per variant; the Pareto front
    (variants no other beats on both) joined by a dashed line and the dominated ones hollow.
    One panel per (impl, board), so only comparable figures share an axis."""
    style = _styles(df)
    # One scale for every panel, so panels compare at a glance.
    log = _wide(scored(df).groupby(["task", "impl", "board", "variant"])[column].mean())

    def draw(ax, rows):
        stats = rows.groupby("variant")[[column, "acc_after"]].agg(["mean", "std"])
        front = pareto_front(stats[(column, "mean")], stats[("acc_after", "mean")])
        for variant in ordered(stats.index):
            s = stats.loc[variant]
            colour, marker = style[variant]
            ax.errorbar(s[(column, "mean")], 100 * s[("acc_after", "mean")],
                        xerr=_nan0(s[(column, "std")]), yerr=100 * _nan0(s[("acc_after", "std")]),
                        fmt=marker, color=colour, label=variant, capsize=3,
                        markerfacecolor=colour if variant in front else "none")
        best = stats.loc[front].sort_values((column, "mean"))
        ax.plot(best[(column, "mean")], 100 * best[("acc_after", "mean")], "--", color="grey", lw=1, zorder=0,
                label="Pareto front")
        if log:
            _log_axis(ax.xaxis, ax.set_xscale)
        ax.set_xlabel(label)
        ax.set_ylabel("accuracy after fine-tuning [%]")
    return figure(df, path, f"{title} (mean ± std over seeds; hollow: dominated)", draw)


def pareto_front(cost: pd.Series, accuracy: pd.Series) -> list:
    """Labels no other beats: none is as cheap and as accurate, and better in one of the two."""
    points = pd.DataFrame({"cost": cost, "acc": accuracy}).dropna()
    return [k for k, p in points.iterrows()
            if not ((points["cost"] <= p["cost"]) & (points["acc"] >= p["acc"])
                    & ((points["cost"] < p["cost"]) | (points["acc"] > p["acc"]))).any()]


def epoch_times(df: pd.DataFrame, path: Path) -> bool:
    """Time of each epoch, mean over seeds, per variant: cached variants drop after epoch 1."""
    style = _styles(df)
    rows = df[df["epoch_times_s"].map(lambda t: isinstance(t, list) and len(t) > 0)]
    log = _wide(_epochs(scored(rows)).groupby(["variant", "epoch"])["seconds"].mean())

    def draw(ax, rows):
        per_epoch = _epochs(rows)
        for variant in ordered(per_epoch["variant"]):
            line = per_epoch[per_epoch["variant"].eq(variant)].groupby("epoch")["seconds"].mean()
            colour, marker = style[variant]
            ax.plot(line.index, line.to_numpy(), marker=marker, color=colour, label=variant)
        if log:
            _log_axis(ax.yaxis, ax.set_yscale)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("epoch time [s]")
    return figure(rows, path, "Time per epoch (mean over seeds)", draw)


def _epochs(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per record and epoch (epochs counted from 1)."""
    long = rows[["variant", "epoch_times_s"]].explode("epoch_times_s")
    long["epoch"] = long.groupby(level=0).cumcount() + 1
    return long.rename(columns={"epoch_times_s": "seconds"}).astype({"seconds": float})


def figure(df, path, title, draw) -> bool:
    """Lay out the panels, let draw fill each one, add one shared legend; False if nothing to plot.

    A bare Figure on the Agg canvas: no pyplot state, no change to the caller's backend.
    """
    rows = scored(df)
    if rows.empty:
        return False
    tasks = sorted(rows["task"].unique())
    places = sorted(set(zip(rows["impl"], rows["board"])), key=lambda p: (impl_key(p[0]), p[1]))
    # A fixed layout, the legend in a margin on the right: the constrained layout solver took
    # about half of a short run's report time.
    width, height = 2.5 + 4.5 * len(places), 1.0 + 3.8 * len(tasks)
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=0.9 / width, right=1 - 2.4 / width, bottom=1.1 / height, top=1 - 0.75 / height,
                        wspace=0.28, hspace=0.55)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(tasks), len(places), squeeze=False)
    legend = {}
    for r, task in enumerate(tasks):
        for c, (impl, board) in enumerate(places):
            ax = axes[r][c]
            panel = rows[rows["task"].eq(task) & rows["impl"].eq(impl) & rows["board"].eq(board)]
            ax.set_title(task if len(places) == 1 else f"{task} — {impl} on {board}")
            if panel.empty:
                ax.text(0.5, 0.5, "no results", ha="center", va="center", transform=ax.transAxes)
                continue
            draw(ax, panel)
            ax.grid(alpha=0.3)
            for handle, label in zip(*ax.get_legend_handles_labels()):
                legend.setdefault(label, handle)
    fig.suptitle(title)
    fig.legend(legend.values(), legend.keys(), loc="upper right", bbox_to_anchor=(1, 1 - 0.6 / height),
               frameon=False)
    fig.savefig(path, dpi=110)
    return True


def _styles(df: pd.DataFrame) -> dict:
    """One fixed colour and marker per variant, the same in every panel."""
    colours = colormaps["tab20" if df["variant"].nunique() > 10 else "tab10"].colors
    return {v: (colours[i % len(colours)], MARKERS[i % len(MARKERS)])
            for i, v in enumerate(ordered(df["variant"]))}


def _wide(values: pd.Series) -> bool:
    values = values[values > 0]
    return bool(len(values)) and values.max() / values.min() > WIDE


def _log_axis(axis, set_scale):
    """Log scale with plain-number labels at 1-2-5 steps (matplotlib's default crowds the minor ticks)."""
    set_scale("log")
    axis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _nan0(value):
    """A single seed has no spread: a zero-length error bar, not a missing point."""
    return 0 if pd.isna(value) else value
