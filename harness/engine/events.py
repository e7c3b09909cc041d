"""What a board worker tells the sink, in order, on one queue: the only way data leaves a worker."""
from dataclasses import dataclass, field

from harness.plan import Job
from harness.probes import Probe


@dataclass(frozen=True)
class Prepared:
    board: str
    seconds: float
    words: str            # the board in a few words (its kind's describe)
    manifest: dict        # the board's entry in manifest.json


@dataclass(frozen=True)
class Started:
    board: str
    job: Job | Probe


@dataclass(frozen=True)
class Progress:
    board: str
    text: str             # "epoch 3/20", as the board reports it


@dataclass(frozen=True)
class Done:
    board: str
    job: Job | Probe
    record: dict
    traceback: str | None = None  # a harness fault in the job, for run.log


@dataclass(frozen=True)
class Skipped:
    board: str
    job: Job | Probe


@dataclass(frozen=True)
class Finished:
    board: str
    manifest: dict = field(default_factory=dict)  # the board's final entry (repairs made mid-run)


@dataclass(frozen=True)
class Crashed:
    board: str
    traceback: str        # a fault of the harness outside any job: the run stops
