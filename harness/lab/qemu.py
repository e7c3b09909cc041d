"""Stand-ins for MCU boards: QEMU running the real firmware, its UART on a TCP port of 127.0.0.1.

A `socket://` board is QEMU's port itself. An `rfc2217://` board is served the way a board on a
lab machine is: socat joins QEMU's port to a pseudo-terminal, ser2net serves that terminal with
RFC 2217 on the board's port. Every process is a child of the supervisor, stopped and waited for.

QEMU runs with `-icount shift=0`: one instruction is one nanosecond of virtual time, so the
device's timer counts instructions (docs/serial-protocol.md; the record's instruction counts).
Flashing is a restart: `-kernel` the firmware, and `-device loader` puts the model image at the
model slot's address, as st-flash or openocd would on a real board. A reset (the reset button),
a pause and a resume go through QEMU's machine protocol (QMP) on a Unix socket in the board's
state folder: a few JSON lines, so a client of its own rather than a library's.
"""
import json
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

from harness import paths
from harness.errors import TargetError, UserError
from harness.lab.standins import _die_with_parent, port_open, tool
from harness.mcu import cycle_model, firmware

READY_TIMEOUT_S = 15


def _stop(proc: subprocess.Popen | None):
    if proc is None or proc.poll() is not None:
        if proc is not None:
            proc.wait()
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class QemuStandin:
    def __init__(self, board, state_dir: Path):
        self.board = board
        self.dir = state_dir / board.name
        url = urlparse(board.port)
        if url.scheme not in ("socket", "rfc2217") or url.hostname not in ("127.0.0.1", "localhost"):
            raise UserError(f"board {board.name}: an emulated MCU board's port is socket://127.0.0.1:PORT or "
                            f"rfc2217://127.0.0.1:PORT (got {board.port})")
        self.served = url.scheme == "rfc2217"
        if self.served and board.standin.qemu_port is None:
            raise UserError(f"board {board.name}: a board reached through ser2net needs [boards.standin] qemu_port")
        self.public_port = url.port
        self.qemu_port = board.standin.qemu_port if self.served else url.port
        self.procs = {}
        self.flashed = (None, None, None)  # (firmware ELF, model image, its address) QEMU runs
        self.plugin, self.no_cycles = None, "turned off in the lab file" if not board.standin.cycle_model else None

    def setup(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.no_cycles is None:
            try:
                self.plugin = cycle_model.build(paths.cache_dir())
            except TargetError as e:  # optional: the board runs, its records carry instructions only
                self.no_cycles = str(e)

    def start(self):
        fw, model, address = self.flashed
        if fw is None:  # first start: the current firmware, no model yet
            fw = firmware.build(self.board.firmware, self.board.layout, paths.cache_dir()).elf
        self._start(fw, model, address)

    def flash(self, fw: str, model: str | None, model_address: int | None):
        """Restart QEMU with this firmware and model image (a real board's flash and reset)."""
        self.stop()
        self._start(fw, model, model_address)

    def _start(self, fw, model, model_address):
        b = self.board
        if port_open(self.public_port):
            raise UserError(f"board {b.name}: port {self.public_port} on 127.0.0.1 is already in use; stop what "
                            f"listens there (make lab-down) or choose another port in the lab file")
        self.qmp_path.unlink(missing_ok=True)
        cmd = [tool("qemu-system-arm", "qemu-system-arm"), "-M", b.standin.machine, "-display", "none",
               "-monitor", "none", "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
               "-kernel", str(fw), "-icount", "shift=0",
               "-serial", f"tcp:127.0.0.1:{self.qemu_port},server=on,wait=off,nodelay=on"]
        if model is not None:
            cmd += ["-device", f"loader,file={model},addr=0x{model_address:08x}"]
        self.cycles_path.unlink(missing_ok=True)  # windows of this start only
        if self.plugin is not None:
            cmd += ["-plugin", cycle_model.plugin_option(self.plugin, Path(fw), b.firmware, self.cycles_path)]
        self._spawn("qemu", cmd, self.qemu_port)
        if self.served:
            tty = self.dir / "tty"
            tty.unlink(missing_ok=True)
            self._spawn("socat", [tool("socat", "socat"), f"pty,raw,echo=0,link={tty}",
                                  f"tcp:127.0.0.1:{self.qemu_port}"], None, ready=tty.exists)
            config = self.dir / "ser2net.yaml"
            config.write_text(f"connection: &{b.name.replace('-', '_')}\n"
                              f"  accepter: telnet(rfc2217),tcp,127.0.0.1,{self.public_port}\n"
                              f"  connector: serialdev,{tty},115200n81,local\n"
                              f"  options:\n    kickolduser: true\n    chardelay: false\n")
            self._spawn("ser2net", [tool("ser2net", "ser2net"), "-n", "-c", str(config), "-P",
                                    str(self.dir / "ser2net.pid")], self.public_port)
        self.flashed = (fw, model, model_address)

    def _spawn(self, name: str, cmd: list, port: int | None, ready=None):
        log = open(self.dir / f"{name}.log", "ab")
        self.procs[name] = proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                                   preexec_fn=_die_with_parent)
        log.close()
        ready = ready or (lambda: port_open(port))
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                last = (self.dir / f"{name}.log").read_text(errors="replace").strip().splitlines()[-1:]
                raise UserError(f"board {self.board.name}: {name} did not start ({' '.join(last) or 'no output'}); "
                                f"see {self.dir / f'{name}.log'}")
            time.sleep(0.01)

    @property
    def qmp_path(self) -> Path:
        return self.dir / "qmp.sock"

    @property
    def cycles_path(self) -> Path:
        return self.dir / "cycles.jsonl"

    @property
    def note(self) -> str:
        """What `lab up` says of the board beside its address."""
        return "cycle model on" if self.plugin else f"no cycle model: {self.no_cycles}"

    def cycles(self) -> dict:
        """The cycle model's windows so far: how many, and the last (None without the model)."""
        if self.plugin is None:
            return {"windows": None, "last": None, "why_not": self.no_cycles}
        windows = cycle_model.read_windows(self.cycles_path)
        return {"windows": len(windows), "last": windows[-1] if windows else None, "why_not": None}

    def machine(self, command: str):
        """A QMP command (system_reset, stop, cont) to the running QEMU."""
        if not self.running():
            raise UserError(f"board {self.board.name} is not running; start it first")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(str(self.qmp_path))
            replies = s.makefile("rb")
            replies.readline()  # the greeting
            for execute in ("qmp_capabilities", command):
                s.sendall(json.dumps({"execute": execute}).encode() + b"\n")
                while "return" not in (reply := json.loads(replies.readline() or b'{"error": "closed"}')):
                    if "error" in reply:
                        raise UserError(f"board {self.board.name}: QEMU refused {execute}: {reply['error']}")

    @property
    def address(self) -> str:
        return self.board.port

    def running(self) -> bool:
        return "qemu" in self.procs and self.procs["qemu"].poll() is None

    @property
    def proc(self):
        return self.procs.get("qemu")

    def drop_sessions(self) -> int:
        return 0  # a serial line has no sessions; faults on it are a proxy's job

    def stop(self):
        for name in ("ser2net", "socat", "qemu"):  # outermost first
            _stop(self.procs.pop(name, None))
