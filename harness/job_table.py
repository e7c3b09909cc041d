"""A job's methods, fields and limits (targets/c/core/skip2_job.def and skip2_limits.def), read by
the runners' own parser: one table for the harness, the NumPy runner, the C core and the firmware."""
from skip2_job import FIELD, FIELDS, LIMITS, METHODS, RUN_SIZES, as_held, describe
from skip2_quant import FORMATS

HP_FIELDS = tuple(f for f in FIELDS if f.source == "hp")  # an experiment's [finetune] fields
_SOURCES = {"job": "the job (variant, seed)", "hp": "`[finetune]`"}


def _holders(field) -> str:
    names = [m.name for m in METHODS]
    if field.own:
        return ", ".join(n for n in names if field.holds(n))
    missing = [n for n in names if not field.holds(n)]
    return "all but " + ", ".join(missing) if missing else "all"


def _default(field) -> str:
    if field.source != "hp":
        return ""
    return "the method's default" if field.type == "layers" else f"`{field.default}`"


def markdown() -> str:
    """The job's fields as a Markdown table (docs/runner-contract.md holds it; `skip2bench fields`)."""
    rows = ["| field | values | default | jobs of | from | RUN (type @ byte) |", "|---|---|---|---|---|---|"]
    for f in FIELDS:
        run = f"`{f.run_type} @ {f.run_at}`" if f.run_type != "none" else "not sent"
        values = describe(f) + (" (a bit mask of layers)" if f.type == "layers" else "")
        rows.append(f"| `{f.name}` | {values} | {_default(f)} | {_holders(f)} | {_SOURCES[f.source]} | {run} |")
    return "\n".join(rows) + "\n"


__all__ = ["FIELD", "FIELDS", "HP_FIELDS", "LIMITS", "METHODS", "RUN_SIZES", "FORMATS", "as_held", "describe",
           "markdown"]
