"""Gradient checks and cache invariants of the NumPy reference methods."""
import numpy as np
import pytest

import skip2_methods as sm
import skip2_prng as prng


def make_net(dtype, sizes=(7, 6, 5, 3), seed=3):
    rng = np.random.default_rng(seed)
    W = [rng.normal(0, 0.6, (a, b)).astype(dtype) for a, b in zip(sizes[:-1], sizes[1:])]
    b = [rng.normal(0, 0.3, n).astype(dtype) for n in sizes[1:]]
    return sm.Net(W, b)


def make_data(dtype, n=9, d=7, c=3, seed=4):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(dtype), rng.integers(0, c, n)


HP = dict(seed=1, lr=0.05, scale=0.7, rank=2, batch_size=4, epochs=3, cache=False,
          cache_budget_bytes=-1, cache_format="f32", far_prime=0.1, far_keep=0.4, bsr_layers=0,
          oselm_lambda=0.01, oselm_forget=1.0, oselm_passes=1)
SGD_METHODS = [m for m in sm.METHODS if m != "oselm-head"]  # oselm-head has no gradients


def assert_gradients_match_finite_differences(m, x, y):
    idx = np.arange(len(y))
    grads = {k: g.copy() for k, g in m.gradients(x, y, idx)[1].items()}
    assert set(grads) == set(m.params)
    eps = 1e-6
    for name, p in m.params.items():
        numeric = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + eps
            up = m.gradients(x, y, idx)[0]
            p[i] = old - eps
            down = m.gradients(x, y, idx)[0]
            p[i] = old
            numeric[i] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-5, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("method", SGD_METHODS)
def test_gradients_match_finite_differences(method):
    x, y = make_data(np.float64)
    m = sm.build(method, make_net(np.float64), dict(HP, cache=method == "skip2-lora"),
                 sm.Meter(), x)
    rng = np.random.default_rng(5)
    for name, p in m.params.items():
        if name.startswith("B"):  # B starts at zero, which would hide A's gradient
            p[...] = rng.normal(0, 0.5, p.shape)
    if isinstance(m, sm.Far):  # one priming step, then the trained phase: kept columns only
        m.priming = 1
        for _ in range(2):
            m.step(x, y, np.arange(4))
        assert m.order is not None and all(f is not None for f in m.frozen[:-1])
        assert [m.params[f"W{k}"].shape[1] for k in range(3)] == [2, 2, 3]  # round(0.4 * 6), round(0.4 * 5), C
    assert_gradients_match_finite_differences(m, x, y)


@pytest.mark.parametrize("mask, trained", [(1, [0]), (2, [1]), (5, [0, 2]), (4, [2])])
def test_bsr_gradients_for_any_subset_of_layers(mask, trained):
    x, y = make_data(np.float64)
    m = sm.build("bsr", make_net(np.float64), dict(HP, bsr_layers=mask), sm.Meter(), x)
    assert sorted(m.params) == sorted([f"W{k}" for k in trained] + [f"b{k}" for k in trained])
    assert hasattr(m, "prefix") == (trained[0] > 0)
    assert_gradients_match_finite_differences(m, x, y)


# BLAS kernels (OpenBLAS with AVX-512 and FMA, for one) round a row of a product differently
# depending on where it sits in the batch, and the cache computes a row in another batch than
# the plain path does. So cached and plain runs agree to rounding, not bit for bit: checked in
# float64, where rounding is far below any effect the cache could have on the method.
CACHE_RTOL = 1e-10


def train(method, budget=-1, cache=False, dtype=np.float32, cache_format="f32"):
    x, y = make_data(dtype, n=37)
    meter = sm.Meter()
    hp = dict(HP, cache=cache, cache_budget_bytes=budget, epochs=4, cache_format=cache_format)
    m = sm.build(method, make_net(dtype), hp, meter, x)
    epochs = sm.finetune(m, x, y, hp, meter)
    return m, meter, epochs


def test_cache_changes_time_not_results():
    plain, plain_meter, _ = train("skip-lora", dtype=np.float64)
    cached, cached_meter, _ = train("skip2-lora", cache=True, dtype=np.float64)
    for name in plain.params:
        np.testing.assert_allclose(cached.params[name], plain.params[name], rtol=CACHE_RTOL, err_msg=name)
    # Every sample is computed once, then served from the cache for the other three epochs.
    assert cached.prefix.misses == 37 and cached.prefix.hits == 3 * 37
    assert cached_meter.macs < plain_meter.macs


def test_cache_budget_limits_stored_samples_and_keeps_results():
    full, _, _ = train("skip2-lora", cache=True, dtype=np.float64)
    row = full.prefix.row_bytes
    part, _, _ = train("skip2-lora", budget=10 * row + row // 2, cache=True, dtype=np.float64)
    assert part.prefix.capacity == 10 and part.prefix.used == 10
    assert part.prefix.hits == 3 * 10
    for name in full.params:
        np.testing.assert_allclose(part.params[name], full.params[name], rtol=CACHE_RTOL, err_msg=name)


# A cached row's segments in the 7-6-5-3 net: x1, x2 and z0 for skip2-lora, x1 and x2 for the
# last-layer methods, x1 for bsr (its default trains layers 1 and 2).
@pytest.mark.parametrize("method, segments", [("skip2-lora", (6, 5, 3)), ("ft-last", (6, 5)),
                                              ("oselm-head", (6, 5)), ("bsr", (6,))])
def test_an_int8_cache_keeps_results_whatever_its_budget(method, segments):
    full, _, _ = train(method, cache=True, dtype=np.float64, cache_format="int8")
    row = full.prefix.row_bytes
    assert row == sum(segments) + 4 * len(segments)  # a byte per value, a scale per segment
    for budget, stored in ((row - 1, 0), (10 * row + row // 2, 10)):
        part, _, _ = train(method, budget=budget, cache=True, dtype=np.float64, cache_format="int8")
        assert part.prefix.capacity == part.prefix.used == stored
        for name in full.params:
            np.testing.assert_allclose(part.params[name], full.params[name], rtol=CACHE_RTOL, err_msg=name)
    # ... and int8 is not float32: the rows read back differ, and so does training.
    plain, _, _ = train(method, cache=True, dtype=np.float64)
    assert any(not np.allclose(plain.params[name], full.params[name], rtol=1e-6) for name in full.params)


def test_frozen_backbone_is_untouched_by_adapter_methods():
    for method in ("lora-all", "lora-last", "skip-lora"):
        m, _, _ = train(method)
        ref = make_net(np.float32)
        for w, w0 in zip(m.net.W, ref.W):
            np.testing.assert_array_equal(w, w0)


def test_macs_follow_the_method_formula():
    # skip-lora without cache, one epoch: frozen forward + adapters forward/backward + update.
    x, y = make_data(np.float32, n=8)
    hp = dict(HP, epochs=1, batch_size=8)
    meter = sm.Meter()
    m = sm.build("skip-lora", make_net(np.float32), hp, meter, x)
    sm.finetune(m, x, y, hp, meter)
    n, r, c, ins = 8, 2, 3, (7, 6, 5)
    frozen = n * (7 * 6 + 6 * 5 + 5 * 3)
    adapters_fwd = sum(n * k * r + n * r * c for k in ins)
    adapters_bwd = sum(r * n * c + n * c * r + k * n * r for k in ins)
    update = sum(k * r + r * c for k in ins)
    assert meter.macs == frozen + adapters_fwd + adapters_bwd + update


def test_prng_matches_splitmix64_reference():
    # First outputs of SplitMix64 with state 0 (Vigna's reference implementation).
    assert [int(v) for v in prng.draws(0, 3)] == [
        0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    perm = prng.permutation(prng.stream_key(7, prng.STREAM_SHUFFLE), 1000)
    assert sorted(perm) == list(range(1000)) and list(perm) != list(range(1000))
    u = prng.uniform(prng.stream_key(7, 1), 100000)
    assert u.dtype == np.float32 and 0 <= u.min() and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.005


def run_method(method, n=8, dtype=np.float32, **hp):
    x, y = make_data(dtype, n=n)
    meter = sm.Meter()
    hp = dict(HP, **hp)
    m = sm.build(method, make_net(dtype), hp, meter, x)
    epochs = sm.finetune(m, x, y, hp, meter)
    return m, meter, epochs, (x, y)


def test_far_macs_by_hand():
    # 7-6-5-3, one step of 8 per epoch, 3 epochs; priming round(1/3 * 3) = 1 step; kept
    # round(0.4 * 6) = 2 and round(0.4 * 5) = 2 neurons.
    m, meter, _, _ = run_method("far", epochs=3, batch_size=8, far_prime=1 / 3)
    assert m.priming == 1 and m.kept == [2, 2, 3]
    forward = 8 * (7 * 6 + 6 * 5 + 5 * 3)
    dx = 8 * (6 * 5 + 5 * 3)  # layers 1 and 2, through kept and frozen columns alike
    priming = forward + 8 * (7 * 6 + 6 * 5 + 5 * 3) + dx + (7 * 6 + 6 + 6 * 5 + 5 + 5 * 3 + 3)
    trained = forward + (7 * 8 * 2 + 6 * 8 * 2 + 5 * 8 * 3) + dx + (7 * 2 + 2 + 6 * 2 + 2 + 5 * 3 + 3)
    assert meter.macs == priming + 2 * trained
    assert m.trainable_count() == 7 * 2 + 2 + 6 * 2 + 2 + 5 * 3 + 3 and m.grad_floats() == 101


def test_bsr_macs_by_hand_with_and_without_the_cache():
    # Default layers: the upper half, 1 and 2; x[1] is the prefix (layer 0 forward only).
    prefix, path = 8 * 7 * 6, 8 * (6 * 5 + 5 * 3)
    backward = (6 * 8 * 5 + 5 * 8 * 3) + 8 * 3 * 5  # dW of layers 1 and 2, dx of layer 2 only
    update = 6 * 5 + 5 + 5 * 3 + 3
    _, meter, _, _ = run_method("bsr", epochs=2, batch_size=8)
    assert meter.macs == 2 * (prefix + path + backward + update)
    m, meter, _, _ = run_method("bsr", epochs=2, batch_size=8, cache=True)
    assert meter.macs == prefix + 2 * (path + backward + update)
    assert m.prefix.misses == 8 and m.prefix.hits == 8 and m.prefix.row_bytes == 4 * 6


def test_oselm_head_macs_by_hand():
    # Per sample (N = 5, H = N + 1 = 6, C = 3): u = x P[:N] (N H), h u^T (N), z (N C), and the
    # two outer products beta += k e (H C) and P -= u^T u / d (H H); the prefix x[1], x[2].
    m, meter, epochs, _ = run_method("oselm-head", batch_size=4, epochs=9)
    per_sample = 5 * 6 + 5 + 5 * 3 + 6 * 3 + 6 * 6
    assert len(epochs) == 1  # one pass, whatever epochs says
    assert meter.macs == 8 * (7 * 6 + 6 * 5) + 8 * per_sample
    assert m.trainable_count() == 6 * 3 and m.grad_floats() == 0 and m.state_floats() == 36


def features(net, x):
    """[x[L-1], 1] of every sample: the oselm head's inputs, by plain NumPy."""
    h = x
    for w, b in zip(net.W[:-1], net.b[:-1]):
        h = np.maximum(h @ w + b, 0)
    return np.hstack([h, np.ones((len(h), 1))])


@pytest.mark.parametrize("forget", [1.0, 0.9])
def test_oselm_head_after_one_pass_is_the_ridge_solution(forget):
    # RLS from beta0 with P0 = I / lambda minimises, after one pass over samples 1..n in the
    # pass's order, sum_i mu^(n-i) ||h_i beta - t_i||^2 + mu^n lambda ||beta - beta0||^2
    # (mu = 1: ||H beta - T||^2 + lambda ||beta - beta0||^2, the batch ridge solution).
    m, _, _, (x, y) = run_method("oselm-head", n=37, dtype=np.float64, oselm_forget=forget)
    net, lam = make_net(np.float64), HP["oselm_lambda"]
    order = prng.permutation(prng.stream_key(HP["seed"], prng.STREAM_SHUFFLE), len(y))
    H, T = features(net, x)[order], np.eye(3)[y[order]]
    w = forget ** np.arange(len(y) - 1, -1, -1.0)
    prior = forget ** len(y) * lam
    beta0 = np.vstack([net.W[-1], net.b[-1]])
    ridge = np.linalg.solve(prior * np.eye(6) + H.T @ (w[:, None] * H), prior * beta0 + H.T @ (w[:, None] * T))
    np.testing.assert_allclose(m.beta, ridge, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(m.P, m.P.T)


def test_oselm_head_keeps_p_exactly_symmetric_in_float32():
    m, _, epochs, _ = run_method("oselm-head", n=37, oselm_passes=3, oselm_forget=0.95)
    assert len(epochs) == 3 and m.failure is None
    np.testing.assert_array_equal(m.P, m.P.T)


def test_oselm_head_stops_when_the_rls_denominator_is_not_positive():
    x, y = make_data(np.float32, n=12)
    meter = sm.Meter()
    m = sm.build("oselm-head", make_net(np.float32), HP, meter, x)
    m.P *= -1  # no longer positive definite: d = mu + h P h^T < 0 for the first sample
    before = m.beta.copy()
    epochs = sm.finetune(m, x, y, dict(HP), meter)
    assert m.failure == sm.RLS_FAILED and len(epochs) == 1 and not np.isfinite(epochs[0][1])
    np.testing.assert_array_equal(m.beta, before)


def test_far_reconfiguration_changes_the_layout_not_the_function():
    x, y = make_data(np.float64, n=20)
    m = sm.build("far", make_net(np.float64), HP, sm.Meter(), x)
    m.priming = 2
    for s in range(2):
        m.step(x, y, np.arange(4 * s, 4 * s + 4))
    primed = m.logits(x)
    m.reconfigure()
    np.testing.assert_allclose(m.logits(x), primed, rtol=1e-12)
    m.finish()
    np.testing.assert_allclose(m.logits(x), primed, rtol=1e-12)
    assert sorted(m.params) == sorted(f"{p}{k}" for p in "Wb" for k in range(3))
    assert m.params["W0"].shape == (7, 6) and m.frozen == [None] * 3


def expected_far_choice(W0, b0, W, b, kept):
    """The top `kept` neurons by L1 change of column and bias (ties to the lower index), ascending."""
    score = np.abs(W - W0).astype(np.float64).sum(axis=0) + np.abs(b - b0)
    return sorted(sorted(range(len(score)), key=lambda j: (-score[j], j))[:kept])


def test_far_chooses_the_neurons_that_changed_most_and_freezes_the_rest():
    x, y = make_data(np.float32, n=16)
    net = make_net(np.float32)
    hp = dict(HP, epochs=2, far_prime=0.5)  # 8 steps of 4, the first 4 priming: epoch 0
    m = sm.build("far", net, hp, sm.Meter(), x)
    primed = sm.build("ft-all", net, dict(hp, epochs=1), sm.Meter(), x)
    sm.finetune(primed, x, y, dict(hp, epochs=1), sm.Meter())
    sm.finetune(m, x, y, hp, sm.Meter())
    for k in range(2):
        W1, b1 = primed.params[f"W{k}"], primed.params[f"b{k}"]
        want = expected_far_choice(net.W[k], net.b[k], W1, b1, m.kept[k])
        # Frozen neurons end as priming left them; every kept one moved on.
        moved = [j for j in range(W1.shape[1]) if not np.array_equal(m.params[f"W{k}"][:, j], W1[:, j])]
        assert moved == want, k
        frozen = [j for j in range(W1.shape[1]) if j not in want]
        np.testing.assert_array_equal(m.params[f"b{k}"][frozen], b1[frozen])


def test_far_random_draws_its_neurons_from_the_layers_stream():
    m, _, _, _ = run_method("far-random", n=16, far_prime=0.5, epochs=2)
    for k, kept in enumerate(m.kept[:-1]):
        draw = prng.permutation(prng.stream_key(HP["seed"], prng.STREAM_FAR + k), m.params[f"W{k}"].shape[1])
        assert sm.far_kept(HP["far_keep"], len(draw)) == kept
        assert list(m.choose(k)[:kept]) == sorted(draw[:kept])
