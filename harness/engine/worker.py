"""A board worker: one thread that owns one board's target for the run (open, prepare with the
board lock, its queue of jobs one at a time, close) and posts what happens to the sink."""
import threading
import time
import traceback

from harness import kinds, probes, stop
from harness.checks import result_problem
from harness.engine import events
from harness.errors import JobUnsupported, TargetError
from harness.plan import job_id, runner_job
from harness.records import finished, record_key
from harness.rundir import now
from harness.schema import SCHEMA_VERSION, flatten


def identity(run_id, job, exp, art, hp) -> dict:
    """What a record is about: the job, where it ran, its settings and its inputs' hashes."""
    return {"record_type": "job", "run_id": run_id,
            "job_id": job_id(art.model_key, job.variant, hp), "task": job.task,
            "variant": job.variant, "impl": job.impl, "board": job.board, "repetition": job.repetition,
            **job.fields(), **hp.model_dump(),
            "hidden": "-".join(map(str, exp.model.hidden)), "sizes": probes.model_name(art.sizes),
            "model_key": art.model_key,
            "weights_sha256": art.weights_sha256, "data_sha256": art.data_sha256}


def execute(target, job, hp, art, rec) -> tuple[dict, str | None]:
    """The outcome fields of one job's record on a prepared target, and a traceback when the
    harness itself failed. Whatever goes wrong in one job is that job's error: no reply can end
    the run."""
    if job.impl in target.unsupported:
        return {"status": "unsupported", "reason": target.unsupported[job.impl], "error": None}, None
    fields = runner_job(job, hp)
    try:
        result = target.run_job(fields, job.impl, art, f"{rec['job_id']}-{job.board}-{job.impl}-r{job.repetition}")
        problem = result_problem(result, job.variant, fields, art.sizes, art.n_ft, art.n_test)
        if problem:
            return {"status": "error", "error": f"{job.impl} runner on {job.board}: {problem}", "stderr_tail": None}, None
        return {"error": None, "stderr_tail": None, **flatten(result)}, None
    except JobUnsupported as e:
        return {"status": "unsupported", "reason": str(e), "error": None}, None
    except TargetError as e:
        return {"status": "error", "error": str(e), "stderr_tail": e.stderr_tail}, None
    except Exception as e:
        return ({"status": "error", "error": f"{type(e).__name__}: {e} (traceback in run.log)", "stderr_tail": None},
                traceback.format_exc())


def item_identity(run, item) -> dict:
    """A queue item's record so far: its identity, a job's or a probe's."""
    if isinstance(item, probes.Probe):
        return probes.identity(run.run_id, item, probes.workload(item, run.exp, run.artifacts))
    return identity(run.run_id, item, run.exp, run.artifacts[item.backbone], item.hp(run.exp.finetune))


def stamped(rec: dict, board, fingerprint: str | None) -> dict:
    """The record's fields of when and where it ran, before its outcome."""
    return {**rec, "schema_version": SCHEMA_VERSION, "started_at": now(), "board_fingerprint": fingerprint,
            "board_kind": board.transport}


def lost(run, board, item, why: str) -> dict:
    """The record of an item whose board worker was lost before it ended: an error, which --resume runs again."""
    return {**stamped(item_identity(run, item), board, None), "status": "error", "error": why, "stderr_tail": None,
            "wall_s": 0.0}


def board_manifest(target) -> dict:
    return {"facts": target.facts, "fingerprint": target.fingerprint, "down": target.down,
            "unsupported": target.unsupported, "runner_sha256": target.runner_sha256,
            "bytes_sent": dict(target.sent), "repaired": list(target.repaired)}


class BoardWorker(threading.Thread):
    def __init__(self, board, queue: list, run, turns, stopping: threading.Event, post):
        super().__init__(name=f"board {board.name}", daemon=True)
        self.board, self.queue, self.run_, self.turns = board, queue, run, turns
        self.stopping, self.post = stopping, post

    def run(self):
        stop.bind(self.stopping)
        target = None
        try:
            target = kinds.open_target(self.board, self.run_.run_id, self.run_.cache, self.run_.lab)
            self._prepare(target)
            self._jobs(target)
        except stop.Stopped:
            pass
        except BaseException:
            self.post(events.Crashed(self.board.name, traceback.format_exc()))
        finally:
            final = board_manifest(target) if target is not None else {}
            try:
                if target is not None:
                    target.close()  # its lock released, its sessions ended (failures are said there)
            finally:
                self.post(events.Finished(self.board.name, final))

    def _prepare(self, target):
        """Deploy, build and probe the board before its first job (lock taken here), in the CPU
        group's turn: a build beside another board's job would slow that job."""
        r = self.run_
        target.on_progress = lambda text: self.post(events.Progress(self.board.name, text))
        with self.turns.turn():
            t0 = time.perf_counter()
            target.prepare(list(dict.fromkeys(j.impl for j in self.queue)),
                           [r.artifacts[key] for key in dict.fromkeys(j.backbone for j in self.queue) if key])
        words = "" if target.down else kinds.of(self.board).describe(target.facts)
        self.post(events.Prepared(self.board.name, time.perf_counter() - t0, words, board_manifest(target)))

    def _jobs(self, target):
        r = self.run_
        done = {record_key(rec) for rec in r.previous.get(self.board.name, []) if finished(rec, target.fingerprint)}
        for job in self.queue:
            stop.check()
            rec = item_identity(r, job)
            if record_key(rec) in done:
                self.post(events.Skipped(self.board.name, job))
                continue
            with self.turns.turn():
                self.post(events.Started(self.board.name, job))
                rec = stamped(rec, self.board, target.fingerprint)
                t0 = time.perf_counter()
                outcome, trace = self._execute(target, job, rec)
                rec.update(outcome, wall_s=time.perf_counter() - t0)
            self.post(events.Done(self.board.name, job, rec, trace))

    def _execute(self, target, item, rec) -> tuple[dict, str | None]:
        """Run a queue item, a job or a probe: its outcome fields, and a traceback of a harness fault."""
        r = self.run_
        if isinstance(item, probes.Probe):
            microcontroller = kinds.of(self.board).microcontroller
            return probes.execute(target, item, rec["workload"], microcontroller), None
        return execute(target, item, item.hp(r.exp.finetune), r.artifacts[item.backbone], rec)
