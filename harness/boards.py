"""What a board is: validated lab data, one pydantic model per kind of board (docs/targets.md;
the kinds are registered in harness.kinds).

A board says how to reach it and what it can run; how the harness talks to it lives in
harness.transports, what is deployed to it in harness.runners.
"""
import getpass
import sys
from pathlib import Path
from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from harness.paths import CHECKOUT

# The reference runners, and PyTorch: a comparator of the speed benchmark (it times itself only).
IMPLS = ("numpy", "c", "torch")
Impl = Literal[IMPLS]


class Strict(BaseModel):
    """No unknown fields, no coercion ("0.01" is not a number, true is not 1), every float finite."""
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _make_words(text: str) -> str:
    """A compiler or its flags: words that make passes to a shell unchanged (letters, digits and
    _ . / = + , : @ % -), so no lab file reaches a shell through them."""
    bad = sorted({ch for ch in text if not (ch.isalnum() or ch in "_./=+,:@%- ")})
    if bad:
        raise ValueError(f"may hold only letters, digits, spaces and _ . / = + , : @ % -; got {''.join(bad)!r}")
    return text


# c_compiler, cross_compiler and c_flags: words for make (docs/config.md).
MakeWords = Annotated[str, AfterValidator(_make_words)]


def _slug(text: str) -> str:
    """A name that becomes part of file names (runs, boards' work folders, tasks' caches)."""
    if not (0 < len(text) <= 64 and text[0].isascii() and text[0].isalnum()
            and all(ch.isascii() and (ch.isalnum() or ch in "_.-") for ch in text)):
        raise ValueError("a name must be 1 to 64 characters of letters, digits, _ . -, starting with a "
                         "letter or digit")
    return text


Slug = Annotated[str, AfterValidator(_slug)]


class BoardBase(Strict):
    name: Slug
    impls: list[Impl] = Field(default=["numpy"], min_length=1)
    # Free labels an experiment may select boards by (`boards = ["sbc"]`).
    tags: list[Annotated[str, Field(min_length=1)]] = []
    timeout_s: float = Field(default=600.0, gt=0)
    # A board silent this long while it works on a job (no heartbeat frame from an MCU, no
    # keepalive answer over SSH) ends the job as `error` without waiting for timeout_s.
    liveness_s: float = Field(default=20.0, gt=0)
    # The processor the board's jobs run on: boards of one group run one job at a time between
    # them, so their timings stay honest. Unset: "this-host" for a board that runs on the
    # harness's own machine (the local board, a loopback SSH server, a QEMU stand-in), else a
    # group of its own (harness.kinds.cpu_group).
    cpu_group: Optional[Slug] = None


class PosixBoard(BoardBase):
    """A board that runs the runners as processes under a POSIX shell (the host, an SBC)."""
    # Where deployed runners, models, data and job directories live on the board.
    work_root: Optional[str] = Field(default=None, min_length=1)
    # The command that runs Python 3 (with NumPy for the NumPy runner), split like a shell would.
    python: str = Field(default="python3", min_length=1)
    # The board's own C compiler, used unless `cross_compiler` names one on the host.
    c_compiler: Annotated[MakeWords, Field(min_length=1)] = "cc"
    # A compiler on the host whose (static) binary is shipped, e.g. "aarch64-linux-gnu-gcc".
    cross_compiler: Optional[Annotated[MakeWords, Field(min_length=1)]] = None
    c_flags: MakeWords = "-O2"
    # Put in front of every runner command, e.g. "taskset -c 1" or "qemu-aarch64".
    run_prefix: str = ""
    # One run at a time on the whole board, whatever its work root (a lock file in the board
    # user's home); false lets runs in other work roots share a board that has cores to spare.
    exclusive: bool = True

    def default_work_root(self, cache_dir: Path) -> str:
        """The work root when the lab names none: in the board user's home."""
        return "skip2bench"


class LocalBoard(PosixBoard):
    transport: Literal["local"]
    python: str = Field(default=sys.executable, min_length=1)

    def default_work_root(self, cache_dir: Path) -> str:
        return str(Path(cache_dir) / "boards" / self.name)  # this user's cache, not their home


class Standin(Strict):
    """How `skip2bench lab serve` emulates an SSH board on this machine (absent for real boards)."""
    # Make a Python venv without NumPy at this path in the board user's home (a board whose
    # python lacks NumPy); the board's `python` should point into it.
    venv_without_numpy: Optional[str] = Field(default=None, min_length=1)
    # The SSH server: OpenSSH's sshd, or dropbear (as on many small images).
    server: Literal["openssh", "dropbear"] = "openssh"
    # SFTP: the sftp-server program, started through the login shell (as Debian's sshd_config and
    # dropbear do); OpenSSH's in-process server; or none (a dropbear image without sftp-server).
    # Unset: in-process for OpenSSH, the program for dropbear.
    sftp: Optional[Literal["program", "internal", "none"]] = Field(default=None, validate_default=True)
    # The board user's login shell, made so when `lab serve` creates the user.
    login_shell: str = Field(default="/bin/sh", min_length=1)
    # A greeting the board's login prints on every command, from ~/.bashrc (bash reads it for
    # every SSH command) or ~/.ssh/rc, as hobby images do.
    greeting: Optional[Literal["bashrc", "ssh-rc"]] = None

    @field_validator("sftp")
    @classmethod
    def _dropbear_has_no_internal_sftp(cls, sftp, info: ValidationInfo):
        if sftp == "internal" and info.data.get("server") == "dropbear":
            raise ValueError('dropbear has no in-process SFTP server: sftp = "program" or "none"')
        return sftp or ("program" if info.data.get("server") == "dropbear" else "internal")


class SshBoard(PosixBoard):
    transport: Literal["ssh"]
    host: str = Field(min_length=1)
    port: int = Field(default=22, ge=1, le=65535)
    user: str = Field(default_factory=getpass.getuser, min_length=1)
    key_file: Annotated[Optional[Path], Field(strict=False)] = None  # TOML gives paths as strings
    use_agent: bool = False
    known_hosts: Annotated[Path, Field(strict=False)] = Path("~/.ssh/known_hosts")
    # reject: unknown host keys are refused; accept-new: trusted on first use and saved.
    host_key_policy: Literal["reject", "accept-new"] = "reject"
    connect_timeout_s: float = Field(default=10.0, gt=0)
    keepalive_s: float = Field(default=15.0, gt=0)
    # Bounded: reconnect attempts per outage, and re-runs of a job cut off by a dropped connection.
    retries: int = Field(default=2, ge=0, le=10)
    standin: Optional[Standin] = None

    @field_validator("key_file", "known_hosts")
    @classmethod
    def _relative_to_lab_file(cls, path, info: ValidationInfo):
        """~ expands; relative paths are relative to the lab file's folder."""
        if path is None:
            return None
        path = path.expanduser()
        base = (info.context or {}).get("lab_dir")
        return path if path.is_absolute() or base is None else Path(base) / path

    @field_validator("key_file")
    @classmethod
    def _private(cls, path):
        """A key others can read is refused, as OpenSSH refuses it (a key made later, by `lab
        serve` for its stand-ins, is checked when it exists)."""
        if path is not None and path.is_file() and path.stat().st_mode & 0o077:
            raise ValueError(f"{path} can be read by others (mode {path.stat().st_mode & 0o777:o}); a private key "
                             f"must be yours alone: chmod 600 {path}")
        return path


class McuStandin(Strict):
    """How `skip2bench lab serve` emulates an MCU board: QEMU running the real firmware."""
    machine: Literal["mps2-an386", "netduinoplus2"]
    # Where QEMU's UART listens on 127.0.0.1 when the board is reached through ser2net
    # (an rfc2217:// port); a socket:// board's own port is QEMU's.
    qemu_port: Optional[Annotated[int, Field(ge=1, le=65535)]] = None
    # QEMU runs the cycle model plugin (targets/c/cyclemodel), so records carry ft_cycles_est;
    # false runs it without (faster; instructions only).
    cycle_model: bool = True


class SerialBoard(BoardBase):
    """A microcontroller board running the firmware (targets/c/mcu), behind the serial protocol."""
    transport: Literal["serial"]
    impls: list[Literal["c"]] = Field(default=["c"], min_length=1)  # the firmware runs the C core
    # A device path (/dev/ttyACM0), socket://host:port, or rfc2217://host:port (ser2net).
    port: str = Field(min_length=1)
    baudrate: int = Field(default=115200, ge=1200)
    firmware: Literal["mps2-an386", "stm32f405"]
    # silicon: the real chip's memory map; qemu: the same region sizes where QEMU's model has them.
    layout: Literal["qemu", "silicon"] = "silicon"
    # How to flash a real board: {firmware} (ELF), {model} (model image), {model_address}.
    flash_command: Optional[str] = Field(default=None, min_length=1)
    # Per request: wait this long for an answer, then send again, at most link_tries times.
    link_timeout_s: float = Field(default=0.4, gt=0)
    link_tries: int = Field(default=10, ge=1, le=100)
    standin: Optional[McuStandin] = None


def public(board) -> dict:
    """The board as a manifest may show it: key files by basename, repository paths relative."""
    shown = board.model_dump(mode="json")
    for key in ("key_file", "known_hosts"):
        if shown.get(key):
            shown[key] = Path(shown[key]).name
    if "python" in shown:
        shown["python"] = _repo_relative(shown["python"])
    return shown


def _repo_relative(command: str) -> str:
    head, _, rest = command.partition(" ")
    path = Path(head)
    if CHECKOUT and path.is_absolute() and path.is_relative_to(CHECKOUT):
        head = str(path.relative_to(CHECKOUT))
    return f"{head} {rest}".strip()


__all__ = ["BoardBase", "LocalBoard", "SerialBoard", "SshBoard", "Standin", "McuStandin", "IMPLS",
           "public"]
