"""The run engine (harness/engine): a worker per board in parallel, CPU groups taking turns, one
sink writing every record. Measured with a test-only board kind whose jobs sleep rather than
compute (tests/sleepy_kind.py), beside the local board running the real C runner."""
import _thread
import io
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

import sleepy_kind
from harness import engine, kinds
from harness.config import load_experiment, load_lab
from harness.engine.schedule import queues
from harness.plan import expand
from harness.records import RecordLog, record_key
from harness.run import run_experiment

EXPERIMENT = """
name = "engine"
tasks = ["synthetic"]
methods = ["lora-all", "skip-lora", "skip2-lora"]
impls = ["c"]
repetitions = {reps}
order = "{order}"
[model]
hidden = [8]
[pretrain]
epochs = 2
[finetune]
epochs = 3
"""


@pytest.fixture
def sleepy(monkeypatch, tmp_path):
    """The sleepy kind registered for this test; the (board, start, end) of every sleep."""
    monkeypatch.setenv("SKIP2BENCH_CACHE", str(tmp_path / "cache"))
    reference, intervals = sleepy_kind.Reference(tmp_path / "cache"), []
    monkeypatch.setitem(kinds.KINDS, "sleepy", sleepy_kind.kind(reference, intervals))
    yield intervals
    reference.close()


def write_lab(tmp_path, boards: dict, host=True) -> Path:
    """Sleepy boards by name with their extra fields, and the local board."""
    text = ['name = "engine-test"']
    for name, fields in boards.items():
        text.append(f'[[boards]]\nname = "{name}"\ntransport = "sleepy"\n'
                    + "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items()))
    if host:
        text.append(f'[[boards]]\nname = "host"\ntransport = "local"\nimpls = ["c"]\nwork_root = "{tmp_path / "host"}"\n')
    path = tmp_path / "lab.toml"
    path.write_text("\n".join(text))
    return path


def write_experiment(tmp_path, reps=1, order="shuffled") -> Path:
    path = tmp_path / "exp.toml"
    path.write_text(EXPERIMENT.format(reps=reps, order=order))
    return path


def run(exp, lab, out, resume=False):
    console = Console(file=io.StringIO(), width=200)
    t0 = time.perf_counter()
    _, counts = run_experiment(exp, lab, out, resume, None, console)
    return counts, time.perf_counter() - t0, console.file.getvalue()


def load(tmp_path, intervals: list, boards: int, job_s: float):
    """The load test: `boards` sleepy boards and the local board, each with 3 methods x 7
    repetitions. It prints the run's wall time against the busiest board's busy time, and the
    harness's cost per job."""
    reps = 7
    lab = write_lab(tmp_path, {f"sleepy-{i}": {"job_s": job_s} for i in range(boards)})
    exp = write_experiment(tmp_path, reps=reps)
    run(exp, lab, tmp_path / "warm-up")  # backbone, C build and the reference results, once
    intervals.clear()
    counts, wall, output = run(exp, lab, tmp_path / "measured")
    recs = RecordLog(tmp_path / "measured" / "records.jsonl").read()
    n = 3 * reps * (boards + 1)
    assert len(recs) == n and len({record_key(r) for r in recs}) == n
    assert counts["ok"] == n and {r["status"] for r in recs} == {"ok"}
    assert {r["board_kind"] for r in recs} == {"sleepy", "local"}
    # Deterministic fields of the sleepy boards' records are the local board's, job by job.
    host = {r["job_id"]: r["ft_macs"] for r in recs if r["board"] == "host"}
    assert all(r["ft_macs"] == host[r["job_id"]] for r in recs)
    busy = {}
    for r in recs:
        busy[r["board"]] = busy.get(r["board"], 0.0) + r["wall_s"]
    busiest = max(busy.values())
    overhead_ms = 1e3 * (sum(r["wall_s"] for r in recs if r["board"] != "host") / (3 * reps * boards) - job_s)
    print(f"\nengine load: {len(busy)} boards, {n} jobs: run wall {wall:.2f} s, busiest board busy {busiest:.2f} s "
          f"(wall/busiest {wall / busiest:.2f}; sum of busy times / wall {sum(busy.values()) / wall:.1f}); "
          f"harness per sleepy job {overhead_ms:.2f} ms beyond its {1e3 * job_s:.0f} ms sleep; "
          f"run wall beyond the busiest board {1e3 * (wall - busiest) / n:.2f} ms per job")
    # Sequential, the run would take the sum of the boards' busy times: 8x the busiest or more.
    assert sum(busy.values()) / wall > 3
    for board in busy:
        assert f"  {board}" in output  # a row per board in the live display
    return wall / busiest


def test_eight_boards_run_in_parallel_and_every_record_is_written_once(sleepy, tmp_path):
    """The load test's small form: 8 sleepy boards of 50 ms jobs and the local board, 189 jobs."""
    load(tmp_path, sleepy, boards=8, job_s=0.05)


@pytest.mark.bench
def test_bench_load_of_twelve_boards(sleepy, tmp_path):
    """The load benchmark: 12 sleepy boards of 300 ms jobs and the local board, 273 jobs; the
    target is a run within 5 % of its busiest board's busy time."""
    ratio = load(tmp_path, sleepy, boards=12, job_s=0.3)
    print(f"engine load benchmark: wall/busiest {ratio:.3f} (target <= 1.05)")


def test_boards_of_one_cpu_group_take_turns_and_other_groups_overlap(sleepy, tmp_path):
    lab = write_lab(tmp_path, {"a1": {"job_s": 0.05, "cpu_group": "a"}, "a2": {"job_s": 0.05, "cpu_group": "a"},
                               "b1": {"job_s": 0.05, "cpu_group": "b"}, "b2": {"job_s": 0.05, "cpu_group": "b"}},
                    host=False)
    counts, _, _ = run(write_experiment(tmp_path, reps=3), lab, tmp_path / "out")
    assert counts["ok"] == 36
    group = {"a1": "a", "a2": "a", "b1": "b", "b2": "b"}

    def overlap(x, y):
        return x[1] < y[2] and y[1] < x[2]

    pairs = [(x, y) for i, x in enumerate(sleepy) for y in sleepy[i + 1:] if overlap(x, y)]
    assert not [p for p in pairs if group[p[0][0]] == group[p[1][0]]], "two boards of one CPU group ran at once"
    assert any(group[x[0]] != group[y[0]] for x, y in pairs), "the groups never ran at once"
    # Turns: the two boards of a group alternate rather than one running all its jobs first
    # (a board may run twice in a row only while the other has not yet asked, or has finished).
    order = [board for board, _, _ in sorted(sleepy, key=lambda s: s[1]) if group[board] == "a"]
    assert sum(x == y for x, y in zip(order, order[1:])) <= 2, order


def test_a_board_that_goes_down_ends_its_jobs_as_errors_and_the_others_finish(sleepy, tmp_path):
    lab = write_lab(tmp_path, {"steady": {"job_s": 0.02}, "flaky": {"job_s": 0.02, "down_after": 2}})
    counts, _, output = run(write_experiment(tmp_path, reps=3), lab, tmp_path / "out")
    recs = RecordLog(tmp_path / "out" / "records.jsonl").read()
    flaky = [r for r in recs if r["board"] == "flaky"]
    assert [r["status"] for r in flaky].count("ok") == 2 and len(flaky) == 9
    assert all("board flaky went down after 2 jobs" in r["error"] for r in flaky if r["status"] == "error")
    assert all(r["status"] == "ok" for r in recs if r["board"] != "flaky") and counts["error"] == 7
    assert "error  board flaky went down after 2 jobs" in output


def test_a_board_that_does_not_stop_is_named_with_its_stack_and_the_run_still_ends(sleepy, tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "STOP_GRACE_S", 1)
    lab = write_lab(tmp_path, {"deaf": {"job_s": 8, "deaf": True}, "steady": {"job_s": 0.2}}, host=False)
    out = tmp_path / "out"
    sleepy_kind.DEAF_JOB_STARTED.clear()
    interrupted = []

    def interrupt():  # Ctrl-C, once the deaf board is in its job (pre-training may take seconds)
        if sleepy_kind.DEAF_JOB_STARTED.wait(120):
            time.sleep(0.5)  # the sink has printed the boards' first lines
            interrupted.append(time.monotonic())
            _thread.interrupt_main()
    threading.Thread(target=interrupt, daemon=True).start()
    console = Console(file=io.StringIO(), width=250)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(write_experiment(tmp_path), lab, out, False, None, console)
    assert time.monotonic() - interrupted[0] < 6  # not the deaf job's 8 s
    said = console.file.getvalue()
    assert "board deaf: did not stop within 1 s" in said and "board steady" not in said.split("did not stop")[-1]
    log = (out / "run.log").read_text()
    assert "board deaf did not stop within 1 s; its worker was at:" in log and "time.sleep(self.board.job_s)" in log


def test_each_board_queue_keeps_the_order_the_experiment_names(tmp_path, monkeypatch):
    monkeypatch.setitem(kinds.KINDS, "sleepy", sleepy_kind.kind(None, []))
    lab = load_lab(write_lab(tmp_path, {"s1": {"job_s": 1.0}, "s2": {"job_s": 1.0}}))
    listed = load_experiment(write_experiment(tmp_path, reps=3, order="listed"))
    jobs = expand(listed, lab)
    by_board = queues(listed, jobs)
    assert set(by_board) == {"s1", "s2", "host"}
    assert all(q == [j for j in jobs if j.board == board] for board, q in by_board.items())
    shuffled = load_experiment(write_experiment(tmp_path, reps=3, order="shuffled"))
    again = queues(shuffled, expand(shuffled, lab))
    assert again == queues(shuffled, expand(shuffled, lab))  # the same order on every run
    assert all(sorted(map(str, again[b])) == sorted(map(str, by_board[b])) for b in by_board)
    assert any(again[b] != by_board[b] for b in by_board)


@pytest.mark.bench
def test_bench_one_cpu_group_times_as_one_board_at_a_time(tmp_path, monkeypatch):
    """Two local boards in the default CPU group (this host): their jobs' times under the engine,
    the boards taking turns, against each board run alone in a run of its own (one job at a time
    across the lab, as before the engine), in rounds back to back; the paired ratio of every
    job's ft_time_s."""
    monkeypatch.setenv("SKIP2BENCH_CACHE", str(tmp_path / "cache"))
    boards = ("host-a", "host-b")
    lab = tmp_path / "lab.toml"
    lab.write_text('name = "group"\n' + "".join(
        f'[[boards]]\nname = "{name}"\ntransport = "local"\nimpls = ["c"]\nexclusive = false\n'
        f'work_root = "{tmp_path / name}"\n' for name in boards))
    text = EXPERIMENT.format(reps=3, order="shuffled").replace("hidden = [8]", "hidden = [96, 96]").replace(
        "epochs = 3", "epochs = 20")
    both, alone = tmp_path / "both.toml", {}
    both.write_text(text)
    for name in boards:
        alone[name] = tmp_path / f"{name}.toml"
        alone[name].write_text(text.replace('impls = ["c"]', f'impls = ["c"]\nboards = ["{name}"]'))

    def times(exp, out) -> dict:
        run(exp, lab, out)
        return {record_key(r): r["ft_time_s"] for r in RecordLog(out / "records.jsonl").read()}

    times(both, tmp_path / "warm-up")
    ratios = []
    for round_ in range(3):
        together = times(both, tmp_path / f"together-{round_}")
        apart = {k: v for name in boards for k, v in times(alone[name], tmp_path / f"{name}-{round_}").items()}
        assert together.keys() == apart.keys()
        ratios += [together[k] / apart[k] for k in together]
    ratios = np.array(ratios)
    print(f"\none CPU group: ft_time_s under the engine / one board at a time, {len(ratios)} paired jobs: "
          f"geometric mean {np.exp(np.log(ratios).mean()):.3f}, median {np.median(ratios):.3f}, "
          f"middle 80 % {np.quantile(ratios, 0.1):.3f}..{np.quantile(ratios, 0.9):.3f}")
