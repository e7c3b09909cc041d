"""SSH boards against real OpenSSH servers on loopback, started by the emulated lab's supervisor.

The lab here mirrors labs/emulated.toml on free ports: a board that builds the C runner itself
(its work root holds spaces and quotes), one that gets a cross-compiled aarch64 binary run under
qemu-aarch64, one whose Python has no NumPy, and the host itself as a local board with the same
Python, so every SSH record can be checked against the local record of the same job.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import ROOT, require_tool, unavailable
from harness.lab.standins import free_port
from harness.records import RecordLog, record_key
from harness.schema import Record

BOARD_PYTHON = "/usr/bin/python3"  # Debian's, with python3-numpy: the same on the host and the boards
WORK_ROOT = """it's a "work" root"""

EXPERIMENT = """
name = "ssh"
tasks = ["synthetic"]
methods = {methods}
seeds = [0]
impls = {impls}
boards = {boards}
repetitions = {repetitions}
[model]
hidden = {hidden}
[pretrain]
epochs = 3
[finetune]
epochs = {epochs}
"""


def ssh_board(name, port, state, extra="", standin="[boards.standin]"):
    return f"""
[[boards]]
name = "{name}"
transport = "ssh"
host = "127.0.0.1"
port = {port}
user = "skip2board"
key_file = "{state}/client_ed25519"
known_hosts = "{state}/known_hosts"
connect_timeout_s = 5
retries = 2
{extra}
{standin}
"""


def lab_text(ports, state, local_root, token) -> str:
    """Work roots go under one folder per test session in the board user's home."""
    return "\n".join([
        'name = "ssh-test"',
        ssh_board("sbc-native", ports[0], state,
                  f'tags = ["sbc"]\nimpls = ["numpy", "c"]\nwork_root = {json.dumps(f"{token}/{WORK_ROOT}")}'),
        ssh_board("sbc-aarch64", ports[1], state, f'tags = ["sbc"]\nimpls = ["c"]\nwork_root = "{token}/aarch64"\n'
                  'cross_compiler = "aarch64-linux-gnu-gcc"\nrun_prefix = "qemu-aarch64"'),
        ssh_board("sbc-nonumpy", ports[2], state, f'tags = ["sbc"]\nimpls = ["numpy", "c"]\nwork_root = "{token}/nonumpy"\n'
                  'python = "venv-without-numpy/bin/python3"',
                  '[boards.standin]\nvenv_without_numpy = "venv-without-numpy"'),
        f'[[boards]]\nname = "host"\ntransport = "local"\nimpls = ["numpy", "c"]\npython = "{BOARD_PYTHON}"\n'
        f'work_root = "{local_root}"\n',
    ])


class Lab:
    """A running `skip2bench lab serve`, our child: stopped and waited for at the end."""

    def __init__(self, path: Path):
        self.path = path
        self.token = path.parent.name
        self.log = path.parent / "serve.log"
        self.proc = subprocess.Popen([sys.executable, "-m", "harness", "lab", "serve", "--lab", str(path)],
                                     cwd=ROOT, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while "lab ready" not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"the lab did not start: {self.log.read_text()}")
            time.sleep(0.05)

    def ctl(self, *command) -> dict:
        done = subprocess.run([sys.executable, "-m", "harness", "lab", "ctl", "--lab", str(self.path), *command],
                              cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def work_root(self, name: str) -> str:
        """Where a board's work root `name` lies on the board."""
        import pwd
        return f"{pwd.getpwnam('skip2board').pw_dir}/{self.token}/{name}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if os.geteuid() != 0:
        unavailable("the emulated SSH lab needs root to run its stand-ins as the board user skip2board")
    if not Path("/usr/sbin/sshd").exists():
        unavailable("sshd not found (apt-get install openssh-server; `make lab-deps`)")
    for tool in ("qemu-aarch64", "aarch64-linux-gnu-gcc", "flock", "sha256sum"):
        require_tool(tool)
    if subprocess.run([BOARD_PYTHON, "-c", "import numpy"], capture_output=True).returncode != 0:
        unavailable(f"{BOARD_PYTHON} has no NumPy (apt-get install python3-numpy; `make lab-deps`)")
    # The board user must be able to enter the stand-ins' folder: pytest's own tmp is private.
    root = Path(tempfile.mkdtemp(prefix="skip2bench-ssh-lab-"))
    root.chmod(0o755)
    path = root / "lab.toml"
    path.write_text(lab_text([free_port() for _ in range(3)], root / "state", root / "host-root", root.name))
    running = Lab(path)
    yield running
    running.stop()
    leftover = processes_mentioning(str(root / "state"))
    shutil.rmtree(root)
    shutil.rmtree(Path(running.work_root("")), ignore_errors=True)
    assert not leftover, f"stand-ins left running: {leftover}"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def skip2bench(*args, cache, check=True, **popen):
    env = dict(os.environ, SKIP2BENCH_CACHE=str(cache), COLUMNS="250")
    proc = subprocess.run([sys.executable, "-m", "harness", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, env=env, **popen)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def start(*args, cache) -> subprocess.Popen:
    env = dict(os.environ, SKIP2BENCH_CACHE=str(cache), COLUMNS="250")
    return subprocess.Popen([sys.executable, "-m", "harness", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)


def outcome(run: subprocess.Popen, timeout: float) -> tuple:
    """The run's stdout and stderr once it ends; if it does not within `timeout`, the test fails
    with every thread's stack (the harness prints them on SIGUSR1)."""
    try:
        return run.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        run.send_signal(signal.SIGUSR1)
        time.sleep(2)
        run.kill()
        stdout, stderr = run.communicate()
        pytest.fail(f"the run did not end within {timeout} s; its threads:\n{stderr}\n{stdout[-3000:]}")


def experiment(tmp_path, name="exp.toml", methods=("ft-all", "lora-all", "skip2-lora"), impls=("numpy", "c"),
               boards=(), hidden=(16, 12), epochs=3, repetitions=1) -> Path:
    path = tmp_path / name
    path.write_text(EXPERIMENT.format(methods=json.dumps(list(methods)), impls=json.dumps(list(impls)),
                                      boards=json.dumps(list(boards)), hidden=json.dumps(list(hidden)),
                                      epochs=epochs, repetitions=repetitions))
    return path


def records(out: Path) -> list:
    return [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]


def processes_mentioning(text: str) -> list:
    """Live (not zombie) processes whose command line contains `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append((int(entry.name), cmdline.strip()))
    return found


def wait_for(predicate, timeout=60, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def runner_on(board_root: str, run_id: str = "*") -> list:
    """Runners working on a job of a run under the board's work root: the live pids of its jobs'
    pid files (a process of its own, or a session's forked child)."""
    pids = [int(text.split()[0]) for f in Path(board_root).glob(f"jobs/{run_id}/*/runner.pid")
            if (text := f.read_text().strip())]
    return [pid for pid in pids if _alive(pid)]


def nothing_left(board_root: str):
    """No process of the board's work root outlives the run (runners, sessions, the lock)."""
    wait_for(lambda: not processes_mentioning(f"{board_root}/"), timeout=15, what=f"nothing running in {board_root}")


# -- end to end -------------------------------------------------------------------------------
def test_ssh_boards_run_the_same_jobs_as_the_host(lab, cache, tmp_path):
    out = tmp_path / "run"
    proc = skip2bench("run", "-e", experiment(tmp_path), "-l", lab.path, "-o", out, "--no-report", cache=cache)
    recs = records(out)
    assert len(recs) == 3 * (2 + 1 + 2 + 2)
    local = {(r["job_id"], r["impl"]): r for r in recs if r["board"] == "host"}
    for r in recs:
        if r["board"] == "sbc-nonumpy" and r["impl"] == "numpy":
            assert r["status"] == "unsupported" and "No module named 'numpy'" in r["reason"]
            continue
        assert r["status"] == "ok", r
        ref = local[r["job_id"], r["impl"]]
        # Same runner, same inputs, the same numbers wherever it ran (aarch64 under QEMU included).
        for key in ("acc_before", "acc_after", "ft_macs", "epoch_loss", "trainable_params"):
            assert r[key] == ref[key], (r["board"], r["impl"], key)
        assert len(r["board_fingerprint"]) == 16 and len(r["runner_sha256"]) == 64
    by_board = {r["board"]: r for r in recs if r["impl"] == "c"}
    assert by_board["sbc-aarch64"]["runtime"]["machine"] == "aarch64"
    assert by_board["sbc-aarch64"]["runner_sha256"] != by_board["sbc-native"]["runner_sha256"]
    manifest = json.loads((out / "manifest.json").read_text())
    facts = manifest["boards"]["sbc-aarch64"]["facts"]
    assert facts["emulated"] == "aarch64 runner on a x86_64 board" and facts["cross_compiler"]
    assert manifest["boards"]["sbc-native"]["facts"]["numpy"]
    # Secrets and machine paths stay out: key files by basename only.
    text = (out / "manifest.json").read_text()
    assert "PRIVATE KEY" not in text and str(lab.path.parent / "state") not in text
    assert {b["key_file"] for b in manifest["lab"]["boards"] if b["transport"] == "ssh"} == {"client_ed25519"}
    assert "sbc-native: ready" in proc.stdout and "aarch64 runner on a x86_64 board" in proc.stdout

    # A second run sends no runner, model or data file again.
    again = tmp_path / "again"
    proc = skip2bench("run", "-e", experiment(tmp_path), "-l", lab.path, "-o", again, "--no-report", cache=cache)
    assert all(b["bytes_sent"] == {} for b in json.loads((again / "manifest.json").read_text())["boards"].values())
    assert proc.stdout.count("sent nothing new") == 4


def test_experiment_selects_boards_by_name_or_tag(lab, cache, tmp_path):
    out = tmp_path / "run"
    skip2bench("run", "-e", experiment(tmp_path, methods=["skip2-lora"], impls=["c"], boards=["sbc"]),
               "-l", lab.path, "-o", out, "--no-report", cache=cache)
    assert sorted(r["board"] for r in records(out)) == ["sbc-aarch64", "sbc-native", "sbc-nonumpy"]
    bad = skip2bench("run", "-e", experiment(tmp_path, boards=["nope"]), "-l", lab.path, "-o", tmp_path / "x",
                     cache=cache, check=False)
    assert bad.returncode == 2 and "match no board name or tag" in bad.stderr and "sbc-native" in bad.stderr


def test_lab_check_reports_facts_and_capabilities(lab, cache):
    proc = skip2bench("lab", "check", "--lab", lab.path, cache=cache)
    for board in ("sbc-native", "sbc-aarch64", "sbc-nonumpy", "host"):
        assert board in proc.stdout
    assert "cross: aarch64-linux-gnu-gcc" in proc.stdout and "No module named 'numpy'" in proc.stdout


def test_bench_runs_on_an_ssh_board_and_leaves_out_what_it_lacks(lab, cache, tmp_path):
    exp = experiment(tmp_path, methods=["lora-all", "skip2-lora"], epochs=2)
    out = tmp_path / "bench"
    skip2bench("bench", "-e", exp, "-n", "1", "-o", out, "--lab", lab.path, "--board", "sbc-native", cache=cache)
    records = RecordLog(out / "records.jsonl").read()
    status = {(r.get("variant") or r["probe"], r["impl"]): r for r in records}
    assert all(status[m, i]["status"] == "ok" for m in ("lora-all", "skip2-lora") for i in ("c", "numpy"))
    assert all("No module named 'torch'" in status[m, "torch"]["reason"] for m in ("lora-all", "skip2-lora"))
    assert status["sgemm-peak", "numpy"]["values"]["square"] > 0 and status["ceiling", "c"]["values"]["core"] > 0
    speed = (out / "report" / "speed.md").read_text()
    assert "sbc-native" in speed and "PyTorch did not run" in (out / "report" / "report.md").read_text()

    out = tmp_path / "bench-nonumpy"
    skip2bench("bench", "-e", exp, "-n", "1", "-o", out, "--lab", lab.path, "--board", "sbc-nonumpy", cache=cache)
    records = RecordLog(out / "records.jsonl").read()
    assert {r["impl"] for r in records if r["status"] == "ok"} == {"c"}
    peak = next(r for r in records if r.get("probe") == "sgemm-peak")
    assert peak["status"] == "unsupported" and "numpy" in peak["reason"].lower()
    assert (out / "report" / "speed.csv").is_file()


# -- faults -----------------------------------------------------------------------------------
SLOW = dict(methods=["ft-all", "lora-all", "skip-lora"], impls=["numpy"], boards=["sbc-native"],
            hidden=(96, 96), epochs=40)


def test_session_killed_mid_job_is_retried_and_nothing_is_lost(lab, cache, tmp_path):
    out = tmp_path / tmp_path.name  # its run id names its job folders on the board
    run = start("run", "-e", experiment(tmp_path, **SLOW), "-l", lab.path, "-o", out, "--no-report", cache=cache)
    wait_for(lambda: runner_on(lab.work_root(WORK_ROOT), out.name), what="a runner on sbc-native")
    victim = runner_on(lab.work_root(WORK_ROOT), out.name)[0]
    assert lab.ctl("drop", "sbc-native")["dropped"] >= 1
    stdout, stderr = outcome(run, 120)
    assert run.returncode == 0, stdout + stderr
    recs = records(out)
    assert [r["status"] for r in recs] == ["ok"] * 3
    assert len({(r["job_id"], r["board"], r["impl"], r["repetition"]) for r in recs}) == 3
    assert max(r["attempts"] for r in recs) == 2, stdout + stderr
    # The cut attempt's runner was killed before the retry, and nothing is left running.
    assert not _alive(victim)
    nothing_left(lab.work_root(WORK_ROOT))


def test_sshd_stopped_mid_run_errors_then_resume_completes(lab, cache, tmp_path):
    out = tmp_path / "run"
    # Jobs long enough (NumPy sessions start in milliseconds) that the stop lands before the
    # last ones are done.
    exp = experiment(tmp_path, **dict(SLOW, methods=["ft-all", "ft-last", "lora-all", "skip-lora"], epochs=150))
    run = start("run", "-e", exp, "-l", lab.path, "-o", out, "--no-report", cache=cache)
    wait_for(lambda: (out / "records.jsonl").exists() and (out / "records.jsonl").read_text().count("\n") >= 1,
             what="the first record")
    lab.ctl("stop", "sbc-native")
    try:
        stdout, stderr = outcome(run, 120)
        assert run.returncode == 1 and "ended in error" in stderr
        recs = records(out)
        assert recs[0]["status"] == "ok" and len(recs) == 4
        errors = [r for r in recs if r["status"] == "error"]
        assert errors and all("sbc-native" in r["error"] and r["acc_after"] is None for r in errors)
        assert any("Connection refused" in r["error"] or "lost" in r["error"] or "ended" in r["error"] for r in errors)
        nothing_left(lab.work_root(WORK_ROOT))
    finally:
        lab.ctl("start", "sbc-native")
    skip2bench("run", "-e", exp, "-l", lab.path, "-o", out, "--resume", "--no-report", cache=cache)
    final = {}
    for r in records(out):
        final[r["job_id"]] = r
    assert [r["status"] for r in final.values()] == ["ok"] * 4


def test_timeout_kills_the_runner_on_the_board(lab, cache, tmp_path):
    text = lab.path.read_text().replace('/nonumpy"', '/nonumpy"\ntimeout_s = 0.5')
    slow_lab = tmp_path / "lab.toml"
    slow_lab.write_text(text)
    out = tmp_path / "run"
    exp = experiment(tmp_path, **dict(SLOW, methods=["ft-all"], impls=["c"], boards=["sbc-nonumpy"], epochs=3000))
    assert skip2bench("run", "-e", exp, "-l", slow_lab, "-o", out, "--no-report", cache=cache, check=False).returncode == 1
    (rec,) = records(out)
    assert rec["status"] == "error" and "timed out after 0.5 s" in rec["error"] and "killed" in rec["error"]
    nothing_left(lab.work_root("nonumpy"))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_leaves_no_runner_on_the_board(lab, cache, tmp_path, sig):
    out = tmp_path / tmp_path.name
    run = start("run", "-e", experiment(tmp_path, **dict(SLOW, epochs=3000)), "-l", lab.path, "-o", out,
                "--no-report", cache=cache)
    wait_for(lambda: runner_on(lab.work_root(WORK_ROOT), out.name), what="a runner on sbc-native")
    run.send_signal(sig)
    stdout, stderr = outcome(run, 60)
    assert run.returncode == 130 and "continue with --resume" in stderr
    nothing_left(lab.work_root(WORK_ROOT))


def test_a_second_run_on_a_locked_board_is_refused(lab, cache, tmp_path):
    first_out = tmp_path / f"first-{tmp_path.name}"
    first = start("run", "-e", experiment(tmp_path, **dict(SLOW, methods=["ft-all"], epochs=400)), "-l", lab.path,
                  "-o", first_out, "--no-report", cache=cache)
    wait_for(lambda: runner_on(lab.work_root(WORK_ROOT), first_out.name), what="the first run's runner")
    second = skip2bench("run", "-e", experiment(tmp_path, name="e2.toml", **dict(SLOW, methods=["ft-all"])),
                        "-l", lab.path, "-o", tmp_path / "second", "--no-report", cache=cache, check=False)
    assert second.returncode == 1
    (rec,) = records(tmp_path / "second")
    assert rec["status"] == "error" and f"is in use by run {first_out.name}" in rec["error"]
    assert "sbc-native: unusable" in second.stdout
    assert first.wait(timeout=120) == 0
    assert [r["status"] for r in records(first_out)] == ["ok"]


def lab_with(tmp_path, lab, **fields) -> Path:
    """The test lab's sbc-native board alone, with some fields replaced."""
    text = lab.path.read_text()
    native = text[text.index("[[boards]]"):text.index("[[boards]]", text.index("[[boards]]") + 1)]
    for key, value in fields.items():
        lines = [line for line in native.splitlines() if not line.startswith(f"{key} =")]
        native = "\n".join([*lines, f"{key} = {json.dumps(value)}"]) + "\n"
    native = native.replace("[boards.standin]\n", "")
    path = tmp_path / "lab.toml"
    path.write_text('name = "variant"\n' + native)
    return path


def test_unknown_host_key_is_refused_unless_the_lab_trusts_on_first_use(lab, cache, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    proc = skip2bench("lab", "check", "--lab", lab_with(tmp_path, lab, known_hosts=str(empty)), cache=cache,
                      check=False)
    assert proc.returncode == 2 and "unknown host key" in proc.stdout and "SHA256:" in proc.stdout
    assert "accept-new" in proc.stdout
    skip2bench("lab", "check", "--lab", lab_with(tmp_path, lab, known_hosts=str(empty), host_key_policy="accept-new"),
               cache=cache)
    assert "ssh-ed25519" in empty.read_text()


def test_wrong_host_key_is_refused_with_a_clear_error(lab, cache, tmp_path):
    port = int(re.search(r"^port = (\d+)", lab_with(tmp_path, lab).read_text(), re.M).group(1))
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    known = tmp_path / "wrong_known_hosts"
    known.write_text(f"[127.0.0.1]:{port} " + " ".join(Path(f"{other}.pub").read_text().split()[:2]) + "\n")
    out = tmp_path / "run"
    proc = skip2bench("run", "-e", experiment(tmp_path, methods=["ft-all"], impls=["c"]), "-l",
                      lab_with(tmp_path, lab, known_hosts=str(known)), "-o", out, "--no-report", cache=cache,
                      check=False)
    assert proc.returncode == 1
    (rec,) = records(out)
    assert rec["status"] == "error" and "does not match" in rec["error"] and "ssh-keygen" in rec["error"]


def test_closed_port_is_a_clear_error(lab, cache, tmp_path):
    t0 = time.monotonic()
    proc = skip2bench("lab", "check", "--lab", lab_with(tmp_path, lab, port=free_port(), retries=0),
                      cache=cache, check=False)
    assert proc.returncode == 2 and "Connection refused" in proc.stdout
    assert time.monotonic() - t0 < 10


def test_silent_port_times_out_within_the_configured_timeout(lab, cache, tmp_path):
    with socket.socket() as silent:  # accepts, never says a word: a hung board
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        t0 = time.monotonic()
        proc = skip2bench("lab", "check", "--lab", lab_with(tmp_path, lab, port=port, retries=0,
                                                            connect_timeout_s=1.0), cache=cache, check=False)
        elapsed = time.monotonic() - t0
    assert proc.returncode == 2 and ("timed out" in proc.stdout or "banner" in proc.stdout), proc.stdout
    assert elapsed < 8


# -- boards in parallel: a signal, a board going down, the harness killed ----------------------
def own_groups(tmp_path, lab) -> Path:
    """The test lab (the same running stand-ins) with every board in a CPU group of its own, so
    that the boards run their jobs at the same time. The local board does not take this
    machine's board-wide lock, which another run on this machine may hold; its work root's lock
    is still taken."""
    text, n = re.subn(r'^\[\[boards\]\]\nname = "([^"]+)"\n', r'\g<0>cpu_group = "own-\1"\n', lab.path.read_text(),
                      flags=re.M)
    assert n == 4
    text = text.replace('cpu_group = "own-host"\n', 'cpu_group = "own-host"\nexclusive = false\n')
    path = tmp_path / "own-groups.toml"
    path.write_text(text)
    return path


def work_roots(lab, *boards) -> dict:
    """Board name -> its work root, as seen from this machine."""
    where = {"sbc-native": lab.work_root(WORK_ROOT), "sbc-aarch64": lab.work_root("aarch64"),
             "host": str(lab.path.parent / "host-root")}
    return {board: where[board] for board in boards}


def whole_records(out: Path) -> list:
    """The log's records, each line a whole record that validates (none cut short)."""
    path = out / "records.jsonl"
    text = path.read_text() if path.exists() else ""
    assert not text or text.endswith("\n"), f"the last record is cut short: {text[-200:]!r}"
    recs = [json.loads(line) for line in text.splitlines()]
    for rec in recs:
        Record.model_validate(rec)
    return recs


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_runners_of_boards_running_at_once(lab, cache, tmp_path, sig):
    out, roots = tmp_path / tmp_path.name, work_roots(lab, "sbc-native", "sbc-aarch64", "host")
    # Jobs far longer than the test (even C ones), so no runner ends by itself before the check.
    exp = experiment(tmp_path, methods=["ft-all", "lora-all"], boards=list(roots), epochs=200000)
    run = start("run", "-e", exp, "-l", own_groups(tmp_path, lab), "-o", out, "--no-report", cache=cache)
    try:
        # Every board's runner live (its pid file written) before the signal: a stop that lands
        # while a job's request is still on its way to a starting session is another case.
        wait_for(lambda: all(runner_on(root, out.name) for root in roots.values()), what="runners on every board at once")
        run.send_signal(sig)
        stdout, stderr = outcome(run, 60)
    finally:
        run.kill()
    log = out / "run.log"  # where a board that did not stop was waiting
    said = stdout + stderr + (log.read_text() if log.exists() else "")
    assert run.returncode == 130 and "continue with --resume" in stderr and "did not stop" not in stdout, said
    assert "could not stop the runner" not in stderr and "Traceback" not in stderr, said
    for root in roots.values():
        nothing_left(root)
    # A stopped job leaves no record; any records there are whole.
    assert all(r["status"] == "ok" for r in whole_records(out))


def test_a_board_going_down_mid_run_errors_its_jobs_and_resume_completes_them(lab, cache, tmp_path):
    out, roots = tmp_path / tmp_path.name, work_roots(lab, "sbc-native", "host")
    exp = experiment(tmp_path, methods=["ft-all", "lora-all"], impls=["numpy"], boards=list(roots), epochs=300,
                     repetitions=2)
    args = ("run", "-e", exp, "-l", own_groups(tmp_path, lab), "-o", out, "--no-report")
    run = start(*args, cache=cache)
    try:
        wait_for(lambda: runner_on(roots["sbc-native"], out.name), what="a runner on sbc-native")
        lab.ctl("stop", "sbc-native")
        stdout, stderr = outcome(run, 120)
        assert run.returncode == 1 and "ended in error" in stderr, stdout + stderr
        recs = whole_records(out)
        assert sorted(r["board"] for r in recs) == ["host"] * 4 + ["sbc-native"] * 4
        assert [r["status"] for r in recs if r["board"] == "host"] == ["ok"] * 4
        native = [r for r in recs if r["board"] == "sbc-native"]
        down = [r["status"] for r in native].index("error")  # from the stop on, every job is an error
        for r in native[down:]:
            assert r["status"] == "error" and r["acc_after"] is None, r
            assert "cannot reach board sbc-native" in r["error"] and "Connection refused" in r["error"], r["error"]
            assert "board down since job" in r["error"], r["error"]
    finally:
        run.kill()
        lab.ctl("start", "sbc-native")
    before = (out / "records.jsonl").read_bytes()
    done = {record_key(r) for r in recs if r["status"] == "ok"}
    resumed = skip2bench(*args, "--resume", cache=cache)
    after = (out / "records.jsonl").read_bytes()
    assert after.startswith(before)  # the records before the resume are untouched
    again = [json.loads(line) for line in after[len(before):].splitlines()]
    assert again and not done & {record_key(r) for r in again}  # no finished job ran again
    assert f", {len(done)} already done;" in resumed.stdout
    ok = Counter(record_key(r) for r in whole_records(out) if r["status"] == "ok")
    assert len(ok) == 8 and set(ok.values()) == {1}
    for root in roots.values():
        nothing_left(root)


def test_a_harness_killed_mid_run_resumes_where_it_stopped(lab, cache, tmp_path):
    out, roots = tmp_path / tmp_path.name, work_roots(lab, "sbc-native", "sbc-aarch64", "host")
    # Short jobs (C under QEMU is the slowest), several per board.
    exp = experiment(tmp_path, methods=["skip2-lora"], boards=list(roots), epochs=150, repetitions=3)
    args = ("run", "-e", exp, "-l", own_groups(tmp_path, lab), "-o", out, "--no-report")
    log = out / "records.jsonl"
    run = start(*args, cache=cache)
    try:
        wait_for(lambda: log.exists() and log.read_bytes().count(b"\n") >= 3, what="three records")
    finally:
        run.send_signal(signal.SIGKILL)  # no handler runs, no runner is stopped
        outcome(run, 30)
    before = log.read_bytes()
    before = before[:before.rfind(b"\n") + 1]  # a line being written at the kill is not a record
    done = [json.loads(line) for line in before.splitlines()]
    assert 3 <= len(done) < 15 and all(r["status"] == "ok" for r in done)
    resumed = skip2bench(*args, "--resume", cache=cache)
    assert log.read_bytes().startswith(before)
    assert f", {len(done)} already done;" in resumed.stdout, resumed.stdout
    recs = whole_records(out)
    assert [r["status"] for r in recs] == ["ok"] * 15, resumed.stdout
    assert set(Counter(map(record_key, recs)).values()) == {1}
    for root in roots.values():
        nothing_left(root)


# -- the upload path, with an injected cut ---------------------------------------------------
def test_an_upload_cut_in_the_middle_is_never_used(lab, cache, tmp_path, monkeypatch):
    from harness.config import load_lab
    from harness.kinds import open_target
    from harness.transports.ssh import SshShell

    board = load_lab(lab_with(tmp_path, lab, work_root=f"{lab.token}/cut-upload")).boards[0]
    payload = tmp_path / "model"
    payload.mkdir()
    (payload / "W0.npy").write_bytes(os.urandom(3 << 20))
    real_put = SshShell.put

    def cut_put(self, data, path):
        """Fault injection: half of a model file arrives, then the connection drops."""
        if path.endswith(".npy"):
            real_put(self, data[: len(data) // 2], path)
            self.client.get_transport().close()
        real_put(self, data, path)

    class Art:  # the part of Artifacts that prepare() reads
        model_dir = data_dir = payload

    monkeypatch.setattr(SshShell, "put", cut_put)
    target = open_target(board, "cut", cache)
    target.prepare([], [Art])
    target.close()
    assert target.down and "lost" in target.down
    root = Path(lab.work_root("cut-upload"))
    assert not (root / "models").exists()  # nothing half-uploaded was moved into place

    monkeypatch.setattr(SshShell, "put", real_put)
    target = open_target(board, "whole", cache)
    target.prepare([], [Art])
    target.close()
    assert target.down is None
    (deployed,) = (root / "models").iterdir()
    assert (deployed / "W0.npy").read_bytes() == (payload / "W0.npy").read_bytes()
    assert not list((root / "tmp").iterdir())  # the cut upload's leftovers are gone


def test_a_damaged_upload_fails_its_hash_check(lab, cache, tmp_path, monkeypatch):
    from harness.config import load_lab
    from harness.kinds import open_target
    from harness.transports.ssh import SshShell

    board = load_lab(lab_with(tmp_path, lab, work_root=f"{lab.token}/damaged-upload")).boards[0]
    payload = tmp_path / "data"
    payload.mkdir()
    (payload / "x_ft.npy").write_bytes(b"\x93NUMPY" + bytes(1000))
    real_put = SshShell.put
    monkeypatch.setattr(SshShell, "put", lambda self, data, path: real_put(self, data[:-1] + b"!", path))

    class Art:
        model_dir = data_dir = payload

    target = open_target(board, "damaged", cache)
    target.prepare([], [Art])
    target.close()
    assert target.down and "failed its sha256 check" in target.down
    assert not (Path(lab.work_root("damaged-upload")) / "models").exists()


def test_lab_up_and_down_leave_nothing_running(lab):
    from harness.config import load_lab
    from harness.lab import serve
    from rich.console import Console

    path = lab.path.parent / "updown.toml"
    state = lab.path.parent / "updown-state"
    path.write_text(f'name = "updown"\nstandin_dir = "{state}"\n'
                    + ssh_board("only", free_port(), state, f'work_root = "{lab.token}/updown"'))
    spec = load_lab(path)
    console = Console(file=open(os.devnull, "w"))
    supervisor = serve.up(path, spec, console)
    try:
        status = serve.ask(spec, "status")
        sshd = status["boards"]["only"]["pid"]
        assert status["boards"]["only"]["running"] and Path(f"/proc/{sshd}").exists()
    finally:
        serve.down(spec, console)
        supervisor.wait(timeout=30)
    assert not processes_mentioning(str(state))
    assert supervisor.returncode == 0



def test_overhead_benchmark_pairs_jobs_and_counts_bytes(lab, cache, tmp_path):
    runs = [tmp_path / "overhead", tmp_path / "again"]
    for out in runs:
        skip2bench("overhead", "--lab", lab.path, "--board", "sbc-nonumpy", "-n", "1", "-o", out, cache=cache)
    records = RecordLog(runs[0] / "records.jsonl").read()
    assert len(records) == 14 and {r["board"] for r in records} == {"sbc-nonumpy", "reference-host"}
    table = (runs[0] / "report" / "overhead.md").read_text()
    assert "sbc-nonumpy" in table and "reference-host" in table and "meets 30 ms" in table
    # The first run deploys the runner, model and data; the second finds them on the board.
    sent = [json.loads((out / "manifest.json").read_text())["boards"]["sbc-nonumpy"]["bytes_sent"] for out in runs]
    assert sum(sent[0].values()) > 0 and sum(sent[1].values()) == 0