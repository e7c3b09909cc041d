"""What a fine-tuning job does, known on the host before it runs: its MACs, its trained scalars,
its cache's capacity, hits and misses, and its analytic memory by role, each exactly as the
runners count them (docs/methods.md) for a job that does not diverge.

The host's one model of a method's work: the result checks (harness/checks.py), the memory
check before a run, the speed benchmark's bounds (harness/bench/bounds.py) and the report tests
take their counts from here, and tests/test_c_runner.py checks every variant against what both
the NumPy and the C runner report.
"""
import itertools

from harness.config import FinetuneHP
from harness.errors import UserError
from harness.methods import parse_variant
from harness.plan import runner_fields
import skip2_methods as sm  # (far's and bsr's rules, as the runners apply them)

FLOAT = 4  # bytes: every runner computes and keeps its tensors in float32


def job_hp(hp: dict | None) -> dict:
    """A job's hyper-parameters: the given ones over the config's defaults, as the runners get
    them (bsr's layers as a bit mask)."""
    return runner_fields({**FinetuneHP().model_dump(), **(hp or {})})


def adapters(method: str, n_layers: int) -> int:
    """How many adapters the method trains; their scalars are kept beside the backbone's."""
    return {"lora-all": n_layers, "lora-last": 1, "skip-lora": n_layers, "skip2-lora": n_layers}.get(method, 0)


def step_macs(method: str, sizes: list, hp: dict | None = None) -> int:
    """MACs of the products for one sample of a step of the MLP `sizes` that computes its frozen
    prefix (docs/methods.md); the SGD update is counted per step, apart. far: after its priming,
    whose steps cost as ft-all's."""
    hp = job_hp(hp)
    layers = list(zip(sizes[:-1], sizes[1:]))
    C, R = sizes[-1], hp["rank"]
    products = [n * m for n, m in layers]
    full = sum(products)
    dx = full - products[0]  # no input gradient below the first layer
    last_in = layers[-1][0]
    hidden = full - last_in * C  # below the last layer: ft-last's and oselm-head's prefix
    lora = sum(R * (n + m) + R * (2 * m + n) for n, m in layers) + R * sum(n for n, _ in layers[1:])
    skip = sum(2 * n * R + 3 * R * C for n, _ in layers)
    last_lora = R * (last_in + C) + R * (2 * C + last_in)
    trained = sm.bsr_trained(hp["bsr_layers"], len(layers))
    kept = [sm.far_kept(hp["far_keep"], m) for _, m in layers[:-1]] + [C]
    H = last_in + 1  # oselm-head's head input [x[L-1], 1]
    step = {"ft-all": full + full + dx, "ft-bias": full + dx, "ft-last": full + last_in * C,
            "lora-all": full + dx + lora, "lora-last": full + last_lora,
            "skip-lora": full + skip, "skip2-lora": full + skip,
            "far": full + sum(n * k for (n, _), k in zip(layers, kept)) + dx,
            "bsr": full + sum(products[k] for k in trained) + sum(products[trained[0] + 1:]),
            "oselm-head": hidden + last_in * H + last_in + last_in * C + H * C + H * H}
    step["far-random"] = step["far"]
    return step[method]


def trainable(method: str, sizes: list, hp: dict | None = None) -> int:
    """Trained scalars (far: after priming)."""
    hp = job_hp(hp)
    layers, rank = list(zip(sizes[:-1], sizes[1:])), hp["rank"]
    kept = [sm.far_kept(hp["far_keep"], m) for _, m in layers[:-1]] + [sizes[-1]]
    far = sum(n * k + k for (n, _), k in zip(layers, kept))
    return {"ft-all": sum(n * m + m for n, m in layers), "ft-last": layers[-1][0] * sizes[-1] + sizes[-1],
            "ft-bias": sum(m for _, m in layers), "lora-all": rank * sum(n + m for n, m in layers),
            "lora-last": rank * sum(layers[-1]), "skip-lora": rank * sum(n + sizes[-1] for n, _ in layers),
            "skip2-lora": rank * sum(n + sizes[-1] for n, _ in layers), "far": far, "far-random": far,
            "bsr": sum(layers[k][0] * layers[k][1] + layers[k][1]
                       for k in sm.bsr_trained(hp["bsr_layers"], len(layers))),
            "oselm-head": (layers[-1][0] + 1) * sizes[-1]}[method]


def prefix_segments(method: str, sizes: list, hp: dict | None = None) -> list[int]:
    """Widths of the frozen prefix's segments, a cache row's: the hidden activations (bsr: those
    below its lowest trained layer), and the frozen logits z0 for the adapter methods; [] for a
    method without a prefix (bsr training layer 0 has none)."""
    if method == "bsr":
        return sizes[1:sm.bsr_trained(job_hp(hp)["bsr_layers"], len(sizes) - 1)[0] + 1]
    if method in ("ft-last", "oselm-head"):
        return sizes[1:-1]
    return sizes[1:] if method in ("lora-last", "skip-lora", "skip2-lora") else []


def cache_rows(variant: str, sizes: list, n: int, hp: dict | None = None) -> tuple[int, int]:
    """(row_bytes, capacity in rows) of the variant's cache for n samples: an int8 row holds a
    byte per value and a float32 scale per segment; the budget (-1: none) holds whole rows."""
    method, cached, cache_format = parse_variant(variant)
    hp = job_hp(hp)
    segments = prefix_segments(method, sizes, hp)
    if not (cached and segments):
        return 0, 0
    row = sum(segments) + FLOAT * len(segments) if cache_format == "int8" else FLOAT * sum(segments)
    budget = hp["cache_budget_bytes"]
    return row, n if budget < 0 else min(n, budget // row)


def epochs(method: str, hp: dict | None = None) -> int:
    """Epochs the job runs: oselm-head's are its passes."""
    hp = job_hp(hp)
    return hp["oselm_passes"] if method == "oselm-head" else hp["epochs"]


def epoch_macs(variant: str, sizes: list, n: int, hp: dict | None = None) -> list[int]:
    """MACs of each epoch of the job on n samples, as the runners count them."""
    method = parse_variant(variant)[0]
    hp = job_hp(hp)
    batches = [min(hp["batch_size"], n - s) for s in range(0, n, hp["batch_size"])]
    steps, n_epochs = len(batches), epochs(method, hp)
    priming = sm.far_priming(hp["far_prime"], n_epochs * steps) if method in ("far", "far-random") else 0
    # Per step: MACs per sample, and one MAC per trained scalar for the update (recursive least
    # squares counts its updates per sample); far primes as ft-all.
    per_step = {m: (step_macs(m, sizes, hp), 0 if method == "oselm-head" else trainable(m, sizes, hp))
                for m in ({method, "ft-all"} if priming else {method})}
    # Each sample's first lookup fills the cache; after the first epoch every stored row is a hit,
    # which saves its row's frozen forward.
    depth = len(prefix_segments(method, sizes, hp))  # the prefix's layers, one a segment
    frozen = sum(a * b for a, b in zip(sizes[:depth], sizes[1:depth + 1]))
    saved = frozen * cache_rows(variant, sizes, n, hp)[1]

    def macs(epoch: int) -> int:
        total = 0
        for i, nb in enumerate(batches):
            sample, update = per_step["ft-all" if epoch * steps + i < priming else method]
            total += nb * sample + update
        return total - (saved if epoch else 0)

    return [macs(e) for e in range(n_epochs)]


def expected(variant: str, sizes: list, n_ft: int, hp: dict | None = None) -> dict:
    """The result fields a runner reports for the job that it can be told in advance: ft_macs,
    trainable_params, the cache's capacity, hits and misses, and mem (analytic bytes by role)."""
    method = parse_variant(variant)[0]
    hp = job_hp(hp)
    L, C, batch = len(sizes) - 1, sizes[-1], hp["batch_size"]
    params, backbone = trainable(method, sizes, hp), trainable("ft-all", sizes, hp)  # ft-all: every W and b
    row, capacity = cache_rows(variant, sizes, n_ft, hp)
    later = epochs(method, hp) - 1
    H = sizes[-2] + 1  # oselm-head's head input [x[L-1], 1]; P is H x H
    oselm = method == "oselm-head"
    # Forward tensors kept for backward (every layer's, every adapter's hidden); oselm-head keeps
    # the batch's prefix rows, then a sample's u and error.
    activations = batch * (sum(sizes[1:]) + hp["rank"] * adapters(method, L))
    if oselm:
        activations = batch * sum(prefix_segments(method, sizes, hp)) + H + C
    return {
        "ft_macs": sum(epoch_macs(variant, sizes, n_ft, hp)),
        "trainable_params": params,
        "cache_capacity_samples": capacity,
        "cache_hits": later * capacity,
        # Without room for a row the cache is never looked up.
        "cache_misses": n_ft + later * (n_ft - capacity) if capacity else 0,
        "mem": {
            "weights_bytes": FLOAT * (backbone + (params if adapters(method, L) else 0)),
            # far keeps its priming's gradients (the trained phase uses the first of them).
            "grads_bytes": FLOAT * {"far": backbone, "far-random": backbone, "oselm-head": 0}.get(method, params),
            "optimizer_bytes": FLOAT * H * H if oselm else 0,  # plain SGD keeps no state
            "activations_bytes": FLOAT * activations,
            "cache_bytes": capacity * row,
        },
    }


# The most analytic memory (weights, gradients, optimizer state, activations, cache) one job may
# need: more than the boards this harness drives hold, and a sign of a mistyped size.
MAX_JOB_BYTES = 8 << 30


def check_job_memory(exp, datasets: dict) -> None:
    """Refuse, before anything runs, an experiment with a job whose memory no board holds."""
    for task, data in datasets.items():
        sizes = [data.n_features, *exp.model.hidden, len(data.classes)]
        for variant, point in itertools.product(exp.methods, exp.finetune.points()):
            hp = exp.finetune.for_variant(variant, point).model_dump()
            need = sum(expected(variant, sizes, len(data.y_ft), hp)["mem"].values())
            if need > MAX_JOB_BYTES:
                raise UserError(f"{variant} on {task} needs {need / 1e9:.1f} GB of memory (weights, gradients, "
                                f"activations and cache); at most {MAX_JOB_BYTES / 1e9:.1f} GB a job: narrow the "
                                f"model, lower batch_size or set cache_budget_bytes")
