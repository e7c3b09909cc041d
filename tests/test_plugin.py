"""The pytest plugin, from another project (pytester): its board fixture and baseline check pass
on an unchanged build and fail on a slowed one with the comparison's table; without its option
the project's tests see nothing of it.

The slowed build is the same board whose NumPy does every matrix product 30 times, as a much
slower BLAS would (its python a script that puts a sitecustomize on the PYTHONPATH).
"""
import sys

import pytest

pytest_plugins = ["pytester"]

TEST_FILE = '''
import pytest

EXPERIMENT = {experiment!r}


@pytest.mark.skip2bench(names=["host"])
def test_speed(skip2bench_board, skip2bench_run, skip2bench_baseline):
    records, run_dir = skip2bench_run(EXPERIMENT)
    assert records and all(r["status"] == "ok" for r in records if r["record_type"] == "job")
    skip2bench_baseline(run_dir, "speed", factors={{"ft_time_s": 2.0}}, fail_on=("time", "exact", "accuracy"))


def test_plain():
    assert 1 + 1 == 2
'''
# A slower product kernel, as a slower BLAS would be: every matmul does its work 30 times (the
# products of this small model are a small part of its steps' time).
SLOWER_MATMUL = ("import numpy\n_matmul = numpy.matmul\n\n\n"
                 "def matmul(a, b, out=None):\n    for _ in range(29):\n        _matmul(a, b)\n"
                 "    return _matmul(a, b, out=out)\n\n\nnumpy.matmul = matmul\n")


def lab(path, python: str):
    path.write_text(f'name = "plugin"\n[[boards]]\nname = "host"\ntransport = "local"\nimpls = ["numpy"]\n'
                    f'python = "{python}"\nwork_root = "{path.parent / "host"}"\n'
                    f'[[boards]]\nname = "other"\ntransport = "local"\nimpls = ["numpy"]\n'
                    f'work_root = "{path.parent / "other"}"\n')
    return path


@pytest.fixture
def project(pytester, tmp_path, monkeypatch):
    from conftest import cut_task, small_experiment
    monkeypatch.setenv("SKIP2BENCH_CACHE", str(tmp_path / "cache"))
    data = cut_task(tmp_path / "small.npz", 64, {"pre": 400, "ft": 80, "test": 60})
    experiment = small_experiment(tmp_path / "speed.toml", data, ["ft-last", "skip-lora"], ["numpy"], epochs=4)
    experiment.write_text(experiment.read_text().replace("seeds = [0]", "seeds = [0]\nrepetitions = 7"))
    pytester.makepyfile(test_project=TEST_FILE.format(experiment=str(experiment)))
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "sitecustomize.py").write_text(SLOWER_MATMUL)
    (slow / "python").write_text(f'#!/bin/sh\nPYTHONPATH={slow} exec {sys.executable} "$@"\n')
    (slow / "python").chmod(0o755)
    return {"same": lab(tmp_path / "lab.toml", sys.executable), "slow": lab(tmp_path / "slow-lab.toml", slow / "python")}


def test_a_baseline_check_passes_on_the_same_build_and_fails_on_a_slowed_one(pytester, project):
    saved = pytester.runpytest_subprocess("--skip2bench-lab", project["same"], "--skip2bench-save-baselines")
    saved.assert_outcomes(passed=2)
    assert (pytester.path / "skip2bench-baselines" / "speed--host").is_dir()
    again = pytester.runpytest_subprocess("--skip2bench-lab", project["same"], "-v")
    again.assert_outcomes(passed=2)
    again.stdout.fnmatch_lines(["*test_speed?host? PASSED*"])  # the marker kept the other board out
    slowed = pytester.runpytest_subprocess("--skip2bench-lab", project["slow"])
    slowed.assert_outcomes(passed=1, failed=1)
    slowed.stdout.fnmatch_lines(["*skip2bench: * regressions against baseline speed--host (ft_time_s)*",
                                 "*| board*| task*| variant*",
                                 "*host*skip-lora*numpy*time*ft_time_s*worse*"])


def test_without_its_option_the_plugin_changes_nothing(pytester, project):
    plain = pytester.runpytest_subprocess("--setup-show", "-rs")
    plain.assert_outcomes(passed=1, skipped=1)
    plain.stdout.fnmatch_lines(["*no --skip2bench-lab FILE given*"])
    shown = plain.stdout.str()
    assert "SETUP    F skip2bench_run" not in shown and "skip2bench_baseline" not in shown
    assert not (pytester.path / "skip2bench-baselines").exists()
