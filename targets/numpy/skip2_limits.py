"""The job limits every runner enforces, read from the one file that defines them.

`skip2_limits.def` (targets/c/core/, deployed beside this file) is also compiled into the C
core, so the NumPy and C runners refuse exactly the same jobs, and the harness checks experiment
files against the same numbers. A job's storage formats must be ones every runner knows.
"""
import os
import re

from skip2_quant import FORMATS

_HERE = os.path.dirname(os.path.abspath(__file__))
# Deployed, the file sits beside this one; in the repository, in the C core's folder.
_CANDIDATES = (os.path.join(_HERE, "skip2_limits.def"),
               os.path.join(_HERE, os.pardir, "c", "core", "skip2_limits.def"))


def _read():
    for path in _CANDIDATES:
        if os.path.exists(path):
            with open(path) as f:
                return {name: int(value) for name, value in
                        re.findall(r"^SKIP2_LIMIT\((\w+),\s*(\d+)\)", f.read(), re.M)}
    raise SystemExit(f"skip2_limits.def not found (looked in {', '.join(_CANDIDATES)})")


LIMITS = _read()
# (job.json key, lowest, highest): the integer fields of a job and their ranges.
INTEGER_FIELDS = (
    ("seed", 0, LIMITS["MAX_SEED"]),
    ("epochs", 1, LIMITS["MAX_EPOCHS"]),
    ("batch_size", 1, LIMITS["MAX_BATCH"]),
    ("rank", 1, LIMITS["MAX_RANK"]),
    ("cache_budget_bytes", -1, LIMITS["MAX_CACHE_BUDGET"]),
    ("n_layers", 1, LIMITS["MAX_LAYERS"]),
)


OPTIONAL = {"cache_budget_bytes": -1, "rank": 1}  # rank matters only to adapter methods


def job_problems(job, widths):
    """What makes a job one some runner would refuse: a list of messages, empty if none."""
    problems = []
    for key, lo, hi in INTEGER_FIELDS:
        value = job.get(key, OPTIONAL.get(key))
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            problems.append(f"'{key}' must be an integer in {lo}..{hi}; got {value!r}")
    for key in ("lr", "scale"):
        value = job.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value \
                or value in (float("inf"), float("-inf")):
            problems.append(f"'{key}' must be a finite number; got {value!r}")
    for key in ("cache_format", "input_format"):
        value = job.get(key, "f32")
        if value not in FORMATS:
            problems.append(f"'{key}' must be one of {', '.join(FORMATS)}; got {value!r}")
    if any(not 1 <= w <= LIMITS["MAX_WIDTH"] for w in widths):
        problems.append(f"every layer width must be 1..{LIMITS['MAX_WIDTH']}; got {list(widths)}")
    return problems
