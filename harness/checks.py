"""A runner's result held against its job before it becomes a record: numbers that could not be
this job's are an error, never an `ok` (docs/records.md).

The counts come from the host's one model of a job's work (harness/work.py), which the tests
check against every runner for every variant; the schema (harness/schema.py) has already
refused non-finite numbers and negative times.
"""
from harness import work
from harness.methods import parse_variant
from harness.schema import COMPARATORS, Result

# Result fields the work model predicts for a job that ran all its epochs.
COUNTED = ("ft_macs", "trainable_params", "cache_capacity_samples", "cache_hits", "cache_misses")


def _says(field: str, got, want) -> str:
    if field == "ft_macs":
        return f"board returned {got / 1e6:,.1f} MMAC; this job does {want / 1e6:,.1f} MMAC"
    return f"board returned {field} = {got}; this job has {want}"


def result_problem(result: Result, variant: str, hp: dict, sizes, n_ft: int, n_test: int) -> str | None:
    """Why `result` cannot be the result of the job (variant, runner hyper-parameters `hp`) on
    a model of `sizes` with n_ft and n_test samples, or None."""
    if (result.n_ft, result.n_test) != (n_ft, n_test):
        return f"board returned n_ft = {result.n_ft}, n_test = {result.n_test}; this job has {n_ft} and {n_test}"
    for name in ("acc_before", "acc_after"):
        value = getattr(result, name)
        if value is not None and abs(value * n_test - round(value * n_test)) > 1e-6:
            return f"board returned {name} = {value!r}, not a whole number of the {n_test} test samples"
    epochs = work.epochs(parse_variant(variant)[0], hp)
    ran = len(result.epoch_loss)
    if len(result.epoch_times_s) != ran or not (ran == epochs if result.status == "ok" else 1 <= ran <= epochs):
        return (f"board returned {ran} epoch losses and {len(result.epoch_times_s)} epoch times; this job runs "
                f"{epochs} epochs" + (" (fewer when it fails)" if result.status == "fail" else ""))
    if result.impl in COMPARATORS:  # they time themselves only
        return None
    want = work.expected(variant, list(sizes), n_ft, hp)
    if result.trainable_params != want["trainable_params"]:
        return _says("trainable_params", result.trainable_params, want["trainable_params"])
    if result.status == "fail":  # stopped early: at most the whole job's work
        return _says("ft_macs", result.ft_macs, want["ft_macs"]) if result.ft_macs > want["ft_macs"] else None
    for field in COUNTED:
        if getattr(result, field) != want[field]:
            return _says(field, getattr(result, field), want[field])
    memory = result.mem.model_dump()
    wrong = [k for k, v in want["mem"].items() if memory[k] != v]
    return _says(f"mem.{wrong[0]}", memory[wrong[0]], want["mem"][wrong[0]]) if wrong else None
