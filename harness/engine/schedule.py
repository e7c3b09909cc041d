"""The scheduler: each board's queue in the order the experiment names, and CPU groups taking
turns (boards on one processor run one job at a time between them)."""
import random
import threading
from collections import deque
from contextlib import contextmanager
from itertools import groupby

from harness import stop


def shuffled(exp, jobs: list) -> list:
    """Within one backbone (one model image on an MCU: no re-flashing), the repetitions, methods
    and boards' jobs in a seeded random order, so a slow phase of a machine lands on no method
    in particular; the order is the same every time the experiment runs."""
    ordered = []
    for (task, seed), group in groupby(jobs, key=lambda j: (j.task, j.seed)):
        group = list(group)
        random.Random(f"{exp.name}/{task}/{seed}").shuffle(group)
        ordered += group
    return ordered


def rounds(exp, jobs: list) -> list:
    """One repetition of every job at a time, backbone by backbone; within a round the methods (at
    each sweep point) in a seeded random order, a new one each round, and each method's impls and
    boards back to back, so that a ratio between impls, or between methods, pairs runs taken
    seconds apart."""
    ordered = []
    for rep in range(exp.repetitions):
        units = list(dict.fromkeys((j.variant, j.point) for j in jobs))  # a method at a sweep point
        random.Random(f"{exp.name}/round/{rep}").shuffle(units)
        place = {unit: i for i, unit in enumerate(units)}
        ordered += sorted((j for j in jobs if j.repetition == rep),
                          key=lambda j: (exp.tasks.index(j.task), exp.seeds.index(j.seed), place[j.variant, j.point]))
    return ordered


ORDERS = {"shuffled": shuffled, "listed": lambda exp, jobs: list(jobs), "rounds": rounds}


def queues(exp, work: list) -> dict:
    """Board name -> its queue in the experiment's order (work: plan.expand's jobs, backbone by
    backbone, then its probes). A board's probe of a repetition follows that board's last job of
    the repetition, so it measures the board as those jobs found it."""
    jobs = [item for item in work if item.backbone is not None]
    by_board = {}
    for job in ORDERS[exp.order](exp, jobs):
        by_board.setdefault(job.board, []).append(job)
    for probe in (item for item in work if item.backbone is None):
        queue = by_board.setdefault(probe.board, [])
        last = max((i for i, j in enumerate(queue) if j.repetition <= probe.repetition), default=-1)
        queue.insert(last + 1, probe)
    return by_board


class Turns:
    """One job at a time among the boards of a CPU group, in the order they asked: a board that
    just ran a job queues behind the boards already waiting."""

    def __init__(self, name: str):
        self.name = name  # the CPU group's
        self._changed = threading.Condition()
        self._waiting = deque()

    @contextmanager
    def turn(self):
        me = object()
        with self._changed:
            self._waiting.append(me)
            try:
                while self._waiting[0] is not me:
                    self._changed.wait(stop.SLICE_S)
                    stop.check()
            except BaseException:
                self._waiting.remove(me)
                self._changed.notify_all()
                raise
        try:
            yield
        finally:
            with self._changed:
                self._waiting.popleft()
                self._changed.notify_all()
