"""The versioned record schema: validation on arrival and on reading, migrations, refusals."""
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from harness.errors import TargetError
from harness.records import MalformedRecords, RecordLog
from harness.schema import SCHEMA_VERSION
from harness.targets import parse_result

V1_LOG = Path(__file__).parent / "data" / "records-v1.jsonl"
V2_LOG = Path(__file__).parent / "data" / "records-v2.jsonl"
V4_LOG = Path(__file__).parent / "data" / "records-v4.jsonl"  # three records of an emulated MCU board
V5_LOG = Path(__file__).parent / "data" / "records-v5.jsonl"  # three of results/mcu-fan, before the cycle model


def v1_lines():
    return V1_LOG.read_text().splitlines()


def test_a_committed_v1_log_is_read_as_the_current_version():
    ok_numpy, ok_c, error = RecordLog(V1_LOG).read()
    assert {r["schema_version"] for r in (ok_numpy, ok_c, error)} == {SCHEMA_VERSION}
    raw_c = json.loads(v1_lines()[1])
    # v1 kept the C binary's hash inside runtime; v2 has runner_sha256 beside the results.
    assert ok_c["runner_sha256"] == raw_c["runtime"]["binary_sha256"] and "binary_sha256" not in ok_c["runtime"]
    assert ok_c["attempts"] == 1 and ok_c["time_kind"] == "device" and ok_c["board_fingerprint"] is None
    assert ok_c["acc_after"] == raw_c["acc_after"] and ok_c["ft_macs"] == raw_c["ft_macs"]
    assert error["status"] == "error" and error["acc_before"] is None and error["runner_sha256"] is None


def test_a_committed_v2_log_is_read_with_float32_storage():
    raw = [json.loads(line) for line in V2_LOG.read_text().splitlines()]
    records = RecordLog(V2_LOG).read()
    assert [r["variant"] for r in records] == [r["variant"] for r in raw]
    # Before storage formats existed every cache row and input was float32.
    for rec, old in zip(records, raw):
        assert rec["schema_version"] == SCHEMA_VERSION and old["schema_version"] == 2
        assert rec["cache_format"] == rec["input_format"] == "f32"
        assert rec["acc_after"] == old["acc_after"] and rec["mem_cache_bytes"] == old["mem_cache_bytes"]


def test_a_committed_v4_log_takes_its_board_kind_from_the_run_manifest(tmp_path):
    from harness.report.load import load_records
    raw = [json.loads(line) for line in V4_LOG.read_text().splitlines()]
    records = RecordLog(V4_LOG).read()
    assert all(r["schema_version"] == SCHEMA_VERSION and r["board_kind"] is None for r in records)
    assert all(r["record_type"] == "job" and r["sizes"] is None for r in records)  # v4 had job records only
    assert [r["ft_instructions"] for r in records] == [r["ft_instructions"] for r in raw]
    # The report names the kind from the lab the run had, so the MCU fit table still appears.
    (tmp_path / "records.jsonl").write_text(V4_LOG.read_text())
    boards = [{"name": name, "transport": "serial"} for name in {r["board"] for r in raw}]
    (tmp_path / "manifest.json").write_text(json.dumps({"lab": {"boards": boards}}))
    assert set(load_records(tmp_path)["board_kind"]) == {"serial"}


def test_a_committed_v5_log_reads_with_no_estimated_cycles():
    raw = [json.loads(line) for line in V5_LOG.read_text().splitlines()]
    records = RecordLog(V5_LOG).read()
    assert all(r["schema_version"] == SCHEMA_VERSION and r["ft_cycles_est"] is None for r in records)
    assert [r["ft_instructions"] for r in records] == [r["ft_instructions"] for r in raw] != [None] * 3
    assert [r["board_kind"] for r in records] == [r["board_kind"] for r in raw]


PROBE = {"schema_version": SCHEMA_VERSION, "record_type": "probe", "run_id": "r", "job_id": "8b5e497648b5",
         "probe": "ceiling", "impl": "c", "board": "host", "board_kind": "local", "board_fingerprint": "e2",
         "repetition": 0, "workload": {}, "status": "ok", "started_at": "2026-12-04T18:41:01+00:00", "wall_s": 2.0,
         "values": {"core": 77.5, "clock_mhz": 3664.2, "read_16384": 120.2}, "runner_sha256": "4f"}


@pytest.mark.parametrize("change, message", [
    ({}, None),
    ({"values": None}, "an ok probe record has its values"),
    ({"status": "fail"}, "a probe ends ok, unsupported or error"),
    ({"status": "error", "values": None}, "says what went wrong"),
    ({"values": {"core": -1.0}}, "values.core: Input should be greater than or equal to 0"),
    ({"acc_after": 0.5}, "acc_after: Extra inputs are not permitted"),
    ({"record_type": "sensor"}, "record_type 'sensor' is not one of job, probe"),
])
def test_a_probe_record_is_a_record_of_its_own_kind(tmp_path, change, message):
    path = tmp_path / "records.jsonl"
    path.write_text(v1_lines()[0] + "\n" + json.dumps(dict(PROBE, **change)) + "\n")
    if message is None:
        job, probe = RecordLog(path).read()
        assert job["record_type"] == "job" and probe == dict(PROBE, reason=None, error=None, stderr_tail=None)
        return
    with pytest.raises(MalformedRecords) as err:
        RecordLog(path).read()
    assert f"{path}:2: " in str(err.value) and message in str(err.value)


def test_migrate_rewrites_a_v1_log_and_keeps_every_value(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(V1_LOG, run / "records.jsonl")
    before = RecordLog(run / "records.jsonl").read()
    assert RecordLog(run / "records.jsonl").migrate() == 3
    lines = (run / "records.jsonl").read_text().splitlines()
    assert all(json.loads(line)["schema_version"] == SCHEMA_VERSION for line in lines)
    assert RecordLog(run / "records.jsonl").read() == before


@pytest.mark.parametrize("change, message", [
    ({"schema_version": 99}, "schema_version 99 is not one this skip2bench reads"),
    ({"schema_version": "2"}, "schema_version '2' is not one"),
    ({"acc_after": 1.5}, "acc_after: Input should be less than or equal to 1"),
    ({"status": "maybe"}, "status: Input should be"),
    ({"ft_macs": -3}, "ft_macs: Input should be greater than or equal to 0"),
    ({"colour": "blue"}, "colour: Extra inputs are not permitted"),
    ({"acc_before": None}, "needs the runner's result"),
])
def test_an_invalid_or_unknown_record_is_refused_naming_file_line_and_field(tmp_path, change, message):
    lines = v1_lines()
    bad = dict(json.loads(lines[1]), **change)
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join([lines[0], json.dumps(bad), lines[2]]) + "\n")
    with pytest.raises(MalformedRecords) as err:
        RecordLog(path).read()
    assert f"{path}:2: " in str(err.value) and message in str(err.value) and "\n" not in str(err.value)


# The job the runner output below belongs to (runner_job's form: every field of skip2_job.def).
JOB = {"method": "skip2-lora", "cache": True, "cache_format": "f32", "seed": 0, "epochs": 20, "batch_size": 20,
       "rank": 4, "lr": 0.01, "scale": 1.0, "cache_budget_bytes": -1, "input_format": "f32", "far_prime": 0.1,
       "far_keep": 0.25, "bsr_layers": 0, "oselm_lambda": 0.01, "oselm_forget": 1.0, "oselm_passes": 1}
# What a runner echoes of it: the fields skip2-lora jobs hold, reals as float32.
ECHO = {k: float(np.float32(v)) if isinstance(v, float) else v for k, v in JOB.items()
        if k not in ("far_prime", "far_keep", "bsr_layers", "oselm_lambda", "oselm_forget", "oselm_passes")}


def _runner_output(**change):
    result = {k: v for k, v in json.loads(v1_lines()[1]).items()
              if k in ("status", "reason", "acc_before", "acc_after", "ft_time_s", "fwd_time_s", "bwd_time_s",
                       "upd_time_s", "cache_time_s", "epoch_times_s", "epoch_loss", "n_ft", "n_test", "ft_macs",
                       "trainable_params", "cache_capacity_samples", "cache_hits", "cache_misses",
                       "cache_hit_rate", "peak_rss_bytes", "runtime")}
    result.update(impl="c", method="skip2-lora", mem={"weights_bytes": 1, "grads_bytes": 1, "optimizer_bytes": 0,
                                                       "activations_bytes": 1, "cache_bytes": 1}, job=ECHO)
    result.update(change)
    return json.dumps(result)


def test_a_runner_result_is_validated_when_it_arrives():
    assert parse_result(_runner_output(), "", 0, "c runner", JOB, attempts=1).acc_after is not None
    with pytest.raises(TargetError, match=r"printed an invalid result \(acc_before: Input should be a valid number"):
        parse_result(_runner_output(acc_before="high"), "", 0, "c runner", JOB)
    with pytest.raises(TargetError, match="reports the phase times, ft_macs and mem"):
        parse_result(_runner_output(ft_macs=None), "", 0, "c runner", JOB)
    with pytest.raises(TargetError, match="a fail has a reason and no acc_after"):
        parse_result(_runner_output(status="fail"), "", 0, "c runner", JOB)


@pytest.mark.parametrize("echo, message", [
    (None, "no echo of the job it ran"),
    (dict(ECHO, rank=8), "it ran rank = 8, the job says 4"),
    (dict(ECHO, lr=0.01), "it ran lr = 0.01, the job says 0.01"),  # not float32: not as every runner holds it
    ({k: v for k, v in ECHO.items() if k != "seed"}, "its echo of the job has fields"),
    (dict(ECHO, far_keep=0.25), "its echo of the job has fields"),
])
def test_a_result_whose_echo_is_not_its_job_is_refused(echo, message):
    with pytest.raises(TargetError, match="did not run the job it was sent: " + re.escape(message)):
        parse_result(_runner_output(job=echo), "", 0, "c runner", JOB)
