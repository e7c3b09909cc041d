"""The cycle model (targets/c/cyclemodel) against the Cortex-M4 TRM's counts: each sequence of
bench/microbench.S measured as one window on QEMU's STM32F405 must take exactly the cycles the
TRM gives (Table 3-1, section 3.3.2, Table 7-1; P = 2, the model's refill), with no wait states,
and with the flash's 5 wait states behind the ART accelerator where code or data come from flash.
"""
import json
import subprocess

import pytest

from conftest import require_tool
from harness.mcu import cycle_model

BENCH = cycle_model.PLUGIN_DIR / "bench"
P = 2  # the model's pipeline refill
DIVIDE = 7  # the model's SDIV/UDIV (the TRM: 2 to 12 by the operands)
RETURN = 1 + P  # each sequence's bx lr
# Cycles of each sequence by the TRM, its return included, and its instructions.
TRM = {
    "seq_empty": (RETURN, 1),
    "seq_alu": (16 + RETURN, 17),                 # ADD 1
    "seq_vadd": (16 + RETURN, 17),                # VADD.F32 1
    "seq_vmla": (16 * 3 + RETURN, 17),            # VMLA.F32 3
    "seq_vldm8": (1 + 8 + RETURN, 2),             # VLDM 1 + N
    "seq_vldm16": (1 + 16 + RETURN, 2),
    "seq_vldr": (4 * 2 + RETURN, 5),              # VLDR 2
    "seq_ldm4": (1 + 4 + RETURN, 2),              # LDM 1 + N
    "seq_stm4": (1 + 4 + RETURN, 2),              # STM 1 + N
    "seq_ldr8": (8 + 1 + RETURN, 9),              # N neighbouring LDRs: N + 1
    "seq_ldr_dependent": (2 + 2 + 2 + RETURN, 4),  # STR 2; LDR 2; an LDR on its result 2
    "seq_ldr_alu": (4 * (2 + 1) + RETURN, 9),     # LDR 2, ADD 1
    "seq_mul": (8 + RETURN, 9),                   # MUL 1
    "seq_branch": (4 * (1 + P) + RETURN, 5),      # B 1 + P
    "seq_cond_not_taken": (1 + 4 + RETURN, 6),    # CMP 1, BNE not taken 1
    "seq_cond_taken": (4 * (1 + 1 + P) + RETURN, 9),  # CMP 1, BEQ taken 1 + P
    "seq_mla": (8 + RETURN, 9),                   # MLA 1
    "seq_umlal": (4 + RETURN, 5),                 # UMLAL 1
    "seq_sdiv": (1 + 4 * DIVIDE + RETURN, 6),     # MOVS 1, SDIV 2 to 12: the model's fixed 7
    "seq_vdiv": (4 * 14 + RETURN, 5),             # VDIV.F32 14
    "seq_vsqrt": (2 * 14 + RETURN, 3),            # VSQRT.F32 14
    "seq_ldrd_strd": (3 + 3 + RETURN, 3),         # LDRD, STRD 1 + N (N = 2)
    "seq_vpush_vpop": ((1 + 4) + (1 + 4) + RETURN, 3),  # VPUSH, VPOP of two doubles 1 + N (N = 4 words)
    "seq_flash_data": (2 + 1 + RETURN, 3),        # two neighbouring LDRs
    "seq_far_call": (2 + (1 + P) + (1 + P) + (1 + 1 + P), 4),  # PUSH 1+N, BL, BX, POP {pc} 1+N+P
    # MOVS 1; four passes of SUBS 1 and BNE, taken three times 1 + P, then not 1
    "seq_loop": (1 + 4 + 3 * (1 + P) + 1 + RETURN, 10),
}
# The order microbench.S runs them in: every sequence once, then the flash ones again.
RUNS = [*TRM][:-3] + ["seq_flash_data"] * 3 + ["seq_far_call"] * 2 + ["seq_loop"] * 2


@pytest.fixture(scope="module")
def windows(tmp_path_factory):
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc", "cc"):
        require_tool(tool)
    tmp = tmp_path_factory.mktemp("cyclemodel")
    plugin = cycle_model.build(tmp / "cache")
    elf = tmp / "microbench.elf"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-mthumb",
                    "-nostdlib", "-T", str(BENCH / "microbench.ld"), "-o", str(elf), str(BENCH / "microbench.S")],
                   check=True)
    at = cycle_model.symbols(elf, ["run", "mark", "done"])
    found = {}
    for ws, flash in ((0, ""), (5, ",ws=5,flash=0x08000000:0x100000,flash=0x0:0x100000")):
        out = tmp / f"ws{ws}.jsonl"
        option = (f"{plugin},out={out},arm=0x{at['run']:x},mark=0x{at['mark']:x},emit=0x{at['done']:x}" + flash)
        subprocess.run(["qemu-system-arm", "-M", "netduinoplus2", "-display", "none", "-monitor", "none",
                        "-serial", "null", "-icount", "shift=0", "-semihosting-config", "enable=on,target=native",
                        "-kernel", str(elf), "-plugin", option], check=True, timeout=60)
        found[ws] = cycle_model.read_windows(out)
    return found


def calls(windows):
    """A window's cycles and instructions less those of the empty sequence's calls around it."""
    empty = windows[0]
    return [(w["cycles"] - empty["cycles"] + RETURN, w["instructions"] - empty["instructions"] + 1) for w in windows]


def test_every_sequence_takes_the_trm_s_cycles(windows):
    assert len(windows[0]) == len(RUNS)
    # The calls around a sequence: BLX to it, BL to mark, and the two returns, each 1 + P.
    assert (windows[0][0]["cycles"], windows[0][0]["instructions"]) == (4 * (1 + P), 4)
    assert dict(zip(RUNS, calls(windows[0]))) == TRM
    assert all(w["classes"]["flash_wait_code"] == w["classes"]["flash_wait_data"] == 0 for w in windows[0])


def test_flash_waits_where_the_art_accelerator_misses(windows):
    ws = 5
    flash = [(w["classes"]["flash_wait_code"], w["classes"]["flash_wait_data"]) for w in windows[5]]
    # Without the waits, every window is the TRM's count.
    assert [w["cycles"] - sum(f) for w, f in zip(windows[5], flash)] == [w["cycles"] for w in windows[0]]
    # Data: two lines of the table miss, hit once cached, and two new lines miss.
    assert [d for _, d in flash[-7:-4]] == [2 * ws, 0, 2 * ws]
    # Code: the far function's line misses (not the next line, so not prefetched), then hits; a
    # sequence run a second time is cached whole.
    assert [c for c, _ in flash[-4:-2]] == [2 * ws, 0]
    assert flash[-6][0] == 0
    # A loop in a line of its own: that line misses on the first pass through it only, and once
    # for the whole first run (its later passes hit); the second run is cached whole.
    assert [c for c, _ in flash[-2:]] == [ws, 0]
    assert all(d == 0 for _, d in flash[:-7] + flash[-4:])  # no other sequence reads flash
    assert all(w["flash_wait_cycles"] == sum(f) for w, f in zip(windows[5], flash))


def test_a_bad_argument_is_refused_in_one_line(tmp_path):
    require_tool("qemu-system-arm")
    plugin = cycle_model.build(tmp_path / "cache")
    done = subprocess.run(["qemu-system-arm", "-M", "netduinoplus2", "-display", "none", "-monitor", "none",
                           "-serial", "null", "-plugin", f"{plugin},flash=0x0"], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode != 0 and "cyclemodel: argument 'flash=0x0': write flash=START:SIZE" in done.stderr
