"""skip2bench mcu-speed splits a job's MACs by phase (fwd, bwd, upd) as the core counts them: the
parts add up to the record's ft_macs for every variant, with a partial last batch and a cache
smaller than the data set."""
import json
import subprocess
import sys

import pytest

from conftest import ROOT, full_job, write_runner_files
from harness.bench.mcu_speed import BATCH, RANK, VARIANTS
from harness.methods import parse_variant
from harness.report.phases import phase_macs

SIZES = (24, 16, 12, 3)


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_phases_macs_add_up_to_the_jobs(tmp_path, variant):
    files = write_runner_files(tmp_path, SIZES, n_ft=45, n_test=10, seed=3)
    method, cached, cache_format = parse_variant(variant)
    with_logits = method != "ft-last"
    values, segments = sum(SIZES[1:-1]) + (SIZES[-1] if with_logits else 0), len(SIZES) - 2 + with_logits
    row_bytes = values + 4 * segments if cache_format == "int8" else 4 * values  # docs/methods.md
    job = full_job(method, seed=1, epochs=2, batch_size=BATCH, lr=0.05, rank=RANK, cache=cached,
                   cache_format=cache_format, cache_budget_bytes=30 * row_bytes, n_layers=len(SIZES) - 1, model_dir=str(files / "model"),
                   data_dir=str(files / "data"))
    (tmp_path / "job.json").write_text(json.dumps(job))
    done = subprocess.run([sys.executable, str(ROOT / "targets" / "numpy" / "skip2_runner.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=60, check=True)
    result = dict(json.loads(done.stdout), variant=variant, rank=RANK, batch_size=BATCH)
    assert result["cache_capacity_samples"] == (30 if cached else 0)
    macs = phase_macs(result, list(SIZES))  # raises when the parts miss ft_macs
    assert macs["fwd"] > 0 and macs["bwd"] > 0 and macs["upd"] == 2 * 3 * result["trainable_params"]
