"""The job limits every runner enforces, read from the one file that defines them.

`skip2_limits.def` (targets/c/core/, deployed beside this file) is also compiled into the C
core, so the NumPy and C runners refuse exactly the same jobs, and the harness checks experiment
files against the same numbers. A job's storage formats must be ones every runner knows.
"""
import os
import re

import numpy as np

from skip2_quant import FORMATS

_HERE = os.path.dirname(os.path.abspath(__file__))
# Deployed, the file sits beside this one; in the repository, in the C core's folder.
_CANDIDATES = (os.path.join(_HERE, "skip2_limits.def"),
               os.path.join(_HERE, os.pardir, "c", "core", "skip2_limits.def"))


def _read():
    for path in _CANDIDATES:
        if os.path.exists(path):
            with open(path) as f:
                text = f.read()
            limits = {name: int(value) for name, value in
                      re.findall(r"^SKIP2_LIMIT\((\w+),\s*(\d+)\)", text, re.M)}
            ranges = {name.lower(): (float(lo), float(hi)) for name, lo, hi in
                      re.findall(r"^SKIP2_RANGE\((\w+),\s*([^,\s]+),\s*([^)\s]+)\)", text, re.M)}
            return limits, ranges
    raise SystemExit(f"skip2_limits.def not found (looked in {', '.join(_CANDIDATES)})")


LIMITS, RANGES = _read()  # RANGES: job.json key -> (lowest, highest), both inclusive
# (job.json key, lowest, highest): the integer fields of a job and their ranges.
INTEGER_FIELDS = (
    ("seed", 0, LIMITS["MAX_SEED"]),
    ("epochs", 1, LIMITS["MAX_EPOCHS"]),
    ("batch_size", 1, LIMITS["MAX_BATCH"]),
    ("rank", 1, LIMITS["MAX_RANK"]),
    ("cache_budget_bytes", -1, LIMITS["MAX_CACHE_BUDGET"]),
    ("n_layers", 1, LIMITS["MAX_LAYERS"]),
    ("bsr_layers", 0, LIMITS["MAX_LAYER_MASK"]),
    ("oselm_passes", 1, LIMITS["MAX_EPOCHS"]),
)
# Fields only one method reads: required in its jobs, ignored in every other job.
METHOD_FIELDS = {
    "far": ("far_prime", "far_keep"),
    "far-random": ("far_prime", "far_keep"),
    "bsr": ("bsr_layers",),
    "oselm-head": ("oselm_lambda", "oselm_forget", "oselm_passes"),
}
_OWNED = {key for keys in METHOD_FIELDS.values() for key in keys}

OPTIONAL = {"cache_budget_bytes": -1, "rank": 1}  # rank matters only to adapter methods


def _finite(value):
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value == value \
        and value not in (float("inf"), float("-inf"))


def job_problems(job, widths):
    """What makes a job one some runner would refuse: a list of messages, empty if none."""
    problems = []
    own = METHOD_FIELDS.get(job.get("method"), ())
    for key, lo, hi in INTEGER_FIELDS:
        if key in _OWNED and key not in own:
            continue
        value = job.get(key, OPTIONAL.get(key))
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            problems.append(f"'{key}' must be an integer in {lo}..{hi}; got {value!r}")
    for key in ("lr", "scale"):
        value = job.get(key)
        if not _finite(value):
            problems.append(f"'{key}' must be a finite number; got {value!r}")
    for key in ("cache_format", "input_format"):
        value = job.get(key, "f32")
        if value not in FORMATS:
            problems.append(f"'{key}' must be one of {', '.join(FORMATS)}; got {value!r}")
    for key, (lo, hi) in RANGES.items():
        if key not in own:
            continue
        value = job.get(key)
        with np.errstate(over="ignore"):  # as every runner holds it and its bounds: in float32
            if not (_finite(value) and np.float32(lo) <= np.float32(value) <= np.float32(hi)):
                problems.append(f"'{key}' must be a number in {lo:g}..{hi:g}; got {value!r}")
    layers = job.get("n_layers")
    if "bsr_layers" in own and isinstance(layers, int) and isinstance(job.get("bsr_layers"), int) \
            and job["bsr_layers"] >> layers > 0:
        problems.append(f"'bsr_layers' names a layer the model lacks (it has layers 0..{layers - 1}); "
                        f"got {job['bsr_layers']}")
    if any(not 1 <= w <= LIMITS["MAX_WIDTH"] for w in widths):
        problems.append(f"every layer width must be 1..{LIMITS['MAX_WIDTH']}; got {list(widths)}")
    return problems
