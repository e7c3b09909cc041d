"""How the harness talks to a POSIX board: a shell protocol, once per transport (docs/targets.md).

A shell runs a command line (POSIX sh syntax) by a deadline (harness.deadline), opens a long-running command as a
stream of lines (the board lock, a runner session), and puts and gets files. `host.HostShell` does it with subprocesses on this
machine, `ssh.SshShell` over one reused paramiko connection. Everything above this layer
(deployment, jobs, facts, locking) is written once against the protocol.

Every command runs in a process group of its own whose id is the shell's `$$`, so that a
command line of the form `echo $$ > PIDFILE; exec RUNNER` leaves a handle to kill the runner
and anything it started, even after the connection that started it is gone.
"""
import shlex
import time
from dataclasses import dataclass
from typing import Protocol

from harness import stop
from harness.deadline import Deadline


class LinkDown(Exception):
    """The board cannot be reached, or the connection broke; the operation may be retried."""


class StreamEnded(LinkDown):
    """An opened command ended (its stdout closed), whether or not its link is still up."""


class ReplyTooLarge(Exception):
    """A command's reply (a line of a stream) grew past MAX_REPLY_BYTES: a runaway runner."""


# The longest reply line read from a board: a result is a few kB, a runner's whole output at most
# a few MB; past this a board's answer is a fault, not data to hold in memory.
MAX_REPLY_BYTES = 16 << 20


class BoardSilent(LinkDown):
    """The board gave no sign of life for its liveness_s; the connection was closed. Not retried:
    the job is an error, and its runner is stopped once the board answers again."""


class HostKeyRefused(Exception):
    """An SSH board's host key is unknown or does not match: never retried, never trusted silently."""


class CommandTimeout(Exception):
    """A command ran past its timeout; the harness stopped waiting (the process may live on)."""


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: bytes
    stderr: bytes
    wall_s: float | None = None  # the command's own time, where the board measured it (sessions)


class Stream(Protocol):
    """A long-running command: lines to its stdin, lines from its stdout."""
    def write(self, data: bytes) -> None: ...
    def readline(self, timeout: float) -> str:
        """The next line without its newline; "" when none arrived in time; StreamEnded when the
        command has ended."""
    def close(self) -> None:
        """End its stdin (which ends a command that reads to EOF) and let it go."""


class LineStream:
    """A Stream's readline, once for every transport: subclasses say how a chunk of the
    command's stdout arrives (_recv). A stream of a framed command (harness.transports.framing)
    sets `mark`: lines before its begin line are the login shell's and skipped, and its end
    line ends the stream."""
    _buffer = b""
    mark = None
    _begun = False

    def _recv(self, left: float) -> bytes | None:
        """Up to 64 KiB within `left` seconds, None when nothing came in time; StreamEnded when
        the command has ended."""
        raise NotImplementedError

    def readline(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" not in self._buffer:
                if len(self._buffer) > MAX_REPLY_BYTES:
                    raise ReplyTooLarge(f"a reply line longer than {MAX_REPLY_BYTES >> 20} MB")
                left = deadline - time.monotonic()
                if left <= 0:
                    return ""
                chunk = self._recv(stop.slice_of(left))  # sliced: a stopped worker stops waiting
                if chunk is not None:
                    self._buffer += chunk
            line, self._buffer = self._buffer.split(b"\n", 1)
            if self.mark is None:
                return line.decode(errors="replace")
            if not self._begun:
                self._begun = line.endswith(f"{self.mark}-begin".encode())  # after a greeting's unended line
                continue
            end = f"{self.mark}-end".encode()
            if line.endswith(end):
                if line == end:
                    raise StreamEnded("the command has ended")
                # Its last line had no newline: that line now, the end at the next call.
                line, self._buffer = line[:-len(end)], end + b"\n" + self._buffer
            return line.decode(errors="replace")


class Shell(Protocol):
    # Bytes of file content put on the board since the shell was made.
    bytes_sent: int
    # What the transport found out about the board once connected (SSH: how files travel).
    facts: dict

    def connect(self) -> int:
        """Make sure the link is up (reconnecting with bounded backoff); returns a number that
        changes whenever a new connection was made, so the caller can re-take what it held."""
    def run(self, command: str, timeout: "float | Deadline", stdin: bytes = b"") -> Completed:
        """The command's outcome; CommandTimeout once the deadline (or `timeout` seconds) passed."""
    def open(self, command: str, deadline: Deadline | None = None) -> Stream:
        """The command as a stream, opened within the deadline."""
    def put(self, data: bytes, path: str) -> None: ...
    def get(self, path: str) -> bytes: ...
    def close(self) -> None: ...


def quote(*words) -> str:
    """Words as one shell command line, each quoted."""
    return " ".join(shlex.quote(str(w)) for w in words)


def last_line(data: bytes, empty: str) -> str:
    """A command's last line of output (its error, usually), or `empty` when it printed none."""
    lines = data.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else empty


def board_path(path: str) -> str:
    """A path on the board as one shell word; a leading `~` or `~/` is the board user's home,
    expanded by the board's shell."""
    if path == "~" or path.startswith("~/"):
        return '"$HOME"' + (f"/{shlex.quote(path[2:])}" if path[2:] else "")
    return shlex.quote(path)


def words(command: str) -> str:
    """A user's command string (python = "python3 -X utf8") re-quoted word by word."""
    return quote(*shlex.split(command))
