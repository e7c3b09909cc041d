"""The firmware of an MCU board, built on the host by arm-none-eabi-gcc and cached by its sources.

The firmware hash the board reports (HELLO) is the SHA-256 over these sources, so the harness
knows without flashing whether a board runs the current firmware; records carry the ELF's own
sha256 as the runner hash.
"""
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness.builds import build_once
from harness.errors import TargetError
from harness.hashing import sha256_file, sha256_tree
from harness.paths import TARGETS

MCU_DIR = TARGETS / "c" / "mcu"
CORE_DIR = TARGETS / "c" / "core"
COMPILER = "arm-none-eabi-gcc"


@dataclass(frozen=True)
class Firmware:
    port: str
    layout: str
    elf: Path
    source_hash: str   # what the firmware reports as its hash
    elf_sha256: str    # the runner hash in records


def sources() -> dict:
    files = {f"core/{p.name}": p for p in sorted(CORE_DIR.iterdir()) if p.suffix in (".c", ".h", ".inc", ".def")}
    # bench/ holds the product benchmark (skip2bench mcu-speed), not part of the firmware.
    files.update({f"mcu/{p.relative_to(MCU_DIR)}": p for p in sorted(MCU_DIR.rglob("*"))
                  if p.is_file() and not {"build", "bench"} & set(p.relative_to(MCU_DIR).parts)
                  and p.name != ".gitignore"})
    return files


def source_hash() -> str:
    return sha256_tree(sources())


def build(port: str, layout: str, cache_dir: Path) -> Firmware:
    """The firmware ELF for `port` in `layout` (qemu or silicon), built once per sources."""
    digest = source_hash()
    final = Path(cache_dir) / "firmware" / f"{port}-{layout}-{digest[:16]}"
    if not (final / "fw.elf").is_file():
        if shutil.which(COMPILER) is None:
            raise TargetError(f"{COMPILER} not found on this host: the MCU firmware cannot be built "
                              f"(apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi; `make lab-deps`)")
        build_once(["make", "-C", str(MCU_DIR), f"PORT={port}", f"LAYOUT={layout}", f"FW_HASH={digest}"],
                   "fw.elf", final, f"building the {port} firmware")
    return Firmware(port, layout, final / "fw.elf", digest, sha256_file(final / "fw.elf"))
