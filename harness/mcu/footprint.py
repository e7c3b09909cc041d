"""What the firmware itself takes, read from its ELF (pyelftools): flash, and static RAM per
region. With the board's own measures (stack high-water, where the data set and the arena sit)
it makes every MCU record's memory per region (docs/serial-protocol.md, DONE)."""
from pathlib import Path

from elftools.elf.elffile import ELFFile


def static(elf: Path, regions) -> dict:
    """{"flash": bytes loaded into flash, "ram": {region: .data + .bss bytes in it}}."""
    with open(elf, "rb") as f:
        loads = [seg for seg in ELFFile(f).iter_segments() if seg["p_type"] == "PT_LOAD"]
        flash = sum(seg["p_filesz"] for seg in loads)
        ram = {name: sum(seg["p_memsz"] for seg in loads if base <= seg["p_vaddr"] < base + size)
               for name, base, size, _ in regions}
    return {"flash": flash, "ram": ram}


def memory(fw_static: dict, hello, done: dict, flash_bytes: dict) -> dict:
    """Flash and every RAM region's use by one job, measured: static data, the stack's deepest
    use, the data set, the arena and the core's cache store (apart from the arena or at its end)
    where the firmware placed them; in flash the firmware and, from `flash_bytes`, the model image
    and the data set the job read there (int8 inputs)."""
    ram = {}
    for i, (name, _, size, free) in enumerate(hello.regions):
        reserved = size - free - fw_static["ram"][name]  # the stack's reservation, where it sits
        use = {"size": size, "static": fw_static["ram"][name],
               "stack": done["stack_bytes"] if reserved > 0 else 0,
               "data": done["data_bytes"] if done["data_region"] == i else 0,
               "arena": done["arena_bytes_placed"] if done["arena_region"] == i else 0,
               "store": done["store_bytes_placed"] if done["store_region"] == i else 0}
        use["used"] = use["static"] + use["stack"] + use["data"] + use["arena"] + use["store"]
        ram[name] = use
    return {"flash": {"size": hello.flash_bytes, "firmware": fw_static["flash"], **flash_bytes}, "ram": ram}
