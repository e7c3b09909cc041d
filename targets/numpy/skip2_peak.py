"""Single-thread sgemm GFLOP/s of a board as NumPy's BLAS achieves it: the yardstick for the C core.

Deployed with the NumPy runner and run on the board as `python3 skip2_peak.py SHAPES_JSON [ROUNDS]`, with
BLAS pinned to one thread by the environment (BLAS reads it once, at load). SHAPES_JSON names workloads: {"name": [[m, k, n], ...], ...}; each workload's
products run in turn and count as one. Prints {"name": GFLOP/s, ...}.
"""
import json
import sys
import time

import numpy as np

SQUARE = 1024  # side of the square product whose speed stands for the machine's peak
ROUNDS = 10
MIN_ROUND_S = 0.05


def sgemm_gflops(shapes, rounds=ROUNDS) -> float:
    """Best-of-`rounds` GFLOP/s of the float32 products (m x k) . (k x n), run back to back."""
    rng = np.random.default_rng(0)
    ops = [(rng.standard_normal((m, k), np.float32), rng.standard_normal((k, n), np.float32),
            np.empty((m, n), np.float32)) for m, k, n in shapes]
    flops = 2 * sum(m * k * n for m, k, n in shapes)

    def timed(reps):
        t0 = time.perf_counter()
        for _ in range(reps):
            for a, b, c in ops:
                np.matmul(a, b, out=c)
        return time.perf_counter() - t0

    reps = 1
    while timed(reps) < MIN_ROUND_S:  # also warms the BLAS up
        reps *= 2
    return flops * reps / min(timed(reps) for _ in range(rounds)) / 1e9


def model_shapes(sizes, batch):
    """The products of one full-backprop step of the MLP `sizes` on a batch: forward, dW and dx."""
    shapes = []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        shapes += [[batch, n_in, n_out], [n_in, batch, n_out]]
        if k > 0:
            shapes.append([batch, n_out, n_in])
    return shapes


if __name__ == "__main__":
    workloads = json.loads(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else ROUNDS
    print(json.dumps({name: sgemm_gflops(shapes, rounds) for name, shapes in workloads.items()}))
