"""Storage formats of the cache rows and the inputs (docs/methods.md, "Compact formats").

"f32" keeps values as computed; "int8" keeps one int8 per value and one scale per segment of a
row, exactly as the C core does (targets/c/core/skip2_quant.h), so both store the same bytes and
read back the same floats:

    scale = max |v_i| / 127          (NaN ignored; 0 when every value is 0 or NaN)
    q_i   = v_i / scale, clamped to [-127, 127], rounded half to even (NaN -> 0)
    v'_i  = q_i * scale
"""
import numpy as np

FORMATS = ("f32", "int8")
LEVELS = 127


def quantise(x, segments):
    """(q, scales): x (n x width) as int8, with one scale per row and segment (column slices)."""
    levels = x.dtype.type(LEVELS)
    q = np.empty(x.shape, np.int8)
    scales = np.empty((x.shape[0], len(segments)), x.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        for j, cols in enumerate(segments):
            v = x[:, cols]
            # fmax skips NaN; the initial 0 is the scale of a row of zeros (or NaNs).
            scales[:, j] = np.fmax.reduce(np.abs(v), axis=1, initial=0) / levels
            t = np.clip(v / scales[:, j, None], -levels, levels)
            q[:, cols] = np.nan_to_num(np.rint(t), nan=0)
    return q, scales


def dequantise(q, scales, segments, dtype=np.float32):
    x = np.empty(q.shape, dtype)
    with np.errstate(invalid="ignore"):  # 0 * an infinite scale is NaN, as in C
        for j, cols in enumerate(segments):
            x[:, cols] = q[:, cols].astype(dtype) * scales[:, j, None]
    return x


def round_trip(x, segments):
    """x as read back from int8 storage."""
    return dequantise(*quantise(x, segments), segments, x.dtype)
