"""Data tasks: a pre-training domain and a drifted target domain (fine-tune part, test part).

Every task's split is fixed, independent of any job seed, so that jobs with different seeds see
the same data. Loaders return raw float32 features; scaling is done elsewhere from the
pre-training statistics only.

Data sets that need files are read from a data root holding the shared layout
(`cooling-fan/DATA/*.zip`, `hapt/hapt_raw.npz`), never copied into the repository.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from harness.errors import UserError

from harness.tasks import fan, har, synthetic

__all__ = [
    "TASKS",
    "DataError",
    "DataMissingError",
    "TaskData",
    "TaskInfo",
    "default_data_root",
    "expected_location",
    "load_task",
    "task_names",
]

_SPLITS = ("pre", "ft", "test")


@dataclass(frozen=True, eq=False)
class TaskData:
    """One task's arrays: float32 (n, d) raw features and int32 labels 0..C-1 per split."""

    name: str
    classes: tuple[str, ...]
    x_pre: np.ndarray
    y_pre: np.ndarray
    x_ft: np.ndarray
    y_ft: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    sources: dict

    def __post_init__(self) -> None:
        d = self.x_pre.shape[1]
        for split in _SPLITS:
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.dtype != np.float32 or x.ndim != 2 or x.shape[1] != d:
                raise ValueError(f"{self.name}: x_{split} must be float32 (n, {d}), got {x.dtype}{x.shape}")
            if y.dtype != np.int32 or y.shape != (len(x),):
                raise ValueError(f"{self.name}: y_{split} must be int32 ({len(x)},), got {y.dtype} {y.shape}")
            if len(y) and (y.min() < 0 or y.max() >= len(self.classes)):
                raise ValueError(f"{self.name}: y_{split} has labels outside 0..{len(self.classes) - 1}")

    @property
    def n_features(self) -> int:
        return self.x_pre.shape[1]

    def sha256(self) -> str:
        """Content hash of the class names and the six arrays (dtype, shape and bytes)."""
        h = hashlib.sha256("\n".join(self.classes).encode())
        for split in _SPLITS:
            for a in (getattr(self, f"x_{split}"), getattr(self, f"y_{split}")):
                h.update(f"|{a.dtype.str}{a.shape}|".encode())
                h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()


class DataError(UserError):
    """A task's data set cannot be read (a damaged file); one line naming the task and the fix."""


class DataMissingError(DataError):
    """A task's data set is not where it is expected; the message is one line naming path and fix."""


@dataclass(frozen=True)
class TaskInfo:
    name: str
    description: str
    needs_files: bool
    loader: Callable[[Path, Path | None], TaskData]


def _fan_loader(damage: str) -> Callable[[Path, Path | None], TaskData]:
    name = f"fan-{damage}"

    def load(data_root: Path, cache_dir: Path | None) -> TaskData:
        data_dir = _require(name, data_root, fan.zip_names(damage))
        return TaskData(name=name, **fan.load(data_dir, damage, cache_dir))

    return load


def _load_har(data_root: Path, cache_dir: Path | None) -> TaskData:
    return TaskData(name="har", **har.load(_require("har", data_root)))


def _load_synthetic(data_root: Path, cache_dir: Path | None) -> TaskData:
    return TaskData(name="synthetic", **synthetic.load())


TASKS: dict[str, TaskInfo] = {
    "synthetic": TaskInfo(
        "synthetic",
        "built-in fan spectra, normal vs damaged; target room: weaker gain, noise floor, ventilation peak",
        needs_files=False,
        loader=_load_synthetic,
    ),
    "fan-damage1": TaskInfo(
        "fan-damage1",
        "cooling-fan spectra, 12 cm fan normal vs damage1 (holes); silent rooms -> noisy room",
        needs_files=True,
        loader=_fan_loader("damage1"),
    ),
    "fan-damage2": TaskInfo(
        "fan-damage2",
        "cooling-fan spectra, 12 cm fan normal vs damage2 (chipped blade); silent rooms -> noisy room",
        needs_files=True,
        loader=_fan_loader("damage2"),
    ),
    "har": TaskInfo(
        "har",
        "HAPT smartphone activity windows, 6 classes; subjects 1-5 -> unseen subjects 21-25",
        needs_files=True,
        loader=_load_har,
    ),
}

# What each file-backed data set is called in messages, where it lives under the data root, and
# what the user should find there.
_LOCATIONS = {
    "fan-damage1": ("cooling-fan", fan.DATA_DIR, "the original zips, e.g. 12cm_hmlo_normal_noisy_1.zip"),
    "fan-damage2": ("cooling-fan", fan.DATA_DIR, "the original zips, e.g. 12cm_hmlo_normal_noisy_1.zip"),
    "har": ("HAPT", har.DATA_FILE, "hapt_raw.npz with signals, labels, user, experiment, offsets"),
}


def task_names() -> list[str]:
    return list(TASKS)


def default_data_root() -> Path:
    """$SKIP2BENCH_DATA if set, else the shared data sets beside the repository."""
    env = os.environ.get("SKIP2BENCH_DATA")
    if env:
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parents[2]
    return repo.parent / "shared" / "datasets"


def expected_location(name: str, data_root: Path | None = None) -> Path | None:
    """Where task `name` expects its data set under `data_root`; None for a built-in task."""
    _info(name)
    if name not in _LOCATIONS:
        return None
    root = default_data_root() if data_root is None else Path(data_root)
    return root / _LOCATIONS[name][1]


def load_task(name: str, data_root: Path | None = None, cache_dir: Path | None = None) -> TaskData:
    """Load task `name`; `cache_dir` (optional) keeps parsed data sets between runs."""
    info = _info(name)
    root = default_data_root() if data_root is None else Path(data_root)
    try:
        return info.loader(root, None if cache_dir is None else Path(cache_dir))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        where = expected_location(name, root)
        raise DataError(f"{name}: cannot read its data set under {where}: {e}; "
                        f"restore the original files or pass --data-root DIR") from None


def _info(name: str) -> TaskInfo:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[name]


def _require(name: str, data_root: Path, members: list[str] | tuple[str, ...] = ()) -> Path:
    """The task's data location under `data_root`, after checking that it and its `members` exist."""
    location = expected_location(name, data_root)
    for path in (location, *(location / m for m in members)):
        if not path.exists():
            what, _, hint = _LOCATIONS[name]
            raise DataMissingError(
                f"{name}: {what} data not found at {path} (expected {hint}); "
                "pass --data-root DIR or set SKIP2BENCH_DATA"
            )
    return location
