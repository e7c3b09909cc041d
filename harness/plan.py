"""The job matrix of an experiment on a lab: task x seed x method variant x board x impl x repetition."""
import hashlib
import json
from dataclasses import dataclass

from harness.config import Experiment, FinetuneHP, Lab
from harness.errors import UserError
from harness.job_table import FIELD, FIELDS
from harness.methods import parse_variant, used_hp
from harness.probes import PROBES, Probe


@dataclass(frozen=True)
class Job:
    task: str
    seed: int
    variant: str
    board: str
    impl: str
    repetition: int
    point: tuple = ()  # the swept hyper-parameters' values, as (name, value) pairs

    @property
    def method(self) -> str:
        return parse_variant(self.variant)[0]

    @property
    def cache(self) -> bool:
        return parse_variant(self.variant)[1]

    @property
    def cache_format(self) -> str:
        return parse_variant(self.variant)[2]

    @property
    def backbone(self) -> tuple:
        """The model the job fine-tunes, as the run's artifacts are keyed."""
        return self.task, self.seed

    @property
    def shown_variant(self) -> str:
        """The variant with its sweep point, as the console shows it: "skip2-lora epochs=20"."""
        return self.variant + "".join(f" {name}={value}" for name, value in self.point)

    def label(self) -> str:
        return f"{self.task} {self.shown_variant} {self.impl} seed {self.seed} rep {self.repetition}"

    def hp(self, finetune) -> FinetuneHP:
        """The job's hyper-parameters: the experiment's for its variant, at its sweep point."""
        return finetune.for_variant(self.variant, self.point)

    def fields(self) -> dict:
        """The job's fields that the job matrix sets (skip2_job.def's JOB source): method, cache,
        cache format, seed."""
        return {f.name: getattr(self, f.name) for f in FIELDS if f.source == "job"}


def select_boards(exp: Experiment, lab: Lab) -> list:
    """The lab boards the experiment names (by name or tag), or all of them when it names none;
    its reference board among them."""
    chosen = _named_boards(exp, lab) if exp.boards else list(lab.boards)
    if exp.reference and exp.reference not in {b.name for b in chosen}:
        raise UserError(f"the experiment's reference board {exp.reference!r} is not among its boards "
                        f"({', '.join(b.name for b in chosen)}); name a board of the run")
    return chosen


def _named_boards(exp: Experiment, lab: Lab) -> list:
    known = {b.name for b in lab.boards} | {t for b in lab.boards for t in b.tags}
    unknown = [s for s in exp.boards if s not in known]
    if unknown:
        raise UserError(f"experiment boards {unknown} match no board name or tag in lab '{lab.name}' "
                        f"(known: {', '.join(sorted(known))}); fix the experiment's boards or the lab file")
    return [b for b in lab.boards if b.name in exp.boards or set(b.tags) & set(exp.boards)]


# The most jobs one run plans (each is a record; a run beyond it is several runs).
MAX_JOBS = 100_000


def expand(exp: Experiment, lab: Lab) -> list:
    """Every run of the experiment on every selected board that offers its impl, in the order of
    the experiment's lists, then its probes (the scheduler, harness.engine.schedule, orders each
    board's queue)."""
    boards = select_boards(exp, lab)
    pairs = [(b.name, impl) for b in boards for impl in exp.impls if impl in b.impls]
    if not pairs:
        offered = sorted({i for b in boards for i in b.impls})
        raise UserError(f"no selected board of lab '{lab.name}' runs impls {exp.impls} (they offer {offered}); "
                        f"add them to a board's impls or change the experiment's impls or boards")
    points = exp.finetune.points()
    count = len(exp.tasks) * len(exp.seeds) * len(exp.methods) * len(points) * exp.repetitions * len(pairs)
    if count > MAX_JOBS:  # counted before any is made
        raise UserError(f"experiment '{exp.name}' makes {count:,} jobs ({len(exp.tasks)} tasks x {len(exp.seeds)} "
                        f"seeds x {len(exp.methods)} methods x {len(points)} sweep points x {exp.repetitions} "
                        f"repetitions x {len(pairs)} board/impl pairs); at most {MAX_JOBS:,} a run: split it into "
                        f"several experiments")
    jobs = [Job(task, seed, variant, board, impl, rep, point) for task in exp.tasks for seed in exp.seeds
            for variant in exp.methods for point in points for board, impl in pairs
            for rep in range(exp.repetitions)]
    probes = [Probe(name, board.name, rep) for rep in range(exp.repetitions) for board in boards
              for name in exp.probes if PROBES[name].impl in board.impls]
    return jobs + probes


def runner_fields(hp: dict) -> dict:
    """Hyper-parameters as runners get them (job.json, RUN): a layer set as a bit mask (bit k:
    layer k), 0 for the method's default; a mask stays as it is."""
    return {name: sum(1 << k for k in value or []) if name in FIELD and FIELD[name].type == "layers"
            and not isinstance(value, int) else value for name, value in hp.items()}


def runner_job(job: Job, hp: FinetuneHP) -> dict:
    """job.json content without the file locations, which the target fills in: every field of
    skip2_job.def."""
    return {**job.fields(), **runner_fields(hp.model_dump())}


def job_id(model_key: str, variant: str, hp: FinetuneHP) -> str:
    """Identity of a job across boards, impls and repetitions: model (task, data, seed, backbone) +
    method + the hyper-parameters the method uses (so other methods' options and, for oselm-head,
    the learning rate never tell two of its jobs apart)."""
    used = used_hp(parse_variant(variant)[0], hp.model_dump())
    src = json.dumps({"model": model_key, "variant": variant, "hp": used}, sort_keys=True)
    return hashlib.sha256(src.encode()).hexdigest()[:12]
