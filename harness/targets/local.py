"""The host itself as a board: runners run as subprocesses, exactly as a remote board runs them."""
import json
import shlex
import subprocess

from harness.errors import TargetError
from harness.hashing import sha256_file
from harness.paths import NUMPY_RUNNER_DIR, TARGETS
from harness.provenance import host_facts
from harness.targets import parse_result, tail

C_DIR = TARGETS / "c"
C_RUNNER = C_DIR / "build" / "skip2run"


def build_c_runner():
    """`make` the C runner; make itself decides whether sources changed since the last build."""
    try:
        proc = subprocess.run(["make", "-C", str(C_DIR)], capture_output=True, text=True)
    except FileNotFoundError:
        raise TargetError("cannot build the C runner: `make` not found (install make and a C compiler)") from None
    if proc.returncode != 0:
        raise TargetError(f"building the C runner failed (make -C {C_DIR})", tail(proc.stderr))
    return C_RUNNER


def write_job(workdir, job: dict, artifacts):
    """job.json for a runner on this host: the model and data files are read in place."""
    staged = dict(job, model_dir=str(artifacts.model_dir), data_dir=str(artifacts.data_dir),
                  n_layers=artifacts.n_layers)
    (workdir / "job.json").write_text(json.dumps(staged, indent=1))


def _text(output) -> str:
    # TimeoutExpired carries bytes even when the run asked for text.
    return output.decode(errors="replace") if isinstance(output, bytes) else (output or "")


class LocalTarget:
    def __init__(self, board, work_root):
        self.board, self.work_root = board, work_root
        self._commands = {}

    def facts(self) -> dict:
        return {"transport": "local", **host_facts()}

    def command(self, impl):
        if impl not in self._commands:
            if impl == "numpy":
                self._commands[impl] = [*shlex.split(self.board.python), str(NUMPY_RUNNER_DIR / "skip2_runner.py")]
            else:
                binary = build_c_runner()
                self._binary_sha256 = sha256_file(binary)
                self._commands[impl] = [str(binary)]
        return self._commands[impl]

    def run_job(self, job: dict, impl: str, artifacts, name: str) -> dict:
        workdir = self.work_root / name
        workdir.mkdir(parents=True, exist_ok=True)
        write_job(workdir, job, artifacts)
        cmd = [*self.command(impl), str(workdir)]
        what = f"{impl} runner on {self.board.name}"
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self.board.timeout_s)
        except subprocess.TimeoutExpired as e:
            raise TargetError(f"{what} timed out after {self.board.timeout_s:g} s "
                              f"(raise timeout_s in the lab file)", tail(_text(e.stderr))) from None
        except OSError as e:
            raise TargetError(f"{what} could not start: {e}") from None
        result = parse_result(proc.stdout, proc.stderr, proc.returncode, what)
        if impl == "c":
            # Which binary produced the numbers: the build may change between runs.
            result.setdefault("runtime", {})["binary_sha256"] = self._binary_sha256
        return result

    def close(self):
        pass
