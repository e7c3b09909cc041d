"""The append-only record log of a run: one JSON line per job x board x impl x repetition.

Each record is flushed and fsynced as it is written, so a killed run loses nothing already
written; `--resume` skips jobs whose record is finished (ok or fail), and retries errors.
"""
import json
import os
from pathlib import Path

FINISHED = ("ok", "fail")


def record_key(rec: dict) -> tuple:
    return (rec["job_id"], rec["board"], rec["impl"], rec["repetition"])


class RecordLog:
    def __init__(self, path: Path):
        self.path = Path(path)

    def read(self) -> list[dict]:
        """All complete records; an unterminated last line (a run killed mid-write) is ignored."""
        if not self.path.exists():
            return []
        records = []
        lines = self.path.read_text().split("\n")
        for number, line in enumerate(lines[:-1], start=1):  # the part after the last newline is incomplete
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    raise ValueError(f"{self.path}:{number}: malformed record line") from None
        return records

    def finished_keys(self) -> set:
        return {record_key(r) for r in self.read() if r.get("status") in FINISHED}

    def drop_incomplete_tail(self):
        """Cut an unterminated last line so the next record starts on a line of its own."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        keep = data.rfind(b"\n") + 1
        if keep != len(data):
            with open(self.path, "r+b") as f:
                f.truncate(keep)

    def append(self, record: dict):
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())
