"""A runner session reports each finished epoch while its job runs: jobs through a PosixTarget on
the local board, with the real NumPy and C sessions, show "epoch n/N" as they go, as an MCU's do,
and their results are those the stand-alone runner gives. (Progress lines that are not the job's
are refused as a foreign reply: tests/test_hostile.py.)"""
import json
import subprocess

import pytest

from conftest import full_job, require_tool, write_runner_files
from harness.boards import LocalBoard
from harness.checks import result_problem
from harness.kinds import open_target

SIZES = [12, 10, 8, 4]
N_FT, N_TEST = 40, 20
# Deterministic result fields: a run in a session and one outside it must agree on each.
SAME = ("status", "reason", "acc_before", "acc_after", "epoch_loss", "n_ft", "n_test", "ft_macs",
        "trainable_params", "cache_capacity_samples", "cache_hits", "cache_misses", "cache_hit_rate", "mem")
JOBS = {  # name: (variant, job fields, epochs it runs, of its epochs)
    "lora-all": ("lora-all", dict(method="lora-all", epochs=3), 3, 3),
    "oselm-head": ("oselm-head+cache", dict(method="oselm-head", cache=True, oselm_passes=2), 2, 2),
    "diverges": ("ft-all", dict(method="ft-all", epochs=4, lr=1e30), 1, 4),  # stops after its first epoch
}


class Artifacts:  # what run_job reads of harness.artifacts.Artifacts
    n_layers = len(SIZES) - 1

    def __init__(self, root):
        self.model_dir, self.data_dir = root / "model", root / "data"


@pytest.fixture(scope="module", params=["numpy", "c"])
def target(request, tmp_path_factory):
    if request.param == "c":
        require_tool("cc")
    root = tmp_path_factory.mktemp(f"progress-{request.param}")
    art = Artifacts(write_runner_files(root, SIZES, N_FT, N_TEST, seed=3))
    board = LocalBoard(name="host", transport="local", impls=[request.param], work_root=str(root / "board"),
                       exclusive=False)
    t = open_target(board, "progress", root / "cache")
    t.prepare([request.param], [art])
    assert t.down is None and not t.unsupported, (t.down, t.unsupported)
    yield t, request.param, art
    t.close()


@pytest.mark.parametrize("name", JOBS)
def test_a_session_reports_every_epoch_and_the_same_result(target, name):
    t, impl, art = target
    variant, fields, epochs, of = JOBS[name]
    job = full_job(batch_size=8, rank=2, seed=1, **fields)
    shown = []
    t.on_progress = shown.append
    result = t.run_job(job, impl, art, name)
    assert shown == [f"epoch {n}/{of}" for n in range(1, epochs + 1)]
    assert result.status == ("fail" if name == "diverges" else "ok") and len(result.epoch_loss) == epochs
    assert result_problem(result, variant, job, SIZES, N_FT, N_TEST) is None

    # The same job by the stand-alone runner (no session, no progress), in the folder the session
    # ran it in: the same numbers, and its stdout is the result alone.
    jobdir = f"{t.root}/jobs/progress/{name}"
    alone = subprocess.run(f"{t.commands[impl]} {jobdir}", shell=True, capture_output=True, text=True, timeout=120)
    assert alone.returncode == 0, alone.stderr
    (line,) = alone.stdout.splitlines()
    ref, got = json.loads(line), result.model_dump()
    assert {k: got[k] for k in SAME} == {k: ref[k] for k in SAME}
    assert got["epoch_times_s"] and len(got["epoch_times_s"]) == len(ref["epoch_times_s"])
