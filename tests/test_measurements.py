"""Measurements as runs: `skip2bench bench`, `growth` and `overhead` are presets run by the engine
on the local board into ordinary run directories (records, probe records, manifest), their tables
are report views over those records, and a benchmark killed in the middle resumes."""
import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, require_tool
from harness.config import load_experiment, load_lab
from harness.engine.schedule import queues
from harness.errors import UserError
from harness.plan import Job, expand, select_boards
from harness.probes import Probe
from harness.records import RecordLog, record_key
from harness.tasks import load_task

TINY = """
name = "{name}"
tasks = {tasks}
methods = ["ft-all", "lora-all", "skip2-lora"]
impls = ["c", "numpy"]
{extra}
[model]
hidden = [16, 12]
[pretrain]
epochs = 3
[finetune]
epochs = 2
"""
LAB = """
name = "one-host"
[[boards]]
name = "host"
transport = "local"
impls = ["numpy", "c"]
work_root = "{root}"
"""


@pytest.fixture
def env(tmp_path):
    require_tool("cc")
    return dict(os.environ, SKIP2BENCH_CACHE=str(tmp_path / "cache"), COLUMNS="200")


def write(tmp_path, name="tiny", tasks='["synthetic"]', extra="") -> tuple:
    exp, lab = tmp_path / f"{name}.toml", tmp_path / "lab.toml"
    exp.write_text(TINY.format(name=name, tasks=tasks, extra=extra))
    lab.write_text(LAB.format(root=tmp_path / "host-root"))
    return exp, lab


def skip2bench(*args, env, check=True):
    proc = subprocess.run([sys.executable, "-m", "harness", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=600)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def rows(path):
    return list(csv.DictReader(path.open()))


# -- the schedule --------------------------------------------------------------------------------
def test_rounds_pair_impls_and_methods_and_probe_the_board_after_each_round(tmp_path):
    exp_file, lab_file = write(tmp_path, extra='repetitions = 4\norder = "rounds"\nprobes = ["ceiling", "sgemm-peak"]')
    exp, lab = load_experiment(exp_file), load_lab(lab_file)
    queue = queues(exp, expand(exp, lab))["host"]
    assert len(queue) == 4 * (3 * 2 + 2)
    orders = []
    for rep in range(4):
        round_ = queue[rep * 8:(rep + 1) * 8]
        jobs, probes = round_[:6], round_[6:]
        assert {j.repetition for j in round_} == {rep}  # a round holds one repetition of every job
        assert [p.name for p in probes] == ["ceiling", "sgemm-peak"] and all(isinstance(p, Probe) for p in probes)
        # Each method's impls back to back, in the listed order of impls.
        assert [j.impl for j in jobs] == ["c", "numpy"] * 3
        assert all(jobs[i].variant == jobs[i + 1].variant for i in range(0, 6, 2))
        orders.append([j.variant for j in jobs[::2]])
    assert all(sorted(o) == sorted(exp.methods) for o in orders)
    assert len({tuple(o) for o in orders}) > 1  # a new order every round ...
    assert queues(exp, expand(exp, lab))["host"] == queue  # ... the same every time the experiment runs


def test_a_shuffled_run_probes_after_the_last_job_of_each_repetition(tmp_path):
    exp_file, lab_file = write(tmp_path, extra='repetitions = 3\nprobes = ["ceiling"]')
    exp, lab = load_experiment(exp_file), load_lab(lab_file)
    queue = queues(exp, expand(exp, lab))["host"]
    for probe in (item for item in queue if isinstance(item, Probe)):
        at = queue.index(probe)
        assert all(j.repetition > probe.repetition for j in queue[at + 1:] if isinstance(j, Job))
        assert any(j.repetition == probe.repetition for j in queue[:at] if isinstance(j, Job))


def test_a_sweep_makes_a_job_per_point_each_with_its_own_identity(tmp_path):
    from harness.engine.worker import identity
    from harness.artifacts import prepare
    exp_file, lab_file = write(tmp_path, extra="[finetune.sweep]\nepochs = [1, 4]\nrank = [2, 8]")
    exp, lab = load_experiment(exp_file), load_lab(lab_file)
    jobs = [j for j in expand(exp, lab) if j.variant == "skip2-lora" and j.impl == "c"]
    assert sorted(dict(j.point)["epochs"] * 10 + dict(j.point)["rank"] for j in jobs) == [12, 18, 42, 48]
    art = prepare(load_task("synthetic"), 0, exp.model, exp.pretrain, tmp_path / "cache")
    recs = [identity("r", j, exp, art, j.hp(exp.finetune)) for j in jobs]
    assert len({r["job_id"] for r in recs}) == 4
    assert all((r["epochs"], r["rank"]) == (dict(j.point)["epochs"], dict(j.point)["rank"]) for r, j in zip(recs, jobs))


@pytest.mark.parametrize("sweep, message", [
    ("colour = [1]", "colour is not a [finetune] field"),
    ("epochs = [1, 1]", "sweep.epochs must not repeat"),
    ("epochs = [0]", "epochs"),
])
def test_a_bad_sweep_is_refused_in_one_line(tmp_path, sweep, message):
    exp_file, _ = write(tmp_path, extra=f"[finetune.sweep]\n{sweep}")
    with pytest.raises(UserError) as err:
        load_experiment(exp_file)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_probe_needs_its_runner_and_a_reference_must_be_a_board_of_the_run(tmp_path):
    exp_file, lab_file = write(tmp_path, extra='probes = ["sgemm-peak"]')
    exp_file.write_text(exp_file.read_text().replace('impls = ["c", "numpy"]', 'impls = ["c"]'))
    with pytest.raises(UserError, match="sgemm-peak is measured by the numpy runner; add 'numpy' to impls"):
        load_experiment(exp_file)
    exp_file, lab_file = write(tmp_path, extra='reference = "elsewhere"')
    with pytest.raises(UserError, match="reference board 'elsewhere' is not among its boards"):
        select_boards(load_experiment(exp_file), load_lab(lab_file))


def test_repeat_finetune_repeats_only_the_fine_tuning_set(tmp_path):
    from harness.tasks.specs import SyntheticSpec
    data = load_task("synthetic")
    x4 = load_task("synthetic-x4", spec=SyntheticSpec(kind="synthetic", repeat_finetune=4))
    n = len(data.x_ft)
    assert len(x4.x_ft) == 4 * n and (x4.x_ft[n:2 * n] == data.x_ft).all() and (x4.y_ft[-n:] == data.y_ft).all()
    assert (x4.x_test == data.x_test).all() and (x4.x_pre == data.x_pre).all()


# -- the presets, end to end ----------------------------------------------------------------------
def test_bench_writes_job_and_probe_records_and_its_report_forms_the_speed_tables(tmp_path, env):
    exp, lab = write(tmp_path)
    out = tmp_path / "bench"
    proc = skip2bench("bench", "-e", exp, "-l", lab, "-n", "2", "-o", out, env=env)
    records = RecordLog(out / "records.jsonl").read()
    jobs = [r for r in records if r["record_type"] == "job"]
    probes = [r for r in records if r["record_type"] == "probe"]
    # Every method on C, NumPy and PyTorch (unsupported, with its reason, where torch is missing).
    assert len(jobs) == 2 * 3 * 3 and {r["impl"] for r in jobs} == {"c", "numpy", "torch"}
    assert all(r["status"] == "ok" for r in jobs if r["impl"] != "torch")
    assert all(r["status"] == "ok" or (r["status"] == "unsupported" and "torch" in r["reason"])
               for r in jobs if r["impl"] == "torch")
    assert sorted((p["probe"], p["repetition"]) for p in probes) == [("ceiling", 0), ("ceiling", 1),
                                                                      ("sgemm-peak", 0), ("sgemm-peak", 1)]
    assert all(p["status"] == "ok" and p["values"]["core" if p["probe"] == "ceiling" else "square"] > 0
               for p in probes)
    assert probes[0]["values"]["clock_mhz"] > 100
    speed = rows(out / "report" / "speed.csv")
    assert [r["method"] for r in speed] == ["ft-all", "lora-all", "skip2-lora"]
    for r in speed:
        assert float(r["C speed-up vs NumPy"]) > 0 and float(r["C GFLOP/s"]) > 0 and r["rounds"] == "2"
        assert 0 < float(r["C % of core ceiling"]) and 0 < float(r["C % of square peak"])
        assert int(r["acc spread (test samples)"]) <= 1
    reduction = rows(out / "report" / "speed_reduction.csv")
    assert {r["impl"] for r in reduction} >= {"C", "NumPy"} and all("reduction vs lora-all %" in r for r in reduction)
    bounds = rows(out / "report" / "epoch_bounds.csv")
    assert len(bounds) == 3 and all(float(r["epoch 1 / bound"]) > 0 for r in bounds)
    assert "## Probes" in (out / "report" / "report.md").read_text()
    assert "C speed-up vs NumPy" in proc.stdout  # the command prints its table


def test_a_bench_killed_in_the_middle_resumes_without_redoing_a_record(tmp_path, env):
    exp, lab = write(tmp_path)
    out = tmp_path / "bench"
    args = ["bench", "-e", exp, "-l", lab, "-n", "2", "-o", out]
    harness = subprocess.Popen([sys.executable, "-m", "harness", *map(str, args)], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    log = out / "records.jsonl"
    deadline = time.monotonic() + 120
    while not (log.is_file() and log.read_text().count("\n") >= 10):
        assert harness.poll() is None and time.monotonic() < deadline, "the bench ended before it was killed"
        time.sleep(0.02)
    os.killpg(harness.pid, signal.SIGKILL)  # the harness and the runners it started
    harness.wait()
    before = log.read_bytes()
    done = sum(1 for r in RecordLog(log).read() if r["status"] in ("ok", "unsupported"))
    proc = skip2bench(*args, "--resume", env=env)
    assert log.read_bytes().startswith(before[:before.rfind(b"\n") + 1])  # nothing written is rewritten
    records = RecordLog(log).read()
    keys = [record_key(r) for r in records if r["status"] != "error"]
    assert len(keys) == len(set(keys)) == 2 * (3 * 3 + 2)  # every job and probe once
    assert f"{done} already done" in proc.stdout


def test_growth_sweeps_epochs_on_a_repeated_set_and_fits_the_cost_of_an_epoch(tmp_path, env):
    exp, lab = write(tmp_path, name="tiny-growth", tasks='["synthetic", "synthetic-x4"]',
                     extra='[task.synthetic-x4]\nkind = "synthetic"\nrepeat_finetune = 4\n'
                           '[finetune.sweep]\nepochs = [1, 3, 6]')
    out = tmp_path / "growth"
    skip2bench("growth", "-e", exp, "-l", lab, "-n", "2", "-o", out, env=env)
    records = RecordLog(out / "records.jsonl").read()
    assert len(records) == 2 * 3 * 3 * 2 and {r["impl"] for r in records} == {"c"}
    assert {(r["task"], r["n_ft"]) for r in records} == {("synthetic", 400), ("synthetic-x4", 1600)}
    fits = rows(out / "report" / "growth_fits.csv")
    assert len(fits) == 3 * 2 and all(float(r["per_epoch_ms"]) > 0 for r in fits)
    # Four times the samples cost about four times as much per epoch (the same work per sample).
    per = {(r["task"], r["method"]): float(r["per_epoch_ms"]) for r in fits}
    assert all(2 < per["synthetic-x4", m] / per["synthetic", m] < 8 for m in ("lora-all", "skip2-lora"))
    cuts = rows(out / "report" / "growth_cuts.csv")
    assert sorted({r["epochs"] for r in cuts}) == ["1", "3", "6"] and all("cut vs lora-all %" in r for r in cuts)
    assert (out / "report" / "growth.png").stat().st_size > 10_000


def test_overhead_pairs_each_job_with_this_host_taking_turns(tmp_path, env):
    _, lab = write(tmp_path)
    out = tmp_path / "overhead"
    skip2bench("overhead", "-l", lab, "-n", "2", "-o", out, env=env)
    records = RecordLog(out / "records.jsonl").read()  # in the order the jobs ended
    assert len(records) == 2 * 2 * 7 and all(r["status"] == "ok" for r in records)
    # Job by job: the board and the reference take turns, each pair the same job and round.
    pairs = [records[i:i + 2] for i in range(0, len(records), 2)]
    assert all({r["board"] for r in p} == {"host", "reference-host"} for p in pairs)
    assert all(len({(r["job_id"], r["repetition"]) for r in p}) == 1 for p in pairs)
    table = rows(out / "report" / "overhead.csv")
    assert [(r["board"], r["reference"], r["jobs"]) for r in table] == [("host", "reference-host", "14")]
    assert "Bytes of runner, model and data files" in (out / "report" / "overhead.md").read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["experiment"]["reference"] == "reference-host"


def test_growth_fits_recover_fixed_and_per_epoch_costs():
    import pandas as pd
    from harness.report import growth
    rows = []
    for rep in range(3):
        for method, per_epoch in (("skip2-lora", 0.001), ("lora-all", 0.004), ("skip-lora", 0.002)):
            for epochs in (1, 5, 20, 40):
                t = 0.0005 + per_epoch * epochs + 1e-6 * rep
                rows.append({"board": "b", "task": "t", "impl": "c", "variant": method, "epochs": epochs,
                             "repetition": rep, "n_ft": 100, "ft_time_s": t, "status": "ok",
                             "epoch_times_s": [per_epoch] * epochs, "hidden": "8", "batch_size": 20, "lr": 0.01,
                             "rank": 4, "scale": 1.0, "cache_budget_bytes": -1, "input_format": "f32"})
    runs = pd.DataFrame(rows)
    runs.attrs["rounds"] = True
    f = growth.fits(runs).set_index("method")
    assert f.loc["lora-all", "per_epoch_ms"] == pytest.approx(4.0, rel=1e-3)
    assert f.loc["skip2-lora", "fixed_ms"] == pytest.approx(0.5, rel=1e-2)
    assert f.loc["skip-lora", "later_epoch_us_per_sample"] == pytest.approx(20)
    cut = growth.cuts(runs).set_index("epochs")
    assert cut.loc[40, "cut vs lora-all %"] == pytest.approx(100 * (1 - 0.0405 / 0.1605), abs=0.01)
    runs.attrs["rounds"] = False  # jobs not taken in rounds are not paired: no growth tables
    assert growth.fits(runs) is None and growth.cuts(runs) is None


def test_a_run_started_before_the_new_experiment_fields_resumes_and_a_change_is_still_refused(tmp_path, env):
    exp, lab = write(tmp_path)
    out = tmp_path / "run"
    skip2bench("run", "-e", exp, "-l", lab, "-o", out, "--no-report", env=env)
    manifest = json.loads((out / "manifest.json").read_text())
    for field in ("order", "probes", "reference"):  # as a run of an earlier version wrote it
        del manifest["experiment"][field]
    del manifest["experiment"]["finetune"]["sweep"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    proc = skip2bench("run", "-e", exp, "-l", lab, "-o", out, "--resume", "--no-report", env=env)
    assert "6 already done" in proc.stdout
    exp.write_text(exp.read_text().replace("epochs = 2", "epochs = 3"))
    proc = skip2bench("run", "-e", exp, "-l", lab, "-o", out, "--resume", "--no-report", env=env, check=False)
    assert proc.returncode == 2 and "finetune.epochs: 2 -> 3" in proc.stderr


def test_the_report_reads_every_committed_run_and_forms_the_measurement_tables_from_records(tmp_path):
    from harness.report import write_report
    runs = sorted(p.parent for p in (ROOT / "results").glob("*/records.jsonl"))
    assert {"bench", "growth", "overhead"} <= {run.name for run in runs}
    made = {}
    for run in runs:
        copy = tmp_path / run.name
        copy.mkdir()
        for name in ("records.jsonl", "manifest.json"):
            (copy / name).write_bytes((run / name).read_bytes())
        made[run.name] = {p.name for p in write_report(copy).iterdir()}
    assert {"speed.csv", "speed_reduction.csv", "epoch_bounds.csv", "probes.csv"} <= made["bench"]
    assert {"growth_fits.csv", "growth_cuts.csv", "growth.png"} <= made["growth"]
    assert "overhead.csv" in made["overhead"]
    # The tables of the committed report are the ones its records make today.
    for run, table in (("bench", "speed.csv"), ("growth", "growth_fits.csv"), ("overhead", "overhead.csv")):
        assert (tmp_path / run / "report" / table).read_text() == (ROOT / "results" / run / "report" / table).read_text()


# The last commit whose `skip2bench bench` ran its own loop into bench.csv (before it became a run).
OLD_BENCH = "f4d743f"
COMPARED = {  # the old bench.csv's column -> the report's speed.csv column
    "speedup_vs_numpy": "C speed-up vs NumPy", "speedup_vs_torch": "C speed-up vs PyTorch",
    "c_pct_of_square_peak": "C % of square peak", "c_pct_of_core_ceiling": "C % of core ceiling",
}


@pytest.mark.bench
def test_bench_new_and_old_agree_when_run_interleaved(tmp_path, env):
    """The old bench (its own loop, bench.csv) and the new one (a run, the report's speed table),
    run old, new, old, new in one session on the default fan model: every figure's paired ratio
    new/old, against the noise the report states (the NumPy speed-up's spread over rounds)."""
    import pandas as pd
    from harness.revisions import export
    from harness.tasks import default_data_root
    old_tree = export(OLD_BENCH, tmp_path / "old")
    env = dict(env, SKIP2BENCH_DATA=str(default_data_root()))  # the old tree finds no data beside itself
    exp = tmp_path / "bench.toml"  # the default experiment, on four methods
    exp.write_text((ROOT / "experiments" / "bench.toml").read_text().replace(
        '"ft-all", "ft-last", "ft-bias", "lora-all", "lora-last", "skip-lora", "skip2-lora"',
        '"ft-all", "lora-all", "skip-lora", "skip2-lora"'))
    old_exp = tmp_path / "old-bench.toml"  # what the old configuration accepts
    old_exp.write_text("\n".join(line for line in exp.read_text().splitlines()
                                 if not line.startswith(("impls", "repetitions", "order", "probes"))))
    tables = {"old": [], "new": []}
    for i in range(2):
        out = tmp_path / f"old-{i}"
        subprocess.run([sys.executable, "-m", "harness", "bench", "-e", str(old_exp), "-n", "3", "-o", str(out)],
                       cwd=old_tree, env=env, capture_output=True, check=True, timeout=1800)
        tables["old"].append(pd.read_csv(out / "bench.csv").set_index("method")[list(COMPARED)])
        out = tmp_path / f"new-{i}"
        skip2bench("bench", "-e", exp, "-n", "3", "-o", out, env=env)
        new = pd.read_csv(out / "report" / "speed.csv").set_index("method")
        tables["new"].append(new[list(COMPARED.values())].set_axis(list(COMPARED), axis=1)
                             .assign(noise=new["NumPy speed-up spread %"]))
    noise = pd.concat([t["noise"] for t in tables["new"]], axis=1).max(axis=1)
    print(f"\nnew / old, paired run by run (old {OLD_BENCH} and new interleaved; noise: the largest spread "
          "of the NumPy speed-up over rounds that the new runs' reports state)")
    worst = {}
    for column in COMPARED:
        ratios = pd.concat([n[column] / o[column] for n, o in zip(tables["new"], tables["old"])], axis=1)
        ratios.columns = ["pair 1", "pair 2"]
        print(f"\n{column}:\n{ratios.assign(**{'noise %': noise}).round(3).to_string()}")
        worst[column] = (100 * (ratios.median(axis=1) - 1).abs()).max()
    print("\nlargest |median ratio - 1| per figure, %:", {k: round(v, 1) for k, v in worst.items()},
          f"; largest stated noise {noise.max():.1f} %")
    assert all(v <= noise.max() for v in worst.values())
