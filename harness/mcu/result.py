"""An MCU job's result as every runner reports it (docs/runner-contract.md), from the firmware's
DONE and PROGRESS frames (docs/serial-protocol.md) and what the host knows of the board."""
import numpy as np

from harness.mcu import messages as msg
from harness.methods import FAILURES


def instructions(ticks: int, ticks_per_second: int) -> int:
    """Instructions of `ticks` of an emulated board: -icount shift=0 runs one instruction per
    nanosecond of virtual time, which the timer counts."""
    return round(ticks * 1e9 / ticks_per_second)


def serial_result(job: dict, r: dict, epochs: list, h, emulated: bool, firmware_sha256: str, mcu_memory: dict,
                  placement: dict) -> dict:
    """`r`: DONE's fields; `epochs`: PROGRESS's (epoch, ticks, loss); `h`: the board's HELLO;
    `placement`: where the inputs were (streamed, inputs_in_flash) and the bytes streamed."""
    if emulated:
        counts = {k: instructions(t, h.ticks_per_second) for k, t in [("ft", r["ft_ticks"]), *r["phase_ticks"].items()]}
        seconds = {k: v / h.clock_hz for k, v in counts.items()}
        epoch_s = [t * 1e9 / h.ticks_per_second / h.clock_hz for _, t, _ in epochs]
    else:
        counts = {}
        seconds = {"ft": r["ft_ticks"] / h.ticks_per_second,
                   **{k: t / h.ticks_per_second for k, t in r["phase_ticks"].items()}}
        epoch_s = [t / h.ticks_per_second for _, t, _ in epochs]
    lookups = r["cache_hits"] + r["cache_misses"]
    diverged = bool(r["diverged"])
    return {
        "impl": "c", "method": job["method"],
        "status": "fail" if diverged else "ok",
        "reason": FAILURES[r["diverged"]].format(epoch=r["epochs_run"]) if diverged else None,
        "acc_before": r["correct_before"] / r["n_test"],
        "acc_after": None if diverged else r["correct_after"] / r["n_test"],
        "ft_time_s": seconds["ft"], **{f"{k}_time_s": seconds[k] for k in msg.PHASES},
        "epoch_times_s": epoch_s,
        "epoch_loss": [loss if np.isfinite(loss) else None for _, _, loss in epochs],
        "n_ft": r["n_ft"], "n_test": r["n_test"], "ft_macs": r["ft_macs"],
        "trainable_params": r["trainable_params"], "cache_capacity_samples": r["cache_capacity"],
        "cache_hits": r["cache_hits"], "cache_misses": r["cache_misses"],
        "cache_hit_rate": r["cache_hits"] / lookups if lookups and r["cache_capacity"] else None,
        "mem": r["mem"], "peak_rss_bytes": None,
        "runtime": {"board": h.board, "firmware_version": h.firmware_version, "protocol": h.protocol,
                    "clock_hz": h.clock_hz, "arena_bytes": r["arena_bytes"], "streamed": placement["streamed"],
                    "inputs_in_flash": placement["inputs_in_flash"], "machine": "cortex-m4f"},
        "runner_sha256": firmware_sha256, "attempts": 1,
        "time_kind": "emulated" if emulated else "device",
        # Waiting for and moving streamed rows, kept out of every time above (device clock).
        "transfer_time_s": r["transfer_ticks"] / h.ticks_per_second, "streamed_bytes": placement["streamed_bytes"],
        "mcu_memory": mcu_memory,
        # Bytes the board received while it counted the job's work: their interrupts are in
        # the instruction counts (0 on a quiet line).
        "link_bytes_during_compute": r["bytes_during_compute"],
        "job": r["job"],
        **{f"{k}_instructions": v for k, v in counts.items()},
    }
