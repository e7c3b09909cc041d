#!/usr/bin/env python3
"""Board-side NumPy runner: `python3 skip2_runner.py WORKDIR`.

Needs only Python 3 and NumPy. Reads WORKDIR/job.json and the .npy files it names, fine-tunes,
and prints one JSON result on stdout (the runner contract, docs/runner-contract.md). A method
that diverges is a result (status "fail"); anything else that goes wrong exits non-zero with
the reason on stderr, so the host records an infrastructure error instead.
"""
import json
import math
import os
import platform
import resource
import sys
import time

import numpy as np

import skip2_job
import skip2_limits
import skip2_methods as sm
import skip2_prng as prng
import skip2_quant as quant

IMPL = "numpy"


def refuse(workdir, problems):
    """A job some runner would not run exactly as asked is refused, never aliased."""
    if problems:
        raise SystemExit(f"{workdir}/job.json: {'; '.join(problems)}")


def load_job(workdir):
    with open(os.path.join(workdir, "job.json")) as f:
        job = json.load(f)
    refuse(workdir, skip2_limits.job_problems(job, widths=()))

    def resolve(p):
        return p if os.path.isabs(p) else os.path.join(workdir, p)

    model, data = resolve(job["model_dir"]), resolve(job["data_dir"])
    L = job["n_layers"]
    W = [np.load(os.path.join(model, f"W{k}.npy")).astype(np.float32) for k in range(L)]
    b = [np.load(os.path.join(model, f"b{k}.npy")).astype(np.float32) for k in range(L)]
    mean = np.load(os.path.join(model, "mean.npy")).astype(np.float32)
    std = np.load(os.path.join(model, "std.npy")).astype(np.float32)
    arrays = {}
    for part in ("ft", "test"):
        x = np.load(os.path.join(data, f"x_{part}.npy")).astype(np.float32)
        x = (x - mean) / std
        if job["input_format"] == "int8":  # stored as int8 rows, one scale each
            x = quant.round_trip(x, [slice(None)])
        arrays[part] = (x, np.load(os.path.join(data, f"y_{part}.npy")).astype(np.int64))
    return job, sm.Net(W, b), arrays


def peak_rss_bytes():
    """This process's own peak RSS. On Linux, getrusage keeps the high-water mark of the parent
    that forked us (it survives exec), so the kernel's VmHWM is read instead where it exists."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # KiB elsewhere


def memory(method, hp, x_ft):
    """Analytic bytes by role (docs/methods.md)."""
    item = x_ft.itemsize
    backbone = sum(w.size for w in method.net.W) + sum(v.size for v in method.net.b)
    adapters = sum(p.size for n, p in method.params.items() if n[0] in "AB")
    prefix = getattr(method, "prefix", None)
    return {
        "weights_bytes": (backbone + adapters) * item,
        "grads_bytes": method.grad_floats() * item,
        "optimizer_bytes": method.state_floats() * item,
        "activations_bytes": method.activation_floats(hp["batch_size"]) * item,
        "cache_bytes": prefix.used * prefix.row_bytes if prefix else 0,
    }


def echo(job):
    """The fields the job's method holds as every runner holds them (reals in float32), which
    the host checks against the job it sent."""
    return {f.name: skip2_job.as_held(f, job[f.name]) for f in skip2_job.FIELDS if f.holds(job["method"])}


def binding(job):
    """What binds a result to its job and attempt: the job as read, and the host's token for
    this attempt when it gave one."""
    return {"job": echo(job), **({"token": job["token"]} if "token" in job else {})}


def run(workdir, on_epoch=None):
    job, net, data = load_job(workdir)
    # The fields the method does not hold take their defaults: it ignores them.
    hp = {**{f.name: f.default for f in skip2_job.FIELDS if not f.holds(job["method"])}, **job}
    # skip2-lora always caches, skip-lora never (it is the cache-less counterpart); the others may.
    hp["cache"] = job["method"] == "skip2-lora" or (job["cache"] and job["method"] in sm.CACHEABLE)
    widths = [net.W[0].shape[0], *(w.shape[1] for w in net.W)]
    refuse(workdir, skip2_limits.job_problems(job, widths)
           + (["n_layers must be at least 2"] if len(net.W) < 2 else []))
    (x_ft, y_ft), (x_test, y_test) = data["ft"], data["test"]
    meter = sm.Meter()
    method = sm.build(job["method"], net, hp, meter, x_ft)
    acc_before = sm.accuracy(method, x_test, y_test)

    # Progress reports (a session's, on_epoch(n, N)) are left out of ft_time, as an MCU leaves
    # its PROGRESS transfers out of its clock: they are not the method's work.
    reporting = 0.0

    def report(*epoch):
        nonlocal reporting
        t = time.perf_counter()
        on_epoch(*epoch)
        reporting += time.perf_counter() - t

    t0 = time.perf_counter()
    stream = prng.STREAM_PRETRAIN_SHUFFLE if job.get("pretrain") else prng.STREAM_SHUFFLE
    epochs = sm.finetune(method, x_ft, y_ft, hp, meter, stream, on_epoch=report if on_epoch else None)
    ft_time = time.perf_counter() - t0 - reporting

    result = outcome(epochs, ft_time, getattr(method, "prefix", None), len(y_ft), len(y_test), method.failure)
    if job.get("save_params"):
        save_trained(workdir, method.params)
    return {
        "impl": IMPL,
        "method": job["method"],
        **result,
        "acc_before": acc_before,
        "acc_after": None if result["status"] == "fail" else sm.accuracy(method, x_test, y_test),
        **{f"{p}_time_s": meter.seconds[p] for p in sm.PHASES},
        "ft_macs": meter.macs,
        "trainable_params": method.trainable_count(),
        "mem": memory(method, hp, x_ft),
        "peak_rss_bytes": peak_rss_bytes(),
        **binding(job),
        "runtime": {"python": platform.python_version(), "numpy": np.__version__,
                    "machine": platform.machine()},
    }


def outcome(epochs, ft_time, prefix, n_ft, n_test, failure=None):
    """Result fields every runner derives the same way from its epochs, its cache (or None) and
    the failure code a method set (sm.FAILURES; a non-finite loss otherwise)."""
    losses = [loss for _, loss in epochs]
    diverged = not math.isfinite(losses[-1])
    lookups = prefix.hits + prefix.misses if prefix else 0
    return {
        "status": "fail" if diverged else "ok",
        "reason": sm.FAILURES[failure or 1].format(epoch=len(epochs)) if diverged else None,
        "ft_time_s": ft_time,
        "epoch_times_s": [t for t, _ in epochs],
        "epoch_loss": [v if math.isfinite(v) else None for v in losses],
        "n_ft": n_ft,
        "n_test": n_test,
        "cache_capacity_samples": prefix.capacity if prefix else 0,
        "cache_hits": prefix.hits if prefix else 0,
        "cache_misses": prefix.misses if prefix else 0,
        "cache_hit_rate": (prefix.hits / lookups) if lookups and prefix.capacity else None,
    }


def save_trained(workdir, params):
    """Trained parameters as WORKDIR/trained/<name>.npy, for cross-implementation checks."""
    os.makedirs(os.path.join(workdir, "trained"), exist_ok=True)
    for name, p in params.items():
        np.save(os.path.join(workdir, "trained", f"{name}.npy"), p)


def main(argv, on_epoch=None):
    """The runner on WORKDIR (argv[1]); `on_epoch(n, N)` is told of each finished epoch."""
    if len(argv) != 2:
        sys.exit("usage: skip2_runner.py WORKDIR (a directory holding job.json)")
    print(json.dumps(run(argv[1], on_epoch)))


if __name__ == "__main__":
    main(sys.argv)
