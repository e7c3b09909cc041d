"""Content hashes of files: what keys caches and proves which data and weights a result used."""
import hashlib
from pathlib import Path


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_tree(files: dict) -> str:
    """One hash over named files ({name: path}), by name and content, independent of order."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(str(name).encode())
        h.update(sha256_file(files[name]).encode())
    return h.hexdigest()


def sha256_files(paths) -> str:
    """One hash over a set of files, by base name and content, independent of listing order."""
    return sha256_tree({Path(p).name: p for p in paths})


def sha256_text(*parts) -> str:
    """A hash naming a combination of settings (compiler, flags, source hash, ...)."""
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()
