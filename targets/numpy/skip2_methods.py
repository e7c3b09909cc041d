"""Fine-tuning methods of the Skip2-LoRA family on a frozen MLP backbone (NumPy reference).

Notation (docs/methods.md): layers k = 0..L-1, x[0] the input, a[k] = x[k] W[k] + b[k],
x[k+1] = ReLU(a[k]), logits z = a[L-1]. Every matrix product goes through Meter.mm so the
multiply-accumulates are counted as the work is done; the C core counts the same products.

Trainable parameters and their gradients live in two flat buffers (as in the C core's arena),
so one SGD update covers them all; `params` and `grads` hold named views into them.
"""
import math
import time

import numpy as np

import skip2_job
import skip2_prng as prng
import skip2_quant as quant

METHODS = skip2_job.METHOD_NAMES
# Methods whose frozen prefix never changes during fine-tuning, so it may be cached per sample
# (skip2_job.def). skip2-lora is skip-lora with the cache always on; skip-lora is its cache-less
# counterpart. bsr has a prefix when its lowest trained layer is not the first.
CACHEABLE = tuple(m.name for m in skip2_job.METHODS if m.cache != "none")
PHASES = ("fwd", "bwd", "upd", "cache")
# Why a job failed, by the code every runner reports (the C core's skip2_result.diverged).
FAILURES = {1: "loss became non-finite in epoch {epoch}",
            2: "the RLS denominator (forget + h P h^T) was not positive in epoch {epoch}"}
RLS_FAILED = 2


class Meter:
    """Counts MACs of matrix products and accumulates wall time per phase."""

    def __init__(self):
        self.macs = 0
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self._phase, self._t0 = None, 0.0

    def mm(self, a, b, out=None):
        self.macs += a.shape[0] * a.shape[1] * b.shape[1]
        return np.matmul(a, b, out=out)

    def phase(self, name):
        """Switch the clock to phase `name` (None stops it)."""
        now = time.perf_counter()
        if self._phase is not None:
            self.seconds[self._phase] += now - self._t0
        self._phase, self._t0 = name, now


def adapter_bound(n_in, dtype):
    """LoRA A init bound 1/sqrt(N), computed in the working precision as C does."""
    return dtype.type(1.0) / np.sqrt(dtype.type(n_in))


def adapter_init(seed, layer, n_in, rank, dtype):
    """A uniform in +-1/sqrt(n_in) from the layer's adapter stream (B starts at zero)."""
    key = prng.stream_key(seed, prng.STREAM_ADAPTER + layer)
    return prng.uniform_sym(key, (n_in, rank), adapter_bound(n_in, dtype)).astype(dtype)


def rounded(fraction, count):
    """floor(f * count + 1/2) in double, f rounded to float32 first as every runner holds it."""
    return math.floor(float(np.float32(fraction)) * count + 0.5)


def far_kept(keep, width):
    """Neurons far keeps trained in a hidden layer of `width`: the fraction `keep`, at least one."""
    return max(1, rounded(keep, width))


def far_priming(prime, steps):
    """far's priming steps (full fine-tuning) out of all `steps` of the job."""
    return rounded(prime, steps)


def bsr_trained(mask, n_layers):
    """bsr's trained layers: bit k of `mask` trains layer k; 0 means the upper half."""
    if mask == 0:
        return list(range(n_layers // 2, n_layers))
    return [k for k in range(n_layers) if mask >> k & 1]


def relu(a):
    return np.maximum(a, 0)


def softmax_xent_grad(z, y):
    """Mean cross-entropy loss and its gradient w.r.t. the logits."""
    n = z.shape[0]
    rows = np.arange(n)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.log(np.maximum(p[rows, y], np.finfo(p.dtype).tiny)).sum() / n
    p[rows, y] -= 1
    p /= p.dtype.type(n)
    return float(loss), p


class Net:
    """The backbone: lists of weight matrices W[k] (N_k x M_k) and biases b[k]."""

    def __init__(self, W, b):
        self.W, self.b = W, b


class FrozenPrefix:
    """Hidden activations x[1..L-1] (and optionally the frozen logits) of the frozen backbone.

    With the cache on, a sample's prefix is computed the first time it is seen and stored while
    the byte budget lasts (first come, first stored); later lookups copy it back. Samples that do
    not fit are recomputed every time, so the budget changes time, never results. A row holds
    [x[1], ..., x[L-1], (z0)] side by side, in the cache's format: with "int8" every computed row,
    stored or not, is read back through int8 (one scale per layer's slice and one for z0).
    """

    def __init__(self, net, x, with_logits, cache, budget_bytes, meter, cache_format="f32"):
        self.net, self.x, self.with_logits, self.meter = net, x, with_logits, meter
        widths = [w.shape[1] for w in net.W[:-1]] + ([net.W[-1].shape[1]] if with_logits else [])
        ends = np.cumsum(widths)
        self.columns = [slice(e - w, e) for w, e in zip(widths, ends)]
        self.width = int(ends[-1])
        self.int8 = cache and cache_format == "int8"
        # An int8 row: one byte per value and a float32 scale per segment.
        self.row_bytes = self.width + 4 * len(widths) if self.int8 else self.width * x.itemsize
        n = x.shape[0]
        capacity = 0
        if cache:
            capacity = n if budget_bytes < 0 else min(n, budget_bytes // self.row_bytes)
        self.capacity = capacity
        if self.int8:
            self.store = np.empty((capacity, self.width), np.int8)
            self.scales = np.zeros((capacity, len(widths)), x.dtype)  # unfilled rows read back as 0, not garbage
        else:
            self.store = np.empty((capacity, self.width), x.dtype)
        self.slot = np.full(n, -1, np.int64)
        self.used = 0
        self.hits = self.misses = 0

    def compute(self, xb):
        """Frozen forward of a batch: its rows."""
        out = np.empty((xb.shape[0], self.width), xb.dtype)
        h, cols, mm, net = xb, self.columns, self.meter.mm, self.net
        for k in range(len(net.W) - 1):
            a = mm(h, net.W[k])
            a += net.b[k]
            h = out[:, cols[k]] = relu(a)
        if self.with_logits:
            a = mm(h, net.W[-1])
            a += net.b[-1]
            out[:, cols[-1]] = a
        return out

    def fresh(self, idx):
        """Rows computed for the samples idx as the cache's format reads them back, and what it
        would store of them."""
        self.meter.phase("fwd")
        rows = self.compute(self.x[idx])
        if not self.int8:
            return rows, rows
        self.meter.phase("cache")
        packed = quant.quantise(rows, self.columns)
        return quant.dequantise(*packed, self.columns, rows.dtype), packed

    def get(self, idx):
        """Returns (list of x[0..L-1] for the batch, frozen logits or None)."""
        if self.capacity == 0:
            rows = self.fresh(idx)[0]
        else:
            self.meter.phase("cache")
            slots = self.slot[idx]
            miss = np.flatnonzero(slots < 0)
            rows = self.load(slots)  # rows of misses are garbage until computed below
            self.hits += len(idx) - len(miss)
            self.misses += len(miss)
            if len(miss):
                computed, packed = self.fresh(idx[miss])
                self.meter.phase("cache")
                rows[miss] = computed
                take = min(len(miss), self.capacity - self.used)  # the first misses, while room lasts
                if take:
                    new = np.arange(self.used, self.used + take)
                    self.save(new, packed, slice(take))
                    self.slot[idx[miss[:take]]] = new
                    self.used += take
        self.meter.phase("fwd")
        parts = [rows[:, c] for c in self.columns]
        xs = [self.x[idx]] + parts[: len(self.net.W) - 1]
        return xs, (parts[-1] if self.with_logits else None)

    def load(self, slots):
        if self.int8:
            return quant.dequantise(self.store[slots], self.scales[slots], self.columns, self.x.dtype)
        return self.store[slots]

    def save(self, new, packed, take):
        if self.int8:
            self.store[new], self.scales[new] = packed[0][take], packed[1][take]
        else:
            self.store[new] = packed[take]


class Method:
    """Base: trainables as named views of one flat buffer; subclasses define gradients() and logits().

    Training work is counted on the method's meter; evaluation (logits) uses a meter of its own,
    since it is not fine-tuning work.
    """

    def __init__(self, net, hp, meter):
        self.net, self.hp, self.m = net, hp, meter
        self.dtype = net.W[0].dtype
        self.lr = self.dtype.type(hp["lr"])
        self.scale = self.dtype.type(hp["scale"])
        self.epochs = hp["epochs"]
        self.failure = None  # a FAILURES code that ends training at once (oselm-head)

    def allocate(self, initial):
        """Lay out the trainables (name -> initial array, in order) in flat parameter/gradient buffers."""
        total = sum(a.size for a in initial.values())
        self.theta = np.empty(total, self.dtype)
        self.gtheta = np.zeros(total, self.dtype)
        self.params, self.grads, offset = {}, {}, 0
        for name, a in initial.items():
            self.params[name] = self.theta[offset:offset + a.size].reshape(a.shape)
            self.params[name][...] = a
            self.grads[name] = self.gtheta[offset:offset + a.size].reshape(a.shape)
            offset += a.size

    def step(self, x, y, idx):
        """One SGD step on the samples `idx` of the training set (x, y)."""
        loss = self.gradients(x, y, idx)[0]
        self.m.phase("upd")
        self.theta -= self.lr * self.gtheta
        self.m.macs += self.theta.size
        return loss

    def finish(self):
        """Called once after the last epoch."""

    def trainable_count(self):
        return self.theta.size

    def grad_floats(self):
        return self.trainable_count()

    def state_floats(self):
        """Optimizer state (analytic memory): none for plain SGD."""
        return 0

    def activation_floats(self, batch):
        """Floats of forward activations held for backward per step (analytic memory)."""
        return batch * (sum(w.shape[1] for w in self.net.W) + self.adapter_width())

    def adapter_width(self):
        return 0


class FullBackprop(Method):
    """ft-all, ft-bias, lora-all and bsr: backpropagation from the logits down to layer `first`.

    `layers` are the layers whose W (train_w) and b (train_b) are trained; the lowest of them is
    `first` (0 with adapters). The layers below it (bsr) are a frozen prefix, computed, or taken
    from the cache, and keep nothing for backward. A layer's output neurons may be split in two
    column blocks (far): the trained W[k], b[k] and, in frozen[k], the frozen rest.
    """

    def __init__(self, net, hp, meter, x_train, train_w, train_b, lora, layers=None):
        super().__init__(net, hp, meter)
        L = len(net.W)
        self.layers = list(range(L)) if layers is None else layers
        self.train_w, self.train_b, self.lora = train_w, train_b, lora
        self.first = 0 if lora else self.layers[0]
        self.frozen = [None] * L
        initial = {}
        for k, w in enumerate(net.W):
            if train_w and k in self.layers:
                initial[f"W{k}"] = w
            if train_b and k in self.layers:
                initial[f"b{k}"] = net.b[k]
            if lora:
                initial[f"A{k}"] = adapter_init(hp["seed"], k, w.shape[0], hp["rank"], self.dtype)
                initial[f"B{k}"] = np.zeros((hp["rank"], w.shape[1]), self.dtype)
        self.allocate(initial)
        self.use_params()
        if self.first > 0:
            self.prefix = FrozenPrefix(self.prefix_net(), x_train, False, hp["cache"],
                                       hp["cache_budget_bytes"], meter, hp["cache_format"])

    def use_params(self):
        """Trained backbone tensors are used through their views in the flat buffer."""
        for k in range(len(self.net.W)):
            self.net.W[k] = self.params.get(f"W{k}", self.net.W[k])
            self.net.b[k] = self.params.get(f"b{k}", self.net.b[k])

    def prefix_net(self):
        """The frozen layers below `first`, whose outputs x[1..first] make the prefix."""
        return Net(self.net.W[:self.first + 1], self.net.b[:self.first + 1])

    def adapter_width(self):
        return self.hp["rank"] * len(self.net.W) if self.lora else 0

    def forward(self, h, meter):
        """Logits and the tape (layer inputs, pre-activations, adapter hiddens) of the layers
        first..L-1, h being the input of layer `first`."""
        mm, xs, acts, us = meter.mm, [], [], []
        for k in range(self.first, len(self.net.W)):
            xs.append(h)
            a = mm(h, self.net.W[k])
            a += self.net.b[k]
            if self.frozen[k] is not None:
                w, v = self.frozen[k]
                rest = mm(h, w)
                rest += v
                a = np.concatenate([a, rest], axis=1)
            if self.lora:
                u = mm(h, self.params[f"A{k}"])
                us.append(u)
                a += self.scale * mm(u, self.params[f"B{k}"])
            acts.append(a)
            h = relu(a)
        return acts[-1], (xs, acts, us)

    def logits(self, x):
        meter = Meter()
        h = x
        if self.first > 0:  # outside the training cache, as PrefixMethod.logits
            h = FrozenPrefix(self.prefix_net(), x, False, False, 0, meter).get(np.arange(len(x)))[0][-1]
        return self.forward(h, meter)[0]

    def gradients(self, x, y, idx):
        self.m.phase("fwd")
        h = self.prefix.get(idx)[0][-1] if self.first > 0 else x[idx]
        z, (xs, acts, us) = self.forward(h, self.m)
        loss, da = softmax_xent_grad(z, y[idx])
        self.m.phase("bwd")
        mm, g = self.m.mm, self.grads
        for k in reversed(range(self.first, len(self.net.W))):
            i, w = k - self.first, self.net.W[k]
            kept = da[:, :w.shape[1]]  # the trained columns (all but far's frozen ones)
            if f"W{k}" in g:
                mm(xs[i].T, kept, out=g[f"W{k}"])
            if f"b{k}" in g:
                kept.sum(axis=0, out=g[f"b{k}"])
            if self.lora:
                mm(us[i].T, da, out=g[f"B{k}"])
                g[f"B{k}"] *= self.scale
                du = self.scale * mm(da, self.params[f"B{k}"].T)
                mm(xs[i].T, du, out=g[f"A{k}"])
            if k > self.first:
                dx = mm(kept, w.T)
                if self.frozen[k] is not None:
                    dx += mm(da[:, w.shape[1]:], self.frozen[k][0].T)
                if self.lora:
                    dx += mm(du, self.params[f"A{k}"].T)
                da = dx * (acts[i - 1] > 0)
        return loss, g


class Far(FullBackprop):
    """far and far-random (Freeze And Reconfigure): the first `priming` steps fine-tune every W
    and b (as ft-all); then each hidden layer keeps `far_kept` of its output neurons trained, the
    top ones by the L1 change of their column of W and their bias during priming (far), or ones
    drawn from the layer's stream (far-random); the output layer stays trained. The kept columns
    are gathered into contiguous trained blocks, the frozen ones set apart (frozen[k]) with no
    gradient, and the next layer's rows follow the new order; finish() restores the original
    order, so evaluation runs the plain network.
    """

    def __init__(self, net, hp, meter, x_train, by_change):
        self.W0, self.b0 = list(net.W), list(net.b)  # the backbone before priming (never written)
        super().__init__(net, hp, meter, x_train, train_w=True, train_b=True, lora=False)
        self.by_change = by_change
        steps = hp["epochs"] * -(-x_train.shape[0] // hp["batch_size"])
        self.priming, self.steps = far_priming(hp["far_prime"], steps), 0
        widths = [w.shape[1] for w in net.W]
        self.kept = [far_kept(hp["far_keep"], m) for m in widths[:-1]] + widths[-1:]
        self.n_backbone = self.theta.size
        self.n_trained = sum(w.shape[0] * k + k for w, k in zip(net.W, self.kept))
        self.order = None  # per hidden layer: kept neurons, then frozen ones, each ascending

    def choose(self, k):
        """Layer k's neurons in their trained order: the kept ones, then the frozen, each ascending."""
        width, kept = self.net.W[k].shape[1], self.kept[k]
        if self.by_change:
            # The L1 change of each neuron's column and bias, summed in float64 row by row as C does.
            score = np.zeros(width)
            for row in np.abs(self.net.W[k] - self.W0[k]):
                score += row
            score += np.abs(self.net.b[k] - self.b0[k])
            top = np.argsort(-score, kind="stable")[:kept]  # ties to the lower index, NaN last
        else:
            top = prng.permutation(prng.stream_key(self.hp["seed"], prng.STREAM_FAR + k), width)[:kept]
        keep = np.zeros(width, bool)
        keep[top] = True
        return np.concatenate([np.flatnonzero(keep), np.flatnonzero(~keep)])

    def step(self, x, y, idx):
        if self.steps == self.priming:
            self.m.phase("upd")
            self.reconfigure()
        self.steps += 1
        return super().step(x, y, idx)

    def reconfigure(self):
        L = len(self.net.W)
        self.order = [self.choose(k) for k in range(L - 1)]
        initial, rows = {}, slice(None)
        for k in range(L):
            cols = self.order[k] if k < L - 1 else slice(None)
            w, v, kept = self.net.W[k][rows][:, cols], self.net.b[k][cols], self.kept[k]
            initial[f"W{k}"], initial[f"b{k}"] = w[:, :kept], v[:kept]
            self.frozen[k] = (w[:, kept:].copy(), v[kept:].copy()) if kept < w.shape[1] else None
            rows = cols
        self.allocate(initial)
        self.use_params()

    def finish(self):
        if self.order is None:
            return
        self.m.phase("upd")
        restored, rows = {}, np.arange(self.net.W[0].shape[0])
        for k, (w, v) in enumerate(zip(self.net.W, self.net.b)):
            cols = self.order[k] if k < len(self.order) else np.arange(w.shape[1])
            if self.frozen[k] is not None:
                w, v = np.concatenate([w, self.frozen[k][0]], axis=1), np.concatenate([v, self.frozen[k][1]])
            restored[f"W{k}"], restored[f"b{k}"] = np.empty_like(w), np.empty_like(v)
            restored[f"W{k}"][np.ix_(rows, cols)] = w
            restored[f"b{k}"][cols] = v
            rows = cols
        self.frozen = [None] * len(self.net.W)
        self.allocate(restored)
        self.use_params()
        self.order = None

    def trainable_count(self):
        return self.n_trained

    def grad_floats(self):
        return self.n_backbone  # priming's gradients; the trained phase reuses the first of them


class PrefixMethod(Method):
    """Methods that train only on top of a frozen prefix, which may come from the cache."""

    def __init__(self, net, hp, meter, x_train):
        super().__init__(net, hp, meter)
        self.prefix = FrozenPrefix(net, x_train, self.with_frozen_logits, hp["cache"],
                                   hp["cache_budget_bytes"], meter, hp["cache_format"])

    def logits(self, x):
        # Evaluation runs the same arithmetic on fresh activations, outside the training cache
        # and its format: the cache is a way of training, the model is used as computed.
        meter = Meter()
        pre = FrozenPrefix(self.net, x, self.with_frozen_logits, False, 0, meter)
        xs, z0 = pre.get(np.arange(x.shape[0]))
        return self.head(xs, z0, meter)[0]

    def gradients(self, x, y, idx):
        xs, z0 = self.prefix.get(idx)
        z, tape = self.head(xs, z0, self.m)
        loss, dz = softmax_xent_grad(z, y[idx])
        self.m.phase("bwd")
        self.head_grads(xs, tape, dz)
        return loss, self.grads


class FtLast(PrefixMethod):
    """Trains W[L-1], b[L-1] on the cached x[L-1]; the frozen logits change, so they are not cached."""

    with_frozen_logits = False

    def __init__(self, net, hp, meter, x_train):
        super().__init__(net, hp, meter, x_train)
        self.allocate({"W": net.W[-1], "b": net.b[-1]})

    def head(self, xs, z0, meter):
        z = meter.mm(xs[-1], self.params["W"])
        z += self.params["b"]
        return z, None

    def head_grads(self, xs, tape, dz):
        self.m.mm(xs[-1].T, dz, out=self.grads["W"])
        dz.sum(axis=0, out=self.grads["b"])


class SkipAdapters(PrefixMethod):
    """lora-last (adapter on x[L-1] only) and skip-lora / skip2-lora (one adapter per layer input).

    Every adapter adds s * (x[k] A[k]) B[k] into the frozen logits, so gradients never pass
    through a frozen W: backward costs only the adapters. The B[k] (R x C each) are stacked so
    all adapters reach the logits in one product: z = z0 + s * [u_k ...] B_stack.
    """

    with_frozen_logits = True

    def __init__(self, net, hp, meter, x_train, layers):
        super().__init__(net, hp, meter, x_train)
        self.layers = layers
        r, n_out = hp["rank"], net.W[-1].shape[1]
        initial = {f"A{k}": adapter_init(hp["seed"], k, net.W[k].shape[0], r, self.dtype) for k in layers}
        initial.update({f"B{k}": np.zeros((r, n_out), self.dtype) for k in layers})
        self.allocate(initial)
        b_start = sum(net.W[k].shape[0] * r for k in layers)
        self.B = self.theta[b_start:].reshape(len(layers) * r, n_out)
        self.gB = self.gtheta[b_start:].reshape(len(layers) * r, n_out)
        self.u_columns = [slice(i * r, (i + 1) * r) for i in range(len(layers))]

    def adapter_width(self):
        return self.hp["rank"] * len(self.layers)

    def head(self, xs, z0, meter):
        u = np.concatenate([meter.mm(xs[k], self.params[f"A{k}"]) for k in self.layers], axis=1)
        return z0 + self.scale * meter.mm(u, self.B), u

    def head_grads(self, xs, u, dz):
        mm = self.m.mm
        mm(u.T, dz, out=self.gB)
        self.gB *= self.scale
        du = self.scale * mm(dz, self.B.T)
        for k, cols in zip(self.layers, self.u_columns):
            mm(xs[k].T, du[:, cols], out=self.grads[f"A{k}"])


class OselmHead(FtLast):
    """oselm-head: online sequential ELM on the last layer of the frozen backbone.

    The head's input is h = [x[L-1], 1], so its weights are beta = [W; b] (the trained W and b
    of ft-last, stacked as they lie in theta). Starting from the pre-trained head and
    P = I / lambda, each sample in the epoch's order updates them by recursive least squares
    towards its one-hot target t, with forgetting factor mu:
        e = t - h beta,  u = h P,  d = mu + h u^T,  beta += (u^T / d) e,  P = (P - u^T u / d) / mu
    (u = (P h^T)^T as P is symmetric). The P update multiplies u_i u_j, which is symmetric bit for
    bit, so P stays exactly symmetric. d not positive (P no longer positive definite in float32)
    ends the job as a fail. No gradients, no learning rate; the loss is the sample's squared
    error ||e||^2 before its update.
    """

    def __init__(self, net, hp, meter, x_train):
        super().__init__(net, hp, meter, x_train)
        one = self.dtype.type(1)
        self.epochs = hp["oselm_passes"]
        self.beta = self.theta.reshape(net.W[-1].shape[0] + 1, -1)
        self.P = np.eye(self.beta.shape[0], dtype=self.dtype) * (one / self.dtype.type(hp["oselm_lambda"]))
        self.forget = self.dtype.type(hp["oselm_forget"])
        self.shrink = one / self.forget

    def step(self, x, y, idx):
        xs, _ = self.prefix.get(idx)
        m, mm, beta, P = self.m, self.m.mm, self.beta, self.P
        n = beta.shape[0] - 1
        total = self.dtype.type(0)
        for i, sample in enumerate(idx):
            h = xs[-1][i:i + 1]
            m.phase("fwd")
            e = mm(h, beta[:n])
            e += beta[n]
            e = -e
            e[0, y[sample]] += 1  # t - z: 1 - z for the label, 0 - z (exact) elsewhere
            total += (e * e).sum()
            m.phase("upd")
            u = mm(h, P[:n])
            u += P[n]
            d = self.forget + (mm(h, u[:, :n].T)[0, 0] + u[0, n])
            if not (np.isfinite(d) and d > 0):
                self.failure = RLS_FAILED
                return float("nan")
            r = self.dtype.type(1) / d
            beta += np.outer(u * r, e)
            P -= np.outer(u, u) * r
            P *= self.shrink
            m.macs += beta.size + P.size  # the two outer products
        return float(total / self.dtype.type(len(idx)))

    def gradients(self, x, y, idx):
        raise TypeError("oselm-head has no gradients: it solves its head by recursive least squares")

    def grad_floats(self):
        return 0

    def state_floats(self):
        return self.P.size

    def activation_floats(self, batch):
        # The batch's prefix rows, then per sample its u and its error.
        return batch * self.prefix.width + self.beta.shape[0] + self.beta.shape[1]


def plan(method, n_layers, hp):
    """How `method` trains, as (kind, options): the one table every Python implementation builds from.

    kind "full" backpropagates down to the lowest trained layer, "far" is full backprop whose
    hidden layers are partly frozen after priming, "last" trains the last layer on the frozen
    prefix, "oselm" solves it by recursive least squares, "skip" trains adapters from the listed
    layers' inputs into the frozen logits.
    """
    plans = {
        "ft-all": ("full", dict(train_w=True, train_b=True, lora=False)),
        "ft-bias": ("full", dict(train_w=False, train_b=True, lora=False)),
        "lora-all": ("full", dict(train_w=False, train_b=False, lora=True)),
        "ft-last": ("last", {}),
        "lora-last": ("skip", dict(layers=[n_layers - 1])),
        "skip-lora": ("skip", dict(layers=list(range(n_layers)))),
        "skip2-lora": ("skip", dict(layers=list(range(n_layers)))),
        "far": ("far", dict(by_change=True)),
        "far-random": ("far", dict(by_change=False)),
        "bsr": ("full", dict(train_w=True, train_b=True, lora=False,
                             layers=bsr_trained(hp.get("bsr_layers", 0), n_layers))),
        "oselm-head": ("oselm", {}),
    }
    if method not in plans:
        raise ValueError(f"unknown method '{method}'; known methods: {', '.join(METHODS)}")
    return plans[method]


def build(method, net, hp, meter, x_train):
    """The method object for `method`; trained backbone tensors are copied, never modified in place."""
    net = Net([w.copy() for w in net.W], [v.copy() for v in net.b])
    kind, options = plan(method, len(net.W), hp)
    kinds = {"full": FullBackprop, "far": Far, "last": FtLast, "oselm": OselmHead, "skip": SkipAdapters}
    return kinds[kind](net, hp, meter, x_train, **options)


def accuracy(method, x, y):
    return float((method.logits(x).argmax(axis=1) == y).mean())


def finetune(method, x, y, hp, meter, stream=prng.STREAM_SHUFFLE, on_epoch=None):
    """The method's epochs (mini-batch SGD; oselm-head's passes); returns per-epoch (seconds, mean
    loss), stops after an epoch whose loss is non-finite.

    `stream` picks the shuffle stream: fine-tuning on a board, or pre-training on the host.
    `on_epoch(n, N)`, if given, is called after epoch n of N (from 1), once its time is taken
    and with the meter stopped, as the C core calls skip2_job.on_epoch.
    """
    n, bs = x.shape[0], hp["batch_size"]
    epochs = []
    for e in range(method.epochs):
        t0 = time.perf_counter()
        order = prng.permutation(prng.stream_key(hp["seed"], stream + e), n)
        total = 0.0
        for s in range(0, n, bs):
            idx = order[s:s + bs]
            total += method.step(x, y, idx) * len(idx)
            if method.failure:
                break
        meter.phase(None)
        epochs.append((time.perf_counter() - t0, total / n))
        if on_epoch:
            on_epoch(e + 1, method.epochs)
        if not np.isfinite(total):
            break
    method.finish()
    meter.phase(None)
    return epochs
