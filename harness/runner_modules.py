"""The board-side modules (targets/numpy/skip2_*.py and the PyTorch comparator), importable on
the host by their own names.

They are standalone files that a board runs with nothing but Python and NumPy, importing each
other by top-level name; the host pre-trains, checks jobs and counts work with the same code. A
finder on sys.meta_path serves exactly those names from the folders the package ships (no
sys.path editing).
"""
import importlib.abc
import importlib.machinery
import sys

from harness.paths import NUMPY_RUNNER_DIR, TORCH_RUNNER_DIR


class RunnerModules(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if path is not None or not name.startswith("skip2_"):
            return None
        return importlib.machinery.PathFinder.find_spec(name, [str(NUMPY_RUNNER_DIR), str(TORCH_RUNNER_DIR)])


def install():
    if not any(isinstance(finder, RunnerModules) for finder in sys.meta_path):
        sys.meta_path.append(RunnerModules())
