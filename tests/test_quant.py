"""The int8 storage format (docs/methods.md, "Compact formats"): the NumPy runner's quantiser and
the C core's store the same bytes and read back the same floats, bit for bit, including the
corner cases (ties, zeros, subnormals, infinities, NaN). The C core rounds by adding and
subtracting 1.5 * 2^23 rather than calling rintf: checked against rintf on every float the
rounding can meet."""
import ctypes
import subprocess

import numpy as np
import pytest

import skip2_quant as quant
from conftest import ROOT, require_tool

CORE = ROOT / "targets" / "c" / "core"


@pytest.fixture(scope="module")
def c_quantise(tmp_path_factory):
    """skip2_quantise of the core, built with the runners' flags into a shared library."""
    require_tool("cc")
    lib = tmp_path_factory.mktemp("quant") / "libskip2quant.so"
    subprocess.run(["cc", "-O2", "-std=c99", "-ffp-contract=off", "-shared", "-fPIC", str(CORE / "skip2_quant.c"),
                    "-o", str(lib), "-lm"], check=True)
    fn = ctypes.CDLL(str(lib)).skip2_quantise
    fn.restype = ctypes.c_float
    fn.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_int8)]

    def quantise(row):
        v = np.ascontiguousarray(row, np.float32).copy()
        q = np.zeros(len(v), np.int8)
        scale = fn(len(v), v.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), q.ctypes.data_as(ctypes.POINTER(ctypes.c_int8)))
        return q, np.float32(scale), v

    return quantise


def rows():
    rng = np.random.default_rng(7)
    f32 = np.float32
    out = [rng.standard_normal(96) * m for m in (1e-30, 1e-3, 1.0, 40.0, 1e30)]
    out.append(rng.standard_normal(96) * np.logspace(-6, 3, 96))   # values of every size in one row
    out.append(np.maximum(rng.standard_normal(96), 0))              # ReLU activations: many zeros
    out.append(np.array([127, 0.5, 1.5, 2.5, -0.5, -2.5, 126.5, -126.5]))  # scale 1: ties go to even
    out.append(np.array([-127, -1.5, -3.5, -125.5, 3.5, 125.5, 63.5, -63.5]))  # negative ties too
    # Next to ties: one ulp either side of 0.5, 1.5 and 2.5 (scale 1).
    out.append(np.array([127, *[np.nextafter(f32(t), f32(t) + d) for t in (0.5, -0.5, 1.5, -2.5) for d in (-1, 1)]]))
    out.append(np.array([127, -0.0, 1e-30, -1e-30, 0.25, -0.25]))  # -0 and what rounds to it
    out.append(np.array([127.5, -127.5, 127.49, -126.51]))           # the ends: quotients at +-127
    out.append(np.zeros(5))
    out.append(np.array([-0.0, 0.0, -0.0]))
    out.append(np.array([1e-45, -3e-45, 1e-44]))                    # subnormals: the scale underflows to 0
    out.append(np.array([np.nan, 2.0, -1.0, np.nan]))
    out.append(np.array([np.nan, np.nan]))
    out.append(np.array([np.inf, 1.0, -np.inf]))
    out.append(np.array([3.4e38, -3.4e38, 1.0]))
    return [np.asarray(r, f32) for r in out]


@pytest.mark.parametrize("i", range(len(rows())))
def test_c_and_numpy_store_and_read_back_the_same_bits(c_quantise, i):
    row = rows()[i]
    q, scale, back = c_quantise(row)
    ref_q, ref_scale = quant.quantise(row[None, :], [slice(None)])
    ref_back = quant.dequantise(ref_q, ref_scale, [slice(None)])[0]
    np.testing.assert_array_equal(q, ref_q[0])
    assert scale.view(np.uint32) == ref_scale[0, 0].view(np.uint32)
    np.testing.assert_array_equal(back.view(np.uint32), ref_back.view(np.uint32))


def test_the_format_is_the_documented_one(c_quantise):
    q, scale, back = c_quantise(rows()[7])
    assert scale == 1 and list(q) == [127, 0, 2, 2, -0, -2, 126, -126]  # half to even
    q, scale, back = c_quantise(np.array([np.nan, 2.0, -1.0, np.nan], np.float32))
    assert scale == np.float32(2) / np.float32(127) and list(q) == [0, 127, -64, 0]  # NaN ignored, then 0
    assert back[1] == np.float32(127) * scale


EVERY_QUOTIENT = r"""
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "skip2_quant.h"
/* Every float t in [-127, 127] (what the clamp leaves), quantised as a row behind a 127 (so the
 * scale is 1 and the quotient is t itself), against rintf. Prints floats checked, mismatches. */
enum { CHUNK = 65536 };
static float v[CHUNK + 1], t[CHUNK + 1];
static int8_t q[CHUNK + 1];
int main(void)
{
    const uint32_t top = 0x42FE0000u; /* 127.0f */
    uint64_t checked = 0, wrong = 0;
    for (uint32_t sign = 0; sign < 2; sign++)
        for (uint64_t b = 0; b <= top; b += CHUNK) {
            int n = 1;
            v[0] = 127.0f;
            for (uint64_t i = b; i < b + CHUNK && i <= top; i++) {
                uint32_t bits = (uint32_t)i | sign << 31;
                memcpy(&v[n++], &bits, sizeof bits);
            }
            memcpy(t, v, (size_t)n * sizeof *v);
            skip2_quantise(n, v, q);
            for (int i = 1; i < n; i++)
                wrong += q[i] != (int8_t)rintf(t[i]);
            checked += (uint64_t)n - 1;
        }
    printf("%llu %llu\n", (unsigned long long)checked, (unsigned long long)wrong);
    return 0;
}
"""


def test_the_c_rounding_is_rintf_on_every_quotient(tmp_path):
    require_tool("cc")
    (tmp_path / "every.c").write_text(EVERY_QUOTIENT)
    subprocess.run(["cc", "-O2", "-std=c99", "-ffp-contract=off", f"-I{CORE}", str(tmp_path / "every.c"),
                    str(CORE / "skip2_quant.c"), "-o", str(tmp_path / "every"), "-lm"], check=True)
    checked, wrong = map(int, subprocess.run([tmp_path / "every"], capture_output=True, text=True,
                                             check=True).stdout.split())
    assert checked == 2 * (0x42FE0000 + 1) and wrong == 0


def test_segments_have_their_own_scale():
    x = np.array([[1.0, -2.0, 100.0, 50.0]], np.float32)
    q, scales = quant.quantise(x, [slice(0, 2), slice(2, 4)])
    assert list(scales[0]) == [np.float32(2) / np.float32(127), np.float32(100) / np.float32(127)]
    assert list(q[0]) == [64, -127, 127, 64]
