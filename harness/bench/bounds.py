"""What an epoch of fine-tuning cannot beat on a board: its work at the C core's own ceiling.

An epoch is bounded by compute (its MACs at the core's best product speed, `skip2run --ceiling`)
and by memory (the bytes it reads, at the read bandwidth measured for a working set of its size,
that is, of the cache level its data comes from); the bound is the larger of the two. The first
epoch of a cached method runs the frozen forward over every sample and fills the cache; the
later ones read cached rows instead. The MAC counts follow docs/methods.md and are checked
against the runners' own count in the tests.
"""
from harness.methods import parse_variant

FLOAT = 4


def macs_per_sample(method: str, cached: bool, sizes: list, rank: int) -> tuple[int, int]:
    """(first-epoch, later-epoch) MACs of the products for one sample of the MLP `sizes`
    (docs/methods.md); the SGD update is counted per step, apart."""
    layers = list(zip(sizes[:-1], sizes[1:]))
    C, R = sizes[-1], rank
    full = sum(n * m for n, m in layers)
    dx = full - layers[0][0] * layers[0][1]  # no input gradient below the first layer
    last_in = layers[-1][0]
    lora = sum(R * (n + m) + R * (2 * m + n) for n, m in layers) + R * sum(n for n, _ in layers[1:])
    skip = sum(2 * n * R + 3 * R * C for n, _ in layers)
    last_lora = R * (last_in + C) + R * (2 * C + last_in)
    step = {"ft-all": full + full + dx, "ft-bias": full + dx, "ft-last": full + last_in * C,
            "lora-all": full + dx + lora, "lora-last": full + last_lora,
            "skip-lora": full + skip, "skip2-lora": full + skip}[method]
    # What a cache saves: the whole frozen backbone with its logits z0, except for ft-last, which
    # trains the last layer.
    frozen = full - last_in * C if method == "ft-last" else full
    return step, step - frozen if cached else step


def trainable(method: str, sizes: list, rank: int) -> int:
    layers = list(zip(sizes[:-1], sizes[1:]))
    return {"ft-all": sum(n * m + m for n, m in layers), "ft-last": layers[-1][0] * sizes[-1] + sizes[-1],
            "ft-bias": sum(m for _, m in layers), "lora-all": rank * sum(n + m for n, m in layers),
            "lora-last": rank * sum(layers[-1]), "skip-lora": rank * sum(n + sizes[-1] for n, _ in layers),
            "skip2-lora": rank * sum(n + sizes[-1] for n, _ in layers)}[method]


def epoch_work(variant: str, sizes: list, rank: int, n: int, batch: int) -> dict:
    """MACs, bytes read and working-set bytes of the first and of a later epoch; the cache's bytes."""
    method, cached, cache_format = parse_variant(variant)
    steps = -(-n // batch)
    first, later = macs_per_sample(method, cached, sizes, rank)
    params = trainable(method, sizes, rank)
    update = params * steps  # one MAC per trained scalar and step
    backbone = FLOAT * sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    inputs = FLOAT * n * sizes[0]
    # A cached row (docs/methods.md): the inputs of the layers after the first, and the frozen
    # logits z0 but for ft-last; int8 rows hold a byte per value and a float scale per segment.
    segments = [*sizes[1:-1], *([] if method == "ft-last" else [sizes[-1]])]
    row = sum(segments) + FLOAT * len(segments) if cache_format == "int8" else FLOAT * sum(segments)
    # Every step reads the trained parameters, and the frozen backbone where it computes with it:
    # always in the first epoch, in the later ones only without a cache (ft-last's cached
    # epochs read its trained last layer, counted in params).
    first_step = backbone + FLOAT * params
    later_step = FLOAT * params + (0 if cached else backbone)
    # Later epochs of a cached method read the cache, and the inputs only for an adapter on x[0].
    later_data = n * row + (inputs if method.startswith("skip") else 0) if cached else inputs
    first_data = inputs + (n * row if cached else 0)
    return {
        "cache_bytes": n * row if cached else 0,
        "first": {"macs": n * first + update, "bytes": first_data + steps * first_step,
                  "working_set": first_data + first_step},
        "later": {"macs": n * later + update, "bytes": later_data + steps * later_step,
                  "working_set": later_data + later_step},
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
