"""Report tests on a generated run directory with realistic records."""
import json
import statistics

import numpy as np
import pandas as pd
import pytest

from harness import work
from harness.report import ReportError, write_report
from harness.report import tables
from harness.report.load import load_records
from harness.schema import SCHEMA_VERSION, Result

# Fields a record has only when a runner returned a result.
RESULT_FIELDS = [f for f in Result.model_fields if f not in ("impl", "method", "status", "reason", "mem")] + [
    "mem_weights_bytes", "mem_grads_bytes", "mem_optimizer_bytes", "mem_activations_bytes", "mem_cache_bytes"]

TASKS = {"fan-damage1": (512, 2), "har": (64, 6), "synthetic": (256, 2)}
METHODS = ["ft-all", "ft-last", "ft-bias", "lora-all", "lora-last", "skip-lora", "skip2-lora", "far",
           "far-random", "bsr", "oselm-head"]
# Cacheable methods also run with the cache, as the "+cache" variant.
VARIANTS = [(m, m, m == "skip2-lora") for m in METHODS] + [
    ("ft-last", "ft-last+cache", True), ("lora-last", "lora-last+cache", True), ("bsr", "bsr+cache", True),
    ("oselm-head", "oselm-head+cache", True)]
HIDDEN, RANK, EPOCHS, N_TRAIN, N_TEST, BATCH = (96, 96), 4, 10, 300, 200, 20
SECONDS_PER_MAC = {"numpy": 4e-9, "c": 1.5e-9}


def make_record(task, method, variant, cache, impl, seed, board="local", repetition=0):
    n_in, n_out = TASKS[task]
    rng = np.random.default_rng([list(TASKS).index(task), VARIANTS.index((method, variant, cache)),
                                 seed, repetition, len(impl)])
    # The counts a runner would report for the job (harness/work.py), its epochs timed by their MACs.
    sizes, budget = [n_in, *HIDDEN, n_out], 1 << 20 if cache else -1
    hp = {"epochs": EPOCHS, "oselm_passes": EPOCHS, "batch_size": BATCH, "rank": RANK, "cache_budget_bytes": budget}
    counts = work.expected(variant, sizes, N_TRAIN, hp)
    mem = counts.pop("mem")
    lookups = counts["cache_hits"] + counts["cache_misses"]
    epoch_times = [m * SECONDS_PER_MAC[impl] * rng.uniform(0.95, 1.05)
                   for m in work.epoch_macs(variant, sizes, N_TRAIN, hp)]
    ft = sum(epoch_times)
    # Accuracy is a pure function of the job, so every impl reaches the same value.
    job_rng = np.random.default_rng([list(TASKS).index(task), METHODS.index(method), seed])
    before = round(N_TEST * (0.72 + 0.02 * job_rng.standard_normal())) / N_TEST
    after = round(N_TEST * min(0.99, before + 0.15 + 0.02 * job_rng.standard_normal())) / N_TEST
    return {
        "schema_version": SCHEMA_VERSION, "run_id": "run-test", "job_id": f"{task}/{variant}/s{seed}",
        "task": task, "method": method,
        "variant": variant, "impl": impl, "board": board, "seed": seed, "repetition": repetition,
        "epochs": EPOCHS, "batch_size": BATCH, "lr": 0.01, "rank": RANK, "scale": 1.0, "cache": cache,
        "cache_format": "f32", "input_format": "f32",
        "cache_budget_bytes": budget, "hidden": "96-96",
        "model_key": f"{task}-{seed}", "weights_sha256": "0" * 64, "data_sha256": "1" * 64,
        "board_fingerprint": "f" * 16, "started_at": "2025-01-01T00:00:00+00:00",
        "runner_sha256": "2" * 64, "attempts": 1, "time_kind": "device",
        "n_ft": N_TRAIN, "n_test": N_TEST,
        "runtime": {"machine": "x86_64"},
        "status": "ok", "reason": None, "error": None, "stderr_tail": None,
        "acc_before": before, "acc_after": after, "ft_time_s": ft,
        "fwd_time_s": 0.45 * ft, "bwd_time_s": 0.35 * ft, "upd_time_s": 0.1 * ft,
        "cache_time_s": 0.02 * ft if cache else 0.0, "epoch_times_s": epoch_times,
        "epoch_loss": [0.6 / (e + 1) for e in range(EPOCHS)], **counts,
        "cache_hit_rate": counts["cache_hits"] / lookups if counts["cache_capacity_samples"] else None,
        "peak_rss_bytes": int(60e6 + rng.integers(0, 1e6)), **{f"mem_{k}": v for k, v in mem.items()},
        "wall_s": ft + 0.3,
    }


def make_records(tasks=tuple(TASKS), impls=("numpy", "c"), seeds=(0, 1, 2)):
    records = [make_record(task, method, variant, cache, impl, seed)
               for task in tasks for method, variant, cache in VARIANTS for impl in impls for seed in seeds]
    for r in records:
        if r["task"] == "fan-damage1" and r["variant"] == "lora-all" and r["seed"] == 1:
            # As the NumPy runner reports a divergence: no accuracy after, the reason apart from errors.
            r.update(status="fail", acc_after=None, reason="loss became non-finite in epoch 4")
        if r["task"] == "har" and r["variant"] == "skip-lora" and r["seed"] == 2 and r["impl"] == impls[-1]:
            r.update(dict.fromkeys(RESULT_FIELDS))
            r.update(status="error", wall_s=600.0, error="runner timed out after 600 s",
                     stderr_tail="epoch 3/10\nTraceback (most recent call last):\nTimeoutError: job")
    return records


MANIFEST = {"run_id": "run-test", "created": "2025-01-01T00:00:00Z", "git": {"sha": "abc123", "dirty": True},
            "host": {"platform": "Linux-6.1", "machine": "x86_64", "cpu": "Test CPU", "cores": 8,
                     "mem_bytes": 16 * 2**30, "python": "3.12.1"},
            "versions": {"numpy": "2.1.0"}}


def write_run(path, records, trailer=""):
    path.mkdir(parents=True, exist_ok=True)
    (path / "manifest.json").write_text(json.dumps(MANIFEST))
    (path / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + trailer)
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    # Two tasks keep the plots (one panel per task and impl) quick to render.
    records = make_records(tasks=("fan-damage1", "har"))
    return write_report(write_run(tmp_path_factory.mktemp("run"), records)), records


def test_writes_every_output(report):
    out, _ = report
    for name in ("accuracy", "time", "reduction", "agreement", "status"):
        assert (out / f"{name}.md").stat().st_size > 0
        assert (out / f"{name}.csv").stat().st_size > 0
    text = (out / "report.md").read_text()
    assert text.startswith("# skip2bench report — run run-test")
    assert "abc123 (dirty)" in text and "Test CPU" in text and "16.0 GiB" in text
    for png in ("time_breakdown.png", "acc_vs_time.png", "acc_vs_memory.png", "epoch_times.png"):
        assert (out / png).read_bytes().startswith(b"\x89PNG")
        assert f"]({png})" in text
    # The same report as one page (checked in a browser by test_html.py): each table, each plot.
    page = (out / "index.html").read_text()
    assert all(f'id="table-{name}"' in page for name in ("accuracy", "time", "reduction", "agreement", "status"))
    assert 'id="acc_vs_time"' in page and 'alt="Fine-tuning time by phase"' in page and "Test CPU" in page


def test_accuracy_cell_is_mean_and_std_over_seeds(report):
    out, records = report
    cell = [r for r in records if r["task"] == "har" and r["variant"] == "skip2-lora" and r["impl"] == "c"]
    after = [100 * r["acc_after"] for r in cell]
    csv = pd.read_csv(out / "accuracy.csv")
    row = csv[(csv.task == "har") & (csv.variant == "skip2-lora") & (csv.impl == "c")].iloc[0]
    assert row.acc_after_mean == pytest.approx(statistics.mean(after))
    assert row.acc_after_std == pytest.approx(statistics.stdev(after))
    cell_text = f"{statistics.mean(after):.2f} ± {statistics.stdev(after):.2f}"
    assert cell_text in (out / "accuracy.md").read_text()


def test_variants_in_fixed_order(report):
    out, _ = report
    csv = pd.read_csv(out / "accuracy.csv")
    order = list(dict.fromkeys(csv[(csv.task == "har") & (csv.impl == "numpy")].variant))
    assert order == ["ft-all", "ft-last", "ft-last+cache", "ft-bias", "lora-all", "lora-last",
                     "lora-last+cache", "skip-lora", "skip2-lora", "far", "far-random", "bsr", "bsr+cache",
                     "oselm-head", "oselm-head+cache"]


def test_reduction_against_both_rivals(report):
    out, records = report

    def mean_time(variant):
        return statistics.mean(r["ft_time_s"] for r in records if r["task"] == "har"
                               and r["impl"] == "numpy" and r["variant"] == variant)
    csv = pd.read_csv(out / "reduction.csv")
    row = csv[(csv.task == "har") & (csv.impl == "numpy")].iloc[0]
    for rival in ("lora-all", "skip-lora"):
        expected = 100 * (1 - mean_time("skip2-lora") / mean_time(rival))
        assert row[f"time_red_vs_{rival}_%"] == pytest.approx(expected)
    assert 0 < row["macs_red_vs_skip-lora_%"] < 100


def test_errors_are_not_scored_but_reported(report):
    out, records = report
    acc = pd.read_csv(out / "accuracy.csv")
    cell = acc[(acc.task == "har") & (acc.variant == "skip-lora") & (acc.impl == "c")].iloc[0]
    assert cell.n == 2
    failed = acc[(acc.task == "fan-damage1") & (acc.variant == "lora-all") & (acc.impl == "numpy")].iloc[0]
    assert (failed.n, failed.fail) == (3, 1)
    assert failed.acc_after_mean == pytest.approx(100 * statistics.mean(
        r["acc_after"] for r in records if r["task"] == "fan-damage1" and r["variant"] == "lora-all"
        and r["impl"] == "numpy" and r["status"] == "ok"))
    status = pd.read_csv(out / "status.csv")
    row = status[(status.task == "har") & (status.variant == "skip-lora") & (status.impl == "c")].iloc[0]
    assert (row.ok, row.fail, row.error) == (2, 0, 1)
    problems = pd.read_csv(out / "status_problems.csv")
    error = problems[problems.status == "error"].iloc[0]
    assert (error.job_id, error.why, error.stderr_last_line) == (
        "har/skip-lora/s2", "runner timed out after 600 s", "TimeoutError: job")
    assert set(problems[problems.status == "fail"].why) == {"loss became non-finite in epoch 4"}
    assert "runner timed out" in (out / "report.md").read_text()


def test_retry_supersedes_earlier_error(tmp_path):
    records = make_records(tasks=("har",), impls=("c",), seeds=(2,))
    retried = next(r for r in records if r["status"] == "error")
    records.append(make_record("har", "skip-lora", "skip-lora", False, "c", 2))
    df = load_records(write_run(tmp_path, records))
    assert (len(df), df.attrs["superseded"]) == (len(records) - 1, 1)
    assert df.loc[df.job_id.eq(retried["job_id"]), "status"].tolist() == ["ok"]


def test_agreement_flags_mac_mismatch(tmp_path):
    records = make_records()
    mismatch = next(r for r in records
                    if r["task"] == "har" and r["variant"] == "lora-last" and r["impl"] == "c")
    mismatch["ft_macs"] += 1
    table = tables.agreement(load_records(write_run(tmp_path, records)))
    flagged = table[table.flag != ""]
    assert len(flagged) == 1
    row = flagged.iloc[0]
    assert (row.task, row.variant, row.seed) == ("har", "lora-last", mismatch["seed"])
    assert (row.flag, row.macs_equal) == ("macs", False)


def test_single_impl_omits_agreement(tmp_path):
    records = make_records(tasks=("synthetic",), impls=("numpy",), seeds=(0,))
    out = write_report(write_run(tmp_path, records))
    assert not (out / "agreement.md").exists()
    assert "Only one implementation (numpy) ran" in (out / "report.md").read_text()
    assert "impl" not in pd.read_csv(out / "accuracy.csv").columns


def test_truncated_last_line_is_skipped_with_warning(tmp_path):
    records = make_records(seeds=(0,))
    write_run(tmp_path, records, trailer=json.dumps(records[0])[:40])
    with pytest.warns(UserWarning, match="truncated"):
        df = load_records(tmp_path)
    assert len(df) == len(records)


def test_malformed_middle_line_names_file_and_line(tmp_path):
    write_run(tmp_path, make_records(seeds=(0,)))
    path = tmp_path / "records.jsonl"
    lines = path.read_text().splitlines()
    lines[4] = lines[4][:30]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ReportError, match=r"records\.jsonl:5:"):
        load_records(tmp_path)


@pytest.mark.parametrize("content", [None, "", "\n"])
def test_no_records_is_a_report_error(tmp_path, content):
    if content is not None:
        (tmp_path / "records.jsonl").write_text(content)
    with pytest.raises(ReportError, match="skip2bench run"):
        write_report(tmp_path)



def test_repetitions_are_averaged_before_the_std_over_seeds(tmp_path):
    seeds = (0, 1, 2)
    records = [make_record("har", "skip2-lora", "skip2-lora", True, "numpy", seed, repetition=rep)
               for seed in seeds for rep in range(3)]
    out = write_report(write_run(tmp_path / "run", records))
    row = pd.read_csv(out / "accuracy.csv").iloc[0]
    per_seed = [100 * r["acc_after"] for r in records if r["repetition"] == 0]
    assert row.n == len(seeds)
    assert row.acc_after_std == pytest.approx(statistics.stdev(per_seed))


def test_pareto_front_keeps_only_the_undominated():
    from harness.report.plots import pareto_front
    cost = pd.Series({"a": 1.0, "b": 2.0, "c": 2.0, "d": 3.0, "e": 0.5, "f": float("nan")})
    acc = pd.Series({"a": 0.90, "b": 0.95, "c": 0.93, "d": 0.95, "e": 0.80, "f": 0.99})
    # c is beaten by b (same cost, less accurate), d by b (costlier, as accurate); f has no cost.
    assert pareto_front(cost, acc) == ["a", "b", "e"]
