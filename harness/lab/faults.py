"""A fault proxy for serial links on TCP: between the host and an emulated board's UART it flips
bits, drops and duplicates bytes, delays them, and cuts the connection, on a seeded schedule, so
that a failing case can be replayed exactly; and it hands every whole frame to a `tamper`
function that may replay, hold back or alter frames, as a line that delivers old frames again
(a serial server's buffer, a USB adapter) or a buggy firmware would.

    proxy = FaultProxy(target_port, seed=7, rates=Rates(flip=1e-4, drop=1e-4, dup=1e-4))
    proxy.start()          # listens on proxy.port; the host connects to socket://127.0.0.1:PORT
    ...
    proxy.stop(); proxy.injected  # Counter of the faults it made, by kind

    def tamper(direction, wire):  # direction "to_board" or "to_host"; wire: one frame and its 0x00
        return [wire]             # the frames to send instead, in order

`pause()` makes the link silent on demand (bytes are held, new connections accepted but left
unanswered, as on a link whose far end vanished), `resume()` lets everything through again.

Each direction has its own generator (seeded from the seed and the direction), and a fault's
chance is per byte, so the schedule is a function of the seed and the bytes that pass.
"""
import queue
import random
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class Rates:
    """Per-byte chance of each fault; `cut_after` bytes (host to board) end the first connection."""
    flip: float = 0.0
    drop: float = 0.0
    dup: float = 0.0
    delay: float = 0.0
    delay_s: float = 0.05
    cut_after: int | None = None
    latency_s: float = 0.0  # every byte arrives this much later, each way (a long line: half its round trip)


class FaultProxy:
    def __init__(self, target_port: int, seed: int, rates: Rates, host: str = "127.0.0.1", tamper=None):
        self.target = (host, target_port)
        self.seed, self.rates, self.tamper = seed, rates, tamper
        self.injected = Counter()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._threads, self._stopping, self._lock = [], threading.Event(), threading.Lock()
        self._sockets, self._queues = [], []
        self._flowing = threading.Event()
        self._flowing.set()

    def start(self):
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def _accept(self):
        self._listener.settimeout(0.2)
        session = 0
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            board = socket.create_connection(self.target)
            for s in (client, board):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets += [client, board]
            for direction, src, dst in (("to_board", client, board), ("to_host", board, client)):
                rng = random.Random(f"{self.seed}/{session}/{direction}")
                cut = self.rates.cut_after if session == 0 and direction == "to_board" else None
                thread = threading.Thread(target=self._pump, args=(src, dst, rng, cut, direction), daemon=True)
                thread.start()
                self._threads.append(thread)
            session += 1

    def _frames(self, direction: str, data: bytes, partial: bytearray) -> bytes:
        """The bytes to pass on once `tamper` has seen every frame completed by `data`."""
        if self.tamper is None:
            return data
        partial += data
        *whole, rest = partial.split(b"\0")
        partial[:] = rest
        return b"".join(out for wire in whole for out in self.tamper(direction, wire + b"\0"))

    def _later(self, dst):
        """A sendall that delivers each chunk latency_s after it was handed over, in order."""
        chunks = queue.Queue()

        def deliver():
            while (item := chunks.get()) is not None:
                due, data = item
                time.sleep(max(0.0, due - time.monotonic()))
                try:
                    dst.sendall(data)
                except OSError:
                    return

        thread = threading.Thread(target=deliver, daemon=True)
        thread.start()
        self._threads.append(thread)
        self._queues.append(chunks)
        return lambda data: chunks.put((time.monotonic() + self.rates.latency_s, bytes(data)))

    def _pump(self, src, dst, rng, cut, direction):
        r, passed, partial = self.rates, 0, bytearray()
        send = self._later(dst) if r.latency_s else dst.sendall
        try:
            while not self._stopping.is_set():
                data = src.recv(4096)
                # A paused link holds everything, an end's close too (it reaches the other end
                # only once the link is back, as over a real network).
                while not self._flowing.wait(0.1):
                    if self._stopping.is_set():
                        return
                if not data:
                    break
                data = self._frames(direction, data, partial)
                out = bytearray()
                for byte in data:
                    passed += 1
                    if passed == cut:
                        self._count("cut")
                        raise ConnectionAbortedError
                    roll = rng.random()
                    if roll < r.drop:
                        self._count("drop")
                        continue
                    if roll < r.drop + r.flip:
                        byte ^= 1 << rng.randrange(8)
                        self._count("flip")
                    out.append(byte)
                    if roll >= 1 - r.dup:
                        out.append(byte)
                        self._count("dup")
                    if rng.random() < r.delay:
                        self._count("delay")
                        send(out)
                        out.clear()
                        time.sleep(r.delay_s)
                send(out)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def pause(self):
        self._flowing.clear()

    def resume(self):
        self._flowing.set()

    def _count(self, kind):
        with self._lock:
            self.injected[kind] += 1

    def stop(self):
        self._stopping.set()
        self._flowing.set()
        for chunks in self._queues:
            chunks.put(None)
        self._listener.close()
        with self._lock:
            for s in self._sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)  # wakes a pump waiting in recv (close alone does not)
                except OSError:
                    pass
                s.close()
        for thread in self._threads:
            thread.join(timeout=5)
