"""Estimated Cortex-M4 cycles of an emulated board's fine-tuning: the QEMU plugin of
targets/c/cyclemodel (its README has the model and its assumptions), built on this host like
the firmware, and the window it reports checked against the job before it joins the record.

The plugin measures one window per job, the same stretch the core times as `ft_ticks`: from
the first to the last read of the core's clock (`skip2_port_ticks`) inside `skip2_finetune`,
host transfers (`port_transfer_begin` to `port_transfer_end`) left out, and writes it when the
firmware reads its transfer time for DONE (`port_transfer_ticks`, called there alone). It is optional: without it, records carry instructions only.
"""
import json
import math
import shutil
from pathlib import Path

from elftools.elf.elffile import ELFFile

from harness.builds import build_once
from harness.errors import TargetError
from harness.hashing import sha256_tree
from harness.paths import TARGETS
from harness.transports.serial_link import ProtocolError

PLUGIN_DIR = TARGETS / "c" / "cyclemodel"
# The firmware's functions that drive the window (see the module's docstring).
HOOKS = {"arm": "skip2_finetune", "mark": "skip2_port_ticks", "pause": "port_transfer_begin",
         "resume": "port_transfer_end", "emit": "port_transfer_ticks"}
# Flash that waits at each firmware port's clock: its address ranges (the STM32's flash and its
# boot alias at 0) and wait states (RM0090: 5 at 168 MHz and 3.3 V). The mps2-an386 runs from
# SSRAM without wait states.
FLASH = {"stm32f405": {"ranges": [(0x08000000, 0x100000), (0x0, 0x100000)], "ws": 5}}
# Instructions the plugin's window and the firmware's clock may differ by at each end of a timed
# stretch: the hooks' own instructions between the function entry the plugin sees and the timer
# read or restart the firmware makes there (measured: the clock leaves out 56 more a transfer).
HOOK_SLACK = 64


def build(cache_dir: Path) -> Path:
    """The plugin (a shared object for qemu-system-arm), built once per its sources."""
    sources = {p.name: p for p in sorted(PLUGIN_DIR.iterdir()) if p.suffix in (".c", ".h") or p.name == "Makefile"}
    final = Path(cache_dir) / "cyclemodel" / sha256_tree(sources)[:16]
    if not (final / "cyclemodel.so").is_file() and shutil.which("cc") is None:
        raise TargetError("no C compiler (cc) on this host to build the cycle model plugin; apt-get install gcc")
    return build_once(["make", "-C", str(PLUGIN_DIR)], "cyclemodel.so", final, "building the cycle model plugin")


def symbols(elf: Path, names) -> dict:
    """Entry addresses of the firmware's functions `names` (Thumb bit cleared)."""
    with open(elf, "rb") as f:
        table = ELFFile(f).get_section_by_name(".symtab")
        found = {s.name: s["st_value"] & ~1 for s in table.iter_symbols() if s.name in set(names)}
    missing = sorted(set(names) - set(found))
    if missing:
        raise TargetError(f"firmware {elf} has no function {', '.join(missing)} for the cycle model; rebuild it")
    return found


def plugin_option(plugin: Path, elf: Path, port: str, out: Path) -> str:
    """QEMU's -plugin argument: the plugin, its output file and the window's hooks in `elf`."""
    at = symbols(elf, HOOKS.values())
    args = [f"out={out}", *(f"{key}=0x{at[name]:x}" for key, name in HOOKS.items())]
    flash = FLASH.get(port)
    if flash:
        args += [f"ws={flash['ws']}", *(f"flash=0x{start:x}:0x{size:x}" for start, size in flash["ranges"])]
    return ",".join([str(plugin), *args])


def read_windows(out: Path) -> list:
    """The windows the plugin wrote so far (a line still being written is not one yet)."""
    if not out.is_file():
        return []
    lines = out.read_text().split("\n")[:-1]
    return [json.loads(line) for line in lines if line.strip()]


def checked_cycles(window: dict, ft_instructions: int, ticks_per_second: int, board: str) -> int:
    """The window's cycles once its instruction count is the job's own: it agrees with the count
    the firmware's clock gave, to a tick and the hooks' instructions at each end of each timed
    stretch (the window's ends and every transfer inside it)."""
    ends = 2 * (window["pauses"] + 1)
    slack = ends * (math.ceil(1e9 / ticks_per_second) + HOOK_SLACK)
    if abs(window["instructions"] - ft_instructions) > slack:
        raise ProtocolError(f"board {board}: the cycle model counted {window['instructions']} instructions of "
                            f"fine-tuning where the board's clock gave {ft_instructions} (more than {slack} apart): "
                            f"its window is not this job's; restart it (skip2bench lab ctl restart {board})")
    return window["cycles"]


class LabWindows:
    """An emulated board's cycle model windows, as the lab's supervisor that runs its QEMU reads them."""

    def __init__(self, lab, board_name: str):
        self.lab, self.board_name = lab, board_name

    def state(self) -> dict:
        """{"windows": how many so far (None: QEMU runs without the model), "last": the last one, "why_not"}"""
        from harness.lab.serve import ask
        return ask(self.lab, f"cycles {self.board_name}")
