"""The job limits every runner enforces (targets/c/core/skip2_limits.def) and the storage formats
every runner knows, for config checks."""
from harness.paths import import_runner_modules

import_runner_modules()
from skip2_limits import LIMITS, RANGES  # noqa: E402  (the runner's own reader: one parser, one file)
from skip2_quant import FORMATS  # noqa: E402

__all__ = ["LIMITS", "RANGES", "FORMATS"]
