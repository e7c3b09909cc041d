"""A run directory that is safe: one run at a time, names that cannot collide, a resume that
continues the same experiment on the same lab or nothing.

Layout: records.jsonl (harness.records), manifest.json (provenance, written atomically),
report/ (harness.report), .lock (held by the run that writes here; it names the holder).
"""
import fcntl
import json
import os
import platform
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path

from harness import paths
from harness.atomic import write_atomically
from harness.errors import UserError


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_dir(name: str) -> Path:
    """skip2bench-runs/NAME-TIME-XXXX in the current folder, made here and now: two runs started in
    the same second get two."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    root = paths.runs_dir()
    while True:
        candidate = root / f"{name}-{stamp}-{secrets.token_hex(2)}"
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            continue
        except OSError as e:
            raise UserError(f"cannot make a run directory under {root}: {e.strerror or e}; pass --out DIR") from None


def writable(out: Path) -> Path:
    """`out`, made if needed, after proving a file can be written in it."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UserError(f"cannot write to output directory {out}: {e.strerror or e}; choose another --out") from None
    return out


def prepare_out_dir(out: Path, resume: bool) -> Path:
    """A writable directory; refuses to mix new results into a run's records unless resuming."""
    writable(out)
    if (out / "records.jsonl").exists() and not resume:
        raise UserError(f"{out} already holds a run; pass --resume to continue it, or choose another --out")
    return out


class RunLock:
    """An exclusive lock on a run directory for as long as the run lives (the kernel drops it
    when the process dies, however it dies)."""

    def __init__(self, out: Path, command: str):
        self.path = out / ".lock"
        try:
            self.file = open(self.path, "a+")
        except OSError as e:
            raise UserError(f"cannot open {self.path}: {e.strerror or e}; choose another --out") from None
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._holder()
            self.file.close()
            raise UserError(f"{out} is in use by {holder}; wait for it to end, or choose another --out") from None
        try:
            self.file.seek(0)
            self.file.truncate()
            self.file.write(f"pid {os.getpid()} on {platform.node()} since {now()} ({command})")
            self.file.flush()
        except OSError as e:
            fcntl.flock(self.file, fcntl.LOCK_UN)
            try:
                self.file.close()
            except OSError:  # closing retries the same failed write: e says it already
                pass
            raise UserError(f"cannot write {self.path}: {e.strerror or e}; free space on its disk or choose "
                            f"another --out") from None

    def _holder(self) -> str:
        """Who holds the lock, as it wrote it (it writes just after locking: give it a moment)."""
        for _ in range(40):
            self.file.seek(0)
            holder = self.file.read().strip()
            if holder:
                return holder
            time.sleep(0.025)
        return "another run"

    def release(self):
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


def read_manifest(out: Path) -> dict:
    """The run's manifest; a damaged one is a one-line error (a resume cannot check against it)."""
    path = out / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
        return manifest
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError) as e:
        raise UserError(f"{path} is damaged ({e}); --resume cannot check what the run was: restore the "
                        f"file, or start a new run with another --out") from None


def differences(old, new, where="") -> list:
    """Paths at which two JSON values differ, as 'path: old -> new'."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for key in sorted(set(old) | set(new), key=str)
                for d in differences(old.get(key), new.get(key), f"{where}.{key}" if where else str(key))]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in differences(a, b, f"{where}.{i}")]
    if old != new:
        return [f"{where or '(all)'}: {json.dumps(old)} -> {json.dumps(new)}"]
    return []


def check_resume(out: Path, old: dict, experiment: dict, lab: dict):
    """Refuse, before anything is written, to resume a run with another experiment or lab."""
    if (out / "records.jsonl").exists() and not old:
        raise UserError(f"{out} holds records but no manifest.json, so --resume cannot check what the run "
                        f"was; restore the manifest, or start a new run with another --out")
    for what, before, now_ in (("experiment", old.get("experiment"), experiment), ("lab", old.get("lab"), lab)):
        if before is None and (out / "records.jsonl").exists():
            raise UserError(f"{out / 'manifest.json'} does not say which {what} the run had, so --resume cannot "
                            f"check it; restore the manifest, or start a new run with another --out")
        if before is None:
            continue
        diff = differences(before, now_)
        if diff:
            more = f" (and {len(diff) - 3} more)" if len(diff) > 3 else ""
            raise UserError(f"--resume of {out} with a different {what}: {'; '.join(diff[:3])}{more}; "
                            f"resume with the {what} file the run started with, or choose another --out")


def write_manifest(out: Path, manifest: dict):
    path = out / "manifest.json"
    try:
        write_atomically(path, lambda f: f.write(json.dumps(manifest, indent=2, default=str).encode()))
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}; free space or fix permissions, then "
                        f"continue with --resume (records written so far are intact)") from None
