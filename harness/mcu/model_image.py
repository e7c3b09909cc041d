"""The model slot image (docs/serial-protocol.md): the frozen backbone, flashed beside the firmware.

Built from a model folder's W{k}.npy and b{k}.npy; the input statistics stay on the host, which
scales the inputs it sends. Cached by the weights' content.
"""
import hashlib
import struct
import zlib
from pathlib import Path

import numpy as np

from harness.atomic import write_atomically

MAGIC, VERSION, HEADER_BYTES = b"S2BM", 1, 128


def payload(model_dir: Path, n_layers: int) -> tuple[bytes, list]:
    parts, dims = [], []
    for k in range(n_layers):
        w = np.load(model_dir / f"W{k}.npy").astype("<f4")
        b = np.load(model_dir / f"b{k}.npy").astype("<f4")
        dims = dims or [w.shape[0]]
        dims.append(w.shape[1])
        parts += [np.ascontiguousarray(w).tobytes(), np.ascontiguousarray(b).tobytes()]
    return b"".join(parts), dims


def image(model_dir: Path, n_layers: int) -> bytes:
    body, dims = payload(Path(model_dir), n_layers)
    header = (MAGIC + struct.pack("<HH", VERSION, n_layers) + struct.pack("<9I", *dims, *[0] * (9 - len(dims)))
              + struct.pack("<II", len(body), zlib.crc32(body)) + hashlib.sha256(body).digest())
    return header.ljust(HEADER_BYTES, b"\0") + body


def identity(blob: bytes) -> bytes:
    """The SHA-256 the firmware reports for this image (HELLO's model_hash)."""
    return blob[52:84]


def cached(model_dir: Path, n_layers: int, cache_dir: Path) -> Path:
    blob = image(model_dir, n_layers)
    path = Path(cache_dir) / "mcu-models" / f"{identity(blob).hex()[:16]}.bin"
    if not path.exists():
        write_atomically(path, lambda f: f.write(blob))
    return path
