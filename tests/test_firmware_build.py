"""The firmware built for the real STM32F405's memory map: it links, and it fits the chip.

Nothing here runs on silicon (QEMU models no CCM and no DWT); see targets/c/mcu/README.md for
the paths that are untested on a real chip.
"""
import pytest
from elftools.elf.elffile import ELFFile

from conftest import require_tool
from harness.mcu import firmware

KB = 1024
FLASH, FIRMWARE_AREA, MODEL_SLOT = 0x08000000, 256 * KB, 0x08040000
SRAM, SRAM_BYTES, CCM, CCM_BYTES = 0x20000000, 128 * KB, 0x10000000, 64 * KB


@pytest.fixture(scope="module")
def silicon(tmp_path_factory):
    require_tool("arm-none-eabi-gcc")
    fw = firmware.build("stm32f405", "silicon", tmp_path_factory.mktemp("fw"))
    with open(fw.elf, "rb") as f:
        elf = ELFFile(f)
        segments = [dict(s.header) for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
        symbols = {s.name: s["st_value"] for s in elf.get_section_by_name(".symtab").iter_symbols()}
    return segments, symbols


def test_the_firmware_fits_the_flash_sectors_before_the_model_slot(silicon):
    segments, _ = silicon
    flash = [s for s in segments if s["p_filesz"]]
    assert all(FLASH <= s["p_paddr"] and s["p_paddr"] + s["p_filesz"] <= FLASH + FIRMWARE_AREA for s in flash)
    assert FLASH + FIRMWARE_AREA == MODEL_SLOT
    print(f"firmware flash: {sum(s['p_filesz'] for s in flash)} of {FIRMWARE_AREA} bytes")


def test_ram_is_the_chips_two_regions(silicon):
    segments, symbols = silicon
    ram = [s for s in segments if s["p_vaddr"] >= SRAM]
    assert all(s["p_vaddr"] + s["p_memsz"] <= SRAM + SRAM_BYTES for s in ram)
    # The stack sits at the top of the 128 KB SRAM under the 64-byte reset note, the free CCM is
    # the real chip's 0x10000000.
    assert symbols["__stack_top"] == symbols["__reset_note"] == SRAM + SRAM_BYTES - 64
    assert (symbols["__ccm_free_start"], symbols["__ccm_free_end"]) == (CCM, CCM + CCM_BYTES)
    static = sum(s["p_memsz"] for s in ram)
    print(f"static RAM: {static} bytes; stack {symbols['STACK_SIZE']} bytes")
    assert static + symbols["STACK_SIZE"] < SRAM_BYTES // 4
