"""The sink: the one writer of a run's records.jsonl and manifest.json while the run lives, and
the one place that prints. A live display with one row per board (its current job and epoch,
jobs done of its queue, errors) over the per-job lines."""
import queue
import time

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness import probes
from harness.engine import events
from harness.rundir import now, write_manifest

POLL_S = 0.2  # how often the sink looks up from the queue (Ctrl-C is seen between looks)


def job_line(i, n, job, rec) -> str:
    """A job's or probe's console line; text from boards and files is escaped, never read as markup."""
    if rec["record_type"] == "probe":
        head = escape(f"[{i:>{len(str(n))}}/{n}] {'probe':<12} {job.name:<21} {job.impl:<5} {job.board:<8} "
                      f"rep {job.repetition}")
    else:
        head = escape(f"[{i:>{len(str(n))}}/{n}] {job.task:<12} {job.shown_variant:<21} {job.impl:<5} {job.board:<8} "
                      f"seed {job.seed}")
    if rec["status"] == "error":
        return f"{head}  [red]error[/]  {escape(rec['error'])}"
    if rec["status"] in ("fail", "unsupported"):
        return f"{head}  [yellow]{rec['status']}[/]   {escape(rec['reason'])}"
    if rec["record_type"] == "probe":
        return f"{head}  [green]ok[/]  {escape(probes.describe(rec['values']))}"
    macs = "" if rec["ft_macs"] is None else f"  {rec['ft_macs'] / 1e6:8.1f} MMAC"  # comparators count none
    return (f"{head}  [green]ok[/]  acc {100 * rec['acc_before']:5.1f}% -> {100 * rec['acc_after']:5.1f}%"
            f"  ft {rec['ft_time_s']:.3f} s{macs}")


class Sink:
    def __init__(self, log, out, manifest: dict, console, title: str, queues: dict):
        self.log, self.out, self.manifest = log, out, manifest
        self.n = sum(map(len, queues.values()))
        self.counts = {"ok": 0, "fail": 0, "unsupported": 0, "error": 0, "skipped": 0}
        self.errors = dict.fromkeys(queues, 0)
        self.running = set(queues)  # boards whose worker has not finished
        self.current = {}           # board -> its running job, as its row shows it
        self.writing = True
        self.progress = Progress(TextColumn("{task.fields[board]}"), BarColumn(bar_width=24), MofNCompleteColumn(),
                                 TextColumn("{task.fields[errors]}"), TextColumn("{task.description}"),
                                 TimeElapsedColumn(), console=console)
        self.total = self.progress.add_task("", total=self.n, board=escape(f"{title} (all boards)"), errors="")
        width = max(map(len, queues))
        self.rows = {name: self.progress.add_task("preparing", total=len(q), board=escape(f"  {name:<{width}}"),
                                                  errors="") for name, q in queues.items()}
        self.console = self.progress.console

    # -- the loop --------------------------------------------------------------------------
    def consume(self, posted: queue.Queue, until: float = float("inf")):
        """Handle events until every worker has finished (or the time.monotonic() `until`)."""
        while self.running and time.monotonic() < until:
            try:
                event = posted.get(timeout=POLL_S)
            except queue.Empty:
                continue
            self.handle(event)

    def drain(self, posted: queue.Queue, writing: bool, within: float) -> set:
        """After an interrupt or a failure: let every worker stop, writing what they still post
        when `writing` (an interrupt; not after the log itself failed); the boards whose worker
        had not finished within `within` seconds."""
        self.writing = writing
        self.consume(posted, time.monotonic() + within)
        return set(self.running)

    def handle(self, event):
        getattr(self, f"_{type(event).__name__.lower()}")(event)

    # -- events ----------------------------------------------------------------------------
    def _prepared(self, e: events.Prepared):
        self._board_manifest(e.board, e.manifest)
        m, name = e.manifest, escape(e.board)
        if m["down"]:
            self.console.print(f"board {name}: [red]unusable[/]: {escape(m['down'])}")
        else:
            sent = ", ".join(f"{kind} {n / 1e3:.1f} kB" for kind, n in sorted(m["bytes_sent"].items())) or "nothing new"
            emulated = m["facts"].get("emulated")
            self.console.print(escape(f"board {e.board}: ready in {e.seconds:.1f} s ({e.words}"
                                      f"{', ' + emulated if emulated else ''}); sent {sent}"))
        for note in m["repaired"]:
            self.console.print(f"board {name}: [yellow]{escape(note)}[/]")
        for impl, why in m["unsupported"].items():
            self.console.print(f"board {name}: [yellow]{impl} unsupported[/]: {escape(why)}")
        self.progress.update(self.rows[e.board], description="")

    def _started(self, e: events.Started):
        self.current[e.board] = escape(e.job.label())
        self.progress.update(self.rows[e.board], description=self.current[e.board])

    def _progress(self, e: events.Progress):
        self.progress.update(self.rows[e.board], description=f"{self.current.get(e.board, '')}  {escape(e.text)}")

    def _done(self, e: events.Done):
        if not self.writing:
            return
        if e.traceback:
            with open(self.out / "run.log", "a") as f:
                f.write(f"{now()} job {e.record['job_id']} on {e.board} ({e.job.impl}):\n{e.traceback}\n")
        self.log.append(e.record)
        status = e.record["status"]
        self.counts[status] += 1
        self.errors[e.board] += status == "error"
        self._advance(e.board)
        self.console.print(job_line(self._finished_jobs(), self.n, e.job, e.record), highlight=False)

    def _skipped(self, e: events.Skipped):
        self.counts["skipped"] += 1
        self._advance(e.board)

    def _finished(self, e: events.Finished):
        self.running.discard(e.board)
        if e.manifest and self.writing:
            self._board_manifest(e.board, e.manifest)
        self.progress.update(self.rows[e.board], description="done")

    def _crashed(self, e: events.Crashed):
        with open(self.out / "run.log", "a") as f:
            f.write(f"{now()} board {e.board}: the harness failed:\n{e.traceback}\n")
        raise RuntimeError(f"board {e.board}: the harness failed ({e.traceback.strip().splitlines()[-1]}; "
                           f"traceback in {self.out / 'run.log'})")

    # -- helpers ---------------------------------------------------------------------------
    def _finished_jobs(self) -> int:
        return sum(self.counts.values())

    def _advance(self, board: str):
        self.progress.advance(self.rows[board])
        self.progress.advance(self.total)
        errors = self.errors[board]
        self.progress.update(self.rows[board], errors=f"[red]{errors} errors[/]" if errors else "")

    def _board_manifest(self, board: str, entry: dict):
        self.manifest["boards"][board] = entry
        self.manifest["updated"] = now()
        write_manifest(self.out, self.manifest)
