"""The bad-input and fault corpus: every case ends in one line that names the file or resource and
the fix (never a traceback), and loses no record already written.

Cases: experiment files, lab files, data files, the cache, the run directory, the record log,
signals and resource limits. Faults the real parts cannot produce on demand are made with real
kernel limits (RLIMIT_FSIZE for a full disk, RLIMIT_AS for memory) or real signals.
"""
import fcntl
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from harness.records import RecordLog
from harness.schema import SCHEMA_VERSION

EXPERIMENT = """name = "tiny"
tasks = ["synthetic"]
methods = ["ft-all", "skip2-lora"]
seeds = [0, 1]
impls = ["numpy"]
[model]
hidden = [8]
[pretrain]
epochs = 1
[finetune]
epochs = 1
"""
LAB = """name = "test"
[[boards]]
name = "host"
transport = "local"
impls = ["numpy"]
"""
SLOW = EXPERIMENT.replace("hidden = [8]", "hidden = [96, 96]").replace(
    "[finetune]\nepochs = 1", "[finetune]\nepochs = 400").replace('["ft-all", "skip2-lora"]',
                                                                 '["ft-all", "lora-all", "ft-bias", "skip-lora"]')


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def cli(*args, cache, cwd=ROOT, limit=None, env=None):
    """`skip2bench ARGS` in a child; `limit` = (resource, bytes) set in the child only."""
    def apply_limit():
        resource.setrlimit(limit[0], (limit[1], limit[1]))
    full_env = dict(os.environ, SKIP2BENCH_CACHE=str(cache), COLUMNS="250", **(env or {}))
    return subprocess.run([sys.executable, "-m", "harness", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=full_env, preexec_fn=apply_limit if limit else None, timeout=300)


def one_line_error(proc, needle, code=2):
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out
    assert proc.returncode == code, out
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert needle in lines[0], lines[0]
    return lines[0]


def write(path: Path, text) -> Path:
    path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    return path


@pytest.fixture(scope="module")
def base_run(tmp_path_factory, cache):
    """A finished run of the tiny experiment, copied by the cases that need one."""
    root = tmp_path_factory.mktemp("base")
    exp, lab = write(root / "exp.toml", EXPERIMENT), write(root / "lab.toml", LAB)
    proc = cli("run", "-e", exp, "-l", lab, "-o", root / "run", "--no-report", cache=cache)
    assert proc.returncode == 0, proc.stderr
    return root


@pytest.fixture
def run_copy(base_run, tmp_path):
    """(experiment, lab, run dir, the records' bytes before the case)."""
    shutil.copytree(base_run / "run", tmp_path / "run")
    exp, lab = shutil.copy(base_run / "exp.toml", tmp_path), shutil.copy(base_run / "lab.toml", tmp_path)
    return Path(exp), Path(lab), tmp_path / "run", (tmp_path / "run" / "records.jsonl").read_bytes()


def intact(run: Path, before: bytes):
    """Every record written before the case is still there, unchanged, and the log still reads."""
    now = (run / "records.jsonl").read_bytes()
    assert now.startswith(before)
    assert len(RecordLog(run / "records.jsonl").read()) >= before.count(b"\n")


# -- experiment files ----------------------------------------------------------------------------
BAD_EXPERIMENTS = [
    ('name = "x"\ntasks = ["synthetic"\n', "malformed TOML"),
    (EXPERIMENT + "colour = 3\n", "colour: unknown field"),
    (EXPERIMENT.replace('name = "tiny"\n', ""), "name: missing required field"),
    (EXPERIMENT.replace('"synthetic"', '"mnist"'), "unknown task 'mnist'"),
    (EXPERIMENT.replace('"ft-all"', '"ft-al"'), "unknown method 'ft-al'"),
    (EXPERIMENT.replace('"ft-all"', '"ft-all+cache"'), "unknown method 'ft-all+cache'"),
    (EXPERIMENT + "[finetune.method.lora-all]\nlr = '0.1'\n", "finetune.method.lora-all.lr: Input should be a valid number"),
    (EXPERIMENT.replace("[finetune]\nepochs = 1", "[finetune]\nepochs = true"), "finetune.epochs: Input should be a valid integer"),
    (EXPERIMENT.replace("[finetune]\nepochs = 1", "[finetune]\nepochs = 1\nlr = inf"), "finetune.lr: Input should be a finite number"),
    (EXPERIMENT.replace("[finetune]\nepochs = 1", "[finetune]\nepochs = 1\nscale = nan"), "finetune.scale: Input should be a finite number"),
    (EXPERIMENT.replace("seeds = [0, 1]", "seeds = [18446744073709551616]"), "seeds.0: Input should be less than or equal to 2147483647"),
    (EXPERIMENT.replace("seeds = [0, 1]", "seeds = [-1]"), "seeds.0: Input should be greater than or equal to 0"),
    (EXPERIMENT.replace("seeds = [0, 1]", "seeds = [0, 1, 0]"), "seeds must not repeat; repeated: 0"),
    (EXPERIMENT.replace("hidden = [8]", "hidden = [0]"), "model.hidden.0: Input should be greater than or equal to 1"),
    (EXPERIMENT.replace("hidden = [8]", "hidden = [8, 8, 8, 8, 8, 8, 8, 8]"), "model.hidden: List should have at most 7 items"),
    (EXPERIMENT.replace("hidden = [8]", "hidden = [70000]"), "model.hidden.0: Input should be less than or equal to 65535"),
    (EXPERIMENT.replace("[finetune]\nepochs = 1", "[finetune]\nepochs = 1\nrank = 65536"), "finetune.rank: Input should be less than or equal to 65535"),
    (EXPERIMENT.replace("[finetune]\nepochs = 1", "[finetune]\nepochs = 1\nbatch_size = 2000000"), "finetune.batch_size: Input should be less than or equal to 1000000"),
    (EXPERIMENT.replace("[finetune]\nepochs = 1", "[finetune]\nepochs = 1\ncache_budget_bytes = -2"), "finetune.cache_budget_bytes: Input should be greater than or equal to -1"),
    (EXPERIMENT.replace("[finetune]\nepochs = 1", "[finetune]\nepochs = 1\ninput_format = 'int4'"),
     "finetune.input_format: Input should be 'f32' or 'int8' (got 'int4')"),
    (EXPERIMENT + "[finetune.method.skip2-lora]\ninput_format = 8\n",
     "finetune.method.skip2-lora.input_format: Input should be 'f32' or 'int8' (got 8)"),
    (EXPERIMENT.replace('"skip2-lora"', '"skip-lora+cache-int8"'),
     "methods: unknown method 'skip-lora+cache-int8'; known methods: ft-all, "),
    (EXPERIMENT.replace('impls = ["numpy"]', 'impls = ["fortran"]'), "impls.0: Input should be 'numpy', 'c' or 'torch'"),
    (EXPERIMENT.replace('impls = ["numpy"]', 'impls = ["numpy"]\nboards = ["nowhere"]'), "match no board name or tag"),
    (EXPERIMENT.replace('impls = ["numpy"]', 'impls = ["c"]'), "no selected board of lab 'test' runs impls ['c']"),
    (b"name = \"x\"\n\xff\xfe\x00", "malformed TOML"),
    # Names become file names: a path, a NUL or a long name is refused before anything is written.
    (EXPERIMENT.replace('name = "tiny"', 'name = "../../../x"'), "name: a name must be 1 to 64 characters of letters, digits, _ . -"),
    (EXPERIMENT.replace('name = "tiny"', 'name = "/etc/x"'), "name: a name must be 1 to 64 characters of letters, digits, _ . -"),
    (EXPERIMENT.replace('name = "tiny"', 'name = "a\\u0000b"'), "name: a name must be 1 to 64 characters of letters, digits, _ . -"),
    (EXPERIMENT.replace('name = "tiny"', f'name = "{"x" * 65}"'), "name: a name must be 1 to 64 characters of letters, digits, _ . -"),
    (EXPERIMENT + '[task."../up"]\nkind = "npz"\npath = "x.npz"\n', "task.../up.[key]: a name must be 1 to 64 characters of letters, digits, _ . -"),
    # Text from files is never read as console markup: brackets stay in the message.
    (EXPERIMENT + '[task.extra]\nkind = "npz"\npath = "x.npz"\n', "[task.extra] is defined but not in tasks"),
    # Sizes no board holds, and learning rates that float32 rounds away or to infinity.
    (EXPERIMENT.replace("hidden = [8]", "hidden = [65535, 65535]"), "take 17.2 GB; at most 1.1 GB"),
    (EXPERIMENT.replace("hidden = [8]", "hidden = [60000]").replace("[finetune]\nepochs = 1",
                                                                    "[finetune]\nepochs = 1\nbatch_size = 1000000"),
     "GB of memory (weights, gradients, activations and cache); at most 8.6 GB a job"),
    (EXPERIMENT.replace("[finetune]\nepochs = 1", "[finetune]\nepochs = 1\nlr = 1e-50"),
     "finetune.lr: must be a positive number in float32's normal range (1.2e-38..3.4e+38) (got 1e-50)"),
    (EXPERIMENT.replace("[finetune]\nepochs = 1", "[finetune]\nepochs = 1\nlr = 1e39"),
     "finetune.lr: must be a positive number in float32's normal range (1.2e-38..3.4e+38) (got 1e+39)"),
    (EXPERIMENT.replace("seeds = [0, 1]", f"seeds = {list(range(2000))}\nrepetitions = 1000").replace(
        '"ft-all", "skip2-lora"', '"ft-all", "skip2-lora", "lora-all"'), "makes 6,000,000 jobs"),
]


@pytest.mark.parametrize("text, needle", BAD_EXPERIMENTS)
def test_bad_experiment_file(tmp_path, cache, text, needle):
    exp, lab = write(tmp_path / "exp.toml", text), write(tmp_path / "lab.toml", LAB)
    proc = cli("run", "-e", exp, "-l", lab, "-o", tmp_path / "out", cache=cache)
    line = one_line_error(proc, needle)
    assert str(exp) in line or "lab 'test'" in line
    assert not (tmp_path / "out").exists()  # bad input leaves no trace


def test_missing_experiment_file(tmp_path, cache):
    proc = cli("run", "-e", tmp_path / "nope.toml", "-l", write(tmp_path / "lab.toml", LAB), cache=cache)
    one_line_error(proc, "experiment file not found")


# -- lab files ---------------------------------------------------------------------------------
SSH = '[[boards]]\nname = "pi"\ntransport = "ssh"\nhost = "pi.local"\n'
BAD_LABS = [
    ('name = "x"\n[[boards]\n', "malformed TOML"),
    ('name = "x"\n[[boards]]\nname = "b"\ntransport = "telepathy"\n', "boards.0.transport: unknown transport 'telepathy'"),
    (LAB + LAB.replace('name = "test"\n', ""), "board names must be unique; repeated: host"),
    ('name = "x"\n[[boards]]\nname = "pi"\ntransport = "ssh"\n', "boards.0.ssh.host: missing required field"),
    ('name = "x"\n' + SSH + "port = 70000\n", "boards.0.ssh.port: Input should be less than or equal to 65535"),
    (LAB + "timeout_s = -5\n", "boards.0.local.timeout_s: Input should be greater than 0"),
    ('name = "x"\n' + SSH + 'host_key_policy = "yes"\n', "boards.0.ssh.host_key_policy: Input should be 'reject' or 'accept-new'"),
    (LAB.replace('name = "host"', 'name = "a/b"'), "boards.0.local.name: a name must be 1 to 64 characters of letters, digits, _ . -"),
    (LAB.replace('name = "host"', 'name = ".."'), "boards.0.local.name: a name must be 1 to 64 characters of letters, digits, _ . -"),
    (LAB.replace('name = "host"', f'name = "{"b" * 300}"'), "boards.0.local.name: a name must be 1 to 64 characters of letters, digits, _ . -"),
    # No lab string reaches a shell: compilers and flags are plain words for make.
    (LAB + 'c_compiler = "cc;touch X;cc"\n', "boards.0.local.c_compiler: may hold only letters"),
    (LAB + 'c_flags = "-O2 $(touch X)"\n', "boards.0.local.c_flags: may hold only letters"),
    (LAB + 'cross_compiler = "`touch X`"\n', "boards.0.local.cross_compiler: may hold only letters"),
    (LAB.replace('impls = ["numpy"]', "impls = []"), "boards.0.local.impls: List should have at least 1 item"),
    ('name = "x"\nboards = []\n', "boards: List should have at least 1 item"),
]


@pytest.mark.parametrize("text, needle", BAD_LABS)
def test_bad_lab_file(tmp_path, cache, text, needle):
    exp, lab = write(tmp_path / "exp.toml", EXPERIMENT), write(tmp_path / "lab.toml", text)
    line = one_line_error(cli("run", "-e", exp, "-l", lab, "-o", tmp_path / "out", cache=cache), needle)
    assert str(lab) in line
    assert not (tmp_path / "out").exists()


def test_missing_lab_file(tmp_path, cache):
    proc = cli("run", "-e", write(tmp_path / "exp.toml", EXPERIMENT), "-l", tmp_path / "nope.toml", cache=cache)
    one_line_error(proc, "lab file not found")


# -- data files ----------------------------------------------------------------------------------
def _data_root(tmp_path, damage=None):
    """A data root holding a copy of the real data sets, optionally with one file damaged."""
    shared = Path(ROOT).parent / "shared" / "datasets"
    root = tmp_path / "data"
    (root / "cooling-fan").mkdir(parents=True)
    (root / "cooling-fan" / "DATA").symlink_to(shared / "cooling-fan" / "DATA")
    (root / "hapt").mkdir()
    shutil.copy(shared / "hapt" / "hapt_raw.npz", root / "hapt")
    if damage:
        damage(root)
    return root


def _truncate_har(root):
    path = root / "hapt" / "hapt_raw.npz"
    path.write_bytes(path.read_bytes()[:5000])


def _bad_fan_zip(root):
    data = root / "cooling-fan" / "DATA"
    data.unlink()
    data.mkdir()
    for zip_path in (Path(ROOT).parent / "shared" / "datasets" / "cooling-fan" / "DATA").glob("*.zip"):
        (data / zip_path.name).symlink_to(zip_path)
    (data / "12cm_hmlo_normal_noisy_1.zip").unlink()
    (data / "12cm_hmlo_normal_noisy_1.zip").write_bytes(b"PK\x03\x04 this is not a zip")


@pytest.mark.parametrize("task, damage, needle", [
    ("fan-damage1", lambda root: shutil.rmtree(root / "cooling-fan"), "cooling-fan data not found"),
    ("har", lambda root: (root / "hapt" / "hapt_raw.npz").unlink(), "HAPT data not found"),
    ("har", _truncate_har, "har: cannot read its data set"),
    ("fan-damage1", _bad_fan_zip, "fan-damage1: cannot read its data set"),
])
def test_bad_data_files(tmp_path, cache, task, damage, needle):
    exp = write(tmp_path / "exp.toml", EXPERIMENT.replace('"synthetic"', f'"{task}"'))
    proc = cli("run", "-e", exp, "-l", write(tmp_path / "lab.toml", LAB), "-o", tmp_path / "out",
               "--data-root", _data_root(tmp_path, damage), cache=tmp_path / "fresh-cache")
    line = one_line_error(proc, needle)
    assert "--data-root" in line or "restore" in line
    assert not (tmp_path / "out").exists()


def test_data_root_that_is_a_file(tmp_path, cache):
    exp = write(tmp_path / "exp.toml", EXPERIMENT.replace('"synthetic"', '"har"'))
    proc = cli("run", "-e", exp, "-l", write(tmp_path / "lab.toml", LAB), "--data-root",
               write(tmp_path / "file", "x"), cache=cache)
    one_line_error(proc, "Invalid value for '--data-root'")


# -- the cache -------------------------------------------------------------------------------------
def test_damaged_cache_entry_is_made_again(run_copy, tmp_path, cache):
    exp, lab, _, _ = run_copy
    model = next((cache / "models").iterdir())
    w0 = model / "W0.npy"
    np.save(w0, np.load(w0) * 2)  # a valid array with other weights: only the hash tells
    proc = cli("run", "-e", exp, "-l", lab, "-o", tmp_path / "again", "--no-report", cache=cache)
    assert proc.returncode == 0 and f"cache entry {model} was damaged (W0.npy changed" in proc.stdout
    assert [r["acc_after"] for r in RecordLog(tmp_path / "again" / "records.jsonl").read()] == \
        [r["acc_after"] for r in RecordLog(run_copy[2] / "records.jsonl").read()]


@pytest.mark.parametrize("manifest, damage", [(b"[1]", "files.json is not a table of file hashes"),
                                              (b"[" * 100000 + b"]" * 100000, "unreadable"),
                                              (b"\xff\xfe", "unreadable")])
def test_a_cache_entry_with_a_damaged_hash_table_is_made_again(run_copy, tmp_path, cache, manifest, damage):
    exp, lab, _, _ = run_copy
    model = next((cache / "models").iterdir())
    (model / "files.json").write_bytes(manifest)
    proc = cli("run", "-e", exp, "-l", lab, "-o", tmp_path / "again", "--no-report", cache=cache)
    assert proc.returncode == 0 and f"cache entry {model} was damaged ({damage}" in proc.stdout, proc.stdout + proc.stderr


def test_cache_that_cannot_be_created(tmp_path, cache):
    exp, lab = write(tmp_path / "exp.toml", EXPERIMENT), write(tmp_path / "lab.toml", LAB)
    proc = cli("run", "-e", exp, "-l", lab, "-o", tmp_path / "out", cache=write(tmp_path / "a-file", "x") / "cache")
    one_line_error(proc, "SKIP2BENCH_CACHE")


def test_cache_on_a_full_disk(tmp_path):
    exp, lab = write(tmp_path / "exp.toml", EXPERIMENT), write(tmp_path / "lab.toml", LAB)
    # A file size limit stands in for a full disk: writing a model file fails with EFBIG.
    proc = cli("run", "-e", exp, "-l", lab, "-o", tmp_path / "out", cache=tmp_path / "cache",
               limit=(resource.RLIMIT_FSIZE, 8000))
    one_line_error(proc, "cannot write the cache entry")


# -- the run directory -----------------------------------------------------------------------------
def test_out_is_a_file(tmp_path, cache):
    exp, lab = write(tmp_path / "exp.toml", EXPERIMENT), write(tmp_path / "lab.toml", LAB)
    one_line_error(cli("run", "-e", exp, "-l", lab, "-o", write(tmp_path / "f", "x"), cache=cache),
                   "Invalid value for '--out' / '-o'")


def test_out_under_a_file(tmp_path, cache):
    exp, lab = write(tmp_path / "exp.toml", EXPERIMENT), write(tmp_path / "lab.toml", LAB)
    write(tmp_path / "f", "x")
    one_line_error(cli("run", "-e", exp, "-l", lab, "-o", tmp_path / "f" / "run", cache=cache), "choose another --out")


def test_existing_run_without_resume(run_copy, cache):
    exp, lab, run, before = run_copy
    one_line_error(cli("run", "-e", exp, "-l", lab, "-o", run, cache=cache), "pass --resume")
    intact(run, before)


def test_resume_with_another_experiment(run_copy, cache):
    exp, lab, run, before = run_copy
    manifest = (run / "manifest.json").read_bytes()
    write(exp, EXPERIMENT.replace("[finetune]\nepochs = 1", "[finetune]\nepochs = 2"))
    one_line_error(cli("run", "-e", exp, "-l", lab, "-o", run, "--resume", cache=cache),
                   "different experiment: finetune.epochs: 1 -> 2")
    intact(run, before)
    assert (run / "manifest.json").read_bytes() == manifest  # refused before writing anything


def test_resume_with_another_lab(run_copy, cache):
    exp, lab, run, before = run_copy
    write(lab, LAB + "timeout_s = 5\n")
    one_line_error(cli("run", "-e", exp, "-l", lab, "-o", run, "--resume", cache=cache),
                   "different lab: boards.0.timeout_s: 600.0 -> 5.0")
    intact(run, before)


@pytest.mark.parametrize("damage", [b'{"run_id": "tr', b'{"run_id": "\xff\xfe"}', b"[" * 100000 + b"]" * 100000])
def test_resume_with_a_damaged_manifest(run_copy, cache, damage):
    exp, lab, run, before = run_copy
    write(run / "manifest.json", damage)
    one_line_error(cli("run", "-e", exp, "-l", lab, "-o", run, "--resume", cache=cache), "manifest.json is damaged")
    intact(run, before)
    assert cli("report", run, cache=cache).returncode == 0  # the report only loses the machine facts


def test_resume_with_a_manifest_that_lost_the_experiment(run_copy, cache):
    exp, lab, run, before = run_copy
    manifest = json.loads((run / "manifest.json").read_text())
    del manifest["experiment"]
    write(run / "manifest.json", json.dumps(manifest))
    write(exp, EXPERIMENT.replace("[finetune]\nepochs = 1", "[finetune]\nepochs = 2"))
    one_line_error(cli("run", "-e", exp, "-l", lab, "-o", run, "--resume", cache=cache),
                   "does not say which experiment the run had")
    intact(run, before)


def test_resume_without_a_manifest(run_copy, cache):
    exp, lab, run, before = run_copy
    (run / "manifest.json").unlink()
    one_line_error(cli("run", "-e", exp, "-l", lab, "-o", run, "--resume", cache=cache), "no manifest.json")
    intact(run, before)


def test_run_directory_in_use(run_copy, cache):
    exp, lab, run, before = run_copy
    with open(run / ".lock", "a+") as held:  # another run holds the directory
        fcntl.flock(held, fcntl.LOCK_EX)
        held.truncate(0)
        held.write("pid 4242 on elsewhere since today (skip2bench run)")
        held.flush()
        one_line_error(cli("run", "-e", exp, "-l", lab, "-o", run, "--resume", cache=cache),
                       "is in use by pid 4242 on elsewhere")
    intact(run, before)


def test_disk_full_while_appending_records(run_copy, cache):
    exp, lab, run, before = run_copy
    records = RecordLog(run / "records.jsonl").read()
    # Drop the last record, then allow the log to grow by less than one record: the re-run
    # job's append fails with EFBIG, as on a full disk.
    lines = before.splitlines(keepends=True)
    (run / "records.jsonl").write_bytes(b"".join(lines[:-1]))
    limit = len(before) - len(lines[-1]) + 100
    assert limit > (run / "manifest.json").stat().st_size + 500  # only the log outgrows the limit
    proc = cli("run", "-e", exp, "-l", lab, "-o", run, "--resume", "--no-report", cache=cache,
               limit=(resource.RLIMIT_FSIZE, limit))
    one_line_error(proc, f"cannot write to {run / 'records.jsonl'}")
    assert "--resume" in proc.stderr
    intact(run, b"".join(lines[:-1]))
    assert len(RecordLog(run / "records.jsonl").read()) == len(records) - 1


def test_report_into_an_unwritable_place(run_copy, cache):
    _, _, run, before = run_copy
    write(run / "report", "a file where the report folder belongs")
    one_line_error(cli("report", run, cache=cache), "cannot write the report into")
    intact(run, before)


def test_report_of_a_missing_directory(tmp_path, cache):
    one_line_error(cli("report", tmp_path / "nope", cache=cache), "no records file")


# -- the record log --------------------------------------------------------------------------------
@pytest.mark.parametrize("damage, needle", [
    (lambda lines: [lines[0], b"{not json\n", *lines[1:]], "records.jsonl:2: malformed record"),
    (lambda lines: [lines[0].replace(f'"schema_version":{SCHEMA_VERSION}'.encode(), b'"schema_version":9'), *lines[1:]],
     "records.jsonl:1: schema_version 9 is not one this skip2bench reads"),
    (lambda lines: [lines[0].replace(b'"status":"ok"', b'"status":"done"'), *lines[1:]],
     "records.jsonl:1: not a valid record (status"),
    (lambda lines: [lines[0], b"[" * 100000 + b"]" * 100000 + b"\n", *lines[1:]], "records.jsonl:2: malformed record"),
    (lambda lines: [re.sub(rb'"run_id":"[^"]*"', b'"run_id":7', lines[0]), *lines[1:]],
     "records.jsonl:1: not a valid record (run_id"),
])
@pytest.mark.parametrize("command", ["report", "resume"])
def test_damaged_record_log(run_copy, cache, damage, needle, command):
    exp, lab, run, before = run_copy
    damaged = b"".join(damage(before.splitlines(keepends=True)))
    (run / "records.jsonl").write_bytes(damaged)
    args = ("report", run) if command == "report" else ("run", "-e", exp, "-l", lab, "-o", run, "--resume")
    one_line_error(cli(*args, cache=cache), needle)
    assert (run / "records.jsonl").read_bytes() == damaged  # nothing rewritten


def test_truncated_last_record_is_cut_and_run_again(run_copy, cache):
    exp, lab, run, before = run_copy
    lines = before.splitlines(keepends=True)
    (run / "records.jsonl").write_bytes(b"".join(lines[:-1]) + lines[-1][:30])
    proc = cli("run", "-e", exp, "-l", lab, "-o", run, "--resume", "--no-report", cache=cache)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    intact(run, b"".join(lines[:-1]))
    assert len(RecordLog(run / "records.jsonl").read()) == len(lines)


# -- signals and memory ------------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signal_mid_run_keeps_every_record(tmp_path, cache, sig):
    exp, lab = write(tmp_path / "exp.toml", SLOW), write(tmp_path / "lab.toml", LAB)
    out = tmp_path / "run"
    run = subprocess.Popen([sys.executable, "-m", "harness", "run", "-e", exp, "-l", lab, "-o", out],
                           cwd=ROOT, env=dict(os.environ, SKIP2BENCH_CACHE=str(cache)),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ((out / "records.jsonl").exists() and (out / "records.jsonl").read_bytes().count(b"\n") >= 1):
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()
        time.sleep(0.02)
    run.send_signal(sig)
    stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 130 and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("interrupted; records written so far are kept")
    records = RecordLog(out / "records.jsonl").read()
    assert 1 <= len(records) < 8 and all(r["status"] == "ok" for r in records)


def test_signal_during_pre_training_leaves_no_temporary_files(tmp_path):
    cache = tmp_path / "cache"
    exp = write(tmp_path / "exp.toml", SLOW.replace("[pretrain]\nepochs = 1", "[pretrain]\nepochs = 100000"))
    run = subprocess.Popen([sys.executable, "-m", "harness", "run", "-e", exp, "-l", write(tmp_path / "lab.toml", LAB),
                            "-o", tmp_path / "run"], cwd=ROOT, env=dict(os.environ, SKIP2BENCH_CACHE=str(cache)),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(cache.glob("models/.tmp-*")):  # pre-training has begun writing its entry
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()
        time.sleep(0.02)
    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 130 and "Traceback" not in stderr
    assert not list(cache.rglob(".tmp-*"))


def test_out_of_memory_is_one_line(tmp_path, cache):
    # Pre-training a 16000-wide pair of layers needs its 1 GB of weights and as much again for
    # their gradient; a 2 GB address-space limit refuses it.
    exp = write(tmp_path / "exp.toml", EXPERIMENT.replace("hidden = [8]", "hidden = [16000, 16000]"))
    proc = cli("run", "-e", exp, "-l", write(tmp_path / "lab.toml", LAB), "-o", tmp_path / "out",
               cache=cache, limit=(resource.RLIMIT_AS, 2 << 30))
    one_line_error(proc, "out of memory")


@pytest.mark.parametrize("field", ["python", "run_prefix", "work_root"])
def test_no_lab_string_reaches_a_shell(tmp_path, cache, field):
    # The strings a lab may hold that are not plain words (compilers and flags are, above) run
    # quoted word by word, or stay one path: ;, $(...) and backticks create nothing.
    marker = tmp_path / "touched"
    value = {"work_root": f"{tmp_path}/w;touch {marker}$(touch {marker})`touch {marker}`"}.get(
        field, f"true;touch {marker} $(touch {marker}) `touch {marker}`")
    lab = LAB.replace('impls = ["numpy"]', 'impls = ["numpy", "c"]') + f"{field} = {json.dumps(value)}\n"
    exp = EXPERIMENT.replace('impls = ["numpy"]', 'impls = ["numpy", "c"]')
    proc = cli("run", "-e", write(tmp_path / "exp.toml", exp), "-l", write(tmp_path / "lab.toml", lab),
               "-o", tmp_path / "out", cache=cache)
    assert "Traceback" not in proc.stdout + proc.stderr and proc.returncode in (0, 1), proc.stdout + proc.stderr
    assert not marker.exists()


def test_resume_needs_the_run_directory(tmp_path, cache):
    proc = cli("run", "-e", write(tmp_path / "exp.toml", EXPERIMENT), "-l", write(tmp_path / "lab.toml", LAB),
               "--resume", cache=cache)
    one_line_error(proc, "--resume continues a run directory: name it with --out DIR")


def test_a_key_file_others_can_read_is_refused(tmp_path, cache):
    key = tmp_path / "id_test"
    key.write_text("not really a key\n")
    key.chmod(0o644)
    lab = f'name = "x"\n{SSH}key_file = "{key}"\n'
    proc = cli("lab", "check", "--lab", write(tmp_path / "lab.toml", lab), cache=cache)
    one_line_error(proc, f"can be read by others (mode 644); a private key must be yours alone: chmod 600 {key}")


def test_non_finite_features_are_refused_when_the_task_loads(tmp_path, cache):
    from harness.tasks import synthetic
    d = synthetic.load()
    arrays = {k: d[k] for k in ("x_pre", "y_pre", "x_ft", "y_ft", "x_test", "y_test")}
    arrays["x_ft"] = arrays["x_ft"].copy()
    arrays["x_ft"][3, 7] = np.nan
    np.savez(tmp_path / "nan.npz", classes=np.array(d["classes"]), **arrays)
    exp = EXPERIMENT.replace('tasks = ["synthetic"]', 'tasks = ["mine"]') + \
        f'[task.mine]\nkind = "npz"\npath = "{tmp_path / "nan.npz"}"\n'
    proc = cli("run", "-e", write(tmp_path / "exp.toml", exp), "-l", write(tmp_path / "lab.toml", LAB),
               "-o", tmp_path / "out", cache=cache)
    one_line_error(proc, "x_ft row 3 feature 7 is nan; every feature must be a finite number")


def test_disk_full_at_the_run_lock_names_the_lock(tmp_path, cache):
    exp, lab = write(tmp_path / "exp.toml", EXPERIMENT), write(tmp_path / "lab.toml", LAB)
    assert cli("run", "-e", exp, "-l", lab, "-o", tmp_path / "warm", cache=cache).returncode == 0  # caches filled
    proc = cli("run", "-e", exp, "-l", lab, "-o", tmp_path / "out", cache=cache, limit=(resource.RLIMIT_FSIZE, 20))
    one_line_error(proc, f"cannot write {tmp_path / 'out' / '.lock'}: File too large; free space on its disk")


def test_a_damaged_c_runner_on_a_board_is_built_again(tmp_path, cache):
    root = tmp_path / "board"
    lab = write(tmp_path / "lab.toml", LAB.replace('impls = ["numpy"]', f'impls = ["c"]\nwork_root = "{root}"'))
    exp = write(tmp_path / "exp.toml", EXPERIMENT.replace('impls = ["numpy"]', 'impls = ["c"]'))
    assert cli("run", "-e", exp, "-l", lab, "-o", tmp_path / "first", cache=cache, cwd=tmp_path).returncode == 0
    binary = next(root.glob("runners/c-build/*/skip2run"))
    binary.write_bytes(binary.read_bytes()[:binary.stat().st_size // 2])  # truncated: it crashes on --about
    proc = cli("run", "-e", exp, "-l", lab, "-o", tmp_path / "second", cache=cache, cwd=tmp_path)
    assert proc.returncode == 0 and "the C runner failed its probe" in proc.stdout and "built again" in proc.stdout
    assert all(r["status"] == "ok" for r in RecordLog(tmp_path / "second" / "records.jsonl").read())
    assert {p.name for p in tmp_path.iterdir()} == {"board", "lab.toml", "exp.toml", "first", "second"}
