"""The model slot image (docs/serial-protocol.md): the frozen backbone, flashed beside the firmware,
and for a job whose inputs are stored in int8 its data set after it.

The model is built from a model folder's W{k}.npy and b{k}.npy; the input statistics stay on the
host, which scales the inputs it sends or stores. Images are cached by their content.
"""
import hashlib
import struct
import zlib
from pathlib import Path

import numpy as np

from harness.atomic import write_atomically

MAGIC, VERSION, HEADER_BYTES = b"S2BM", 1, 128
DATA_MAGIC, DATA_VERSION, DATA_HEADER_BYTES = b"S2BD", 1, 64


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


def data_section(y: tuple, scales: tuple, q: tuple) -> bytes:
    """A data set with int8 inputs, to follow the model in the slot. Each argument is a pair
    (fine-tune, test): the labels, one scale per input row, the int8 input rows."""
    parts = [a.astype("<i4") for a in y] + [a.astype("<f4") for a in scales] + [a.astype("i1") for a in q]
    body = b"".join(np.ascontiguousarray(p).tobytes() for p in parts)
    header = (DATA_MAGIC + struct.pack("<HHIIII", DATA_VERSION, q[0].shape[1], len(y[0]), len(y[1]), len(body),
                                       zlib.crc32(body)) + hashlib.sha256(body).digest())
    return header.ljust(DATA_HEADER_BYTES, b"\0") + body


def data_identity(section: bytes) -> bytes:
    """The SHA-256 the firmware reports for this data set (HELLO's slot_data_hash, RUN's data_hash)."""
    return section[24:56]


def cached(blob: bytes, cache_dir: Path) -> Path:
    """The image as a file to flash."""
    path = Path(cache_dir) / "mcu-models" / f"{hashlib.sha256(blob).hexdigest()[:16]}.bin"
    if not path.exists():
        write_atomically(path, lambda f: f.write(blob))
    return path
