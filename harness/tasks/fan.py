"""Cooling-fan damage tasks (fan-damage1, fan-damage2), read from the authors' original zips.

Data: github.com/matutani/cooling-fan (Sunaga, Kondo, Matsutani, IEEE Micro 43(6), 2023). Each
`<size>_<speed>_<type>_<environment>[_run].zip` holds one folder of CSVs named by timestamp, each a
512-bin vibration spectrum as rows `bin, value`. The zips are read in place.

Split (the same for both tasks, `<damage>` = damage1 or damage2), the default of FanSpec
(harness/tasks/specs.py), which an experiment's `[task.NAME]` table may change:
- classes: normal (0), damaged (1); only the 12 cm `hmlo` recordings are used because they exist
  for normal and both damages in every room, which keeps the classes balanced (the constant-speed
  recordings exist for the normal fan only);
- pre-train: 12cm_hmlo_{normal,<damage>}_{silentA,silentB}_{1,2} (8 recordings);
- fine-tune: 12cm_hmlo_{normal,<damage>}_noisy_1; test: 12cm_hmlo_{normal,<damage>}_noisy_2, so
  fine-tune and test come from different recordings and no spectrum is in both.

0-rpm spectra are dropped. An hmlo recording steps the fan through h, m, l and o (0 rpm, its last
~57 of 235 spectra). With the fan stopped a spectrum is the room's floor alone (total energy ~10
in the silent rooms, ~32 in the noisy room, whose ventilation fan peaks at 45 Hz), so it carries no
label. Keeping them does not just cap accuracy: a model fine-tuned with them classifies 97-100 % of
the stopped-fan test spectra "correctly", i.e. it learns which session a noisy-room recording came
from (the normal and damaged fans were recorded hours apart), which would inflate every score.
Rule: drop a spectrum whose total energy is below 1.5 x its recording's 10th-percentile total
energy (the floor, since a quarter of each recording is at 0 rpm). The cut is clean: in each of
the 18 recordings used it drops 54-58 spectra, all one run at the end; running spectra are above
1.7 x the floor, stopped ones below 1.2 x, and at most one spin-down spectrum per recording lies
in between.

Sizes: pre-train 1425 (fan-damage1) / 1428 (fan-damage2), fine-tune 355 / 355, test 356 / 358;
the classes are balanced to within 1 % in each split.

Drift, measured by `skip2bench run -e experiments/drift.toml -l labs/local.toml` (512-96-96-2
MLP, default settings: pre-training 40 epochs, batch 32, lr 0.05; then ft-all 20 epochs, batch 20,
lr 0.01; C runner), test accuracy before -> after fine-tuning, mean (range) of 5 seeds:
fan-damage1 57.3 % (52-68) -> 95.7 % (92-99); fan-damage2 65.1 % (58-74) -> 79.3 % (73-84).
Pre-training in silentA alone (`experiments/fan-one-room.toml`): fan-damage1 60.4 % (54-64) ->
96.5 % (95-97).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from harness.atomic import write_atomically
from harness.hashing import sha256_file

DATA_DIR = Path("cooling-fan") / "DATA"
N_BINS = 512
DAMAGES = ("damage1", "damage2")
_FLOOR_PERCENTILE = 10
_FLOOR_FACTOR = 1.5
# Bump when the parsed layout of a cached file changes, so old cache files are not reused.
_CACHE_VERSION = 1


def split_zips(spec) -> dict[str, list[str]]:
    """Zip names per split (a FanSpec says which recordings), normal recordings first, then the damaged."""
    kinds = classes_of(spec.kind.removeprefix("fan-"))
    return {split: [f"12cm_hmlo_{k}_{recording}.zip" for k in kinds for recording in recordings]
            for split, recordings in (("pre", spec.pretrain), ("ft", spec.finetune), ("test", spec.test))}


def classes_of(damage: str) -> tuple[str, str]:
    if damage not in DAMAGES:
        raise ValueError(f"unknown fan damage {damage!r}; known: {', '.join(DAMAGES)}")
    return ("normal", damage)


def zip_names(spec) -> list[str]:
    return [z for zips in split_zips(spec).values() for z in zips]


def load(data_dir: Path, spec, cache_dir: Path | None = None) -> dict:
    """Arrays, classes and sources of a fan task split as `spec` says; fields as in TaskData (without name)."""
    classes = classes_of(spec.kind.removeprefix("fan-"))
    fields: dict = {"classes": classes}
    files: dict[str, dict] = {}
    for split, zips in split_zips(spec).items():
        xs, ys = [], []
        for zip_name in zips:
            path = data_dir / zip_name
            digest = sha256_file(path)
            spectra = _cached_spectra(path, digest, cache_dir)
            keep = running(spectra)
            label = classes.index(zip_name.split("_")[2])
            xs.append(spectra[keep])
            ys.append(np.full(int(keep.sum()), label, dtype=np.int32))
            files[zip_name] = {
                "sha256": digest,
                "split": split,
                "label": classes[label],
                "spectra": len(spectra),
                "kept": int(keep.sum()),
            }
        fields[f"x_{split}"] = np.concatenate(xs)
        fields[f"y_{split}"] = np.concatenate(ys)
    fields["sources"] = {
        "dataset": "cooling-fan (github.com/matutani/cooling-fan)",
        "data_dir": str(DATA_DIR),
        "files": files,
        "split": spec.describe(),
        "filter": (
            f"dropped 0-rpm spectra: total energy < {_FLOOR_FACTOR} x the recording's "
            f"{_FLOOR_PERCENTILE}th-percentile total energy"
        ),
    }
    return fields


def running(spectra: np.ndarray) -> np.ndarray:
    """Mask of the spectra of one recording taken while the fan turns (see the module docstring)."""
    energy = spectra.sum(axis=1, dtype=np.float64)
    return energy >= _FLOOR_FACTOR * np.percentile(energy, _FLOOR_PERCENTILE)


def read_zip(path: Path) -> np.ndarray:
    """float32 (n, 512) spectra of one recording zip, in file-name (= time) order."""
    try:
        with zipfile.ZipFile(path) as z:
            names = sorted(n for n in z.namelist() if n.endswith(".csv"))
            text = b"\n".join(z.read(n) for n in names)
    except zipfile.BadZipFile as e:
        raise ValueError(f"{path.name}: {e}") from None
    # One bulk parse of all CSVs: each row is "bin, value".
    values = np.array(text.replace(b",", b" ").split(), dtype=np.float64)
    if not names or values.size != len(names) * N_BINS * 2:
        raise ValueError(f"{path}: expected {N_BINS} rows 'bin, value' in each of {len(names)} CSVs")
    rows = values.reshape(len(names), N_BINS, 2)
    if not (rows[:, :, 0] == np.arange(N_BINS)).all():
        raise ValueError(f"{path}: bins are not 0..{N_BINS - 1} in every CSV")
    return rows[:, :, 1].astype(np.float32)


def _cached_spectra(path: Path, digest: str, cache_dir: Path | None) -> np.ndarray:
    """The recording's spectra from the cache when the cached file still has the hash it was
    written with (kept beside it), else parsed from the zip and cached again."""
    if cache_dir is None:
        return read_zip(path)
    cached = Path(cache_dir) / "cooling-fan" / f"{digest}.v{_CACHE_VERSION}.npy"
    stamp = cached.with_suffix(".sha256")
    try:
        if stamp.read_text().strip() == sha256_file(cached):
            spectra = np.load(cached)
            if spectra.dtype == np.float32 and spectra.ndim == 2 and spectra.shape[1] == N_BINS:
                return spectra
    except (OSError, ValueError):  # not cached yet, or unreadable: parse again
        pass
    spectra = read_zip(path)
    _save_atomically(cached, stamp, spectra)
    return spectra


def _save_atomically(path: Path, stamp: Path, array: np.ndarray) -> None:
    """Concurrent jobs share the cache; a cache that cannot be written only costs time."""
    try:
        write_atomically(path, lambda f: np.save(f, array))
        write_atomically(stamp, lambda f: f.write(sha256_file(path).encode()))
    except OSError:
        pass
