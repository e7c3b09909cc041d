"""The run engine (docs/targets.md, "How a run runs"): one direction of data.

The scheduler (schedule.py) gives every board its queue; one worker per board (worker.py), each
on a thread of its own, owns that board's target for the run and runs its queue one job at a
time, boards of one CPU group taking turns; every worker posts what happens (events.py) on one
queue to the sink (sink.py), which alone writes records and the manifest and prints. Ctrl-C or
SIGTERM reaches the sink (the main thread): it sets the workers' stop flag (harness.stop), every
worker ends its job (its runner stopped) and closes its board, and the records already posted
are written before the interrupt goes on; a board that has not stopped within STOP_GRACE_S is
named, its worker's stack written to run.log, and left (a runner left there is stopped when the
next run takes the board). With --dask the board workers run on the Dask workers
that have the boards, and threads here relay their events to the same sink (remote.py).
"""
import queue
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

from rich.markup import escape

from harness import kinds
from harness.errors import UserError
from harness.engine.schedule import Turns, queues
from harness.engine.sink import Sink
from harness.engine.worker import BoardWorker
from harness.rundir import now

# How long a stopped run waits for its boards to end their jobs and close them (a runner's kill
# takes 3 s at most, a session's close 5 s).
STOP_GRACE_S = 30


@dataclass(frozen=True)
class RunContext:
    """What every worker reads and none changes."""
    run_id: str
    exp: object
    lab: object
    artifacts: dict       # (task, seed) -> harness.artifacts.Artifacts
    cache: Path
    previous: dict        # board -> its records in the log when the run started


def run(context: RunContext, jobs: list, log, out: Path, manifest: dict, console, dask_lab=None) -> dict:
    """Run `jobs` (plan.expand's) on the lab's boards, each board's worker here or, given a
    remote.DaskLab, on the Dask worker that has the board; the counts of each status and of
    skipped jobs."""
    by_board = queues(context.exp, jobs)
    worker = dask_lab.worker if dask_lab else BoardWorker
    boards = {b.name: b for b in context.lab.boards}
    # Boards paired with a reference take turns with it, whatever their processors.
    group = {name: "reference" if context.exp.reference else kinds.cpu_group(boards[name]) for name in by_board}
    turns = {g: Turns(g) for g in set(group.values())}
    posted, stopping = queue.Queue(), threading.Event()
    sink = Sink(log, out, manifest, console, context.exp.name, by_board)
    workers = [worker(boards[name], q, context, turns[group[name]], stopping, posted.put)
               for name, q in by_board.items()]
    with sink.progress:
        try:  # (a Ctrl-C while the workers start stops those started, too)
            for worker in workers:
                worker.start()
            sink.consume(posted)
        except BaseException as e:
            stopping.set()
            # What the workers still post is written, unless writing is what failed.
            stuck = sink.drain(posted, writing=not isinstance(e, UserError), within=STOP_GRACE_S)
            _left(stuck, workers, out, sink.console)
            raise
    for worker in workers:
        worker.join()
    return sink.counts


def _left(boards: set, workers: list, out: Path, console):
    """Name the boards that did not stop in time, with their workers' stacks in run.log."""
    frames = sys._current_frames()
    for worker in workers:
        if worker.board.name in boards and worker.ident in frames:
            with open(out / "run.log", "a") as f:
                f.write(f"{now()} board {worker.board.name} did not stop within {STOP_GRACE_S} s; its worker was at:\n"
                        + "".join(traceback.format_stack(frames[worker.ident])) + "\n")
            console.print(f"board {escape(worker.board.name)}: [red]did not stop within {STOP_GRACE_S} s[/] (where it "
                          f"was waiting: {escape(str(out / 'run.log'))}); a runner left on it is stopped when the next "
                          f"run takes the board")


def previous_records(log) -> dict:
    """The log's records by board, for the workers' --resume decisions."""
    by_board = {}
    for rec in log.read():
        by_board.setdefault(rec["board"], []).append(rec)
    return by_board
