"""`skip2bench run`: expand the job matrix, ship matched jobs to every board, append records."""
import time
import traceback
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness import paths
from harness.artifacts import prepare
from harness.boards import public
from harness.checks import result_problem
from harness.config import load_experiment, load_lab
from harness.errors import JobUnsupported, TargetError, UserError
from harness.plan import expand, job_id, runner_job
from harness.provenance import git_state, host_facts, library_versions, shown_path
from harness.records import RecordLog, record_key
from harness.rundir import RunLock, check_resume, new_dir, now, prepare_out_dir, read_manifest, write_manifest
from harness.schema import SCHEMA_VERSION, flatten
from harness.targets import open_target
from harness.tasks import load_task
from harness.work import check_job_memory


def _job_line(i, n, job, rec) -> str:
    """A job's console line; text from boards and files is escaped, never read as markup."""
    head = escape(f"[{i:>{len(str(n))}}/{n}] {job.task:<12} {job.variant:<21} {job.impl:<5} {job.board:<8} "
                  f"seed {job.seed}")
    if rec["status"] == "error":
        return f"{head}  [red]error[/]  {escape(rec['error'])}"
    if rec["status"] in ("fail", "unsupported"):
        return f"{head}  [yellow]{rec['status']}[/]   {escape(rec['reason'])}"
    return (f"{head}  [green]ok[/]  acc {100 * rec['acc_before']:5.1f}% -> {100 * rec['acc_after']:5.1f}%"
            f"  ft {rec['ft_time_s']:.3f} s  {rec['ft_macs'] / 1e6:8.1f} MMAC")


def _identity(run_id, job, exp, art, hp) -> dict:
    """What a record is about: the job, where it ran, its settings and its inputs' hashes."""
    return {"schema_version": SCHEMA_VERSION, "run_id": run_id,
            "job_id": job_id(art.model_key, job.variant, hp), "task": job.task,
            "variant": job.variant, "impl": job.impl, "board": job.board, "repetition": job.repetition,
            **job.fields(), **hp.model_dump(),
            "hidden": "-".join(map(str, exp.model.hidden)), "model_key": art.model_key,
            "weights_sha256": art.weights_sha256, "data_sha256": art.data_sha256}


def _execute(target, job, hp, art, rec, run_log: Path) -> dict:
    """The outcome fields of one job's record on a prepared target. Whatever goes wrong in one
    job is that job's error (the traceback goes to run.log): no reply can end the run."""
    if job.impl in target.unsupported:
        return {"status": "unsupported", "reason": target.unsupported[job.impl], "error": None}
    fields = runner_job(job, hp)
    try:
        result = target.run_job(fields, job.impl, art, f"{rec['job_id']}-{job.board}-{job.impl}-r{job.repetition}")
        problem = result_problem(result, job.variant, fields, art.sizes, art.n_ft, art.n_test)
        if problem:
            return {"status": "error", "error": f"{job.impl} runner on {job.board}: {problem}", "stderr_tail": None}
        return {"error": None, "stderr_tail": None, **flatten(result)}
    except JobUnsupported as e:
        return {"status": "unsupported", "reason": str(e), "error": None}
    except TargetError as e:
        return {"status": "error", "error": str(e), "stderr_tail": e.stderr_tail}
    except Exception as e:
        with open(run_log, "a") as f:
            f.write(f"{now()} job {rec['job_id']} on {job.board} ({job.impl}):\n{traceback.format_exc()}\n")
        return {"status": "error", "error": f"{type(e).__name__}: {e} (traceback in {run_log.name})",
                "stderr_tail": None}


def _run_jobs(jobs, exp, artifacts, targets, log, run_id, console) -> dict:
    """Run every job not already finished in the log, appending one record per job."""
    done = log.finished_keys({name: t.fingerprint for name, t in targets.items()})
    counts = {"ok": 0, "fail": 0, "unsupported": 0, "error": 0, "skipped": 0}
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console)
    with progress:
        bar = progress.add_task(exp.name, total=len(jobs))
        for i, job in enumerate(jobs, start=1):
            art = artifacts[job.task, job.seed]
            hp = exp.finetune.for_variant(job.variant)
            rec = _identity(run_id, job, exp, art, hp)
            if record_key(rec) in done:
                counts["skipped"] += 1
                progress.advance(bar)
                continue
            target = targets[job.board]
            rec.update(started_at=now(), board_fingerprint=target.fingerprint)
            # A board that reports epochs as it goes (an MCU) shows them on the bar: an hour-long
            # emulated job does not look frozen.
            target.on_progress = lambda text, job=job: progress.update(
                bar, description=escape(f"{exp.name}: {job.board} {job.variant} {text}"))
            t0 = time.perf_counter()
            rec.update(_execute(target, job, hp, art, rec, log.path.parent / "run.log"))
            rec["wall_s"] = time.perf_counter() - t0
            progress.update(bar, description=exp.name)
            log.append(rec)
            counts[rec["status"]] += 1
            progress.console.print(_job_line(i, len(jobs), job, rec), highlight=False)
            progress.advance(bar)
    return counts


def run_experiment(experiment: Path, lab_file: Path, out: Path | None, resume: bool,
                   data_root: Path | None, console: Console) -> tuple[Path, dict]:
    exp, lab = load_experiment(experiment), load_lab(lab_file)
    cache = paths.cache_dir()
    # Every data set is found before anything is written, so bad input leaves no trace.
    datasets = {task: load_task(task, data_root=data_root, cache_dir=cache, spec=exp.task_spec(task))
                for task in exp.tasks}
    try:
        jobs = expand(exp, lab)
        check_job_memory(exp, datasets)
    except UserError as e:  # name the file the fix goes into
        raise UserError(f"{experiment}: {e}") from None
    out = prepare_out_dir(Path(out), resume) if out else new_dir(exp.name)
    lock = RunLock(out, f"skip2bench run -e {shown_path(experiment)} -l {shown_path(lab_file)}")
    try:
        return _run_locked(exp, lab, jobs, datasets, experiment, lab_file, out, resume, cache, console)
    finally:
        lock.release()


def _run_locked(exp, lab, jobs, datasets, experiment, lab_file, out, resume, cache, console):
    lab_shown = {"name": lab.name, "boards": [public(b) for b in lab.boards]}
    old = read_manifest(out) if resume else {}
    if resume:
        check_resume(out, old, exp.model_dump(mode="json"), lab_shown)
    log = RecordLog(out / "records.jsonl")
    log.drop_incomplete_tail()
    run_id = old.get("run_id", out.name)

    artifacts = {}
    for task, data in datasets.items():
        for seed in exp.seeds:
            t0 = time.perf_counter()
            art = prepare(data, seed, exp.model, exp.pretrain, cache)
            artifacts[task, seed] = art
            for note in art.repaired:
                console.print(f"[yellow]{escape(note)}[/]")
            console.print(f"backbone {task} seed {seed}: {art.weights_sha256[:12]}  source accuracy "
                          f"{100 * art.pretrain_acc:.1f}%  ({time.perf_counter() - t0:.1f} s)")

    boards = {b.name: b for b in lab.boards}
    targets = {name: open_target(boards[name], run_id, cache, lab) for name in dict.fromkeys(j.board for j in jobs)}
    try:
        for name, target in targets.items():
            _prepare_board(target, jobs, artifacts, console)
        manifest = {
            "run_id": run_id, "created": old.get("created", now()), "updated": now(),
            "command": {"experiment": shown_path(experiment, out), "lab": shown_path(lab_file, out), "resume": resume},
            "git": git_state(), "host": host_facts(), "versions": library_versions(),
            "experiment": exp.model_dump(mode="json"), "lab": lab_shown,
            "boards": {name: _board_manifest(t) for name, t in targets.items()},
            "data": {t: artifacts[t, exp.seeds[0]].data_sha256 for t in exp.tasks},
            "models": {f"{t}/{s}": a.weights_sha256 for (t, s), a in artifacts.items()},
            "pretrain_acc": {f"{t}/{s}": a.pretrain_acc for (t, s), a in artifacts.items()},
        }
        write_manifest(out, manifest)
        counts = _run_jobs(jobs, exp, artifacts, targets, log, run_id, console)
    finally:
        for t in targets.values():
            t.close()
    manifest.update(updated=now(), counts=counts)
    write_manifest(out, manifest)
    console.print(", ".join(f"{n} {k}" for k, n in counts.items() if k != "skipped")
                  + f", {counts['skipped']} already done; records: {log.path}")
    return out, counts


def _prepare_board(target, jobs, artifacts, console):
    """Deploy, build and probe one board before any job, and say what it took."""
    mine = [j for j in jobs if j.board == target.board.name]
    t0 = time.perf_counter()
    target.prepare(list(dict.fromkeys(j.impl for j in mine)),
                   [artifacts[key] for key in dict.fromkeys((j.task, j.seed) for j in mine)])
    name = target.board.name
    if target.down:
        console.print(f"board {escape(name)}: [red]unusable[/]: {escape(target.down)}")
        return
    sent = ", ".join(f"{kind} {n / 1e3:.1f} kB" for kind, n in sorted(target.sent.items())) or "nothing new"
    console.print(escape(f"board {name}: ready in {time.perf_counter() - t0:.1f} s ({_what(target.facts)}); sent {sent}"))
    for note in target.repaired:
        console.print(f"board {escape(name)}: [yellow]{escape(note)}[/]")
    for impl, why in target.unsupported.items():
        console.print(f"board {escape(name)}: [yellow]{impl} unsupported[/]: {escape(why)}")


def _what(facts: dict) -> str:
    """A board in a few words: an SBC by machine and cores, an MCU by board and clock."""
    kind = (f"{facts.get('board')}, {facts['clock_hz'] / 1e6:g} MHz" if "clock_hz" in facts
            else f"{facts.get('machine')}, {facts.get('cores')} cores")
    return kind + (f", {facts['emulated']}" if facts.get("emulated") else "")


def _board_manifest(target) -> dict:
    # `repaired` is the target's own list, so what is repaired mid-run is in the final manifest.
    return {"facts": target.facts, "fingerprint": target.fingerprint, "down": target.down,
            "unsupported": target.unsupported, "runner_sha256": target.runner_sha256,
            "bytes_sent": dict(target.sent), "repaired": target.repaired}
