"""The job limits every runner enforces (targets/c/core/skip2_limits.def), for config checks."""
from harness.paths import import_runner_modules

import_runner_modules()
from skip2_limits import LIMITS, RANGES  # noqa: E402  (the runner's own reader: one parser, one file)

__all__ = ["LIMITS", "RANGES"]
