"""Errors a user can fix: the CLI prints their one-line message, never a traceback."""


class UserError(Exception):
    """Bad input or environment; the message names the thing and the fix."""


class TargetError(Exception):
    """A board or runner failed to produce a result: recorded as status "error", never as a method failure."""

    def __init__(self, message, stderr_tail=None):
        super().__init__(message)
        self.stderr_tail = stderr_tail


class JobUnsupported(Exception):
    """The board cannot run this one job (it does not fit its RAM): recorded as "unsupported"."""
