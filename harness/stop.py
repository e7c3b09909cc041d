"""A board worker's stop flag, seen by every wait on the worker's thread.

Signals reach only the main thread, so a worker blocked on its board (a runner's reply, a serial
frame, a command's exit) would not see Ctrl-C. The engine binds an event to each worker thread;
every wait in the transports waits in slices of at most SLICE_S and calls check() between them,
which raises Stopped once the event is set. Stopped is a KeyboardInterrupt, so the cleanup that
an interrupt runs (killing the job's runner, closing the link) runs here too. On a thread with no
event bound (the main thread, a benchmark) check() does nothing and waits are not sliced.
"""
import threading
import time
from contextlib import contextmanager

SLICE_S = 0.2  # how soon a stopped worker notices, at most

_local = threading.local()


class Stopped(KeyboardInterrupt):
    """The run is stopping (Ctrl-C, SIGTERM, a fatal error elsewhere): end the job, keep no result."""


def bind(event: threading.Event | None):
    """Make `event` this thread's stop flag."""
    _local.event = event


def check():
    event = getattr(_local, "event", None)
    if event is not None and event.is_set():
        raise Stopped("the run is stopping")


def slice_of(seconds: float) -> float:
    """How long one wait of a longer one may block: at most SLICE_S on a worker's thread (after
    checking its flag), the whole of `seconds` elsewhere."""
    check()
    return min(seconds, SLICE_S) if getattr(_local, "event", None) is not None else seconds


def sleep(seconds: float):
    """time.sleep that ends early, raising Stopped, when the worker is stopped."""
    event = getattr(_local, "event", None)
    if event is None:
        time.sleep(seconds)
    elif event.wait(seconds):
        check()


@contextmanager
def unstoppable():
    """Cleanup that runs to its end though the worker is stopped (killing the job's runner)."""
    event = getattr(_local, "event", None)
    _local.event = None
    try:
        yield
    finally:
        _local.event = event
