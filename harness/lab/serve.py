"""The emulated lab's supervisor: one process that owns every stand-in as its child.

`skip2bench lab serve` starts the stand-in of every lab board that has a `standin` table, then
answers one-line commands on a local control socket (status, stop/start/restart/drop BOARD,
reset/pause/resume MCU-BOARD, cycles MCU-BOARD (its cycle model's windows), shutdown) until it is told to shut down or gets SIGTERM/SIGINT; then it stops every stand-in and
waits for it. It is also the subreaper of its subtree: runners orphaned by a dropped SSH session
are reaped here, since this machine's PID 1 reaps nothing.

`lab up` starts the supervisor in the background and waits until it answers; `lab down` asks
it to shut down and waits until it has.
"""
import ctypes
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from harness import kinds
from harness.errors import UserError
from harness.lab.qemu import QemuStandin
from harness.lab.standins import children

UP_TIMEOUT_S = 600  # a fresh machine builds the firmware of every port first
REAP_EVERY_S = 0.5


def standin_boards(lab) -> list:
    boards = [b for b in lab.boards if getattr(b, "standin", None) is not None]
    if not boards:
        raise UserError(f"lab '{lab.name}' has no board with a [boards.standin] table, so there is "
                        f"nothing to emulate (see labs/emulated.toml)")
    return boards


def address(lab) -> str:
    """The control socket: an abstract Unix socket named after the lab's state folder."""
    digest = hashlib.sha256(str(lab.standin_dir.resolve()).encode()).hexdigest()[:16]
    return f"\0skip2bench-lab-{digest}"


def ask(lab, command: str, timeout: float = 30) -> dict:
    """Send one command to the running supervisor; its JSON answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(address(lab))
        except (FileNotFoundError, ConnectionRefusedError):
            raise UserError(f"the emulated lab '{lab.name}' is not running; start it with `make lab-up`") from None
        s.sendall(command.encode() + b"\n")
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    reply = json.loads(answer or b"{}")
    if "error" in reply:
        raise UserError(reply["error"])
    return reply


class Supervisor:
    def __init__(self, lab):
        self.lab = lab
        self.standins = {b.name: kinds.of(b).standin(b, lab.standin_dir) for b in standin_boards(lab)}
        self.stopping = False

    def status(self) -> dict:
        return {"pid": os.getpid(), "boards": {
            name: {"address": s.address, "running": s.running(), "pid": s.proc.pid if s.running() else None,
                   "note": s.note}
            for name, s in self.standins.items()}}

    def handle(self, line: str) -> dict:
        verb, _, name = line.strip().partition(" ")
        if verb == "status":
            return self.status()
        if verb == "shutdown":
            self.stopping = True
            return {"shutdown": True}
        if verb == "flash":  # flash BOARD FIRMWARE [MODEL ADDRESS]: restart an MCU board with them
            name, fw, *model = name.split(" ")
            standin = self.standins.get(name)
            if not isinstance(standin, QemuStandin):
                return {"error": f"no emulated MCU board named {name!r} in lab '{self.lab.name}'"}
            standin.flash(fw, model[0] if model else None, int(model[1], 0) if model else None)
            return self.status()["boards"][name]
        if verb in ("reset", "pause", "resume", "cycles"):  # an MCU board's reset button; freezing it; its cycles
            standin = self.standins.get(name)
            if not isinstance(standin, QemuStandin):
                return {"error": f"no emulated MCU board named {name!r} in lab '{self.lab.name}'"}
            if verb == "cycles":  # the cycle model's windows (harness/mcu/cycle_model.py)
                return standin.cycles()
            standin.machine({"reset": "system_reset", "pause": "stop", "resume": "cont"}[verb])
            return self.status()["boards"][name]
        if verb in ("stop", "start", "restart", "drop"):
            standin = self.standins.get(name)
            if standin is None:
                return {"error": f"no stand-in board named {name!r}; the lab has {', '.join(self.standins)}"}
            if verb in ("stop", "restart"):
                standin.stop()
            if verb in ("start", "restart") and not standin.running():
                standin.start()
            dropped = standin.drop_sessions() if verb == "drop" else 0
            return {**self.status()["boards"][name], "dropped": dropped}
        return {"error": f"unknown command {verb!r}; commands: status, stop|start|restart|drop BOARD, "
                         f"reset|pause|resume|cycles MCU-BOARD, flash BOARD FIRMWARE [MODEL ADDRESS], shutdown"}

    def reap_orphans(self):
        """Wait for exited processes re-parented to us (not the stand-ins we hold as Popen)."""
        ours = {s.proc.pid for s in self.standins.values() if s.proc is not None}
        for pid in children(os.getpid()):
            if pid not in ours:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass

    def serve(self, console):
        ctypes.CDLL(None).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: setattr(self, "stopping", True))
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(address(self.lab))
        except OSError:
            raise UserError(f"the emulated lab '{self.lab.name}' is already running; stop it with `make lab-down`") from None
        listener.listen()
        listener.settimeout(REAP_EVERY_S)
        try:
            for standin in self.standins.values():
                standin.setup()
                standin.start()
                console.print(f"stand-in {standin.board.name} on {standin.address} (pid {standin.proc.pid})")
            console.print("lab ready")
            sys.stdout.flush()
            while not self.stopping:
                self.reap_orphans()
                try:
                    conn, _ = listener.accept()
                except (socket.timeout, InterruptedError):
                    continue
                with conn:
                    conn.settimeout(10)
                    try:
                        line = conn.makefile().readline()
                        reply = self.handle(line)
                    except UserError as e:
                        reply = {"error": str(e)}
                    try:
                        conn.sendall(json.dumps(reply).encode() + b"\n")
                    except OSError as e:  # the asker gave up waiting: the lab serves on
                        console.print(f"an answer was not delivered ({e.strerror or e}); serving on")
        finally:
            for standin in self.standins.values():
                standin.stop()
            self.reap_orphans()
            listener.close()
            console.print("lab stopped")


def up(lab_file: Path, lab, console) -> subprocess.Popen:
    """Start `lab serve` in the background; return it once every stand-in answers."""
    log = lab.standin_dir / "serve.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "harness", "lab", "serve", "--lab", str(lab_file)],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
    # The first start builds the firmware: the supervisor's own lines show how far it is.
    deadline, shown = time.monotonic() + UP_TIMEOUT_S, 0
    while time.monotonic() < deadline:
        lines = log.read_text(errors="replace").splitlines()
        for line in lines[shown:]:
            console.print(f"  {line}", markup=False)
        shown = len(lines)
        if proc.poll() is not None:
            raise UserError(f"the lab supervisor exited: {' '.join(lines[-1:]) or 'no output'} (log: {log})")
        try:
            status = ask(lab, "status", timeout=5)["boards"]
            if all(s["running"] for s in status.values()):
                for name, s in status.items():
                    note = f"; {s['note']}" if s["note"] else ""
                    console.print(f"{name}: {s['address']} (pid {s['pid']}{note})", markup=False)
                console.print(f"lab up (supervisor pid {proc.pid}, log {log}); stop it with `make lab-down`")
                return proc
        except (UserError, TimeoutError):  # not listening yet, or busy starting stand-ins
            pass
        time.sleep(0.2)
    raise UserError(f"the lab did not come up within {UP_TIMEOUT_S} s (it goes on starting; `make lab-down` "
                    f"stops it); see {log}")


def _alive(pid: int) -> bool:
    """Running, not a zombie (an exited supervisor stays one when nothing reaps it)."""
    try:
        return " Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1][:3]
    except OSError:
        return False


def down(lab, console):
    """Ask the supervisor to stop every stand-in, and wait until it has exited."""
    try:
        pid = ask(lab, "status")["pid"]
        ask(lab, "shutdown")
    except UserError:
        console.print("lab already down")
        return
    deadline = time.monotonic() + UP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not _alive(pid):
            console.print("lab down")
            return
        time.sleep(0.1)
    raise UserError(f"the lab supervisor did not stop within {UP_TIMEOUT_S} s; see {lab.standin_dir / 'serve.log'}")
