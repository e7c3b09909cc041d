"""An MCU board behind the serial protocol (docs/serial-protocol.md): the C implementation on
another kind of board, so a job with impl "c" trains the same here as on the host.

prepare() builds the firmware, reaches the board (HELLO: protocol, firmware hash, memory) and
flashes the current firmware when the board runs another. Each job then needs its model in the
board's model slot (flashed when another is there) and its data set: with int8 inputs in the slot
beside the model when they fit there, else in RAM (inputs and labels when they fit, else labels
only with the inputs streamed per mini-batch on the board's request); then a RUN, after which the
host answers the board's ROWS, PROGRESS and DONE. The data set's host-side form is
harness/mcu/dataset.py, the result's assembly harness/mcu/result.py; flashing is the flasher's it
is handed (harness/flashers.py), and so are an emulated board's estimated cycles
(harness/mcu/cycle_model.py).
"""
import dataclasses
import hashlib
import secrets
import struct
import time
import zlib
from collections import Counter
from pathlib import Path

from harness.errors import JobUnsupported, TargetError, UserError
from harness.mcu import cycle_model, firmware, footprint, messages as msg, model_image
from harness.mcu.dataset import DataSet
from harness.mcu.result import serial_result
from harness.targets import facts as board_facts
from harness.targets import validated
from harness.transports import LinkDown
from harness.transports.serial_link import PROTOCOL, BoardReset, ProtocolError, SerialLink, SessionRefused

RECONNECT_TIMEOUT_S = 1.0  # per HELLO try (x link_tries): a board may still be busy with a dead host's job
# Data set chunks: 1 KB, not the 4 KB a frame allows, so that on a noisy line most frames pass
# (at one damaged byte in 5000, 81 % of 1 KB frames arrive whole, 44 % of 4 KB ones).
DATA_CHUNK_BYTES = 1024


def check_hello(payload: bytes, board_name: str, ours: int = PROTOCOL) -> msg.Hello:
    """The board's HELLO answer, refused when it speaks another protocol (naming both)."""
    theirs = struct.unpack_from("<H", payload)[0] if len(payload) >= 2 else None
    if theirs != ours:
        raise ProtocolError(f"board {board_name} speaks serial protocol {theirs}, this skip2bench speaks "
                            f"{ours}; flash the firmware of this skip2bench")
    try:
        return msg.Hello.parse(payload)
    except ValueError as e:
        raise ProtocolError(f"board {board_name}: {e} (another build of the firmware); flash the firmware "
                            f"of this skip2bench") from None


class SerialTarget:
    on_progress = None  # called with "epoch n/N" as the board reports each epoch (the run's console)

    def __init__(self, board, run_id: str, cache_dir: Path, flasher, cycles=None):
        self.board, self.run_id, self.cache_dir, self.flasher = board, run_id, Path(cache_dir), flasher
        self.cycles = cycles  # an emulated board's cycle model (cycle_model.LabWindows), or None
        self.windows_before = None  # its windows when the running job started
        self.down, self.facts, self.fingerprint = None, {}, None
        self.unsupported, self.runner_sha256, self.repaired = {}, {}, []
        self.sent = Counter()
        self.link, self.hello, self.fw = None, None, None
        self.too_big = set()  # data sets the board's RAM cannot hold
        self.emulated = board.standin is not None

    # -- the link -----------------------------------------------------------------------------
    def _connect(self, timeout_s: float | None = None):
        if self.link is not None:
            self.link.close()
        b = self.board
        self.link = SerialLink(b.port, b.link_timeout_s, b.link_tries, b.baudrate)
        try:
            answer = self.link.request(msg.HELLO, msg.hello(self.link.session), timeout_s)
        except BoardReset:  # its boot (a flash, a reset) announced before the answer: ask again
            answer = self.link.request(msg.HELLO, msg.hello(self.link.session), timeout_s)
        self.hello = check_hello(answer, b.name)

    def _flash(self, model: Path | None = None):
        """Put the firmware (and a model image) on the board, then reach it again."""
        self.flasher.flash(self.fw.elf, model, self.hello.model_slot if self.hello else None)
        if self.link is not None:
            self.link.close()
            self.link = None
        self._connect(RECONNECT_TIMEOUT_S)

    # -- prepare --------------------------------------------------------------------------------
    def prepare(self, impls, artifacts) -> None:
        for impl in impls:
            if impl != "c":
                self.unsupported[impl] = (f"board {self.board.name} is a microcontroller: it runs the C "
                                          f"implementation only")
        try:
            self.fw = firmware.build(self.board.firmware, self.board.layout, self.cache_dir)
            try:
                # Patient: a board whose last host died mid-job answers once it gives that job up.
                self._connect(RECONNECT_TIMEOUT_S)
            except ProtocolError:  # another firmware's protocol or layout: flash ours, if we can
                if not self.flasher.can_flash:
                    raise
                self._flash()
            if self.hello.firmware_hash != self.fw.source_hash:
                self.repaired.append(f"firmware {self.hello.firmware_hash[:12]} replaced by {self.fw.source_hash[:12]}")
                self._flash()
            if self.hello.firmware_hash != self.fw.source_hash:
                raise TargetError(f"board {self.board.name} still runs firmware {self.hello.firmware_hash[:12]} "
                                  f"after flashing {self.fw.source_hash[:12]}")
            self.runner_sha256["c"] = self.fw.elf_sha256
            self.fw_static = footprint.static(self.fw.elf, self.hello.regions)
            h = self.hello
            self.facts = {"transport": "serial", "board": h.board, "firmware_version": h.firmware_version,
                          "protocol": h.protocol, "clock_hz": h.clock_hz, "ticks_per_second": h.ticks_per_second,
                          "flash_bytes": h.flash_bytes, "model_slot_bytes": h.model_slot_bytes,
                          "ram": {name: size for name, _, size, _ in h.regions}, "layout": self.board.layout,
                          "firmware_hash": h.firmware_hash, "timer": h.timer}
            if self.emulated:
                self.facts["emulated"] = f"QEMU {self.board.standin.machine}, -icount shift=0"
            self.fingerprint = board_facts.fingerprint(self.facts)
        except (LinkDown, ProtocolError, TargetError, UserError) as e:
            self.down = str(e)

    # -- a job ----------------------------------------------------------------------------------
    def run_job(self, job: dict, impl: str, artifacts, name: str):
        if self.down:
            raise TargetError(self.down)
        what = f"c firmware on {self.board.name}"
        try:
            try:
                started = self._begin(job, artifacts, what)
            except (BoardReset, SessionRefused) as e:
                # Reset, or taken over by another host, since the last job: what the board held in
                # RAM is gone. Reach it afresh (HELLO tells what it holds now) and set up again.
                self._forget_link()
                self.repaired.append(f"{e}; reconnected before job {name}")
                started = self._begin(job, artifacts, what)
            return self._serve(job, *started, what)
        except BoardReset as e:
            self._forget_link()
            raise TargetError(f"{what}: board reset during the job: {e.reason}") from None
        except (LinkDown, ProtocolError) as e:
            self._forget_link()
            raise TargetError(f"{what}: {e}") from None
        except (JobUnsupported, TargetError):
            raise
        except BaseException:
            self._forget_link()
            raise
        finally:
            if self.link is not None:
                self.link.begin_job(0)

    def _begin(self, job, artifacts, what: str) -> tuple:
        """The job's model and data on the board, and the job started: (data, stream, in_slot)."""
        if self.link is None:
            self._connect(RECONNECT_TIMEOUT_S)
        data = DataSet(artifacts, job["input_format"])
        section = data.slot_section()
        model_hash, in_slot = self._model(artifacts, section)
        if in_slot:  # nothing to load: the inputs are in flash, beside the model
            stream, answer = False, self._start(job, False, model_hash, model_image.data_identity(section))
            if answer[0] == 0:  # the job's arena may take the RAM of a set loaded before
                self.hello = dataclasses.replace(self.hello, data_hash=bytes(32))
        else:
            stream = not self._load(data, with_inputs=True)
            if stream:  # the inputs do not fit the board's RAM: the labels go there, the rows stream
                self._load_or_refuse(data)
            answer = self._start(job, stream, model_hash, self._ram_hash(data, stream))
            if answer[0] == 1 and not stream:  # the inputs take the arena's room: stream them instead
                stream = True
                self._load_or_refuse(data)
                answer = self._start(job, stream, model_hash, self._ram_hash(data, stream))
        status, needed, available, message = answer
        if status == 1:  # the board's own words: "needs 120 KB in sram for its arena, ..."
            raise JobUnsupported(f"board {self.board.name}: the job {message}")
        if status != 0:
            raise TargetError(f"{what} refused the job: {msg.RUN_STATUS.get(status, status)}: {message}")
        return data, stream, in_slot

    # -- the product micro-benchmark ---------------------------------------------------------
    def time_products(self, shapes: list) -> list:
        """Each product (kind, x0, m, k, n) timed on the board (PRODUCT): its answer, checked
        against its shape; a product whose operands do not fit the board's RAM answers so."""
        if self.down:
            raise TargetError(self.down)
        try:
            return [self._time_product(shape) for shape in shapes]
        except (LinkDown, ProtocolError) as e:
            self._forget_link()
            raise TargetError(f"products on {self.board.name}: {e}") from None

    def _time_product(self, shape) -> msg.ProductAnswer:
        if self.link is None:
            self._connect(RECONNECT_TIMEOUT_S)
        try:
            raw = self.link.request(msg.PRODUCT, msg.product(*shape))
        except (BoardReset, SessionRefused) as e:  # reset or taken over since the last request
            self._forget_link()
            self.repaired.append(f"{e}; reconnected before a product")
            self._connect(RECONNECT_TIMEOUT_S)
            raw = self.link.request(msg.PRODUCT, msg.product(*shape))
        try:
            answer = msg.ProductAnswer.parse(raw)
        except struct.error:
            raise ProtocolError(f"board {self.board.name} answered PRODUCT with a malformed frame of "
                                f"{len(raw)} bytes") from None
        _, _, m, k, n = shape
        if answer.status not in (0, 1):
            raise ProtocolError(f"board {self.board.name} refused the product {shape}: "
                                f"{msg.PRODUCT_STATUS.get(answer.status, answer.status)}")
        if answer.status == 0 and answer.macs != m * k * n:
            raise ProtocolError(f"board {self.board.name} counted {answer.macs} MACs for a {m}x{k}x{n} product, "
                                f"not {m * k * n}")
        return answer

    def _forget_link(self):
        """After a failure the board may still be busy with the job: reconnect afresh next time."""
        if self.link is not None:
            self.link.close()
            self.link = None

    def _model(self, artifacts, section: bytes) -> tuple[bytes, bool]:
        """The job's model in the slot, with the int8 data set `section` after it when there is one
        and it fits (flashed when the slot holds another): the model's hash, and whether the slot
        holds the data set."""
        model = model_image.image(artifacts.model_dir, artifacts.n_layers)
        want, data_hash = model_image.identity(model), model_image.data_identity(section)
        in_slot = bool(section) and len(model) + len(section) <= self.hello.model_slot_bytes
        self.flash_bytes = {"model": len(model), "data": len(section) if in_slot else 0}
        if self.hello.model_hash == want and (not in_slot or self.hello.slot_data_hash == data_hash):
            return want, in_slot
        if len(model) > self.hello.model_slot_bytes:
            raise JobUnsupported(f"board {self.board.name}: the model image is {len(model)} bytes, its model slot "
                                 f"holds {self.hello.model_slot_bytes}")
        blob = model + section if in_slot else model
        self._flash(model_image.cached(blob, self.cache_dir))
        self.sent["model"] += len(model)
        self.sent["data"] += len(blob) - len(model)
        if self.hello.model_hash != want or (in_slot and self.hello.slot_data_hash != data_hash):
            raise TargetError(f"board {self.board.name} does not report the model{' and data' if in_slot else ''} "
                              f"just flashed")
        return want, in_slot

    def _load(self, data: DataSet, with_inputs: bool) -> bool:
        """The data set in the board's RAM (skipped when it is there); False when it does not fit."""
        blob = data.blob(with_inputs)
        digest = hashlib.sha256(blob).digest()
        if self.hello.data_hash == digest:
            return True
        if digest in self.too_big:
            return False
        # DATA_BEGIN drops the set the board held, whether or not the new one fits.
        self.hello = dataclasses.replace(self.hello, data_hash=bytes(32))
        status, needed, free = struct.unpack_from("<BII", self.link.request(msg.DATA_BEGIN, msg.data_begin(
            digest, len(data.y["ft"]), len(data.y["test"]), data.d, with_inputs)))
        if status == 1:
            self.too_big.add(digest)
            return False
        step = DATA_CHUNK_BYTES
        for offset in range(0, len(blob), step):
            answer = self.link.request(msg.DATA_CHUNK, struct.pack("<I", offset) + blob[offset:offset + step])
            if answer[0] != 0:
                raise TargetError(f"board {self.board.name} refused data at offset {offset} (status {answer[0]})")
        if self.link.request(msg.DATA_END, struct.pack("<I", zlib.crc32(blob)))[0] != 0:
            raise TargetError(f"board {self.board.name}: the data set arrived damaged (CRC mismatch); try again")
        self.sent["data"] += len(blob)
        self.hello = dataclasses.replace(self.hello, data_hash=digest)
        return True

    def _load_or_refuse(self, data: DataSet):
        if not self._load(data, with_inputs=False):
            n = len(data.y["ft"]) + len(data.y["test"])
            raise JobUnsupported(f"board {self.board.name}: even the {n} labels do not fit its RAM")

    @staticmethod
    def _ram_hash(data: DataSet, stream: bool) -> bytes:
        """The name of the set in RAM: inputs and labels, or labels only when the inputs stream."""
        return hashlib.sha256(data.blob(not stream)).digest()

    def _start(self, job, stream, model_hash, data_hash) -> tuple:
        # A fresh token per attempt: every frame of this job carries it, and no other is taken.
        self.link.begin_job(secrets.randbits(32) | 1)
        self.windows_before = self.cycles.state()["windows"] if self.cycles else None
        answer = self.link.request(msg.RUN, msg.run(job, stream, model_hash, data_hash), accept_device_request=True)
        # No answer but a request from the board: it started, and its RUN answer was lost.
        try:
            answer = (0, 0, 0, "") if answer is None else msg.run_answer(answer)
        except struct.error as e:
            raise ProtocolError(f"board {self.board.name} answered RUN with a malformed frame: {e}") from None
        if answer[0] != 0:
            self.link.begin_job(0)  # refused: the board is idle again, outside any job
        return answer

    def _serve(self, job, data, stream, in_slot, what):
        epochs, result, streamed = [], {}, [0]
        dropped = self.link.counters["dropped"]

        def handle(frame):
            try:
                return read(frame)
            except (struct.error, IndexError, ValueError) as e:  # a whole frame of the wrong size or layout
                raise ProtocolError(f"board {self.board.name} sent a malformed frame 0x{frame.type:02x} of "
                                    f"{len(frame.payload)} bytes: {e}") from None

        def read(frame):
            if frame.type == msg.ROWS:
                request = msg.RowsRequest.parse(frame.payload)
                rows = data.rows(request.split, request)
                streamed[0] += len(rows)
                return rows, False
            if frame.type == msg.PROGRESS:
                epoch = msg.progress(frame.payload)
                if epoch[0] != len(epochs):
                    raise ProtocolError(f"board {self.board.name} reported epoch {epoch[0] + 1} where epoch "
                                        f"{len(epochs) + 1} was due")
                epochs.append(epoch)
                if self.on_progress:
                    self.on_progress(f"epoch {len(epochs)}/{job['epochs']}")
                return b"", False
            if frame.type == msg.DONE:
                result.update(msg.done(frame.payload))
                return b"", True
            raise ProtocolError(f"board {self.board.name} sent an unknown request 0x{frame.type:02x}")

        self.link.serve(handle, time.monotonic() + self.board.timeout_s, self.board.liveness_s)
        out = serial_result(job, result, epochs, self.hello, self.emulated, self.fw.elf_sha256,
                            footprint.memory(self.fw_static, self.hello, result, self.flash_bytes),
                            {"streamed": stream, "inputs_in_flash": in_slot, "streamed_bytes": streamed[0]})
        out["dropped_frames"] = self.link.counters["dropped"] - dropped
        if self.windows_before is not None:
            out["ft_cycles_est"] = self._job_cycles(out["ft_instructions"])
        return validated(out, what, job, fields=msg.RUN_FIELDS)

    def _job_cycles(self, ft_instructions: int) -> int:
        """The cycle model's estimate of the job just done: its one window since RUN, checked to
        count the job's own instructions."""
        state = self.cycles.state()
        if state["windows"] != self.windows_before + 1:
            raise ProtocolError(f"board {self.board.name}: the cycle model wrote {state['windows'] - self.windows_before} "
                                f"windows during the job, not one; restart the board "
                                f"(skip2bench lab ctl restart {self.board.name})")
        return cycle_model.checked_cycles(state["last"], ft_instructions, self.hello.ticks_per_second, self.board.name)

    def close(self):
        if self.link is not None:
            self.link.close()
            self.link = None
