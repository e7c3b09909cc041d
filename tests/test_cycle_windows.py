"""The cycle model's window is taken into a record only when it is the job's own.

The real path (QEMU with the plugin, a job's window checked and recorded) runs in
tests/test_mcu.py; here the windows a real plugin cannot produce on demand: another job's, none,
two, one that counted other instructions.
"""
import pytest

from harness.mcu.cycle_model import HOOK_SLACK, checked_cycles
from harness.targets.mcu import SerialTarget
from harness.transports.serial_link import ProtocolError

TPS = 168_000_000  # the STM32F405's SysTick: a tick is 6 instructions under -icount shift=0


def window(instructions, pauses=3):
    return {"window": 1, "instructions": instructions, "cycles": 2 * instructions, "pauses": pauses}


def test_a_window_within_a_tick_and_the_hooks_of_each_end_is_taken():
    slack = 8 * (6 + HOOK_SLACK)  # three pauses: four timed stretches, two ends each
    assert checked_cycles(window(1_000_000), 1_000_000 + slack, TPS, "b") == 2_000_000
    assert checked_cycles(window(1_000_000), 1_000_000 - slack, TPS, "b") == 2_000_000


def test_a_window_of_other_instructions_is_refused():
    slack = 8 * (6 + HOOK_SLACK)
    with pytest.raises(ProtocolError, match=rf"counted 1000000 instructions of fine-tuning where the board's clock "
                                            rf"gave {1_000_000 + slack + 1} \(more than {slack} apart\): its window "
                                            r"is not this job's; restart it \(skip2bench lab ctl restart b\)"):
        checked_cycles(window(1_000_000), 1_000_000 + slack + 1, TPS, "b")


class Windows:
    """What the lab's supervisor answers: a count of windows and the last."""

    def __init__(self, *states):
        self.states = list(states)

    def state(self):
        return self.states.pop(0)


def target(windows_before, after):
    t = SerialTarget.__new__(SerialTarget)
    t.board = type("Board", (), {"name": "mcu-x"})()
    t.hello = type("Hello", (), {"ticks_per_second": TPS})()
    t.cycles, t.windows_before = Windows(after), windows_before
    return t


@pytest.mark.parametrize("count, words", [(4, "wrote 0 windows during the job, not one"),
                                          (6, "wrote 2 windows during the job, not one")])
def test_a_job_with_no_window_or_two_is_refused(count, words):
    with pytest.raises(ProtocolError, match=words + r"; restart the board \(skip2bench lab ctl restart mcu-x\)"):
        target(4, {"windows": count, "last": window(500)})._job_cycles(500)


def test_the_one_window_of_the_job_gives_its_cycles():
    assert target(4, {"windows": 5, "last": window(500)})._job_cycles(500) == 1000
