"""A deadline: one point in time that a job hands down to every network call it makes (opening a
channel, starting a command, a file transfer, a read), so that no wait on the way outlives it."""
import time


class Deadline:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    @classmethod
    def of(cls, timeout: "float | Deadline") -> "Deadline":
        """A deadline as given, or one `timeout` seconds from now."""
        return timeout if isinstance(timeout, Deadline) else cls(timeout)

    def left(self) -> float:
        """Seconds until it passes, 0 once it has."""
        return max(0.0, self.at - time.monotonic())

    def passed(self) -> bool:
        return time.monotonic() >= self.at
