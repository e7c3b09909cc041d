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
          cache_budget_bytes=-1, cache_format="f32")


@pytest.mark.parametrize("method", sm.METHODS)
def test_gradients_match_finite_differences(method):
    x, y = make_data(np.float64)
    m = sm.build(method, make_net(np.float64), dict(HP, cache=method == "skip2-lora"),
                 sm.Meter(), x)
    rng = np.random.default_rng(5)
    for name, p in m.params.items():
        if name.startswith("B"):  # B starts at zero, which would hide A's gradient
            p[...] = rng.normal(0, 0.5, p.shape)
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


def test_an_int8_cache_keeps_results_whatever_its_budget():
    full, _, _ = train("skip2-lora", cache=True, dtype=np.float64, cache_format="int8")
    row = full.prefix.row_bytes
    assert row == (6 + 5 + 3) + 4 * 3  # a byte per value, a scale per segment (x1, x2, z0)
    for budget, stored in ((row - 1, 0), (10 * row + row // 2, 10)):
        part, _, _ = train("skip2-lora", budget=budget, cache=True, dtype=np.float64, cache_format="int8")
        assert part.prefix.capacity == part.prefix.used == stored
        for name in full.params:
            np.testing.assert_allclose(part.params[name], full.params[name], rtol=CACHE_RTOL, err_msg=name)
    # ... and int8 is not float32: the rows read back differ, and so does training.
    plain, _, _ = train("skip2-lora", cache=True, dtype=np.float64)
    assert not np.allclose(plain.params["A0"], full.params["A0"], rtol=1e-6)


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
