"""The skip2bench counter-based PRNG (specified in docs/prng.md; mirrored in targets/c).

Every random number is a pure function of (seed, stream, counter): the counter-th output of
SplitMix64 started at a stream key. Being counter-based, a whole block of numbers is one
vectorised NumPy expression here and a plain loop in C, and both give the same bits.
"""
import numpy as np

GAMMA = 0x9E3779B97F4A7C15
_M64 = (1 << 64) - 1

# Stream ids: one stream per purpose so that adding a use never shifts another's numbers.
STREAM_ADAPTER = 0x100      # + layer index: LoRA / skip adapter A matrices
STREAM_FAR = 0x300          # + layer index: far-random's choice of the layer's kept neurons
STREAM_SHUFFLE = 0x10000    # + epoch index: fine-tuning epoch order
STREAM_PRETRAIN_INIT = 0x200   # + layer index: backbone weights before pre-training
STREAM_PRETRAIN_SHUFFLE = 0x20000   # + epoch index: pre-training epoch order


def _mix64(z):
    """SplitMix64 finaliser on a uint64 array (wrap-around arithmetic is intended)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def draws(key, n, start=0):
    """Outputs start..start+n-1 of SplitMix64 whose state starts at `key`, as uint64."""
    counters = np.arange(start + 1, start + n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return _mix64(np.uint64(key) + counters * np.uint64(GAMMA))


def stream_key(seed, stream):
    """Key of stream `stream` under `seed`: output number `stream` of SplitMix64 seeded by seed."""
    return int(draws(int(seed) & _M64, 1, start=int(stream))[0])


def uniform(key, n):
    """n float32 values in [0, 1): the top 24 bits of each draw times 2^-24 (exact in float32)."""
    return (draws(key, n) >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -24)


def uniform_sym(key, shape, bound):
    """float32 values in [-bound, bound), row-major over `shape`: (2u - 1) * bound."""
    u = uniform(key, int(np.prod(shape))).reshape(shape)
    return (np.float32(2.0) * u - np.float32(1.0)) * np.float32(bound)


def permutation(key, n):
    """Indices 0..n-1 sorted by (draw_i, i): an unbiased shuffle with a total order, so C's qsort agrees."""
    return np.argsort(draws(key, n), kind="stable").astype(np.int64)
