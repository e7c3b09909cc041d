"""A serial board's word is checked before it becomes a record. The real firmware on a QEMU
Cortex-M4F board sits behind a proxy that replays, forges, holds back and adds frames (each with
a valid CRC: the faults of a line that delivers old frames again, or of buggy firmware), while
the board is reset through QEMU's monitor, frozen, or its host killed mid-job. For every case:
no `ok` record whose numbers differ from the host C runner's record of the same job, no
traceback, no run cut short, no wait beyond liveness_s plus a few seconds. The last test prints
the table of cases and outcomes."""
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT, require_tool, serving_lab
from harness.lab.standins import free_port

LIVENESS_S = 3
# Two jobs with epochs longer than the firmware's heartbeat period of 100 M instructions
# (lora-all: some 145 M instructions an epoch, half a second here, so heartbeats flow and a reset
# or a pause lands mid-job), then the host's two: the reference. 400 samples of 64 bins: 100 kB
# to load, once.
EXPERIMENT = """name = "hostile-serial"
tasks = ["small"]
methods = ["lora-all", "skip2-lora"]
seeds = [0]
impls = ["c"]
[task.small]
kind = "npz"
path = "{data}"
[model]
hidden = [320, 320]
[pretrain]
epochs = 2
[finetune]
epochs = {epochs}
batch_size = 20
"""
# Equal to the host's record of the same job: what a wrong number would change.
RESULT = ("acc_before", "acc_after", "epoch_loss", "n_ft", "n_test", "ft_macs", "trainable_params",
          "cache_hits", "cache_misses", "mem_weights_bytes", "mem_cache_bytes")
OUTCOMES = {}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def small_task(tmp_path_factory):
    from harness.tasks import synthetic
    import numpy as np
    d = synthetic.load()
    keep = {"pre": 400, "ft": 400, "test": 60}
    path = tmp_path_factory.mktemp("small") / "small.npz"
    np.savez(path, classes=np.array(d["classes"]), **{f"x_{s}": d[f"x_{s}"][:n, :64] for s, n in keep.items()},
             **{f"y_{s}": d[f"y_{s}"][:n] for s, n in keep.items()})
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory, cache):
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc", "cc"):
        require_tool(tool)
    root = tmp_path_factory.mktemp("hostile-lab")
    path = root / "lab.toml"
    path.write_text(f'name = "hostile-serial"\nstandin_dir = "{root / "state"}"\n'
                    f'[[boards]]\nname = "mcu"\ntransport = "serial"\nport = "socket://127.0.0.1:{free_port()}"\n'
                    f'firmware = "mps2-an386"\nliveness_s = {LIVENESS_S}\n[boards.standin]\nmachine = "mps2-an386"\n'
                    f'[[boards]]\nname = "host"\ntransport = "local"\nimpls = ["c"]\nwork_root = "{root / "host"}"\n')
    with serving_lab(path, dict(os.environ, SKIP2BENCH_CACHE=str(cache))):
        yield path


def board_port(lab: Path) -> int:
    from harness.config import load_lab
    return int(next(b for b in load_lab(lab).boards if b.name == "mcu").port.rsplit(":", 1)[1])


def ctl(lab: Path, command: str):
    from harness.lab.serve import ask
    from harness.config import load_lab
    ask(load_lab(lab), command)


# -- frames on the wire ---------------------------------------------------------------------------
def frame(wire: bytes):
    from harness.transports.serial_link import decode
    return decode(wire[:-1])


def forged(f, payload=None, **changes) -> bytes:
    """The frame again, changed, with a valid CRC."""
    from harness.transports.serial_link import encode
    fields = dict(session=f.session, token=f.token, flags=f.flags, seq=f.seq) | changes
    return encode(f.type, fields["seq"], f.payload if payload is None else payload, session=fields["session"],
                  token=fields["token"], flags=fields["flags"])


class Tamper:
    """Watches every frame; `act(direction, wire, f)` returns the frames to send instead."""

    def __init__(self, lab: Path):
        self.lab, self.seen, self.kept, self.timers = lab, [], {}, []
        self.lock = threading.Lock()

    def __call__(self, direction, wire):
        f = frame(wire)
        if f is None:
            return [wire]
        with self.lock:
            self.seen.append((direction, f))
            return self.act(direction, wire, f)

    def act(self, direction, wire, f):
        return [wire]

    def once(self) -> bool:
        """True the first time it is asked, then never: for cases that act on one frame."""
        first = "once" not in self.kept
        self.kept["once"] = True
        return first

    def count(self, msg_type) -> int:
        return sum(1 for d, f in self.seen if d == "to_host" and f.type == msg_type)

    def later(self, command: str, delay_s: float = 0.0):
        """A lab command from another thread: the pump goes on meanwhile."""
        timer = threading.Timer(delay_s, ctl, (self.lab, command))
        timer.start()
        self.timers.append(timer)

    def settle(self):
        """Every lab command given (the board resumed) before the next test."""
        for timer in self.timers:
            timer.join()


PROGRESS, DONE, RUN, BOOT, BEAT = 0x11, 0x12, 0x06, 0x13, 0x14


class ProgressReplayed(Tamper):
    def act(self, direction, wire, f):
        if direction == "to_host" and f.type == PROGRESS:
            first = self.kept.setdefault(f.token, wire)
            return [first, wire] if first is not wire else [wire]
        return [wire]


class DoneOfEarlierJob(Tamper):
    def act(self, direction, wire, f):
        if direction == "to_host" and f.type == DONE:
            self.kept.setdefault("done", wire)
        if direction == "to_host" and f.type == RUN and f.response and "done" in self.kept:
            return [wire, self.kept["done"]]  # right after the next job's start
        return [wire]


class DoneTwice(Tamper):
    def act(self, direction, wire, f):
        return [wire, wire] if direction == "to_host" and f.type == DONE else [wire]


class OtherSession(Tamper):
    def act(self, direction, wire, f):
        if direction == "to_host" and f.type in (PROGRESS, DONE):
            return [forged(f, session=f.session ^ 0x5A5A), wire]
        return [wire]


class ForgedMacs(Tamper):
    def act(self, direction, wire, f):
        if direction == "to_host" and f.type == DONE and self.once():
            p = bytearray(f.payload)
            struct.pack_into("<Q", p, 20, struct.unpack_from("<Q", p, 20)[0] * 4)  # ft_macs
            return [forged(f, bytes(p))]
        return [wire]


class TruncatedDone(Tamper):
    def act(self, direction, wire, f):
        if direction == "to_host" and f.type == DONE and self.once():
            return [forged(f, f.payload[:40])]
        return [wire]


class EpochOutOfOrder(Tamper):
    def act(self, direction, wire, f):
        if direction == "to_host" and f.type == PROGRESS and self.once():
            p = bytearray(f.payload)
            struct.pack_into("<I", p, 0, 1)  # the first epoch reported as the second
            return [forged(f, bytes(p))]
        return [wire]


class BootNotice(Tamper):
    def act(self, direction, wire, f):
        if direction == "to_host" and f.type == PROGRESS and self.once():
            boot = struct.pack("<HBI", 6, 3, 0x1234) + b"exception".ljust(48, b"\0")
            from harness.transports.serial_link import NOTICE, encode
            return [wire, encode(BOOT, 0, boot, flags=NOTICE)]
        return [wire]


class BeatReplayed(Tamper):
    def act(self, direction, wire, f):
        if direction == "to_host" and f.type == BEAT:
            first = self.kept.setdefault("beat", wire)
            return [wire, first] if first is not wire else [wire]
        return [wire]


class OtherToken(Tamper):
    def act(self, direction, wire, f):
        if direction == "to_host" and f.type in (PROGRESS, BEAT):
            return [forged(f, token=f.token ^ 0x77), wire]
        return [wire]


class RunAnswerLost(Tamper):
    """The board started the job; its answer to RUN never arrives (the host sends RUN again)."""
    def act(self, direction, wire, f):
        if direction == "to_host" and f.type == RUN and f.response and self.once():
            return []
        return [wire]


class DoneAnswerLost(Tamper):
    """The host's answer to DONE never arrives: the board sends DONE again, answered again."""
    def act(self, direction, wire, f):
        if direction == "to_board" and f.type == DONE and f.response and self.once():
            return []
        return [wire]


class ResetMidJob(Tamper):
    def act(self, direction, wire, f):
        if direction == "to_host" and f.type == BEAT and self.once():
            self.later("reset mcu")
        return [wire]


class PausedMidJob(Tamper):
    def act(self, direction, wire, f):
        if direction == "to_host" and f.type == BEAT and self.once():
            self.later("pause mcu")
            self.later("resume mcu", LIVENESS_S + 2)
        return [wire]


# name: (tamper, how many of the 2 MCU jobs end ok, words in the first error)
CASES = {
    "clean": (Tamper, 2, None),
    "progress-replayed": (ProgressReplayed, 2, None),
    "done-of-earlier-job": (DoneOfEarlierJob, 2, None),
    "done-twice": (DoneTwice, 2, None),
    "frames-of-other-session": (OtherSession, 2, None),
    "beat-replayed": (BeatReplayed, 2, None),
    "frames-of-other-job": (OtherToken, 2, None),
    "run-answer-lost": (RunAnswerLost, 2, None),
    "done-answer-lost": (DoneAnswerLost, 2, None),
    "done-forged-macs": (ForgedMacs, 1, "MMAC; this job does"),
    "done-truncated": (TruncatedDone, 1, "sent a malformed frame 0x12 of 40 bytes"),
    "epoch-out-of-order": (EpochOutOfOrder, 1, "reported epoch 2 where epoch 1 was due"),
    "boot-notice-mid-job": (BootNotice, 1, "board reset during the job: fault (exception) at pc 0x00001234"),
    "reset-mid-job": (ResetMidJob, 1, "board reset during the job: reset"),
    "paused-mid-job": (PausedMidJob, 1, f"silent for {LIVENESS_S} s (liveness_s)"),
}


def run(lab, cache, tmp_path, data, port, *extra, epochs=3):
    text = lab.read_text().replace(f"socket://127.0.0.1:{board_port(lab)}", f"socket://127.0.0.1:{port}")
    (tmp_path / "lab.toml").write_text(text)
    (tmp_path / "exp.toml").write_text(EXPERIMENT.format(data=data, epochs=epochs))
    return [sys.executable, "-m", "harness", "run", "-e", str(tmp_path / "exp.toml"), "-l",
            str(tmp_path / "lab.toml"), "-o", str(tmp_path / "run"), "--no-report", *extra]


def env(cache):
    return dict(os.environ, SKIP2BENCH_CACHE=str(cache), COLUMNS="250")


def records(tmp_path) -> list:
    return [json.loads(line) for line in (tmp_path / "run" / "records.jsonl").read_text().splitlines()]


def check_against_host(recs) -> list:
    """Every ok MCU record equals the host's record of the job; returns the MCU records."""
    host = {r["job_id"]: r for r in recs if r["board"] == "host"}
    mcu = [r for r in recs if r["board"] == "mcu"]
    for r in mcu:
        assert r["status"] in ("ok", "error"), r
        if r["status"] == "ok":
            assert {k: r[k] for k in RESULT} == {k: host[r["job_id"]][k] for k in RESULT}, r["variant"]
        else:
            assert r["error"] and "\n" not in r["error"] and "Traceback" not in r["error"], r
    return mcu


@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_line_never_makes_an_ok_record_of_other_numbers(lab, cache, tmp_path, small_task, case):
    from harness.lab.faults import FaultProxy, Rates
    make, n_ok, words = CASES[case]
    tamper = make(lab)
    proxy = FaultProxy(board_port(lab), 0, Rates(), tamper=tamper).start()
    try:
        t0 = time.monotonic()
        done = subprocess.run(run(lab, cache, tmp_path, small_task, proxy.port), cwd=ROOT, capture_output=True,
                              text=True, timeout=600, env=env(cache))
        took = time.monotonic() - t0
    finally:
        proxy.stop()
        tamper.settle()
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    recs = records(tmp_path)
    assert len(recs) == 4, done.stdout  # the run went on to its last job
    mcu = check_against_host(recs)
    errors = [r["error"] for r in mcu if r["status"] == "error"]
    OUTCOMES[case] = (f"{sum(r['status'] == 'ok' for r in mcu)} ok, dropped "
                      f"{sum(r.get('dropped_frames') or 0 for r in mcu)}; {(errors or ['-'])[0][:110]}; {took:.0f} s")
    assert sum(r["status"] == "ok" for r in mcu) == n_ok, done.stdout
    if words:
        assert words in errors[0], errors
    assert done.returncode == (0 if n_ok == 2 else 1)
    if make in (ProgressReplayed, DoneOfEarlierJob, OtherSession, BeatReplayed, OtherToken):
        assert sum(r["dropped_frames"] for r in mcu) >= 1
    if case == "clean":  # the jobs are long enough that the board says it is alive while it works
        assert tamper.count(BEAT) >= 2 and all(r["dropped_frames"] == 0 for r in mcu)
    if make in (ResetMidJob, PausedMidJob):  # ended well before the jobs' timeout_s (600 s)
        assert took < 120


def test_a_run_of_an_earlier_session_is_refused_not_executed(lab):
    """A RUN replayed after a new HELLO: the firmware refuses it (naming both sessions) and runs
    nothing."""
    from harness.mcu import messages
    from harness.transports.serial_link import REFUSED, SerialLink, encode
    port = f"socket://127.0.0.1:{board_port(lab)}"
    old = SerialLink(port, timeout_s=0.3, tries=5)
    old.request(messages.HELLO, messages.hello(old.session))
    old.close()
    new = SerialLink(port, timeout_s=0.3, tries=5)
    try:
        new.request(messages.HELLO, messages.hello(new.session))
        run = encode(messages.RUN, new.seq + 1, bytes(messages.RUN_BYTES), session=old.session, token=7)
        new.send_raw(run)
        answer = new.receive(time.monotonic() + 2)
        assert answer is not None and answer.flags & REFUSED and answer.type == messages.RUN
        assert struct.unpack("<II", answer.payload) == (old.session, new.session)
        state = struct.unpack_from("<5IB", new.request(messages.STATUS))[5]
        assert state == 0  # idle: nothing started
    finally:
        new.close()
    OUTCOMES["run-of-earlier-session"] = "refused, naming both sessions; board idle"


def test_a_reset_keeps_its_reason_and_is_announced(lab):
    """QEMU's system_reset keeps the firmware's note (a reset, not a power-on), and the BOOT
    notice says so."""
    from harness.mcu import messages
    from harness.transports.serial_link import BoardReset, SerialLink
    link = SerialLink(f"socket://127.0.0.1:{board_port(lab)}", timeout_s=0.3, tries=10)
    try:
        link.request(messages.HELLO, messages.hello(link.session))
        ctl(lab, "reset mcu")
        with pytest.raises(BoardReset) as reset:
            link.request(messages.STATUS)
        assert reset.value.reason.startswith("reset (")
        link.request(messages.HELLO, messages.hello(link.session))  # a new session after it
    finally:
        link.close()
    OUTCOMES["reset-announced"] = reset.value.reason


def test_the_harness_killed_mid_job_then_resumed(lab, cache, tmp_path, small_task):
    """kill -9 of the host mid-job: the board goes on with the dead host's job; the resumed run's
    HELLO ends it at once, its late frames are dropped, and every job ends ok, once."""
    from harness.lab.faults import FaultProxy, Rates
    watcher = Tamper(lab)
    proxy = FaultProxy(board_port(lab), 0, Rates(), tamper=watcher).start()
    try:
        command = run(lab, cache, tmp_path, small_task, proxy.port)
        first = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env(cache))
        deadline = time.monotonic() + 300
        while watcher.count(BEAT) < 1 and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait()
        done = subprocess.run([*command, "--resume"], cwd=ROOT, capture_output=True, text=True, timeout=600,
                              env=env(cache))
    finally:
        proxy.stop()
    assert done.returncode == 0 and "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    recs = records(tmp_path)
    keys = [(r["job_id"], r["board"]) for r in recs]
    assert len(keys) == len(set(keys)) == 4  # nothing lost, nothing twice
    mcu = check_against_host(recs)
    assert all(r["status"] == "ok" for r in mcu)
    OUTCOMES["killed-and-resumed"] = f"{len(mcu)} ok after --resume; dropped {sum(r['dropped_frames'] for r in mcu)}"


def test_print_the_table_of_cases():
    print("\nserial case               outcome (of 2 MCU jobs: ok, frames dropped; the first error; wall)")
    for case, outcome in OUTCOMES.items():
        print(f"{case:<25} {outcome}")
    assert len(OUTCOMES) >= len(CASES)
