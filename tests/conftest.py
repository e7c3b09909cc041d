import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The board-side runner is standalone code, not part of the harness package.
sys.path.insert(0, str(ROOT / "targets" / "numpy"))


def require_tool(name):
    """Skip when a tool is missing on a developer machine; under CI=true it is a failure."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found on PATH (install it, e.g. with .ci/run's apt-get step)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path
