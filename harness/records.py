"""The append-only record log of a run: one JSON line per job x board x impl x repetition.

Each record is flushed and fsynced as it is written, so a killed run loses nothing already
written; `--resume` skips jobs whose record is finished (ok or fail, or unsupported on a board
whose facts have not changed since), and retries errors.
"""
import json
import os
import warnings
from pathlib import Path

from harness.errors import UserError

FINISHED = ("ok", "fail")
# What makes a record unique; a resumed run's retry of an error record shares the key.
KEY_FIELDS = ("job_id", "board", "impl", "repetition")


class MalformedRecords(UserError):
    """A complete line of the log is not a JSON object; the message names file, line and fix."""


def record_key(rec: dict) -> tuple:
    return tuple(rec[f] for f in KEY_FIELDS)


class RecordLog:
    def __init__(self, path: Path):
        self.path = Path(path)

    def read(self) -> list[dict]:
        """All complete records. Text after the last newline is a record a killed run was writing:
        it is skipped with a warning. A malformed complete line is an error."""
        if not self.path.exists():
            return []
        *complete, tail = self.path.read_text().split("\n")
        if tail.strip():
            warnings.warn(f"{self.path}:{len(complete) + 1}: skipping truncated last record")
        records = []
        for number, line in enumerate(complete, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                record = e.msg
            if not isinstance(record, dict):
                raise MalformedRecords(f"{self.path}:{number}: malformed record ({record}); "
                                       f"fix or delete that line") from None
            records.append(record)
        return records

    def finished_keys(self, fingerprints: dict) -> set:
        """Keys of records not to run again; `fingerprints` are the boards' facts now, by name."""
        return {record_key(r) for r in self.read() if r.get("status") in FINISHED or (
            r.get("status") == "unsupported" and r.get("board_fingerprint") == fingerprints.get(r.get("board")))}

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
