"""What the host ships to every board for one (task, seed): the pre-trained model and the data.

The backbone is pre-trained once per task, architecture, pre-training settings and seed, by the
project's own C core (the C runner on this host: ft-all from a PRNG-initialised MLP), and cached
under a key that hashes all of those. The core gives the same bits on every CPU (its products
in a fixed order, no fused multiply-add, its own exp), where NumPy's BLAS and exp pick kernels by
CPU; the input scaling is summed exactly (math.fsum). So a backbone is the same on every machine.
Files are plain .npy so a runner reads them without the harness.
"""
import hashlib
import json
import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import runners
from harness.errors import TargetError, UserError
from harness.hashing import sha256_file, sha256_files
from harness.job_table import FIELDS
import skip2_prng as prng

# Bump when pre-training changes its results, so stale cached models are not reused.
PRETRAIN_VERSION = 2
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
    """Per-feature mean and std of the pre-training domain (constant features get std 1), each
    sum exactly rounded (math.fsum), so that no CPU's summation order shows in the bits."""
    x = x_pre.astype(np.float64)
    mean = np.array([math.fsum(column) for column in x.T]) / len(x)
    std = np.sqrt(np.array([math.fsum(column) for column in ((x - mean) ** 2).T]) / len(x))
    mean, std = mean.astype(np.float32), std.astype(np.float32)
    std[std < 1e-6] = 1.0
    return mean, std


def pretrain(x_pre, y_pre, n_classes, hidden, cfg, seed, cache_dir: Path):
    """Deterministic backbone: He-uniform init from the PRNG, then ft-all on the source domain by
    the C runner (its epochs in the pre-training stream's order); the weights, biases, scaling and
    the accuracy on the source domain."""
    mean, std = scaling(x_pre)
    sizes = [x_pre.shape[1], *hidden, n_classes]
    W = [prng.uniform_sym(prng.stream_key(seed, prng.STREAM_PRETRAIN_INIT + k), (n, m),
                          np.sqrt(np.float32(6.0) / np.float32(n)))
         for k, (n, m) in enumerate(zip(sizes[:-1], sizes[1:]))]
    try:
        runner = runners.host_build(cache_dir)
    except TargetError as e:
        raise UserError(str(e)) from None
    with tempfile.TemporaryDirectory(prefix="skip2-pretrain-") as work:
        work = Path(work)
        (work / "model").mkdir()
        (work / "data").mkdir()
        for k, w in enumerate(W):
            np.save(work / "model" / f"W{k}.npy", w)
            np.save(work / "model" / f"b{k}.npy", np.zeros(w.shape[1], np.float32))
        np.save(work / "model" / "mean.npy", mean)
        np.save(work / "model" / "std.npy", std)
        for part in ("ft", "test"):  # trained and scored on the source domain
            np.save(work / "data" / f"x_{part}.npy", np.ascontiguousarray(x_pre, np.float32))
            np.save(work / "data" / f"y_{part}.npy", np.ascontiguousarray(y_pre, np.int32))
        job = {**{f.name: f.default for f in FIELDS}, "method": "ft-all", "seed": seed, "lr": cfg.lr,
               "batch_size": cfg.batch_size, "epochs": cfg.epochs, "n_layers": len(W), "model_dir": "model",
               "data_dir": "data", "save_params": True, "pretrain": True}
        (work / "job.json").write_text(json.dumps(job))
        done = subprocess.run([str(runner), str(work)], capture_output=True, text=True)
        if done.returncode != 0:
            raise UserError(f"pre-training failed: {(done.stderr.strip().splitlines() or ['no message'])[-1]}")
        result = json.loads(done.stdout)
        if result["status"] != "ok":
            raise UserError(f"pre-training diverged ({result['reason']}); lower [pretrain] lr (now {cfg.lr})")
        trained = {p.stem: np.load(p) for p in (work / "trained").glob("*.npy")}
    return ([trained[f"W{k}"] for k in range(len(W))], [trained[f"b{k}"] for k in range(len(W))], mean, std,
            result["acc_after"])


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
                                        model_cfg.hidden, pretrain_cfg, seed, cache_root)
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
