"""Silent links, crashed runs, shared boards and long lines, against the real OpenSSH stand-ins
and the host.

A link goes silent through a pausing TCP proxy (harness.lab.faults) between the harness and a
stand-in; the harness is killed with SIGKILL as a crash would; two runs meet on one board; a job's
exchanges with the board are counted, and timed over a line with a 200 ms round trip.
"""
import re
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from harness.lab.faults import FaultProxy, Rates
from test_ssh import (SLOW, WORK_ROOT, _alive, cache, experiment, lab, lab_with, records, runner_on,  # noqa: F401
                      skip2bench, start, wait_for)

LIVENESS_S = 3


@pytest.fixture
def proxy(lab):
    """A pausing proxy in front of sbc-native; resumed and stopped at the end."""
    port = int(re.search(r"^port = (\d+)", lab.path.read_text(), re.M).group(1))  # sbc-native's
    running = FaultProxy(port, seed=0, rates=Rates()).start()
    yield running
    running.resume()
    running.stop()


def through(proxy, tmp_path, lab, **fields) -> Path:
    """sbc-native's lab reached through the proxy: its host key under the proxy's port."""
    native = re.search(r"^port = (\d+)", lab.path.read_text(), re.M).group(1)
    state = lab.path.parent / "state"
    key = next(line for line in (state / "known_hosts").read_text().splitlines()
               if line.startswith(f"[127.0.0.1]:{native} "))
    known = tmp_path / "known_hosts"
    known.write_text(key.replace(f":{native} ", f":{proxy.port} ", 1) + "\n")
    return lab_with(tmp_path, lab, port=proxy.port, known_hosts=str(known), **fields)


def final(out: Path) -> dict:
    """The last record of every job (a resumed run appends)."""
    return {(r["job_id"], r["board"], r["impl"], r["repetition"]): r for r in records(out)}


# -- a silent link --------------------------------------------------------------------------
def test_a_link_silent_mid_job_ends_that_job_within_liveness_and_resume_completes(lab, cache, tmp_path, proxy):
    lab_file = through(proxy, tmp_path, lab, liveness_s=LIVENESS_S, connect_timeout_s=3, retries=1,
                       work_root=f"{lab.token}/silent")
    text = lab.path.read_text()
    lab_file.write_text(lab_file.read_text() + text[text.index('[[boards]]\nname = "host"'):])  # the reference
    out = tmp_path / tmp_path.name
    exp = experiment(tmp_path, **dict(SLOW, boards=["sbc-native", "host"]))
    run = start("run", "-e", exp, "-l", lab_file, "-o", out, "--no-report", cache=cache)
    wait_for(lambda: runner_on(lab.work_root("silent"), out.name), what="a runner on sbc-native")
    proxy.pause()  # the job's reply (and everything else) is held from now on
    paused = time.monotonic()
    wait_for(lambda: (out / "records.jsonl").exists() and '"status":"error"' in (out / "records.jsonl").read_text(),
             timeout=30, what="the silenced job's record")
    waited = time.monotonic() - paused
    proxy.resume()
    stdout, stderr = run.communicate(timeout=120)
    print(f"silent link: the job ended {waited:.1f} s after the link went silent (liveness_s = {LIVENESS_S})")
    (error,) = [r for r in records(out) if r["status"] != "ok"]
    assert error["board"] == "sbc-native" and f"silent for {LIVENESS_S} s (liveness_s)" in error["error"], error
    assert waited < LIVENESS_S + 5
    assert run.returncode == 1 and "Traceback" not in stderr, stderr
    assert len(records(out)) == 6, stdout + stderr  # the run went on

    skip2bench("run", "-e", exp, "-l", lab_file, "-o", out, "--resume", "--no-report", cache=cache)
    done = final(out)
    assert len(done) == 6 and all(r["status"] == "ok" for r in done.values())
    assert sum(r["status"] == "ok" for r in records(out)) == 6  # nothing run twice
    host = {(r["job_id"], r["impl"]): r for r in done.values() if r["board"] == "host"}
    for r in done.values():  # the same numbers as the host's run of the same job
        for key in ("acc_before", "acc_after", "ft_macs", "epoch_loss", "trainable_params"):
            assert r[key] == host[r["job_id"], r["impl"]][key], (r["board"], key)


def test_a_command_started_on_a_silent_link_ends_by_its_deadline(lab, tmp_path, proxy, monkeypatch):
    import paramiko

    from harness.config import load_lab
    from harness.deadline import Deadline
    from harness.transports import CommandTimeout
    from harness.transports.ssh import WATCHDOG_GRACE_S, SshShell

    # Long liveness and connect timeouts: only the command's own deadline can end the wait.
    board = load_lab(through(proxy, tmp_path, lab, liveness_s=120, connect_timeout_s=60)).boards[0]
    shell = SshShell(board)
    generation = shell.connect()
    real_exec = paramiko.Channel.exec_command

    def silent_exec(channel, command):
        """The link goes silent just as the command is sent: paramiko then waits for the
        server's answer with no timeout of its own."""
        proxy.pause()
        return real_exec(channel, command)

    monkeypatch.setattr(paramiko.Channel, "exec_command", silent_exec)
    outcome = []

    def attempt():
        try:
            shell.run("echo hello", Deadline(2))
        except Exception as e:
            outcome.append(e)

    # In a thread, so that a wait without a deadline fails the test instead of hanging it (the
    # proxy's stop at the end then ends the wait).
    t0 = time.monotonic()
    waiting = threading.Thread(target=attempt, daemon=True)
    waiting.start()
    waiting.join(timeout=2 + WATCHDOG_GRACE_S + 10)
    waited = time.monotonic() - t0
    assert not waiting.is_alive(), f"the command start still waits after {waited:.0f} s"
    print(f"silent command start: gave up after {waited:.1f} s (deadline 2 s + grace {WATCHDOG_GRACE_S:g} s)")
    assert len(outcome) == 1 and isinstance(outcome[0], CommandTimeout), outcome
    assert "did not answer a new command within 2 s" in str(outcome[0])
    assert waited < 2 + WATCHDOG_GRACE_S + 2

    monkeypatch.setattr(paramiko.Channel, "exec_command", real_exec)
    proxy.resume()
    assert shell.connect() != generation  # a new connection, on which commands work again
    assert shell.run("echo hello", 10).stdout == b"hello\n"
    shell.close()


def test_a_timeout_on_a_silent_link_is_the_jobs_error_and_its_runner_is_stopped_later(lab, cache, tmp_path, proxy):
    from harness.config import load_lab
    from harness.kinds import open_target

    lab_file = through(proxy, tmp_path, lab, timeout_s=2, liveness_s=120, connect_timeout_s=2, retries=0,
                       work_root=f"{lab.token}/silent-timeout")
    out = tmp_path / tmp_path.name
    exp = experiment(tmp_path, **dict(SLOW, methods=["ft-all"], epochs=3000))
    run = start("run", "-e", exp, "-l", lab_file, "-o", out, "--no-report", cache=cache)
    root = lab.work_root("silent-timeout")
    wait_for(lambda: runner_on(root, out.name), what="a runner on sbc-native")
    (victim,) = runner_on(root, out.name)
    proxy.pause()
    stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 1 and "Traceback" not in stderr, stderr
    (rec,) = records(out)
    assert rec["status"] == "error" and "timed out after 2 s" in rec["error"], rec
    assert "could not be stopped now" in rec["error"] and _alive(victim)

    # The next run on the board stops it before anything else, and says so.
    proxy.resume()
    target = open_target(load_lab(lab_file).boards[0], "next", cache)
    target.prepare([], [])
    target.close()
    assert not _alive(victim)
    assert any(f"run {out.name} left running" in note for note in target.repaired), target.repaired


# -- a crashed harness ----------------------------------------------------------------------
class Sampler:
    """The runners alive under a work root, sampled every few ms: the old one (`victim`, whose
    pid file a new runner of the same job overwrites) by its pid, new ones by their pid files;
    `most` is the most seen alive at once."""

    def __init__(self, root: str, victim: int):
        self.root, self.victim, self.most, self.samples = root, victim, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self):
        while not self._stop.wait(0.005):
            live = set(runner_on(self.root)) | ({self.victim} if _alive(self.victim) else set())
            self.most = max(self.most, len(live))
            self.samples += 1

    def stop(self):
        self._stop.set()
        self._thread.join()


@pytest.mark.parametrize("board", ["sbc-native", "host"])
def test_kill_9_mid_job_then_resume_stops_the_old_runner_first(lab, cache, tmp_path, board):
    out = tmp_path / tmp_path.name
    exp = experiment(tmp_path, **dict(SLOW, methods=["ft-all", "lora-all"], boards=[board], epochs=200))
    root = lab.work_root(WORK_ROOT) if board == "sbc-native" else str(lab.path.parent / "host-root")
    run = start("run", "-e", exp, "-l", lab.path, "-o", out, "--no-report", cache=cache)
    wait_for(lambda: runner_on(root, out.name), what=f"a runner on {board}")
    (victim,) = runner_on(root, out.name)
    run.send_signal(signal.SIGKILL)
    run.communicate()
    time.sleep(0.5)
    assert _alive(victim), "the runner should outlive the harness killed with SIGKILL"

    sampler = Sampler(root, victim)
    try:
        resumed = skip2bench("run", "-e", exp, "-l", lab.path, "-o", out, "--resume", "--no-report", cache=cache)
    finally:
        sampler.stop()
    assert sampler.most == 1 and sampler.samples > 100, "two runners at once"
    assert not _alive(victim)
    assert f"stopped a runner that run {out.name} left running" in resumed.stdout, resumed.stdout
    recs = records(out)
    assert len(recs) == 2 and all(r["status"] == "ok" for r in recs)  # nothing lost, nothing twice
    assert len(final(out)) == 2


# -- one run per board ----------------------------------------------------------------------
@pytest.mark.parametrize("board", ["sbc-native", "host"])
def test_a_second_run_in_another_work_root_is_refused_unless_the_board_is_shared(lab, cache, tmp_path, board):
    from harness.config import load_lab
    from harness.kinds import open_target

    spec = next(b for b in load_lab(lab.path).boards if b.name == board)
    base = spec.work_root if board == "host" else f"{lab.token}/shared"

    def target(run_id, root, exclusive=True):
        t = open_target(spec.model_copy(update={"work_root": root, "exclusive": exclusive}), run_id, cache)
        t.prepare([], [])
        return t

    first = target("first", f"{base}-a")
    try:
        second = target("second", f"{base}-b")
        second.close()
        assert second.down and "is in use by run first" in second.down and "in work root" in second.down
        assert "exclusive = false" in second.down
    finally:
        first.close()

    first = target("first", f"{base}-a", exclusive=False)
    try:
        second = target("second", f"{base}-b", exclusive=False)
        second.close()
        assert second.down is None
    finally:
        first.close()


# -- what a job costs in exchanges with the board ---------------------------------------------
class Counting:
    """The real shell, its calls counted: every run, open, put and get is at least one round
    trip, and so is every line written to an open command (a session's job)."""

    def __init__(self, shell):
        self.shell, self.calls = shell, Counter()

    def __getattr__(self, name):
        return getattr(self.shell, name)

    def run(self, *args, **kw):
        self.calls["run"] += 1
        return self.shell.run(*args, **kw)

    def put(self, *args, **kw):
        self.calls["put"] += 1
        return self.shell.put(*args, **kw)

    def get(self, *args, **kw):
        self.calls["get"] += 1
        return self.shell.get(*args, **kw)

    def open(self, *args, **kw):
        self.calls["open"] += 1
        stream = self.shell.open(*args, **kw)
        write = stream.write

        def counted(data):
            self.calls["line"] += 1
            write(data)

        stream.write = counted
        return stream


def prepared_target(lab_file, cache, tmp_path, run_id, impls=("c",)):
    """sbc-native as a target on a counting shell, prepared for the demo-sized jobs of `exp`."""
    from harness.artifacts import prepare
    from harness.config import load_experiment, load_lab
    from harness.targets.posix import PosixTarget
    from harness.tasks import load_task
    from harness.transports.ssh import SshShell
    exp = load_experiment(experiment(tmp_path, name=f"{run_id}.toml", methods=["skip2-lora", "lora-all"],
                                     impls=list(impls)))
    art = prepare(load_task("synthetic", cache_dir=cache), 0, exp.model, exp.pretrain, cache)
    board = load_lab(lab_file).boards[0]
    target = PosixTarget(board, Counting(SshShell(board)), run_id, cache)
    target.prepare(list(impls), [art])
    assert target.down is None and not target.unsupported, (target.down, target.unsupported)
    return target, exp, art


def jobs(exp, rounds):
    from harness.plan import Job, runner_job
    return [(f"{variant}-r{rep}", runner_job(Job("synthetic", 0, variant, board="-", impl="c", repetition=rep),
                                             exp.finetune.for_variant(variant)))
            for rep in range(rounds) for variant in exp.methods]


@pytest.mark.parametrize("impl", ["c", "numpy"])
def test_a_job_costs_one_exchange_once_deployed(lab, cache, tmp_path, impl):
    target, exp, art = prepared_target(lab_with(tmp_path, lab, work_root=f"{lab.token}/exchanges-{impl}"), cache,
                                       tmp_path, f"exchanges-{impl}", impls=(impl,))
    spent = []
    try:
        for name, job in jobs(exp, 3):
            before = Counter(target.shell.calls)
            assert target.run_job(job, impl, art, name).status == "ok"
            spent.append(dict(target.shell.calls - before))
    finally:
        target.close()
    assert spent[0] == {"open": 1, "line": 1}, spent  # the session opens with the board's first job
    assert all(calls == {"line": 1} for calls in spent[1:]), spent


@pytest.mark.bench
def test_bench_a_job_over_a_long_line(lab, cache, tmp_path):
    """The same C jobs on sbc-native directly and through a proxy that delays every byte by
    100 ms each way (a 200 ms round trip), alternating: what the line adds per job once deployed,
    in round trips (target: at most 1.5). Printed; the exchange count above is the assertion."""
    rtt = 0.2
    (tmp_path / "direct").mkdir()
    slow = FaultProxy(int(re.search(r"^port = (\d+)", lab.path.read_text(), re.M).group(1)), seed=0,
                      rates=Rates(latency_s=rtt / 2)).start()
    targets = []
    try:
        for name, lab_file in (("direct", lab_with(tmp_path / "direct", lab, work_root=f"{lab.token}/rtt-direct",
                                                   exclusive=False)),
                               ("slow", through(slow, tmp_path, lab, work_root=f"{lab.token}/rtt-slow",
                                                exclusive=False))):
            targets.append(prepared_target(lab_file, cache, tmp_path, f"rtt-{name}"))
        walls = {"direct": [], "slow": []}
        for name, job in jobs(targets[0][1], 4):
            for (target, _, art), which in zip(targets, walls):
                t0 = time.perf_counter()
                result = target.run_job(job, "c", art, name)
                walls[which].append((time.perf_counter() - t0, result))
    finally:
        for target, _, _ in targets:
            target.close()
        slow.stop()
    for (_, a), (_, b) in zip(walls["direct"], walls["slow"]):
        assert (a.acc_after, a.ft_macs, a.epoch_loss) == (b.acc_after, b.ft_macs, b.epoch_loss)
    added = sorted(s - d for (d, _), (s, _) in zip(walls["direct"], walls["slow"]))
    median = added[len(added) // 2]
    print(f"\nlong line ({1e3 * rtt:.0f} ms round trip), {len(added)} C jobs once deployed: added per job median "
          f"{1e3 * median:.0f} ms = {median / rtt:.2f} round trips (target at most 1.5; "
          f"min {added[0] / rtt:.2f}, max {added[-1] / rtt:.2f})")
