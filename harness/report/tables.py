"""The report's tables as numeric DataFrames (written as CSV), and their Markdown rendering."""
import math

import numpy as np
import pandas as pd

from harness import kinds
from harness.report.load import HPARAMS, impl_key, ordered, scored, sort_rows, sweep_keys, training_memory_kib
from harness.schema import COMPARATORS

PHASES = {"fwd_s": "fwd_time_s", "bwd_s": "bwd_time_s", "upd_s": "upd_time_s", "cache_s": "cache_time_s"}
SKIP2, RIVALS = "skip2-lora", ("lora-all", "skip-lora")
# Accuracies are fractions of a test set: anything above float noise is a real difference.
ACC_TOLERANCE = 1e-9


def impls(df: pd.DataFrame) -> list:
    return ordered(df["impl"], key=impl_key)


def accuracy(df: pd.DataFrame) -> pd.DataFrame:
    """acc_before/acc_after in percent, mean and std over seeds (and boards), per task x variant.

    Repetitions repeat the same training for timing, so they are averaged per job first: counting
    them as samples would shrink the std without new evidence. n counts jobs, fail the records
    that diverged.
    """
    rows = scored(df)
    keys = ["task", "variant", *(["impl"] if len(impls(df)) > 1 else []), *sweep_keys(df)]
    if rows.empty:
        return pd.DataFrame(columns=keys)
    acc = rows.assign(acc_before=rows["acc_before"] * 100, acc_after=rows["acc_after"] * 100,
                      failed=rows["status"].eq("fail"))
    job_keys = list(dict.fromkeys([*keys, "job_id", "board", "impl"]))
    jobs = acc.groupby(job_keys, dropna=False).agg(
        acc_before=("acc_before", "mean"), acc_after=("acc_after", "mean"), failed=("failed", "sum"))
    table = jobs.groupby(keys, dropna=False).agg(
        acc_before_mean=("acc_before", "mean"), acc_before_std=("acc_before", "std"),
        acc_after_mean=("acc_after", "mean"), acc_after_std=("acc_after", "std"),
        n=("failed", "size"), fail=("failed", "sum"))
    return sort_rows(table.reset_index())


def time(df: pd.DataFrame) -> pd.DataFrame:
    """Mean fine-tuning time and its split, cost counts and memory per task x variant x impl x board."""
    rows = scored(df)
    keys = ["task", "variant", "impl", "board", *sweep_keys(df)]
    if rows.empty:
        return pd.DataFrame(columns=keys)
    rows = rows.assign(hit_pct=rows["cache_hit_rate"] * 100,
                       peak_rss_mib=rows["peak_rss_bytes"] / 2**20,
                       mem_kib=training_memory_kib(rows))
    table = rows.groupby(keys, dropna=False).agg(
        ft_time_s=("ft_time_s", "mean"), **{name: (col, "mean") for name, col in PHASES.items()},
        ft_macs=("ft_macs", "median"), trainable_params=("trainable_params", "median"),
        **{"cache_hit_%": ("hit_pct", "mean"), "peak_rss_MiB": ("peak_rss_mib", "mean"),
           "mem_total_KiB": ("mem_kib", "mean")},
        n=("status", "size"))
    # MACs and parameter counts are exact counts, not measurements.
    table[["ft_macs", "trainable_params"]] = table[["ft_macs", "trainable_params"]].round().astype("Int64")
    return sort_rows(table.reset_index())


def reduction(df: pd.DataFrame) -> pd.DataFrame:
    """skip2-lora's time and MAC reduction in % (100 * (1 - skip2 / rival)) per task x impl x board."""
    rows = scored(df)
    # Rivals in their plain variants only: a rival run with a cache option is not the paper's
    # counterpart. skip2-lora in each variant run (its int8 cache too), a row each.
    rows = rows[(rows["variant"].eq(rows["method"]) & rows["method"].isin(RIVALS)) | rows["method"].eq(SKIP2)]
    keys = ["task", "impl", "board", *sweep_keys(rows)]
    table = _means(rows[rows["method"].eq(SKIP2)], [*keys, "variant"], SKIP2)
    if table.empty:
        return pd.DataFrame(columns=keys)
    for rival in RIVALS:
        theirs = rows[rows["method"].eq(rival)]
        # A swept setting the rival does not have (a cache budget, say) matches every value of it.
        shared = [k for k in keys if theirs[k].notna().any()]
        if theirs.empty:
            table[[f"{rival}_time_s", f"{rival}_macs"]] = np.nan
        else:
            table = table.merge(_means(theirs, shared, rival), on=shared, how="left")
    for measure, suffix in (("time", "time_s"), ("macs", "macs")):
        for rival in RIVALS:
            ratio = table[f"{SKIP2}_{suffix}"] / table[f"{rival}_{suffix}"]
            table[f"{measure}_red_vs_{rival}_%"] = 100 * (1 - ratio)
    return sort_rows(table.drop(columns=[f"{m}_macs" for m in (SKIP2, *RIVALS)]))


def _means(rows: pd.DataFrame, keys: list, method: str) -> pd.DataFrame:
    """Mean fine-tuning time and MACs of one method per key, named after the method."""
    means = rows.groupby(keys, dropna=False)[["ft_time_s", "ft_macs"]].mean().reset_index()
    return means.rename(columns={"ft_time_s": f"{method}_time_s", "ft_macs": f"{method}_macs"})


def agreement(df: pd.DataFrame) -> pd.DataFrame | None:
    """Per job run by several impls: acc_after and ft_macs per impl, and whether they agree.

    None when the run used a single implementation.
    """
    names = impls(df)
    if len(names) < 2:
        return None
    keys = ["task", "variant", "board", "seed", *HPARAMS]
    rows = []
    for key, job in scored(df).groupby(keys, dropna=False):
        if job["impl"].nunique() < 2:
            continue
        by_impl = job.groupby("impl")
        acc = by_impl["acc_after"].mean() * 100
        macs = by_impl["ft_macs"].first()
        # Across all records of the job, so a repetition that disagrees with itself shows too.
        spread = (job["acc_after"].max() - job["acc_after"].min()) * 100
        # The benchmark's comparators (PyTorch) count no MACs; the impls that count them must agree.
        counted = job[~job["impl"].isin(COMPARATORS)]["ft_macs"]
        macs_equal = counted.nunique(dropna=False) <= 1
        row = dict(zip(keys, key))
        row.update({f"acc_after_%[{i}]": acc.get(i, np.nan) for i in names})
        row["max_diff_pts"] = spread
        row.update({f"ft_macs[{i}]": macs.get(i, pd.NA) for i in names})
        row["macs_equal"] = macs_equal
        checks = (("status", job["status"].nunique() > 1), ("acc", spread > ACC_TOLERANCE * 100),
                  ("macs", not macs_equal))
        row["flag"] = ", ".join(name for name, bad in checks if bad)
        rows.append(row)
    table = pd.DataFrame(rows, columns=[*keys, *[f"acc_after_%[{i}]" for i in names], "max_diff_pts",
                                        *[f"ft_macs[{i}]" for i in names], "macs_equal", "flag"])
    # Hyper-parameters that were not swept are implied by the variant and add nothing to a row.
    return sort_rows(table.drop(columns=[h for h in HPARAMS if h not in sweep_keys(df)]))


def fit(df: pd.DataFrame) -> pd.DataFrame | None:
    """Per MCU board and method: what fit, instructions and emulated time of fine-tuning, MACs per
    instruction, measured memory per RAM region and flash, input bytes streamed and their transfer
    time, and for each refused job the board's reason; where there were any, the frames the host
    dropped as not the job's and the bytes received during counted work (a disturbed count).
    None when no MCU board ran."""
    mcu = df[df["board_kind"].isin(kinds.microcontrollers())]
    if mcu.empty:
        return None
    rows = []
    for (board, task, variant), g in mcu.groupby(["board", "task", "variant"], sort=False):
        measured = g[g["mcu_memory"].notna()]
        row = {"board": board, "task": task, "variant": variant,
               "status": ",".join(sorted(set(g["status"])))}
        if len(measured):
            first = measured.iloc[0]
            mem = first["mcu_memory"]
            row["instructions"] = measured["ft_instructions"].median()
            row["ft_s"] = measured["ft_time_s"].median()
            row["MACs/instr"] = first["ft_macs"] / first["ft_instructions"] if first["ft_instructions"] else None
            # The cycle model's estimate, where it ran: cycles, and seconds at the nominal clock.
            row["cycles_est"] = measured["ft_cycles_est"].median()
            row["ft_s_cycles"] = row["cycles_est"] / first["runtime"]["clock_hz"]
            row["streamed_kB"] = measured["streamed_bytes"].median() / 1000
            row["transfer_s"] = measured["transfer_time_s"].median()
            for name, use in mem["ram"].items():
                row[f"{name}_KB"] = use["used"] / 1024
                row[f"{name}_of_KB"] = use["size"] / 1024
            row["flash_KB"] = (mem["flash"]["firmware"] + mem["flash"]["model"] + mem["flash"].get("data", 0)) / 1024
            for part in ("arena", "store"):  # records before the store could sit apart have none
                row[f"{part}_KB"] = sum(u.get(part, 0) for u in mem["ram"].values()) / 1024
                row[f"{part}_in"] = ",".join(name for name, u in mem["ram"].items() if u.get(part))
            row["stack_B"] = max(u["stack"] for u in mem["ram"].values())
            row["dropped_frames"] = measured["dropped_frames"].sum()
            row["bytes_during_compute"] = measured["link_bytes_during_compute"].max()
        refused = g[g["status"].eq("unsupported")]
        row["why refused"] = refused["reason"].iloc[0] if len(refused) else ""
        rows.append(row)
    table = pd.DataFrame(rows)
    quiet = [c for c in ("dropped_frames", "bytes_during_compute", "cycles_est", "ft_s_cycles")
             if c in table and not table[c].fillna(0).any()]
    return sort_rows(table.drop(columns=quiet))


def status(df: pd.DataFrame) -> pd.DataFrame:
    """Counts of ok / fail / error records per task x variant x impl."""
    counts = pd.crosstab([df["task"], df["variant"], df["impl"]], df["status"].fillna("?"))
    counts = counts.reindex(columns=[*("ok", "fail", "error"),
                                     *sorted(set(counts.columns) - {"ok", "fail", "error"})], fill_value=0)
    counts["total"] = counts.sum(axis=1)
    counts.columns.name = None
    return sort_rows(counts.reset_index())


def problems(df: pd.DataFrame) -> pd.DataFrame:
    """Every record that is not ok: its job, where it ran, and why it stopped."""
    bad = df[df["status"].ne("ok")]
    table = bad[["status", "job_id", "task", "variant", "board", "impl", "seed"]].copy()
    table["why"] = bad["error"].astype(object).fillna(bad["reason"])
    table["stderr_last_line"] = bad["stderr_tail"].map(_last_line)
    # Infrastructure errors first: they are the ones to fix before trusting the run.
    return table.sort_values("status", key=lambda s: s.ne("error"), kind="stable").reset_index(drop=True)


def _last_line(text) -> str | None:
    lines = [line for line in str(text).splitlines() if line.strip()] if isinstance(text, str) else []
    return lines[-1].strip() if lines else None


def shown(table: pd.DataFrame, merge_mean_std: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, list]:
    """A numeric table as people read it, one rendering for the Markdown and the HTML report: its
    cells as text, each cell's sort key (its number; None for text) and each column's alignment.

    With merge_mean_std, columns "x_mean" and "x_std" become one column "x [%]" of "mean ± std"
    (sorted by the mean).
    """
    text = {c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])}
    keys = table.copy()
    if merge_mean_std:
        table = _merge_mean_std(table)
        keys = table.assign(**{f"{c.removesuffix('_mean')} [%]": keys[c] for c in keys.columns if c.endswith("_mean")})
    cells = pd.DataFrame({c: [_format(c, v) for v in table[c]] for c in table.columns})
    sort = pd.DataFrame({c: [None if c in text or _missing(v) else float(v) for v in keys[c]] for c in table.columns})
    return cells, sort, ["left" if c in text else "right" for c in table.columns]


def markdown(table: pd.DataFrame, merge_mean_std: bool = False) -> str:
    """Render a numeric table as Markdown (see shown)."""
    cells, _, align = shown(table, merge_mean_std)
    # Error messages may hold pipes, which would break the Markdown table.
    cells = cells.apply(lambda column: column.str.replace("|", "\\|", regex=False))
    return cells.to_markdown(index=False, disable_numparse=True, colalign=align)


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _merge_mean_std(table: pd.DataFrame) -> pd.DataFrame:
    out = table.copy()
    for mean in [c for c in table.columns if c.endswith("_mean")]:
        base = mean.removesuffix("_mean")
        std = table[f"{base}_std"]
        out.insert(out.columns.get_loc(mean), f"{base} [%]",
                   [_mean_std(m, s) for m, s in zip(table[mean], std)])
        out = out.drop(columns=[mean, f"{base}_std"])
    return out


def _mean_std(mean, std) -> str:
    if pd.isna(mean):
        return "–"
    # A single sample has no spread to show.
    return f"{mean:.2f}" if pd.isna(std) else f"{mean:.2f} ± {std:.2f}"


def _format(column: str, value) -> str:
    """Readable cells: counts with thousands separators, percentages to 0.1, other numbers to 3 digits."""
    if _missing(value):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{value:,}"
    if isinstance(value, (float, np.floating)):
        if column.startswith("acc") or column.endswith("_pts"):
            return f"{value:.2f}"
        if "%" in column:
            return f"{value:.1f}"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    return " ".join(str(value).split())  # (newlines would break a Markdown table)
