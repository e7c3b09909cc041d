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


ORDERS = {"shuffled": shuffled, "listed": lambda exp, jobs: list(jobs)}


def queues(exp, jobs: list) -> dict:
    """Board name -> its jobs in the experiment's order (jobs: plan.expand's, backbone by backbone)."""
    by_board = {}
    for job in ORDERS[exp.order](exp, jobs):
        by_board.setdefault(job.board, []).append(job)
    return by_board


class Turns:
    """One job at a time among the boards of a CPU group, in the order they asked: a board that
    just ran a job queues behind the boards already waiting."""

    def __init__(self):
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
