"""A lab over several hosts: the engine's board workers on Dask distributed (`run --dask`).

A real Dask scheduler and two real `dask worker` processes on loopback stand in for two lab PCs,
each declaring its own board (resource board-NAME) and keeping its own cache folder: one has a
local board running the C and NumPy runners, the other the emulated MCU board (the real firmware
under QEMU, served by `lab serve`). Every process started here is stopped and waited for.
"""
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, cut_task, require_tool, serving_lab, small_experiment
from harness.lab.standins import free_port
from harness.records import record_key
from harness.regress.compare import PHASE_COUNTS, PHASE_TICKS
from harness.schema import DETERMINISTIC

DASK = Path(sys.executable).parent / "dask"


def lab_text(state: Path, host_root: Path, mcu_port: int) -> str:
    return f"""name = "dask-test"
standin_dir = "{state}"

[[boards]]
name = "host-a"
transport = "local"
impls = ["c", "numpy"]
work_root = "{host_root}"

[[boards]]
name = "mcu-b"
transport = "serial"
port = "socket://127.0.0.1:{mcu_port}"
firmware = "mps2-an386"
[boards.standin]
machine = "mps2-an386"
"""


def _started(proc: subprocess.Popen, log: Path, words: str, what: str):
    deadline = time.monotonic() + 60
    while words not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{what} did not start: {log.read_text(errors='replace')}")
        time.sleep(0.1)


class Cluster:
    """A scheduler and one worker process per board, each with its own cache folder."""

    def __init__(self, root: Path):
        self.root, self.procs, self.workers = root, [], {}
        self.address = f"tcp://127.0.0.1:{free_port()}"
        log = root / "scheduler.log"
        proc = self._spawn(["scheduler", "--host", "127.0.0.1", "--port", self.address.rsplit(":", 1)[1],
                            "--no-dashboard"], log, os.environ)
        _started(proc, log, "Scheduler at:", "the Dask scheduler")

    def _spawn(self, args, log: Path, env) -> subprocess.Popen:
        proc = subprocess.Popen([str(DASK), *args], stdout=open(log, "ab"), stderr=subprocess.STDOUT, env=env,
                                cwd=self.root)
        self.procs.append(proc)
        return proc

    def start_worker(self, board: str):
        """A worker process that has `board`; no nanny, so that a killed worker stays dead."""
        log = self.root / f"worker-{board}.log"
        log.write_text("")
        env = dict(os.environ, SKIP2BENCH_CACHE=str(self.cache(board)))
        self.workers[board] = self._spawn(["worker", self.address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                                           "--resources", f"board-{board}=1"], log, env)
        _started(self.workers[board], log, "Registered to", f"the Dask worker of {board}")

    def cache(self, board: str) -> Path:
        return self.root / f"cache-{board}"

    def kill(self, board: str):
        self.workers[board].send_signal(signal.SIGKILL)
        self.workers[board].wait(timeout=30)

    def stop(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # a worker still closing its connections
                proc.kill()
                proc.wait(timeout=30)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return dict(os.environ, SKIP2BENCH_CACHE=str(tmp_path_factory.mktemp("host-cache")), COLUMNS="250")


@pytest.fixture(scope="module")
def lab(tmp_path_factory, env):
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc"):
        require_tool(tool)
    if not DASK.is_file():
        pytest.fail(f"{DASK} is missing: the test extra installs Dask distributed (pip install -e '.[test]')")
    root = tmp_path_factory.mktemp("dask-lab")
    path = root / "lab.toml"
    path.write_text(lab_text(root / "state", root / "host", free_port()))
    with serving_lab(path, env):
        yield path


@pytest.fixture(scope="module")
def dask(tmp_path_factory, lab):
    """The cluster of this module's tests, each worker with its cache kept between them."""
    made = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        for board in ("host-a", "mcu-b"):
            made.start_worker(board)
        yield made
    finally:
        made.stop()


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    root = tmp_path_factory.mktemp("dask-exp")
    data = cut_task(root / "small.npz", 64, {"pre": 400, "ft": 80, "test": 60})
    return small_experiment(root / "dask.toml", data, ["ft-all", "lora-all", "skip-lora", "skip2-lora"], ["c", "numpy"])


def skip2bench(*args, env, check=True):
    proc = subprocess.run([sys.executable, "-m", "harness", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=900)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def records(out: Path) -> list:
    return [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]


def test_a_run_on_dask_workers_gives_the_records_of_a_run_in_one_process(tmp_path, lab, experiment, env, dask):
    here = tmp_path / "here"
    skip2bench("run", "-e", experiment, "-l", lab, "-o", here, "--no-report", env=env)
    there = tmp_path / "there"
    done = skip2bench("run", "-e", experiment, "-l", lab, "-o", there, "--no-report", "--dask", dask.address, env=env)
    expected = {record_key(r): r for r in records(here)}
    got = {record_key(r): r for r in records(there)}
    assert len(got) == len(expected) == 4 * 3  # methods x (c, numpy on host-a; c on mcu-b)
    assert all(r["status"] == "ok" for r in got.values())
    for key, rec in got.items():
        assert {f: rec.get(f) for f in DETERMINISTIC if f not in PHASE_COUNTS} \
            == {f: expected[key].get(f) for f in DETERMINISTIC if f not in PHASE_COUNTS}, key
        # An emulated board times its phases in SysTick ticks of 40 instructions: a tick near a
        # phase switch may fall on either side of it as the host's pace shifts the timer's phase.
        for f in PHASE_COUNTS:
            assert abs((rec[f] or 0) - (expected[key][f] or 0)) <= PHASE_TICKS * 40, (key, f)
    # Each board's worker ran where its board is: the firmware was built in the MCU worker's own
    # cache, and the backbones reached both workers' caches by content hash.
    assert (dask.cache("mcu-b") / "firmware").is_dir() and not (dask.cache("host-a") / "firmware").exists()
    for board in ("host-a", "mcu-b"):
        assert len(list((dask.cache(board) / "models").iterdir())) == 1, board
    assert "board mcu-b: ready" in done.stdout


@contextlib.contextmanager
def run_until_a_record_of(board: str, experiment, lab, out: Path, dask: Cluster, env):
    """A run on the cluster in the background, handed over once `board` has written a record;
    killed if it is still running when the block ends."""
    command = [sys.executable, "-m", "harness", "run", "-e", str(experiment), "-l", str(lab), "-o", str(out),
               "--no-report", "--dask", dask.address]
    with open(out.parent / "run.out", "wb") as log:
        run = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while not any(r["board"] == board for r in (records(out) if (out / "records.jsonl").exists() else [])):
            assert run.poll() is None and time.monotonic() < deadline, (out.parent / "run.out").read_text()
            time.sleep(0.2)
        yield run
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()


def resumed_to_the_end(experiment, lab, out: Path, dask: Cluster, env) -> list:
    """The run resumed on the cluster: its records once it is complete, every job ok exactly once."""
    skip2bench("run", "-e", experiment, "-l", lab, "-o", out, "--no-report", "--dask", dask.address, "--resume",
               env=env)
    final = records(out)
    ok = [record_key(r) for r in final if r["status"] == "ok"]
    assert len(ok) == len(set(ok)) == 4 * 3
    return final


def test_a_killed_dask_worker_ends_its_boards_jobs_as_errors_and_resume_completes_them(tmp_path, lab, experiment,
                                                                                      env, dask):
    out = tmp_path / "run"
    with run_until_a_record_of("mcu-b", experiment, lab, out, dask, env) as run:
        dask.kill("mcu-b")
        assert run.wait(timeout=300) == 1  # jobs ended in error
    first = records(out)
    lost = [r for r in first if r["status"] == "error"]
    assert lost and all(r["board"] == "mcu-b" and "the Dask worker of board mcu-b was lost" in r["error"]
                        for r in lost)
    assert all(r["status"] == "ok" for r in first if r["board"] == "host-a")
    dask.start_worker("mcu-b")
    final = resumed_to_the_end(experiment, lab, out, dask, env)
    assert len(final) == len(first) + len(lost)  # the resumed run redid the lost ones only


def test_ctrl_c_stops_the_boards_on_dask_workers_and_resume_completes_the_run(tmp_path, lab, env, dask):
    # Longer jobs: the interrupt lands while the MCU board works on its second one.
    data = cut_task(tmp_path / "small.npz", 64, {"pre": 400, "ft": 80, "test": 60})
    experiment = small_experiment(tmp_path / "long.toml", data, ["ft-all", "lora-all", "skip-lora", "skip2-lora"],
                                  ["c", "numpy"], epochs=30)
    out = tmp_path / "run"
    with run_until_a_record_of("mcu-b", experiment, lab, out, dask, env) as run:
        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=60) == 130
    first = records(out)
    assert len(first) < 4 * 3 and all(r["status"] == "ok" for r in first)
    # The stop reached the actors: the workers are free for the next run.
    final = resumed_to_the_end(experiment, lab, out, dask, env)
    assert len(final) == 4 * 3
    assert "interrupted" in (tmp_path / "run.out").read_text()


def test_a_run_without_dask_never_imports_it(tmp_path, experiment, env):
    lab = tmp_path / "lab.toml"
    lab.write_text(f'name = "here"\n[[boards]]\nname = "host-a"\ntransport = "local"\nimpls = ["c", "numpy"]\n'
                   f'work_root = "{tmp_path / "host"}"\n')
    code = ("import sys\nfrom harness.cli import main\n"
            f"sys.argv = ['skip2bench', 'run', '-e', {str(experiment)!r}, '-l', {str(lab)!r}, '-o', "
            f"{str(tmp_path / 'run')!r}, '--no-report']\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'dask', 'distributed'}))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
