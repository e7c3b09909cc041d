"""Whole-file writes: readers (a concurrent job, a report of a running run) never see half a file."""
import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, write) -> None:
    """Call write(binary file) on a temporary sibling of `path`, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        os.remove(tmp)
        raise
