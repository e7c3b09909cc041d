"""What is deployed to a board for each implementation: its files, how it is built, how it runs.

The NumPy runner (and the PyTorch comparator of the benchmark) are Python files run by the
board's python; the C runner is built from its sources by the board's own compiler, or built on
the host by a cross-compiler and shipped as one static binary. A runner is identified in every
record by the sha256 of what ran: the Python sources, or the C binary.
"""
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness.builds import build_once
from harness.errors import TargetError
from harness.hashing import sha256_text, sha256_tree
from harness.paths import NUMPY_RUNNER_DIR, TARGETS, TORCH_RUNNER_DIR
from harness.transports import quote, words

C_DIR = TARGETS / "c"
TORCH_RUNNER = TORCH_RUNNER_DIR / "skip2_torch_runner.py"
# The C core is single-threaded; every runner gets one BLAS thread too, set explicitly rather
# than inherited from whatever environment the board's shell has.
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# Python modules a Python runner imports to probe that the board can run it.
NEEDS = {"numpy": "numpy", "torch": "torch"}
# The oldest board Python the Python runners support (docs/targets.md): a test holds their files
# to its grammar and standard library.
OLDEST_PYTHON = (3, 8)


def python_too_old(version: str | None) -> str | None:
    """Why a board's Python (its platform.python_version()) cannot run the Python runners, or None."""
    try:
        found = tuple(int(part) for part in (version or "").split(".")[:2])
    except ValueError:
        return None  # an odd version string: the runner's own start says more
    if len(found) == 2 and found < OLDEST_PYTHON:
        return f"Python {version} is older than {'.'.join(map(str, OLDEST_PYTHON))}, the oldest the Python runners support"
    return None


# Implementations that run their jobs in a session, a fork server that takes job after job over
# one channel (targets/numpy/skip2_session.py, `skip2run --session`): a job costs one exchange,
# and the NumPy runner pays Python's start and NumPy's import once per board. Not PyTorch:
# forking after its import risks its thread pools.
SESSIONS = ("numpy", "c")


@dataclass(frozen=True)
class RunnerSpec:
    impl: str
    kind: str                 # deployed to WORK_ROOT/runners/<kind>/<content hash>
    files: dict               # name on the board -> file on the host
    entry: str                # the program inside the deployed folder
    python: bool              # run by the board's python (else run directly, after run_prefix)
    build: bool = False       # C sources to build on the board into the program `entry`

    def content_hash(self) -> str:
        return sha256_tree(self.files)


# The job's table and limits: the NumPy runner reads and checks jobs by the same files as C.
JOB_TABLES = (C_DIR / "core" / "skip2_job.def", C_DIR / "core" / "skip2_limits.def")


def _python_files(*extra) -> dict:
    files = {p.name: p for p in sorted(NUMPY_RUNNER_DIR.glob("skip2_*.py"))}
    files.update({p.name: p for p in JOB_TABLES})
    files.update({p.name: p for p in extra})
    return files


def c_sources() -> dict:
    files = {"Makefile": C_DIR / "Makefile"}
    for part in ("core", "sbc"):
        files.update({f"{part}/{p.name}": p for p in sorted((C_DIR / part).iterdir())
                      if p.suffix in (".c", ".h", ".inc", ".def")})
    return files


def make_args(source_dir: str, compiler: str, flags: str, ldflags: str = "") -> list:
    """`make` of the C runner, less BUILD=folder (a folder without spaces: make cannot cope)."""
    return ["make", "-C", source_dir, f"CC={compiler}", f"CFLAGS={flags}", *([f"LDFLAGS={ldflags}"] if ldflags else [])]


def cross_build(compiler: str, flags: str, cache_dir: Path) -> Path:
    """A static C runner built on the host by `compiler`, cached by sources, compiler and flags."""
    return _host_built(compiler, flags, cache_dir, f"cross compiler {compiler} not found on this host (for aarch64 "
                       f"boards: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross)")


def host_build(cache_dir: Path) -> Path:
    """The C runner for this host itself (pre-training runs through it), cached like cross_build's."""
    return _host_built("cc", "-O2", cache_dir, "pre-training runs through the C core, which needs a C compiler "
                       "and make on this host (Debian: apt-get install gcc make libc6-dev)")


def _host_built(compiler: str, flags: str, cache_dir: Path, missing: str) -> Path:
    key = sha256_text(sha256_tree(c_sources()), compiler, flags)[:16]
    final = cache_dir / "cross" / key
    if not (final / "skip2run").is_file() and (shutil.which(compiler) is None or shutil.which("make") is None):
        raise TargetError(missing)
    return build_once(make_args(str(C_DIR), compiler, flags, "-static"), "skip2run", final,
                      f"building the C runner with {compiler}")


def spec(impl: str, board, cache_dir: Path) -> RunnerSpec:
    """The runner of `impl` as `board` gets it."""
    if impl == "numpy":
        return RunnerSpec("numpy", "numpy", _python_files(), "skip2_runner.py", python=True)
    if impl == "torch":
        return RunnerSpec("torch", "torch", _python_files(TORCH_RUNNER), TORCH_RUNNER.name, python=True)
    if impl == "c" and board.cross_compiler:
        binary = cross_build(board.cross_compiler, board.c_flags, cache_dir)
        return RunnerSpec("c", "c-bin", {"skip2run": binary}, "skip2run", python=False)
    if impl == "c":
        return RunnerSpec("c", "c-src", c_sources(), "skip2run", python=False, build=True)
    raise ValueError(f"unknown implementation {impl!r}")


def session_command(spec: RunnerSpec, board, folder: str, program: str) -> str:
    """The command line of a deployed runner's session (runners in SESSIONS)."""
    if spec.python:
        return f"{command(spec, board, folder + '/skip2_session.py')} {quote(spec.entry.removesuffix('.py'))}"
    return f"{command(spec, board, program)} --session"


def command(spec: RunnerSpec, board, program: str) -> str:
    """The command line that runs a deployed runner (the job folder is appended)."""
    env = quote("env", *(f"{k}={v}" for k, v in ONE_THREAD.items()))
    run = words(board.python) if spec.python else words(board.run_prefix) if board.run_prefix.strip() else ""
    return " ".join(part for part in (env, run, quote(program)) if part)
