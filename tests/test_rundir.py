"""The run directory under concurrency: one run at a time, names that cannot collide."""
import os
import subprocess
import sys

from conftest import ROOT
from harness import rundir
from harness.records import RecordLog

EXPERIMENT = """name = "pair"
tasks = ["synthetic"]
methods = ["ft-all", "lora-all", "skip2-lora"]
impls = ["numpy"]
[model]
hidden = [16]
[pretrain]
epochs = 1
[finetune]
epochs = 300
"""
LAB = 'name = "l"\n[[boards]]\nname = "host"\ntransport = "local"\nimpls = ["numpy"]\n'


def test_two_runs_started_together_on_one_directory(tmp_path):
    (tmp_path / "exp.toml").write_text(EXPERIMENT)
    (tmp_path / "lab.toml").write_text(LAB)
    out = tmp_path / "run"
    env = dict(os.environ, SKIP2BENCH_CACHE=str(tmp_path / "cache"))
    cmd = [sys.executable, "-m", "harness", "run", "-e", tmp_path / "exp.toml", "-l", tmp_path / "lab.toml",
           "-o", out, "--resume", "--no-report"]
    runs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    done = [(r.wait(timeout=300), r.stdout.read(), r.stderr.read()) for r in runs]
    # Whichever takes the directory's lock runs; the other is refused at once, or, if the machine
    # was so slow that it started after the first had finished, finds every job done.
    codes = sorted(code for code, _, _ in done)
    if codes == [0, 2]:
        refused = next(err for code, _, err in done if code == 2)
        assert f"{out} is in use by pid" in refused and len(refused.strip().splitlines()) == 1
    else:
        assert codes == [0, 0] and any("3 already done" in out_ for _, out_, _ in done), done
    records = RecordLog(out / "records.jsonl").read()
    assert len(records) == 3 and len({r["job_id"] for r in records}) == 3  # each job once


def test_default_names_do_not_collide(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    made = {rundir.new_dir("same") for _ in range(50)}  # all within the same second
    assert len(made) == 50 and all(d.is_dir() and d.name.startswith("same-") for d in made)
    assert {d.parent for d in made} == {tmp_path / "skip2bench-runs"}  # here, not in the package or checkout
