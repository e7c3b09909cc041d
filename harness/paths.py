"""Where the project's parts live, and where its outputs go.

The board-side sources (targets/), the built-in labs and experiments are inside the installed
package (harness/data/, found with importlib.resources); a checkout keeps them in its own
top-level folders, which an editable install reads in place.
"""
import os
from importlib import resources
from pathlib import Path

import platformdirs

_HERE = Path(__file__).resolve().parents[1]
# The checkout the harness runs from, or None for an installed package.
CHECKOUT = _HERE if (_HERE / "pyproject.toml").is_file() and (_HERE / "targets").is_dir() else None


def _part(name: str) -> Path:
    packaged = resources.files("harness").joinpath("data", name)
    if packaged.is_dir():
        return Path(str(packaged))
    if CHECKOUT is None:
        raise ImportError(f"skip2bench is installed without its {name}/ folder; reinstall it (pip install skip2bench)")
    return CHECKOUT / name


TARGETS = _part("targets")
LABS = _part("labs")
EXPERIMENTS = _part("experiments")
NUMPY_RUNNER_DIR = TARGETS / "numpy"
TORCH_RUNNER_DIR = TARGETS / "torch"


def cache_dir() -> Path:
    """Pre-trained models and parsed data sets, keyed by content hash (safe to delete): the
    platform's user cache folder, or SKIP2BENCH_CACHE."""
    return Path(os.environ.get("SKIP2BENCH_CACHE") or platformdirs.user_cache_path("skip2bench"))


def runs_dir() -> Path:
    """Where a run goes without --out: skip2bench-runs/ in the current folder."""
    return Path.cwd() / "skip2bench-runs"
