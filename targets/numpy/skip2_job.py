"""A job's methods and fields, read from the one table that defines them (skip2_job.def).

The C core compiles the same table (X-macros), so the NumPy runner, the C runner, the firmware
and the harness agree on every method's index, every field's type, range, default and place in
the serial protocol's RUN request. The limits the ranges are written with come from
skip2_limits.def. Deployed, both files sit beside this one; in the repository, in the C core's
folder.
"""
import os
import re
from dataclasses import dataclass

import numpy as np

from skip2_quant import FORMATS

_HERE = os.path.dirname(os.path.abspath(__file__))
_FOLDERS = (_HERE, os.path.join(_HERE, os.pardir, "c", "core"))


def _table(name):
    """The rows of a .def file, comments removed."""
    for folder in _FOLDERS:
        path = os.path.join(folder, name)
        if os.path.exists(path):
            with open(path) as f:
                return re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
    raise SystemExit(f"{name} not found (looked in {', '.join(_FOLDERS)})")


def _rows(text, macro):
    """Each SKIP2_<macro>(...) row as its list of arguments."""
    return [[arg.strip() for arg in _split(args)]
            for args in re.findall(rf"^SKIP2_{macro}\((.*)\)\s*$", text, re.M)]


def _split(args):
    """Arguments split at the commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(args):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(args[start:i])
            start = i + 1
    return parts + [args[start:]]


LIMITS = {name: int(value) for name, value in _rows(_table("skip2_limits.def"), "LIMIT")}


@dataclass(frozen=True)
class Method:
    index: int      # RUN's method byte, the C enum's value
    enum: str       # SKIP2_<enum> in C
    name: str
    cache: str      # "none", "option" or "always"


@dataclass(frozen=True)
class Field:
    name: str
    type: str       # "method", "bool", "format", "int", "real", "layers"
    lo: float
    hi: float
    default: object
    methods: frozenset  # names of the methods whose jobs hold it
    own: bool       # one method's own option (ONLY(...)): empty in other methods' records
    source: str     # "job" (the job matrix) or "hp" (the experiment's [finetune])
    run_type: str   # "u8", "u32", "i32", "f32", or "none"
    run_at: int

    def holds(self, method):
        return method in self.methods


_JOB_TEXT = _table("skip2_job.def")
METHODS = tuple(Method(i, enum, name.strip('"'), cache.lower())
                for i, (enum, name, cache) in enumerate(_rows(_JOB_TEXT, "METHOD")))
METHOD_NAMES = tuple(m.name for m in METHODS)
_BY_ENUM = {m.enum: m.name for m in METHODS}
_FLOAT32 = np.finfo(np.float32)
_CONSTANTS = {"FLT_MIN": float(_FLOAT32.tiny), "FLT_MAX": float(_FLOAT32.max),
              **{f"SKIP2_{name}": value for name, value in LIMITS.items()}}


def _number(kind, text):
    """A bound: a number, a limit or FLT_MIN/FLT_MAX, maybe negated; a float for REAL fields."""
    sign, word = (-1, text[1:]) if text.startswith("-") else (1, text)
    value = sign * (_CONSTANTS[word] if word in _CONSTANTS else float(word))
    return float(value) if kind == "real" else int(value)


def _holders(text):
    """The methods column: ALL, ALL_BUT(M(X) | ...) or ONLY(M(X) | ...)."""
    named = {_BY_ENUM[enum] for enum in re.findall(r"M\((\w+)\)", text)}
    if text == "ALL":
        return frozenset(METHOD_NAMES)
    if text.startswith("ALL_BUT("):
        return frozenset(METHOD_NAMES) - named
    if text.startswith("ONLY("):
        return frozenset(named)
    raise SystemExit(f"skip2_job.def: methods must be ALL, ALL_BUT(...) or ONLY(...); got {text}")


def _default(kind, text):
    if kind == "format":
        return text.lower()
    return bool(int(text)) if kind == "bool" else _number(kind, text)


FIELDS = tuple(Field(name, kind, _number(kind, lo), _number(kind, hi), _default(kind, default), _holders(methods),
                     methods.startswith("ONLY("), source.lower(), run_type.lower(), int(run_at))
               for name, kind, lo, hi, default, methods, source, run_type, run_at in
               ((row[0], row[1].lower(), *row[2:]) for row in _rows(_JOB_TEXT, "JOB_FIELD")))
FIELD = {f.name: f for f in FIELDS}
RUN_SIZES = {"u8": 1, "u32": 4, "i32": 4, "f32": 4, "none": 0}


def as_held(field, value):
    """A field's value as every runner holds it: reals in float32."""
    return float(np.float32(value)) if field.type == "real" else value


def describe(field):
    """The values a field takes, in words: "an integer in 1..1000000", "a positive number"."""
    if field.type in ("int", "layers"):
        return f"an integer in {field.lo}..{field.hi}"
    if field.type == "real":
        if field.hi == _CONSTANTS["FLT_MAX"] and field.lo == -_CONSTANTS["FLT_MAX"]:
            return "a number within float32's range (±3.4e+38)"
        if field.hi == _CONSTANTS["FLT_MAX"] and field.lo == _CONSTANTS["FLT_MIN"]:
            return "a positive number in float32's normal range (1.2e-38..3.4e+38)"
        return f"a number in {field.lo:g}..{field.hi:g}"
    return {"bool": "true or false", "format": f"one of {', '.join(FORMATS)}",
            "method": f"one of {', '.join(METHOD_NAMES)}"}[field.type]
