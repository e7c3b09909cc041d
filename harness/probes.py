"""Probes: measurements of a board itself, run by the engine beside the jobs, each into a probe
record (docs/records.md) of the run's records.jsonl.

- ceiling: the C core's own best product speed on operands in cache, `core` in GFLOP/s, the
  read bandwidth per working-set size, `read_BYTES` in GB/s, and the clock as measured,
  `clock_mhz` (`skip2run --ceiling`);
- sgemm-peak: single-thread sgemm GFLOP/s of NumPy's BLAS for a square product, `square`, and
  for each model's own products (forward, dW and dx of one step), named by the model's sizes
  (targets/numpy/skip2_peak.py).

The speed report (harness/report/speed.py) sets every C job against the probes of its round.
"""
import json
from dataclasses import dataclass
from typing import Callable

import skip2_peak  # (the probe runs on the board; its workload shapes are built here)
from harness.errors import JobUnsupported, TargetError
from harness.hashing import sha256_text
from harness.mcu import products as step
from harness.mcu.result import instructions

TIMEOUT_S = 600
ROUNDS = 3  # best of, within one probe


@dataclass(frozen=True)
class Probe:
    """One measurement of one board in one repetition: a work item of a board's queue, like a job."""
    name: str
    board: str
    repetition: int
    backbone = None  # a probe needs no model on the board

    @property
    def impl(self) -> str:
        return PROBES[self.name].impl

    def label(self) -> str:
        return f"probe {self.name} {self.impl} rep {self.repetition}"


def model_name(sizes) -> str:
    """A model by its layer sizes, "512-96-96-2", as probe values and job records name it."""
    return "-".join(map(str, sizes))


def models(exp, artifacts: dict) -> dict:
    """Each model of the run by name: its layer sizes and the batch size."""
    return {model_name(art.sizes): (list(art.sizes), exp.finetune.batch_size) for art in artifacts.values()}


def _ceiling(target, _workload: dict) -> dict:
    found = json.loads(target.run_program("c", "--ceiling", timeout=TIMEOUT_S))
    return {"core": found["core_gflops"], "clock_mhz": found["clock_mhz"],
            **{f"read_{size}": gbs for size, gbs in found["read_gbs"]}}


def _sgemm_peak(target, workload: dict) -> dict:
    workloads = {"square": [[workload["square"]] * 3],
                 **{name: skip2_peak.model_shapes(sizes, batch) for name, (sizes, batch) in workload["models"].items()}}
    return json.loads(target.run_script("numpy", "skip2_peak.py", json.dumps(workloads), str(ROUNDS),
                                        timeout=TIMEOUT_S))


def _step_products(models: dict, rank: int) -> dict:
    return {"products": [{**p, "name": f"{name}/{p['name']}"} for name, (sizes, batch) in models.items()
                         for p in step.step_products(sizes, batch, rank)]}


def _products(target, workload: dict) -> dict:
    answers = target.time_products([step.code(p) for p in workload["products"]])
    values = {}
    for p, a in zip(workload["products"], answers):
        if a.status != 0:
            values[f"bytes {p['name']}"] = a.needed
            continue
        if target.emulated:
            values[f"instructions {p['name']}"] = instructions(a.ticks, target.hello.ticks_per_second)
        else:
            values[f"seconds {p['name']}"] = a.ticks / target.hello.ticks_per_second
        values[f"bits {p['name']}"] = a.bits
    return values


@dataclass(frozen=True)
class ProbeKind:
    impl: str                                   # the runner deployed for it
    microcontroller: bool                       # what it measures: an MCU's firmware, or a board with an OS
    workload: Callable[[dict, int], dict]       # (models, rank) -> what it measures on (part of its identity)
    measure: Callable[[object, dict], dict]     # (prepared target, workload) -> values


PROBES = {
    "ceiling": ProbeKind("c", False, lambda models, rank: {}, _ceiling),
    "sgemm-peak": ProbeKind("numpy", False, lambda models, rank: {"square": skip2_peak.SQUARE, "models": models},
                            _sgemm_peak),
    "products": ProbeKind("c", True, _step_products, _products),
}


def workload(probe: Probe, exp, artifacts: dict) -> dict:
    """What the probe measures on in this run (its models' shapes)."""
    return PROBES[probe.name].workload(models(exp, artifacts), exp.finetune.rank)


def identity(run_id: str, probe: Probe, workload: dict) -> dict:
    kind = PROBES[probe.name]
    return {"record_type": "probe", "run_id": run_id, "probe": probe.name, "impl": kind.impl, "board": probe.board,
            "repetition": probe.repetition, "workload": workload,
            "job_id": sha256_text(probe.name, json.dumps(workload, sort_keys=True))[:12]}


def execute(target, probe: Probe, workload: dict, microcontroller: bool) -> dict:
    """The outcome fields of one probe's record on a prepared target."""
    kind = PROBES[probe.name]
    if microcontroller != kind.microcontroller:
        return {"status": "unsupported", "reason": f"the {probe.name} probe measures " + (
            "an MCU's firmware; the ceiling and sgemm-peak probes measure a board with an OS" if kind.microcontroller
            else "a board with an OS; the products probe measures an MCU's")}
    if probe.impl in target.unsupported:
        return {"status": "unsupported", "reason": target.unsupported[probe.impl]}
    try:
        values = kind.measure(target, workload)
    except JobUnsupported as e:
        return {"status": "unsupported", "reason": str(e)}
    except TargetError as e:
        return {"status": "error", "error": f"{probe.name} probe on {probe.board}: {e}", "stderr_tail": e.stderr_tail}
    except (ValueError, KeyError, TypeError) as e:  # not the JSON the probe prints
        return {"status": "error", "error": f"{probe.name} probe on {probe.board}: unreadable output ({e})"}
    return {"status": "ok", "values": values, "runner_sha256": target.runner_sha256.get(probe.impl)}


def describe(values: dict) -> str:
    """A probe's values in a few words, for its console line."""
    counted = {name: value for name, value in values.items() if not name.startswith(("bits ", "bytes "))}
    return "  ".join(f"{name} {value:.4g}" for name, value in list(counted.items())[:4])
