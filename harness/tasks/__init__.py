"""Data tasks: a pre-training domain and a drifted target domain (fine-tune part, test part).

Every task's split is fixed, independent of any job seed, so that jobs with different seeds see
the same data. Loaders return raw float32 features; scaling is done elsewhere from the
pre-training statistics only.

Data sets that need files are read from a data root holding the shared layout
(`cooling-fan/DATA/*.zip`, `hapt/hapt_raw.npz`), never copied into the repository; where each
file comes from, and its sha256, is in harness/tasks/sources.py.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import UserError

from harness.job_table import LIMITS
from harness.tasks import fan, files, har, sources, specs, synthetic

__all__ = [
    "TASKS",
    "DataError",
    "DataMissingError",
    "TaskData",
    "TaskInfo",
    "specs",
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
            if not len(y):
                raise ValueError(f"{self.name}: the {split} split is empty")
            bad = np.argwhere(~np.isfinite(x))
            if len(bad):  # a method would "fail" on it, or pre-training "diverge": say what it is
                row, col = bad[0]
                raise ValueError(f"{self.name}: x_{split} row {row} feature {col} is {x[row, col]}; every feature "
                                 f"must be a finite number (fix or drop that sample in the task's files)")
        for what, n in (("features", d), ("classes", len(self.classes))):
            if not 1 <= n <= LIMITS["MAX_WIDTH"]:
                raise ValueError(f"{self.name}: {n} {what}; the runners take 1..{LIMITS['MAX_WIDTH']}")

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
    spec: object  # its split: the kind's spec with the defaults (harness/tasks/specs.py)

    @property
    def needs_files(self) -> bool:
        return self.spec.kind != "synthetic"


TASKS: dict[str, TaskInfo] = {
    "synthetic": TaskInfo(
        "synthetic",
        "built-in fan spectra, normal vs damaged; target room: weaker gain, noise floor, ventilation peak",
        specs.SyntheticSpec(kind="synthetic"),
    ),
    "fan-damage1": TaskInfo(
        "fan-damage1",
        "cooling-fan spectra, 12 cm fan normal vs damage1 (holes); silent rooms -> noisy room",
        specs.FanSpec(kind="fan-damage1"),
    ),
    "fan-damage2": TaskInfo(
        "fan-damage2",
        "cooling-fan spectra, 12 cm fan normal vs damage2 (chipped blade); silent rooms -> noisy room",
        specs.FanSpec(kind="fan-damage2"),
    ),
    "har": TaskInfo(
        "har",
        "HAPT smartphone activity windows, 6 classes; subjects 1-5 -> unseen subjects 21-25",
        specs.HarSpec(kind="har"),
    ),
}

# What each published data set is called in messages, and where it lives under the data root;
# its files, their sources and sha256 are in harness/tasks/sources.py.
_LOCATIONS = {
    "fan-damage1": ("cooling-fan", fan.DATA_DIR),
    "fan-damage2": ("cooling-fan", fan.DATA_DIR),
    "har": ("HAPT", har.DATA_FILE),
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


def expected_location(name: str, data_root: Path | None = None, spec=None) -> Path | None:
    """Where task `name` expects its data set under `data_root` (a file task: its own path);
    None for a built-in task."""
    spec = spec or _info(name).spec
    if spec.kind == "npz":
        return spec.path
    if spec.kind == "csv":
        return spec.folder
    if spec.kind not in _LOCATIONS:
        return None
    root = default_data_root() if data_root is None else Path(data_root)
    return root / _LOCATIONS[spec.kind][1]


def load_task(name: str, data_root: Path | None = None, cache_dir: Path | None = None, spec=None) -> TaskData:
    """Load task `name`, split as `spec` says (default: the built-in task's split); `cache_dir`
    (optional) keeps parsed data sets between runs."""
    spec = spec or _info(name).spec
    root = default_data_root() if data_root is None else Path(data_root)
    try:
        data = _load(name, spec, root, None if cache_dir is None else Path(cache_dir))
        copies = spec.repeat_finetune
        return TaskData(name=name, **{**data, "x_ft": np.tile(data["x_ft"], (copies, 1)),
                                      "y_ft": np.tile(data["y_ft"], copies)} if copies > 1 else data)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        where = expected_location(name, root, spec)
        raise DataError(f"{name}: cannot read its data set under {where}: {e}; "
                        f"restore the original files or pass --data-root DIR") from None


def _load(name: str, spec, root: Path, cache_dir: Path | None) -> dict:
    if spec.kind == "synthetic":
        return synthetic.load()
    if spec.kind == "npz":
        return files.load_npz(_require(name, spec, root))
    if spec.kind == "csv":
        return files.load_csv(_require(name, spec, root, [f"{s}.csv" for s in files.SPLITS.values()]))
    if spec.kind == "har":
        return har.load(_require(name, spec, root), spec)
    return fan.load(_require(name, spec, root), spec, cache_dir)


def _info(name: str) -> TaskInfo:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[name]


def _require(name: str, spec, data_root: Path, members: list[str] | tuple[str, ...] = ()) -> Path:
    """The task's data location, after checking that it and its `members` (or, for a published data
    set, its files as harness/tasks/sources.py lists them) exist."""
    location = expected_location(name, data_root, spec)
    if spec.kind in _LOCATIONS:
        missing = [f for f in sources.files(spec) if not (data_root / f.path).exists()]
        if missing:
            more = f" (and {len(missing) - 1} more: `skip2bench data` lists them)" if len(missing) > 1 else ""
            raise DataMissingError(f"{name}: {_LOCATIONS[spec.kind][0]} data not found: {data_root / missing[0].path}"
                                   f"{more}; {sources.how_to_get(spec.kind, data_root, missing[0])}; "
                                   "or pass --data-root DIR or set SKIP2BENCH_DATA")
        return location
    for path in (location, *(location / m for m in members)):
        if not path.exists():
            raise DataMissingError(f"{name}: {path} not found; fix the path in the experiment's [task.{name}] "
                                   f"(relative paths are relative to the experiment file)")
    return location
