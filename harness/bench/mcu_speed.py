"""MACs per instruction of the MCU firmware on the emulated mps2-an386 (Cortex-M4F), for the
fan-damage1 model shape (512-96-96-2, batch 20, rank 4), by instructions counted under QEMU
-icount (one per nanosecond of virtual time: deterministic, so one run is the figure):

- products: each of the core's products at the shapes of one training step, timed on its own
  (harness/mcu/products.py, run by targets/c/mcu/bench/products.c under semihosting on each
  tree's core), with a hash of its output's bits; the current tree's jobs also run the products
  probe, the same code through the firmware;
- methods: every method's fine-tuning jobs (the caching ones also with int8 cache rows), with
  float32 inputs and with int8 ones, split by phase: the records' fwd/bwd/upd/cache instruction
  counts against the MACs of each phase (docs/methods.md's counting, checked against the
  record's ft_macs).

The jobs train on a few fan-damage1 samples (instructions per MAC hardly depend on how many).
Each tree's jobs are run directories kept in --out (jobs-now, jobs-REF, and with int8 inputs
jobs-now-int8-inputs, jobs-REF-int8-inputs), and the current tree's reports have their phases
table (harness/report/phases.py).
With --before REF, git revision REF is measured the same way beside this tree: its core in the
product bench, and its whole tree (harness, firmware) for the jobs, which must then give the
same accuracies, losses and MAC counts.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from harness import paths
from harness.errors import UserError
from harness.report import write_report
from harness.report.phases import phase_macs
from harness.lab.standins import free_port
from harness.revisions import export
from harness.mcu import products as step
from harness.mcu.result import instructions
from harness.tasks import load_task

HIDDEN, BATCH, RANK = (96, 96), 20, 4
VARIANTS = ("ft-all", "ft-bias", "ft-last", "ft-last+cache", "ft-last+cache-int8", "lora-all", "lora-last",
            "lora-last+cache", "lora-last+cache-int8", "skip-lora", "skip2-lora", "skip2-lora+cache-int8")
INPUT_FORMATS = ("f32", "int8")
PHASES = ("fwd", "bwd", "upd", "cache")
QEMU = ["qemu-system-arm", "-M", "mps2-an386", "-display", "none", "-monitor", "none", "-serial", "null",
        "-icount", "shift=0", "-semihosting-config", "enable=on,target=native"]
LAB_READY_S, JOB_TIMEOUT_S = 120, 1800


def products(tree: Path, build: Path) -> dict:
    """name -> (MACs, instructions, output hash) of the product bench on `tree`'s core."""
    done = subprocess.run(["make", "-s", "-C", str(paths.TARGETS / "c" / "mcu"), "products", "PORT=mps2-an386",
                           f"BUILD={build}", f"CORE={tree / 'targets' / 'c' / 'core'}"], capture_output=True, text=True)
    if done.returncode != 0:
        raise UserError(f"building the product bench on {tree} failed: {done.stderr.strip()[-500:]}")
    shapes = step.step_products([512, *HIDDEN, 2], BATCH, RANK)
    args = "".join(f",arg={':'.join(map(str, step.code(p)))}" for p in shapes)
    qemu = [*QEMU[:-1], QEMU[-1] + ",arg=products" + args]
    ran = subprocess.run(qemu + ["-kernel", str(build / "products.elf")], capture_output=True, text=True, timeout=600)
    lines = (ran.stdout + ran.stderr).split("\n")
    if ran.returncode != 0 or len(lines) < len(shapes) or any(not line[:1] == " " for line in lines[:len(shapes)]):
        raise UserError(f"the product bench did not finish under QEMU: {(ran.stdout + ran.stderr).strip()[-500:]}")
    out = {}
    for p, line in zip(shapes, lines):
        macs, ticks, clock, digest = line.split()
        out[p["name"]] = (int(macs), instructions(int(ticks), int(clock)), digest)
    return out


def task_file(path: Path, samples: int, data_root: Path | None) -> Path:
    """fan-damage1 with `samples` fine-tuning samples (evenly spread over the split) and half as
    many test samples; the whole pre-training split."""
    d = load_task("fan-damage1", data_root=data_root, cache_dir=paths.cache_dir())
    pick = {"ft": samples, "test": max(samples // 2, 1)}
    cut = {}
    for split in ("pre", "ft", "test"):
        x, y = getattr(d, f"x_{split}"), getattr(d, f"y_{split}")
        keep = np.linspace(0, len(y) - 1, pick[split]).astype(int) if split in pick else slice(None)
        cut[f"x_{split}"], cut[f"y_{split}"] = x[keep], y[keep]
    np.savez(path, classes=np.array(d.classes), **cut)
    return path


def jobs(tree: Path, work: Path, data: Path, epochs: int, run_dir: Path, input_format: str) -> list:
    """The records of every variant's job, run by `tree`'s own harness on its own emulated board
    into the run directory `run_dir`, which is kept; the current tree's run has the products
    probe too (another revision's harness may not know it)."""
    work.mkdir(parents=True)
    probes = 'probes = ["products"]\n' if tree == paths.CHECKOUT else ""
    (work / "exp.toml").write_text(
        f'name = "mcu-speed"\ntasks = ["fan"]\nmethods = {json.dumps(list(VARIANTS))}\nseeds = [0]\n'
        f'impls = ["c"]\n{probes}[task.fan]\nkind = "npz"\npath = "{data}"\n[model]\nhidden = {list(HIDDEN)}\n'
        f'[finetune]\nepochs = {epochs}\nbatch_size = {BATCH}\nrank = {RANK}\n'
        f'input_format = "{input_format}"\n')
    (work / "lab.toml").write_text(
        f'name = "mcu-speed"\nstandin_dir = "{work / "state"}"\n[[boards]]\nname = "mcu-an386"\n'
        f'transport = "serial"\nport = "socket://127.0.0.1:{free_port()}"\nfirmware = "mps2-an386"\n'
        f'timeout_s = {JOB_TIMEOUT_S}\n[boards.standin]\nmachine = "mps2-an386"\n')
    env = dict(os.environ, SKIP2BENCH_CACHE=str(paths.cache_dir()))
    harness = [sys.executable, "-m", "harness"]
    with open(work / "lab.log", "wb") as log:
        lab = subprocess.Popen(harness + ["lab", "serve", "--lab", str(work / "lab.toml")], cwd=tree, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + LAB_READY_S
        while "lab ready" not in (work / "lab.log").read_text(errors="replace"):
            if lab.poll() is not None or time.monotonic() > deadline:
                raise UserError(f"the emulated board did not start; see {work / 'lab.log'}")
            time.sleep(0.1)
        done = subprocess.run(harness + ["run", "-e", str(work / "exp.toml"), "-l", str(work / "lab.toml"),
                                         "-o", str(run_dir), "--no-report"], cwd=tree, env=env,
                              capture_output=True, text=True)
    finally:
        lab.terminate()
        lab.wait(timeout=60)
    records = [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()] \
        if (run_dir / "records.jsonl").is_file() else []
    records = [r for r in records if r.get("record_type", "job") == "job"]
    if done.returncode != 0 or len(records) != len(VARIANTS):
        raise UserError(f"the jobs on {tree} did not all finish: {(done.stdout + done.stderr).strip()[-800:]}")
    return records


def ratio(macs: int, instructions: int | None) -> str:
    return f"{macs / instructions:.3f}" if macs and instructions else "-"


def product_table(runs: dict) -> list:
    """A line per product, then per group (the name's prefix): MACs over instructions of each
    tree, the current tree's result bits (as the products probe's `bits`), and whether the trees'
    results have the same bits."""
    labels, compare = list(runs), len(runs) > 1
    lines = [" | ".join(["product", "MACs", *(f"MAC/instr {label}" for label in labels), "bits",
                         *["same bits"] * compare]),
             "|".join(["---"] * (3 + len(labels) + compare))]
    groups = {}
    for name, (macs, _, digest) in runs[labels[-1]].items():
        same = "yes" if all(runs[label][name][2] == digest for label in labels) else "NO"
        lines.append(" | ".join([name, str(macs), *(ratio(macs, runs[label][name][1]) for label in labels),
                                 f"{int(digest):08x}", *[same] * compare]))
        group = groups.setdefault(step.group(name), {label: [0, 0] for label in labels})
        for label in labels:
            group[label][0] += macs
            group[label][1] += runs[label][name][1]
    for name, sums in groups.items():
        lines.append(" | ".join([f"all {name}", str(sums[labels[0]][0]),
                                 *(ratio(*sums[label]) for label in labels), "", *[""] * compare]))
    return lines


def method_table(runs: dict, sizes: list) -> list:
    labels = list(runs)
    lines = [" | ".join(["method", "phase", "MACs", *(f"instructions {label}" for label in labels),
                         *(f"MAC/instr {label}" for label in labels)]),
             "|".join(["---"] * (3 + 2 * len(labels)))]
    by = {label: {job_of(r): r for r in records} for label, records in runs.items()}
    for job in [(v, f) for f in INPUT_FORMATS for v in VARIANTS]:
        r = by[labels[-1]][job]
        macs = {**phase_macs(r, sizes), "cache": 0, "ft": r["ft_macs"]}
        name = job[0] + (f" ({job[1]} inputs)" if job[1] != "f32" else "")
        for phase in (*PHASES, "ft"):
            counts = [by[label][job][f"{phase}_instructions"] for label in labels]
            if not any(counts):
                continue
            lines.append(" | ".join([name, phase, str(macs[phase]), *map(str, counts),
                                     *(ratio(macs[phase], c) for c in counts)]))
    return lines


def agreement(runs: dict) -> list:
    """Variants whose results differ between the trees (accuracy, losses, MACs)."""
    labels = list(runs)
    keys = ("acc_before", "acc_after", "epoch_loss", "ft_macs", "cache_hits")
    first = {job_of(r): r for r in runs[labels[0]]}
    return [" ".join(job_of(r)) for label in labels[1:] for r in runs[label]
            if any(r[k] != first[job_of(r)][k] for k in keys)]


def job_of(record: dict) -> tuple:
    return record["variant"], record["input_format"]


def measure(before: str | None, samples: int, epochs: int, data_root: Path | None, console, out: Path) -> None:
    """The product tables, and each tree's jobs as a run directory in `out` (jobs-now, jobs-REV),
    the current tree's with its report (the phases table among it)."""
    if paths.CHECKOUT is None:
        raise UserError("mcu-speed builds and compares the firmware of a checkout of skip2bench; run it from one")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="skip2-mcu-speed-") as tmp:
        tmp = Path(tmp)
        trees = {"now": paths.CHECKOUT}
        if before:
            trees = {before: export(before, tmp / "before"), **trees}
        console.print("product bench ...")
        runs = {label: products(tree, tmp / f"products-{i}") for i, (label, tree) in enumerate(trees.items())}
        console.print(f"\nProducts of one training step (512-96-96-2, batch {BATCH}, rank {RANK}), mps2-an386:\n")
        console.print("\n".join(product_table(runs)), markup=False)
        data = task_file(tmp / "fan.npz", samples, data_root)
        records = {}
        for i, (label, tree) in enumerate(trees.items()):
            console.print(f"\njobs of {label} ({len(VARIANTS)} variants, {samples} samples, {epochs} epochs; "
                          f"inputs {' and '.join(INPUT_FORMATS)}) ...")
            records[label] = [r for f in INPUT_FORMATS for r in
                              jobs(tree, tmp / f"jobs-{i}-{f}", data, epochs, out / run_name(label, f), f)]
        sizes = [512, *HIDDEN, 2]
        console.print(f"\nFine-tuning by phase ({samples} fan-damage1 samples, {epochs} epochs), mps2-an386:\n")
        console.print("\n".join(method_table(records, sizes)), markup=False)
        if before:
            differ = agreement(records)
            console.print("\nresults (accuracy, losses, MACs) " + (f"DIFFER for {', '.join(differ)}" if differ
                          else f"identical between {before} and now"))
    for f in INPUT_FORMATS:
        console.print(f"report of the jobs ({f} inputs): {write_report(out / run_name('now', f)) / 'report.md'}")


def run_name(label: str, input_format: str) -> str:
    return f"jobs-{label}" + ("" if input_format == "f32" else f"-{input_format}-inputs")
