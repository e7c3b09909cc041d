"""Baselines: runs kept by name to compare later runs with (`skip2bench baseline save|list|show`,
`compare NAME RUN`). A baseline is a folder per board identity, each holding the records of the
run's boards of that identity and the run's manifest; saving a run of other boards under the
same name adds their folders beside the others. The baselines folder is meant to be committed to
the user's own repository: ./skip2bench-baselines, or --baselines DIR, or SKIP2BENCH_BASELINES.
"""
import json
import os
from pathlib import Path

from harness.atomic import write_atomically
from harness.errors import UserError
from harness.rundir import read_manifest
from harness.targets.facts import board_identity, cpu_words


def root(given: Path | None) -> Path:
    return Path(given or os.environ.get("SKIP2BENCH_BASELINES") or "skip2bench-baselines")


def save(name: str, run_dir: Path, baselines: Path) -> list:
    """The run's records and manifest under `name`, one folder per board identity; the folders written."""
    if not name or "/" in name or name.startswith("."):
        raise UserError(f"baseline name {name!r}: use letters, digits, '-' or '_'")
    path = run_dir / "records.jsonl"
    if not path.is_file():
        raise UserError(f"{run_dir} holds no records.jsonl: save a run directory as a baseline")
    manifest = read_manifest(run_dir)
    by_identity = {}
    for board, entry in manifest.get("boards", {}).items():
        by_identity.setdefault(board_identity(entry.get("facts") or {}), []).append(board)
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    written = []
    for identity, boards in by_identity.items():
        kept = [line for line in lines if json.loads(line).get("board") in boards]
        if not kept:
            continue
        folder = baselines / name / identity
        folder.mkdir(parents=True, exist_ok=True)
        shown = {**manifest, "boards": {b: manifest["boards"][b] for b in boards}}
        write_atomically(folder / "manifest.json", lambda f: f.write(json.dumps(shown, indent=2).encode()))
        write_atomically(folder / "records.jsonl", lambda f: f.write(("\n".join(kept) + "\n").encode()))
        written.append(folder)
    if not written:
        raise UserError(f"{run_dir} has no records of the boards its manifest names; nothing to save")
    return written


def names(baselines: Path) -> list:
    return sorted(p.name for p in baselines.iterdir() if p.is_dir()) if baselines.is_dir() else []


def run_dirs(name: str, baselines: Path) -> list:
    folder = baselines / name
    found = sorted(p for p in folder.iterdir() if (p / "records.jsonl").is_file()) if folder.is_dir() else []
    if not found:
        known = ", ".join(names(baselines)) or "none"
        raise UserError(f"no baseline {name!r} in {baselines} (baselines there: {known}); save one with "
                        f"`skip2bench baseline save {name} RUN_DIR`")
    return found


def resolve(where: str, baselines: Path) -> tuple[str, list]:
    """A run directory or a baseline name, as a label and the run folders to read."""
    if (Path(where) / "records.jsonl").is_file():
        return where, [Path(where)]
    if Path(where).exists() or not (baselines / where).is_dir():
        raise UserError(f"{where} is neither a run directory (no records.jsonl) nor a baseline in {baselines}; "
                        f"list the baselines with `skip2bench baseline list`")
    return f"baseline {where}", run_dirs(where, baselines)


def describe(name: str, baselines: Path) -> list:
    """A line per board of the baseline: its identity, what it is, its jobs and when it ran."""
    lines = []
    for folder in run_dirs(name, baselines):
        manifest = read_manifest(folder)
        jobs = sum(json.loads(line).get("record_type", "job") == "job"
                   for line in (folder / "records.jsonl").read_text().splitlines() if line.strip())
        for board, entry in manifest.get("boards", {}).items():
            facts = entry.get("facts") or {}
            lines.append(f"{folder.name}  {board}: {cpu_words(facts) or facts.get('board') or '?'}; {jobs} job records "
                         f"of run {manifest.get('run_id')} ({manifest.get('created', '?')}, git "
                         f"{((manifest.get('git') or {}).get('sha') or '?')[:12]})")
    return lines
