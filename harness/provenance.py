"""Facts that make a result reproducible: code version, host, library versions."""
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from harness.paths import CHECKOUT


def shown_path(path, base=None) -> str:
    """A path as results may show it: relative inside the checkout, else relative to `base` (the
    run's folder) when given, else as given."""
    resolved = Path(path).resolve()
    if CHECKOUT and resolved.is_relative_to(CHECKOUT):
        return str(resolved.relative_to(CHECKOUT))
    return os.path.relpath(resolved, Path(base).resolve()) if base is not None else str(path)


def git_state() -> dict:
    """The checkout's revision and whether it has changes; none for an installed package."""
    def git(*args):
        return subprocess.run(["git", "-C", str(CHECKOUT), *args], capture_output=True, text=True, check=False)

    top = git("rev-parse", "--show-toplevel") if CHECKOUT else None
    # A tree exported from git (`skip2bench ab`) may lie inside another repository: not its revision.
    if top is None or top.returncode != 0 or Path(top.stdout.strip()).resolve() != CHECKOUT.resolve():
        return {"sha": None, "dirty": None}
    sha = git("rev-parse", "HEAD")
    # Run outputs under results/ are not inputs: they never make the code "dirty".
    changed = git("status", "--porcelain", "--", ".", ":!results").stdout.strip()
    return {"sha": sha.stdout.strip(), "dirty": bool(changed)}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_bytes():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None


def host_facts() -> dict:
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "mem_bytes": _mem_bytes(),
        "python": platform.python_version(),
    }


def library_versions() -> dict:
    names = ("skip2bench", "numpy", "pandas", "matplotlib", "paramiko", "pyserial", "pydantic", "click", "rich")
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
