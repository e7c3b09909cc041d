"""End-to-end runs of the `skip2bench` command on the local target, and its handling of bad input."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from harness.schema import SCHEMA_VERSION

SMALL_EXPERIMENT = """
name = "small"
tasks = ["synthetic"]
methods = {methods}
seeds = [0, 1]
impls = ["numpy"]
[model]
hidden = [16, 12]
[pretrain]
epochs = 3
[finetune]
epochs = 3
lr = 0.02
"""

LAB = """
name = "test"
[[boards]]
name = "host"
transport = "local"
impls = ["numpy"]
{extra}
"""


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def skip2bench(*args, cache, check=False):
    env = dict(os.environ, SKIP2BENCH_CACHE=str(cache), COLUMNS="200")
    proc = subprocess.run([sys.executable, "-m", "harness", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, env=env)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]


@pytest.fixture
def files(tmp_path):
    methods = json.dumps(["ft-all", "ft-last+cache", "lora-all", "skip-lora", "skip2-lora"])
    return (write(tmp_path / "exp.toml", SMALL_EXPERIMENT.format(methods=methods)),
            write(tmp_path / "lab.toml", LAB.format(extra="")))


def test_run_writes_records_manifest_and_report(files, tmp_path, cache_dir):
    exp, lab = files
    out = tmp_path / "run"
    proc = skip2bench("run", "-e", exp, "-l", lab, "-o", out, cache=cache_dir, check=True)
    recs = records(out)
    assert len(recs) == 5 * 2
    assert {r["status"] for r in recs} == {"ok"}
    for r in recs:
        for field in ("task", "method", "impl", "board", "seed", "acc_before", "acc_after", "ft_time_s",
                      "fwd_time_s", "bwd_time_s", "upd_time_s", "ft_macs", "peak_rss_bytes",
                      "trainable_params"):
            assert r[field] is not None, field
        assert 0 <= r["acc_before"] <= 1 and 0 <= r["acc_after"] <= 1
        assert r["fwd_time_s"] + r["bwd_time_s"] + r["upd_time_s"] + r["cache_time_s"] <= r["ft_time_s"]
    by = {(r["variant"], r["seed"]): r for r in recs}
    # The cache changes time, not results (to float32 rounding: BLAS may round a row differently
    # in another batch), and cuts the counted work.
    for seed in (0, 1):
        plain, cached = by["skip-lora", seed], by["skip2-lora", seed]
        assert abs(plain["acc_after"] - cached["acc_after"]) <= 1 / plain["n_test"]
        assert plain["epoch_loss"] == pytest.approx(cached["epoch_loss"], rel=1e-5)
        assert cached["ft_macs"] < plain["ft_macs"] and cached["cache_hit_rate"] > 0.5
        assert by["ft-last+cache", seed]["cache"] is True
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["git"]["sha"] and manifest["counts"]["ok"] == 10
    assert set(manifest["models"]) == {"synthetic/0", "synthetic/1"}
    assert (out / "report" / "report.md").exists()
    assert "report:" in proc.stdout


def test_runs_are_reproducible(files, tmp_path, cache_dir, tmp_path_factory):
    exp, lab = files
    a, b = tmp_path / "a", tmp_path / "b"
    skip2bench("run", "-e", exp, "-l", lab, "-o", a, "--no-report", cache=cache_dir, check=True)
    # A fresh cache: the backbone is pre-trained again and must come out bit-identical.
    skip2bench("run", "-e", exp, "-l", lab, "-o", b, "--no-report",
               cache=tmp_path_factory.mktemp("fresh"), check=True)
    keep = ("job_id", "weights_sha256", "acc_before", "acc_after", "ft_macs", "epoch_loss")
    assert [{k: r[k] for k in keep} for r in records(a)] == [{k: r[k] for k in keep} for r in records(b)]


def test_resume_after_a_killed_run_skips_finished_jobs(files, tmp_path, cache_dir):
    exp, lab = files
    out = tmp_path / "run"
    skip2bench("run", "-e", exp, "-l", lab, "-o", out, "--no-report", cache=cache_dir, check=True)
    lines = (out / "records.jsonl").read_text().splitlines(keepends=True)
    # As if killed while writing the fourth record: three whole lines and half of one.
    (out / "records.jsonl").write_text("".join(lines[:3]) + lines[3][:40])
    again = skip2bench("run", "-e", exp, "-l", lab, "-o", out, cache=cache_dir)
    assert again.returncode == 2 and "--resume" in again.stderr
    skip2bench("run", "-e", exp, "-l", lab, "-o", out, "--resume", "--no-report", cache=cache_dir, check=True)
    recs = records(out)
    assert len(recs) == 10
    # The three whole records are untouched, byte for byte; the cut one was written again.
    assert (out / "records.jsonl").read_text().splitlines(keepends=True)[:3] == lines[:3]
    keys = [(r["job_id"], r["board"], r["impl"], r["repetition"]) for r in recs]
    assert len(set(keys)) == len(keys)


# Fault injection through a sitecustomize: the NumPy runner module, wherever it is imported (its
# own process or a runner session), gets a run() that dies.
CRASH_RUNNER = """
import importlib.abc, importlib.util, sys
class Crash(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "skip2_runner":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        load = spec.loader.exec_module
        def exec_module(module):
            load(module)
            def run(workdir, on_epoch=None):
                raise SystemExit("injected crash")
            module.run = run
        spec.loader.exec_module = exec_module
        return spec
sys.meta_path.insert(0, Crash())
"""


def test_runner_crash_is_recorded_as_error_with_stderr(tmp_path, cache_dir):
    exp = write(tmp_path / "exp.toml", SMALL_EXPERIMENT.format(methods='["ft-all"]'))
    # Fault injection: the real runner, made to die at start-up by a sitecustomize on its path.
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(CRASH_RUNNER)
    lab = write(tmp_path / "lab.toml", LAB.format(extra=f'python = "env PYTHONPATH={inject} {sys.executable}"'))
    out = tmp_path / "run"
    proc = skip2bench("run", "-e", exp, "-l", lab, "-o", out, cache=cache_dir)
    assert proc.returncode == 1 and "2 jobs ended in error" in proc.stderr and "--resume" in proc.stderr
    recs = records(out)
    assert [r["status"] for r in recs] == ["error", "error"]
    assert "exited with code 1" in recs[0]["error"] and "injected crash" in recs[0]["stderr_tail"]
    assert recs[0]["acc_after"] is None and recs[0]["schema_version"] == SCHEMA_VERSION


def test_python_without_numpy_makes_numpy_jobs_unsupported(tmp_path, cache_dir):
    exp = write(tmp_path / "exp.toml", SMALL_EXPERIMENT.format(methods='["ft-all"]'))
    # The real runner on a Python without site-packages cannot import NumPy.
    lab = write(tmp_path / "lab.toml", LAB.format(extra=f'python = "{sys.executable} -S"'))
    out = tmp_path / "run"
    proc = skip2bench("run", "-e", exp, "-l", lab, "-o", out, cache=cache_dir, check=True)
    recs = records(out)
    assert [r["status"] for r in recs] == ["unsupported", "unsupported"]
    assert all("No module named 'numpy'" in r["reason"] and r["error"] is None for r in recs)
    assert "numpy unsupported" in proc.stdout
    # Not re-run while the board's facts stay the same.
    again = skip2bench("run", "-e", exp, "-l", lab, "-o", out, "--resume", cache=cache_dir, check=True)
    assert "2 already done" in again.stdout and len(records(out)) == 2


def test_runner_timeout_is_recorded_as_error(tmp_path, cache_dir):
    exp = write(tmp_path / "exp.toml", SMALL_EXPERIMENT.format(methods='["ft-all"]'))
    lab = write(tmp_path / "lab.toml", LAB.format(extra="timeout_s = 0.001"))
    out = tmp_path / "run"
    proc = skip2bench("run", "-e", exp, "-l", lab, "-o", out, "--no-report", cache=cache_dir)
    assert proc.returncode == 1
    assert all(r["status"] == "error" and "timed out" in r["error"] for r in records(out))


@pytest.mark.parametrize("experiment, expected", [
    ('name = "x"\ntasks = ["synthetic"\n', "malformed TOML"),
    ('name = "x"\ntasks = ["nope"]\nmethods = ["ft-all"]\n', "unknown task 'nope'; known tasks: synthetic"),
    ('name = "x"\ntasks = ["synthetic"]\nmethods = ["lora-al"]\n', "unknown method 'lora-al'; known methods: ft-all"),
    ('name = "x"\ntasks = ["synthetic"]\nmethods = ["ft-all"]\n[finetune]\nepoch = 3\n', "finetune.epoch: unknown field"),
    ('name = "x"\ntasks = ["synthetic"]\nmethods = ["ft-all"]\n[finetune]\nlr = "fast"\n', "finetune.lr: "),
    ('name = "x"\ntasks = ["synthetic"]\nmethods = ["ft-all+cache"]\n', "unknown method 'ft-all+cache'"),
    ('tasks = ["synthetic"]\nmethods = ["ft-all"]\n', "name: missing required field"),
    ('name = "x"\ntasks = ["synthetic"]\nmethods = ["far"]\n[finetune]\nfar_keep = 1.5\n',
     "finetune.far_keep: must be a number in 0..1"),
    ('name = "x"\ntasks = ["synthetic"]\nmethods = ["oselm-head"]\n[finetune.method.oselm-head]\noselm_forget = 0.2\n',
     "finetune.method.oselm-head.oselm_forget: must be a number in 0.5..1"),
    ('name = "x"\ntasks = ["synthetic"]\nmethods = ["bsr"]\n[finetune]\nbsr_layers = [1, 1]\n',
     "finetune.bsr_layers: layers must not repeat; repeated: 1"),
    ('name = "x"\ntasks = ["synthetic"]\nmethods = ["bsr"]\n[finetune.method.bsr]\nbsr_layers = [3]\n',
     "finetune.method.bsr.bsr_layers: layer 3 does not exist; the model has layers 0..2"),
    ('name = "x"\ntasks = ["synthetic"]\nmethods = ["far+cache"]\n', "unknown method 'far+cache'"),
])
def test_bad_experiment_files_get_one_line_errors(tmp_path, cache_dir, experiment, expected):
    exp = write(tmp_path / "exp.toml", experiment)
    lab = write(tmp_path / "lab.toml", LAB.format(extra=""))
    proc = skip2bench("run", "-e", exp, "-l", lab, "-o", tmp_path / "out", cache=cache_dir)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert expected in proc.stderr and str(exp) in proc.stderr


def test_bad_lab_and_missing_files(tmp_path, files, cache_dir):
    exp, _ = files
    lab = write(tmp_path / "bad-lab.toml", 'name = "x"\n[[boards]]\nname = "b"\ntransport = "telepathy"\n')
    proc = skip2bench("run", "-e", exp, "-l", lab, cache=cache_dir)
    assert proc.returncode == 2 and "boards.0.transport: unknown transport 'telepathy'" in proc.stderr
    proc = skip2bench("run", "-e", tmp_path / "nope.toml", "-l", lab, cache=cache_dir)
    assert proc.returncode == 2 and "experiment file not found" in proc.stderr


def test_missing_data_set_names_where_it_is_expected(tmp_path, cache_dir):
    exp = write(tmp_path / "exp.toml", SMALL_EXPERIMENT.format(methods='["ft-all"]').replace("synthetic", "fan-damage1"))
    lab = write(tmp_path / "lab.toml", LAB.format(extra=""))
    out = tmp_path / "run"
    proc = skip2bench("run", "-e", exp, "-l", lab, "-o", out, "--data-root", tmp_path / "empty", cache=cache_dir)
    assert proc.returncode == 2 and "Traceback" not in proc.stdout + proc.stderr
    assert not out.exists()
    assert str(tmp_path / "empty") in proc.stderr and "--data-root" in proc.stderr


def test_unwritable_output_directory(files, tmp_path, cache_dir):
    exp, lab = files
    blocker = write(tmp_path / "a-file", "")
    proc = skip2bench("run", "-e", exp, "-l", lab, "-o", blocker / "run", cache=cache_dir)
    assert proc.returncode == 2 and "cannot write to output directory" in proc.stderr


def test_report_of_a_directory_without_records(tmp_path, cache_dir):
    proc = skip2bench("report", tmp_path, cache=cache_dir)
    assert proc.returncode == 2 and "records.jsonl" in proc.stderr and "Traceback" not in proc.stderr


def test_data_lists_every_task(cache_dir):
    proc = skip2bench("data", cache=cache_dir, check=True)
    for task in ("synthetic", "fan-damage1", "fan-damage2", "har"):
        assert task in proc.stdout


def test_both_implementations_run_matched_jobs(tmp_path, cache_dir):
    """The local target builds the C runner on first use; both impls train the same sequence.

    The implementations round differently (NumPy's float32 exp alone differs from the correctly
    rounded value on ~40 % of inputs, the C core's on ~10 %, and BLAS sums in another order), so
    they agree to rounding while training is stable; at lr 0.02 one ft-all seed's loss climbs in
    epoch 2, and there rounding grows into a different trajectory. This test keeps to lr 0.01."""
    methods = json.dumps(["ft-all", "ft-last+cache", "lora-all", "skip2-lora"])
    exp = write(tmp_path / "exp.toml", SMALL_EXPERIMENT.format(methods=methods)
                .replace('impls = ["numpy"]', 'impls = ["numpy", "c"]').replace("lr = 0.02", "lr = 0.01"))
    lab = write(tmp_path / "lab.toml", LAB.format(extra="").replace('impls = ["numpy"]', 'impls = ["numpy", "c"]'))
    out = tmp_path / "run"
    skip2bench("run", "-e", exp, "-l", lab, "-o", out, cache=cache_dir, check=True)
    by_job = {}
    for r in records(out):
        assert r["status"] == "ok", r
        by_job.setdefault(r["job_id"], {})[r["impl"]] = r
    assert len(by_job) == 4 * 2 and all(set(v) == {"numpy", "c"} for v in by_job.values())
    for pair in by_job.values():
        np_rec, c_rec = pair["numpy"], pair["c"]
        assert c_rec["ft_macs"] == np_rec["ft_macs"]
        assert c_rec["cache_hits"] == np_rec["cache_hits"]
        assert abs(c_rec["acc_after"] - np_rec["acc_after"]) <= 1 / np_rec["n_test"]
        assert c_rec["epoch_loss"] == pytest.approx(np_rec["epoch_loss"], rel=1e-5)
        assert c_rec["runtime"]["compiler"] and c_rec["runtime"]["arena_bytes"] > 0
        assert len(c_rec["runner_sha256"]) == 64 and len(np_rec["runner_sha256"]) == 64
    assert (out / "report" / "agreement.md").exists()


def test_resume_refuses_a_corrupted_record_log_with_one_line(files, tmp_path, cache_dir):
    exp, lab = files
    out = tmp_path / "run"
    skip2bench("run", "-e", exp, "-l", lab, "-o", out, "--no-report", cache=cache_dir, check=True)
    lines = (out / "records.jsonl").read_text().splitlines(keepends=True)
    lines[1] = lines[1][:25] + "\n"
    (out / "records.jsonl").write_text("".join(lines))
    proc = skip2bench("run", "-e", exp, "-l", lab, "-o", out, "--resume", cache=cache_dir)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "records.jsonl:2: malformed record" in proc.stderr and "fix or delete that line" in proc.stderr
    assert (out / "records.jsonl").read_text() == "".join(lines)  # nothing written was lost
