import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import harness  # noqa: F401  (makes the board-side modules, skip2_*, importable by their names)

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(items):
    """Tests that compare with PyTorch are marked `torch`: `make test` leaves them to `make bench`,
    which installs it."""
    for item in items:
        if "torch_runner" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.torch)


def unavailable(message):
    """Skip when a part is missing on a developer machine; under CI=true it is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def require_tool(name):
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} not found on PATH (install it, e.g. with .ci/run's apt-get step)")
    return path


def copy_checkout(dest: Path) -> Path:
    """The checkout's files (tracked, and new ones git does not ignore; no results) copied to dest."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode(errors="surrogateescape").split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file() and not name.startswith("results/"):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


@contextlib.contextmanager
def serving_lab(lab: Path, env: dict, cwd: Path = ROOT):
    """`skip2bench lab serve` of `lab` (run from `cwd`'s harness) until the block ends; stopped
    and waited for, its log kept beside the lab file."""
    log = lab.parent / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "lab", "serve", "--lab", str(lab)], cwd=cwd, env=env,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while "lab ready" not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the lab did not start: {log.read_text()}")
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert "lab stopped" in log.read_text()


def cut_task(path: Path, features: int, keep: dict) -> Path:
    """The synthetic task cut to its first `features` inputs and `keep[split]` samples per split,
    as an npz task file: emulated serial lines carry some 50 kB/s, so board tests keep data small."""
    from harness.tasks import synthetic
    d = synthetic.load()
    np.savez(path, classes=np.array(d["classes"]),
             **{f"x_{s}": d[f"x_{s}"][:n, :features] for s, n in keep.items()},
             **{f"y_{s}": d[f"y_{s}"][:n] for s, n in keep.items()})
    return path


def small_experiment(path: Path, data: Path, methods, impls, epochs=2, batch=20, lr=0.01) -> Path:
    """An experiment file of one seed on a task file cut by cut_task, with a tiny MLP."""
    path.write_text(f'name = "{path.stem}"\ntasks = ["small"]\nmethods = {json.dumps(list(methods))}\nseeds = [0]\n'
                    f'impls = {json.dumps(list(impls))}\n[task.small]\nkind = "npz"\npath = "{data}"\n'
                    f'[model]\nhidden = [16, 12]\n[pretrain]\nepochs = 3\n'
                    f'[finetune]\nepochs = {epochs}\nbatch_size = {batch}\nlr = {lr}\n')
    return path


def full_job(method, **fields) -> dict:
    """A job.json body: every field of skip2_job.def at its default, `fields` over them."""
    from harness.job_table import FIELDS
    return {**{f.name: f.default for f in FIELDS}, "method": method, **fields}


def write_runner_files(root: Path, sizes, n_ft, n_test, seed, label_types=(np.int32, np.int32)) -> Path:
    """A random float32 backbone (model/) and data set (data/) in the runner contract's layout."""
    rng = np.random.default_rng(seed)
    model, data = root / "model", root / "data"
    model.mkdir()
    data.mkdir()
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        np.save(model / f"W{k}.npy", rng.normal(0, n_in ** -0.5, (n_in, n_out)).astype(np.float32))
        np.save(model / f"b{k}.npy", rng.normal(0, 0.1, n_out).astype(np.float32))
    np.save(model / "mean.npy", rng.normal(0, 1, sizes[0]).astype(np.float32))
    np.save(model / "std.npy", rng.uniform(0.5, 2, sizes[0]).astype(np.float32))
    for part, n, label_type in (("ft", n_ft, label_types[0]), ("test", n_test, label_types[1])):
        np.save(data / f"x_{part}.npy", rng.normal(0, 1.5, (n, sizes[0])).astype(np.float32))
        np.save(data / f"y_{part}.npy", rng.integers(0, sizes[-1], n).astype(label_type))
    return root
