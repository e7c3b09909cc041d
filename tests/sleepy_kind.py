"""A board kind for tests only: its jobs take `job_s` seconds of sleep, not of CPU, and return the
result the local board's C runner gave for the same job (run once per job, on first need, on one
reference board shared by every sleepy board). A lab of many such boards measures the engine's
scheduling, not this 2-core machine. Registered by the tests that use it (monkeypatch on
harness.kinds.KINDS), so no other test sees it.
"""
import json
import threading
import time
from typing import Literal, Optional

from pydantic import Field

from harness import stop
from harness.boards import BoardBase, LocalBoard
from harness.errors import TargetError
from harness.kinds import BoardKind
from harness.targets import facts as board_facts


# Set when a deaf board's job begins (the test stops the run from then on).
DEAF_JOB_STARTED = threading.Event()


class SleepyBoard(BoardBase):
    transport: Literal["sleepy"]
    impls: list[Literal["c"]] = ["c"]
    job_s: float = Field(gt=0)
    # The board goes down after this many jobs: every later job is an error (a fault test).
    down_after: Optional[int] = None
    # Its jobs do not see a stop (as a wait on a board that no slice reaches): a fault test.
    deaf: bool = False


class Reference:
    """The local board's C runner, one target per backbone, shared by every sleepy board."""

    def __init__(self, cache_dir):
        self.cache_dir, self.lock = cache_dir, threading.Lock()
        self.targets, self.results = {}, {}

    def result(self, job: dict, artifacts, name: str):
        key = json.dumps({k: v for k, v in job.items() if k != "token"}, sort_keys=True) + artifacts.weights_sha256
        with self.lock:
            if key not in self.results:
                from harness.targets.posix import PosixTarget
                from harness.transports.host import HostShell
                target = self.targets.get(artifacts.weights_sha256)
                if target is None:
                    board = LocalBoard(name="sleepy-reference", transport="local", impls=["c"], exclusive=False)
                    target = self.targets[artifacts.weights_sha256] = PosixTarget(board, HostShell(), "reference",
                                                                                 self.cache_dir)
                    target.prepare(["c"], [artifacts])
                self.results[key] = target.run_job(job, "c", artifacts, name)
            return self.results[key]

    def close(self):
        for target in self.targets.values():
            target.close()


class SleepyTarget:
    on_progress = None

    def __init__(self, board, reference: Reference, intervals: list):
        self.board, self.reference, self.intervals = board, reference, intervals
        self.down, self.unsupported, self.repaired, self.sent = None, {}, [], {}
        self.facts = {"kind": "sleepy", "job_s": board.job_s}
        self.fingerprint = board_facts.fingerprint(self.facts)
        self.runner_sha256, self.jobs = {}, 0

    def prepare(self, impls, artifacts):
        pass

    def run_job(self, job: dict, impl: str, artifacts, name: str):
        if self.board.down_after is not None and self.jobs >= self.board.down_after:
            self.down = self.down or f"board {self.board.name} went down after {self.jobs} jobs"
            raise TargetError(self.down)
        self.jobs += 1
        if self.board.deaf:
            DEAF_JOB_STARTED.set()
            time.sleep(self.board.job_s)
        result = self.reference.result(job, artifacts, name)
        start = time.monotonic()
        for i in range(job["epochs"]):  # as a board reports its epochs
            stop.sleep(self.board.job_s / job["epochs"])
            if self.on_progress:
                self.on_progress(f"epoch {i + 1}/{job['epochs']}")
        self.intervals.append((self.board.name, start, time.monotonic()))
        return result

    def close(self):
        pass


def kind(reference: Reference, intervals: list) -> BoardKind:
    """The sleepy kind, its targets sharing `reference` and appending (board, start, end) of every
    job's sleep to `intervals`."""
    return BoardKind("sleepy", SleepyBoard, lambda board, run_id, cache_dir, lab: SleepyTarget(board, reference, intervals),
                     probe=lambda board, cache_dir: {"board": board.name, "ok": True, "why": ""},
                     describe=lambda facts: f"sleeps {facts['job_s']:g} s a job", on_this_host=lambda board: False)
