"""Another git revision of this checkout as a tree of its own, to build and run beside this one
(`skip2bench ab`, `skip2bench mcu-speed --before`)."""
import subprocess
from pathlib import Path

from harness import paths
from harness.errors import UserError


def export(ref: str, into: Path) -> Path:
    """The tree of git revision `ref`, unpacked into `into`."""
    if paths.CHECKOUT is None:
        raise UserError(f"revision {ref}: other revisions are built from a git checkout of skip2bench; run from one")
    into.mkdir(parents=True)
    archive = into.with_suffix(".tar")
    for command in (["git", "-C", str(paths.CHECKOUT), "archive", "-o", str(archive), ref],
                    ["tar", "-x", "-f", str(archive), "-C", str(into)]):
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise UserError(f"revision {ref}: {done.stderr.strip()}")
    archive.unlink()
    return into
