"""Method names and variants as experiments spell them: `<method>` or `<method>+cache`."""
from harness.paths import import_runner_modules

import_runner_modules()
import skip2_methods  # noqa: E402  (board-side code is the single source of the method list)

METHODS = skip2_methods.METHODS
# "+cache" is an option of methods with a frozen prefix; skip2-lora is skip-lora with the cache
# always on, so it takes no suffix.
CACHE_OPTIONAL = tuple(m for m in skip2_methods.CACHEABLE if m != "skip2-lora")
VARIANTS = METHODS + tuple(f"{m}+cache" for m in CACHE_OPTIONAL)


def parse_variant(variant: str) -> tuple[str, bool]:
    """'ft-last+cache' -> ('ft-last', True); raises ValueError naming the known variants."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown method '{variant}'; known methods: {', '.join(VARIANTS)}")
    method, _, suffix = variant.partition("+")
    return method, bool(suffix) or method == "skip2-lora"
