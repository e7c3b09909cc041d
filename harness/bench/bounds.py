"""What an epoch of fine-tuning cannot beat on a board: its work at the C core's own ceiling.

An epoch is bounded by compute (its MACs at the core's best product speed, `skip2run --ceiling`)
and by memory (the bytes it reads, at the read bandwidth measured for a working set of its size,
that is, of the cache level its data comes from); the bound is the larger of the two. The first
epoch of a cached method runs the frozen forward over every sample and fills the cache; the
later ones read cached rows instead (far's first steps prime, at ft-all's cost; "later" is the
last epoch). The MAC counts follow docs/methods.md and are checked against the runners' own
count in the tests.
"""
from harness.config import FinetuneHP
from harness.methods import parse_variant
from harness.paths import import_runner_modules

import_runner_modules()
import skip2_methods as sm  # noqa: E402  (far's and bsr's rules, as the runners apply them)

FLOAT = 4


def _hp(hp: dict | None) -> dict:
    """A job's hyper-parameters: the given ones over the config's defaults; bsr's layers as the
    runners get them (a bit mask)."""
    hp = {**FinetuneHP().model_dump(), **(hp or {})}
    if isinstance(hp["bsr_layers"], list) or hp["bsr_layers"] is None:
        hp["bsr_layers"] = sum(1 << k for k in hp["bsr_layers"] or [])
    return hp


def macs_per_sample(method: str, cached: bool, sizes: list, rank: int, hp: dict | None = None) -> tuple[int, int]:
    """(first-epoch, later-epoch) MACs of the products for one sample of the MLP `sizes`
    (docs/methods.md); the SGD update is counted per step, apart. far: after its priming, whose
    steps cost as ft-all's."""
    hp = _hp(hp)
    layers = list(zip(sizes[:-1], sizes[1:]))
    C, R = sizes[-1], rank
    products = [n * m for n, m in layers]
    full = sum(products)
    dx = full - products[0]  # no input gradient below the first layer
    last_in = layers[-1][0]
    hidden = full - last_in * C  # below the last layer: ft-last's and oselm-head's prefix
    lora = sum(R * (n + m) + R * (2 * m + n) for n, m in layers) + R * sum(n for n, _ in layers[1:])
    skip = sum(2 * n * R + 3 * R * C for n, _ in layers)
    last_lora = R * (last_in + C) + R * (2 * C + last_in)
    trained = sm.bsr_trained(hp["bsr_layers"], len(layers))
    below = sum(products[:trained[0]])  # bsr's prefix
    kept = [sm.far_kept(hp["far_keep"], m) for _, m in layers[:-1]] + [C]
    H = last_in + 1  # oselm-head's head input [x[L-1], 1]
    step = {"ft-all": full + full + dx, "ft-bias": full + dx, "ft-last": full + last_in * C,
            "lora-all": full + dx + lora, "lora-last": full + last_lora,
            "skip-lora": full + skip, "skip2-lora": full + skip,
            "far": full + sum(n * k for (n, _), k in zip(layers, kept)) + dx,
            "bsr": full + sum(products[k] for k in trained) + sum(products[trained[0] + 1:]),
            "oselm-head": hidden + last_in * H + last_in + last_in * C + H * C + H * H}
    step["far-random"] = step["far"]
    # What a cache saves: the frozen prefix, with the frozen logits z0 for the adapter methods.
    frozen = {"ft-last": hidden, "oselm-head": hidden, "bsr": below}.get(method, full)
    return step[method], step[method] - frozen if cached else step[method]


def trainable(method: str, sizes: list, rank: int, hp: dict | None = None) -> int:
    """Trained scalars (far: after priming)."""
    hp = _hp(hp)
    layers = list(zip(sizes[:-1], sizes[1:]))
    kept = [sm.far_kept(hp["far_keep"], m) for _, m in layers[:-1]] + [sizes[-1]]
    far = sum(n * k + k for (n, _), k in zip(layers, kept))
    return {"ft-all": sum(n * m + m for n, m in layers), "ft-last": layers[-1][0] * sizes[-1] + sizes[-1],
            "ft-bias": sum(m for _, m in layers), "lora-all": rank * sum(n + m for n, m in layers),
            "lora-last": rank * sum(layers[-1]), "skip-lora": rank * sum(n + sizes[-1] for n, _ in layers),
            "skip2-lora": rank * sum(n + sizes[-1] for n, _ in layers), "far": far, "far-random": far,
            "bsr": sum(layers[k][0] * layers[k][1] + layers[k][1]
                       for k in sm.bsr_trained(hp["bsr_layers"], len(layers))),
            "oselm-head": (layers[-1][0] + 1) * sizes[-1]}[method]


def epoch_work(variant: str, sizes: list, rank: int, n: int, batch: int, hp: dict | None = None) -> dict:
    """MACs, bytes read and working-set bytes of the first and of the last epoch; the cache's bytes."""
    method, cached, cache_format = parse_variant(variant)
    hp = _hp(hp)
    batches = [min(batch, n - s) for s in range(0, n, batch)]
    steps = len(batches)
    epochs = hp["oselm_passes"] if method == "oselm-head" else hp["epochs"]
    priming = sm.far_priming(hp["far_prime"], epochs * steps) if method in ("far", "far-random") else 0
    params = trainable(method, sizes, rank, hp)

    # Per step: (first-epoch, later-epoch) MACs per sample, and one MAC per trained scalar for the
    # update (recursive least squares counts its updates per sample); far primes as ft-all.
    per_step = {m: (macs_per_sample(m, cached, sizes, rank, hp),
                    0 if method == "oselm-head" else trainable(m, sizes, rank, hp))
                for m in ({method, "ft-all"} if priming else {method})}

    def macs(epoch: int) -> int:
        total = 0
        for i, nb in enumerate(batches):
            (first, later), update = per_step["ft-all" if epoch * steps + i < priming else method]
            total += nb * (later if epoch else first) + update
        return total

    backbone = FLOAT * sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    inputs = FLOAT * n * sizes[0]
    # oselm-head reads P for u = h P and again to update it, every sample.
    state = 2 * FLOAT * (sizes[-2] + 1) ** 2 if method == "oselm-head" else 0
    # A cached row (docs/methods.md): the prefix's hidden activations (bsr: those below its
    # lowest trained layer), and the frozen logits z0 for the adapter methods; int8 rows hold a
    # byte per value and a float scale per segment.
    below = sm.bsr_trained(hp["bsr_layers"], len(sizes) - 1)[0] if method == "bsr" else len(sizes) - 2
    segments = [*sizes[1:below + 1], *([] if method in ("ft-last", "bsr", "oselm-head") else [sizes[-1]])]
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
        "first": {"macs": macs(0), "bytes": first_data + steps * first_step + n * state,
                  "working_set": first_data + first_step + state // 2},
        "later": {"macs": macs(epochs - 1), "bytes": later_data + steps * later_step + n * state,
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
