"""`pip install skip2bench` outside the repository: the wheel carries the board-side sources, the
labs and the experiments (no tests, no results), and from a fresh virtual environment in a
folder of its own the installed package sets up, runs, reports and checks a lab without writing
into site-packages."""
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, copy_checkout, require_tool

SHIPPED_SUFFIXES = (".py", ".c", ".h", ".inc", ".def", ".ld", ".md", ".toml")


def tracked(folder: str) -> list[str]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", folder], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    return [name for name in listed if name.endswith(SHIPPED_SUFFIXES) or name.endswith("Makefile")]


def tree_digest(folder: Path) -> str:
    """Every file's path and content under `folder`: equal digests, equal trees."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Built from a copy: the build leaves its build/ folder beside the sources, not in the checkout.
    source, out = copy_checkout(tmp_path_factory.mktemp("source")), tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(source), "-w", str(out)], check=True,
                   capture_output=True)
    return next(out.glob("skip2bench-*.whl"))


def test_the_wheel_carries_board_code_labs_and_experiments_and_no_tests_or_results(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    want = {f"harness/data/{name}" for folder in ("targets", "labs", "experiments") for name in tracked(folder)}
    want |= {name for name in tracked("harness") if name.endswith(".py")}
    assert want <= names, sorted(want - names)
    assert "harness/data/targets/c/core/skip2_job.def" in names and "harness/data/labs/local.toml" in names
    assert not [n for n in names if n.startswith(("tests/", "results/")) or "__pycache__" in n]


def test_the_installed_package_runs_outside_the_repository(wheel, tmp_path):
    require_tool("cc")
    require_tool("make")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True, capture_output=True)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    before = tree_digest(site)
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    # The user's own cache folder, and no way back into the checkout.
    env = {k: v for k, v in os.environ.items() if k not in ("SKIP2BENCH_CACHE", "PYTHONPATH", "XDG_CACHE_HOME")}
    env.update(HOME=str(home), PATH=f"{venv / 'bin'}:{env['PATH']}")
    subprocess.run(["chmod", "-R", "a-w", str(site)], check=True)  # read-only for the run

    def skip2bench(*args):
        done = subprocess.run(["skip2bench", *args], cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"skip2bench {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    try:
        assert skip2bench("--version").startswith("skip2bench ")
        skip2bench("init")
        assert {p.name for p in work.iterdir()} == {"lab.toml", "experiment.toml"}
        assert "host" in skip2bench("lab", "check", "--lab", "lab.toml")
        skip2bench("run", "-e", "demo", "-l", "local", "--no-report")  # the built-in demo
        skip2bench("run", "-e", "experiment.toml", "-l", "lab.toml", "-o", "starter")
        skip2bench("report", "starter")
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(site)], check=True)
    assert tree_digest(site) == before
    assert (work / "starter" / "report" / "report.md").is_file()
    # The manifest names its files relative to the run, not by this machine's absolute paths.
    command = json.loads((work / "starter" / "manifest.json").read_text())["command"]
    assert (command["experiment"], command["lab"]) == ("../experiment.toml", "../lab.toml")
    demo = next((work / "skip2bench-runs").glob("demo-*"))
    records = [json.loads(line) for run in (demo, work / "starter")
               for line in (run / "records.jsonl").read_text().splitlines()]
    assert {r["impl"] for r in records} == {"numpy", "c"} and all(r["status"] == "ok" for r in records)
    assert (home / ".cache" / "skip2bench").is_dir()  # backbones and board work folders went there
