"""Human activity recognition task (har) from the raw UCI HAPT smartphone signals.

Windows: 128 samples (2.56 s at 50 Hz) with 50 % overlap inside each recording. A window keeps
the activity that covers more than half of it; windows that are mostly unlabeled or postural
transitions are dropped. Classes: the six activities.

Features (390, what a small device can compute per window): the means of the 6 channels (acc xyz,
gyro xyz), then per channel log1p of the rfft magnitudes of bins 1..64 (0.39 Hz each).

Split (drift = subject), the default of HarSpec (harness/tasks/specs.py), which an experiment's
`[task.NAME]` table may change: pre-train on all recordings of subjects 1-5; subjects 21-25 are
unseen in pre-training and each was recorded at least twice: fine-tune on their first recording,
test on the others. Splitting by recording keeps overlapping windows out of both parts, and every
recording holds every activity. Windows: pre-train 1832, fine-tune 1076, test 1057. The other
split, `stratified`, divides each target subject's windows per class with a fixed draw.

Drift, measured by `skip2bench run -e experiments/har-splits.toml -l labs/local.toml` (390-96-96-6
MLP, default settings: pre-training 40 epochs, batch 32, lr 0.05; then ft-all 20 epochs, batch 20,
lr 0.01; C runner), test accuracy before -> after fine-tuning, mean (range) of 5 seeds:
default (1-5 -> 21-25) 86.3 % (80-89) -> 94.4 % (94-95). Pre-training on subjects 1-20 leaves
nothing to gain (-> 21-30: 94.4 % (91-96) -> 93.9 % (84-96)); on 3 subjects the drop is larger
but depends on the subjects (1-3 -> 4-8: 78.3 % -> 86.6 %; 1-3 -> 26-30: 85.9 % -> 94.2 %).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.hashing import sha256_file
from numpy.lib.stride_tricks import sliding_window_view

DATA_FILE = Path("hapt") / "hapt_raw.npz"
CLASSES = ("walking", "walking_upstairs", "walking_downstairs", "sitting", "standing", "laying")
WINDOW = 128
STEP = 64
STRATIFIED_SEED = 20240229  # the stratified split's draw is fixed, independent of any job seed


def load(path: Path, spec) -> dict:
    """Arrays, classes and sources, split as the HarSpec `spec` says; fields as in TaskData (without name)."""
    digest = sha256_file(path)
    with np.load(path) as d:
        missing = sorted({"signals", "labels", "user", "experiment", "offsets"} - set(d.files))
        if missing:
            raise ValueError(f"{path}: not the HAPT raw-signal file, arrays {missing} are missing")
        signals, labels = d["signals"], d["labels"]
        users, experiments, offsets = d["user"], d["experiment"], d["offsets"]

    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"pre": [], "ft": [], "test": []}
    target: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    used = []
    for r, (user, exp) in enumerate(zip(users.tolist(), experiments.tolist())):
        if user not in spec.pretrain_subjects and user not in spec.target_subjects:
            continue
        x, y = windows(signals[offsets[r]:offsets[r + 1]], labels[offsets[r]:offsets[r + 1]])
        xy = (features(x), y)
        if user in spec.pretrain_subjects:
            split = "pre"
            parts["pre"].append(xy)
        elif spec.split == "recording":
            split = "ft" if exp == min(e for u, e in zip(users.tolist(), experiments.tolist()) if u == user) else "test"
            parts[split].append(xy)
        else:
            split = "target"
            target.setdefault(user, []).append(xy)
        used.append({"subject": user, "experiment": exp, "split": split, "windows": len(y)})
    for user, recordings in sorted(target.items()):
        x, y = (np.concatenate(a) for a in zip(*recordings))
        ft = stratified(y, spec.finetune_fraction, seed=user)
        parts["ft"].append((x[ft], y[ft]))
        parts["test"].append((x[~ft], y[~ft]))
    missing_subjects = sorted(set(spec.pretrain_subjects + spec.target_subjects) - set(users.tolist()))
    if missing_subjects:
        raise ValueError(f"{path}: no recordings of subjects {missing_subjects}")

    fields: dict = {"classes": CLASSES}
    for split, xy in parts.items():
        fields[f"x_{split}"] = np.concatenate([x for x, _ in xy])
        fields[f"y_{split}"] = np.concatenate([y for _, y in xy])
    fields["sources"] = {
        "dataset": "UCI HAPT raw signals (Reyes-Ortiz et al., CC BY 4.0)",
        "file": str(DATA_FILE),
        "sha256": digest,
        "recordings": used,
        "split": spec.describe(),
        "windows": f"{WINDOW} samples, step {STEP}, activity covering > half the window",
        "features": "6 channel means, then per channel log1p |rfft| bins 1..64",
    }
    return fields


def stratified(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Mask of the windows that fine-tune: `fraction` of each class, drawn with a fixed seed."""
    rng = np.random.default_rng([STRATIFIED_SEED, seed])
    mask = np.zeros(len(y), bool)
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        mask[members[: int(round(fraction * len(members)))]] = True
    return mask


def windows(signals: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, 128, 6) windows of one recording and their int32 labels 0..5, see the module docstring."""
    x = sliding_window_view(signals, WINDOW, axis=0)[::STEP]  # (n, 6, 128)
    lab = sliding_window_view(labels, WINDOW)[::STEP]
    counts = (lab[:, :, None] == np.arange(1, len(CLASSES) + 1)).sum(axis=1)
    best = counts.argmax(axis=1)
    keep = counts[np.arange(len(best)), best] > WINDOW // 2
    return np.ascontiguousarray(x[keep].transpose(0, 2, 1)), best[keep].astype(np.int32)


def features(x: np.ndarray) -> np.ndarray:
    """(n, 128, c) windows -> float32 (n, c * 65): c channel means, then log1p |rfft| bins 1..64 per channel."""
    x = x.astype(np.float64)
    spectrum = np.log1p(np.abs(np.fft.rfft(x, axis=1)[:, 1 : WINDOW // 2 + 1]))  # (n, 64, c)
    per_channel = spectrum.transpose(0, 2, 1).reshape(len(x), -1)
    return np.concatenate([x.mean(axis=1), per_channel], axis=1).astype(np.float32)

