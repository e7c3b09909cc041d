"""MACs per instruction of an MCU's fine-tuning, phase by phase: the records' fwd, bwd and upd
instruction counts (QEMU -icount: exact) against the MACs of each phase, counted as the core
counts them (docs/methods.md) and checked against the record's ft_macs; and product by product,
from the products probe."""
import math

import pandas as pd

from harness import kinds
from harness.mcu import products as step
from harness.report.load import ReportError

PHASES = ("fwd", "bwd", "upd")


class PhaseCountError(ReportError):
    """The phases' MACs of a record do not add up to its ft_macs: the count here is wrong."""


def phase_macs(r: dict, sizes: list) -> dict:
    """The MACs of a finished job's fwd, bwd and upd phases (docs/methods.md: products m*k*n,
    one per trained scalar per SGD step; the frozen prefix in fwd, over the cache misses when
    the job caches it)."""
    method, rank = r["method"], r["rank"]
    N, M, C = sizes[:-1], sizes[1:], sizes[-1]
    layers = [n * m for n, m in zip(N, M)]
    epochs = len(r["epoch_loss"])
    rows, steps = r["n_ft"] * epochs, epochs * math.ceil(r["n_ft"] / r["batch_size"])
    prefix = 0
    if method in ("ft-all", "ft-bias", "lora-all"):  # per row
        fwd, bwd = sum(layers), sum(layers[1:])  # dx of every layer but the first
        if method == "ft-all":
            bwd += sum(layers)  # dW
        if method == "lora-all":
            fwd += rank * sum(n + m for n, m in zip(N, M))  # x A, u B
            bwd += rank * sum(2 * m + n for n, m in zip(N, M)) + rank * sum(N[1:])  # dB, du, dA; du A^T
    else:
        prefix = sum(layers[:-1]) + (0 if method == "ft-last" else layers[-1])
        if method == "ft-last":
            fwd = bwd = layers[-1]
        else:
            adapted = N[-1:] if method == "lora-last" else N
            fwd = rank * (sum(adapted) + len(adapted) * C)
            bwd = rank * (sum(adapted) + 2 * len(adapted) * C)
    prefix_rows = r["cache_misses"] if r["cache_capacity_samples"] else rows
    macs = {"fwd": rows * fwd + prefix_rows * prefix, "bwd": rows * bwd, "upd": steps * r["trainable_params"]}
    if sum(macs.values()) != r["ft_macs"]:
        raise PhaseCountError(f"{r['variant']}: the phases' MACs {macs} do not add up to the record's ft_macs "
                              f"{r['ft_macs']}; harness/report/phases.py counts differently from the core")
    return macs


# The methods whose phases the count above knows (the rivals' own phases are not split here).
COUNTED = ("ft-all", "ft-bias", "ft-last", "lora-all", "lora-last", "skip-lora", "skip2-lora")


def phases(df: pd.DataFrame) -> pd.DataFrame | None:
    """Per MCU board, task and variant: each phase's MACs, instructions and MACs per instruction,
    and the cache's instructions; None when no MCU board counted instructions."""
    mcu = df[df["board_kind"].isin(kinds.microcontrollers()) & (df["status"] == "ok")]
    mcu = mcu[mcu["ft_instructions"].notna() & mcu["sizes"].notna() & mcu["method"].isin(COUNTED)]
    if mcu.empty:
        return None
    rows = []
    for (board, task, variant), g in mcu.groupby(["board", "task", "variant"], sort=False):
        r = g.iloc[0]  # instruction counts are exact: every repetition has the same
        macs = phase_macs(r, [int(v) for v in r["sizes"].split("-")])
        row = {"board": board, "task": task, "method": variant}
        for phase in PHASES:
            count = _count(r[f"{phase}_instructions"])
            row.update({f"{phase} MACs": int(macs[phase]), f"{phase} instructions": count,
                        f"{phase} MAC/instr": macs[phase] / count if count else None})
        row["cache instructions"] = _count(r["cache_instructions"])
        rows.append(row)
    return pd.DataFrame(rows)


def _count(value) -> int | None:
    """An instruction count as an integer (the records' frame holds counts as floats beside gaps)."""
    return None if pd.isna(value) else int(value)


def products(df: pd.DataFrame) -> pd.DataFrame | None:
    """Per MCU board and product of one training step (the products probe): its MACs, its
    instructions (emulated: exact) or median seconds (a real board), MACs per instruction or per
    second, and its result's bits; then per group (dense, rank, adapter, skip) the sums. None when
    no products probe finished."""
    recs = [r for r in df.attrs.get("probes", []) if r["probe"] == "products" and r["status"] == "ok"]
    if not recs:
        return None
    rows = []
    for board in dict.fromkeys(r["board"] for r in recs):
        mine = [r["values"] for r in recs if r["board"] == board]
        sums = {}
        for p in next(r for r in recs if r["board"] == board)["workload"]["products"]:
            name, macs = p["name"], step.macs(p)
            row = {"board": board, "product": name, "MACs": macs, **_cost([v.get(f"instructions {name}") for v in mine],
                                                                          [v.get(f"seconds {name}") for v in mine], macs)}
            bits = {v[f"bits {name}"] for v in mine if f"bits {name}" in v}
            row["bits"] = "differ" if len(bits) > 1 else f"{int(bits.pop()):08x}" if bits else ""
            needs = mine[0].get(f"bytes {name}")
            row["fits"] = "yes" if needs is None else f"needs {needs / 1024:.0f} KB"
            rows.append(row)
            if needs is None:
                total = sums.setdefault(step.group(name), [0, 0.0, 0.0])
                total[0] += macs
                total[1] += row["instructions"] or 0
                total[2] += row["seconds"] or 0
        for group, (macs, count, seconds) in sums.items():
            rows.append({"board": board, "product": f"all {group}", "MACs": macs,
                         **_cost([count or None], [seconds or None], macs), "bits": "", "fits": ""})
    table = pd.DataFrame(rows).astype({"instructions": "Int64"})  # counts, with gaps where none was made
    return table.drop(columns=[c for c in ("seconds", "MAC/s", "instructions", "MAC/instr") if table[c].isna().all()])


def _cost(counts: list, seconds: list, macs: int) -> dict:
    """Instructions (equal in every round: exact) or the median seconds, and MACs per either."""
    count = counts[0] if counts and counts[0] is not None else None
    secs = float(pd.Series(seconds, dtype=float).median()) if any(s is not None for s in seconds) else None
    return {"instructions": _count(count), "MAC/instr": macs / count if count else None,
            "seconds": secs, "MAC/s": macs / secs if secs else None}
