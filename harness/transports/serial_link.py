"""The serial protocol's host end (docs/serial-protocol.md): COBS frames with length, sequence
number, session, job token and CRC-32, stop-and-wait requests with retransmission, duplicates
answered from the kept response, and only frames of this session and job taken: the rest are
dropped and counted. The line is any pyserial URL: a device path, socket://host:port,
rfc2217://host:port.

Libraries: `cobs` (COBS framing, a C extension) and zlib's CRC-32.
"""
import secrets
import struct
import time
import zlib
from dataclasses import dataclass

import serial
from cobs import cobs

from harness import stop
from harness.transports import LinkDown

PROTOCOL = 7
MAX_PAYLOAD = 4096
RESPONSE, REFUSED, NOTICE = 0x01, 0x02, 0x04  # flags: a response; refusing another session's request; a notice
BOOT, BEAT = 0x13, 0x14  # the board's notices: it has just reset; it works on the job
_HEADER = struct.Struct("<BBHHII")  # type, flags, seq, len, session, token
_HEADER_V5 = struct.Struct("<BBHH")  # protocols 1-5: read only to name an older board's protocol
RESET_REASONS = {0: "power-on", 1: "reset (reset pin, debugger or emulator)", 2: "stack overflow",
                 3: "fault", 4: "panic"}


class ProtocolError(Exception):
    """The board answered, but not as the protocol says (a version mismatch, a refused request)."""


class SessionRefused(ProtocolError):
    """The board holds another session (it was reset, or another host opened one): reconnect."""


class BoardReset(LinkDown):
    """The board announced a boot: whatever it held in RAM, and the job it ran, are gone."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"board on {url} was reset: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    payload: bytes
    flags: int = 0
    session: int = 0
    token: int = 0
    v5: bool = False  # in the layout of protocols 1-5

    @property
    def response(self) -> bool:
        return bool(self.flags & RESPONSE)


def encode(frame_type: int, seq: int, payload: bytes, response: bool = False, session: int = 0,
           token: int = 0, flags: int = 0) -> bytes:
    """One frame on the wire: COBS(header, payload, CRC-32) and the 0x00 delimiter."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    body = _HEADER.pack(frame_type, flags | (RESPONSE if response else 0), seq & 0xFFFF, len(payload),
                        session, token) + payload
    return cobs.encode(body + struct.pack("<I", zlib.crc32(body))) + b"\0"


def decode(wire: bytes) -> Frame | None:
    """A frame from the bytes between two delimiters, or None when it is damaged in any way."""
    try:
        body = cobs.decode(wire)
    except cobs.DecodeError:
        return None
    if len(body) < _HEADER_V5.size + 4 or struct.unpack_from("<I", body, len(body) - 4)[0] != zlib.crc32(body[:-4]):
        return None
    frame_type, flags, seq, length = _HEADER_V5.unpack_from(body)
    if length > MAX_PAYLOAD:
        return None
    if len(body) >= _HEADER.size + 4 and length == len(body) - _HEADER.size - 4:
        session, token = struct.unpack_from("<II", body, _HEADER_V5.size)
        return Frame(frame_type, seq, body[_HEADER.size:-4], flags, session, token)
    if length == len(body) - _HEADER_V5.size - 4:
        return Frame(frame_type, seq, body[_HEADER_V5.size:-4], flags, v5=True)
    return None


def boot_reason(payload: bytes) -> str:
    """The reason a BOOT notice gives for the board's last reset, in words."""
    if len(payload) < 7:
        return "reason unknown"
    reason, pc = struct.unpack_from("<BI", payload, 2)
    detail = payload[7:7 + 48].split(b"\0", 1)[0].decode("ascii", errors="replace")
    words = RESET_REASONS.get(reason, f"reason {reason}")
    if detail and detail not in words:
        words += f" ({detail})"
    return words + (f" at pc 0x{pc:08x}" if pc else "")


class SerialLink:
    """One board's line. The host asks (`request`) outside a job and answers (`serve`) during one."""

    def __init__(self, url: str, timeout_s: float = 0.4, tries: int = 10, baudrate: int = 115200):
        self.url, self.timeout_s, self.tries = url, timeout_s, tries
        try:
            self.port = serial.serial_for_url(url, baudrate=baudrate, timeout=0.05)
        except (serial.SerialException, OSError, ValueError) as e:
            raise LinkDown(f"cannot open serial port {url}: {e}") from None
        # A random start: a board that kept the last request of an earlier session answers a
        # repeat of that seq from memory, so a new session must not start where one ended.
        self.seq = secrets.randbits(16)
        # The session's nonce, sent in HELLO and in every frame: a board holding another session
        # refuses our requests, and its frames of an earlier session are dropped here.
        self.session = secrets.randbits(32) | 1
        self.token = 0                # the running job's token (RUN); 0 outside a job
        self._device_seq = None       # the device's last request or notice taken in this job
        self._buffer = bytearray()
        self._pending = []            # device requests that arrived while we awaited a response
        self._answered = None         # (seq, token, encoded response) of the last device request answered
        self.counters = {"sent": 0, "retransmissions": 0, "bad_frames": 0, "duplicates": 0, "dropped": 0}

    # -- bytes and frames ----------------------------------------------------------------------
    def send_raw(self, data: bytes):
        try:
            self.port.write(data)
            self.port.flush()
        except (serial.SerialException, OSError) as e:
            raise LinkDown(f"serial port {self.url}: {e}") from None

    def receive(self, deadline: float) -> Frame | None:
        """The next undamaged frame, or None at the deadline; damaged frames are counted and skipped."""
        while True:
            end = self._buffer.find(b"\0")
            if end >= 0:
                wire = bytes(self._buffer[:end])
                del self._buffer[:end + 1]
                if not wire:
                    continue
                frame = decode(wire)
                if frame is None:
                    self.counters["bad_frames"] += 1
                    continue
                return frame
            if time.monotonic() >= deadline:
                return None
            stop.check()  # each read waits 50 ms at most: a stopped worker stops here
            try:
                chunk = self.port.read(max(1, self.port.in_waiting))
            except (serial.SerialException, OSError) as e:
                raise LinkDown(f"serial port {self.url}: {e}") from None
            self._buffer += chunk

    def begin_job(self, token: int):
        """From here, frames of the job `token` (0: none) are taken; every other is dropped."""
        self.token, self._device_seq, self._pending = token, None, []

    def _ours(self, frame: Frame) -> bool:
        """Whether a frame is of this session and job. A BOOT notice raises BoardReset; any other
        frame of another session or job (a late one, a replay) is dropped and counted."""
        if frame.flags & NOTICE and frame.type == BOOT:
            raise BoardReset(self.url, boot_reason(frame.payload))
        if frame.v5 or frame.session != self.session or frame.token != self.token:
            self.counters["dropped"] += 1
            return False
        return True

    def _repeat(self, frame: Frame) -> bool:
        """A device request we answered last, sent again (our answer was lost): answered again."""
        if frame.response or not self._answered or (frame.seq, frame.token) != self._answered[:2] \
                or frame.session != self.session:
            return False
        self.counters["duplicates"] += 1
        if frame.token != self.token:  # a repeat of an earlier job's last request: not this job's
            self.counters["dropped"] += 1
        self.send_raw(self._answered[2])
        return True

    def _stale(self, frame: Frame) -> bool:
        """A device frame behind the last one taken in this job (a late copy): dropped, counted."""
        behind = (self._device_seq - frame.seq) & 0xFFFF if self._device_seq is not None else 0
        if 0 < behind <= 1024:
            self.counters["dropped"] += 1
            return True
        self._device_seq = frame.seq
        return False

    def _check_refusal(self, frame: Frame, frame_type: int):
        """A refusal of our request: the board holds another session."""
        if not frame.flags & REFUSED or len(frame.payload) < 8:
            return
        theirs, board = struct.unpack_from("<II", frame.payload)
        if theirs == self.session:
            raise SessionRefused(f"board on {self.url} refused request 0x{frame_type:02x}: it holds session "
                                 f"{board:08x}, not this host's {self.session:08x} (it was reset, or another host "
                                 f"opened a session)")

    # -- the host as requester -------------------------------------------------------------------
    def request(self, frame_type: int, payload: bytes = b"", timeout_s: float | None = None,
                accept_device_request: bool = False) -> bytes | None:
        """Send a request and return its response payload, retransmitting on silence.

        With accept_device_request, a request from the device ends the wait (returns None) and is
        kept for `serve`: the device already acted on our request (RUN) and its response was lost."""
        self.seq = (self.seq + 1) & 0xFFFF
        wire = encode(frame_type, self.seq, payload, session=self.session, token=self.token)
        timeout = timeout_s or self.timeout_s
        for attempt in range(self.tries):
            if attempt:
                self.counters["retransmissions"] += 1
            self.send_raw(wire)
            self.counters["sent"] += 1
            deadline = time.monotonic() + timeout
            while (frame := self.receive(deadline)) is not None:
                if frame.response and frame.type == frame_type and frame.seq == self.seq:
                    if frame.v5:
                        return frame.payload  # an older board: its HELLO answer names its protocol
                    self._check_refusal(frame, frame_type)
                    if self._ours(frame) and not frame.flags & REFUSED:
                        return frame.payload
                    continue
                if self._repeat(frame) or not self._ours(frame):
                    continue
                if frame.response or frame.flags & NOTICE or self._stale(frame):
                    continue  # a late response of ours; a heartbeat while idle; a late copy
                self._pending.append(frame)
                if accept_device_request:
                    return None
        dropped = f"; dropped {self.counters['dropped']} frames not of this session and job" \
            if self.counters["dropped"] else ""
        raise LinkDown(f"board on {self.url} did not answer request 0x{frame_type:02x} "
                       f"after {self.tries} tries of {timeout:g} s{dropped}")

    # -- the host as responder ---------------------------------------------------------------------
    def serve(self, handle, deadline: float, liveness_s: float):
        """Answer the device's requests with handle(frame) -> (response payload, done) until done.

        A request repeated with the seq of the last one answered is answered again from the
        kept response, not handled twice. Any frame of this job (a request, a heartbeat) shows
        the board alive; silence beyond liveness_s ends the wait, as does the job's deadline."""
        alive = time.monotonic()
        while True:
            if self._pending:
                frame = self._pending.pop(0)
            else:
                frame = self.receive(min(deadline, alive + liveness_s))
                if frame is None:
                    if time.monotonic() >= deadline:
                        raise LinkDown(f"board on {self.url} did not finish the job before its deadline (timeout_s)")
                    raise LinkDown(f"board on {self.url} silent for {liveness_s:g} s (liveness_s): no heartbeat, "
                                   f"progress or request")
                if frame.response or self._repeat(frame) or not self._ours(frame) or self._stale(frame):
                    continue
            alive = time.monotonic()
            if frame.flags & NOTICE:
                continue  # a heartbeat
            payload, done = handle(frame)
            wire = encode(frame.type, frame.seq, payload, response=True, session=self.session, token=self.token)
            self._answered = (frame.seq, frame.token, wire)
            self.send_raw(wire)
            if done:
                return

    def close(self):
        self.port.close()
