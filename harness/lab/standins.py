"""Stand-ins for single-board computers: real OpenSSH servers on 127.0.0.1, one per board.

Each runs as a child process of whoever starts it (the lab supervisor or a test), as an
unprivileged board user with a clean POSIX shell, on the board's port, with its own config and
host key. The client key and known_hosts file it writes are the ones the lab file names, so the
lab file reaches the stand-ins exactly as it would reach real boards.

Layout, in the folder of the lab file's key_file (labs/.emulated/ for labs/emulated.toml):
    client_ed25519[.pub]   the harness's key          known_hosts   every stand-in's host key
    <board>/               sshd_config, host_ed25519, authorized_keys, sshd.pid, sshd.log
"""
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from harness.errors import UserError

BOARD_USER = "skip2board"  # made by `lab serve` when run as root: no password, shell /bin/sh
READY_TIMEOUT_S = 10
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _die_with_parent():
    """In the child: get SIGTERM if the supervisor dies, so no stand-in outlives it."""
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def tool(name: str, package: str) -> str:
    path = shutil.which(name, path=SYSTEM_PATH)
    if path is None:
        raise UserError(f"{name} not found; install the emulated lab's tools with `make lab-deps` "
                        f"(Debian package {package})")
    return path


def board_user(wanted: str) -> pwd.struct_passwd:
    """The account stand-ins run as and boards log in as; made when missing and we are root."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        if wanted != me.pw_name:
            raise UserError(f"the emulated boards log in as {wanted}, but without root the stand-ins can "
                            f"only run as {me.pw_name}: run as root, or set user = \"{me.pw_name}\" in the lab file")
        return me
    try:
        return pwd.getpwnam(wanted)
    except KeyError:
        done = subprocess.run([tool("useradd", "passwd"), "--create-home", "--shell", "/bin/sh", wanted],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise UserError(f"cannot create the board user {wanted}: {done.stderr.strip()}") from None
        return pwd.getpwnam(wanted)


def _keygen(path: Path):
    if not path.exists():
        subprocess.run([tool("ssh-keygen", "openssh-client"), "-q", "-t", "ed25519", "-N", "", "-C", path.name,
                        "-f", str(path)], check=True)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def children(pid: int) -> list:
    """Pids whose parent is `pid` (the per-connection sshd processes of a listening sshd)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


class SshdStandin:
    """One board's OpenSSH server; start(), stop(), drop_sessions()."""

    def __init__(self, board):
        if board.key_file is None:
            raise UserError(f"board {board.name}: a stand-in needs key_file in the lab file (where its client key goes)")
        if board.host not in ("127.0.0.1", "localhost"):
            raise UserError(f"board {board.name}: stand-ins listen on 127.0.0.1 only; set host = \"127.0.0.1\"")
        self.board = board
        self.state = board.key_file.parent
        self.dir = self.state / board.name
        self.proc = None
        self.user = None

    def _reachable(self):
        """The board user must pass through every folder above the state folder."""
        for folder in [*reversed(self.state.parents), self.state]:
            st = folder.stat()
            if st.st_uid != self.user.pw_uid and not st.st_mode & 0o001:
                raise UserError(f"board {self.board.name}: the board user {self.user.pw_name} cannot enter "
                                f"{folder} (mode {st.st_mode & 0o777:o}); keep the lab's key_file in a folder "
                                f"other users can pass through")

    def setup(self):
        """Keys, config, the board user and its home; idempotent."""
        b = self.board
        self.user = board_user(b.user)
        self.state.mkdir(parents=True, exist_ok=True)
        self._reachable()
        self.dir.mkdir(exist_ok=True)
        _keygen(b.key_file)
        host_key = self.dir / "host_ed25519"
        _keygen(host_key)
        (self.dir / "authorized_keys").write_text(Path(f"{b.key_file}.pub").read_text())
        (self.dir / "sshd_config").write_text("\n".join([
            f"Port {b.port}", "ListenAddress 127.0.0.1", f'HostKey "{host_key}"',
            f'PidFile "{self.dir / "sshd.pid"}"', f'AuthorizedKeysFile "{self.dir / "authorized_keys"}"',
            "PubkeyAuthentication yes", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "UsePAM no", "StrictModes no", "Subsystem sftp internal-sftp",
            # A dead client's session (and the board lock it holds) goes within ~15 s.
            "ClientAliveInterval 5", "ClientAliveCountMax 3", ""]))
        for path in (self.dir, host_key, self.dir / "sshd_config", self.dir / "authorized_keys"):
            os.chown(path, self.user.pw_uid, self.user.pw_gid)
        self._trust(host_key)
        if b.standin.venv_without_numpy:
            self._make_venv(Path(self.user.pw_dir) / b.standin.venv_without_numpy)

    def _trust(self, host_key: Path):
        """This board's line in the lab's known_hosts file, replacing an older one."""
        entry = f"[127.0.0.1]:{self.board.port}"
        known = self.board.known_hosts
        lines = [line for line in (known.read_text().splitlines() if known.exists() else [])
                 if line.split(" ", 1)[0] != entry]
        key_type, key = Path(f"{host_key}.pub").read_text().split()[:2]
        known.parent.mkdir(parents=True, exist_ok=True)
        known.write_text("\n".join([*lines, f"{entry} {key_type} {key}"]) + "\n")

    def _make_venv(self, venv: Path):
        if not (venv / "bin" / "python3").exists():
            subprocess.run([tool("python3", "python3-venv"), "-m", "venv", "--without-pip", str(venv)],
                           check=True, user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[],
                           cwd=self.user.pw_dir, env={"PATH": SYSTEM_PATH})

    def start(self):
        b = self.board
        if port_open(b.port):
            raise UserError(f"board {b.name}: port {b.port} on 127.0.0.1 is already in use; stop what "
                            f"listens there (make lab-down) or choose another port in the lab file")
        config = self.dir / "sshd_config"
        sshd = tool("sshd", "openssh-server")  # started by absolute path: sshd re-execs itself
        log = open(self.dir / "sshd.log", "ab")
        as_user = {} if os.geteuid() != 0 else dict(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[])
        self.proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, preexec_fn=_die_with_parent, **as_user)
        log.close()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not port_open(b.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                last = (self.dir / "sshd.log").read_text(errors="replace").strip().splitlines()[-1:]
                raise UserError(f"board {b.name}: sshd did not start ({' '.join(last) or 'no output'}); "
                                f"see {self.dir / 'sshd.log'}")
            time.sleep(0.01)

    @property
    def address(self) -> str:
        return f"ssh://127.0.0.1:{self.board.port}"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def drop_sessions(self) -> int:
        """Kill the server side of every open connection: each one's sshd processes (the monitor
        and the process holding the socket), not the commands they started, which live on as a
        board's would when its network goes."""
        pids, todo = [], children(self.proc.pid) if self.running() else []
        while todo:
            pid = todo.pop()
            try:
                is_sshd = Path(f"/proc/{pid}/comm").read_text().strip() == "sshd"
            except OSError:
                continue
            if is_sshd:
                pids.append(pid)
                todo += children(pid)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return len(pids)

    def stop(self):
        """Stop the server and its sessions, and reap it."""
        if self.proc is None:
            return
        # Freeze the listener first, so that no client reconnects between the sessions' end
        # and the server's (a session accepted then would outlive it, and the board with it).
        self.proc.send_signal(signal.SIGSTOP)
        self.drop_sessions()
        self.proc.terminate()
        self.proc.send_signal(signal.SIGCONT)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
