"""The append-only record log of a run: one JSON line per job x board x impl x repetition.

Each record is flushed and fsynced as it is written, so a killed run loses nothing already
written; `--resume` skips jobs whose record is finished (ok or fail, or unsupported on a board
whose facts have not changed since), and retries errors.
"""
import json
import os
import warnings
from pathlib import Path

from pydantic import ValidationError

from harness.atomic import write_atomically
from harness.errors import UserError
from harness.schema import UnknownVersion, problem, upgrade, validated

FINISHED = ("ok", "fail")
# What makes a record unique; a resumed run's retry of an error record shares the key.
KEY_FIELDS = ("job_id", "board", "impl", "repetition")


class MalformedRecords(UserError):
    """A complete line of the log is not a JSON object; the message names file, line and fix."""


def record_key(rec: dict) -> tuple:
    return tuple(rec[f] for f in KEY_FIELDS)


def finished(rec: dict, fingerprint: str | None) -> bool:
    """Whether --resume leaves a record's job alone: it finished (ok or fail), or the board, whose
    facts now hash to `fingerprint`, cannot run it and has not changed since."""
    return rec.get("status") in FINISHED or (rec.get("status") == "unsupported"
                                             and rec.get("board_fingerprint") == fingerprint)


class RecordLog:
    def __init__(self, path: Path):
        self.path = Path(path)

    def read(self) -> list[dict]:
        """All complete records, each upgraded to the current schema and validated. Text after the
        last newline is a record a killed run was writing: it is skipped with a warning. A complete
        line that is not a valid record of a known version is an error naming file and line."""
        if not self.path.exists():
            return []
        try:
            *complete, tail = self.path.read_text().split("\n")
        except (OSError, UnicodeDecodeError) as e:
            raise MalformedRecords(f"{self.path}: cannot read the record log ({e}); restore it from a "
                                   f"backup or start a new --out") from None
        if tail.strip():
            warnings.warn(f"{self.path}:{len(complete) + 1}: skipping truncated last record")
        records = []
        for number, line in enumerate(complete, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                if not isinstance(raw, dict):
                    raise ValueError("not a JSON object")
                records.append(validated(upgrade(raw)).model_dump())
            except UnknownVersion as e:
                raise MalformedRecords(f"{self.path}:{number}: {e}") from None
            except ValidationError as e:
                raise MalformedRecords(f"{self.path}:{number}: not a valid record ({problem(e)}); "
                                       f"fix or delete that line") from None
            except (ValueError, RecursionError) as e:  # JSONDecodeError included; nested past Python's depth
                raise MalformedRecords(f"{self.path}:{number}: malformed record ({e}); "
                                       f"fix or delete that line") from None
        return records

    def drop_incomplete_tail(self):
        """Cut an unterminated last line so the next record starts on a line of its own."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        keep = data.rfind(b"\n") + 1
        if keep != len(data):
            with open(self.path, "r+b") as f:
                f.truncate(keep)

    def migrate(self) -> int:
        """Rewrite the log at the current schema version (atomically); the number of records."""
        records = self.read()
        write_atomically(self.path, lambda f: f.write("".join(
            validated(r).model_dump_json() + "\n" for r in records).encode()))
        return len(records)

    def append(self, record: dict):
        """Validate and append one record, flushed and fsynced; a write that fails (disk full,
        read-only) is a one-line error and leaves every earlier record intact."""
        line = validated(record).model_dump_json() + "\n"
        try:
            with open(self.path, "a") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            try:  # a partly written line would be cut by --resume anyway; cut it now if we can
                self.drop_incomplete_tail()
            except OSError:
                pass
            raise UserError(f"cannot write to {self.path}: {e.strerror or e}; the records before this one "
                            f"are intact: free space or fix permissions, then continue with --resume") from None
