"""Targets: how the host talks to one board (docs/targets.md).

A target stages a job (job.json plus the model and data files) where the board can read it,
runs one implementation's runner on it, and returns the runner's JSON result. Anything that
keeps a result from arriving raises TargetError, recorded as an infrastructure error.
"""
import json

from harness.errors import TargetError

STDERR_TAIL_CHARS = 2000


def tail(text: str) -> str:
    return text[-STDERR_TAIL_CHARS:] if text else ""


def parse_result(stdout: str, stderr: str, returncode: int, what: str) -> dict:
    """The runner's one JSON object, or TargetError naming what went wrong."""
    if returncode != 0:
        last = stderr.strip().splitlines()[-1] if stderr.strip() else "no stderr"
        raise TargetError(f"{what} exited with code {returncode}: {last}", tail(stderr))
    lines = stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise TargetError(f"{what} printed no JSON result", tail(stderr) or tail(stdout)) from None
    if not isinstance(result, dict) or result.get("status") not in ("ok", "fail"):
        raise TargetError(f"{what} printed a result without status ok/fail", tail(stdout))
    return result


def open_target(board, work_root):
    """The target object for a lab board."""
    if board.transport == "local":
        from harness.targets.local import LocalTarget
        return LocalTarget(board, work_root)
    raise ValueError(f"board '{board.name}': unsupported transport '{board.transport}'")
