"""Targets: one board in one run (docs/targets.md).

A target is prepared once per run (lock, facts, deploy, build), then runs jobs: it stages
job.json where the board reads it, runs one implementation's runner on it, and returns the
runner's JSON result. Anything that keeps a result from arriving raises TargetError, recorded
as an infrastructure error.
"""
import json

from pydantic import ValidationError

from harness.errors import TargetError
from harness.job_table import FIELDS, as_held
from harness.schema import COMPARATORS, Result, problem

STDERR_TAIL_CHARS = 2000


def tail(text: str) -> str:
    return text[-STDERR_TAIL_CHARS:] if text else ""


def parse_result(stdout: str, stderr: str, returncode: int, what: str, job: dict, **added) -> Result:
    """The runner's one JSON object for `job`, validated against the schema with the target's
    `added` fields (runner hash, attempts, time kind), or TargetError naming what went wrong."""
    if returncode != 0:
        last = stderr.strip().splitlines()[-1] if stderr.strip() else "no stderr"
        raise TargetError(f"{what} exited with code {returncode}: {last}", tail(stderr))
    lines = stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError, RecursionError):  # none, not JSON, or nested past Python's depth
        raise TargetError(f"{what} printed no JSON result", tail(stderr) or tail(stdout)) from None
    if not isinstance(result, dict):
        raise TargetError(f"{what} printed a result that is not a JSON object", tail(stdout))
    return validated({**result, **added}, what, job, tail(stdout))


def echo_problem(job: dict, echo, fields=FIELDS) -> str | None:
    """Where a runner's echo of the job it ran differs from the job it was sent, or None: the
    echo holds exactly the `fields` (skip2_job.def; those its binding carries) that the job's
    method holds, with the job's values."""
    if not isinstance(echo, dict):
        return "no echo of the job it ran"
    held = {f.name: f for f in fields if f.holds(job["method"])}
    if set(echo) != set(held):
        return f"its echo of the job has fields {sorted(echo)}, {job['method']} jobs hold {sorted(held)}"
    for name, field in held.items():
        if echo[name] != as_held(field, job[name]):
            return f"it ran {name} = {echo[name]!r}, the job says {job[name]!r}"
    return None


def validated(result: dict, what: str, job: dict, context: str = "", fields=FIELDS) -> Result:
    """A runner's result for `job` checked against the schema, or TargetError naming the first
    problem; a reference runner's echo of the job (the `fields` its binding carries) must be the
    job (the comparators echo none)."""
    result = dict(result)
    echo, token = result.pop("job", None), result.pop("token", None)
    if "token" in job and token != job["token"]:
        raise TargetError(f"{what} gave a reply of another attempt or job (token {str(token)[:32]!r}, this "
                          f"attempt's is {job['token']!r})", context)
    if result.get("impl") not in COMPARATORS and (problem_ := echo_problem(job, echo, fields)):
        raise TargetError(f"{what} did not run the job it was sent: {problem_}", context)
    try:
        return Result.model_validate(result)
    except ValidationError as e:
        raise TargetError(f"{what} printed an invalid result ({problem(e)})", context) from None
