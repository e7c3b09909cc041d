"""Backbones are the same on every CPU: pre-training runs through the project's C core, so
neither the BLAS kernel NumPy picks (OPENBLAS_CORETYPE) nor NumPy's own SIMD kernels
(NPY_DISABLE_CPU_FEATURES) change a bit of them, nor the jobs fine-tuned from them."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, cut_task, small_experiment

# The kernels a machine could pick: OpenBLAS's oldest x86-64 one and its AVX2 one, and NumPy
# with its wide SIMD kernels turned off (the feature names of NumPy 2.x).
KERNELS = {
    "prescott": {"OPENBLAS_CORETYPE": "Prescott"},
    "haswell": {"OPENBLAS_CORETYPE": "Haswell"},
    "numpy-baseline": {"NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL"},
}
EXACT = ("weights_sha256", "model_key", "acc_before", "acc_after", "ft_macs")


def run_under(kernel: str, exp, tmp_path) -> list:
    """The experiment's records, run (pre-training included, in a cache of its own) under `kernel`
    on this host (not exclusive: the results, not the times, are compared)."""
    lab = tmp_path / "lab.toml"
    lab.write_text(f'name = "kernels"\n[[boards]]\nname = "host"\ntransport = "local"\nimpls = ["numpy", "c"]\n'
                   f'exclusive = false\nwork_root = "{tmp_path / "host"}"\n')
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "NPY_DISABLE_CPU_FEATURES")}
    env.update(KERNELS[kernel], SKIP2BENCH_CACHE=str(tmp_path / f"cache-{kernel}"))
    out = tmp_path / f"run-{kernel}"
    done = subprocess.run([sys.executable, "-m", "harness", "run", "-e", exp, "-l", lab, "-o", out, "--no-report"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]


def test_backbones_and_jobs_are_the_same_under_every_kernel(tmp_path):
    data = cut_task(tmp_path / "small.npz", 64, {"pre": 400, "ft": 120, "test": 100})
    exp = small_experiment(tmp_path / "kernels.toml", data, ["ft-all", "lora-all", "skip2-lora"], ["numpy", "c"],
                           epochs=3, lr=0.05)
    runs = {kernel: run_under(kernel, exp, tmp_path) for kernel in KERNELS}
    first = runs["prescott"]
    assert len(first) == 6 and all(r["status"] == "ok" for r in first)
    for kernel, recs in runs.items():
        assert [{f: r[f] for f in EXACT} for r in recs] == [{f: r[f] for f in EXACT} for r in first], kernel
        for r, ref in zip(recs, first):
            # The C core's losses to the bit; NumPy's fine-tuning products are its BLAS kernel's,
            # so its losses only to rounding (the accuracies above are equal all the same).
            if r["impl"] == "c":
                assert r["epoch_loss"] == ref["epoch_loss"], kernel
            else:
                assert r["epoch_loss"] == pytest.approx(ref["epoch_loss"], rel=1e-5), kernel
