"""The checks every runner makes of a job, by the table that defines its fields (skip2_job.def).

The C core checks the same fields against the same table, so the NumPy and C runners refuse
exactly the same jobs, and the harness checks experiment files against the same numbers.
"""
import math

import numpy as np

from skip2_job import FIELDS, LIMITS, METHOD_NAMES, describe
from skip2_quant import FORMATS


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def value_problem(field, value, n_layers=None):
    """Why `value` is not one field `field` takes (n_layers: the model's, for a layer mask), or None."""
    if field.type == "bool":
        ok = isinstance(value, bool)
    elif field.type == "format":
        ok = value in FORMATS
    elif field.type == "method":
        ok = value in METHOD_NAMES
    elif field.type == "real":
        # As every runner holds it and its bounds: in float32.
        ok = (_is_int(value) or isinstance(value, float)) and math.isfinite(value)
        with np.errstate(over="ignore"):
            ok = ok and np.float32(field.lo) <= np.float32(value) <= np.float32(field.hi)
    else:
        ok = _is_int(value) and field.lo <= value <= field.hi
        if ok and field.type == "layers" and n_layers is not None and value >> n_layers:
            return (f"'{field.name}' names a layer the model lacks (it has layers 0..{n_layers - 1}); "
                    f"got {value}")
    return None if ok else f"'{field.name}' must be {describe(field)}; got {value!r}"


def job_problems(job, widths):
    """What makes a job one some runner would refuse: a list of messages, empty if none. Every
    field the job's method holds must be there; the others are ignored."""
    method = job.get("method")
    if method not in METHOD_NAMES:
        return [f"'method' must be one of {', '.join(METHOD_NAMES)}; got {method!r}"]
    layers = job.get("n_layers") if _is_int(job.get("n_layers")) else None
    problems = [f"missing key '{f.name}'" if f.name not in job else value_problem(f, job[f.name], layers)
                for f in FIELDS if f.holds(method)]
    if any(not 1 <= w <= LIMITS["MAX_WIDTH"] for w in widths):
        problems.append(f"every layer width must be 1..{LIMITS['MAX_WIDTH']}; got {list(widths)}")
    return [p for p in problems if p]
