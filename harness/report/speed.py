"""The speed tables of a run taken in paired rounds (experiment order "rounds", as `skip2bench
bench` runs it): per board, task, seed and method, the C core against NumPy and PyTorch and C's
GFLOP/s against the board's probes of the same round; skip2-lora's time reduction against its
rivals; C's epochs against their bounds (harness/bench/bounds.py).

Every ratio is the median over rounds of the ratio within one round (runs taken back to back),
never a ratio of medians of separate runs. Each builder returns None for a run not taken in
rounds: its jobs were not paired.
"""
import numpy as np
import pandas as pd

from harness.bench import bounds
from harness.job_table import HP_FIELDS
from harness.report.load import sweep_keys
from harness.report.tables import RIVALS, SKIP2

NAMES = {"c": "C", "numpy": "NumPy", "torch": "PyTorch"}
# The C core should beat PyTorch by this factor; the verdict line names the methods where it does not.
TARGET_SPEEDUP = 3.0
WHERE = ["board", "task", "seed"]
SPEED_COLUMNS = {
    "board": "board", "task": "task", "seed": "seed", "variant": "method", "sizes": "model",
    "trainable_params": "params", "rounds": "rounds", "c_s": "C s", "numpy_s": "NumPy s", "torch_s": "PyTorch s",
    "speedup_vs_numpy": "C speed-up vs NumPy", "speedup_vs_numpy_spread": "NumPy speed-up spread %",
    "speedup_vs_torch": "C speed-up vs PyTorch",
    "c_gflops": "C GFLOP/s", "c_pct_of_square_peak": "C % of square peak",
    "c_pct_of_model_peak": "C % of model peak", "c_pct_of_core_ceiling": "C % of core ceiling",
    "acc_spread_samples": "acc spread (test samples)",
}


def _ok(df: pd.DataFrame) -> pd.DataFrame | None:
    """The run's finished jobs, when they ran in paired rounds without a sweep (a sweep's rounds
    are the growth tables', harness/report/growth.py)."""
    return df[df["status"] == "ok"] if df.attrs.get("rounds") and not sweep_keys(df) else None


def probe_values(df: pd.DataFrame) -> pd.DataFrame:
    """One row per board and round: every ok probe's values ("core", "read_BYTES", "square", a
    model's sizes) as columns."""
    rounds = {}
    for rec in df.attrs.get("probes", []):
        if rec["status"] == "ok":
            rounds.setdefault((rec["board"], rec["repetition"]), {}).update(rec["values"])
    return pd.DataFrame([{"board": board, "repetition": rep, **values} for (board, rep), values in rounds.items()],
                        columns=["board", "repetition"] if not rounds else None)


def _per_round(g: pd.DataFrame, limits: pd.DataFrame) -> pd.DataFrame:
    """One row per round of one job: each runner's time and the board's probes of that round."""
    times = g.pivot_table(index="repetition", columns="impl", values="ft_time_s").reindex(columns=list(NAMES))
    mine = limits[limits["board"] == g["board"].iloc[0]].drop(columns="board").set_index("repetition")
    return times.join(mine)


def _median_pct(part: pd.Series, rep: pd.DataFrame, column) -> float | None:
    return (100 * part / rep[column]).median() if column in rep.columns and rep[column].notna().any() else None


def speed(df: pd.DataFrame) -> pd.DataFrame | None:
    """Per board, task, seed and method: median times, C's speed-ups and its share of the peaks."""
    ok = _ok(df)
    if ok is None or (df["impl"].nunique() < 2 and not df.attrs.get("probes")):
        return None  # nothing to set the C core against
    limits, rows = probe_values(df), []
    for (board, task, seed, variant), g in ok.groupby([*WHERE, "variant"], sort=False):
        c = g[g["impl"] == "c"]
        if c.empty:
            continue  # the speed-ups are the C core's
        first, rep = c.iloc[0], _per_round(g, limits)
        gflops = 2 * first["ft_macs"] / rep["c"] / 1e9
        spread = g["acc_after"].astype(float)
        rows.append({
            "board": board, "task": task, "seed": seed, "variant": variant, "sizes": first["sizes"],
            "trainable_params": int(first["trainable_params"]), "rounds": int(rep["c"].notna().sum()),
            **{f"{impl}_s": rep[impl].median() for impl in NAMES},
            "speedup_vs_numpy": (rep["numpy"] / rep["c"]).median(),
            "speedup_vs_numpy_spread": spread_pct(rep["numpy"] / rep["c"]),
            "speedup_vs_torch": (rep["torch"] / rep["c"]).median(),
            "c_gflops": gflops.median(),
            "c_pct_of_square_peak": _median_pct(gflops, rep, "square"),
            "c_pct_of_model_peak": _median_pct(gflops, rep, first["sizes"]),
            "c_pct_of_core_ceiling": _median_pct(gflops, rep, "core"),
            # The largest disagreement over all runs, in test samples (every runner trains on one sequence).
            "acc_spread_samples": int(round((spread.max() - spread.min()) * first["n_test"])),
        })
    return pd.DataFrame(rows, columns=list(SPEED_COLUMNS)).rename(columns=SPEED_COLUMNS)


def spread_pct(per_round: pd.Series) -> float | None:
    """The noise of a ratio over rounds: its range as a percentage of its median."""
    per_round = per_round.dropna()
    return 100 * (per_round.max() - per_round.min()) / per_round.median() if len(per_round) > 1 else None


def verdict(table: pd.DataFrame) -> str:
    """One line: on how many methods the C core beats PyTorch by the target factor."""
    against = table["C speed-up vs PyTorch"].dropna()
    if against.empty:
        return "PyTorch did not run, so there is no speed-up against it."
    slow = table[table["C speed-up vs PyTorch"] < TARGET_SPEEDUP]
    head = f"C core at least {TARGET_SPEEDUP:g}× faster than PyTorch on {len(against) - len(slow)} of {len(against)} methods"
    if slow.empty:
        return head + "."
    return head + "; not on: " + ", ".join(f"{m} ({s:.2f}×)" for m, s in zip(slow["method"], slow["C speed-up vs PyTorch"])) + "."


def reduction(df: pd.DataFrame) -> pd.DataFrame | None:
    """skip2-lora's time reduction in % (100 · (1 − t_skip2 / t_rival)) per board, task, seed and
    impl: the median over rounds of the reduction within one round."""
    ok = _ok(df)
    if ok is None:
        return None
    rows = []
    for (board, task, seed, impl), g in ok.groupby([*WHERE, "impl"], sort=False):
        t = g.pivot_table(index="repetition", columns="variant", values="ft_time_s")
        if SKIP2 not in t.columns:
            continue
        row = {"board": board, "task": task, "seed": seed, "impl": NAMES.get(impl, impl), f"{SKIP2} s": t[SKIP2].median()}
        for rival in (r for r in RIVALS if r in t.columns):
            row[f"{rival} s"] = t[rival].median()
            row[f"reduction vs {rival} %"] = (100 * (1 - t[SKIP2] / t[rival])).median()
        rows.append(row)
    return pd.DataFrame(rows)


def epoch_bounds(df: pd.DataFrame) -> pd.DataFrame | None:
    """Per board, task, seed and method: the C runner's first epoch and median later epoch against
    their bounds at the ceiling probed in the same round; each ratio the median over rounds."""
    ok = _ok(df)
    if ok is None or not df.attrs.get("probes"):
        return None
    limits, rows = probe_values(df), []
    if "core" not in limits.columns:
        return pd.DataFrame()
    reads = [c for c in limits.columns if c.startswith("read_")]
    for (board, task, seed, variant), g in ok[ok["impl"] == "c"].groupby([*WHERE, "variant"], sort=False):
        first = g.iloc[0]
        hp = {f.name: first[f.name] for f in HP_FIELDS if f.name in g.columns and _given(first[f.name])}
        work = bounds.epoch_work(variant, [int(v) for v in first["sizes"].split("-")], int(first["n_ft"]), hp)
        per_round = []
        for _, run in g.iterrows():
            limit = limits[(limits["board"] == board) & (limits["repetition"] == run["repetition"])]
            if limit.empty or pd.isna(limit["core"].iloc[0]):
                continue
            limit = limit.iloc[0]
            read_gbs = [(int(col[len("read_"):]), limit[col]) for col in reads]
            first_s, first_by = bounds.bound_s(work["first"], limit["core"], read_gbs)
            later_s, later_by = bounds.bound_s(work["later"], limit["core"], read_gbs)
            epochs = run["epoch_times_s"]
            per_round.append({"first": epochs[0], "first_bound": first_s, "first_by": first_by,
                              "later": float(np.median(epochs[1:])) if len(epochs) > 1 else np.nan,
                              "later_bound": later_s, "later_by": later_by})
        if not per_round:
            continue
        r = pd.DataFrame(per_round)
        rows.append({
            "board": board, "task": task, "seed": seed, "method": variant,
            "epoch 1 ms": 1e3 * r["first"].median(), "epoch 1 bound ms": 1e3 * r["first_bound"].median(),
            "set by": r["first_by"].mode()[0], "epoch 1 / bound": (r["first"] / r["first_bound"]).median(),
            "later epoch ms": 1e3 * r["later"].median(), "later bound ms": 1e3 * r["later_bound"].median(),
            "later set by": r["later_by"].mode()[0], "later epoch / bound": (r["later"] / r["later_bound"]).median(),
        })
    return pd.DataFrame(rows)


def _given(value) -> bool:
    """A record's option that holds a value (a method's own options are empty in older records)."""
    return value is not None and not (isinstance(value, float) and np.isnan(value))


def probes(df: pd.DataFrame) -> pd.DataFrame | None:
    """Per board, probe and value: the median, lowest and highest over rounds; None when the run
    had no probes."""
    recs = [r for r in df.attrs.get("probes", []) if r["probe"] != "products"]  # (a table of its own: phases.py)
    if not recs:
        return None
    rows = [{"board": r["board"], "probe": r["probe"], "value": name, "unit": unit(name), "x": x}
            for r in recs if r["status"] == "ok" for name, x in r["values"].items()]
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows).groupby(["board", "probe", "value", "unit"], sort=False)["x"]
    table = table.agg(["median", "min", "max", "count"]).reset_index().rename(columns={"count": "rounds"})
    return table.sort_values("board", kind="stable")


def unit(value: str) -> str:
    """The unit of a probe's value: read bandwidths in GB/s, product speeds in GFLOP/s."""
    return "GB/s" if value.startswith("read_") else "MHz" if value == "clock_mhz" else "GFLOP/s"
