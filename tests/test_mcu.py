"""MCU boards: the real firmware on QEMU Cortex-M4F boards, driven over the serial protocol.

The lab here mirrors labs/emulated.toml on free ports: the roomy mps2-an386 reached on QEMU's
UART port (data in RAM), the small STM32F405 served through socat and ser2net with RFC 2217
(inputs streamed), and the host as a local board running the C runner, so every MCU record can be
checked against the host's record of the same job.
"""
import csv
import json
import os
import re
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from conftest import ROOT, cut_task, require_tool, serving_lab
from harness.lab.standins import free_port

EXPERIMENT = """
name = "mcu"
tasks = ["small"]
methods = {methods}
seeds = [0]
impls = ["c"]
boards = {boards}
{top}
[task.small]
kind = "npz"
path = "{data}"
[model]
hidden = {hidden}
[pretrain]
epochs = 3
[finetune]
epochs = 2
batch_size = {batch}
{finetune}
"""


@pytest.fixture(scope="module")
def wide_task(tmp_path_factory):
    """All 512 bins, few samples: 128 kB of inputs, more than the small board has left beside the arena."""
    return cut_task(tmp_path_factory.mktemp("wide") / "wide.npz", 512, {"pre": 400, "ft": 40, "test": 24})


@pytest.fixture(scope="module")
def cached_task(tmp_path_factory):
    """64 bins and 300 fine-tuning samples: enough rows that a cache of them all is a large block."""
    return cut_task(tmp_path_factory.mktemp("cached") / "cached.npz", 64, {"pre": 400, "ft": 300, "test": 60})


@pytest.fixture(scope="module")
def small_task(tmp_path_factory):
    """The synthetic task cut to its first 64 spectrum bins and fewer samples: an emulated UART
    carries some 50 kB/s, so MCU tests keep their data small (full-size runs are benchmarks)."""
    return cut_task(tmp_path_factory.mktemp("small") / "small.npz", 64, {"pre": 400, "ft": 80, "test": 60})


def lab_text(state: Path, an386: int, stm32: int, stm32_qemu: int, host_root: Path) -> str:
    return f"""name = "mcu-test"
standin_dir = "{state}"

[[boards]]
name = "mcu-an386"
transport = "serial"
tags = ["mcu"]
port = "socket://127.0.0.1:{an386}"
firmware = "mps2-an386"
[boards.standin]
machine = "mps2-an386"

[[boards]]
name = "mcu-stm32f405"
transport = "serial"
tags = ["mcu"]
port = "rfc2217://127.0.0.1:{stm32}?ign_set_control"
firmware = "stm32f405"
layout = "qemu"
[boards.standin]
machine = "netduinoplus2"
qemu_port = {stm32_qemu}

[[boards]]
name = "host"
transport = "local"
impls = ["c"]
work_root = "{host_root}"
"""


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def lab(tmp_path_factory, cache):
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc", "socat", "ser2net"):
        require_tool(tool)
    root = tmp_path_factory.mktemp("mcu-lab")
    path = root / "lab.toml"
    path.write_text(lab_text(root / "state", free_port(), free_port(), free_port(), root / "host"))
    with serving_lab(path, dict(os.environ, SKIP2BENCH_CACHE=str(cache))):
        yield path


def skip2bench(*args, cache, check=True):
    env = dict(os.environ, SKIP2BENCH_CACHE=str(cache), COLUMNS="250")
    proc = subprocess.run([sys.executable, "-m", "harness", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=900)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def experiment(tmp_path, data, methods, boards=(), hidden=(16, 12), batch=20, finetune="", top="") -> Path:
    """An experiment file; `top` is added to its top-level keys, `finetune` to its [finetune] table."""
    path = tmp_path / "exp.toml"
    path.write_text(EXPERIMENT.format(methods=json.dumps(list(methods)), boards=json.dumps(list(boards)),
                                      hidden=json.dumps(list(hidden)), data=data, batch=batch, finetune=finetune,
                                      top=top))
    return path


def records(out: Path) -> list:
    return [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]


def test_mcu_boards_train_exactly_as_the_host(lab, cache, tmp_path, small_task):
    out = tmp_path / "run"
    methods = ["ft-all", "lora-all", "skip-lora", "skip2-lora", "far", "far-random", "bsr", "oselm-head"]
    proc = skip2bench("run", "-e", experiment(tmp_path, small_task, methods), "-l", lab, "-o", out, "--no-report",
                      cache=cache)
    recs = records(out)
    assert len(recs) == 3 * len(methods), proc.stdout
    host = {r["job_id"]: r for r in recs if r["board"] == "host"}
    for r in recs:
        if r["board"] == "host":
            continue
        if r["status"] == "unsupported":  # only the small board may lack the RAM for a job's arena
            assert r["board"] == "mcu-stm32f405" and "KB in sram for its arena, the board's sram has" in r["reason"]
            continue
        assert r["status"] == "ok", r
        ref = host[r["job_id"]]
        # The same core with its own expf/logf: bit-identical losses, not only the same accuracy.
        for key in ("acc_before", "acc_after", "ft_macs", "trainable_params", "cache_hits", "n_test", "epoch_loss"):
            assert r[key] == ref[key], (r["board"], r["variant"], key)
        assert r["time_kind"] == "emulated" and r["ft_instructions"] > 0
        assert r["ft_instructions"] >= r["fwd_instructions"] + r["bwd_instructions"] + r["upd_instructions"]
        assert abs(r["ft_time_s"] - r["ft_instructions"] / r["runtime"]["clock_hz"]) < 1e-9
        assert r["ft_cycles_est"] >= r["ft_instructions"]  # the cycle model's window: each takes a cycle or more
        assert len(r["epoch_loss"]) == (1 if r["method"] == "oselm-head" else 2)  # one pass, or two epochs
        assert len(r["runner_sha256"]) == 64
        # Memory measured: the ELF's static data, the painted stack's high-water, and where the
        # firmware placed the data set and the arena, each within its region.
        mem = r["mcu_memory"]
        assert mem["flash"]["firmware"] > 10_000 and mem["flash"]["model"] > 0
        assert sum(reg["arena"] + reg["store"] for reg in mem["ram"].values()) >= r["runtime"]["arena_bytes"] > 0
        assert 0 < mem["ram"]["sram"]["stack"] <= 8192 and mem["ram"]["sram"]["static"] > 0
        assert all(reg["used"] <= reg["size"] for reg in mem["ram"].values())
    streamed = {(r["board"], r["variant"]): r["runtime"]["streamed"] for r in recs if r["status"] == "ok"
                and r["board"] != "host"}
    assert set(streamed.values()) == {False}  # the small set fits in RAM beside every arena
    # The STM32F405 reads its model from flash with wait states; the mps2-an386 from SSRAM without.
    cpi = {(r["board"], r["job_id"]): r["ft_cycles_est"] / r["ft_instructions"] for r in recs
           if r["status"] == "ok" and r["board"] != "host"}
    both = [job for board, job in cpi if board == "mcu-stm32f405" and ("mcu-an386", job) in cpi]
    assert both and all(cpi["mcu-stm32f405", job] > cpi["mcu-an386", job] for job in both), cpi
    assert sum(r["status"] == "ok" for r in recs if r["board"] == "mcu-stm32f405") >= 3
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["boards"]["mcu-stm32f405"]["facts"]["ram"] == {"sram": 131072, "ccm": 65536}
    assert "flash" not in proc.stderr


def test_the_lab_says_which_boards_run_the_cycle_model(lab):
    from harness.config import load_lab
    from harness.lab import serve
    boards = serve.ask(load_lab(lab), "status")["boards"]
    assert {name: b["note"] for name, b in boards.items()} == {"mcu-an386": "cycle model on",
                                                               "mcu-stm32f405": "cycle model on"}


def test_compact_formats_train_exactly_as_the_host(lab, cache, tmp_path, small_task):
    """int8 caches and int8 inputs read from the model slot, bit-identical with the host's C runner;
    one method keeps float32 inputs, which go to RAM between the other jobs (in a seeded order)."""
    out = tmp_path / "run"
    row_bytes = (16 + 12 + 2) + 4 * 3  # skip2-lora's int8 row: x1, x2, z0 and their scales
    finetune = f"""input_format = "int8"
[finetune.method.lora-all]
input_format = "f32"
[finetune.method."skip2-lora+cache-int8"]
cache_budget_bytes = {30 * row_bytes}
"""
    methods = ["ft-last+cache-int8", "lora-all", "skip2-lora+cache-int8", "bsr+cache-int8", "oselm-head+cache-int8"]
    skip2bench("run", "-e", experiment(tmp_path, small_task, methods, finetune=finetune), "-l", lab, "-o", out,
               "--no-report", cache=cache)
    recs = records(out)
    assert len(recs) == 3 * len(methods) and all(r["status"] == "ok" for r in recs), recs
    host = {r["job_id"]: r for r in recs if r["board"] == "host"}
    for r in recs:
        ref = host[r["job_id"]]
        assert r["cache_format"] == ("f32" if r["method"] == "lora-all" else "int8")
        for key in ("acc_before", "acc_after", "ft_macs", "epoch_loss", "cache_capacity_samples", "cache_hits",
                    "mem_cache_bytes", "input_format"):
            assert r[key] == ref[key], (r["board"], r["variant"], key)
        if r["board"] == "host":
            continue
        mem, in_flash = r["mcu_memory"], r["input_format"] == "int8"
        assert r["runtime"]["inputs_in_flash"] is in_flash and r["runtime"]["streamed"] is False
        # The int8 set follows the model in flash: a 64-byte header, then per sample a label, a
        # scale and 64 int8 inputs; the float set of lora-all sits in RAM.
        assert mem["flash"]["data"] == (64 + (80 + 60) * (4 + 4 + 64) if in_flash else 0)
        assert (sum(reg["data"] for reg in mem["ram"].values()) == 0) is in_flash
    skip2 = [r for r in recs if r["variant"] == "skip2-lora+cache-int8"]
    assert {r["cache_capacity_samples"] for r in skip2} == {30} and {r["mem_cache_bytes"] for r in skip2} == {30 * row_bytes}


def test_a_cache_store_apart_from_the_arena_trains_exactly_as_the_host(lab, cache, tmp_path, cached_task):
    """A job too big for any one region of the small board (126 KB; sram has some 107 KB free)
    runs with its int8 cache of every sample (78 KB) in sram and the rest of its arena in the ccm,
    bit-identical with the host's C runner, which keeps both in one arena."""
    out = tmp_path / "run"
    exp = experiment(tmp_path, cached_task, ["skip2-lora+cache-int8"], boards=["mcu-stm32f405", "host"],
                     hidden=(128, 126), batch=10, finetune='input_format = "int8"')
    skip2bench("run", "-e", exp, "-l", lab, "-o", out, "--no-report", cache=cache)
    small, host = ({r["board"]: r for r in records(out)}[b] for b in ("mcu-stm32f405", "host"))
    assert small["status"] == "ok", small
    for key in ("acc_before", "acc_after", "ft_macs", "epoch_loss", "cache_capacity_samples", "cache_hits",
                "mem_cache_bytes"):
        assert small[key] == host[key], key
    assert small["cache_capacity_samples"] == 300 and small["mem_cache_bytes"] == 300 * (128 + 126 + 2 + 4 * 3)
    ram = small["mcu_memory"]["ram"]
    assert ram["sram"]["store"] >= small["mem_cache_bytes"] and ram["sram"]["arena"] == 0
    assert ram["ccm"]["arena"] > 0 and ram["ccm"]["store"] == 0
    assert ram["sram"]["store"] + ram["ccm"]["arena"] > 110 * 1024  # together they fit neither region
    assert all(reg["used"] <= reg["size"] for reg in ram.values())


def test_a_job_that_does_not_fit_is_unsupported(lab, cache, tmp_path, small_task):
    out = tmp_path / "run"
    exp = experiment(tmp_path, small_task, ["ft-all", "skip2-lora"], boards=["mcu"], hidden=(300, 200),
                     top='probes = ["products"]')
    skip2bench("run", "-e", exp, "-l", lab, "-o", out, "--no-report", cache=cache)
    by_board = {(r["board"], r["method"]): r for r in records(out) if r["record_type"] == "job"}
    assert {board for board, _ in by_board} == {"mcu-an386", "mcu-stm32f405"}  # the host is not an "mcu"
    assert all(by_board["mcu-an386", m]["status"] == "ok" for m in ("ft-all", "skip2-lora"))
    assert all(by_board["mcu-stm32f405", m]["status"] == "unsupported" for m in ("ft-all", "skip2-lora"))
    assert re.search(r"the job needs \d+ KB in sram for its arena, the board's sram has \d+ KB free \(of 128 KB\)$",
                     by_board["mcu-stm32f405", "ft-all"]["reason"])
    # skip2-lora's float32 cache (157 KB) does not fit beside its arena, nor in a region of its own.
    assert re.search(r"the job needs \d+ KB in ccm for its arena and 157 KB in sram for its cache store, the board's "
                     r"ccm has \d+ KB free \(of 64 KB\) and its sram \d+ KB \(of 128 KB\)$",
                     by_board["mcu-stm32f405", "skip2-lora"]["reason"])
    # The board still answers: the refusal did not crash it.
    assert "mcu-stm32f405" in skip2bench("lab", "check", "--lab", lab, cache=cache).stdout
    # The report's fit table: what fit where, with measured memory, and the refusal's reason.
    skip2bench("report", out, cache=cache)
    fit = (out / "report" / "fit.md").read_text()
    assert "mcu-an386" in fit and "mcu-stm32f405" in fit and "KB in sram for its arena" in fit
    # MACs per instruction, phase by phase, of what ran (the phases' MACs add up to ft_macs).
    phases = {r["method"]: r for r in csv.DictReader((out / "report" / "phases.csv").open())}
    assert set(phases) == {"ft-all", "skip2-lora"}
    assert all(0 < float(phases[m][f"{p} MAC/instr"]) < 2 for m in phases for p in ("fwd", "bwd", "upd"))
    assert int(phases["skip2-lora"]["fwd MACs"]) + int(phases["skip2-lora"]["bwd MACs"]) \
        + int(phases["skip2-lora"]["upd MACs"]) == by_board["mcu-an386", "skip2-lora"]["ft_macs"]
    # The products probe: every product of a step timed alone on each board where its operands fit,
    # with the same result bits on both boards; the small board says what those that do not fit need.
    probe = {r["board"]: r for r in records(out) if r["record_type"] == "probe"}
    assert {b: r["status"] for b, r in probe.items()} == {"mcu-an386": "ok", "mcu-stm32f405": "ok"}
    shapes = probe["mcu-an386"]["workload"]["products"]
    big, small = probe["mcu-an386"]["values"], probe["mcu-stm32f405"]["values"]
    assert all(f"instructions {p['name']}" in big for p in shapes)
    fit = [p["name"] for p in shapes if f"instructions {p['name']}" in small]
    assert 0 < len(fit) < len(shapes)
    assert all(f"bytes {p['name']}" in small for p in shapes if p["name"] not in fit)
    assert all(small[f"bits {name}"] == big[f"bits {name}"] for name in fit)
    table = {(r["board"], r["product"]): r for r in csv.DictReader((out / "report" / "products.csv").open())}
    assert {"all dense", "all rank", "all adapter", "all skip"} <= {p for _, p in table}
    assert all(0 < float(r["MAC/instr"]) < 2 for r in table.values() if r["MAC/instr"])
    x0 = shapes[0]["name"]
    assert x0.endswith("/dense:x0.W0") and int(table["mcu-an386", x0]["MACs"]) == 20 * 64 * 300
    assert int(table["mcu-an386", x0]["instructions"]) == big[f"instructions {x0}"]


def test_a_partial_cache_budget_that_fits_runs_and_reports_its_hit_rate(lab, cache, tmp_path, small_task):
    out = tmp_path / "run"
    exp = experiment(tmp_path, small_task, ["skip2-lora"], boards=["mcu-stm32f405", "host"])
    row_bytes = 4 * (16 + 12 + 2)  # a cached row: x1, x2 and the frozen logits
    exp.write_text(exp.read_text().replace("batch_size = 20", f"batch_size = 20\ncache_budget_bytes = {30 * row_bytes}"))
    skip2bench("run", "-e", exp, "-l", lab, "-o", out, "--no-report", cache=cache)
    small, host = ({r["board"]: r for r in records(out)}[b] for b in ("mcu-stm32f405", "host"))
    assert small["status"] == "ok" and small["cache_capacity_samples"] == 30
    assert 0 < small["cache_hit_rate"] < 1 and small["cache_hit_rate"] == host["cache_hit_rate"]
    assert small["acc_after"] == host["acc_after"]


def test_inputs_that_do_not_fit_are_streamed_and_counted_apart(lab, cache, tmp_path, wide_task):
    out = tmp_path / "run"
    # A batch of 8 keeps the 512-wide batch buffers within the small board's 111 kB of free SRAM.
    exp = experiment(tmp_path, wide_task, ["skip2-lora"], boards=["mcu-stm32f405", "host"], batch=8)
    skip2bench("run", "-e", exp, "-l", lab, "-o", out, "--no-report", cache=cache)
    again = tmp_path / "again"
    skip2bench("run", "-e", exp, "-l", lab, "-o", again, "--no-report", cache=cache)
    first, second = ({r["board"]: r for r in records(d)} for d in (out, again))
    small, host = first["mcu-stm32f405"], first["host"]
    assert small["status"] == "ok" and small["runtime"]["streamed"] is True
    assert small["acc_after"] == host["acc_after"] and small["epoch_loss"] == host["epoch_loss"]
    assert small["transfer_time_s"] > 0
    # Transfers are kept out of the counted work: the same job counts the same instructions.
    for key in ("ft_instructions", "fwd_instructions", "bwd_instructions", "upd_instructions", "cache_instructions"):
        assert second["mcu-stm32f405"][key] == small[key], key


# -- the protocol at frame level, against the firmware ---------------------------------------------
@pytest.fixture
def link(lab):
    from harness.config import load_lab
    from harness.transports.serial_link import SerialLink
    board = next(b for b in load_lab(lab).boards if b.name == "mcu-an386")
    opened = SerialLink(board.port, timeout_s=0.3, tries=5)
    yield opened
    opened.close()


def hello(link, protocol=None):
    from harness.mcu import messages
    from harness.transports.serial_link import PROTOCOL
    return link.request(messages.HELLO, struct.pack("<HI", protocol or PROTOCOL, link.session))


def status(link) -> dict:
    from harness.mcu import messages
    values = struct.unpack_from("<5IB", link.request(messages.STATUS))
    return dict(zip(("frames_ok", "bad_crc", "bad_frames", "retransmissions", "duplicates", "state"), values))


def test_the_firmware_times_a_product_and_says_when_one_does_not_fit_or_is_no_shape(link):
    from harness.mcu import messages
    hello(link)
    timed = messages.ProductAnswer.parse(link.request(messages.PRODUCT, messages.product(1, 2, 4, 20, 96)))
    assert timed.status == 0 and timed.macs == 4 * 20 * 96 and timed.ticks > 0
    huge = messages.ProductAnswer.parse(link.request(messages.PRODUCT, messages.product(0, 0, 4000, 4000, 4000)))
    assert huge.status == 1 and huge.needed > huge.available and huge.macs == 0
    nn_with_b_scattered = messages.ProductAnswer.parse(link.request(messages.PRODUCT, messages.product(0, 2, 4, 4, 4)))
    assert nn_with_b_scattered.status == 2


@pytest.mark.parametrize("answer, words", [
    (struct.pack("<BQIQQI", 0, 64, 4096, 63, 10, 7), "counted 63 MACs for a 4x4x4 product, not 64"),
    (struct.pack("<BQIQQI", 2, 0, 0, 0, 0, 0), "refused the product (0, 0, 4, 4, 4): invalid shape"),
    (struct.pack("<BQIQ", 0, 64, 4096, 64), "answered PRODUCT with a malformed frame of 21 bytes"),
], ids=["wrong MACs", "invalid shape", "short frame"])
def test_a_product_answer_that_is_not_its_request_s_is_an_error(tmp_path, answer, words):
    """Answers the real firmware does not give on demand, injected by a stand-in link: each ends the
    probe as an error naming what is wrong, never as values."""
    from types import SimpleNamespace
    from harness.errors import TargetError
    from harness.targets.mcu import SerialTarget
    target = SerialTarget(SimpleNamespace(name="fake", standin=None), "run", tmp_path, flasher=None)
    target.link = SimpleNamespace(request=lambda *_: answer, close=lambda: None)
    with pytest.raises(TargetError, match=re.escape(words)):
        target.time_products([(0, 0, 4, 4, 4)])
    assert target.link is None  # reached afresh next time


def test_a_corrupted_frame_is_dropped_and_its_retransmission_answered(link):
    from harness.mcu import messages
    from harness.transports.serial_link import encode
    hello(link)
    before = status(link)
    wire = bytearray(encode(messages.STATUS, 4242, b"", session=link.session))
    wire[3] ^= 0x10  # one flipped bit: the CRC no longer matches
    link.send_raw(bytes(wire))
    assert link.receive(time.monotonic() + 0.5) is None  # no answer to a damaged frame
    after = status(link)
    assert after["bad_crc"] + after["bad_frames"] == before["bad_crc"] + before["bad_frames"] + 1


def test_a_dropped_frame_is_sent_again(link):
    from harness.mcu import messages
    hello(link)
    real, dropped = link.send_raw, []

    def lose_first(data):
        if not dropped:
            dropped.append(data)  # the first copy never reaches the board
            return
        real(data)

    link.send_raw = lose_first
    assert len(link.request(messages.STATUS)) >= 21
    assert dropped and link.counters["retransmissions"] == 1


def test_a_duplicated_request_is_answered_twice_and_done_once(link):
    from harness.mcu import messages
    from harness.transports.serial_link import encode
    hello(link)
    before = status(link)["duplicates"]
    blob = bytes(range(256)) * 4
    digest = __import__("hashlib").sha256(blob).digest()
    begin = link.request(messages.DATA_BEGIN, messages.data_begin(digest, 128, 128, 1, False))
    assert begin[0] == 0
    link.seq = (link.seq + 1) & 0xFFFF
    chunk = encode(messages.DATA_CHUNK, link.seq, struct.pack("<I", 0) + blob, session=link.session)
    link.send_raw(chunk)
    link.send_raw(chunk)  # the same frame twice, as a line that repeats bytes would deliver it
    answers = [link.receive(time.monotonic() + 1.0) for _ in range(2)]
    assert all(a is not None and a.seq == link.seq and a.payload[0] == 0 for a in answers)
    assert link.request(messages.DATA_END, struct.pack("<I", zlib.crc32(blob)))[0] == 0
    assert status(link)["duplicates"] == before + 1


def test_a_late_response_is_ignored(link):
    from harness.mcu import messages
    from harness.transports.serial_link import encode
    hello(link)
    # A stale response to an old request arrives first; the host must wait for its own.
    link._buffer += encode(messages.STATUS, (link.seq - 7) & 0xFFFF, b"\xff" * 21, response=True,
                           session=link.session)
    assert status(link)["state"] == 0


def test_a_version_mismatch_names_both_versions(link):
    from harness.targets.mcu import check_hello
    from harness.transports.serial_link import PROTOCOL, ProtocolError
    answer = hello(link, protocol=PROTOCOL + 98)  # a host from the future
    with pytest.raises(ProtocolError) as err:
        check_hello(answer, "mcu-an386", ours=PROTOCOL + 98)
    assert f"speaks serial protocol {PROTOCOL}, this skip2bench speaks {PROTOCOL + 98}" in str(err.value)


def test_a_late_copy_of_an_older_request_is_not_executed_again(link):
    from harness.mcu import messages
    from harness.transports.serial_link import encode
    hello(link)
    before = status(link)["duplicates"]
    link.send_raw(encode(messages.STATUS, (link.seq - 3) & 0xFFFF, b"", session=link.session))  # behind: stale
    assert link.receive(time.monotonic() + 0.5) is None
    assert status(link)["duplicates"] == before + 1


# -- a noisy line: a byte-level fault proxy between the host and the board --------------------------
INJECTED = {}  # faults injected by every test below, by kind: the suite's total is checked last


def board_port(lab, name) -> int:
    from harness.config import load_lab
    return int(next(b for b in load_lab(lab).boards if b.name == name).port.rsplit(":", 1)[1])


@pytest.fixture
def proxy_for(lab):
    from harness.lab.faults import FaultProxy
    started = []

    def start(seed, rates):
        proxy = FaultProxy(board_port(lab, "mcu-an386"), seed, rates).start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()
        for kind, n in proxy.injected.items():
            INJECTED[kind] = INJECTED.get(kind, 0) + n


def lab_through(lab, tmp_path, proxy) -> Path:
    """The test lab with mcu-an386 reached through the proxy (the same stand-in flashes it)."""
    text = lab.read_text().replace(f"socket://127.0.0.1:{board_port(lab, 'mcu-an386')}",
                                   f"socket://127.0.0.1:{proxy.port}")
    # A noisy line's board is given more patience, as a user would give it.
    text = text.replace('firmware = "mps2-an386"', 'firmware = "mps2-an386"\nlink_tries = 50\nlink_timeout_s = 0.2')
    path = tmp_path / "noisy-lab.toml"
    path.write_text(text)
    return path


def forget_data_set(lab):
    """Load another (tiny) data set over a clean line, so the board holds none of the jobs'."""
    from harness.mcu import messages
    from harness.transports.serial_link import SerialLink
    link = SerialLink(f"socket://127.0.0.1:{board_port(lab, 'mcu-an386')}")
    try:
        hello(link)
        blob = b"\0" * 8
        link.request(messages.DATA_BEGIN, messages.data_begin(__import__("hashlib").sha256(blob).digest(), 1, 1, 1, False))
        link.request(messages.DATA_CHUNK, struct.pack("<I", 0) + blob)
        assert link.request(messages.DATA_END, struct.pack("<I", zlib.crc32(blob)))[0] == 0
    finally:
        link.close()


@pytest.fixture(scope="module")
def clean(lab, cache, tmp_path_factory, small_task):
    """The reference: the fault tests' jobs on a clean line."""
    root = tmp_path_factory.mktemp("clean")
    skip2bench("run", "-e", experiment(root, small_task, ["lora-all", "skip2-lora"], boards=["mcu-an386"]),
               "-l", lab, "-o", root / "run", "--no-report", cache=cache)
    return {r["job_id"]: r for r in records(root / "run")}


def test_the_link_survives_a_storm_of_byte_faults(lab, proxy_for):
    from harness.lab.faults import Rates
    from harness.mcu import messages
    from harness.transports.serial_link import SerialLink
    proxy = proxy_for(1, Rates(flip=0.004, drop=0.004, dup=0.004, delay=0.001, delay_s=0.02))
    link = SerialLink(f"socket://127.0.0.1:{proxy.port}", timeout_s=0.06, tries=100)
    try:
        hello(link)
        counters = [status(link) for _ in range(300)]
        # Every answer that arrived is whole: the board's counters only ever grow.
        for before, after in zip(counters, counters[1:]):
            assert all(after[k] >= before[k] for k in ("frames_ok", "bad_crc", "bad_frames", "duplicates"))
        blob = bytes(range(256)) * 8
        digest = __import__("hashlib").sha256(blob).digest()
        assert link.request(messages.DATA_BEGIN, messages.data_begin(digest, 256, 256, 1, False))[0] == 0
        for offset in range(0, len(blob), 64):  # small frames: at this noise most larger ones break
            assert link.request(messages.DATA_CHUNK, struct.pack("<I", offset) + blob[offset:offset + 64])[0] == 0
        # The board's CRC over what it stored: every chunk arrived exactly once, unchanged.
        assert link.request(messages.DATA_END, struct.pack("<I", zlib.crc32(blob)))[0] == 0
    finally:
        link.close()
    print(f"storm: {dict(proxy.injected)}, host retransmissions {link.counters['retransmissions']}")
    assert sum(proxy.injected.values()) > 200 and link.counters["retransmissions"] > 20, proxy.injected


@pytest.mark.parametrize("seed", [11, 12, 13, 14])
def test_jobs_on_a_noisy_line_are_exact_or_errors(lab, cache, tmp_path, small_task, proxy_for, clean, seed):
    from harness.lab.faults import Rates
    forget_data_set(lab)  # so the data set crosses the noisy line too
    proxy = proxy_for(seed, Rates(flip=4e-4, drop=4e-4, dup=4e-4, delay=1e-4, delay_s=0.05))
    out = tmp_path / "run"
    exp = experiment(tmp_path, small_task, ["lora-all", "skip2-lora"], boards=["mcu-an386"])
    skip2bench("run", "-e", exp, "-l", lab_through(lab, tmp_path, proxy), "-o", out, "--no-report", cache=cache,
               check=False)
    recs = records(out)  # every record written is whole and valid (the log reads through the schema)
    print(f"seed {seed}: {dict(proxy.injected)}; {[r['status'] for r in recs]}")
    assert len(recs) == 2 and sum(proxy.injected.values()) > 0
    for r in recs:
        assert r["status"] in ("ok", "error"), r
        if r["status"] == "ok":  # zero wrong results: an ok record is the clean line's, number for number
            ref = clean[r["job_id"]]
            for key in ("acc_before", "acc_after", "ft_macs", "epoch_loss", "cache_hits"):
                assert r[key] == ref[key], key
            # A stray byte of the noise (a duplicate, a late byte) that lands mid-job runs the
            # UART interrupt inside the counted work: a few SysTick ticks at most, never more.
            assert abs(r["ft_instructions"] - ref["ft_instructions"]) <= 1e-3 * ref["ft_instructions"]
            # ... and the record says so: a count that moved had bytes arrive during it.
            assert r["ft_instructions"] == ref["ft_instructions"] or r["link_bytes_during_compute"] > 0


def test_a_line_cut_mid_job_ends_it_as_an_error_and_resume_completes_it(lab, cache, tmp_path, small_task,
                                                                        proxy_for, clean):
    from harness.lab.faults import Rates
    # The first connection dies 20 kB into the first job's data set (36 kB); the second job and
    # the resumed first run on new connections.
    forget_data_set(lab)
    proxy = proxy_for(21, Rates(cut_after=20_000))
    out = tmp_path / "run"
    exp = experiment(tmp_path, small_task, ["lora-all", "skip2-lora"], boards=["mcu-an386"])
    noisy = lab_through(lab, tmp_path, proxy)
    first = skip2bench("run", "-e", exp, "-l", noisy, "-o", out, "--no-report", cache=cache, check=False)
    assert proxy.injected["cut"] == 1 and first.returncode == 1
    assert any(r["status"] == "error" for r in records(out))
    skip2bench("run", "-e", exp, "-l", noisy, "-o", out, "--resume", "--no-report", cache=cache)
    final = {r["job_id"]: r for r in records(out)}
    for job, r in final.items():
        assert r["status"] == "ok" and r["acc_after"] == clean[job]["acc_after"]
        assert r["ft_instructions"] == clean[job]["ft_instructions"]


def test_the_suite_injected_at_least_a_thousand_faults():
    total = sum(INJECTED.values())
    print(f"faults injected over the MCU tests: {total} ({INJECTED})")
    assert total >= 1000


def test_mcu_speed_times_each_product_alike_under_semihosting_and_through_the_firmware(cache, tmp_path):
    """mcu-speed's product bench (semihosting, to compare revisions' cores) and its jobs' products
    probe (PRODUCT, through the firmware) run the same code on the same shapes: the same result
    bits, and instruction counts within the few that interrupts add."""
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc"):
        require_tool(tool)
    out = tmp_path / "speed"
    printed = skip2bench("mcu-speed", "--samples", 10, "--epochs", 1, "--out", out, cache=cache).stdout
    bench = {}
    for line in printed.splitlines():
        cells = line.split(" | ")
        if len(cells) == 4 and ":" in cells[0] and not cells[0].startswith("all "):
            bench[cells[0]] = (int(cells[1]), float(cells[2]), cells[3])
    probe = next(r for r in records(out / "jobs-now") if r["record_type"] == "probe")
    assert probe["probe"] == "products" and probe["status"] == "ok"
    names = [p["name"] for p in probe["workload"]["products"]]
    assert [name.split("/", 1)[1] for name in names] == list(bench)
    for name in names:
        macs, per_instr, bits = bench[name.split("/", 1)[1]]
        assert f"{int(probe['values'][f'bits {name}']):08x}" == bits, name
        # The bench's ratio has three digits; a timer interrupt costs some 40 instructions.
        assert macs / per_instr == pytest.approx(probe["values"][f"instructions {name}"], rel=0.003, abs=200), name
    assert (out / "jobs-now" / "report" / "products.md").is_file()
