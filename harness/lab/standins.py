"""Stand-ins for single-board computers: real OpenSSH (or dropbear) servers on 127.0.0.1, one per board.

Each runs as a child process of whoever starts it (the lab supervisor or a test), as an
unprivileged board user, on the board's port, with its own config and host key. The board user
has a clean POSIX shell unless the lab's `[boards.standin]` asks for a board as people leave
them: another login shell, a greeting on every command, no SFTP server. The client key and known_hosts file it writes are the ones the lab file names, so the
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
# Debian's paths of OpenSSH's sftp-server, and of the one dropbear starts (a link to it).
OPENSSH_SFTP_SERVER = "/usr/lib/openssh/sftp-server"
DROPBEAR_SFTP_SERVER = "/usr/lib/sftp-server"
# What a chatty board prints on every command: where, and the lines (one without a newline).
GREETINGS = {
    "bashrc": (".bashrc", 'printf "Welcome to %s! (from .bashrc)\\n" "$(uname -n)"; echo "bashrc on stderr" >&2; '
                          'printf "[no newline]"\n'),
    "ssh-rc": (".ssh/rc", 'echo "Hello from ~/.ssh/rc"\n'),
}
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


def board_user(wanted: str, shell: str = "/bin/sh") -> pwd.struct_passwd:
    """The account stand-ins run as and boards log in as; made with `shell` as its login shell
    when missing and we are root."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        if wanted != me.pw_name:
            raise UserError(f"the emulated boards log in as {wanted}, but without root the stand-ins can "
                            f"only run as {me.pw_name}: run as root, or set user = \"{me.pw_name}\" in the lab file")
        return me
    try:
        user = pwd.getpwnam(wanted)
    except KeyError:
        done = subprocess.run([tool("useradd", "passwd"), "--create-home", "--shell", shell, wanted],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise UserError(f"cannot create the board user {wanted}: {done.stderr.strip()}") from None
        return pwd.getpwnam(wanted)
    if user.pw_shell != shell:
        raise UserError(f"the board user {wanted} has login shell {user.pw_shell}, the lab asks for {shell}; "
                        f"give this board a user of its own (user = ... in the lab file)")
    return user


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
    server = "sshd"  # the server's process name (comm)
    note = ""  # what `lab up` says of the board beside its address: nothing

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
        self.user = board_user(b.user, b.standin.login_shell)
        self.state.mkdir(parents=True, exist_ok=True)
        self._reachable()
        self.dir.mkdir(exist_ok=True)
        _keygen(b.key_file)
        host_key = self._server_files()
        for path in (self.dir, *self.dir.iterdir()):
            os.chown(path, self.user.pw_uid, self.user.pw_gid)
        self._trust(host_key)
        if b.standin.greeting:
            self._greet(*GREETINGS[b.standin.greeting])
        if b.standin.venv_without_numpy:
            self._make_venv(Path(self.user.pw_dir) / b.standin.venv_without_numpy)

    def _server_files(self) -> Path:
        """The server's host key (returned; its public half beside it), config and client keys."""
        b = self.board
        host_key = self.dir / "host_ed25519"
        _keygen(host_key)
        (self.dir / "authorized_keys").write_text(Path(f"{b.key_file}.pub").read_text())
        sftp = {"internal": ["Subsystem sftp internal-sftp"], "program": [f"Subsystem sftp {OPENSSH_SFTP_SERVER}"],
                "none": []}[b.standin.sftp]
        (self.dir / "sshd_config").write_text("\n".join([
            f"Port {b.port}", "ListenAddress 127.0.0.1", f'HostKey "{host_key}"',
            f'PidFile "{self.dir / "sshd.pid"}"', f'AuthorizedKeysFile "{self.dir / "authorized_keys"}"',
            "PubkeyAuthentication yes", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "UsePAM no", "StrictModes no", *sftp,
            # A dead client's session (and the board lock it holds) goes within ~15 s.
            "ClientAliveInterval 5", "ClientAliveCountMax 3", ""]))
        return host_key

    def _home_file(self, name: str, text: str, mode: int):
        """A file of the board user's own, in its home (its folders made and owned by it)."""
        path = Path(self.user.pw_dir) / name
        for folder in reversed(path.relative_to(self.user.pw_dir).parents[:-1]):
            (Path(self.user.pw_dir) / folder).mkdir(mode=0o700, exist_ok=True)
            os.chown(Path(self.user.pw_dir) / folder, self.user.pw_uid, self.user.pw_gid)
        path.write_text(text)
        path.chmod(mode)
        os.chown(path, self.user.pw_uid, self.user.pw_gid)

    def _greet(self, name: str, line: str):
        """The greeting at the top of the file (bash's .bashrc returns early when not interactive)."""
        path = Path(self.user.pw_dir) / name
        text = path.read_text() if path.exists() else ""
        if line not in text:
            self._home_file(name, line + text, 0o644)

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

    def _command(self) -> tuple[list, dict]:
        """The server's command line, and how Popen drops to the board user."""
        sshd = tool("sshd", "openssh-server")  # started by absolute path: sshd re-execs itself
        as_user = {} if os.geteuid() != 0 else dict(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[])
        return [sshd, "-D", "-e", "-f", str(self.dir / "sshd_config")], as_user

    def start(self):
        b = self.board
        if port_open(b.port):
            raise UserError(f"board {b.name}: port {b.port} on 127.0.0.1 is already in use; stop what "
                            f"listens there (make lab-down) or choose another port in the lab file")
        command, as_user = self._command()
        log = open(self.dir / "sshd.log", "ab")
        self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, preexec_fn=_die_with_parent, **as_user)
        log.close()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not port_open(b.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                last = (self.dir / "sshd.log").read_text(errors="replace").strip().splitlines()[-1:]
                raise UserError(f"board {b.name}: {self.server} did not start ({' '.join(last) or 'no output'}); "
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
                is_sshd = Path(f"/proc/{pid}/comm").read_text().strip() == self.server
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


class DropbearStandin(SshdStandin):
    """One board's dropbear server, as on small images; without SFTP (`sftp = "none"`) its
    sftp-server is hidden from it in a mount namespace of its own."""
    server = "dropbear"

    def _server_files(self) -> Path:
        host_key = self.dir / "host_ed25519"
        if not host_key.exists():
            subprocess.run([tool("dropbearkey", "dropbear-bin"), "-t", "ed25519", "-f", str(host_key)],
                           check=True, capture_output=True)
        public = subprocess.run([tool("dropbearkey", "dropbear-bin"), "-y", "-f", str(host_key)], check=True,
                                capture_output=True, text=True).stdout
        Path(f"{host_key}.pub").write_text(next(line for line in public.splitlines() if line.startswith("ssh-")) + "\n")
        # dropbear reads the user's own ~/.ssh/authorized_keys, and wants it private.
        self._home_file(".ssh/authorized_keys", Path(f"{self.board.key_file}.pub").read_text(), 0o600)
        return host_key

    def _command(self) -> tuple[list, dict]:
        b, u = self.board, self.user
        server = [tool("dropbear", "dropbear-bin"), "-F", "-E", "-s", "-m", "-p", f"127.0.0.1:{b.port}",
                  "-r", str(self.dir / "host_ed25519"), "-P", str(self.dir / "sshd.pid"), "-K", "5"]
        if b.standin.sftp != "none" or not Path(DROPBEAR_SFTP_SERVER).exists():
            as_user = {} if os.geteuid() != 0 else dict(user=u.pw_uid, group=u.pw_gid, extra_groups=[])
            return server, as_user
        if os.geteuid() != 0:
            raise UserError(f"board {b.name}: a dropbear stand-in without SFTP needs root (it hides "
                            f"{DROPBEAR_SFTP_SERVER} in a mount namespace)")
        # Root makes the namespace, then setpriv drops to the board user (and re-arms the signal
        # that stops the server with its supervisor).
        drop = [tool("setpriv", "util-linux"), f"--reuid={u.pw_uid}", f"--regid={u.pw_gid}", "--clear-groups",
                "--pdeathsig", "TERM", "--"]
        hide = f'mount --bind /dev/null {DROPBEAR_SFTP_SERVER} && exec "$@"'
        return [tool("unshare", "util-linux"), "--mount", "--propagation", "private", "sh", "-c", hide, "sh",
                *drop, *server], {}


def ssh_standin(board):
    """The stand-in of an SSH board, by its server."""
    return DropbearStandin(board) if board.standin.server == "dropbear" else SshdStandin(board)
