"""What the host ships to every board for one (task, seed): the pre-trained model and the data.

The backbone is pre-trained once per task, architecture, pre-training settings and seed, with
the board-side NumPy code itself (ft-all from a PRNG-initialised MLP), and cached under a key
that hashes all of those. Files are plain .npy so a runner reads them without the harness.
"""
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import UserError
from harness.hashing import sha256_file, sha256_files
import skip2_methods as sm
import skip2_prng as prng

# Bump when pre-training changes its results, so stale cached models are not reused.
PRETRAIN_VERSION = 1
# Every cache entry lists its files' sha256 here, checked whenever the entry is used.
MANIFEST = "files.json"


@dataclass(frozen=True)
class Artifacts:
    task: str
    seed: int
    model_dir: Path
    data_dir: Path
    n_layers: int
    model_key: str
    weights_sha256: str
    data_sha256: str
    pretrain_acc: float
    sizes: tuple          # the MLP's widths: features, hidden layers, classes
    n_ft: int             # fine-tuning and test samples
    n_test: int
    repaired: tuple = ()  # what was found damaged in the cache and made again


def _publish(final: Path, write):
    """Create `final` atomically: fill a temporary sibling, then rename it into place."""
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=".tmp-"))
    except OSError as e:
        raise _unwritable(final, e) from None
    try:
        write(tmp)
        (tmp / MANIFEST).write_text(json.dumps({name: sha256_file(tmp / name) for name in _files(tmp)}))
        os.replace(tmp, final)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if not final.is_dir():  # else another run published the same entry first
            raise _unwritable(final, e) from None
    except BaseException:  # interrupted (SIGTERM, Ctrl-C): leave no half-written entry behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _unwritable(entry: Path, e: OSError) -> UserError:
    return UserError(f"cannot write the cache entry {entry}: {e.strerror or e}; free space, or set "
                     f"SKIP2BENCH_CACHE to a writable folder")


def _files(entry: Path) -> list:
    return sorted(p.name for p in entry.iterdir() if p.name != MANIFEST)


def _damage(entry: Path) -> str | None:
    """Why a cache entry cannot be trusted, or None: its files must match the hashes it was made with."""
    try:
        expected = json.loads((entry / MANIFEST).read_text())
        found = {name: sha256_file(entry / name) for name in _files(entry)}
    except FileNotFoundError:
        return f"no {MANIFEST}: made by an older skip2bench, or cut short"
    except (OSError, ValueError, RecursionError) as e:
        return f"unreadable ({e})"
    if not isinstance(expected, dict):
        return f"{MANIFEST} is not a table of file hashes"
    if found != expected:
        changed = sorted(set(found) ^ set(expected) | {n for n in found if found[n] != expected.get(n)})
        return f"{', '.join(changed)} changed since it was made"
    return None


def _entry(entry: Path, write, repaired: list) -> Path:
    """A verified cache entry: made if missing, made again (and said so) if damaged."""
    if entry.is_dir():
        damage = _damage(entry)
        if damage is None:
            return entry
        try:
            shutil.rmtree(entry)
        except OSError as e:
            raise UserError(f"cache entry {entry} is damaged ({damage}) and cannot be removed: "
                            f"{e.strerror or e}; delete it by hand") from None
        repaired.append(f"cache entry {entry} was damaged ({damage}); made again")
    _publish(entry, write)
    return entry


def hashes(entry: Path) -> dict:
    """A cache entry's files by name, with their sha256 as made: what names it on another machine."""
    return json.loads((entry / MANIFEST).read_text())


def holds(entry: Path, expected: dict) -> bool:
    """Whether the cache entry is there, intact, with these files."""
    return entry.is_dir() and _damage(entry) is None and hashes(entry) == expected


def publish(entry: Path, files: dict, expected: dict):
    """A cache entry made from files sent by another machine ({name: bytes}), checked against the
    hashes it was made with there; an entry there already is replaced."""
    def write(tmp: Path):
        for name, data in files.items():
            (tmp / name).write_bytes(data)
    shutil.rmtree(entry, ignore_errors=True)
    _publish(entry, write)
    if hashes(entry) != expected:
        shutil.rmtree(entry, ignore_errors=True)
        raise UserError(f"cache entry {entry} arrived damaged (its files' hashes differ from the sender's); run again")


def scaling(x_pre):
    """Per-feature mean and std of the pre-training domain; constant features get std 1."""
    mean = x_pre.mean(axis=0, dtype=np.float64).astype(np.float32)
    std = x_pre.std(axis=0, dtype=np.float64).astype(np.float32)
    std[std < 1e-6] = 1.0
    return mean, std


def pretrain(x_pre, y_pre, n_classes, hidden, cfg, seed):
    """Deterministic backbone: He-uniform init from the PRNG, then ft-all on the source domain."""
    mean, std = scaling(x_pre)
    x = (x_pre.astype(np.float32) - mean) / std
    sizes = [x.shape[1], *hidden, n_classes]
    W = [prng.uniform_sym(prng.stream_key(seed, prng.STREAM_PRETRAIN_INIT + k), (n, m),
                          np.sqrt(np.float32(6.0) / np.float32(n)))
         for k, (n, m) in enumerate(zip(sizes[:-1], sizes[1:]))]
    b = [np.zeros(m, np.float32) for m in sizes[1:]]
    hp = dict(seed=seed, lr=cfg.lr, batch_size=cfg.batch_size, epochs=cfg.epochs, rank=1,
              scale=1.0, cache=False, cache_budget_bytes=-1, cache_format="f32")
    meter = sm.Meter()
    method = sm.build("ft-all", sm.Net(W, b), hp, meter, x)
    epochs = sm.finetune(method, x, y_pre.astype(np.int64), hp, meter, stream=prng.STREAM_PRETRAIN_SHUFFLE)
    if not np.isfinite(epochs[-1][1]):
        raise UserError(f"pre-training diverged (loss not finite); lower [pretrain] lr (now {cfg.lr})")
    return method.net.W, method.net.b, mean, std, sm.accuracy(method, x, y_pre)


def _write_data(task_data, d: Path):
    for part in ("ft", "test"):
        np.save(d / f"x_{part}.npy", np.ascontiguousarray(getattr(task_data, f"x_{part}"), np.float32))
        np.save(d / f"y_{part}.npy", np.ascontiguousarray(getattr(task_data, f"y_{part}"), np.int32))


def prepare(task_data, seed, model_cfg, pretrain_cfg, cache_root: Path) -> Artifacts:
    """Model and data directories for (task, seed), from the cache (verified) or made now."""
    repaired = []
    data_sha = task_data.sha256()
    data_dir = _entry(cache_root / "data" / data_sha[:16], lambda d: _write_data(task_data, d), repaired)

    key_src = json.dumps({"data": data_sha, "hidden": list(model_cfg.hidden),
                          "pretrain": pretrain_cfg.model_dump(), "seed": seed,
                          "version": PRETRAIN_VERSION}, sort_keys=True)
    model_key = hashlib.sha256(key_src.encode()).hexdigest()

    def write_model(d):
        W, b, mean, std, acc = pretrain(task_data.x_pre, task_data.y_pre, len(task_data.classes),
                                        model_cfg.hidden, pretrain_cfg, seed)
        for k, (w, v) in enumerate(zip(W, b)):
            np.save(d / f"W{k}.npy", w)
            np.save(d / f"b{k}.npy", v)
        np.save(d / "mean.npy", mean)
        np.save(d / "std.npy", std)
        (d / "meta.json").write_text(json.dumps({"key": json.loads(key_src), "pretrain_acc": acc}))

    model_dir = _entry(cache_root / "models" / model_key[:16], write_model, repaired)
    meta = json.loads((model_dir / "meta.json").read_text())
    return Artifacts(
        task=task_data.name, seed=seed, model_dir=model_dir, data_dir=data_dir,
        n_layers=len(model_cfg.hidden) + 1, model_key=model_key,
        weights_sha256=sha256_files(list(model_dir.glob("*.npy"))),
        data_sha256=data_sha, pretrain_acc=meta["pretrain_acc"],
        sizes=(task_data.x_ft.shape[1], *model_cfg.hidden, len(task_data.classes)),
        n_ft=len(task_data.y_ft), n_test=len(task_data.y_test), repaired=tuple(repaired))
