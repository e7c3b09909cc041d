"""The serial protocol's messages (docs/serial-protocol.md): packing the host's, reading the board's."""
import struct
from dataclasses import dataclass

from harness.job_table import FIELD, FIELDS, FORMATS, METHODS, RUN_SIZES
from harness.transports.serial_link import PROTOCOL

HELLO, STATUS, DATA_BEGIN, DATA_CHUNK, DATA_END, RUN, PRODUCT = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07
ROWS, PROGRESS, DONE = 0x10, 0x11, 0x12
PHASES = ("fwd", "bwd", "upd", "cache")
RUN_STATUS = {0: "started", 1: "does not fit", 2: "invalid job", 3: "model not flashed", 4: "data not loaded"}
PRODUCT_STATUS = {0: "timed", 1: "does not fit", 2: "invalid shape"}


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", errors="replace")


@dataclass(frozen=True)
class Hello:
    protocol: int
    firmware_version: int
    board: str
    clock_hz: int
    ticks_per_second: int
    flash_bytes: int
    model_slot: int
    model_slot_bytes: int
    firmware_hash: str
    model_hash: bytes
    data_hash: bytes
    regions: tuple  # (name, base, size, free)
    timer: str      # what the ticks count: "dwt" (the core's cycle counter) or "systick"
    slot_data_hash: bytes  # the data set in the model slot (int8 inputs), or zeros

    @classmethod
    def parse(cls, p: bytes) -> "Hello":
        """A HELLO answer; ValueError when it is not the one this protocol version describes."""
        try:
            return cls._parse(p)
        except (struct.error, IndexError):
            raise ValueError(f"a HELLO answer of {len(p)} bytes does not have this protocol's layout") from None

    @classmethod
    def _parse(cls, p: bytes) -> "Hello":
        protocol, version = struct.unpack_from("<HH", p)
        board = _text(p[4:20])
        clock, tps, flash, slot, slot_bytes = struct.unpack_from("<5I", p, 20)
        fw_hash = _text(p[40:104])
        model_hash, data_hash = p[104:136], p[136:168]
        regions, at = [], 169
        for _ in range(p[168]):
            name = _text(p[at:at + 8])
            base, size, free = struct.unpack_from("<3I", p, at + 8)
            regions.append((name, base, size, free))
            at += 20
        timer, slot_data_hash = struct.unpack_from("<B32s", p, at)
        return cls(protocol, version, board, clock, tps, flash, slot, slot_bytes, fw_hash, model_hash,
                   data_hash, tuple(regions), "dwt" if timer else "systick", slot_data_hash)

    def region_facts(self) -> dict:
        return {name: {"base": f"0x{base:08x}", "bytes": size, "free": free}
                for name, base, size, free in self.regions}


def hello(session: int) -> bytes:
    """HELLO: the host's protocol and the nonce of the session it opens."""
    return struct.pack("<HI", PROTOCOL, session)


def data_begin(data_hash: bytes, n_ft: int, n_test: int, d: int, with_inputs: bool) -> bytes:
    return data_hash + struct.pack("<IIHBB", n_ft, n_test, d, int(with_inputs), 0)


# RUN (docs/serial-protocol.md): the job's fields, each at its place in skip2_job.def, and RUN's
# own bytes: whether the inputs stream, the model's and the data set's hashes.
RUN_STREAM_AT, RUN_MODEL_HASH_AT, RUN_DATA_HASH_AT = 2, 32, 64
RUN_FIELDS = tuple(f for f in FIELDS if f.run_type != "none")
RUN_BYTES = max(RUN_DATA_HASH_AT + 32, *(f.run_at + RUN_SIZES[f.run_type] for f in RUN_FIELDS))
_WIRE = {"u8": "<B", "u32": "<I", "i32": "<i", "f32": "<f"}
# A field's value on the wire and back: methods and formats by their index in the C enums.
_CODES = {"method": [m.name for m in METHODS], "format": list(FORMATS)}


def _encode(field, value):
    if field.type in _CODES:
        return _CODES[field.type].index(value)
    return int(value) if field.type == "bool" else value


def _decode(field, value):
    if field.type in _CODES:
        codes = _CODES[field.type]
        return codes[value] if value < len(codes) else value
    return bool(value) if field.type == "bool" else value


def run_fields(job: dict) -> bytearray:
    """RUN's layout with the job's fields in place and RUN's own bytes zero."""
    payload = bytearray(RUN_BYTES)
    for f in RUN_FIELDS:
        struct.pack_into(_WIRE[f.run_type], payload, f.run_at, _encode(f, job[f.name]))
    return payload


def run(job: dict, stream: bool, model_hash: bytes, data_hash: bytes) -> bytes:
    payload = run_fields(job)
    payload[RUN_STREAM_AT] = int(stream)
    payload[RUN_MODEL_HASH_AT:RUN_MODEL_HASH_AT + 32] = model_hash
    payload[RUN_DATA_HASH_AT:RUN_DATA_HASH_AT + 32] = data_hash
    return bytes(payload)


def read_run(p: bytes) -> dict:
    """The job of a RUN payload (or of the board's echo of it), field by field."""
    return {f.name: _decode(f, struct.unpack_from(_WIRE[f.run_type], p, f.run_at)[0]) for f in RUN_FIELDS}


def run_answer(p: bytes) -> tuple[int, int, int, str]:
    """(status, needed, available, message) of a RUN response."""
    status, needed, available = struct.unpack_from("<BII", p)
    return status, needed, available, _text(p[9:9 + 192])


def product(kind: int, x0: int, m: int, k: int, n: int) -> bytes:
    """PRODUCT: the shape of one product to time (harness/mcu/products.py's codes)."""
    return struct.pack("<BBHHH", kind, x0, m, k, n)


@dataclass(frozen=True)
class ProductAnswer:
    status: int
    needed: int     # bytes its operands take
    available: int  # bytes of the RAM space it was given
    macs: int
    ticks: int
    bits: int       # a hash of the result's bits

    @classmethod
    def parse(cls, p: bytes) -> "ProductAnswer":
        return cls(*struct.unpack("<BQIQQI", p))


@dataclass(frozen=True)
class RowsRequest:
    split: int
    count: int
    first: int
    indices: tuple | None

    @classmethod
    def parse(cls, p: bytes) -> "RowsRequest":
        split, _, count, first = struct.unpack_from("<BBHI", p)
        indices = struct.unpack_from(f"<{count}I", p, 8) if len(p) > 8 else None
        return cls(split, count, first, indices)


def progress(p: bytes) -> tuple[int, int, float]:
    """(epoch, epoch ticks, mean loss)."""
    return struct.unpack_from("<IQd", p)


_DONE = struct.Struct("<BBHIIIIQQQQ4QIQQ5QQIBIBIBII")


def done(p: bytes) -> dict:
    v = _DONE.unpack_from(p)
    names = ("core_status", "diverged", "epochs_run", "n_ft", "n_test", "correct_before", "correct_after",
             "ft_macs", "trainable_params", "arena_bytes", "ft_ticks")
    out = dict(zip(names, v[:11]))
    out["phase_ticks"] = dict(zip(PHASES, v[11:15]))
    out["cache_capacity"], out["cache_hits"], out["cache_misses"] = v[15:18]
    out["mem"] = dict(zip(("weights_bytes", "grads_bytes", "optimizer_bytes", "activations_bytes", "cache_bytes"),
                          v[18:23]))
    out["transfer_ticks"] = v[23]
    out["stack_bytes"], out["data_region"], out["data_bytes"], out["arena_region"], out["arena_bytes_placed"] = v[24:29]
    out["store_region"], out["store_bytes_placed"] = v[29:31]
    out["bytes_during_compute"] = v[31]
    # The job as the board read it from RUN, the fields its method holds (its echo), checked
    # against the job sent.
    echo = p[_DONE.size:_DONE.size + RUN_BYTES]
    job = read_run(echo) if len(echo) == RUN_BYTES else None
    out["job"] = job and {name: value for name, value in job.items() if FIELD[name].holds(job["method"])}
    return out
