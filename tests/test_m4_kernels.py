"""The Cortex-M4F's kernels (targets/c/core/skip2_tiles_m4.inc) give the portable kernels' bits.

One program (targets/c/mcu/bench/kernels.c), a sweep of products, row additions and int8
dequantisation over shapes and operand layouts, is built for this host (the portable kernels, at
every vector width the CPU has) and for the emulated mps2-an386 (the M4F's); every line, a hash
of a result's bits, must be the same. The MCU tests check whole jobs, but on small shapes only.
"""
import os
import subprocess

from conftest import ROOT, require_tool

C_DIR = ROOT / "targets" / "c"
BENCH = C_DIR / "mcu" / "bench"


def test_the_m4f_kernels_give_the_portable_kernels_bits(tmp_path):
    for tool in ("cc", "make", "arm-none-eabi-gcc", "qemu-system-arm"):
        require_tool(tool)
    host = tmp_path / "kernels"
    subprocess.run(["cc", "-O2", "-std=c99", "-ffp-contract=off", f"-I{C_DIR / 'core'}", f"-I{BENCH}", f"-I{BENCH.parent}",
                    str(BENCH / "kernels.c"), str(C_DIR / "core" / "skip2_linalg.c"),
                    str(C_DIR / "core" / "skip2_prng.c"), str(C_DIR / "core" / "skip2_quant.c"), "-lm", "-o", str(host)], check=True)
    widths = {w: subprocess.run([str(host)], capture_output=True, text=True, check=True,
                                env=dict(os.environ, SKIP2_VECTOR_WIDTH=w)).stdout for w in ("4", "8", "16")}
    expected = widths["16"].splitlines()
    assert len(expected) > 500 and all(out.splitlines() == expected for out in widths.values())

    done = subprocess.run(["make", "-C", str(C_DIR / "mcu"), "kernels", "PORT=mps2-an386", f"BUILD={tmp_path / 'm4'}"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    ran = subprocess.run(["qemu-system-arm", "-M", "mps2-an386", "-display", "none", "-monitor", "none",
                          "-serial", "null", "-semihosting-config", "enable=on,target=native",
                          "-kernel", str(tmp_path / "m4" / "kernels.elf")], capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    got = (ran.stdout + ran.stderr).splitlines()  # the semihosting console
    differ = [f"host: {e}\nm4f:  {g}" for e, g in zip(expected, got) if e != g]
    assert len(got) == len(expected) and not differ, "\n".join(differ[:5])
