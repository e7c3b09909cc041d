"""`skip2bench compare BASE NEW`: every job of NEW held against the same job of BASE on the same
board identity, metric by metric, with a verdict per metric and one for the whole.

- exact metrics (counted, never sampled): ft_macs, trainable_params, the emulated instruction
  counts per phase, the analytic memory, an MCU's static RAM and flash per region; any change is
  one (more is worse);
- times (ft_time_s over repetitions): worse or better only past a factor *and* significant
  (stats.py); emulated times are instruction counts, compared exactly above instead. Runs taken
  in different sessions are normalised by each run's ceiling probe of the board, where both have
  one;
- accuracy after, per task, method, impl and board: the mean over seeds, paired over the seeds
  both sides ran, against a tolerance in points;
- memory high-water marks (peak RSS, an MCU's stack): within a tolerance;
- status: a job that finished in BASE and not in NEW.
"""
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness.errors import UserError
from harness.mcu.result import instructions
from harness.records import FINISHED, RecordLog, record_key
from harness.regress import stats
from harness.regress.defaults import ACC_TOLERANCE_POINTS, CATEGORIES, MEMORY_TOLERANCE
from harness.rundir import read_manifest
from harness.targets.facts import board_identity, cpu_words, software

EXACT = ("ft_macs", "trainable_params", "ft_instructions", "ft_cycles_est", "fwd_instructions", "bwd_instructions",
         "upd_instructions", "cache_instructions", "mem_weights_bytes", "mem_grads_bytes", "mem_optimizer_bytes",
         "mem_activations_bytes", "mem_cache_bytes")
# An emulated board times its phases in timer ticks (40 instructions on the mps2-an386): a tick
# near a phase switch may fall on either side of it as the host's pace shifts the timer's phase,
# so a phase's count is the same within this many ticks; the whole job's count is exact.
PHASE_TICKS = 2
PHASE_COUNTS = ("fwd_instructions", "bwd_instructions", "upd_instructions", "cache_instructions")
TIMES = ("ft_time_s",)
SIGNS = {"worse": "+", "better": "-", "not significant": "~", "not comparable": "x", "too few samples": "?",
         "same": ""}


@dataclass(frozen=True)
class Options:
    factors: dict = field(default_factory=dict)   # time metric -> factor (default stats.FACTOR)
    alpha: float = stats.ALPHA
    acc_tolerance: float = ACC_TOLERANCE_POINTS    # points of accuracy
    memory_tolerance: float = MEMORY_TOLERANCE     # a fraction of the base's high-water mark
    across_boards: bool = False
    normalise: bool = True                         # times of different sessions by their ceiling probes


@dataclass(eq=False)  # (a side is itself, whatever it holds: a key of the tables below)
class Side:
    """One side of a comparison: the latest record of every job of one or more runs."""
    label: str
    jobs: list
    facts: dict            # board -> its facts (the run's manifest)
    ceilings: dict         # board -> median of its ceiling probes' core GFLOP/s
    runs: dict             # run id -> git sha of the harness that made it

    @classmethod
    def read(cls, label: str, run_dirs: list) -> "Side":
        latest, facts, runs = {}, {}, {}
        for run_dir in run_dirs:
            if not (run_dir / "records.jsonl").is_file():
                raise UserError(f"{run_dir} holds no records.jsonl: name a run directory or a baseline")
            manifest = read_manifest(run_dir)
            for board, entry in manifest.get("boards", {}).items():
                facts[board] = entry.get("facts") or {}
            runs[manifest.get("run_id", run_dir.name)] = (manifest.get("git") or {}).get("sha")
            for rec in RecordLog(run_dir / "records.jsonl").read():
                latest[(rec["run_id"], rec["record_type"], *record_key(rec))] = rec  # runs may share keys (ab's rounds)
        jobs = [r for r in latest.values() if r["record_type"] == "job"]
        cores = {}
        for r in latest.values():
            if r["record_type"] == "probe" and r["probe"] == "ceiling" and r["status"] == "ok":
                cores.setdefault(r["board"], []).append(r["values"]["core"])
        return cls(label, jobs, facts, {b: float(np.median(v)) for b, v in cores.items()}, runs)


def check_boards(base: Side, new: Side, across_boards: bool) -> list:
    """The boards both sides ran on; refused when one of them is not the same board on both sides."""
    shared = sorted({r["board"] for r in base.jobs} & {r["board"] for r in new.jobs})
    if not shared:
        raise UserError(f"{base.label} and {new.label} share no board: compare runs of the same lab")
    for board in shared:
        a, b = base.facts.get(board, {}), new.facts.get(board, {})
        if board_identity(a) != board_identity(b) and not across_boards:
            raise UserError(f"board {board} is not the same board in {base.label} ({_words(a)}) and {new.label} "
                            f"({_words(b)}): compare runs on the same board, or pass --across-boards")
    return shared


def _words(facts: dict) -> str:
    return cpu_words(facts) or facts.get("board") or f"identity {board_identity(facts)}"


def software_changes(base: Side, new: Side, boards: list) -> list:
    """What changed in the software under test, per board: "board: numpy 2.1 -> 2.2"."""
    lines = []
    for board in boards:
        a, b = software(base.facts.get(board, {})), software(new.facts.get(board, {}))
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                lines.append(f"{board}: {key} {_short(a.get(key))} -> {_short(b.get(key))}")
    return lines


def _runs(side: Side) -> str:
    return ", ".join(f"{run} (git {(sha or '?')[:12]})" for run, sha in side.runs.items())


def _short(value) -> str:
    text = str(value)
    return text[:12] if len(text) == 64 else text  # a hash


def compare(base: Side, new: Side, options: Options) -> pd.DataFrame:
    """One row per job (or per method, for accuracy) and metric, with its mark."""
    boards = check_boards(base, new, options.across_boards)
    normalised = options.normalise and not set(base.runs) & set(new.runs)
    by_job = {side: _by_job(side, boards) for side in (base, new)}
    rows = []
    for key in sorted(set(by_job[base]) & set(by_job[new])):
        a, b = by_job[base][key], by_job[new][key]
        where = dict(zip(("board", "task", "variant", "impl", "job_id"), key))
        ok_a, ok_b = _finished(a), _finished(b)
        if ok_a and not ok_b:
            rows.append({**where, "category": "status", "metric": "status", "base": "ok",
                         "new": b[-1]["status"], "mark": "worse"})
            continue
        if not (ok_a and ok_b):
            continue
        rows += _exact(where, ok_a, ok_b, base.facts.get(where["board"], {}))
        rows += _times(where, ok_a, ok_b, base, new, options, normalised)
        rows += _memory(where, ok_a, ok_b, options)
    rows += _accuracy(by_job[base], by_job[new], options)
    table = pd.DataFrame(rows, columns=["board", "task", "variant", "impl", "job_id", "category", "metric", "base",
                                        "new", "ratio", "low", "high", "p", "normalised", "mark"])
    table["sign"] = table["mark"].map(SIGNS)
    return table


def _by_job(side: Side, boards: list) -> dict:
    out = {}
    for r in side.jobs:
        if r["board"] in boards:
            out.setdefault((r["board"], r["task"], r["variant"], r["impl"], r["job_id"]), []).append(r)
    return out


def _finished(recs: list) -> list:
    return [r for r in recs if r["status"] in FINISHED]


def slack(metric: str, facts: dict, epochs: int | None) -> int:
    """How far a count may move and be the same on a board of these facts: an emulated board's
    counts are read off its timer, each timed stretch (an epoch, between progress reports) exact
    to a tick at either end, whose phase follows when the host's frames arrived; so the job's
    count by one tick per epoch and a phase's share by PHASE_TICKS more (the rounding at its
    switches). Every other count not at all."""
    if metric not in ("ft_instructions", *PHASE_COUNTS) or not facts.get("ticks_per_second"):
        return 0
    ticks = (epochs or 1) + (PHASE_TICKS if metric in PHASE_COUNTS else 0)
    return instructions(ticks, facts["ticks_per_second"])


def _exact(where: dict, a: list, b: list, facts: dict) -> list:
    rows = []
    for metric, x, y in [(m, a[0].get(m), b[0].get(m)) for m in EXACT] + _static(a[0], b[0]):
        if x is None and y is None:
            continue
        if x is None or y is None:
            mark = "not comparable"
        else:
            mark = "same" if abs(y - x) <= slack(metric, facts, a[0].get("epochs")) else "worse" if y > x else "better"
        rows.append({**where, "category": "exact", "metric": metric, "base": x, "new": y,
                     "ratio": y / x if x and y is not None else None, "mark": mark})
    return rows


def _static(a: dict, b: dict) -> list:
    """An MCU's static RAM per region and its firmware's flash bytes, as (metric, base, new)."""
    ma, mb = a.get("mcu_memory") or {}, b.get("mcu_memory") or {}
    out = [(f"static_{region}_bytes", part.get("static"), (mb.get("ram") or {}).get(region, {}).get("static"))
           for region, part in (ma.get("ram") or {}).items()]
    if ma.get("flash"):
        out.append(("firmware_flash_bytes", ma["flash"].get("firmware"), (mb.get("flash") or {}).get("firmware")))
    return out


def _times(where, a, b, base: Side, new: Side, options: Options, normalised: bool) -> list:
    if a[0].get("time_kind") == "emulated":  # instruction counts: compared exactly
        return []
    scale = {side: side.ceilings.get(where["board"]) for side in (base, new)}
    scaled = normalised and all(scale.values())
    rows = []
    for metric in TIMES:
        x = np.array([r[metric] for r in a if r.get(metric)]) * (scale[base] if scaled else 1)
        y = np.array([r[metric] for r in b if r.get(metric)]) * (scale[new] if scaled else 1)
        if not len(x) or not len(y):
            continue
        v = stats.time_verdict(x, y, options.factors.get(metric, stats.FACTOR), options.alpha)
        rows.append({**where, "category": "time", "metric": metric, "base": float(np.median(x)),
                     "new": float(np.median(y)), "ratio": v.ratio, "low": v.low, "high": v.high, "p": v.p,
                     "normalised": "by ceiling" if scaled else "", "mark": v.mark})
    return rows


def _memory(where, a, b, options: Options) -> list:
    rows = []
    marks = [("peak_rss_bytes", lambda r: r.get("peak_rss_bytes"))]
    regions = ((a[0].get("mcu_memory") or {}).get("ram") or {})
    marks += [(f"stack_{region}_bytes", lambda r, region=region: ((r.get("mcu_memory") or {}).get("ram") or {})
               .get(region, {}).get("stack")) for region in regions]
    for metric, get in marks:
        x, y = [get(r) for r in a if get(r)], [get(r) for r in b if get(r)]
        if not x or not y:
            continue
        x, y = float(np.median(x)), float(np.median(y))
        mark = ("worse" if y > x * (1 + options.memory_tolerance) else
                "better" if y < x * (1 - options.memory_tolerance) else "same")
        rows.append({**where, "category": "memory", "metric": metric, "base": x, "new": y, "ratio": y / x,
                     "mark": mark})
    return rows


def _accuracy(base: dict, new: dict, options: Options) -> list:
    """Per board, task, method and impl: the mean accuracy after over seeds, in points, paired over
    the seeds both sides ran."""
    def per_seed(by_job: dict) -> dict:
        out = {}
        for (board, task, variant, impl, _), recs in by_job.items():
            for r in _finished(recs):
                if r.get("acc_after") is not None:
                    out.setdefault((board, task, variant, impl), {}).setdefault(r["seed"], []).append(r["acc_after"])
        return out
    a, b = per_seed(base), per_seed(new)
    rows = []
    for key in sorted(set(a) & set(b)):
        seeds = sorted(set(a[key]) & set(b[key])) or None  # paired, when both ran the same seeds
        x = 100 * np.mean([np.mean(v) for s, v in a[key].items() if seeds is None or s in seeds])
        y = 100 * np.mean([np.mean(v) for s, v in b[key].items() if seeds is None or s in seeds])
        diff = y - x
        mark = ("worse" if diff < -options.acc_tolerance else "better" if diff > options.acc_tolerance else "same")
        rows.append({**dict(zip(("board", "task", "variant", "impl"), key)), "category": "accuracy",
                     "metric": "acc_after_pct" + ("" if seeds else " (unpaired)"), "base": x, "new": y,
                     "ratio": None, "mark": mark})
    return rows


def regressions(table: pd.DataFrame, fail_on: tuple) -> pd.DataFrame:
    return table[(table["mark"] == "worse") & table["category"].isin(fail_on)]


def write(table: pd.DataFrame, base: Side, new: Side, out: Path, fail_on: tuple, options: Options) -> Path:
    """compare.md (the verdict, the changes, every row), compare.csv and index.html (the same as a
    page, with the repetitions behind each changed time) into `out`."""
    from harness.report import charts, html
    from harness.report.tables import markdown
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "compare.csv", index=False)
    boards = sorted(set(table["board"]))
    bad = regressions(table, fail_on)
    counts = table["mark"].value_counts()
    verdict = ((f"{len(bad)} regression{'s' * (len(bad) != 1)} ({', '.join(sorted(set(bad['metric'])))})"
                if len(bad) else "no regression") + " in " + ", ".join(fail_on) + ".")
    rules = (f"Times: worse or better past a factor {stats.FACTOR} (per metric: --factor) and at p < {options.alpha} "
             f"(Mann-Whitney U), which needs at least {stats.min_repetitions(options.alpha)} repetitions a side; "
             f"the interval is the {int(100 * stats.CONFIDENCE)} % bootstrap interval of the ratio of medians. "
             f"Accuracy within {options.acc_tolerance} points, memory high-water marks within "
             f"{100 * options.memory_tolerance:.0f} %, counts exactly (an emulated board's instruction counts to "
             f"its timer's resolution: a job's within a tick per epoch, a phase's within {PHASE_TICKS} ticks more; "
             f"40 instructions a tick on the mps2-an386).")
    changes = software_changes(base, new, boards) or ["nothing the boards report"]
    runs = "Runs: " + "; ".join(f"{label} {_runs(side)}" for label, side in (("base", base), ("new", new)))
    title = f"skip2bench compare: {base.label} -> {new.label}"
    order = {"worse": 0, "too few samples": 1, "not comparable": 2, "better": 3, "not significant": 4, "same": 5}
    shown = table.drop(columns=["job_id"]).sort_values("mark", key=lambda m: m.map(order), kind="stable")
    shown = shown.dropna(axis=1, how="all").reset_index(drop=True)
    lines = [f"# {title}", "", f"**{verdict.removesuffix('.')}**.", "",
             "Marks: " + ", ".join(f"{SIGNS[m] or '='} {m} ({counts.get(m, 0)})" for m in SIGNS) + ".", "",
             rules, "", "Software under test, changed:", "", *[f"- {line}" for line in changes], "", runs, "",
             markdown(shown)]
    (out / "compare.md").write_text("\n".join(lines) + "\n")
    evidence = html.Section("evidence", "The repetitions behind each changed time")
    values = repetitions(table, base, new)
    if len(values):
        evidence.charts.append(html.chart("repetitions", "Each repetition of each job whose time changed, base "
                                          "beside new (as measured; the verdict may have normalised them)",
                                          charts.repetitions(values)))
    else:
        evidence.notes.append("No time changed.")
    html.write(out / "index.html", title, [
        html.Section("verdict", "Verdict", how=rules, lead=[verdict],
                     tables=[html.table(shown, "compare", marks=list(shown["mark"]))]),
        html.Section("software", "Software under test, changed", lead=changes, notes=[runs]), evidence],
        counts=[(m, int(counts.get(m, 0))) for m in SIGNS])
    return out


def repetitions(table: pd.DataFrame, base: Side, new: Side) -> pd.DataFrame:
    """The repetitions behind each time that changed (worse or better): job, side, repetition, value."""
    changed = table[(table["category"] == "time") & table["mark"].isin(["worse", "better"])]
    rows = []
    for _, row in changed.iterrows():
        key = (row["board"], row["task"], row["variant"], row["impl"], row["job_id"])
        job = f"{row['board']} {row['task']} {row['variant']} {row['impl']} {row['metric']}"
        for label, side in (("base", base), ("new", new)):
            recs = [r for r in side.jobs if (r["board"], r["task"], r["variant"], r["impl"], r["job_id"]) == key
                    and r["status"] in FINISHED and r.get(row["metric"])]
            rows += [{"job": job, "side": label, "repetition": i, "value": r[row["metric"]]} for i, r in enumerate(recs)]
    return pd.DataFrame(rows, columns=["job", "side", "repetition", "value"])
