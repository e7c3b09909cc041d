"""What a remote board costs the harness per job: the same C jobs on a lab board and on this host,
interleaved and paired, plus the bytes of runner, model and data files each run sends.

Both boards get a fresh work root, then are prepared twice (a first and a second run): the first
sends every file, the second should send none. The jobs then alternate host, board, host, board
..., and each pair's difference of wall time around `run_job` is what the transport adds.
"""
import json
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from harness import paths
from harness.artifacts import prepare
from harness.bench.bench import pick_board
from harness.boards import LocalBoard
from harness.config import load_experiment, load_lab
from harness.errors import UserError
from harness.plan import Job, runner_job
from harness.provenance import git_state
from harness.rundir import prepare_out_dir
from harness.kinds import open_target
from harness.report.tables import markdown
from harness.tasks import load_task

DEFAULT_EXPERIMENT = paths.EXPERIMENTS / "demo.toml"
TARGET_MS = 30


def _prepared(board, run_id, arts, cache):
    target = open_target(board, run_id, cache)
    target.prepare(["c"], arts)
    if target.down or "c" in target.unsupported:
        target.close()
        raise UserError(f"board {board.name} cannot run C jobs: {target.down or target.unsupported['c']}")
    return target


def run_overhead(lab_file: Path, board_name: str | None, reps: int, out: Path | None, console,
                 data_root=None, experiment: Path = DEFAULT_EXPERIMENT) -> Path:
    exp, lab = load_experiment(experiment), load_lab(lab_file)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    remote = pick_board(lab, board_name)
    remote = remote.model_copy(update={"work_root": f"{remote.work_root or 'skip2bench'}-overhead-{stamp}"})
    cache = paths.cache_dir()
    task, seed = exp.tasks[0], exp.seeds[0]
    data = load_task(task, data_root=data_root, cache_dir=cache, spec=exp.task_spec(task))
    art = prepare(data, seed, exp.model, exp.pretrain, cache)
    out = prepare_out_dir(Path(out) if out else paths.runs_dir() / f"overhead-{stamp}", resume=False)

    with tempfile.TemporaryDirectory(prefix="skip2bench-overhead-") as host_root:
        # The reference runs beside the board under test, which may be this host itself: it
        # takes no board-wide lock.
        host = LocalBoard(name="host", transport="local", impls=["c"], work_root=host_root, exclusive=False)
        sent = {}
        for board in (host, remote):
            for which in ("first", "second"):
                target = _prepared(board, f"overhead-{which}", [art], cache)
                sent[board.name, which] = dict(target.sent)
                target.close()
        targets = [_prepared(board, f"overhead-{stamp}", [art], cache) for board in (host, remote)]
        try:
            rows = _paired_jobs(targets, exp, task, seed, art, reps, console)
            targets[1].discard()  # the fresh work root was only for this measurement
        finally:
            for target in targets:
                target.close()
        facts = targets[1].facts
    return _write(out, remote, facts, rows, sent, reps, console)


def _paired_jobs(targets, exp, task, seed, art, reps, console) -> list:
    rows = []
    for rep in range(reps):
        for variant in exp.methods:
            job = runner_job(Job(task, seed, variant, board="-", impl="c", repetition=rep),
                             exp.finetune.for_variant(variant))
            walls = []
            for target in targets:
                t0 = time.perf_counter()
                result = target.run_job(job, "c", art, f"{variant}-r{rep}")
                walls.append((time.perf_counter() - t0, result.ft_time_s))
            (host_wall, host_ft), (board_wall, board_ft) = walls
            rows.append({"rep": rep, "variant": variant, "host_wall_ms": 1e3 * host_wall,
                         "board_wall_ms": 1e3 * board_wall, "added_ms": 1e3 * (board_wall - host_wall),
                         "host_ft_ms": 1e3 * host_ft, "board_ft_ms": 1e3 * board_ft})
        console.print(f"[{rep + 1}/{reps}] median added so far "
                      f"{statistics.median(r['added_ms'] for r in rows):.1f} ms per job", highlight=False)
    return rows


def _write(out, board, facts, rows, sent, reps, console) -> Path:
    df = pd.DataFrame(rows)
    added = df["added_ms"]
    summary = {"board": board.name, "transport": board.transport, "jobs": len(df), "reps": reps,
               "median_added_ms": float(added.median()), "p10_added_ms": float(added.quantile(0.1)),
               "p90_added_ms": float(added.quantile(0.9)),
               "median_host_wall_ms": float(df["host_wall_ms"].median()),
               "median_board_wall_ms": float(df["board_wall_ms"].median()),
               "bytes_sent": {f"{name}/{which}": v for (name, which), v in sent.items()},
               "git": git_state(), "board_facts": facts}
    (out / "overhead.json").write_text(json.dumps({"summary": summary, "jobs": rows}, indent=1))
    df.to_csv(out / "overhead.csv", index=False)
    bytes_table = pd.DataFrame([{"board": name, "run": which, **kinds, "total bytes": sum(kinds.values())}
                                for (name, which), kinds in sent.items()]).fillna(0)
    verdict = "meets" if summary["median_added_ms"] < TARGET_MS else "misses"
    text = "\n".join([
        f"# Harness cost per job: board {board.name} ({board.transport}) against this host", "",
        f"{len(df)} C jobs ({reps} rounds of the demo's methods), each run on the host and on the board back to "
        "back, alternating; wall time around `run_job` (staging job.json, running the runner, reading its "
        "result). Added = board wall − host wall of the same job, paired.", "",
        f"- **Median added per job:** {summary['median_added_ms']:.1f} ms (p10 {summary['p10_added_ms']:.1f}, "
        f"p90 {summary['p90_added_ms']:.1f}); {verdict} the {TARGET_MS} ms target.",
        f"- **Median wall per job:** host {summary['median_host_wall_ms']:.1f} ms, board "
        f"{summary['median_board_wall_ms']:.1f} ms.",
        f"- **Board:** {facts.get('cpu')}, {facts.get('uname')}{', ' + facts['emulated'] if facts.get('emulated') else ''}.", "",
        "Bytes of runner, model and data files sent by a first and a second prepare of a fresh work root:", "",
        markdown(bytes_table), "",
    ])
    (out / "overhead.md").write_text(text)
    console.print(text, markup=False)
    console.print(f"overhead: {out / 'overhead.md'}")
    return out
