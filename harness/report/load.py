"""Read a run directory into a DataFrame of records, one row per job x board x impl x repetition."""
import json
import warnings
from pathlib import Path

import pandas as pd

from harness.errors import UserError
from harness.methods import METHODS
from harness.records import KEY_FIELDS, MalformedRecords, RecordLog

METHOD_ORDER = list(METHODS)
IMPL_ORDER = ["numpy", "c"]
# Hyper-parameters that tell two jobs of the same task and variant apart.
HPARAMS = ["epochs", "batch_size", "lr", "rank", "scale", "hidden", "cache_budget_bytes", "input_format"]
IDENTITY = ["run_id", "job_id", "task", "method", "variant", "impl", "board", "seed", "repetition",
            *HPARAMS, "cache", "cache_format"]
MEMORY = ["mem_weights_bytes", "mem_grads_bytes", "mem_optimizer_bytes", "mem_activations_bytes", "mem_cache_bytes"]
RESULTS = ["acc_before", "acc_after", "ft_time_s", "fwd_time_s", "bwd_time_s", "upd_time_s",
           "cache_time_s", "epoch_times_s", "epoch_loss", "ft_macs", "trainable_params",
           "cache_hits", "cache_misses", "cache_hit_rate", "peak_rss_bytes", *MEMORY,
           "wall_s", "ft_instructions", "ft_cycles_est", "streamed_bytes", "transfer_time_s", "dropped_frames",
           "link_bytes_during_compute"]
# A diverged run says why in "reason"; an infrastructure error in "error" and "stderr_tail".
COLUMNS = [*IDENTITY, "status", "reason", "error", "stderr_tail", *RESULTS]
# One record per key; a resumed run retries errors and appends the retry's record.
RECORD_KEY = list(KEY_FIELDS)
# Only these statuses are method results; "error" is infrastructure and never scored.
SCORED = ("ok", "fail")


class ReportError(UserError):
    """The run directory cannot be reported on; the message names the file and the fix."""


def read_records(path: Path) -> list:
    """The run's complete records (harness.records decides what a truncated or bad line is)."""
    if not path.is_file():
        raise ReportError(f"no records file {path}; run `skip2bench run ... --out {path.parent}` first")
    try:
        return RecordLog(path).read()
    except MalformedRecords as e:
        raise ReportError(f"{e} and report again") from None


def read_manifest(run_dir: Path) -> dict:
    """The run's provenance; a missing or unreadable manifest only costs the report its machine facts."""
    path = run_dir / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as exc:  # unreadable, not UTF-8 or not JSON, too deep
        warnings.warn(f"{path}: no usable manifest ({exc}); machine facts left out")
        return {}
    return manifest if isinstance(manifest, dict) else {}


def load_records(run_dir: Path) -> pd.DataFrame:
    """The latest record of every job of a run, every known column present, in report order.

    attrs["superseded"] counts the earlier records that a retry replaced; attrs["probes"] holds
    the run's probe records (the latest of each), attrs["rounds"] whether its jobs ran in paired
    rounds (experiment order "rounds"), which the speed tables need, attrs["reference"] the board
    the others were paired with, and attrs["bytes_sent"] what the run deployed to each board.
    """
    path = run_dir / "records.jsonl"
    records = read_records(path)
    jobs = [r for r in records if r["record_type"] == "job"]
    if not jobs:
        raise ReportError(f"no job records in {path}; run `skip2bench run ... --out {run_dir}` first")
    manifest = read_manifest(run_dir)
    df = pd.DataFrame.from_records(jobs)
    df = df.reindex(columns=[*COLUMNS, *[c for c in df.columns if c not in COLUMNS]])
    # Results are null on error records; numeric columns must stay numeric for the means.
    numeric = [c for c in RESULTS if c not in ("epoch_times_s", "epoch_loss")]
    df[numeric] = df[numeric].apply(pd.to_numeric, errors="coerce")
    # As object columns: a field absent from every record arrives as an all-NaN float column.
    df["variant"] = df["variant"].astype(object).fillna(df["method"])
    for column in ("impl", "board"):
        df[column] = df[column].astype(object).fillna("?")
    # Records before schema 5 do not name their board's kind: the run's lab does.
    kinds = {b.get("name"): b.get("transport") for b in manifest.get("lab", {}).get("boards", [])}
    df["board_kind"] = df.get("board_kind", pd.Series(None, index=df.index)).astype(object).fillna(df["board"].map(kinds))
    # Lists cannot be group keys; the record schema spells hidden sizes as "96-96".
    df["hidden"] = df["hidden"].map(lambda h: "-".join(map(str, h)) if isinstance(h, list) else h)
    superseded = df.duplicated(subset=RECORD_KEY, keep="last") & df["job_id"].notna()
    df = sort_rows(df[~superseded])
    df.attrs["superseded"] = int(superseded.sum())
    latest = {tuple(r[k] for k in RECORD_KEY): r for r in records if r["record_type"] == "probe"}
    df.attrs["probes"] = list(latest.values())  # plain records: pandas copies and compares attrs
    experiment = manifest.get("experiment") or {}
    df.attrs["rounds"] = experiment.get("order") == "rounds"
    df.attrs["reference"] = experiment.get("reference")
    df.attrs["bytes_sent"] = {name: (entry or {}).get("bytes_sent") or {}
                              for name, entry in (manifest.get("boards") or {}).items() if isinstance(entry, dict)}
    return df


def training_memory_kib(df: pd.DataFrame) -> pd.Series:
    """The analytic training memory of each record (docs/methods.md), in KiB."""
    return df[MEMORY].sum(axis=1, min_count=1) / 2**10


def scored(df: pd.DataFrame) -> pd.DataFrame:
    """Rows that are method results (ok or fail), never infrastructure errors."""
    return df[df["status"].isin(SCORED)]


def sweep_keys(df: pd.DataFrame) -> list:
    """Hyper-parameters that vary within one task x variant x impl x board, i.e. were swept.

    Only those become table keys: a learning rate tuned per method stays out, so methods
    with different settings still meet in one table row set and in the reduction table.
    """
    groups = df.groupby(["task", "variant", "impl", "board"], dropna=False)
    return [h for h in HPARAMS if (groups[h].nunique(dropna=False) > 1).any()]


def _rank(order: list, value) -> tuple:
    """Known values in their fixed order, then the rest alphabetically."""
    return (order.index(value), "") if value in order else (len(order), str(value))


def variant_key(variant: str) -> tuple:
    """Fixed method order; a variant such as "ft-last+cache" follows its method."""
    base, _, option = str(variant).partition("+")
    return (*_rank(METHOD_ORDER, base), option)


def ordered(values, key=variant_key) -> list:
    """Distinct values in report order (variants by default)."""
    return sorted(set(values), key=key)


def impl_key(impl: str) -> tuple:
    """The NumPy reference first, then C, then any other implementation."""
    return _rank(IMPL_ORDER, impl)


def sort_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Sort by task, variant (fixed method order), impl, board, then any other key columns present."""
    keys = {"task": str, "variant": variant_key, "impl": impl_key, "board": str}
    present = [c for c in keys if c in df.columns]
    if df.empty or not present:
        return df.reset_index(drop=True)
    rest = [c for c in ("seed", "repetition", *HPARAMS) if c in df.columns]
    ranks = pd.DataFrame({f"_{c}": df[c].map(_positions(df[c], keys[c])) for c in present},
                         index=df.index)
    df = pd.concat([df, ranks], axis=1).sort_values([*ranks.columns, *rest], kind="stable")
    return df.drop(columns=ranks.columns).reset_index(drop=True)


def _positions(values: pd.Series, key) -> dict:
    """Map each distinct value to its place in the order given by key."""
    return {v: i for i, v in enumerate(ordered(values.dropna(), key))}
