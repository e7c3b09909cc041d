"""`skip2bench run`: expand the job matrix, prepare the backbones, and hand the jobs to the run
engine (harness.engine), which runs them on every board and appends the records."""
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from harness import engine, paths
from harness.artifacts import prepare
from harness.boards import public
from harness.config import Experiment, load_experiment, load_lab
from harness.errors import UserError
from harness.plan import expand
from harness.provenance import git_state, host_facts, library_versions, shown_path
from harness.records import RecordLog
from harness.rundir import RunLock, check_resume, new_dir, now, prepare_out_dir, read_manifest, write_manifest
from harness.tasks import load_task
from harness.work import check_job_memory


def run_experiment(experiment: Path, lab_file: Path, out: Path | None, resume: bool,
                   data_root: Path | None, console: Console, shape=None, dask: str | None = None,
                   revision: str | None = None) -> tuple[Path, dict]:
    """Run the experiment on the lab; `shape(exp, lab) -> (exp, lab)`, when given, adapts both
    as a command that presets an experiment needs (`skip2bench bench`); `dask`, a Dask
    scheduler's address, runs each board's worker on the Dask worker that has the board;
    `revision` names what the run measures (`history`), for an installed package without git."""
    exp, lab = load_experiment(experiment), load_lab(lab_file)
    if shape:
        exp, lab = shape(exp, lab)
    cache = paths.cache_dir()
    # Every data set is found before anything is written, so bad input leaves no trace.
    datasets = {task: load_task(task, data_root=data_root, cache_dir=cache, spec=exp.task_spec(task))
                for task in exp.tasks}
    try:
        jobs = expand(exp, lab)
        check_job_memory(exp, datasets)
    except UserError as e:  # name the file the fix goes into
        raise UserError(f"{experiment}: {e}") from None
    dask_lab = None
    if dask:  # reached before anything is written
        from harness.engine.remote import DaskLab  # Dask is imported only for a run on it
        dask_lab = DaskLab(dask, sorted({item.board for item in jobs}))
    try:
        out = prepare_out_dir(Path(out), resume) if out else new_dir(exp.name)
        lock = RunLock(out, f"skip2bench run -e {shown_path(experiment)} -l {shown_path(lab_file)}")
        try:
            return _run_locked(exp, lab, jobs, datasets, experiment, lab_file, out, resume, cache, console, dask_lab,
                               revision)
        finally:
            lock.release()
    finally:
        if dask_lab:
            dask_lab.close()


def _run_locked(exp, lab, jobs, datasets, experiment, lab_file, out, resume, cache, console, dask_lab, revision):
    lab_shown = {"name": lab.name, "boards": [public(b) for b in lab.boards]}
    old = read_manifest(out) if resume else {}
    if resume:
        check_resume(out, _as_read_now(old), exp.model_dump(mode="json"), lab_shown)
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

    manifest = {
        "run_id": run_id, "created": old.get("created", now()), "updated": now(),
        "command": {"experiment": shown_path(experiment, out), "lab": shown_path(lab_file, out), "resume": resume,
                    "dask": dask_lab.address if dask_lab else None},
        "git": git_state(), "revision": revision or old.get("revision"), "host": host_facts(),
        "versions": library_versions(),
        "experiment": exp.model_dump(mode="json"), "lab": lab_shown,
        # Each board's facts, as its worker prepares it (engine.sink), and its repairs at the end.
        "boards": old.get("boards", {}),
        "data": {t: artifacts[t, exp.seeds[0]].data_sha256 for t in exp.tasks},
        "models": {f"{t}/{s}": a.weights_sha256 for (t, s), a in artifacts.items()},
        "pretrain_acc": {f"{t}/{s}": a.pretrain_acc for (t, s), a in artifacts.items()},
    }
    write_manifest(out, manifest)
    context = engine.RunContext(run_id, exp, lab, artifacts, cache, engine.previous_records(log))
    counts = engine.run(context, jobs, log, out, manifest, console, dask_lab)
    manifest.update(updated=now(), counts=counts)
    write_manifest(out, manifest)
    console.print(", ".join(f"{n} {k}" for k, n in counts.items() if k != "skipped")
                  + f", {counts['skipped']} already done; records: {log.path}")
    return out, counts


def _as_read_now(manifest: dict) -> dict:
    """The manifest with its experiment as this version reads it: a field added since the run
    started (an ordering, probes, a sweep) is its default, not a change."""
    try:
        started = Experiment.model_validate(manifest["experiment"]).model_dump(mode="json")
    except (KeyError, TypeError, ValueError):  # no experiment, or one this version no longer reads
        return manifest
    return {**manifest, "experiment": started}
