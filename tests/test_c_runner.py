"""The C runner (targets/c) against the NumPy reference runner: same job files, same results.

Both runners get identical work directories: a random float32 backbone 20-12-10-3, input
statistics, 60 fine-tuning and 40 test samples, and a job.json per the runner contract.
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import skip2_methods as sm
import skip2_prng as prng
from conftest import ROOT, full_job, require_tool, unavailable, write_runner_files
from harness import work
from harness.bench.bounds import epoch_work
from harness.methods import VARIANTS, parse_variant

METHODS = ("ft-all", "ft-last", "ft-bias", "lora-all", "lora-last", "skip-lora", "skip2-lora", "far",
           "far-random", "bsr", "oselm-head")
SEEDS = (1, 7)
SIZES = (20, 12, 10, 3)
N_FT, N_TEST = 60, 40
C_DIR = ROOT / "targets" / "c"
NUMPY_RUNNER = ROOT / "targets" / "numpy" / "skip2_runner.py"
ASAN_CFLAGS = "-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer"
SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
}
# Float32 tolerance for trained parameters (values of order 0.1-1). The C core and NumPy's BLAS
# sum the matrix products in different orders, so each product may differ in the last bit or
# two; elementwise steps are the same operations. After 4 epochs x 4 SGD steps the largest
# differences measured are ~1e-7 absolute and ~1e-5 relative (the relative figure on entries
# near zero). atol 1e-6 / rtol 1e-5 leaves a margin of about 10x, while a real mistake (a wrong
# operation order, a missing scale, a stale gradient) moves parameters by 1e-3 or more.
ATOL, RTOL = 1e-6, 1e-5
# oselm-head's recursive least squares in float32 starts from P = I / lambda (100 I here) and
# loses digits as P shrinks: each runner's head ends some 1e-5 from the float64 ridge solution
# (measured: NumPy 1.0e-5, C 1.9e-5 at most; their difference 1.5e-5, epoch loss 2e-5
# relative), so the two agree only to that. 1e-4 keeps a margin and still catches a mistake.
RLS_TOL = 1e-4
# Timing, memory high-water and provenance legitimately differ between runs and builds.
VOLATILE = {"ft_time_s", "fwd_time_s", "bwd_time_s", "upd_time_s", "cache_time_s",
            "epoch_times_s", "peak_rss_bytes", "runtime"}


def build(build_dir, cflags=None):
    require_tool("cc")
    require_tool("make")
    cmd = ["make", "-C", str(C_DIR), f"-j{os.cpu_count() or 1}", f"BUILD={build_dir}"]
    if cflags:
        cmd.append(f"CFLAGS={cflags}")
    done = subprocess.run(cmd, capture_output=True, text=True)
    return done, build_dir / "skip2run"


@pytest.fixture(scope="module")
def c_runner(tmp_path_factory):
    done, binary = build(tmp_path_factory.mktemp("c-build"))
    assert done.returncode == 0, done.stderr
    return binary


@pytest.fixture(scope="module")
def asan_runner(tmp_path_factory):
    done, binary = build(tmp_path_factory.mktemp("c-build-asan"), ASAN_CFLAGS)
    if done.returncode != 0:
        unavailable(f"the compiler cannot build with sanitizers: {done.stderr.strip()[-300:]}")
    return binary


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Model and data directories shared by all work directories; labels in both integer
    widths the contract allows."""
    return write_runner_files(tmp_path_factory.mktemp("skip2-files"), SIZES, N_FT, N_TEST, seed=11,
                              label_types=(np.int32, np.int64))


def make_job(method, seed, **overrides):
    job = full_job(method, seed=seed, epochs=4, batch_size=16, lr=0.05, rank=2, scale=0.7,
                   cache=method in ("ft-last", "lora-last", "bsr", "oselm-head"), n_layers=len(SIZES) - 1,
                   save_params=True)
    job.update(overrides)
    return job


def run(runner, files, workdir, job, env=None):
    """Runs one runner in a fresh workdir: model_dir absolute, data_dir relative (both forms)."""
    workdir.mkdir(parents=True)
    job = dict(job, model_dir=str(files / "model"),
               data_dir=os.path.relpath(files / "data", workdir))
    (workdir / "job.json").write_text(json.dumps(job))
    cmd = [sys.executable, str(NUMPY_RUNNER)] if runner == "numpy" else [str(runner)]
    done = subprocess.run(cmd + [str(workdir)], capture_output=True, text=True,
                          env=dict(os.environ, **(env or {})), timeout=60)
    assert done.returncode == 0, done.stderr
    params = {p.stem: np.load(p) for p in (workdir / "trained").glob("*.npy")}
    return json.loads(done.stdout), params, done.stderr


def assert_same_result(ref, got, rtol=RTOL):
    assert set(got) == set(ref)
    assert got["status"] == ref["status"] and got["reason"] == ref["reason"]
    # A test sample whose two largest logits are within rounding may flip its arg-max, so the
    # accuracies may differ by at most one test sample.
    assert abs(got["acc_before"] - ref["acc_before"]) <= 1 / N_TEST + 1e-12
    if ref["acc_after"] is not None:
        assert abs(got["acc_after"] - ref["acc_after"]) <= 1 / N_TEST + 1e-12
    for key in ("ft_macs", "trainable_params", "cache_capacity_samples", "cache_hits",
                "cache_misses", "cache_hit_rate", "mem"):
        assert got[key] == ref[key], f"{key}: C {got[key]!r}, NumPy {ref[key]!r}"
    assert len(got["epoch_times_s"]) == len(ref["epoch_loss"])
    np.testing.assert_allclose(got["epoch_loss"], ref["epoch_loss"], rtol=rtol)


def assert_params_close(ref, got, label, rtol=RTOL, atol=ATOL):
    assert sorted(got) == sorted(ref)
    worst_abs = max(float(np.max(np.abs(got[n] - ref[n]))) for n in ref)
    worst_rel = max(float(np.max(np.abs(got[n] - ref[n]) / np.maximum(np.abs(ref[n]), 1e-3)))
                    for n in ref)
    print(f"{label}: max |C - NumPy| = {worst_abs:.2e}, max relative = {worst_rel:.2e}")
    for name in ref:
        assert got[name].dtype == np.float32 and got[name].shape == ref[name].shape, name
        np.testing.assert_allclose(got[name], ref[name], rtol=rtol, atol=atol, err_msg=name)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("method", METHODS)
def test_c_matches_numpy(c_runner, files, tmp_path, method, seed):
    job = make_job(method, seed)
    ref, ref_params, _ = run("numpy", files, tmp_path / "numpy", job)
    got, got_params, _ = run(c_runner, files, tmp_path / "c", job)
    assert got["impl"] == "c" and got["method"] == method and got["status"] == "ok"
    assert {"compiler", "cflags", "arena_bytes", "machine"} <= set(got["runtime"])
    tol = dict(rtol=RLS_TOL, atol=RLS_TOL) if method == "oselm-head" else {}
    assert_same_result(ref, got, tol.get("rtol", RTOL))
    assert_params_close(ref_params, got_params, f"{method} seed {seed}", **tol)


def test_pretraining_takes_its_own_shuffle_stream_in_both_runners(c_runner, files, tmp_path):
    job = make_job("ft-all", 5, pretrain=True)
    ref, ref_params, _ = run("numpy", files, tmp_path / "numpy", job)
    got, got_params, _ = run(c_runner, files, tmp_path / "c", job)
    assert_same_result(ref, got)
    assert_params_close(ref_params, got_params, "ft-all pre-training")
    # Another epoch order than the same seed's fine-tuning: other losses, other weights.
    tuned, tuned_params, _ = run(c_runner, files, tmp_path / "tuned", make_job("ft-all", 5))
    assert tuned["epoch_loss"] != got["epoch_loss"] and not np.array_equal(tuned_params["W0"], got_params["W0"])


def test_partial_cache_budget_matches_numpy_and_keeps_results(c_runner, files, tmp_path):
    row_bytes = 4 * (SIZES[1] + SIZES[2] + SIZES[3])
    job = make_job("skip2-lora", 3, cache_budget_bytes=25 * row_bytes + row_bytes // 2)
    ref, ref_params, _ = run("numpy", files, tmp_path / "numpy", job)
    got, got_params, _ = run(c_runner, files, tmp_path / "c", job)
    assert got["cache_capacity_samples"] == 25 and got["cache_misses"] > N_FT
    assert_same_result(ref, got)
    assert_params_close(ref_params, got_params, "skip2-lora partial cache")
    # The cache changes time, never results: C trains bit for bit as without a cache.
    _, plain_params, _ = run(c_runner, files, tmp_path / "plain", make_job("skip-lora", 3))
    for name in plain_params:
        np.testing.assert_array_equal(got_params[name], plain_params[name], err_msg=name)


COMPACT_JOBS = [("ft-last", "int8", "f32"), ("lora-last", "int8", "int8"), ("skip2-lora", "int8", "f32"),
                ("skip2-lora", "int8", "int8"), ("ft-all", "f32", "int8"), ("lora-all", "f32", "int8"),
                ("bsr", "int8", "f32"), ("bsr", "int8", "int8"), ("oselm-head", "int8", "f32"),
                ("oselm-head", "int8", "int8"), ("far", "f32", "int8"), ("far-random", "f32", "int8")]
# A cached row's segments: x1, x2 and z0 for the adapter methods, x1 and x2 for the last-layer
# methods, x1 for bsr (its default trains layers 1 and 2).
ROW_SEGMENTS = {"ft-last": SIZES[1:3], "oselm-head": SIZES[1:3], "bsr": SIZES[1:2]}


@pytest.mark.parametrize("method, cache_format, input_format", COMPACT_JOBS)
def test_compact_formats_match_numpy(c_runner, files, tmp_path, method, cache_format, input_format):
    job = make_job(method, 7, cache=cache_format == "int8", cache_format=cache_format, input_format=input_format)
    ref, ref_params, _ = run("numpy", files, tmp_path / "numpy", job)
    got, got_params, _ = run(c_runner, files, tmp_path / "c", job)
    tol = dict(rtol=RLS_TOL, atol=RLS_TOL) if method == "oselm-head" else {}
    assert_same_result(ref, got, tol.get("rtol", RTOL))
    assert_params_close(ref_params, got_params, f"{method} cache {cache_format} inputs {input_format}", **tol)
    if cache_format == "int8":  # a row: a byte per value and a float32 scale per segment
        segments = ROW_SEGMENTS.get(method, SIZES[1:])
        assert got["mem"]["cache_bytes"] == N_FT * (sum(segments) + 4 * len(segments))
    # The format is not a no-op: float32 storage trains differently.
    _, plain_params, _ = run(c_runner, files, tmp_path / "plain", make_job(method, 7, cache=job["cache"]))
    assert any(not np.array_equal(plain_params[n], got_params[n]) for n in got_params)


@pytest.mark.parametrize("budget_rows", [0, 25, 59])
def test_an_int8_cache_trains_the_same_whatever_its_budget(c_runner, files, tmp_path, budget_rows):
    """A row the budget leaves out is read back through int8 like a stored one: the budget changes
    time, never results (down to no row at all)."""
    row_bytes = sum(SIZES[1:]) + 4 * 3
    full, full_params, _ = run(c_runner, files, tmp_path / "full", make_job("skip2-lora", 3, cache_format="int8"))
    job = make_job("skip2-lora", 3, cache_format="int8", cache_budget_bytes=budget_rows * row_bytes + row_bytes - 1)
    part, part_params, _ = run(c_runner, files, tmp_path / "part", job)
    assert part["cache_capacity_samples"] == budget_rows and full["cache_capacity_samples"] == N_FT
    assert part["mem"]["cache_bytes"] == budget_rows * row_bytes
    assert part["epoch_loss"] == full["epoch_loss"] and part["acc_after"] == full["acc_after"]
    for name in full_params:
        np.testing.assert_array_equal(part_params[name], full_params[name], err_msg=name)
    ref, ref_params, _ = run("numpy", files, tmp_path / "numpy", job)
    assert_same_result(ref, part)
    assert_params_close(ref_params, part_params, f"skip2-lora int8 cache of {budget_rows} rows")


def test_macs_follow_the_method_formula(c_runner, files, tmp_path):
    # skip-lora, one epoch of 60 samples in batches 16, 16, 16, 12 (docs/methods.md).
    got, _, _ = run(c_runner, files, tmp_path / "c", make_job("skip-lora", 1, epochs=1))
    r, c, ins = 2, SIZES[-1], SIZES[:-1]
    frozen = N_FT * sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:]))
    adapters = N_FT * sum(n * r + r * c + r * c + c * r + n * r for n in ins)
    update = 4 * sum(n * r + r * c for n in ins)
    assert got["ft_macs"] == frozen + adapters + update


# Every variant with the default options, and the options that change what a method counts:
# far's fractions, bsr's layers (with layer 0 there is no prefix to cache), a budget that holds
# part of the rows or none, and int8 inputs (which change no count).
WORK_MODEL_JOBS = [(variant, {}) for variant in VARIANTS] + [
    ("far", {"far_prime": 0.2, "far_keep": 0.5}), ("far-random", {"far_prime": 1.0, "far_keep": 0.1}),
    ("bsr", {"bsr_layers": 0b001}), ("bsr+cache", {"bsr_layers": 0b101}), ("bsr+cache-int8", {"bsr_layers": 0b100}),
    ("bsr+cache", {"bsr_layers": 0b011}), ("skip2-lora", {"cache_budget_bytes": 1000}),
    ("ft-last+cache-int8", {"cache_budget_bytes": 1000}), ("oselm-head+cache", {"cache_budget_bytes": 1000}),
    ("bsr+cache-int8", {"cache_budget_bytes": 500}), ("lora-last+cache", {"cache_budget_bytes": 99}),
    ("skip2-lora+cache-int8", {"input_format": "int8"}), ("ft-all", {"input_format": "int8"})]


@pytest.mark.parametrize("variant, options", WORK_MODEL_JOBS)
def test_the_work_model_predicts_what_both_runners_count(c_runner, files, tmp_path, variant, options):
    # Three epochs (oselm-head: passes), so the cache is filled, then hit twice; far's priming
    # (0.2 of 12 steps: the first 2 of epoch 0's 4) is counted step by step.
    method, cached, cache_format = parse_variant(variant)
    job = make_job(method, 1, epochs=3, oselm_passes=3, cache=cached, cache_format=cache_format, **options)
    want = work.expected(variant, list(SIZES), N_FT, job)
    if "cache_budget_bytes" in options:  # the case is what it says: the budget leaves rows out
        assert want["cache_capacity_samples"] < N_FT
    for runner in ("numpy", c_runner):
        got = run(runner, files, tmp_path / str(id(runner)), job)[0]
        assert got["status"] == "ok"
        assert {key: got[key] for key in want} == want, runner
    # The bounds of `skip2bench bench` rest on the model's first and later epochs.
    epoch = epoch_work(variant, list(SIZES), N_FT, job)
    assert got["ft_macs"] == epoch["first"]["macs"] + 2 * epoch["later"]["macs"]


def test_the_ceiling_probe_measures_the_core_and_the_memory(c_runner):
    done = subprocess.run([str(c_runner), "--ceiling"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    ceiling = json.loads(done.stdout)
    assert ceiling["core_gflops"] > 0.1 and ceiling["core_square"] in (32, 64, 96, 128, 192, 256)
    sizes = [size for size, _ in ceiling["read_gbs"]]
    assert sizes == sorted(sizes) and sizes[-1] >= 256 << 20 and all(gbs > 0.1 for _, gbs in ceiling["read_gbs"])


def test_divergence_is_a_fail_result(c_runner, files, tmp_path):
    job = make_job("ft-all", 1, lr=1e30)
    ref, _, _ = run("numpy", files, tmp_path / "numpy", job)
    got, _, _ = run(c_runner, files, tmp_path / "c", job)
    assert got["status"] == ref["status"] == "fail"
    assert got["reason"] == ref["reason"]
    assert got["acc_after"] is None and got["epoch_loss"][-1] is None
    assert len(got["epoch_loss"]) == len(ref["epoch_loss"])


def kept_neurons(trained, primed, k):
    """Layer k's neurons whose column or bias moved after priming: far's kept ones (the frozen
    ones are copied out and back, bit for bit)."""
    W, b, W1, b1 = trained[f"W{k}"], trained[f"b{k}"], primed[f"W{k}"], primed[f"b{k}"]
    return [j for j in range(W.shape[1]) if not (np.array_equal(W[:, j], W1[:, j]) and b[j] == b1[j])]


@pytest.mark.parametrize("method", ["far", "far-random"])
def test_c_and_numpy_choose_the_same_neurons(c_runner, files, tmp_path, method):
    # 4 epochs of 4 steps; priming 0.25 of them: epoch 0, which ft-all with 1 epoch repeats.
    job = make_job(method, 3, far_prime=0.25, far_keep=0.25)
    initial = {f"{p}{k}": np.load(files / "model" / f"{p}{k}.npy") for p in "Wb" for k in range(3)}
    choices = {}
    for runner in ("numpy", c_runner):
        primed = run(runner, files, tmp_path / f"{id(runner)}-primed", make_job("ft-all", 3, epochs=1))[1]
        trained = run(runner, files, tmp_path / f"{id(runner)}-far", job)[1]
        choices[runner] = [kept_neurons(trained, primed, k) for k in range(2)]
        for k, kept in enumerate(choices[runner]):
            width = initial[f"W{k}"].shape[1]
            if method == "far":  # the top 3 by L1 change of column and bias during priming
                score = np.abs(primed[f"W{k}"] - initial[f"W{k}"]).astype(np.float64).sum(axis=0) + \
                    np.abs(primed[f"b{k}"] - initial[f"b{k}"])
                want = sorted(np.argsort(-score, kind="stable")[:3])
            else:
                want = sorted(prng.permutation(prng.stream_key(3, prng.STREAM_FAR + k), width)[:3])
            assert kept == want, (runner, k)
    assert choices["numpy"] == choices[c_runner]


def test_a_least_squares_breakdown_is_a_fail_result(c_runner, files, tmp_path):
    # P0 = 1e6 I and mu = 0.5 (P doubles every sample) lose P's positive definiteness in float32.
    job = make_job("oselm-head", 1, oselm_lambda=1e-6, oselm_forget=0.5, oselm_passes=3)
    ref, _, _ = run("numpy", files, tmp_path / "numpy", job)
    got, _, _ = run(c_runner, files, tmp_path / "c", job)
    for result in (ref, got):
        assert result["status"] == "fail" and result["acc_after"] is None and result["epoch_loss"] == [None]
        assert result["reason"] == "the RLS denominator (forget + h P h^T) was not positive in epoch 1"


def test_sanitized_build_runs_every_method_clean(c_runner, asan_runner, files, tmp_path):
    # Every method as it comes, then every cacheable one with int8 inputs and a partial int8 cache.
    jobs = [make_job(method, 5, cache_budget_bytes=400 if method == "skip2-lora" else -1) for method in METHODS]
    jobs += [make_job(method, 5, cache=True, cache_format="int8", input_format="int8", cache_budget_bytes=400)
             for method in sm.CACHEABLE]
    for i, job in enumerate(jobs):
        plain, plain_params, _ = run(c_runner, files, tmp_path / str(i) / "plain", job)
        checked, checked_params, stderr = run(asan_runner, files, tmp_path / str(i) / "asan", job,
                                              env=SANITIZER_ENV)
        assert stderr == "", stderr
        # The same code at -O1 does the same float operations, so the result is identical.
        assert {k: v for k, v in checked.items() if k not in VOLATILE} == \
            {k: v for k, v in plain.items() if k not in VOLATILE}, job
        for name in plain_params:
            np.testing.assert_array_equal(checked_params[name], plain_params[name])


def expect_error(c_runner, workdir, needle):
    done = subprocess.run([str(c_runner), str(workdir)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stdout
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], done.stderr
    return lines[0]


def write_workdir(files, workdir, job_text):
    workdir.mkdir()
    shutil.copytree(files / "model", workdir / "model")
    shutil.copytree(files / "data", workdir / "data")
    (workdir / "job.json").write_text(job_text)


def valid_job_text(**overrides):
    return json.dumps(dict(make_job("lora-all", 1), model_dir="model", data_dir="data",
                           **overrides))


@pytest.mark.parametrize("job_text, needle", [
    ('{"method": "lora-all", "seed": 1,}', "job.json"),          # trailing comma
    ("", "job.json"),                                            # empty file
    (valid_job_text(epochs="4"), "'epochs'"),                    # wrong type
    (valid_job_text(method="lora-some"), "'method'"),            # unknown method
    (valid_job_text(batch_size=2.5), "'batch_size'"),            # not an integer
    (valid_job_text(cache=None), "job.json"),                    # null is not a contract value
    (valid_job_text(cache_format="int4"), "'cache_format' must be one of f32, int8; got 'int4'"),
    (valid_job_text(input_format=8), "'input_format' must be a string"),
])
def test_malformed_job_json_is_an_error(c_runner, files, tmp_path, job_text, needle):
    write_workdir(files, tmp_path / "w", job_text)
    line = expect_error(c_runner, tmp_path / "w", needle)
    assert "job.json" in line


def test_missing_key_is_named(c_runner, files, tmp_path):
    job = json.loads(valid_job_text())
    del job["lr"]
    write_workdir(files, tmp_path / "w", json.dumps(job))
    expect_error(c_runner, tmp_path / "w", "missing key 'lr'")


@pytest.mark.parametrize("damage, name", [
    ("delete", "W1.npy"),
    ("truncate", "x_ft.npy"),
    ("garbage", "b0.npy"),
    ("float64", "W0.npy"),
    ("fortran", "W2.npy"),
    ("version2", "mean.npy"),
    ("bad_label", "y_test.npy"),
])
def test_missing_or_corrupt_npy_is_an_error_naming_the_file(c_runner, files, tmp_path, damage,
                                                            name):
    workdir = tmp_path / "w"
    write_workdir(files, workdir, valid_job_text())
    path = next(workdir.glob(f"*/{name}"))
    if damage == "delete":
        path.unlink()
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:-7])
    elif damage == "garbage":
        path.write_bytes(b"this is not an npy file")
    elif damage == "float64":
        np.save(path, np.load(path).astype(np.float64))
    elif damage == "fortran":
        np.save(path, np.asfortranarray(np.load(path)))
    elif damage == "version2":
        array = np.load(path)
        with open(path, "wb") as f:
            np.lib.format.write_array(f, array, version=(2, 0))
    elif damage == "bad_label":
        labels = np.load(path)
        labels[3] = SIZES[-1]
        np.save(path, labels)
    expect_error(c_runner, workdir, name)


def test_peak_rss_is_the_runners_own_not_its_parents(c_runner, files, tmp_path):
    """A runner started by a big parent reports its own high-water mark, not the parent's."""
    ballast = np.ones(400 * 2**20 // 8)  # 400 MiB touched in this (the parent) process
    for runner in ("numpy", c_runner):
        result = run(runner, files, tmp_path / str(id(runner)), make_job("ft-all", 1))[0]
        assert 0 < result["peak_rss_bytes"] < 200 * 2**20, (runner, result["peak_rss_bytes"])
    assert ballast.sum() > 0


@pytest.mark.parametrize("method, field, value", [
    ("far", "far_keep", 1.5), ("far-random", "far_prime", -0.1), ("far", "far_prime", None),
    ("bsr", "bsr_layers", 8), ("bsr", "bsr_layers", 256), ("oselm-head", "oselm_lambda", 0.0),
    ("oselm-head", "oselm_forget", 0.2), ("oselm-head", "oselm_passes", 0), ("oselm-head", "oselm_passes", None)])
def test_both_runners_refuse_a_method_option_out_of_range(c_runner, files, tmp_path, method, field, value):
    job = json.loads(valid_job_text(method=method, **{field: value}))
    if value is None:  # a method's own option is required in its jobs
        del job[field]
    write_workdir(files, tmp_path / "w", json.dumps(job))
    expect_error(c_runner, tmp_path / "w", field)
    done = subprocess.run([sys.executable, str(NUMPY_RUNNER), str(tmp_path / "w")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0 and field in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_other_methods_options_are_ignored(c_runner, files, tmp_path):
    job = make_job("ft-all", 1, epochs=1, far_keep=7.0, bsr_layers=-3, oselm_forget=0.0)
    del job["oselm_lambda"]
    for runner in ("numpy", c_runner):
        assert run(runner, files, tmp_path / str(id(runner)), job)[0]["status"] == "ok"
