"""Board kinds: one registry entry per kind of board (docs/targets.md, "Adding a board kind").

A lab file's `transport` names a board's kind. Its entry says everything the harness needs to
know about that kind, so that nothing else asks which kind a board is: the pydantic model of
its lab table, how to open its target for a run, how `lab check` probes it, how `lab serve`
emulates it, its facts in a few words, and whether it runs on the harness's own machine (for
its default CPU group). Tests register kinds of their own with register().
"""
from dataclasses import dataclass
from functools import partial
from typing import Callable, Optional

from harness.boards import LocalBoard, SerialBoard, SshBoard
from harness.errors import UserError

THIS_HOST = "this-host"  # the CPU group of every board that runs on the harness's own machine
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class BoardKind:
    transport: str                 # the lab file's `transport` value
    model: type                    # the board's lab table (a harness.boards.BoardBase)
    open_target: Callable          # (board, run_id, cache_dir, lab) -> target, prepared by the engine
    probe: Callable                # (board, cache_dir) -> `lab check`'s row for the board
    describe: Callable             # facts -> the board in a few words ("mps2-an386, 25 MHz")
    on_this_host: Callable         # board -> whether its jobs run on the harness's own CPU
    standin: Optional[Callable] = None  # (board, state_dir) -> its stand-in for `lab serve`
    microcontroller: bool = False  # reports carry its fit table (memory per region, refusals)


KINDS: dict[str, BoardKind] = {}


def register(kind: BoardKind) -> BoardKind:
    KINDS[kind.transport] = kind
    return kind


def of(board) -> BoardKind:
    try:
        return KINDS[board.transport]
    except KeyError:
        raise UserError(f"board '{board.name}': no board kind '{board.transport}' is registered "
                        f"(known: {', '.join(KINDS)})") from None


def open_target(board, run_id: str, cache_dir, lab=None):
    """The target of a lab board for one run; prepare() it before any run_job()."""
    return of(board).open_target(board, run_id, cache_dir, lab)


def cpu_group(board) -> str:
    """The processor the board's jobs run on: its own cpu_group, else this host's or its own."""
    return board.cpu_group or (THIS_HOST if of(board).on_this_host(board) else f"board-{board.name}")


def microcontrollers() -> set:
    return {name for name, kind in KINDS.items() if kind.microcontroller}


# -- the built-in kinds ----------------------------------------------------------------------
def _host_shell(board):
    from harness.transports.host import HostShell
    return HostShell()


def _ssh_shell(board):
    from harness.transports.ssh import SshShell
    return SshShell(board)


def _posix_target(shell, board, run_id, cache_dir, lab):
    from harness.targets.posix import PosixTarget
    return PosixTarget(board, shell(board), run_id, cache_dir)


def _posix_probe(shell, board, cache_dir):
    from harness.lab.check import probe_posix
    return probe_posix(board, shell(board), cache_dir)


def _posix_words(facts: dict) -> str:
    return f"{facts.get('machine')}, {facts.get('cores')} cores"


def _serial_target(board, run_id, cache_dir, lab):
    from harness import flashers
    from harness.mcu.cycle_model import LabWindows
    from harness.targets.mcu import SerialTarget
    cycles = LabWindows(lab, board.name) if board.standin is not None and board.standin.cycle_model else None
    return SerialTarget(board, run_id, cache_dir, flashers.for_board(board, lab), cycles)


def _serial_probe(board, cache_dir):
    from harness.lab.check import probe_serial
    return probe_serial(board)


def _ssh_standin(board, state_dir):
    from harness.lab.standins import ssh_standin
    return ssh_standin(board)


def _qemu_standin(board, state_dir):
    from harness.lab.qemu import QemuStandin
    return QemuStandin(board, state_dir)


register(BoardKind("local", LocalBoard, partial(_posix_target, _host_shell), partial(_posix_probe, _host_shell),
                   _posix_words, on_this_host=lambda b: True))
register(BoardKind("ssh", SshBoard, partial(_posix_target, _ssh_shell), partial(_posix_probe, _ssh_shell),
                   _posix_words, standin=_ssh_standin,
                   on_this_host=lambda b: b.standin is not None or b.host in LOOPBACK))
register(BoardKind("serial", SerialBoard, _serial_target, _serial_probe,
                   lambda facts: f"{facts.get('board')}, {facts['clock_hz'] / 1e6:g} MHz",
                   on_this_host=lambda b: b.standin is not None, standin=_qemu_standin, microcontroller=True))
