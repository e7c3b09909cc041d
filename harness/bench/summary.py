"""The benchmark's numbers: median times, C speed-ups, C throughput against the machine's peak.

Written as bench.json (every sample as the runners returned it, plus machine and peaks),
bench.csv (one row per task x seed x method) and bench.md (the tables and the machine).
"""
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from harness.bench import bounds
from harness.provenance import git_state, shown_path
from harness.report.tables import markdown
from skip2_peak import SQUARE

NAMES = {"c": "C", "numpy": "NumPy", "torch": "PyTorch"}
SKIP2, RIVALS = "skip2-lora", ("lora-all", "skip-lora")
# The C core should beat PyTorch by this factor; the verdict line names the methods where it does not.
TARGET_SPEEDUP = 3.0
KEYS = ["task", "seed", "method"]
SPEED = {
    "method": "method", "trainable_params": "params",
    "c_s": "C s", "numpy_s": "NumPy s", "torch_s": "PyTorch s",
    "speedup_vs_numpy": "C speed-up vs NumPy (t_NumPy / t_C)",
    "speedup_vs_torch": "C speed-up vs PyTorch (t_PyTorch / t_C)",
    "c_gflops": "C GFLOP/s", "c_pct_of_square_peak": f"C % of {SQUARE}³ peak",
    "c_pct_of_model_peak": "C % of model-shape peak", "c_pct_of_core_ceiling": "C % of core ceiling",
}
BOUNDS = {
    "method": "method", "first_ms": "epoch 1 ms", "first_bound_ms": "epoch 1 bound ms", "first_limit": "set by",
    "first_x_bound": "epoch 1 / bound", "later_ms": "later epoch ms", "later_bound_ms": "later bound ms",
    "later_limit": "later set by", "later_x_bound": "later epoch / bound",
}
ACCURACY = {
    "method": "method", "acc_before_pct": "acc before %", "acc_after_c_pct": "acc after C %",
    "acc_after_numpy_pct": "acc after NumPy %", "acc_after_torch_pct": "acc after PyTorch %",
    "acc_spread_samples": "acc spread (test samples)",
}


def _paired(g: pd.DataFrame, peaks: pd.DataFrame) -> pd.DataFrame:
    """Per repetition of one method: each runner's time and the peaks measured right after them."""
    times = g.pivot_table(index="rep", columns="impl", values="ft_time_s").reindex(columns=list(NAMES))
    return times.join(peaks.set_index("rep")) if len(peaks) else times


def summarise(samples: pd.DataFrame, peaks: pd.DataFrame) -> pd.DataFrame:
    """One row per task x seed x method: median times, and every ratio as the median over
    repetitions of the ratio within one repetition (runs taken back to back).

    Columns of a runner the board lacked, and of the peak when it was not measured, are empty."""
    rows = []
    for (task, seed, method), g in samples.groupby(["task", "seed", "variant"], sort=False):
        c = g[g["impl"] == "c"].iloc[0]
        mine = peaks[(peaks["task"] == task) & (peaks["seed"] == seed) & (peaks["variant"] == method)] \
            if len(peaks) else peaks
        rep = _paired(g, mine)
        gflops = 2 * c["ft_macs"] / rep["c"] / 1e9
        after = g.groupby("impl")["acc_after"].first().reindex(list(NAMES))
        spread = g["acc_after"].astype(float)
        rows.append({
            "task": task, "seed": seed, "method": method, "model": c["model"],
            "trainable_params": int(c["trainable_params"]), "c_ft_macs": int(c["ft_macs"]),
            **{f"{impl}_s": rep[impl].median() for impl in NAMES},
            "speedup_vs_numpy": (rep["numpy"] / rep["c"]).median(),
            "speedup_vs_torch": (rep["torch"] / rep["c"]).median(),
            "c_gflops": gflops.median(),
            "c_pct_of_square_peak": (100 * gflops / rep["square"]).median() if "square" in rep else None,
            "c_pct_of_model_peak": (100 * gflops / rep[c["model"]]).median() if c["model"] in rep else None,
            "c_pct_of_core_ceiling": (100 * gflops / rep["core"]).median() if "core" in rep else None,
            "acc_before_pct": 100 * c["acc_before"],
            **{f"acc_after_{impl}_pct": _pct(after[impl]) for impl in NAMES},
            # Largest disagreement over all runs, in test samples (the runners train on one sequence).
            "acc_spread_samples": int(round((spread.max() - spread.min()) * c["n_test"]))
            if spread.notna().all() else None,
            "status": ",".join(sorted(set(g["status"]))),
        })
    return pd.DataFrame(rows)


def _pct(value):
    return None if value is None or pd.isna(value) else 100 * value


def reduction(samples: pd.DataFrame) -> pd.DataFrame:
    """skip2-lora's time reduction in % (100 * (1 - t_skip2 / t_rival)) per impl, for one task x
    seed: the median over repetitions of the reduction within one repetition."""
    t = samples.pivot_table(index=["rep", "impl"], columns="variant", values="ft_time_s")
    if SKIP2 not in t.columns:
        return pd.DataFrame()
    rows = []
    for impl, name in NAMES.items():
        if impl not in t.index.get_level_values("impl"):
            continue  # a runner the board lacked
        per_rep = t.xs(impl, level="impl")
        row = {"impl": name, f"{SKIP2} s": per_rep[SKIP2].median()}
        for rival in RIVALS:
            if rival in per_rep.columns:
                row[f"{rival} s"] = per_rep[rival].median()
                row[f"reduction vs {rival} %"] = (100 * (1 - per_rep[SKIP2] / per_rep[rival])).median()
        rows.append(row)
    return pd.DataFrame(rows)


def epoch_bounds(samples: pd.DataFrame, peaks: pd.DataFrame, exp) -> pd.DataFrame:
    """Per method of one task x seed: the C runner's first epoch and median later epoch against
    their bounds (harness/bench/bounds.py) at the ceiling measured right after the same
    repetition; each ratio the median over repetitions."""
    rows = []
    reads = [c for c in peaks.columns if c.startswith("read_")]
    for method, g in samples[samples["impl"] == "c"].groupby("variant", sort=False):
        c = g.iloc[0]
        hp = exp.finetune.for_variant(method)
        work = bounds.epoch_work(method, [int(v) for v in c["model"].split("-")], int(c["n_ft"]), hp.model_dump())
        per_rep = []
        for _, run in g.iterrows():
            limit = peaks[(peaks["variant"] == method) & (peaks["rep"] == run["rep"])].iloc[0]
            read_gbs = [(int(col[len("read_"):]), limit[col]) for col in reads]
            first, first_by = bounds.bound_s(work["first"], limit["core"], read_gbs)
            later, later_by = bounds.bound_s(work["later"], limit["core"], read_gbs)
            epochs = run["epoch_times_s"]
            per_rep.append({"first_s": epochs[0], "first_bound_s": first, "first_limit": first_by,
                            "later_s": float(np.median(epochs[1:])) if len(epochs) > 1 else None,
                            "later_bound_s": later, "later_limit": later_by})
        r = pd.DataFrame(per_rep)
        rows.append({
            "method": method, "first_ms": 1e3 * r["first_s"].median(), "first_bound_ms": 1e3 * r["first_bound_s"].median(),
            "first_limit": r["first_limit"].mode()[0], "first_x_bound": (r["first_s"] / r["first_bound_s"]).median(),
            "later_ms": 1e3 * r["later_s"].median(), "later_bound_ms": 1e3 * r["later_bound_s"].median(),
            "later_limit": r["later_limit"].mode()[0], "later_x_bound": (r["later_s"] / r["later_bound_s"]).median(),
        })
    return pd.DataFrame(rows)


def _blas() -> str | None:
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except (TypeError, KeyError):  # NumPy before 1.26 prints its config only
        return None
    return f"{blas.get('name')} {blas.get('version')}"


def machine(samples: pd.DataFrame, peaks: dict | None, board: dict) -> dict:
    """The board the benchmark ran on (its facts as the target probed them) and the code."""
    git, facts = git_state(), board["facts"]
    runtime = {impl: samples[samples["impl"] == impl].iloc[0]["runtime"] for impl in NAMES
               if impl in set(samples["impl"])}
    c, torch = runtime["c"], runtime.get("torch")
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "board": board["name"], "transport": facts.get("transport"), "emulated": facts.get("emulated"),
        "cpu": facts.get("cpu"), "cores": facts.get("cores"), "platform": facts.get("uname"),
        "python": facts.get("python"), "numpy": facts.get("numpy"),
        "blas": _blas() if facts.get("transport") == "local" else None,
        "torch": torch and f"{torch['torch']} ({torch['threads']} thread)",
        "c_compiler": f"{c.get('compiler')} {c.get('cflags')}",
        "git": git["sha"] and f"{git['sha']}{' (dirty)' if git['dirty'] else ''}",
        "peak_gflops": peaks, "notes": board["notes"],
    }


def _verdict(table: pd.DataFrame) -> str:
    if table["speedup_vs_torch"].isna().all():
        return "PyTorch did not run on this board, so there is no speed-up against it."
    slow = table[table["speedup_vs_torch"] < TARGET_SPEEDUP]
    head = (f"C core at least {TARGET_SPEEDUP:g}× faster than PyTorch on "
            f"{len(table) - len(slow)} of {len(table)} methods")
    if slow.empty:
        return head + "."
    misses = zip(slow["method"], slow["speedup_vs_torch"])
    return head + "; not on: " + ", ".join(f"{m} ({s:.2f}×)" for m, s in misses) + "."


def _markdown(experiment: Path, exp, reps: int, table: pd.DataFrame, samples: pd.DataFrame, peaks: pd.DataFrame,
              facts: dict) -> str:
    hp = exp.finetune
    lines = [
        "# Fine-tuning speed: C core vs NumPy vs PyTorch", "",
        f"Board **{facts['board']}** ({facts['transport']}{', ' + facts['emulated'] if facts['emulated'] else ''}). "
        f"Experiment `{shown_path(experiment)}`: {hp.epochs} epochs, batch {hp.batch_size}, lr {hp.lr:g}, "
        f"rank {hp.rank}, scale {hp.scale:g}. {reps} runs per runner and method, interleaved C, NumPy, PyTorch, C, … in one "
        "session; times are medians of `ft_time_s`, the fine-tuning loop timed by each runner itself "
        "(process start, loading and evaluation excluded). All three run on one thread: the C core by "
        "design, NumPy with OPENBLAS_NUM_THREADS=1, PyTorch with torch.set_num_threads(1).", "",
        "Speed-up = t(other) / t(C): how many times faster the C core is (below 1: the C core is slower). "
        "C GFLOP/s = 2 · ft_macs / t(C), against the single-thread sgemm peak of NumPy's BLAS on this "
        f"board for a {SQUARE}³ product and for the model's own products (forward, dW and dx of one step), "
        "measured right after each repetition's runs. Every ratio is the median over repetitions of the "
        "ratio within one repetition (runs taken back to back), never a ratio of medians of separate runs. "
        "The core's ceiling (`skip2run --ceiling`, measured beside the peak) is the best GFLOP/s of the C core's "
        "own product on operands in cache, built as the runner is: what the core's code can reach, beside what "
        "a tuned BLAS reaches.", "",
        "Epoch bounds: an epoch cannot beat its MACs at the core's ceiling (compute) nor the bytes it reads at the "
        "read bandwidth measured for a working set of its size (memory); its bound is the larger. The first epoch "
        "of a cached method also runs the frozen forward over every sample.", "",
        *[f"*Note: {note}.*\n" for note in facts["notes"]],
    ]
    for (task, seed), g in table.groupby(["task", "seed"], sort=False):
        lines += [f"## {task}, seed {seed}, model {g['model'].iloc[0]}", "", _verdict(g), "",
                  markdown(g[list(SPEED)].rename(columns=SPEED)), "", "Accuracy:", "",
                  markdown(g[list(ACCURACY)].rename(columns=ACCURACY)), ""]
        red = reduction(samples[(samples["task"] == task) & (samples["seed"] == seed)])
        if len(red):
            lines += ["Skip2-LoRA time reduction per implementation:", "", markdown(red), ""]
        here = samples[(samples["task"] == task) & (samples["seed"] == seed)]
        if "core" in peaks:
            lines += ["C core epochs against their bounds:", "",
                      markdown(epoch_bounds(here, peaks[(peaks["task"] == task) & (peaks["seed"] == seed)], exp)
                               .rename(columns=BOUNDS)), ""]
    peaks = facts["peak_gflops"] or {}
    shown = {
        "Board": facts["board"] + (f" ({facts['emulated']})" if facts["emulated"] else ""),
        "CPU": f"{facts['cpu']} ({facts['cores']} cores)", "Platform": facts["platform"],
        "Python": facts["python"], "NumPy": facts["numpy"] and facts["numpy"] + (f" ({facts['blas']})" if facts["blas"] else ""),
        "PyTorch": facts["torch"], "C compiler": facts["c_compiler"], "Git": facts["git"], "Created": facts["created"],
        "Peak sgemm, one thread (median of the repetitions)": "; ".join(
            f"{f'{SQUARE}³' if k == 'square' else f'model {k}'} {v:.1f} GFLOP/s" for k, v in peaks.items()
            if k != "core" and not k.startswith("read_")),
        "C core ceiling (median of the repetitions)": "core" in peaks and f"{peaks['core']:.1f} GFLOP/s",
        "Read bandwidth by working set": "; ".join(
            f"{int(k[len('read_'):]) >> 10} KiB {v:.0f} GB/s" for k, v in peaks.items() if k.startswith("read_")),
    }
    lines += ["## Machine", "", *[f"- **{k}:** {v}" for k, v in shown.items() if v]]
    return "\n".join(lines) + "\n"


def write(out: Path, experiment: Path, exp, reps: int, samples: list, peaks: list, board: dict) -> str:
    """Writes bench.json, bench.csv and bench.md into `out`; returns the Markdown."""
    df, per_rep = pd.DataFrame(samples), pd.DataFrame(peaks)
    table = summarise(df, per_rep)
    medians = per_rep.drop(columns=["task", "seed", "variant", "model", "rep"]).median().to_dict() if peaks else None
    facts = machine(df, medians, board)
    (out / "bench.json").write_text(json.dumps(
        {"experiment": shown_path(experiment), "reps": reps, "machine": facts, "samples": samples,
         "peaks": peaks}, indent=1))
    table.to_csv(out / "bench.csv", index=False)
    text = _markdown(experiment, exp, reps, table, df, per_rep, facts)
    (out / "bench.md").write_text(text)
    return text
