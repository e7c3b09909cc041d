import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
# The board-side runner is standalone code, not part of the harness package.
sys.path[:0] = [str(ROOT / "targets" / "numpy"), str(ROOT / "targets" / "torch")]


def unavailable(message):
    """Skip when a part is missing on a developer machine; under CI=true it is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def require_tool(name):
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} not found on PATH (install it, e.g. with .ci/run's apt-get step)")
    return path


def full_job(method, **fields) -> dict:
    """A job.json body: every field of skip2_job.def at its default, `fields` over them."""
    from harness.job_table import FIELDS
    return {**{f.name: f.default for f in FIELDS}, "method": method, **fields}


def write_runner_files(root: Path, sizes, n_ft, n_test, seed, label_types=(np.int32, np.int32)) -> Path:
    """A random float32 backbone (model/) and data set (data/) in the runner contract's layout."""
    rng = np.random.default_rng(seed)
    model, data = root / "model", root / "data"
    model.mkdir()
    data.mkdir()
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        np.save(model / f"W{k}.npy", rng.normal(0, n_in ** -0.5, (n_in, n_out)).astype(np.float32))
        np.save(model / f"b{k}.npy", rng.normal(0, 0.1, n_out).astype(np.float32))
    np.save(model / "mean.npy", rng.normal(0, 1, sizes[0]).astype(np.float32))
    np.save(model / "std.npy", rng.uniform(0.5, 2, sizes[0]).astype(np.float32))
    for part, n, label_type in (("ft", n_ft, label_types[0]), ("test", n_test, label_types[1])):
        np.save(data / f"x_{part}.npy", rng.normal(0, 1.5, (n, sizes[0])).astype(np.float32))
        np.save(data / f"y_{part}.npy", rng.integers(0, sizes[-1], n).astype(label_type))
    return root
