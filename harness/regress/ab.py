"""`skip2bench ab --base REV --new REV`: two revisions of skip2bench (harness, runners, firmware)
run the same experiment on the same boards, interleaved, then compared: the honest way to gate
times on a machine whose speed drifts, since each round runs both within seconds.

Each revision is exported into a tree of its own (or "." for this checkout as it is), whose own
harness runs the experiment and builds its own runners and firmware (the build caches are keyed
by source hash, so unchanged sources build once). Round k runs one whole run of each revision,
in the order base, new on even rounds and new, base on odd ones, so a drift hits both alike;
every round's run is a run directory of its own under OUT, and the comparison reads each
revision's rounds together (no normalisation: both sides are one session).
"""
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

from rich.markup import escape

from harness import paths
from harness.errors import UserError
from harness.regress import compare as cmp
from harness.revisions import export
from harness.tasks import default_data_root


def tree(ref: str, into: Path) -> Path:
    if ref == ".":
        if paths.CHECKOUT is None:
            raise UserError("--base/--new .: this skip2bench is not a checkout; name git revisions")
        return paths.CHECKOUT
    return into if into.is_dir() else export(ref, into)


def run_rounds(refs: dict, experiment: Path, lab: Path, rounds: int, out: Path, console) -> dict:
    """label -> the run directories of its rounds."""
    trees = {label: tree(ref, out / "trees" / label) for label, ref in refs.items()}
    data = str(default_data_root())  # an exported tree has no data beside it
    runs = {label: [] for label in refs}
    for k in range(rounds):
        for label in (list(refs) if k % 2 == 0 else list(refs)[::-1]):
            run_dir = out / f"{label}-round{k}"
            resume = ["--resume"] if (run_dir / "manifest.json").is_file() else []
            console.print(f"round {k + 1}/{rounds}: {label} ({escape(refs[label])}) ...")
            done = subprocess.run([sys.executable, "-m", "harness", "run", "-e", str(experiment.resolve()),
                                   "-l", str(lab.resolve()), "-o", str(run_dir), "--no-report", *resume],
                                  cwd=trees[label], capture_output=True, text=True,
                                  env=dict(os.environ, SKIP2BENCH_DATA=data, SKIP2BENCH_REVISION=refs[label]))
            if done.returncode != 0:
                tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
                raise UserError(f"the {label} revision {refs[label]} failed in round {k + 1} ({run_dir}): "
                                f"{' / '.join(tail)}; fix it, then run the same ab command again (finished "
                                f"rounds are kept)")
            runs[label].append(run_dir)
    return runs


def ab(base: str, new: str, experiment: Path, lab: Path, rounds: int, out: Path, options: cmp.Options, console):
    """Both revisions' rounds, and their comparison: (table, base side, new side)."""
    runs = run_rounds({"base": base, "new": new}, experiment, lab, rounds, out, console)
    sides = [cmp.Side.read(f"{label} {ref}", runs[label]) for label, ref in (("base", base), ("new", new))]
    table = cmp.compare(*sides, dataclasses.replace(options, normalise=False))
    return table, *sides
