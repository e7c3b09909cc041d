"""A user's own data set as a task: an .npz file or a folder of CSV files (harness/tasks/specs.py).

Both give raw features per split; like every task, they are scaled with the pre-training split's
statistics only (harness/artifacts.py) and listed by `skip2bench data --experiment FILE`.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from harness.hashing import sha256_file

SPLITS = {"pre": "pretrain", "ft": "finetune", "test": "test"}


def _class_names(labels: list) -> tuple[str, ...]:
    """Integer labels 0..C-1 keep their order; any other labels are sorted by name."""
    names = sorted({str(v) for v in labels})
    if all(n.isdigit() for n in names):
        return tuple(str(i) for i in range(max(int(n) for n in names) + 1))
    return tuple(names)


def load_npz(path: Path) -> dict:
    """Arrays, classes and sources from one .npz; fields as in TaskData (without name)."""
    with np.load(path, allow_pickle=False) as d:
        missing = sorted({f"{a}_{s}" for a in "xy" for s in SPLITS} - set(d.files))
        if missing:
            raise ValueError(f"{path}: arrays {missing} are missing (expected x_pre, y_pre, x_ft, y_ft, x_test, y_test)")
        arrays = {name: d[name] for name in d.files}
    labels = np.concatenate([arrays[f"y_{s}"] for s in SPLITS])
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise ValueError(f"{path}: labels must be class indices 0..C-1")
    classes = (tuple(str(c) for c in arrays["classes"]) if "classes" in arrays
               else tuple(str(i) for i in range(int(labels.max()) + 1)))
    fields = {"classes": classes}
    for s in SPLITS:
        fields[f"x_{s}"] = np.ascontiguousarray(arrays[f"x_{s}"], np.float32)
        fields[f"y_{s}"] = np.ascontiguousarray(arrays[f"y_{s}"], np.int32)
    fields["sources"] = {"file": path.name, "sha256": sha256_file(path)}
    return fields


def _read_csv(path: Path) -> tuple[np.ndarray, list]:
    with open(path, newline="") as f:
        rows = [row for row in csv.reader(f) if row]
    if rows:
        try:
            [float(v) for v in rows[0][:-1]]
        except ValueError:  # a header row
            rows = rows[1:]
    if not rows:
        raise ValueError(f"{path}: no samples")
    width = len(rows[0])
    for number, row in enumerate(rows, start=1):
        if len(row) != width or width < 2:
            raise ValueError(f"{path}: row {number} has {len(row)} columns, expected {width} (features, then the label)")
    try:
        x = np.array([[float(v) for v in row[:-1]] for row in rows], np.float32)
    except ValueError as e:
        raise ValueError(f"{path}: a feature is not a number ({e})") from None
    return x, [row[-1].strip() for row in rows]


def load_csv(folder: Path) -> dict:
    """Arrays, classes and sources from pretrain.csv, finetune.csv and test.csv in `folder`."""
    read = {s: _read_csv(folder / f"{name}.csv") for s, name in SPLITS.items()}
    classes = _class_names([label for _, labels in read.values() for label in labels])
    index = {name: i for i, name in enumerate(classes)}
    fields = {"classes": classes}
    for s, (x, labels) in read.items():
        fields[f"x_{s}"] = x
        fields[f"y_{s}"] = np.array([index[str(int(v)) if v.isdigit() else v] for v in labels], np.int32)
    fields["sources"] = {"folder": folder.name,
                         "sha256": {f"{name}.csv": sha256_file(folder / f"{name}.csv") for name in SPLITS.values()}}
    return fields
