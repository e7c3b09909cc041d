"""SSH boards as people leave them, against real servers on loopback started by `lab serve`:

- noisy-bash: OpenSSH, login shell bash whose ~/.bashrc greets on stdout (one line without a
  newline) and stderr for every command, SFTP through the sftp-server program (which the greeting
  garbles), work root `~/<token>`;
- noisy-rc: OpenSSH, login shell dash, a greeting from ~/.ssh/rc, SFTP in-process;
- dropbear: dropbear with no SFTP server at all;
- host: this machine as a local board, the reference for every record.

Besides, work roots that are not the harness's (a home folder with the user's own ~/tmp/), one
that has the harness's layout but no marker, and the board-side Python under 3.8's rules.
"""
import ast
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import ROOT, full_job, serving_lab, unavailable, write_runner_files
from harness.lab.standins import free_port

BOARD_PYTHON = "/usr/bin/python3"  # Debian's, with python3-numpy, on the host and on every board
USERS = {"noisy-bash": "skip2noisy", "noisy-rc": "skip2rc", "dropbear": "skip2dropbear"}
# Fields of a record that the same job gives wherever it runs.
SAME = ("acc_before", "acc_after", "ft_macs", "epoch_loss", "trainable_params", "n_ft", "n_test")
EXPERIMENT = """
name = "real"
tasks = ["synthetic"]
methods = ["ft-all", "skip2-lora"]
seeds = [0]
impls = {impls}
boards = {boards}
[model]
hidden = [16, 12]
[pretrain]
epochs = 3
[finetune]
epochs = 3
"""


def ssh_board(name, port, state, work_root, standin):
    return (f'\n[[boards]]\nname = "{name}"\ntransport = "ssh"\nhost = "127.0.0.1"\nport = {port}\n'
            f'user = "{USERS[name]}"\nkey_file = "{state}/client_ed25519"\nknown_hosts = "{state}/known_hosts"\n'
            f'connect_timeout_s = 5\nimpls = ["numpy", "c"]\npython = "{BOARD_PYTHON}"\n'
            f'work_root = {json.dumps(work_root)}\n' + (f"[boards.standin]\n{standin}\n" if standin else ""))


def home(name: str) -> Path:
    return Path(pwd.getpwnam(USERS[name]).pw_dir)


class RealLab:
    def __init__(self, root: Path):
        self.root, self.token = root, root.name
        self.ports = {name: free_port() for name in USERS}
        self.path = root / "lab.toml"
        self.path.write_text(self.text())

    def text(self, **work_roots) -> str:
        """The lab; a board given a work root here is listed again under `<name>-alt`, on the
        same server with no stand-in table."""
        state, t = self.root / "state", self.token
        boards = [
            ssh_board("noisy-bash", self.ports["noisy-bash"], state, f"~/{t}",
                      'login_shell = "/bin/bash"\ngreeting = "bashrc"\nsftp = "program"'),
            ssh_board("noisy-rc", self.ports["noisy-rc"], state, f"{t}/rc", 'login_shell = "/bin/dash"\ngreeting = "ssh-rc"'),
            ssh_board("dropbear", self.ports["dropbear"], state, f"{t}/db", 'server = "dropbear"\nsftp = "none"'),
            f'\n[[boards]]\nname = "host"\ntransport = "local"\nimpls = ["numpy", "c"]\npython = "{BOARD_PYTHON}"\n'
            f'work_root = "{self.root / "host-root"}"\n',
        ]
        for name, root in work_roots.items():
            boards.append(ssh_board(name, self.ports[name], state, root, "").replace(f'"{name}"', f'"{name}-alt"', 1))
        return 'name = "real-boards"\n' + "".join(boards)

    def variant(self, tmp_path: Path, **work_roots) -> Path:
        path = tmp_path / "lab.toml"
        path.write_text(self.text(**work_roots))
        return path


@pytest.fixture(scope="module")
def lab():
    if os.geteuid() != 0:
        unavailable("real-board stand-ins need root: they run as board users of their own")
    for tool in ("sshd", "dropbear", "dropbearkey", "unshare", "setpriv", "bash", "dash", "flock", "sha256sum"):
        if shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin") is None:
            unavailable(f"{tool} not found (`make lab-deps` installs the emulated lab's tools, dropbear-bin among them)")
    if subprocess.run([BOARD_PYTHON, "-c", "import numpy"], capture_output=True).returncode != 0:
        unavailable(f"{BOARD_PYTHON} has no NumPy (apt-get install python3-numpy; `make lab-deps`)")
    root = Path(tempfile.mkdtemp(prefix="skip2bench-real-"))
    root.chmod(0o755)  # the board users pass through it to the stand-ins' state
    real = RealLab(root)
    try:
        with serving_lab(real.path, dict(os.environ)):
            yield real
    finally:
        shutil.rmtree(root)
        for name in USERS:
            shutil.rmtree(home(name) / real.token, ignore_errors=True)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def skip2bench(*args, cache, check=True):
    env = dict(os.environ, SKIP2BENCH_CACHE=str(cache), COLUMNS="250")
    proc = subprocess.run([sys.executable, "-m", "harness", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def experiment(tmp_path: Path, boards=(), impls=("numpy", "c")) -> Path:
    path = tmp_path / "exp.toml"
    path.write_text(EXPERIMENT.format(impls=json.dumps(list(impls)), boards=json.dumps(list(boards))))
    return path


def records(out: Path) -> list:
    return [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]


def tree(folder: Path) -> dict:
    """Every file under `folder` with its bytes (a user's files, to compare before and after)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def own(path: Path, text: str, user: str):
    """A file of the board user's own, made as that user would have."""
    entry = pwd.getpwnam(user)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    for p in (path.parent, path):
        os.chown(p, entry.pw_uid, entry.pw_gid)


# -- runs ---------------------------------------------------------------------------------------
def test_noisy_shells_and_dropbear_run_the_hosts_jobs(lab, cache, tmp_path):
    out = tmp_path / "run"
    skip2bench("run", "-e", experiment(tmp_path), "-l", lab.path, "-o", out, "--no-report", cache=cache)
    recs = records(out)
    assert len(recs) == 2 * 2 * 4 and all(r["status"] == "ok" for r in recs), [r.get("error") for r in recs]
    host = {(r["job_id"], r["impl"]): r for r in recs if r["board"] == "host"}
    for r in recs:
        for key in SAME:
            assert r[key] == host[r["job_id"], r["impl"]][key], (r["board"], r["impl"], key)
    facts = {name: b["facts"] for name, b in json.loads((out / "manifest.json").read_text())["boards"].items()}
    # The garbled SFTP and the missing one are found at connect; files go over exec channels.
    assert {name: f.get("file_transfer") for name, f in facts.items()} == \
        {"noisy-bash": "exec", "noisy-rc": "sftp", "dropbear": "exec", "host": None}
    # `~/<token>` is the board user's home, not a folder named "~".
    root = home("noisy-bash") / lab.token
    assert (root / ".skip2bench-work-root").is_file() and (root / "runners").is_dir()
    assert not list(home("noisy-bash").rglob("~")) and not (ROOT / "~").exists()


def test_lab_check_proves_each_board_and_warns_of_greetings_once(lab, cache):
    proc = skip2bench("lab", "check", "--lab", lab.path, cache=cache)
    rows = {line.split("│")[1].strip(): line for line in proc.stdout.splitlines() if line.count("│") > 5}
    assert "ssh/exec" in rows["noisy-bash"] and "ssh/sftp" in rows["noisy-rc"] and "ssh/exec" in rows["dropbear"]
    assert proc.stdout.count("warning: board noisy-bash: its login shell prints") == 1
    assert proc.stdout.count("warning: board noisy-rc: its login shell prints") == 1
    assert "Hello from ~/.ssh/rc" in proc.stdout and "dropbear: its login shell" not in proc.stdout
    assert "bashrc on stderr" in proc.stdout  # a greeting on stderr is set aside too
    # The lock it took is released: nothing holds it now.
    for name, root in (("noisy-bash", home("noisy-bash") / lab.token), ("dropbear", home("dropbear") / lab.token / "db")):
        assert subprocess.run(["flock", "-n", str(root / "lock"), "true"]).returncode == 0, name


def test_exec_file_transfer_checks_and_names_failures(lab, tmp_path):
    from harness.config import load_lab
    from harness.transports.ssh import SshShell

    board = next(b for b in load_lab(lab.path).boards if b.name == "dropbear")
    shell = SshShell(board)
    try:
        shell.connect()
        assert shell.facts == {"file_transfer": "exec"}
        data = os.urandom(1 << 20)
        folder = home("dropbear") / lab.token
        shell.put(data, f"{folder}/big.bin")
        assert (folder / "big.bin").read_bytes() == data and shell.get(f"{folder}/big.bin") == data
        assert not list(folder.glob("big.bin.part-*"))
        with pytest.raises(OSError, match="no/such/folder/f.*(nonexistent|No such file)"):
            shell.put(b"x", f"{folder}/no/such/folder/f")
        with pytest.raises(OSError, match="missing: No such file or directory"):
            shell.get(f"{folder}/missing")
    finally:
        shell.close()


# -- work roots that are not the harness's -----------------------------------------------------
def test_a_home_folder_work_root_is_refused_and_the_users_files_stay(lab, cache, tmp_path):
    user_home = home("noisy-rc")
    own(user_home / "tmp" / "draft.txt", "the user's own draft\n", USERS["noisy-rc"])
    own(user_home / "notes.txt", "the user's notes\n", USERS["noisy-rc"])
    # The user's files: all but the other boards' work roots and the board-wide lock in
    # ~/.skip2bench, which other boards of this server (this lab's) take.
    def users_files():
        return {k: v for k, v in tree(user_home).items() if not k.startswith((lab.token, ".skip2bench/"))}

    before = users_files()
    variant = lab.variant(tmp_path, **{"noisy-rc": "~"})
    out = tmp_path / "run"
    try:
        proc = skip2bench("run", "-e", experiment(tmp_path, boards=["noisy-rc-alt"]), "-l", variant, "-o", out,
                          "--no-report", cache=cache, check=False)
        check = skip2bench("lab", "check", "--lab", variant, cache=cache, check=False)
        after = users_files()
    finally:
        shutil.rmtree(user_home / "tmp")
        (user_home / "notes.txt").unlink()
    assert proc.returncode == 1
    recs = records(out)
    assert len(recs) == 4 and all(r["status"] == "error" for r in recs)
    assert all("holds files skip2bench did not make" in r["error"] and 'work_root' in r["error"] for r in recs)
    assert "\n" not in recs[0]["error"]
    assert check.returncode == 2 and "holds files skip2bench did not make" in check.stdout
    assert after == before and not (user_home / ".skip2bench-work-root").exists()


def local_lab(tmp_path: Path, root: Path) -> Path:
    path = tmp_path / "local.toml"
    path.write_text(f'name = "local"\n[[boards]]\nname = "host"\ntransport = "local"\nimpls = ["numpy"]\n'
                    f'python = "{BOARD_PYTHON}"\nwork_root = "{root}"\n')
    return path


def test_a_local_work_root_of_the_users_own_is_refused(cache, tmp_path):
    root = tmp_path / "thesis"
    (root / "tmp").mkdir(parents=True)
    (root / "tmp" / "draft.tex").write_text("\\section{Results}\n")
    (root / "thesis.tex").write_text("\\documentclass{article}\n")
    before = tree(root)
    out = tmp_path / "run"
    proc = skip2bench("run", "-e", experiment(tmp_path, impls=["numpy"]), "-l", local_lab(tmp_path, root), "-o", out,
                      "--no-report", cache=cache, check=False)
    assert proc.returncode == 1 and "holds files skip2bench did not make (thesis.tex)" in proc.stdout
    assert tree(root) == before and sorted(p.name for p in root.iterdir()) == ["thesis.tex", "tmp"]


def test_a_work_root_with_the_harness_layout_is_adopted_and_marked(cache, tmp_path):
    root = tmp_path / "old-root"
    for folder in ("runners", "jobs/old-run", "tmp/cut-upload"):
        (root / folder).mkdir(parents=True)
    (root / "lock").write_text("")
    (root / "jobs" / "old-run" / "kept.txt").write_text("an earlier run's file\n")
    out = tmp_path / "run"
    skip2bench("run", "-e", experiment(tmp_path, impls=["numpy"]), "-l", local_lab(tmp_path, root), "-o", out,
               "--no-report", cache=cache)
    assert all(r["status"] == "ok" for r in records(out))
    assert (root / ".skip2bench-work-root").is_file()
    assert not (root / "tmp" / "cut-upload").exists()  # its own tmp/ is cleared
    assert (root / "jobs" / "old-run" / "kept.txt").is_file()


# -- framing ------------------------------------------------------------------------------------
def test_a_framed_stream_skips_the_greeting_and_ends_at_its_end_line():
    from harness.transports import StreamEnded
    from harness.transports.framing import framed_stream, marker
    from harness.transports.host import ProcessStream

    mark = marker()
    stream = ProcessStream("printf 'Welcome!\\nno newline'; " + framed_stream("echo locked; printf 'last'", mark))
    stream.mark = mark
    try:
        assert [stream.readline(10), stream.readline(10)] == ["locked", "last"]
        with pytest.raises(StreamEnded):
            stream.readline(10)
    finally:
        stream.close()


# -- board-side Python --------------------------------------------------------------------------
BOARD_SIDE = sorted({*(ROOT / "targets" / "numpy").glob("*.py"), *(ROOT / "targets" / "torch").glob("*.py")})
# Standard-library names newer than Python 3.8 (the oldest board Python, docs/targets.md).
NEWER_THAN_3_8 = {"waitstatus_to_exitcode", "removeprefix", "removesuffix", "is_relative_to", "with_stem",
                  "randbytes", "lcm", "nextafter", "ulp", "pidfd_open", "bit_count", "pairwise", "zoneinfo",
                  "graphlib", "functools.cache"}
BUILTIN_GENERICS = {"list", "dict", "tuple", "set", "frozenset", "type"}


def newer_than_3_8(tree_: ast.AST) -> list:
    """Uses a Python 3.8 interpreter would refuse at run time: newer library names, and
    subscripted builtins or `X | Y` types (both evaluated on 3.8, even in annotations)."""
    found = []
    for node in ast.walk(tree_):
        names = {node.attr} if isinstance(node, ast.Attribute) else {node.id} if isinstance(node, ast.Name) else \
            {getattr(node, "module", None), *(a.name for a in node.names)} if isinstance(node, (ast.Import, ast.ImportFrom)) \
            else set()
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "functools":
            names.add(f"functools.{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module == "functools":
            names |= {f"functools.{a.name}" for a in node.names}
        found += [f"line {node.lineno}: {name}" for name in sorted(names & NEWER_THAN_3_8)]
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in BUILTIN_GENERICS:
            found.append(f"line {node.lineno}: {node.value.id}[...]")
        if isinstance(node, ast.keyword) and node.arg == "strict":
            found.append(f"line {node.value.lineno}: strict=... (3.10)")
    for node in ast.walk(tree_):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.AnnAssign, ast.arg)):
            notes = [node.returns] if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else [node.annotation]
            for n in filter(None, notes):
                if any(isinstance(b, ast.BinOp) and isinstance(b.op, ast.BitOr) for b in ast.walk(n)):
                    found.append(f"line {n.lineno}: X | Y in an annotation")
    return found


@pytest.mark.parametrize("path", BOARD_SIDE, ids=lambda p: p.name)
def test_board_side_python_parses_and_imports_under_python_3_8(path):
    tree_ = ast.parse(path.read_text(), filename=str(path), feature_version=(3, 8))
    assert newer_than_3_8(tree_) == []


def test_the_checker_finds_what_3_8_lacks():
    src = ("import os\nfrom functools import cache\nx: list[int] = []\n"
           "def f(a: int | None): return os.waitstatus_to_exitcode(0)\n")
    assert len(newer_than_3_8(ast.parse(src))) == 4


def test_a_board_python_older_than_3_8_makes_numpy_jobs_unsupported(cache, tmp_path):
    """No Python 3.7 installs here: a wrapper answers the facts probe's version question as one
    would, and runs the real Python for everything else."""
    old = tmp_path / "python3.7"
    old.write_text(f'#!/bin/sh\ncase "$*" in *python_version*) echo 3.7.3 ;; *) exec {BOARD_PYTHON} "$@" ;; esac\n')
    old.chmod(0o755)
    lab_file = local_lab(tmp_path, tmp_path / "root")
    lab_file.write_text(lab_file.read_text().replace(f'python = "{BOARD_PYTHON}"', f'python = "{old}"'))
    out = tmp_path / "run"
    skip2bench("run", "-e", experiment(tmp_path, impls=["numpy"]), "-l", lab_file, "-o", out, "--no-report",
               cache=cache)
    recs = records(out)
    assert len(recs) == 2 and all(r["status"] == "unsupported" for r in recs)
    assert "Python 3.7.3 is older than 3.8, the oldest the Python runners support" in recs[0]["reason"]


def test_the_session_works_without_os_waitstatus_to_exitcode(tmp_path):
    """A Python 3.8 board's os module has no waitstatus_to_exitcode: the session runs a job, a
    failing one and a killed one without it."""
    from harness import runners
    from harness.config import load_lab

    board = load_lab(ROOT / "labs" / "local.toml").boards[0]
    deployed = tmp_path / "runner"
    deployed.mkdir()
    for name, src in runners.spec("numpy", board, tmp_path).files.items():
        shutil.copy(src, deployed / name)
    (tmp_path / "files").mkdir()
    files = write_runner_files(tmp_path / "files", [8, 6, 3], n_ft=32, n_test=16, seed=4)
    job = full_job("ft-all", seed=1, epochs=2, batch_size=8, lr=0.05, n_layers=2,
                   model_dir=str(files / "model"), data_dir=str(files / "data"))
    shim = ("import os, runpy, sys; del os.waitstatus_to_exitcode; sys.path.insert(0, sys.argv[1]); "
            "sys.argv = [sys.argv[1] + '/skip2_session.py', 'skip2_runner']; runpy.run_path(sys.argv[0], run_name='__main__')")
    requests = [{"dir": str(tmp_path / "ok"), "job": job},
                {"dir": str(tmp_path / "bad"), "job": dict(job, data_dir=str(tmp_path / "missing"))}]
    proc = subprocess.Popen([sys.executable, "-c", shim, str(deployed)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    progress = []

    def reply() -> dict:
        """The job's reply line, after its progress lines."""
        while "returncode" not in (line := json.loads(proc.stdout.readline())):
            progress.append((line["dir"], line["epoch"], line["of"]))
        return line

    try:
        replies = []
        for request in requests:
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
            replies.append(reply())
        # A job whose runner is killed: the session reports the signal as -9.
        slow = dict(job, epochs=100000)
        proc.stdin.write(json.dumps({"dir": str(tmp_path / "killed"), "job": slow}) + "\n")
        proc.stdin.flush()
        pid_file = tmp_path / "killed" / "runner.pid"
        while not (pid_file.exists() and pid_file.read_text().strip()):
            assert proc.poll() is None, proc.stderr.read()
        os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        replies.append(reply())
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    ok, bad, killed = replies
    assert ok["returncode"] == 0 and json.loads(ok["stdout"])["status"] == "ok"
    assert progress[:2] == [(str(tmp_path / "ok"), 1, 2), (str(tmp_path / "ok"), 2, 2)]
    assert bad["returncode"] == 1 and bad["stderr"]
    assert killed["returncode"] == -9
    assert proc.returncode == 0, proc.stderr.read()
