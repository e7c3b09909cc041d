"""Method names and variants as experiments spell them: `<method>`, `<method>+cache` or
`<method>+cache-int8` (the cache with int8 rows, docs/methods.md)."""
import skip2_methods  # (board-side code reads the method list from skip2_job.def)
from harness.job_table import FIELD

METHODS = skip2_methods.METHODS
FAILURES = skip2_methods.FAILURES  # a fail's reason by the code the runners report
# "+cache" is an option of methods with a frozen prefix; skip2-lora is skip-lora with the cache
# always on, so it takes no "+cache", only the int8 format of its cache.
CACHE_OPTIONAL = tuple(m for m in skip2_methods.CACHEABLE if m != "skip2-lora")
INT8_SUFFIX = "+cache-int8"
VARIANTS = (METHODS + tuple(f"{m}+cache" for m in CACHE_OPTIONAL)
            + tuple(f"{m}{INT8_SUFFIX}" for m in skip2_methods.CACHEABLE))


def parse_variant(variant: str) -> tuple[str, bool, str]:
    """'ft-last+cache-int8' -> ('ft-last', True, 'int8'): the method, whether it caches and the
    cache's format; raises ValueError naming the known variants."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown method '{variant}'; known methods: {', '.join(VARIANTS)}")
    method, _, suffix = variant.partition("+")
    return method, bool(suffix) or method == "skip2-lora", "int8" if variant.endswith(INT8_SUFFIX) else "f32"


def used_hp(method: str, hp: dict) -> dict:
    """The hyper-parameters of `hp` that jobs of `method` hold (skip2_job.def): a job's identity
    (harness/plan.py). oselm-head, for one, solves its head by least squares in its own passes,
    with no learning rate, epochs or adapters, and no method holds another's own options."""
    return {k: v for k, v in hp.items() if FIELD[k].holds(method)}
