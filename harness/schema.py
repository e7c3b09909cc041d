"""The record schema: what a runner's result holds, and what one line of records.jsonl holds.

Defined once here (docs/records.md). A runner's result is validated when it arrives, a record
before it is written and whenever a log is read; `harness.records` is the only reader and writer
of logs, and everything else (report, resume, later compare and history) reads through it.

Versions: 1 is the log of skip2bench before records carried `schema_version` (no board
fingerprint, the C binary's hash inside `runtime`); 2 has no storage formats (every job stored
its cache and inputs in float32); 3 has no counts of dropped frames and of bytes received during
an MCU's counted work; 4 does not name the board's kind and has job records only; 5 has no
estimated cycles of an emulated MCU; 6 is this one.
Every later version ships a migration from the one before and a test that reads a committed log
of the old version.
"""
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from harness.job_table import FIELDS, FORMATS

SCHEMA_VERSION = 6
# The kinds of record a log holds: a fine-tuning job's, and a probe's (a measurement of the board
# itself, such as the C core's ceiling: harness/probes.py).
RECORD_TYPES = ("job", "probe")
STATUSES = ("ok", "fail", "unsupported", "error")
# What clock a time came from: the board's own (a runner timing itself; the host is a board too),
# the host's wall clock around the job, or an estimate from an emulator's instruction count.
TIME_KINDS = ("device", "host", "emulated")

Fraction = Annotated[float, Field(ge=0, le=1)]
Seconds = Annotated[float, Field(ge=0)]
Count = Annotated[int, Field(ge=0)]
# Runners of the speed benchmark that only time themselves (no phase split, no counted work).
COMPARATORS = ("torch",)


class _Model(BaseModel):
    # Unknown fields are errors: a typo or a runner out of step with the schema shows at once.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Memory(_Model):
    weights_bytes: Count
    grads_bytes: Count
    optimizer_bytes: Count
    activations_bytes: Count
    cache_bytes: Count


class Result(_Model):
    """What a runner prints (docs/runner-contract.md), plus what the target adds."""
    impl: str
    method: str
    status: Literal["ok", "fail"]
    reason: Optional[str]
    acc_before: Fraction
    acc_after: Optional[Fraction]
    ft_time_s: Seconds
    # The phase split, counted work and memory: from the reference runners always (checked
    # below); the benchmark's comparators only time themselves.
    fwd_time_s: Optional[Seconds] = None
    bwd_time_s: Optional[Seconds] = None
    upd_time_s: Optional[Seconds] = None
    cache_time_s: Optional[Seconds] = None
    epoch_times_s: list[Seconds]
    epoch_loss: list[Optional[float]]
    n_ft: Annotated[int, Field(ge=1)]
    n_test: Annotated[int, Field(ge=1)]
    ft_macs: Optional[Count] = None
    trainable_params: Count
    cache_capacity_samples: Count
    cache_hits: Count
    cache_misses: Count
    cache_hit_rate: Optional[Fraction]
    mem: Optional[Memory] = None
    peak_rss_bytes: Optional[Count]
    runtime: dict[str, Any]
    # Instructions of fine-tuning and of each phase, where the board counts them (an emulated
    # MCU under QEMU -icount: exact and repeatable).
    ft_instructions: Optional[Count] = None
    fwd_instructions: Optional[Count] = None
    bwd_instructions: Optional[Count] = None
    upd_instructions: Optional[Count] = None
    cache_instructions: Optional[Count] = None
    # Cortex-M4 cycles of fine-tuning as the cycle model estimates them for an emulated MCU
    # (targets/c/cyclemodel: the TRM's counts per instruction, flash wait states), over the same
    # instructions as ft_instructions; None where no model ran.
    ft_cycles_est: Optional[Count] = None
    # Time an MCU spent waiting for and moving streamed input rows, outside every time above.
    transfer_time_s: Optional[Seconds] = None
    streamed_bytes: Optional[Count] = None  # input rows the host sent during the job
    # Frames of the board the host dropped during the job as not this job's (a late or replayed
    # frame of an earlier job or session), and bytes an MCU received while it counted the job's
    # work (their interrupts are in its instruction counts; 0 on a quiet line).
    dropped_frames: Optional[Count] = None
    link_bytes_during_compute: Optional[Count] = None
    # An MCU's memory as measured: flash (firmware, model image) and per RAM region its size and
    # the bytes of static data, stack high-water, data set and arena (harness/mcu/footprint.py).
    mcu_memory: Optional[dict[str, dict[str, Any]]] = None
    # Added by the target that ran it.
    runner_wall_s: Optional[Seconds] = None  # host wall clock of the runner's execution (the rest of wall_s is the harness's)
    runner_sha256: Optional[str] = None
    attempts: Annotated[int, Field(ge=1)] = 1
    time_kind: Literal[TIME_KINDS] = "device"

    @model_validator(mode="after")
    def _consistent(self):
        if self.impl not in COMPARATORS and None in (self.fwd_time_s, self.bwd_time_s, self.upd_time_s,
                                                      self.cache_time_s, self.ft_macs, self.mem):
            raise ValueError(f"a {self.impl} result reports the phase times, ft_macs and mem")
        if (self.status == "fail") != (self.acc_after is None) or (self.status == "fail") != bool(self.reason):
            raise ValueError("a fail has a reason and no acc_after; an ok has acc_after and no reason")
        return self


def _optional(field):
    kind = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    return Optional[kind], None


# A record's result fields: every Result field but the ones a record holds otherwise, each
# empty (None) on records without a result (error, unsupported); memory flattened to mem_*.
_RESULT_FIELDS = {name: _optional(f) for name, f in Result.model_fields.items()
                  if name not in ("impl", "method", "status", "reason", "mem")}
_MEMORY_FIELDS = {f"mem_{name}": _optional(f) for name, f in Memory.model_fields.items()}

_RecordResult = create_model("_RecordResult", __base__=_Model, **_RESULT_FIELDS, **_MEMORY_FIELDS)


def _job_field(f):
    """A record's field for a job field of skip2_job.def; a method's own options are optional:
    records written before the option existed lack it."""
    kind = {"method": str, "bool": bool, "format": Literal[FORMATS], "int": int, "real": float,
            "layers": Optional[list[int]]}[f.type]  # layers: as the experiment file gives them
    return (Optional[kind], None) if f.own else (kind, ...)


_RecordJob = create_model("_RecordJob", __base__=_RecordResult, **{f.name: _job_field(f) for f in FIELDS})


class Record(_RecordJob):
    """One line of records.jsonl: one job x board x implementation x repetition."""
    schema_version: Literal[SCHEMA_VERSION]
    record_type: Literal["job"] = "job"
    # identity (and the job's fields, above)
    run_id: str
    job_id: str
    task: str
    variant: str
    impl: str
    board: str
    # The board's kind (its lab `transport`: local, ssh, serial, or a registered one;
    # harness.kinds); empty in records before version 5, whose run's manifest names it.
    board_kind: Optional[str] = None
    repetition: int
    hidden: str
    # The model's layer sizes, "512-96-96-2" (hidden's and the task's), as probes name models;
    # empty in records before version 5. Set by model_key, so not compared on its own.
    sizes: Optional[str] = None
    model_key: str
    weights_sha256: str
    data_sha256: str
    board_fingerprint: Optional[str]
    # outcome
    status: Literal[STATUSES]
    reason: Optional[str] = None
    error: Optional[str] = None
    stderr_tail: Optional[str] = None
    started_at: str
    wall_s: Seconds

    @model_validator(mode="after")
    def _outcome(self):
        has_result = self.acc_before is not None
        if self.status in ("ok", "fail") and not has_result:
            raise ValueError(f"a record with status {self.status} needs the runner's result")
        if self.status in ("error", "unsupported") and has_result:
            raise ValueError(f"a record with status {self.status} carries no result")
        _says_why(self)
        return self


class ProbeRecord(_Model):
    """One line of records.jsonl: one probe (a measurement of the board) x board x repetition."""
    schema_version: Literal[SCHEMA_VERSION]
    record_type: Literal["probe"]
    run_id: str
    job_id: str            # a hash of the probe and its workload: the same probe on every board
    probe: str             # its name (harness.probes.PROBES)
    impl: str              # the runner that measures it
    board: str
    board_kind: str
    board_fingerprint: Optional[str]
    repetition: int
    workload: dict[str, Any]  # what it measures on (the products' shapes)
    status: Literal[STATUSES]
    reason: Optional[str] = None
    error: Optional[str] = None
    stderr_tail: Optional[str] = None
    started_at: str
    wall_s: Seconds
    # name -> measured value, in the unit its probe names (docs/records.md); empty unless ok
    values: Optional[dict[str, Annotated[float, Field(ge=0)]]] = None
    runner_sha256: Optional[str] = None

    @model_validator(mode="after")
    def _outcome(self):
        if self.status == "fail":
            raise ValueError("a probe ends ok, unsupported or error; it cannot diverge")
        if (self.status == "ok") != bool(self.values):
            raise ValueError("an ok probe record has its values, any other none")
        _says_why(self)
        return self


def _says_why(record) -> None:
    """Any record that did not finish says why: an error what went wrong, an unsupported the reason."""
    if record.status == "error" and not record.error:
        raise ValueError("an error record says what went wrong in 'error'")
    if record.status == "unsupported" and not record.reason:
        raise ValueError("an unsupported record says why in 'reason'")


MODELS = {"job": Record, "probe": ProbeRecord}


def validated(raw: dict) -> BaseModel:
    """A record of this version, validated by the model of its record_type."""
    kind = raw.get("record_type", "job")
    if kind not in MODELS:
        raise ValueError(f"record_type {kind!r} is not one of {', '.join(MODELS)}")
    return MODELS[kind].model_validate(raw)


# Fields equal on every run of the same job with the same software under test: "reproduced"
# means equal on all of them (docs/records.md). Times, dates, hashes of what ran and the
# process's memory high-water are samples or provenance, not results.
DETERMINISTIC = ("job_id", "task", "variant", "impl", "board", "repetition", *(f.name for f in FIELDS), "hidden",
                 "model_key", "weights_sha256", "data_sha256", "status", "reason", "acc_before", "acc_after",
                 "epoch_loss", "n_ft", "n_test", "ft_macs", "trainable_params", "cache_capacity_samples",
                 "cache_hits", "cache_misses", "cache_hit_rate", *_MEMORY_FIELDS, "ft_instructions",
                 "fwd_instructions", "bwd_instructions", "upd_instructions", "cache_instructions",
                 "ft_cycles_est", "streamed_bytes", "mcu_memory")


def flatten(result: Result) -> dict:
    """A validated result as record fields: the mem object flattened to mem_* fields."""
    flat = result.model_dump(exclude={"impl", "method", "mem"})
    flat.update({f"mem_{k}": v for k, v in (result.mem.model_dump() if result.mem else {}).items()})
    return flat


def problem(err: ValidationError) -> str:
    """The first problem of a validation error as `field: message`."""
    e = err.errors()[0]
    where = ".".join(str(p) for p in e["loc"]) or "(record)"
    return f"{where}: {e['msg'].removeprefix('Value error, ')}"


# -- migrations: each takes a record of version N and returns one of version N + 1 ----------
def _v1_to_v2(rec: dict) -> dict:
    runtime = rec.get("runtime")
    has_result = rec.get("status") in ("ok", "fail")
    rec = dict(rec, schema_version=2, board_fingerprint=rec.get("board_fingerprint"))
    if has_result:
        rec.setdefault("runner_sha256", (runtime or {}).pop("binary_sha256", None))
        rec.setdefault("attempts", 1)
        rec.setdefault("time_kind", "device")
    return rec


def _v2_to_v3(rec: dict) -> dict:
    return dict(rec, schema_version=3, cache_format="f32", input_format="f32")


def _v3_to_v4(rec: dict) -> dict:
    return dict(rec, schema_version=4)  # the new counts are unknown (None) for older records


def _v4_to_v5(rec: dict) -> dict:
    # Every record before probes was a job's; its board_kind is unknown to it (the manifest's lab
    # says it) and so are its sizes.
    return dict(rec, schema_version=5, record_type="job")


def _v5_to_v6(rec: dict) -> dict:
    return dict(rec, schema_version=6)  # no cycle model ran: ft_cycles_est is unknown (None)


MIGRATIONS = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4, 4: _v4_to_v5, 5: _v5_to_v6}


class UnknownVersion(ValueError):
    pass


def upgrade(rec: dict) -> dict:
    """A record of any known version as a record of this version (unvalidated)."""
    version = rec.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= SCHEMA_VERSION:
        raise UnknownVersion(f"schema_version {version!r} is not one this skip2bench reads "
                             f"(1..{SCHEMA_VERSION}); read it with the skip2bench that wrote it, or upgrade")
    while version < SCHEMA_VERSION:
        rec = MIGRATIONS[version](rec)
        version += 1
    return rec
