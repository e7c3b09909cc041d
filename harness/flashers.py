"""Flashers: how firmware and model images get onto an MCU board (docs/targets.md).

A serial target is handed one and calls flash(); it never knows which. Here: a command-line
flasher (the lab's `flash_command`, e.g. st-flash, openocd or probe-rs), the emulated lab's
supervisor (it restarts a QEMU board with the images), and none (the user flashes by hand).
"""
import shlex
import subprocess
from pathlib import Path
from typing import Protocol

from harness.errors import TargetError


class Flasher(Protocol):
    # Whether flash() can do anything (False: the board is flashed by hand).
    can_flash: bool

    def flash(self, firmware: Path, model: Path | None = None, model_address: int | None = None) -> None:
        """Put the firmware ELF (and a model image at model_address) on the board and restart it;
        TargetError naming the cause when that fails."""


class CommandFlasher:
    """A command line with {firmware}, {model} and {model_address} filled in, run by a shell."""
    can_flash = True

    def __init__(self, board_name: str, command: str):
        self.board_name, self.command = board_name, command

    def flash(self, firmware, model=None, model_address=None):
        command = self.command.format(firmware=shlex.quote(str(firmware)), model=shlex.quote(str(model or "")),
                                      model_address=f"0x{model_address or 0:08x}")
        done = subprocess.run(command, shell=True, capture_output=True, text=True)
        if done.returncode != 0:
            raise TargetError(f"flashing board {self.board_name} failed ({command}): "
                              f"{(done.stderr.strip().splitlines() or ['no output'])[-1]}", done.stderr[-2000:])


class SupervisorFlasher:
    """The emulated lab's supervisor restarts the board's QEMU with the images."""
    can_flash = True

    def __init__(self, lab, board_name: str):
        self.lab, self.board_name = lab, board_name

    def flash(self, firmware, model=None, model_address=None):
        from harness.lab.serve import ask
        ask(self.lab, f"flash {self.board_name} {firmware}" + (f" {model} 0x{model_address:08x}" if model else ""))


class ByHand:
    """No way to flash: say what the board needs."""
    can_flash = False

    def __init__(self, board_name: str):
        self.board_name = board_name

    def flash(self, firmware, model=None, model_address=None):
        raise TargetError(f"board {self.board_name} needs {'a model' if model else 'the current firmware'} flashed "
                          f"({model or firmware}); flash it by hand, or set flash_command in the lab file")


def for_board(board, lab) -> Flasher:
    """The flasher of a serial board of `lab`: its stand-in's supervisor, its flash_command, or none."""
    if board.standin is not None:
        return SupervisorFlasher(lab, board.name)
    if board.flash_command:
        return CommandFlasher(board.name, board.flash_command)
    return ByHand(board.name)
