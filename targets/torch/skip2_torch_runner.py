#!/usr/bin/env python3
"""PyTorch comparator for the speed benchmark: `python skip2_torch_runner.py WORKDIR`.

Takes the same job as the board runners and prints one JSON result (docs/runner-contract.md,
impl "torch"), for the seven methods written as a PyTorch user would write them for speed on a
CPU: float32 tensors, requires_grad on the trainables only, loss.backward() and
torch.optim.SGD, the frozen prefix computed under no_grad and, for skip2-lora and cache=true,
cached per sample under the same first-come byte budget as the reference.

It trains on exactly the reference sequence: the job, the data and their (x - mean) / std
scaling are loaded by the NumPy runner's own code, and adapter init and epoch shuffles come from
the shared PRNG (targets/numpy), turned into tensors with torch.from_numpy. One thread, as the
C and NumPy runners use.
"""
import json
import math
import platform
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

# Deployed, the NumPy runner's modules sit beside this file (the host imports them by name too).
import skip2_methods as sm
import skip2_prng as prng
import skip2_runner

IMPL = "torch"


def trainable(array):
    """A leaf tensor with its own storage (the backbone stays untouched), trained in place by SGD."""
    return torch.as_tensor(array).clone().requires_grad_()


def adapter_a(hp, k, n_in):
    """The reference's A init for layer k (the shared PRNG), as a trainable tensor."""
    return trainable(sm.adapter_init(hp["seed"], k, n_in, hp["rank"], np.dtype(np.float32)))


class FrozenPrefix:
    """x[1..L-1] (and the frozen logits z0) of the frozen backbone, optionally cached per sample.

    As in the reference: a batch's rows already stored are copied out; the misses are computed
    in batch order and stored first come while the byte budget lasts; the rest are recomputed
    whenever drawn. A row holds [x[1], ..., x[L-1], (z0)] side by side.
    """

    def __init__(self, W, b, x, with_logits, cache, budget_bytes):
        self.W, self.b, self.x, self.with_logits = W, b, x, with_logits
        self.widths = [w.shape[1] for w in W[:-1]] + ([W[-1].shape[1]] if with_logits else [])
        self.row_bytes = 4 * sum(self.widths)
        n = x.shape[0]
        self.capacity = 0
        if cache:
            self.capacity = n if budget_bytes < 0 else min(n, budget_bytes // self.row_bytes)
        self.store = torch.empty(self.capacity, sum(self.widths))
        self.slot = torch.full((n,), -1, dtype=torch.long)
        self.used = self.hits = self.misses = 0

    @torch.no_grad()
    def compute(self, xb):
        parts, h = [], xb
        for w, v in zip(self.W[:-1], self.b[:-1]):
            h = torch.relu(torch.addmm(v, h, w))
            parts.append(h)
        if self.with_logits:
            parts.append(torch.addmm(self.b[-1], h, self.W[-1]))
        return torch.cat(parts, dim=1)

    def get(self, idx):
        """Returns (x[0..L-1] of the batch, frozen logits or None)."""
        xb = self.x[idx]
        if self.capacity == 0:
            rows = self.compute(xb)
        else:
            slots = self.slot[idx]
            miss = torch.nonzero(slots < 0).squeeze(1)
            rows = self.store[slots.clamp(min=0)]  # rows of misses are overwritten below
            n_miss = miss.numel()
            self.hits += len(idx) - n_miss
            self.misses += n_miss
            if n_miss:
                rows[miss] = self.compute(xb[miss])
                take = miss[: self.capacity - self.used]
                new = torch.arange(self.used, self.used + take.numel())
                self.store[new] = rows[take]
                self.slot[idx[take]] = new
                self.used += take.numel()
        parts = rows.split(self.widths, dim=1)
        xs = [xb, *parts[:len(self.W) - 1]]
        return xs, (parts[-1] if self.with_logits else None)


class Method:
    """Trainables in `params` (name -> leaf tensor); `saved()` names them as the reference does."""

    prefix = None

    def saved(self):
        return self.params


class FullBackprop(Method):
    """ft-all, ft-bias, lora-all: forward through every layer, autograd back to layer 0."""

    def __init__(self, W, b, hp, x, train_w, train_b, lora):
        self.x, self.scale = x, hp["scale"]
        self.W = [trainable(w) if train_w else w for w in W]
        self.b = [trainable(v) if train_b else v for v in b]
        self.params = {}
        self.A, self.B = [], []
        for k, w in enumerate(W):
            if train_w:
                self.params[f"W{k}"] = self.W[k]
            if train_b:
                self.params[f"b{k}"] = self.b[k]
            if lora:
                self.A.append(adapter_a(hp, k, w.shape[0]))
                self.B.append(trainable(np.zeros((hp["rank"], w.shape[1]), np.float32)))
                self.params[f"A{k}"], self.params[f"B{k}"] = self.A[k], self.B[k]

    def logits(self, x):
        h = x
        for k in range(len(self.W)):
            a = torch.addmm(self.b[k], h, self.W[k])
            if self.A:
                a = torch.addmm(a, h @ self.A[k], self.B[k], alpha=self.scale)
            h = torch.relu(a)
        return a

    def train_logits(self, idx):
        return self.logits(self.x[idx])


class PrefixHead(Method):
    """Methods that train only a head on the frozen prefix, which may come from the cache."""

    def __init__(self, W, b, hp, x, with_logits):
        self.W, self.b, self.scale = W, b, hp["scale"]
        self.with_logits = with_logits
        self.prefix = FrozenPrefix(W, b, x, with_logits, hp["cache"], hp["cache_budget_bytes"])

    def logits(self, x):
        # Evaluation uses fresh activations, outside the training cache.
        xs, z0 = FrozenPrefix(self.W, self.b, x, self.with_logits, False, 0).get(torch.arange(len(x)))
        return self.head(xs, z0)

    def train_logits(self, idx):
        return self.head(*self.prefix.get(idx))


class FtLast(PrefixHead):
    def __init__(self, W, b, hp, x):
        super().__init__(W, b, hp, x, with_logits=False)
        self.params = {"W": trainable(W[-1]), "b": trainable(b[-1])}

    def head(self, xs, z0):
        return torch.addmm(self.params["b"], xs[-1], self.params["W"])


class SkipAdapters(PrefixHead):
    """lora-last (adapter on x[L-1]) and skip-lora / skip2-lora (one adapter per layer input).

    Every adapter adds s (x[k] A[k]) B[k] into the frozen logits, so autograd never reaches a
    frozen W. The B[k] (R x C) are one stacked tensor so all adapters reach the logits in one
    product: z = z0 + s [u_k ...] B.
    """

    def __init__(self, W, b, hp, x, layers):
        super().__init__(W, b, hp, x, with_logits=True)
        self.layers, self.rank = layers, hp["rank"]
        self.A = [adapter_a(hp, k, W[k].shape[0]) for k in layers]
        self.B = trainable(np.zeros((len(layers) * hp["rank"], W[-1].shape[1]), np.float32))
        self.params = {**{f"A{k}": a for k, a in zip(layers, self.A)}, "B": self.B}

    def head(self, xs, z0):
        u = torch.cat([xs[k] @ a for k, a in zip(self.layers, self.A)], dim=1)
        return torch.addmm(z0, u, self.B, alpha=self.scale)

    def saved(self):
        r = self.rank
        return {**{f"A{k}": a for k, a in zip(self.layers, self.A)},
                **{f"B{k}": self.B[i * r:(i + 1) * r] for i, k in enumerate(self.layers)}}


def build(method, W, b, hp, x):
    """The method object, from the NumPy reference's table of how each method trains."""
    kind, options = sm.plan(method, len(W), hp)
    kinds = {"full": FullBackprop, "last": FtLast, "skip": SkipAdapters}
    if kind not in kinds or kind == "full" and "layers" in options:  # far, oselm-head, bsr
        sys.exit(f"the PyTorch comparator does not implement {method}")
    return kinds[kind](W, b, hp, x, **options)


@torch.no_grad()
def accuracy(method, x, y):
    return float((method.logits(x).argmax(dim=1) == y).double().mean())


def finetune(method, opt, y, hp):
    """Mini-batch SGD in the reference order; per-epoch (seconds, mean loss), stops on a non-finite loss."""
    n, bs = len(y), hp["batch_size"]
    epochs = []
    for e in range(hp["epochs"]):
        t0 = time.perf_counter()
        order = torch.from_numpy(prng.permutation(prng.stream_key(hp["seed"], prng.STREAM_SHUFFLE + e), n))
        total = torch.zeros((), dtype=torch.float64)
        for s in range(0, n, bs):
            idx = order[s:s + bs]
            loss = F.cross_entropy(method.train_logits(idx), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.detach() * len(idx)  # stays a tensor: no per-step sync into Python
        mean = total.item() / n
        epochs.append((time.perf_counter() - t0, mean))
        if not math.isfinite(mean):
            break
    return epochs


def run(workdir):
    torch.set_num_threads(1)
    job, net, data = skip2_runner.load_job(workdir)
    if job.get("cache_format", "f32") != "f32":
        raise SystemExit(f"{workdir}/job.json: the PyTorch comparator keeps its cache in float32 only")
    hp = dict(job)
    hp["cache"] = bool(job.get("cache")) or job["method"] == "skip2-lora"
    hp["cache_budget_bytes"] = int(job.get("cache_budget_bytes", -1))
    W = [torch.from_numpy(w) for w in net.W]
    b = [torch.from_numpy(v) for v in net.b]
    (x_ft, y_ft), (x_test, y_test) = [tuple(map(torch.from_numpy, data[p])) for p in ("ft", "test")]
    method = build(job["method"], W, b, hp, x_ft)
    acc_before = accuracy(method, x_test, y_test)
    # Made before the clock starts: the first one imports more of torch (about 2 s).
    opt = torch.optim.SGD(list(method.params.values()), lr=hp["lr"])

    t0 = time.perf_counter()
    epochs = finetune(method, opt, y_ft, hp)
    ft_time = time.perf_counter() - t0

    result = skip2_runner.outcome(epochs, ft_time, method.prefix, len(y_ft), len(y_test))
    if job.get("save_params"):
        skip2_runner.save_trained(workdir, {n: p.detach().numpy() for n, p in method.saved().items()})
    return {
        "impl": IMPL,
        "method": job["method"],
        **result,
        "acc_before": acc_before,
        "acc_after": None if result["status"] == "fail" else accuracy(method, x_test, y_test),
        "trainable_params": sum(p.numel() for p in method.params.values()),
        "peak_rss_bytes": skip2_runner.peak_rss_bytes(),
        "runtime": {"python": platform.python_version(), "numpy": np.__version__,
                    "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "machine": platform.machine()},
        **skip2_runner.binding(job),
    }


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: torch_runner.py WORKDIR (a directory holding job.json)")
    print(json.dumps(run(argv[1])))


if __name__ == "__main__":
    main(sys.argv)
