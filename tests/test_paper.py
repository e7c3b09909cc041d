"""`skip2bench paper`: the paper's host tables in a reduced form (one seed, one repetition), on the
real data sets, reproduce the committed paper runs' jobs on every deterministic field."""
import csv
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from test_backbones import KERNELS
from harness.records import RecordLog

# What a job's record must repeat exactly, on any machine (docs/records.md); the C core's
# losses too (the NumPy runner's go through its BLAS).
DETERMINISTIC = ("acc_before", "acc_after", "ft_macs", "trainable_params", "weights_sha256", "model_key",
                 "data_sha256")
PAPER_RUNS = ("paper-fan", "paper-har")


def skip2bench(*args, code=0, env=None):
    done = subprocess.run([sys.executable, "-m", "harness", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=900, env=env)
    assert done.returncode == code, done.stdout + done.stderr
    return done


def committed(run: str) -> dict:
    return {(r["job_id"], r["impl"]): r for r in RecordLog(ROOT / "results" / run / "records.jsonl").read()
            if r["record_type"] == "job" and r["repetition"] == 0}


def test_the_reduced_host_tables_reproduce_the_committed_jobs(tmp_path):
    out, runs = tmp_path / "paper", tmp_path / "runs"
    skip2bench("paper", "--reduced", "--runs", runs, "--out", out)
    for run in PAPER_RUNS:
        mine = [r for r in RecordLog(runs / run / "records.jsonl").read() if r["record_type"] == "job"]
        theirs = committed(run)
        assert mine and all(r["status"] == "ok" and r["seed"] == 0 for r in mine)
        for r in mine:
            ref = theirs[r["job_id"], r["impl"]]
            assert {f: r[f] for f in DETERMINISTIC} == {f: ref[f] for f in DETERMINISTIC}, (run, r["variant"])
            if r["impl"] == "c":
                assert r["epoch_loss"] == ref["epoch_loss"], (run, r["variant"])
    # The combined report: every table, the paper's figures beside the project's.
    accuracy = list(csv.DictReader((out / "accuracy.csv").open()))
    assert len(accuracy) == 14 and {"fan-damage1_mean", "fan-damage2_mean", "har_mean"} <= set(accuracy[0])
    published = list(csv.DictReader((out / "published.csv").open()))
    cuts = {(p["claim"], p["where"]) for p in published}
    assert {("fine-tuning time cut against skip-lora", f"{impl} on host") for impl in ("c", "numpy")} <= cuts
    assert any(p["paper"].startswith("−90.0 %") for p in published)
    text = (out / "paper.md").read_text()
    for heading in ("Accuracy after fine-tuning", "Fine-tuning time and Skip2-LoRA's cut", "Training memory",
                    "The rivals' Pareto pictures", "Settings of every run"):
        assert f"## {heading}" in text
    assert (out / "index.html").stat().st_size > 0 and (out / "acc_vs_time.png").is_file()
    # Run again: the finished runs are kept, and the tables come back the same.
    before = (out / "accuracy.csv").read_text()
    again = skip2bench("paper", "--reduced", "--runs", runs, "--out", out)
    assert again.stdout.count("complete in") == 2 and (out / "accuracy.csv").read_text() == before


def test_an_unknown_table_is_named_with_the_known_ones(tmp_path):
    done = skip2bench("paper", "speedups", "--out", tmp_path, code=2)
    assert "no paper table speedups" in done.stderr and "accuracy, time" in done.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.bench
@pytest.mark.parametrize("kernel", [None, *KERNELS])
def test_the_paper_command_reproduces_the_committed_paper_tables(tmp_path, kernel):
    """The full host tables run afresh, backbones pre-trained again (a cache of its own), under
    this machine's kernels and under those another CPU would pick: every deterministic field of
    every job as committed."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "NPY_DISABLE_CPU_FEATURES")}
    env.update(KERNELS.get(kernel, {}), SKIP2BENCH_CACHE=str(tmp_path / "cache"))
    runs = tmp_path / "runs"
    skip2bench("paper", "--runs", runs, "--out", tmp_path / "paper", env=env)
    for run in PAPER_RUNS:
        theirs = {(r["job_id"], r["impl"], r["repetition"]): r
                  for r in RecordLog(ROOT / "results" / run / "records.jsonl").read() if r["record_type"] == "job"}
        mine = [r for r in RecordLog(runs / run / "records.jsonl").read() if r["record_type"] == "job"]
        assert len(mine) == len(theirs)
        changed = [r for r in mine if {f: r[f] for f in DETERMINISTIC}
                   != {f: theirs[r["job_id"], r["impl"], r["repetition"]][f] for f in DETERMINISTIC}]
        under = kernel or "this machine's kernels"
        print(f"{run} under {under}: {len(mine)} jobs, {len(changed)} differ from the committed run: "
              + (", ".join(f"{r['variant']} {r['impl']} seed {r['seed']}" for r in changed) or "none"))
        # Every backbone, and every C job, to the bit. A NumPy job's own fine-tuning goes through
        # its BLAS (oselm-head's float32 recursive least squares most of all), so under another
        # kernel its accuracy may move by a test sample: that is the NumPy runner, not the backbone.
        assert all(r["weights_sha256"] == theirs[r["job_id"], r["impl"], r["repetition"]]["weights_sha256"]
                   for r in mine)
        assert [r for r in changed if r["impl"] == "c"] == []
        for r in changed:
            ref = theirs[r["job_id"], r["impl"], r["repetition"]]
            assert abs(r["acc_after"] - ref["acc_after"]) * r["n_test"] <= 1 + 1e-9, r["variant"]
