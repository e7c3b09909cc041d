"""The shell protocol over SSH: one paramiko connection per board, exec channels and SFTP on it.

The connection is made on our own TCP socket with TCP_NODELAY (paramiko leaves Nagle on, which
costs ~40 ms per channel), sends keepalives, and is re-made with bounded backoff when it drops.
A liveness watch (harness.transports.liveness) closes it when the board stops answering for its
liveness_s. Every wait has a deadline: where paramiko has no timeout (starting a command, SFTP
requests), a watchdog closes the connection once the deadline has passed.
Host keys are checked against a known-hosts file; an unknown key is refused unless the lab file
allows trust on first use.

Every command is framed by markers of its own (harness.transports.framing): what the board's
login shell prints around it is set aside (`noise`, the first such text). Files travel over
SFTP, or over an exec channel (`cat >`, checked by sha256sum on the board) where the board has no
SFTP server or its login shell garbles SFTP's stream; which one is found once per shell and said
in `facts["file_transfer"]`.
"""
import base64
import contextlib
import hashlib
import logging
import secrets
import select
import socket
import threading

import paramiko

from harness import stop
from harness.deadline import Deadline
from harness.transports import (BoardSilent, CommandTimeout, Completed, HostKeyRefused, LineStream, LinkDown,
                                StreamEnded, last_line, quote)
from harness.transports.framing import framed, framed_stream, marker, unframe
from harness.transports.liveness import LivenessWatch

# paramiko logs every failed connection with a traceback; the harness reports them itself.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").propagate = False

BACKOFF_S = 0.5  # first wait between reconnect attempts; doubles each time
BACKOFF_MAX_S = 8.0
# The watchdog waits this long past a deadline, so that on a healthy link a command's own timeout
# (which keeps the connection) comes first.
WATCHDOG_GRACE_S = 2.0
TRANSFER_TIMEOUT_S = 900  # one file put or got (over SFTP or an exec channel)


def fingerprint(key) -> str:
    digest = hashlib.sha256(key.asbytes()).digest()
    return f"{key.get_name()} SHA256:{base64.b64encode(digest).decode().rstrip('=')}"


def _host_id(host, port) -> str:
    return host if port == 22 else f"[{host}]:{port}"


class _Policy(paramiko.MissingHostKeyPolicy):
    def __init__(self, board):
        self.board = board

    def missing_host_key(self, client, hostname, key):
        b = self.board
        if b.host_key_policy == "accept-new":
            client.get_host_keys().add(hostname, key.get_name(), key)
            b.known_hosts.parent.mkdir(parents=True, exist_ok=True)
            client.save_host_keys(str(b.known_hosts))
            return
        raise HostKeyRefused(
            f"board {b.name}: unknown host key of {hostname} ({fingerprint(key)}); check it, then add it "
            f"to {b.known_hosts} (ssh-keyscan -p {b.port} {b.host} >> {b.known_hosts}) or set "
            f'host_key_policy = "accept-new" for this board in the lab file')


def _reason(exc) -> str:
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, paramiko.AuthenticationException):
        return f"authentication failed ({exc}); check user and key_file in the lab file"
    return str(exc) or type(exc).__name__


class ChannelStream(LineStream):
    def __init__(self, channel, shell, mark: str):
        self.channel, self.shell, self.mark = channel, shell, mark

    def write(self, data: bytes):
        try:
            self.channel.sendall(data)
        except (OSError, EOFError, paramiko.SSHException) as e:
            raise self.shell.lost(f"the command's channel closed: {_reason(e)}") from None

    def _recv(self, left: float) -> bytes | None:
        self.channel.settimeout(left)
        try:
            chunk = self.channel.recv(1 << 16)
        except socket.timeout:
            return None
        except (OSError, EOFError, paramiko.SSHException) as e:
            raise self.shell.lost(f"the command's channel broke: {_reason(e)}", StreamEnded) from None
        if not chunk:
            raise self.shell.lost("the command ended, or its connection did", StreamEnded)
        return chunk

    def close(self):
        # EOF on the command's stdin ends it; closing the channel alone would leave it running.
        try:
            self.channel.shutdown_write()
        except (OSError, EOFError, paramiko.SSHException):
            pass
        self.channel.close()


class SshShell:
    def __init__(self, board):
        self.board = board
        self.client = None
        self._sftp = None
        self.generation = 0
        self.bytes_sent = 0
        self.facts = {}    # file_transfer: "sftp" or "exec", found at the first connection
        self.noise = None  # the first text the login shell printed around a command
        self.liveness = None

    # -- connection ------------------------------------------------------------------------
    def _alive(self) -> bool:
        t = self.client and self.client.get_transport()
        return bool(t and t.is_active())

    def connect(self) -> int:
        if self._alive():
            return self.generation
        self.close()
        b, last = self.board, None
        for attempt in range(b.retries + 1):
            if attempt:
                stop.sleep(min(BACKOFF_S * 2 ** (attempt - 1), BACKOFF_MAX_S))
            try:
                self._open()
                if "file_transfer" not in self.facts:
                    self.facts["file_transfer"] = self._file_transfer()
                self.generation += 1
                return self.generation
            except paramiko.BadHostKeyException as e:
                raise HostKeyRefused(
                    f"board {b.name}: the host key of {_host_id(b.host, b.port)} does not match {b.known_hosts} "
                    f"(offered {fingerprint(e.key)}); if the board was reinstalled, remove the old entry with "
                    f"ssh-keygen -f {b.known_hosts} -R '{_host_id(b.host, b.port)}'") from None
            except (OSError, EOFError, paramiko.SSHException) as e:
                last = self._silent(e)
                self.close()
                if isinstance(e, paramiko.AuthenticationException):
                    break  # another attempt would be refused the same way
        raise LinkDown(f"cannot reach board {b.name} at {b.user}@{b.host}:{b.port}: {_reason(last)}")

    def _silent(self, exc):
        """paramiko's error for a server that never sent its SSH banner is vague; name it."""
        t = self.client and self.client.get_transport()
        if isinstance(exc, paramiko.SSHException) and t is not None and not t.remote_version:
            return TimeoutError(f"no SSH banner within {self.board.connect_timeout_s:g} s (connect_timeout_s); "
                                f"is an SSH server listening there, or is the board hung?")
        return exc

    def _open(self):
        b = self.board
        sock = socket.create_connection((b.host, b.port), timeout=b.connect_timeout_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = paramiko.SSHClient()
        self.client = client
        if b.known_hosts.is_file():
            client.load_host_keys(str(b.known_hosts))
        client.set_missing_host_key_policy(_Policy(b))
        client.connect(b.host, b.port, username=b.user, sock=sock,
                       key_filename=str(b.key_file) if b.key_file else None,
                       look_for_keys=b.key_file is None and not b.use_agent, allow_agent=b.use_agent,
                       timeout=b.connect_timeout_s, banner_timeout=b.connect_timeout_s,
                       auth_timeout=b.connect_timeout_s, channel_timeout=b.connect_timeout_s)
        client.get_transport().set_keepalive(max(1, int(b.keepalive_s)))
        self.liveness = LivenessWatch(client.get_transport(), b.name, b.liveness_s,
                                      interval_s=min(b.keepalive_s, b.liveness_s / 4))

    def _file_transfer(self) -> str:
        """"sftp" when the board's SFTP server answers its version exchange intact, else "exec": no SFTP
        server (dropbear images without sftp-server), or a login shell that prints into the
        stream of one it starts ("Garbage packet received")."""
        channel = None
        try:
            channel = self.client.get_transport().open_session(timeout=self.board.connect_timeout_s)
            channel.settimeout(self.board.connect_timeout_s)
            channel.invoke_subsystem("sftp")
            sftp = paramiko.SFTPClient(channel)  # its version exchange meets a greeting or an absent server
        except (OSError, EOFError, paramiko.SSHException, paramiko.SFTPError):
            if channel is not None:
                channel.close()
            if not self._alive():
                raise EOFError("the connection closed while its SFTP server was tried") from None
            return "exec"
        channel.settimeout(None)
        self._sftp = sftp
        return "sftp"

    def lost(self, message: str, kind=LinkDown) -> LinkDown:
        """The error for a broken link: BoardSilent when the liveness watch closed it."""
        silent = self.liveness and self.liveness.silent
        return BoardSilent(silent) if silent else kind(message)

    @contextlib.contextmanager
    def _watchdog(self, deadline: Deadline, what: str):
        """Close the connection if the block is still waiting WATCHDOG_GRACE_S past the deadline
        (paramiko cannot be told to give up there); the block then ends in CommandTimeout, and
        the next connect() makes a new connection."""
        transport = self.client and self.client.get_transport()
        fired = threading.Event()

        def fire():
            fired.set()
            if transport:
                transport.close()

        timer = threading.Timer(deadline.left() + WATCHDOG_GRACE_S, fire)
        timer.daemon = True
        timer.start()
        try:
            yield
        except (LinkDown, OSError, EOFError, paramiko.SSHException):
            if fired.is_set():
                raise CommandTimeout(f"board {self.board.name} did not answer {what} within {deadline.seconds:g} s; "
                                     f"the connection was closed") from None
            raise
        finally:
            timer.cancel()

    def _channel(self, command: str, deadline: Deadline):
        if not self._alive():
            raise self.lost(f"connection to board {self.board.name} is down")
        try:
            with self._watchdog(deadline, "a new command"):  # exec_command has no timeout
                transport = self.client.get_transport()
                channel = transport.open_session(timeout=min(self.board.connect_timeout_s, deadline.left()))
                channel.exec_command(command)
                return channel
        except (OSError, EOFError, paramiko.SSHException) as e:
            if deadline.passed() and self._alive():
                raise CommandTimeout(f"board {self.board.name} opened no channel within {deadline.seconds:g} s") from None
            raise self.lost(f"board {self.board.name}: {_reason(e)}") from None

    def _link_error(self, exc) -> Exception:
        """A failed operation: a broken link is LinkDown, anything else the error itself."""
        if not self._alive() or isinstance(exc, (EOFError, paramiko.SSHException)):
            return self.lost(f"connection to board {self.board.name} lost: {_reason(exc)}")
        return OSError(f"SFTP: {exc}") if isinstance(exc, paramiko.SFTPError) else exc

    # -- the shell protocol -----------------------------------------------------------------
    def run(self, command: str, timeout: "float | Deadline", stdin: bytes = b"") -> Completed:
        deadline, mark = Deadline.of(timeout), marker()
        channel = self._channel(framed(command, mark), deadline)
        out, err = bytearray(), bytearray()
        try:
            try:
                if stdin:
                    channel.sendall(stdin)
                channel.shutdown_write()
            except OSError:
                if not self._alive():
                    raise
                # The command ended without reading all its input (as `head` may): not an error.
            while True:
                # Whether the channel has ended is read before draining it: the last output, the
                # exit status and the close may all arrive while it drains.
                ended = channel.closed or (channel.exit_status_ready() and channel.eof_received)
                while channel.recv_ready():
                    out += channel.recv(1 << 16)
                while channel.recv_stderr_ready():
                    err += channel.recv_stderr(1 << 16)
                if ended and channel.eof_received:  # a channel closed by a lost link has no EOF
                    return self._unframed(mark, channel.recv_exit_status(), out, err)
                if ended or not self._alive():
                    raise self.lost(f"connection to board {self.board.name} lost while running a command")
                left = deadline.left()
                if left <= 0:
                    raise CommandTimeout(command)
                select.select([channel], [], [], stop.slice_of(min(left, 1.0)))
        except (OSError, EOFError, paramiko.SSHException) as e:
            raise self._link_error(e) from None
        finally:
            channel.close()

    def _unframed(self, mark: str, returncode: int, out: bytearray, err: bytearray) -> Completed:
        """The command's own output; the end marker's exit status unless it was killed first."""
        out, out_noise, status = unframe(bytes(out), mark)
        err, err_noise, _ = unframe(bytes(err), mark)
        noise = (out_noise + err_noise).strip()
        if noise and self.noise is None:
            self.noise = noise.decode(errors="replace")
        return Completed(returncode if status is None else status, out, err)

    def open(self, command: str, deadline: Deadline | None = None) -> ChannelStream:
        mark = marker()
        channel = self._channel(framed_stream(command, mark), deadline or Deadline(self.board.connect_timeout_s))
        return ChannelStream(channel, self, mark)

    def _sftp_client(self):
        if self._sftp is None:
            if not self._alive():
                raise LinkDown(f"connection to board {self.board.name} is down")
            self._sftp = self.client.open_sftp()
        return self._sftp

    def put(self, data: bytes, path: str):
        if self.facts.get("file_transfer") == "exec":
            self._put_exec(data, path)
            return
        try:
            with self._watchdog(Deadline(TRANSFER_TIMEOUT_S), f"a file upload to {path}"), \
                    self._sftp_client().open(path, "wb") as f:
                f.set_pipelined(True)
                f.write(data)
        except (OSError, EOFError, paramiko.SSHException, paramiko.SFTPError) as e:
            raise self._link_error(e) from None
        self.bytes_sent += len(data)

    def _put_exec(self, data: bytes, path: str):
        """`cat >` a file beside `path`, moved there once sha256sum on the board agrees."""
        part = quote(f"{path}.part-{secrets.token_hex(4)}")
        check = (f'h=$(sha256sum < {part}) && [ "${{h%% *}}" = {hashlib.sha256(data).hexdigest()} ] || '
                 f'{{ echo "the copy on the board fails its sha256 check" >&2; false; }}')
        self._over_exec(f"cat > {part} && {{ {check}; }} && mv {part} {quote(path)} || {{ rm -f {part}; exit 1; }}", data)
        self.bytes_sent += len(data)

    def _over_exec(self, command: str, stdin: bytes = b"") -> bytes:
        """A file command's stdout; its failure an OSError, as SFTP's would be."""
        try:
            done = self.run(command, TRANSFER_TIMEOUT_S, stdin)
        except CommandTimeout:
            raise OSError(f"timed out after {TRANSFER_TIMEOUT_S} s") from None
        if done.returncode != 0:
            raise OSError(last_line(done.stderr, "failed without a message"))
        return done.stdout

    def get(self, path: str) -> bytes:
        if self.facts.get("file_transfer") == "exec":
            return self._over_exec(f"cat {quote(path)}")
        try:
            with self._watchdog(Deadline(TRANSFER_TIMEOUT_S), f"a file download of {path}"), \
                    self._sftp_client().open(path, "rb") as f:
                return f.read()
        except (OSError, EOFError, paramiko.SSHException, paramiko.SFTPError) as e:
            raise self._link_error(e) from None

    def close(self):
        if self.liveness is not None:
            self.liveness.stop()
        for thing in (self._sftp, self.client):
            if thing is not None:
                thing.close()
        self._sftp = self.client = None
