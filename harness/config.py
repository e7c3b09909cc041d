"""Lab files (what boards exist, how to reach them) and experiment files (what to run), in TOML.

Validation uses pydantic; every problem becomes one line naming the file, the field and the fix.
"""
import itertools
import sys
from functools import lru_cache, partial
from pathlib import Path
from typing import Annotated, Literal, Optional, Union

from pydantic import AfterValidator, Field, ValidationError, create_model, field_validator, model_validator

from harness import kinds, paths
from harness.boards import IMPLS, Impl, Slug, Strict
from harness.errors import UserError
from harness.job_table import FORMATS, HP_FIELDS, LIMITS, describe
from harness.methods import parse_variant, VARIANTS
from harness.probes import PROBES
from harness.tasks import TASKS, specs, task_names

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

class Lab(Strict):
    """A lab: its boards, each of a registered kind (harness.kinds). lab_model() makes the model
    that validates a lab file, with a board table per registered kind."""
    name: Slug
    # Where `skip2bench lab serve` keeps the stand-ins' state (relative to the lab file).
    standin_dir: Annotated[Path, Field(strict=False, validate_default=True)] = Path(".emulated")

    @field_validator("standin_dir")
    @classmethod
    def _relative_to_lab_file(cls, path, info):
        base = (info.context or {}).get("lab_dir")
        return path if path.is_absolute() or base is None else Path(base) / path

    @field_validator("boards", check_fields=False)
    @classmethod
    def _unique_names(cls, boards):
        names = [b.name for b in boards]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"board names must be unique; repeated: {', '.join(dup)}")
        return boards


@lru_cache(maxsize=None)
def _lab_model(models: tuple) -> type:
    board = Annotated[Union[models], Field(discriminator="transport")] if len(models) > 1 else models[0]
    return create_model("Lab", __base__=Lab, boards=(list[board], Field(min_length=1)))


def lab_model() -> type:
    """The model of a lab file whose boards are of the kinds registered now."""
    return _lab_model(tuple(kind.model for kind in kinds.KINDS.values()))


MAX = LIMITS
# Integer ranges every runner accepts (targets/c/core/skip2_limits.def), so no job the config
# accepts is refused, wrapped or run differently by any runner.
Seed = Annotated[int, Field(ge=0, le=MAX["MAX_SEED"])]
Width = Annotated[int, Field(ge=1, le=MAX["MAX_WIDTH"])]
Epochs = Annotated[int, Field(ge=1, le=MAX["MAX_EPOCHS"])]
Batch = Annotated[int, Field(ge=1, le=MAX["MAX_BATCH"])]
Rate = Annotated[float, Field(gt=0)]


def _unique(values: list, what: str) -> list:
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"{what} must not repeat; repeated: {', '.join(repeated)}")
    return values


# Layer indices (bsr_layers), each once, in ascending order.
LayerSet = Annotated[list[Annotated[int, Field(ge=0, lt=MAX["MAX_LAYERS"])]], Field(min_length=1),
                     AfterValidator(lambda layers: sorted(_unique(layers, "layers")))]


def _real_within(f, value: float) -> float:
    if not f.lo <= value <= f.hi:
        raise ValueError(f"must be {describe(f)}")
    return value


def _hp_field(f):
    """A [finetune] field's type and default by its row in skip2_job.def: within what every
    runner accepts."""
    if f.type == "int":
        return Annotated[int, Field(ge=f.lo, le=f.hi)], f.default
    if f.type == "real":
        return Annotated[float, AfterValidator(partial(_real_within, f))], f.default
    if f.type == "format":
        return Literal[FORMATS], f.default
    if f.type == "layers":  # unset: the method's default
        return Optional[LayerSet], None
    raise ValueError(f"skip2_job.def: an HP field cannot be of type {f.type} ({f.name})")


# The most a backbone's hidden-to-hidden weights may take (float32): beyond it no board, and not
# this host, would hold the job.
MAX_HIDDEN_BYTES = 1 << 30


class ModelConfig(Strict):
    # Hidden widths; with the output layer at most MAX_LAYERS layers.
    hidden: list[Width] = Field(default=[96, 96], min_length=1, max_length=MAX["MAX_LAYERS"] - 1)

    @field_validator("hidden")
    @classmethod
    def _fits_memory(cls, hidden):
        weights = 4 * sum(a * b for a, b in zip(hidden[:-1], hidden[1:]))
        if weights > MAX_HIDDEN_BYTES:
            raise ValueError(f"the weights between these hidden layers alone take {weights / 1e9:.1f} GB; "
                             f"at most {MAX_HIDDEN_BYTES / 1e9:.1f} GB (narrow the layers)")
        return hidden


class PretrainConfig(Strict):
    epochs: Epochs = 40
    batch_size: Batch = 32
    lr: Rate = 0.05


# Hyper-parameters of fine-tuning (skip2_job.def's HP fields, docs/methods.md); any field may be
# overridden per method, and a method ignores the options of the others.
FinetuneHP = create_model("FinetuneHP", __base__=Strict, **{f.name: _hp_field(f) for f in HP_FIELDS})


def _optional(field):
    """A field's type and constraints, but optional with default None (unset = not overridden)."""
    kind = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    return Optional[kind], None


# Every FinetuneHP field, each optional: a per-method override sets only what it names.
FinetuneOverride = create_model("FinetuneOverride", __base__=Strict,
                                **{name: _optional(f) for name, f in FinetuneHP.model_fields.items()})


class Finetune(FinetuneHP):
    method: dict[str, FinetuneOverride] = Field(default_factory=dict)
    # Fields run at several values: every job once per combination (`skip2bench growth`
    # sweeps epochs); a swept value wins over the base and over a method's own.
    sweep: dict[str, Annotated[list, Field(min_length=1)]] = Field(default_factory=dict)

    @field_validator("sweep")
    @classmethod
    def _sweep_values(cls, sweep):
        for name, values in sweep.items():
            if name not in FinetuneHP.model_fields:
                raise ValueError(f"{name} is not a [finetune] field; known: {', '.join(FinetuneHP.model_fields)}")
            _unique(values, f"sweep.{name}")
            for value in values:
                FinetuneOverride(**{name: value})  # each value within what runners accept
        return sweep

    def points(self) -> list[tuple]:
        """Every combination of the swept values, as (name, value) pairs; one empty point without a sweep."""
        return [tuple(zip(self.sweep, values)) for values in itertools.product(*self.sweep.values())]

    @field_validator("method")
    @classmethod
    def _known_methods(cls, overrides):
        for name in overrides:
            parse_variant(name)
        return overrides

    def for_variant(self, variant: str, point: tuple = ()) -> FinetuneHP:
        """The base hyper-parameters with the method's overrides (by variant, then by method) and
        a sweep's point applied."""
        merged = self.model_dump(exclude={"method", "sweep"})
        method = parse_variant(variant)[0]
        for key in (method, variant):
            if key in self.method:
                merged.update(self.method[key].model_dump(exclude_none=True))
        return FinetuneHP(**{**merged, **dict(point)})


class Experiment(Strict):
    name: Slug
    tasks: list[str] = Field(min_length=1)
    methods: list[str] = Field(min_length=1)
    seeds: list[Seed] = Field(default=[0], min_length=1)
    impls: list[Impl] = Field(default=["numpy"], min_length=1)
    # Board names or tags to run on; empty: every lab board that offers the impls.
    boards: list[Annotated[str, Field(min_length=1)]] = []
    repetitions: int = Field(default=1, ge=1, le=1000)
    # The order of each board's queue (harness.engine.schedule): "shuffled" runs the jobs of one
    # backbone in a seeded random order, the same on every run; "listed" in the order of the
    # lists above (task, seed, method, repetition); "rounds" one repetition of every job at a
    # time, the methods of a round in a seeded random order and each method's impls back to
    # back, so that ratios between impls and between methods pair runs taken close together.
    order: Literal["shuffled", "listed", "rounds"] = "shuffled"
    # Measurements of each board beside the jobs (harness.probes), one per repetition, after
    # that repetition's jobs on the board.
    probes: list[Literal[tuple(PROBES)]] = []
    # A board that every other board is paired with (`skip2bench overhead`): the boards take
    # turns, one job at a time, so each job runs on the reference and on the board back to back,
    # and the report sets each job's wall time against the reference's.
    reference: Optional[Annotated[str, Field(min_length=1)]] = None
    # Tasks with a split of the user's choosing, or the user's own data (docs/config.md).
    task: dict[Slug, specs.TaskSpec] = {}
    model: ModelConfig = ModelConfig()
    pretrain: PretrainConfig = PretrainConfig()
    finetune: Finetune = Finetune()

    @model_validator(mode="before")
    @classmethod
    def _builtin_kinds(cls, raw):
        """[task.har] without a kind changes the built-in har's split."""
        if isinstance(raw, dict) and isinstance(raw.get("task"), dict):
            raw = dict(raw, task={name: dict(t, kind=name) if isinstance(t, dict) and "kind" not in t
                                  and name in TASKS else t for name, t in raw["task"].items()})
        return raw

    @model_validator(mode="after")
    def _bsr_layers_exist(self):
        layers = len(self.model.hidden) + 1
        for where, hp in [("finetune", self.finetune), *((f"finetune.method.{m}", o)
                                                       for m, o in self.finetune.method.items())]:
            if hp.bsr_layers and max(hp.bsr_layers) >= layers:
                raise ValueError(f"{where}.bsr_layers: layer {max(hp.bsr_layers)} does not exist; the model "
                                 f"has layers 0..{layers - 1} (hidden ones, then the output layer)")
        return self

    @model_validator(mode="after")
    def _tasks_defined(self):
        for name in self.tasks:
            if name not in TASKS and name not in self.task:
                raise ValueError(f"unknown task '{name}'; known tasks: {', '.join(task_names())}, or define "
                                 f"it in a [task.{name}] table")
        unused = sorted(set(self.task) - set(self.tasks))
        if unused:
            raise ValueError(f"[task.{unused[0]}] is defined but not in tasks; add it to tasks or remove the table")
        return self

    def task_spec(self, name: str):
        """How task `name` is split: its [task.NAME] table, else the built-in default."""
        return self.task.get(name) or TASKS[name].spec

    @model_validator(mode="after")
    def _probes_have_their_runner(self):
        for name in self.probes:
            if PROBES[name].impl not in self.impls:
                raise ValueError(f"probes: {name} is measured by the {PROBES[name].impl} runner; add "
                                 f"'{PROBES[name].impl}' to impls or drop the probe")
        return self

    @field_validator("tasks", "methods", "seeds", "impls", "boards", "probes")
    @classmethod
    def _no_repeats(cls, values, info):
        return _unique(values, info.field_name)

    @field_validator("methods")
    @classmethod
    def _known_variants(cls, methods):
        for m in methods:
            parse_variant(m)
        return methods


def _one_line(path: Path, err: ValidationError) -> str:
    e = err.errors()[0]
    where = ".".join(str(p) for p in e["loc"]) or "(top level)"
    if e["type"] == "union_tag_invalid":  # a board's transport picks its model
        key = e["ctx"]["discriminator"].strip("'")
        where = f"{where}.{key}"
        msg = f"unknown {key} '{e['ctx']['tag']}'; known: {e['ctx']['expected_tags']}"
    elif e["type"] == "extra_forbidden":
        msg = f"unknown field '{e['loc'][-1]}' (check its spelling against docs/config.md)"
    elif e["type"] == "missing":
        msg = "missing required field; add it"
    else:
        msg = e["msg"].removeprefix("Value error, ")
        if "input" in e and not isinstance(e["input"], (dict, list)):
            msg += f" (got {e['input']!r})"
    more = f" (and {len(err.errors()) - 1} more problems)" if len(err.errors()) > 1 else ""
    return f"{path}: {where}: {msg}{more}"


def builtin(path: Path, folder: Path) -> Path | None:
    """The built-in file a bare name stands for (`demo`: experiments/demo.toml), when no such
    file is here."""
    path = Path(path)
    candidate = folder / f"{path.name}.toml"
    return candidate if not path.exists() and path.parent == Path(".") and candidate.is_file() else None


def _load(path: Path, model, kind: str, folder: Path):
    """Validated `model` from a TOML file, or from the built-in one `path` names; relative paths
    inside it are relative to its folder (a built-in's: the current folder)."""
    found = builtin(path, folder)
    path, base = (found, Path.cwd()) if found else (Path(path), Path(path).parent)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        names = ", ".join(sorted(p.stem for p in folder.glob("*.toml")))
        raise UserError(f"{kind} file not found: {path} (give a file, or a built-in {kind}: {names}; "
                        f"`skip2bench init` writes a starter here)") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: malformed TOML: {e}") from None
    try:
        return model.model_validate(raw, context={"lab_dir": base.resolve()})
    except ValidationError as e:
        raise UserError(_one_line(path, e)) from None


def load_lab(path) -> Lab:
    return _load(path, lab_model(), "lab", paths.LABS)


def load_experiment(path) -> Experiment:
    return _load(path, Experiment, "experiment", paths.EXPERIMENTS)


__all__ = ["Lab", "Experiment", "FinetuneHP", "load_lab", "load_experiment", "IMPLS", "VARIANTS"]
