"""Host-side builds kept in the cache (the MCU firmware, cross-compiled C runners): built once per
key, published whole, so a concurrent run or a killed build never leaves half a product."""
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness.errors import TargetError


def build_once(command: list, product: str, final: Path, what: str) -> Path:
    """final/product, made by `command` (a make that takes BUILD=folder) unless already there, with
    one compiler per core."""
    if (final / product).is_file():
        return final / product
    with tempfile.TemporaryDirectory(prefix="skip2-build-") as tmp:
        done = subprocess.run([*command, f"-j{os.cpu_count() or 1}", f"BUILD={tmp}"], capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise TargetError(f"{what} failed: {last}", done.stderr[-2000:])
        final.parent.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(dir=final.parent, prefix=".tmp-"))
        shutil.copy2(Path(tmp) / product, staged / product)
        try:
            staged.rename(final)
        except OSError:  # another run finished the same build first
            shutil.rmtree(staged)
    return final / product
