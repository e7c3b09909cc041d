"""`skip2bench history RUN... | DIR`: each metric of each job on each board identity over the
revisions the runs measured, and the steps in it.

A run's revision is its `--revision` label, else its git revision (and date) from the manifest;
runs are taken in the order they were made. A step is where a metric changes for good:
- counts (compare.EXACT): wherever the value changes (an emulated board's phase counts beyond
  their timer ticks, as compare takes them);
- times: asv's idea, written here: the runs' median log times are fitted by a piecewise-constant
  function (least absolute deviations, a penalty of log(factor) per step, by dynamic
  programming), and each step of the fit is kept only if the pooled repetitions on its two sides
  differ past the factor and significantly (stats.time_verdict); the others are merged away.
  Where every run probed a board's ceiling, its times are first normalised by it (series()).
"""
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harness.errors import UserError
from harness.regress import compare as cmp, stats
from harness.rundir import read_manifest
from harness.targets.facts import board_identity


def run_dirs(given: list) -> list:
    """The run directories named, or found inside the folders named, in the order they were made."""
    found = []
    for path in map(Path, given):
        if (path / "records.jsonl").is_file():
            found.append(path)
        elif path.is_dir():
            found += sorted(p.parent for p in path.glob("*/records.jsonl"))
        else:
            raise UserError(f"{path} is neither a run directory nor a folder of them")
    if len(found) < 2:
        raise UserError(f"history needs two runs or more; found {len(found)} in {', '.join(map(str, given))}")
    return sorted(found, key=lambda p: read_manifest(p).get("created", ""))


def revision(manifest: dict) -> str:
    """What a run measured: its --revision label, else its git revision and date."""
    if manifest.get("revision"):
        return str(manifest["revision"])
    sha = (manifest.get("git") or {}).get("sha")
    return f"{sha[:10]} {manifest.get('created', '')[:10]}" if sha else manifest.get("run_id", "?")


def series(runs: list, normalise: bool) -> tuple[dict, set, dict]:
    """(board identity, board, task, variant, impl, job id, metric) -> per run: its values (None:
    absent), and the boards whose times were normalised: with `normalise`, a board's times are
    scaled by each run's ceiling probe over their median (seconds at the board's median speed),
    where every run of it has one; the machine's speed drifts between sessions, as in compare;
    and each job's epochs (the timed stretches of an emulated board's counts)."""
    out, ceilings, epochs = {}, [], {}
    for i, run in enumerate(runs):
        side = cmp.Side.read(str(run), [run])
        ceilings.append(side.ceilings)
        for rec in side.jobs:
            if rec["status"] not in cmp.FINISHED:
                continue
            ident = board_identity(side.facts.get(rec["board"], {}))
            epochs[rec["job_id"]] = rec.get("epochs")
            key = (ident, rec["board"], rec["task"], rec["variant"], rec["impl"], rec["job_id"])
            for metric in (*cmp.EXACT, *cmp.TIMES):
                if metric in cmp.TIMES and rec.get("time_kind") == "emulated":
                    continue  # instruction counts: their own series
                if rec.get(metric) is not None:
                    out.setdefault((*key, metric), [[] for _ in runs])[i].append(rec[metric])
    normalised = set()
    for key, values in out.items():
        board, ran = key[1], [i for i, v in enumerate(values) if v]
        scale = [ceilings[i].get(board) for i in ran]
        if normalise and key[-1] in cmp.TIMES and all(scale):
            median = float(np.median(scale))
            for i, c in zip(ran, scale):
                values[i] = [v * c / median for v in values[i]]
            normalised.add(board)
    return out, normalised, epochs


def exact_steps(values: list, slack: float) -> list:
    """Run indices where a count changes beyond `slack` from the run before that has one."""
    steps, last = [], None
    for i, v in enumerate(values):
        if not v:
            continue
        if last is not None and abs(v[0] - last) > slack:
            steps.append(i)
        last = v[0]
    return steps


def _fit(x: list, penalty: float) -> list:
    """The starts of the segments of the best piecewise-constant fit of x (L1, `penalty` a step)."""
    n = len(x)
    best, start = [0.0] * (n + 1), [0] * (n + 1)
    for j in range(1, n + 1):
        best[j] = float("inf")
        for i in range(j):
            seg = x[i:j]
            cost = best[i] + float(np.abs(np.asarray(seg) - np.median(seg)).sum()) + (penalty if i else 0)
            if cost < best[j]:
                best[j], start[j] = cost, i
    cuts, j = [], n
    while j > 0:
        cuts.append(start[j])
        j = start[j]
    return sorted(cuts)[1:]  # the first segment starts at 0


def time_steps(values: list, factor: float, alpha: float) -> list:
    """(run index, verdict) of each step in the times that survives the significance check."""
    have = [i for i, v in enumerate(values) if v]
    x = [float(np.median(np.log(values[i]))) for i in have]
    cuts = [have[c] for c in _fit(x, np.log(factor))]
    while True:
        bounds = [0, *cuts, len(values)]
        verdicts = [_verdict(sum(values[a:b], []), sum(values[b:c], []), factor, alpha)
                    for a, b, c in zip(bounds, bounds[1:], bounds[2:])]
        weak = [c for c, v in zip(cuts, verdicts) if v.mark not in ("worse", "better")]
        if not weak:
            return list(zip(cuts, verdicts))
        cuts.remove(weak[0])


def _verdict(before: list, after: list, factor: float, alpha: float):
    if not before or not after:
        return stats.TimeVerdict("not comparable", float("nan"), None, None, None)
    return stats.time_verdict(before, after, factor, alpha)


def steps(history: dict, revisions: list, options: cmp.Options, facts: dict, epochs: dict) -> pd.DataFrame:
    """The steps of every series; `facts`: each board's facts (the timer of an emulated one),
    `epochs`: each job's."""
    rows = []
    for (ident, board, task, variant, impl, job, metric), values in history.items():
        where = {"board": board, "identity": ident, "task": task, "variant": variant, "impl": impl, "job_id": job,
                 "metric": metric}
        if metric in cmp.TIMES:
            for i, v in time_steps(values, options.factors.get(metric, stats.FACTOR), options.alpha):
                rows.append({**where, "revision": revisions[i], "run": i, "before": None, "after": None,
                             "ratio": v.ratio, "low": v.low, "high": v.high, "p": v.p, "mark": v.mark})
            continue
        for i in exact_steps(values, cmp.slack(metric, facts.get(board, {}), epochs.get(job))):
            before = next(v[0] for v in reversed(values[:i]) if v)
            after = values[i][0]
            rows.append({**where, "revision": revisions[i], "run": i, "before": before, "after": after,
                         "ratio": after / before if before else None, "mark": "worse" if after > before else "better"})
    return pd.DataFrame(rows, columns=["board", "identity", "task", "variant", "impl", "job_id", "metric", "revision",
                                       "run", "before", "after", "ratio", "low", "high", "p", "mark"])


def plot(history: dict, found: pd.DataFrame, revisions: list, metric: str, path: Path):
    """Every job's median of `metric` over the revisions, its steps marked."""
    fig = Figure(figsize=(9, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for key, values in history.items():
        if key[-1] != metric:
            continue
        xs = [i for i, v in enumerate(values) if v]
        ax.plot(xs, [np.median(values[i]) for i in xs], marker="o", ms=3, lw=1,
                label=f"{key[1]} {key[3]} {key[4]}")
    for _, step in found[found["metric"] == metric].iterrows():
        ax.axvline(step["run"] - 0.5, color="red" if step["mark"] == "worse" else "green", ls="--", lw=1)
    ax.set_xticks(range(len(revisions)), [r[:16] for r in revisions], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} over revisions (dashed: a step; red worse, green better)", fontsize=9)
    if len(ax.get_lines()) <= 12:
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write(given: list, out: Path, options: cmp.Options) -> tuple[pd.DataFrame, Path]:
    """history.md, steps.csv, values.csv, a plot per metric that has a step (and of the
    fine-tuning time) and index.html (the same as a page, its plots interactive) into `out`;
    the steps."""
    from harness.report import charts, html
    from harness.report.tables import markdown
    runs = run_dirs(given)
    manifests = [read_manifest(r) for r in runs]
    revisions = [revision(m) for m in manifests]
    facts = {board: entry.get("facts") or {} for m in manifests for board, entry in m.get("boards", {}).items()}
    history, normalised, epochs = series(runs, options.normalise)
    found = steps(history, revisions, options, facts, epochs)
    out.mkdir(parents=True, exist_ok=True)
    found.to_csv(out / "steps.csv", index=False)
    values = pd.DataFrame([{"board": k[1], "identity": k[0], "task": k[2], "variant": k[3], "impl": k[4], "job_id": k[5],
                            "metric": k[6], "revision": revisions[i], "run": i, "median": np.median(v), "n": len(v)}
                           for k, series_values in history.items() for i, v in enumerate(series_values) if v],
                          columns=["board", "identity", "task", "variant", "impl", "job_id", "metric", "revision", "run",
                                   "median", "n"])
    values.drop(columns=["run"]).to_csv(out / "values.csv", index=False)
    metrics = [m for m in dict.fromkeys([*cmp.TIMES, *found["metric"]]) if any(k[-1] == m for k in history)]
    for metric in metrics:
        plot(history, found, revisions, metric, out / f"history-{metric}.png")
    title = f"skip2bench history: {len(runs)} runs"
    order = "Revisions, in the order the runs were made: " + ", ".join(f"{i} {r}" for i, r in enumerate(revisions)) + "."
    rule = (f"{len(found)} steps (counts: any change; times: past a factor {stats.FACTOR} and at p < {options.alpha} "
            f"between the repetitions on the two sides of the step).")
    scale = (f"Times of {', '.join(sorted(normalised))} are normalised by each run's ceiling probe: seconds at "
             f"the board's median ceiling over these runs." if normalised else "Times are as measured: normalising "
             f"them takes a ceiling probe in every run (probes = [\"ceiling\"]).")
    shown = found.drop(columns=["identity", "job_id"]).dropna(axis=1, how="all")
    lines = [f"# {title}", "", order, "", rule, "", scale, "", markdown(shown) if len(found) else "", "",
             *[f"![{m}](history-{m}.png)" for m in metrics]]
    (out / "history.md").write_text("\n".join(lines) + "\n")
    label = values["board"] + " " + values["task"] + " " + values["variant"] + " " + values["impl"]
    steps_label = found.assign(series=found["board"] + " " + found["task"] + " " + found["variant"] + " " + found["impl"])
    plots = html.Section("plots", "Each metric over the revisions", how="The median of each job's repetitions per "
                         "run; a dashed line before the run where a step starts (red: worse, green: better).")
    for metric in metrics:
        at = values["metric"] == metric
        plots.charts.append(html.chart(f"history-{metric}", metric, charts.history(
            values[at].assign(series=label[at])[["series", "run", "revision", "median", "n"]],
            steps_label[steps_label["metric"] == metric], revisions, metric)))
    html.write(out / "index.html", title, [
        html.Section("steps", "Steps", how=rule, lead=[order, scale],
                     tables=[html.table(shown.reset_index(drop=True), "steps", marks=list(shown["mark"]))] if len(found)
                     else [], notes=[] if len(found) else ["No step."]), plots],
        counts=[(m, int((found["mark"] == m).sum())) for m in ("worse", "better")])
    return found, out
