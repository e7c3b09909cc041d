"""Board workers on Dask distributed: `skip2bench run --dask ADDRESS` (README, "A lab across
several hosts"). Imported only then: a run without --dask never imports Dask.

Each board's worker (worker.BoardWorker, unchanged) runs inside a Dask actor, BoardActor, placed
on the Dask worker that declares the board as a resource (`dask worker ADDRESS --resources
board-NAME=1`, on the machine the board is cabled to). A Dask worker runs its actors' methods
one at a time on one thread, so the actor's methods only hand over and return: the board's work
runs on a thread of its own, its events wait in the actor until the host polls them, and a stop
(Ctrl-C, a fatal error) is one more short call that never queues behind a job.

On the submitting host, one DaskBoard thread per board stands where the local worker would: it
ships the board's artifacts the worker's cache lacks (by content hash, so no file system is
shared), starts the actor, and relays its events to the one sink. When the Dask worker is lost,
every job of its board that had not ended gets an error record naming the loss; `--resume` with
the worker back runs them.
"""
import dataclasses
import queue
import socket
import threading
import time
import uuid
from pathlib import Path

import distributed

from harness import artifacts as cached, kinds, paths
from harness.engine import events
from harness.engine.schedule import Turns
from harness.engine.worker import BoardWorker, lost
from harness.errors import UserError
from harness.hashing import sha256_tree

POLL_S = 0.2        # how often the host asks an actor for its events
CALL_S = 60         # an actor call that takes longer: its Dask worker is gone
CONNECT_S = 10


def resource(board: str) -> str:
    """The Dask resource that places a board's worker: the Dask worker declaring it has the board."""
    return f"board-{board}"


def sources_sha256() -> str:
    """The harness and the board-side sources (runners, firmware) this process would run."""
    harness = Path(__file__).resolve().parents[1]
    files = {f"harness/{p.relative_to(harness)}": p for p in harness.rglob("*.py") if "data" not in p.parts}
    files.update({f"targets/{p.relative_to(paths.TARGETS)}": p for p in paths.TARGETS.rglob("*")
                  if p.is_file() and not {"build", "__pycache__"} & set(p.parts)})
    return sha256_tree(files)


# -- on the Dask worker -----------------------------------------------------------------------
_turns: dict = {}             # (run, CPU group) -> Turns, shared by the actors of this process
_turns_lock = threading.Lock()


def _local_turns(run_id: str, group: str) -> Turns:
    """A CPU group's turns among the boards of this Dask worker; this host's group is this
    machine's, wherever the submitting host is."""
    if group == kinds.THIS_HOST:
        group = f"{group}@{socket.gethostname()}"
    with _turns_lock:
        return _turns.setdefault((run_id, group), Turns(group))


class BoardActor:
    """One board's worker on the Dask worker that has the board; its cache folder is that
    worker's own (paths.cache_dir(): SKIP2BENCH_CACHE or the user cache)."""

    def __init__(self, board, work: list, context, group: str, sources: str):
        if sources != sources_sha256():
            raise UserError(f"the Dask worker of board {board.name} ({socket.gethostname()}) runs other skip2bench "
                            f"sources than the submitting host; install the same skip2bench on both")
        self.board, self.work, self.group = board, work, group
        self.cache = paths.cache_dir()
        self.context = dataclasses.replace(context, cache=self.cache, artifacts={
            key: dataclasses.replace(art, model_dir=self.cache / _entry(art.model_dir),
                                     data_dir=self.cache / _entry(art.data_dir))
            for key, art in context.artifacts.items()})
        self.events, self.stopping, self.thread = queue.Queue(), threading.Event(), None

    def lacking(self, entries: dict) -> list:
        """The cache entries (name -> their files' hashes) this worker has not got intact."""
        return [name for name, hashes in entries.items() if not cached.holds(self.cache / name, hashes)]

    def receive(self, name: str, files: dict, hashes: dict):
        cached.publish(self.cache / name, files, hashes)

    def start(self):
        self.thread = BoardWorker(self.board, self.work, self.context, _local_turns(self.context.run_id, self.group),
                                  self.stopping, self.events.put)
        self.thread.start()

    def poll(self) -> list:
        """The events posted since the last poll."""
        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out

    def stop(self):
        self.stopping.set()


def _entry(path: Path) -> str:
    """A cache entry's name under the cache folder: "models/<key>", "data/<hash>"."""
    return f"{path.parent.name}/{path.name}"


# -- on the submitting host -------------------------------------------------------------------
class DaskLab:
    """The Dask cluster of one run: its client, and a DaskBoard per board."""

    def __init__(self, address: str, boards: list):
        self.address = address
        try:
            self.client = distributed.Client(address, timeout=CONNECT_S, set_as_default=False)
        except (OSError, TimeoutError) as e:
            raise UserError(f"--dask {address}: no Dask scheduler answers ({e}); start one with "
                            f"`dask scheduler` and give its address") from None
        declared = {name for w in self.client.scheduler_info(n_workers=-1)["workers"].values()
                    for name in w.get("resources", {})}
        missing = [b for b in boards if resource(b) not in declared]
        if missing:
            self.client.close()
            raise UserError(f"--dask {address}: no Dask worker declares {', '.join(map(resource, missing))}; on the "
                            f"machine of each board start `dask worker {address} --resources \"{resource(missing[0])}=1\"`")
        self.sources = sources_sha256()

    def worker(self, board, work: list, context, turns: Turns, stopping: threading.Event, post):
        return DaskBoard(self, board, work, context, turns.name, stopping, post)

    def close(self):
        self.client.close()


class DaskBoard(threading.Thread):
    """On the submitting host, where a local board worker would be: relays one remote board."""

    def __init__(self, lab: DaskLab, board, work: list, context, group: str, stopping, post):
        super().__init__(name=f"board {board.name} on Dask", daemon=True)
        self.lab, self.board, self.work, self.context = lab, board, work, context
        self.group, self.stopping, self.post = group, stopping, post
        self.ended = []       # the queue items whose record (or skip) the actor posted
        self.future = None    # the actor's

    def run(self):
        try:
            with self.lab.client.as_current():  # the actor's handle calls through this client
                self._relay(self._start())
        except Exception as e:  # the Dask worker, or the scheduler, is gone; or the actor refused
            why = str(e) if isinstance(e, UserError) else \
                f"the Dask worker of board {self.board.name} was lost: {type(e).__name__}: {e}"
            for item in self.work:
                if item not in self.ended:
                    self.post(events.Done(self.board.name, item, lost(self.context, self.board, item, why)))
            self.post(events.Finished(self.board.name))
        finally:
            if self.future is not None:
                self.future.release()  # the actor goes with it

    def _start(self):
        """The board's actor on the Dask worker that has the board, its artifacts shipped, started."""
        self.future = self.lab.client.submit(BoardActor, self.board, self.work, self.context, self.group,
                                        self.lab.sources, actor=True, resources={resource(self.board.name): 1},
                                        key=f"skip2bench-{self.board.name}-{uuid.uuid4().hex[:8]}")
        actor = self.future.result(timeout=CALL_S)
        self._ship(actor)
        actor.start().result(timeout=CALL_S)
        return actor

    def _ship(self, actor):
        """The board's artifacts (model, data) into the worker's cache, by content hash."""
        keys = dict.fromkeys(item.backbone for item in self.work if item.backbone)
        entries = {}
        for key in keys:
            art = self.context.artifacts[key]
            entries.update({_entry(d): cached.hashes(d) for d in (art.model_dir, art.data_dir)})
        for name in actor.lacking(entries).result(timeout=CALL_S):
            folder = self.context.cache / name
            files = {f: (folder / f).read_bytes() for f in entries[name]}
            actor.receive(name, files, entries[name]).result(timeout=CALL_S)

    def _relay(self, actor):
        stopped = False
        while True:
            if self.stopping.is_set() and not stopped:
                actor.stop().result(timeout=CALL_S)
                stopped = True
            for event in actor.poll().result(timeout=CALL_S):
                if isinstance(event, (events.Done, events.Skipped)):
                    self.ended.append(event.job)
                self.post(event)
                if isinstance(event, events.Finished):
                    return
            time.sleep(POLL_S)
