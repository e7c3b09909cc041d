"""The skip2bench pytest plugin: a lab's boards as fixtures in any project's tests, and a check
against a stored baseline with `skip2bench compare`'s rules. Registered on install (entry point
pytest11) and inert unless --skip2bench-lab is given: a test that asks for a board is then
skipped, and no other test sees anything of it.

    @pytest.mark.skip2bench(tags=["mcu"])           # optional: which boards (names=[...], tags=[...])
    def test_speed(skip2bench_board, skip2bench_run, skip2bench_baseline):
        records, run_dir = skip2bench_run("speed.toml")   # the experiment, on this board alone
        skip2bench_baseline(run_dir, "speed")             # fails with the comparison's table

`pytest --skip2bench-lab lab.toml --skip2bench-save-baselines` keeps each test's run as its
baseline (NAME--BOARD in ./skip2bench-baselines, or --skip2bench-baselines DIR); later sessions
compare with it.
"""
import itertools
import sys
from pathlib import Path

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("skip2bench", "skip2bench: tests on the boards of a lab")
    group.addoption("--skip2bench-lab", metavar="FILE", default=None,
                    help="Lab TOML whose boards the skip2bench_board fixture runs on (without it the plugin is inert).")
    group.addoption("--skip2bench-baselines", metavar="DIR", default=None,
                    help="Baselines folder (default: skip2bench-baselines where pytest runs).")
    group.addoption("--skip2bench-save-baselines", action="store_true",
                    help="Keep each run as its test's baseline instead of comparing with it.")


def pytest_configure(config):
    config.addinivalue_line("markers", "skip2bench(names=None, tags=None): the lab boards a test runs on")


def pytest_generate_tests(metafunc):
    if "skip2bench_board" not in metafunc.fixturenames:
        return
    lab_file = metafunc.config.getoption("skip2bench_lab")
    if not lab_file:
        metafunc.parametrize("skip2bench_board", [pytest.param(None, marks=pytest.mark.skip(
            reason="no --skip2bench-lab FILE given: no boards to run on"))], ids=["no-lab"])
        return
    from harness.config import load_lab
    marker = metafunc.definition.get_closest_marker("skip2bench")
    names, tags = (marker.kwargs.get("names"), marker.kwargs.get("tags")) if marker else (None, None)
    boards = [b for b in load_lab(Path(lab_file)).boards
              if (not names or b.name in names) and (not tags or set(tags) & set(b.tags))]
    metafunc.parametrize("skip2bench_board", boards, ids=[b.name for b in boards])


@pytest.fixture
def skip2bench_run(skip2bench_board, request, tmp_path):
    """run(experiment) -> (records, run directory): the experiment file on this test's board
    alone, through the run engine."""
    from rich.console import Console
    from harness.records import RecordLog
    from harness.run import run_experiment
    lab_file = Path(request.config.getoption("skip2bench_lab"))

    def on_this_board(exp, lab):
        return exp.model_copy(update={"boards": []}), lab.model_copy(update={"boards": [skip2bench_board]})

    runs = itertools.count()

    def run(experiment) -> tuple[list, Path]:
        out = tmp_path / f"run-{skip2bench_board.name}-{next(runs)}"  # a test may run several
        run_experiment(Path(experiment), lab_file, out, False, None, Console(file=sys.stdout), shape=on_this_board)
        return RecordLog(out / "records.jsonl").read(), out
    return run


@pytest.fixture
def skip2bench_baseline(skip2bench_board, request):
    """check(run_dir, name, **rules): the run against baseline NAME--BOARD with compare's rules
    (compare.Options: factors, alpha, acc_tolerance, memory_tolerance; fail_on); the test fails
    with the comparison's table on a regression. With --skip2bench-save-baselines it keeps the
    run as that baseline instead."""
    from harness.errors import UserError
    from harness.regress import baselines, compare as cmp
    from harness.report.tables import markdown
    given = request.config.getoption("skip2bench_baselines")
    folder = Path(given) if given else request.config.invocation_params.dir / "skip2bench-baselines"

    def check(run_dir: Path, name: str, fail_on=cmp.CATEGORIES, **rules):
        kept = f"{name}--{skip2bench_board.name}"
        if request.config.getoption("skip2bench_save_baselines"):
            baselines.save(kept, Path(run_dir), folder)
            return
        try:
            base = cmp.Side.read(f"baseline {kept}", baselines.run_dirs(kept, folder))
            table = cmp.compare(base, cmp.Side.read(str(run_dir), [Path(run_dir)]), cmp.Options(**rules))
        except UserError as e:  # no such baseline, or another board: say so, and how to make one
            pytest.fail(f"skip2bench: {e} (pytest --skip2bench-save-baselines keeps this run as it)", pytrace=False)
        bad = cmp.regressions(table, tuple(fail_on))
        if len(bad):
            shown = table[table["mark"] != "same"].drop(columns=["job_id"]).dropna(axis=1, how="all")
            pytest.fail(f"skip2bench: {len(bad)} regressions against baseline {kept} "
                        f"({', '.join(sorted(set(bad['metric'])))}):\n{markdown(shown)}", pytrace=False)
    return check
