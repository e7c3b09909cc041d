"""The speed benchmark: the PyTorch runner trains exactly like the NumPy reference, and
`skip2bench bench` runs end to end on a tiny experiment."""
import csv
import importlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import skip2_runner
from conftest import ROOT, full_job, require_tool, unavailable, write_runner_files

METHODS = ("ft-all", "ft-last", "ft-bias", "lora-all", "lora-last", "skip-lora", "skip2-lora")
SIZES = (20, 12, 10, 3)
N_FT, N_TEST = 60, 40
# Float32 tolerance for trained parameters (values of order 0.1-1). PyTorch (MKL, its own
# kernels, autograd's order of operations) and NumPy (OpenBLAS) round differently, so each step
# may differ in the last bits; after 4 epochs x 4 SGD steps the largest differences measured
# (seeds 1, 3, 7) are 6e-8 absolute and 1.3e-6 relative (on entries near zero). The tolerance
# leaves a margin of about 10x, while a real mistake (another init or shuffle, a missing scale,
# a gradient through a frozen layer) moves parameters by 1e-3 or more.
ATOL, RTOL = 1e-6, 1e-5


@pytest.fixture(scope="module")
def torch_runner():
    try:
        importlib.import_module("torch")
    except ImportError:
        unavailable("torch is not installed (run `.venv/bin/pip install -e '.[bench]'`)")
    import skip2_torch_runner
    return skip2_torch_runner


@pytest.fixture(scope="module")
def c_runner():
    require_tool("cc")
    require_tool("make")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A small random backbone and data set, shared by all work directories."""
    return write_runner_files(tmp_path_factory.mktemp("bench-files"), SIZES, N_FT, N_TEST, seed=21)


def run(runner, files, workdir, method, **overrides):
    """One runner in-process on a fresh work directory; returns its result and trained parameters."""
    workdir.mkdir(parents=True)
    job = full_job(method, seed=3, epochs=4, batch_size=16, lr=0.05, rank=2, scale=0.7,
                   cache=method in ("ft-last", "lora-last"), n_layers=len(SIZES) - 1, save_params=True,
                   model_dir=str(files / "model"), data_dir=str(files / "data"), **overrides)
    (workdir / "job.json").write_text(json.dumps(job))
    result = json.loads(json.dumps(runner.run(str(workdir))))  # as it would cross a pipe
    return result, {p.stem: np.load(p) for p in (workdir / "trained").glob("*.npy")}


def assert_trains_like_numpy(torch_runner, files, tmp_path, method, **overrides):
    ref, ref_params = run(skip2_runner, files, tmp_path / "numpy", method, **overrides)
    got, got_params = run(torch_runner, files, tmp_path / "torch", method, **overrides)
    assert got["impl"] == "torch" and got["method"] == method and got["status"] == ref["status"] == "ok"
    assert got["runtime"]["threads"] == 1
    # A test sample whose two largest logits are within rounding may flip its arg-max.
    for key in ("acc_before", "acc_after"):
        assert abs(got[key] - ref[key]) <= 1 / N_TEST + 1e-12, key
    for key in ("n_ft", "n_test", "trainable_params", "cache_capacity_samples", "cache_hits",
                "cache_misses", "cache_hit_rate"):
        assert got[key] == ref[key], key
    assert len(got["epoch_times_s"]) == len(ref["epoch_times_s"])
    np.testing.assert_allclose(got["epoch_loss"], ref["epoch_loss"], rtol=RTOL)
    assert sorted(got_params) == sorted(ref_params)
    for name, want in ref_params.items():
        assert got_params[name].dtype == np.float32 and got_params[name].shape == want.shape, name
        np.testing.assert_allclose(got_params[name], want, rtol=RTOL, atol=ATOL, err_msg=name)
    return got


@pytest.mark.parametrize("method", METHODS)
def test_torch_runner_matches_numpy(torch_runner, files, tmp_path, method):
    assert_trains_like_numpy(torch_runner, files, tmp_path, method)


def test_torch_cache_budget_is_first_come_like_numpy(torch_runner, files, tmp_path):
    row_bytes = 4 * (SIZES[1] + SIZES[2] + SIZES[3])
    got = assert_trains_like_numpy(torch_runner, files, tmp_path, "skip2-lora",
                                   cache_budget_bytes=25 * row_bytes + row_bytes // 2)
    assert got["cache_capacity_samples"] == 25 and got["cache_misses"] > N_FT


TINY_EXPERIMENT = """
name = "tiny-bench"
tasks = ["synthetic"]
methods = ["ft-all", "lora-all", "skip2-lora"]
[model]
hidden = [16, 12]
[pretrain]
epochs = 3
[finetune]
epochs = 2
"""


def test_bench_command_end_to_end(torch_runner, c_runner, tmp_path):
    experiment = tmp_path / "tiny.toml"
    experiment.write_text(TINY_EXPERIMENT)
    out = tmp_path / "out"
    env = dict(os.environ, SKIP2BENCH_CACHE=str(tmp_path / "cache"), COLUMNS="200")
    proc = subprocess.run([sys.executable, "-m", "harness", "bench", "--experiment", str(experiment),
                           "--reps", "1", "--out", str(out)], capture_output=True, text=True, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = list(csv.DictReader((out / "report" / "speed.csv").open()))
    assert [r["method"] for r in rows] == ["ft-all", "lora-all", "skip2-lora"]
    for row in rows:
        assert all(float(row[f"{name} s"]) > 0 for name in ("C", "NumPy", "PyTorch"))
        assert float(row["C speed-up vs PyTorch"]) > 0 and int(row["acc spread (test samples)"]) <= 1
    md = (out / "report" / "report.md").read_text()
    assert "faster than PyTorch on" in md and "reduction vs lora-all %" in md
    # Every epoch against its bound: measured time / bound is at least 1 when the bound is one.
    bounds = {r["method"]: r for r in csv.DictReader((out / "report" / "epoch_bounds.csv").open())}
    assert float(bounds["skip2-lora"]["epoch 1 / bound"]) >= 1 and float(bounds["skip2-lora"]["later epoch / bound"]) >= 1
    jobs = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert [r["impl"] for r in jobs[:3]] == ["c", "numpy", "torch"] and len(jobs) == 9 + 2
    assert all(r["status"] == "ok" for r in jobs)
    assert "[11/11]" in proc.stdout
