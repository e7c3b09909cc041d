"""The shell protocol on this machine: `sh -c` subprocesses, files written in place."""
import os
import select
import signal
import subprocess
from pathlib import Path

from harness import stop
from harness.deadline import Deadline
from harness.transports import CommandTimeout, Completed, LineStream, LinkDown, StreamEnded


def _start(command: str, **pipes) -> subprocess.Popen:
    # A session of its own: the command's process group is its pid, as under sshd.
    try:
        return subprocess.Popen(["sh", "-c", command], start_new_session=True, **pipes)
    except OSError as e:
        raise LinkDown(f"cannot start sh on this host: {e}") from None


def _stop(proc: subprocess.Popen):
    """Kill the command's whole process group and reap it (nothing here reaps orphans)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


class ProcessStream(LineStream):
    def __init__(self, command: str):
        self.proc = _start(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def write(self, data: bytes):
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except OSError as e:
            raise LinkDown(f"the command on this host has ended: {e}") from None

    def _recv(self, left: float) -> bytes | None:
        if not select.select([self.proc.stdout], [], [], left)[0]:
            return None
        chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
        if not chunk:
            raise StreamEnded("the command on this host has ended")
        return chunk

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                _stop(self.proc)
        for pipe in (self.proc.stdin, self.proc.stdout):
            pipe.close()


class HostShell:
    def __init__(self):
        self.bytes_sent = 0
        self.facts = {}

    def connect(self) -> int:
        return 0

    def run(self, command: str, timeout: "float | Deadline", stdin: bytes = b"") -> Completed:
        proc, deadline = _start(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE), Deadline.of(timeout)
        try:
            while True:  # in slices, so that a stopped worker stops waiting (harness.stop)
                try:
                    out, err = proc.communicate(stdin, timeout=stop.slice_of(deadline.left()))
                    break
                except subprocess.TimeoutExpired:
                    stdin = None  # sent with the first call; communicate keeps what is left of it
                    if deadline.passed():
                        raise
        except subprocess.TimeoutExpired:
            _stop(proc)
            raise CommandTimeout(command) from None
        except BaseException:
            _stop(proc)  # interrupted: the command must not outlive the harness
            raise
        return Completed(proc.returncode, out, err)

    def open(self, command: str, deadline: Deadline | None = None) -> ProcessStream:
        # Starting a process here cannot hang on a link: there is none.
        return ProcessStream(command)

    def put(self, data: bytes, path: str):
        # Like SFTP, no parent folders are made: the caller makes them, on every transport.
        Path(path).write_bytes(data)
        self.bytes_sent += len(data)

    def get(self, path: str) -> bytes:
        return Path(path).read_bytes()

    def close(self):
        pass
