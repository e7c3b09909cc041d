"""What an epoch of fine-tuning cannot beat on a board: its work at the C core's own ceiling.

An epoch is bounded by compute (its MACs at the core's best product speed, `skip2run --ceiling`)
and by memory (the bytes it reads, at the read bandwidth measured for a working set of its size,
that is, of the cache level its data comes from); the bound is the larger of the two. The first
epoch of a cached method runs the frozen forward over every sample and fills the cache; the
later ones read cached rows instead (far's first steps prime, at ft-all's cost; "later" is the
last epoch). Every MAC, parameter and cache count comes from harness/work.py, the host's one
model of a job's work; this module adds only what the epochs read.
"""
from harness import work
from harness.methods import parse_variant


def epoch_work(variant: str, sizes: list, n: int, hp: dict | None = None) -> dict:
    """MACs, bytes read and working-set bytes of the first and of the last epoch."""
    method = parse_variant(variant)[0]
    hp = work.job_hp(hp)
    macs, job = work.epoch_macs(variant, sizes, n, hp), work.expected(variant, sizes, n, hp)
    steps = -(-n // hp["batch_size"])
    backbone = work.FLOAT * work.trainable("ft-all", sizes, hp)  # ft-all trains every W and b
    params = work.FLOAT * job["trainable_params"]
    inputs = work.FLOAT * n * sizes[0]
    # oselm-head reads P for u = h P and again to update it, every sample.
    state = 2 * job["mem"]["optimizer_bytes"]
    stored, capacity = job["mem"]["cache_bytes"], job["cache_capacity_samples"]
    # Every step reads the trained parameters, and the frozen backbone where it computes with it:
    # always in the first epoch, in the later ones only for rows the cache does not hold
    # (ft-last's cached epochs read its trained last layer, counted in params).
    first_step = backbone + params
    later_step = params + (backbone if capacity < n else 0)
    # The first epoch reads the inputs and writes the cache's rows; later ones read the stored
    # rows, and the inputs of the rows recomputed (all of them for an adapter on x[0]).
    first_data = inputs + stored
    later_data = stored + work.FLOAT * sizes[0] * (n if method.startswith("skip") else n - capacity)
    return {
        "first": {"macs": macs[0], "bytes": first_data + steps * first_step + n * state,
                  "working_set": first_data + first_step + state // 2},
        "later": {"macs": macs[-1], "bytes": later_data + steps * later_step + n * state,
                  "working_set": later_data + later_step + state // 2},
    }


def bandwidth(read_gbs: list, working_set: int) -> float:
    """GB/s measured for the smallest probed working set that holds `working_set` bytes."""
    for size, gbs in sorted(read_gbs):
        if size >= working_set:
            return gbs
    return sorted(read_gbs)[-1][1]


def bound_s(work: dict, core_gflops: float, read_gbs: list) -> tuple[float, str]:
    """Seconds the epoch cannot beat, and which limit sets them ('compute' or 'memory')."""
    compute = 2 * work["macs"] / (core_gflops * 1e9)
    memory = work["bytes"] / (bandwidth(read_gbs, work["working_set"]) * 1e9)
    return (compute, "compute") if compute >= memory else (memory, "memory")
