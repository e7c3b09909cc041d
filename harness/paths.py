"""Where the project's parts live on the host."""
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGETS = REPO / "targets"
NUMPY_RUNNER_DIR = TARGETS / "numpy"


def cache_dir() -> Path:
    """Pre-trained models and parsed data sets, keyed by content hash (safe to delete)."""
    return Path(os.environ.get("SKIP2BENCH_CACHE", REPO / "results" / "cache"))


def import_runner_modules():
    """Make the board-side NumPy modules importable: the host pre-trains with the same code."""
    path = str(NUMPY_RUNNER_DIR)
    if path not in sys.path:
        sys.path.insert(0, path)
