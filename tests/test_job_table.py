"""One definition of a job (targets/c/core/skip2_job.def): every part reads it, nothing else
spells a field out, and a new option reaches the experiment file, the record, job.json, RUN, the
C runner and the firmware through the table alone."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, copy_checkout, require_tool, serving_lab, write_runner_files
from harness.config import FinetuneHP
from harness.job_table import FIELDS, METHODS, RUN_SIZES, markdown
from harness.lab.standins import free_port
from harness.mcu import messages
from harness.plan import Job, job_id, runner_job
from harness.schema import DETERMINISTIC, upgrade

RESULTS = ROOT / "results"


def committed_records():
    """Every committed job record, upgraded to this schema, with the version it was written in."""
    for path in sorted(RESULTS.glob("*/records.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if upgrade(record)["record_type"] == "job":
                yield record.get("schema_version", 1), upgrade(record)


def job_of(record) -> tuple[dict, FinetuneHP]:
    """A committed record's runner job and hyper-parameters, rebuilt from its fields."""
    hp = FinetuneHP(**{f.name: record[f.name] for f in FIELDS if f.source == "hp" and record.get(f.name) is not None})
    job = Job(record["task"], record["seed"], record["variant"], record["board"], record["impl"], record["repetition"])
    return runner_job(job, hp), hp


def test_the_docs_table_is_the_one_made_from_the_def_file():
    text = (ROOT / "docs" / "runner-contract.md").read_text()
    block = re.search(r"<!-- fields: .*? -->\n(.*?)<!-- /fields -->", text, re.S)
    assert block and block.group(1) == markdown(), "run `skip2bench fields` and paste it into docs/runner-contract.md"


def test_every_deterministic_field_is_documented():
    text = (ROOT / "docs" / "records.md").read_text()
    section = text[text.index("## Deterministic fields"):]
    job_fields = {f.name for f in FIELDS}
    missing = [name for name in DETERMINISTIC if name not in job_fields and f"`{name}`" not in section]
    assert not missing


def test_run_fields_lie_apart_from_each_other_and_from_runs_own_bytes():
    taken = {messages.RUN_STREAM_AT: "stream",
             **{at: "hashes" for at in range(messages.RUN_MODEL_HASH_AT, messages.RUN_DATA_HASH_AT + 32)}}
    for f in messages.RUN_FIELDS:
        for at in range(f.run_at, f.run_at + RUN_SIZES[f.run_type]):
            assert at not in taken, f"{f.name} overlaps {taken[at]} at byte {at}"
            taken[at] = f.name
    assert messages.RUN_BYTES == max(taken) + 1 == 120
    assert [m.index for m in METHODS] == list(range(len(METHODS)))


def test_every_committed_job_keeps_its_id_and_its_run_bytes():
    # RUN's bytes of every committed MCU job, as the code before skip2_job.def packed them, by the
    # runner job they pack (a job's id moves with its backbone; its RUN bytes do not).
    before = json.loads((Path(__file__).parent / "data" / "mcu-run-bytes.json").read_text())
    ids, runs = 0, set()
    for version, record in committed_records():
        job, hp = job_of(record)
        if version >= 3:  # older records hashed fewer fields into their ids
            assert job_id(record["model_key"], record["variant"], hp) == record["job_id"], record["job_id"]
            ids += 1
        key = json.dumps(job, sort_keys=True)
        if key in before:
            assert messages.run(job, False, bytes(32), bytes(32)).hex() == before[key], key
            runs.add(key)
    assert ids > 1000 and runs == set(before)


# -- a new option through the table alone --------------------------------------------------------

NEW_ROW = "SKIP2_JOB_FIELD(far_probe, INT, 0, 1000, 7, ONLY(M(FAR)), HP, U32, 120)\n"

EXPERIMENT = """name = "probe"
tasks = ["small"]
methods = ["far", "ft-all"]
seeds = [0]
impls = ["numpy", "c"]
[task.small]
kind = "npz"
path = "{data}"
[model]
hidden = [8]
[pretrain]
epochs = 2
[finetune]
epochs = 2
batch_size = 20
[finetune.method.far]
far_probe = 9
"""

LAB = """name = "probe-lab"
standin_dir = "{state}"

[[boards]]
name = "mcu-an386"
transport = "serial"
port = "socket://127.0.0.1:{port}"
firmware = "mps2-an386"
[boards.standin]
machine = "mps2-an386"

[[boards]]
name = "host"
transport = "local"
impls = ["numpy", "c"]
work_root = "{host_root}"
"""


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """A copy of the repository whose skip2_job.def has one row more, and nothing else changed."""
    copy = copy_checkout(tmp_path_factory.mktemp("scratch") / "repo")
    table = copy / "targets" / "c" / "core" / "skip2_job.def"
    table.write_text(table.read_text() + NEW_ROW)
    return copy


def in_copy(copy: Path, code: str, env=None) -> str:
    """Python `code` run with the copy's harness and runners (printing JSON)."""
    done = subprocess.run([sys.executable, "-c", code], cwd=copy, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=f"{copy}:{copy}/targets/numpy", **(env or {})))
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_new_option_is_carried_everywhere_by_the_table_alone(scratch, tmp_path):
    for tool in ("cc", "make", "qemu-system-arm", "arm-none-eabi-gcc"):
        require_tool(tool)
    # The experiment file takes it, job.json and RUN carry it.
    out = json.loads(in_copy(scratch, """if True:
        import json
        from harness.config import FinetuneHP, Experiment
        from harness.plan import Job, runner_job
        from harness.mcu import messages
        exp = Experiment(name="x", tasks=["synthetic"], methods=["far"],
                         finetune={"far_probe": 3, "method": {"far": {"far_probe": 9}}})
        hp = exp.finetune.for_variant("far")
        job = runner_job(Job("synthetic", 0, "far", "b", "c", 0), hp)
        run = messages.run(job, False, bytes(32), bytes(32))
        print(json.dumps({"default": FinetuneHP().far_probe, "job": job, "run": run.hex(),
                          "read": messages.read_run(run)}))
    """))
    assert out["default"] == 7 and out["job"]["far_probe"] == 9
    assert len(bytes.fromhex(out["run"])) == 124 and bytes.fromhex(out["run"])[120:124] == (9).to_bytes(4, "little")
    assert out["read"]["far_probe"] == 9

    # The C runner built from the copy reads it from job.json and echoes it.
    build = tmp_path / "c"
    subprocess.run(["make", "-s", "-C", str(scratch / "targets" / "c"), f"BUILD={build}"], check=True,
                   capture_output=True)
    files = write_runner_files(tmp_path, (6, 5, 4, 2), 20, 10, seed=3)
    work = tmp_path / "work"
    work.mkdir()
    (work / "job.json").write_text(json.dumps(dict(out["job"], n_layers=3, model_dir=str(files / "model"),
                                                   data_dir=str(files / "data"))))
    result = json.loads(subprocess.run([str(build / "skip2run"), str(work)], capture_output=True, text=True,
                                       check=True).stdout)
    assert result["job"]["far_probe"] == 9

    # A whole run: the records hold it, and every runner (NumPy, C, the firmware on an emulated
    # board, which echoes what it read in DONE) ran the job with it, or the record would be an error.
    data = tmp_path / "small.npz"
    in_copy(scratch, f"""if True:
        import numpy as np
        from harness.tasks import synthetic
        d = synthetic.load()
        keep = {{"pre": 200, "ft": 40, "test": 30}}
        np.savez("{data}", classes=np.array(d["classes"]), **{{f"x_{{s}}": d[f"x_{{s}}"][:n, :32] for s, n in keep.items()}},
                 **{{f"y_{{s}}": d[f"y_{{s}}"][:n] for s, n in keep.items()}})
    """)
    (tmp_path / "exp.toml").write_text(EXPERIMENT.format(data=data))
    lab = tmp_path / "lab.toml"
    lab.write_text(LAB.format(state=tmp_path / "state", port=free_port(), host_root=tmp_path / "host"))
    env = dict(os.environ, PYTHONPATH=str(scratch), SKIP2BENCH_CACHE=str(tmp_path / "cache"))
    with serving_lab(lab, env, cwd=scratch):
        run = subprocess.run([sys.executable, "-m", "harness", "run", "-e", str(tmp_path / "exp.toml"), "-l", str(lab),
                              "-o", str(tmp_path / "run"), "--no-report"], cwd=scratch, env=env,
                             capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    records = [json.loads(line) for line in (tmp_path / "run" / "records.jsonl").read_text().splitlines()]
    far = [r for r in records if r["method"] == "far"]
    assert {(r["board"], r["impl"]) for r in far} == {("host", "numpy"), ("host", "c"), ("mcu-an386", "c")}
    assert all(r["status"] == "ok" and r["far_probe"] == 9 for r in far), far
    # Every runner of the same job counts the same work; the firmware trains as the host's C does.
    assert len({(r["ft_macs"], r["trainable_params"]) for r in far}) == 1, far
    assert len({(r["acc_after"], tuple(r["epoch_loss"])) for r in far if r["impl"] == "c"}) == 1, far
    # Jobs of another method hold their default and do not depend on it.
    assert all(r["far_probe"] == 7 and r["status"] == "ok" for r in records if r["method"] == "ft-all")
