"""The serial protocol's host end (docs/serial-protocol.md): COBS frames with length, sequence
number and CRC-32, stop-and-wait requests with retransmission, duplicates answered from the kept
response. The line is any pyserial URL: a device path, socket://host:port, rfc2217://host:port.

Libraries: `cobs` (COBS framing, a C extension) and zlib's CRC-32.
"""
import secrets
import struct
import time
import zlib
from dataclasses import dataclass

import serial
from cobs import cobs

from harness.transports import LinkDown

PROTOCOL = 5
MAX_PAYLOAD = 4096
RESPONSE = 0x01
_HEADER = struct.Struct("<BBHH")  # type, flags, seq, len


class ProtocolError(Exception):
    """The board answered, but not as the protocol says (a version mismatch, a refused request)."""


@dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    payload: bytes
    response: bool


def encode(frame_type: int, seq: int, payload: bytes, response: bool = False) -> bytes:
    """One frame on the wire: COBS(header, payload, CRC-32) and the 0x00 delimiter."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    body = _HEADER.pack(frame_type, RESPONSE if response else 0, seq & 0xFFFF, len(payload)) + payload
    return cobs.encode(body + struct.pack("<I", zlib.crc32(body))) + b"\0"


def decode(wire: bytes) -> Frame | None:
    """A frame from the bytes between two delimiters, or None when it is damaged in any way."""
    try:
        body = cobs.decode(wire)
    except cobs.DecodeError:
        return None
    if len(body) < _HEADER.size + 4:
        return None
    frame_type, flags, seq, length = _HEADER.unpack_from(body)
    if length != len(body) - _HEADER.size - 4 or struct.unpack_from("<I", body, len(body) - 4)[0] != zlib.crc32(body[:-4]):
        return None
    return Frame(frame_type, seq, body[_HEADER.size:-4], bool(flags & RESPONSE))


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
        self._buffer = bytearray()
        self._pending = []            # device requests that arrived while we awaited a response
        self._answered = None         # (seq, encoded response) of the last device request answered
        self.counters = {"sent": 0, "retransmissions": 0, "bad_frames": 0, "duplicates": 0}

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
            try:
                chunk = self.port.read(max(1, self.port.in_waiting))
            except (serial.SerialException, OSError) as e:
                raise LinkDown(f"serial port {self.url}: {e}") from None
            self._buffer += chunk

    # -- the host as requester -------------------------------------------------------------------
    def request(self, frame_type: int, payload: bytes = b"", timeout_s: float | None = None,
                accept_device_request: bool = False) -> bytes | None:
        """Send a request and return its response payload, retransmitting on silence.

        With accept_device_request, a request from the device ends the wait (returns None) and is
        kept for `serve`: the device already acted on our request (RUN) and its response was lost."""
        self.seq = (self.seq + 1) & 0xFFFF
        wire = encode(frame_type, self.seq, payload)
        timeout = timeout_s or self.timeout_s
        for attempt in range(self.tries):
            if attempt:
                self.counters["retransmissions"] += 1
            self.send_raw(wire)
            self.counters["sent"] += 1
            deadline = time.monotonic() + timeout
            while (frame := self.receive(deadline)) is not None:
                if frame.response and frame.type == frame_type and frame.seq == self.seq:
                    return frame.payload
                if not frame.response and self._answered and frame.seq == self._answered[0]:
                    self.counters["duplicates"] += 1  # our answer to its last request was lost
                    self.send_raw(self._answered[1])
                elif not frame.response:
                    self._pending.append(frame)
                    if accept_device_request:
                        return None
        raise LinkDown(f"board on {self.url} did not answer request 0x{frame_type:02x} "
                       f"after {self.tries} tries of {timeout:g} s")

    # -- the host as responder ---------------------------------------------------------------------
    def serve(self, handle, deadline: float):
        """Answer the device's requests with handle(frame) -> (response payload, done) until done.

        A request repeated with the seq of the last one answered is answered again from the
        kept response, not handled twice."""
        while True:
            frame = self._pending.pop(0) if self._pending else self.receive(deadline)
            if frame is None:
                raise LinkDown(f"board on {self.url} sent nothing before the job's deadline")
            if frame.response:
                continue  # a late response to an earlier request of ours
            if self._answered and frame.seq == self._answered[0]:
                self.counters["duplicates"] += 1
                self.send_raw(self._answered[1])
                continue
            payload, done = handle(frame)
            wire = encode(frame.type, frame.seq, payload, response=True)
            self._answered = (frame.seq, wire)
            self.send_raw(wire)
            if done:
                return

    def close(self):
        self.port.close()
