"""The agent as a device runs it: a worker process per job, job JSON in, result JSON out,
for this machine's CPU and for emulated devices through the same code path."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from hilbench.agents.protocol import (
    PROGRESS_PREFIX,
    JobSpec,
    parse_progress,
    parse_result,
    progress_line,
)
from hilbench.core.errors import AgentError, ModelError
from hilbench.core.measurement import Measurement
from hilbench.core.records import ModelRecord
from hilbench.core.settings import BenchmarkSettings
from hilbench.devices.device import Device, open_device
from hilbench.devices.local_shell import LocalShell
from hilbench.devices.registry import new_device_record
from tests import modelfiles

QUICK = BenchmarkSettings(warmup_runs=2, min_runs=15, min_duration_s=0.0)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> ModelRecord:
    path = modelfiles.mlp(tmp_path_factory.mktemp("m") / "mlp.onnx", width=512, layers=8)
    return ModelRecord.from_file(path)


def device(
    tmp_path: Path, name: str, kind: str = "emulated", preset: str | None = "phone"
) -> Device:
    record = new_device_record(name, kind, preset if kind == "emulated" else None)
    return open_device(record, tmp_path)


def run(dev: Device, model: ModelRecord, settings: BenchmarkSettings = QUICK) -> Measurement:
    job = dev.job_spec("job-1", model, settings)
    return dev.run_job(job, lambda phase, fraction: None)


def test_local_job_times_exactly_the_requested_runs(tmp_path: Path, model: ModelRecord) -> None:
    phases: list[str] = []
    dev = device(tmp_path, "local", kind="local")
    job = dev.job_spec("job-1", model, QUICK)
    measurement = dev.run_job(job, lambda phase, fraction: phases.append(phase))
    assert len(measurement.samples_ns) == 15  # warm-up and first inference not counted
    assert measurement.summary.count == 15
    assert measurement.timed_duration_s == pytest.approx(sum(measurement.samples_ns) / 1e9)
    assert measurement.init_ms > 0 and measurement.first_inference_ms > 0
    assert measurement.peak_memory_mb is not None and measurement.peak_memory_mb > 10
    assert measurement.emulated_figures == ()
    env = measurement.environment
    assert (env.device, env.device_kind, env.runtime) == ("local", "local", "onnxruntime")
    assert env.model_sha256 == model.sha256
    assert dict(env.input_shapes) == {"x": (1, 512)}
    assert env.emulation is None
    assert "load" in phases and phases[-1] == "measure"


def test_runs_until_both_minimum_count_and_duration(tmp_path: Path, model: ModelRecord) -> None:
    settings = BenchmarkSettings(warmup_runs=0, min_runs=5, min_duration_s=0.2)
    measurement = run(device(tmp_path, "local", "local"), model, settings)
    assert measurement.timed_duration_s >= 0.2
    assert measurement.summary.count > 5


def test_max_runs_cap_makes_the_run_too_short(tmp_path: Path, model: ModelRecord) -> None:
    settings = BenchmarkSettings(warmup_runs=0, min_runs=3, min_duration_s=30.0, max_runs=8)
    measurement = run(device(tmp_path, "local", "local"), model, settings)
    assert measurement.summary.count == 8
    assert measurement.verdict.reasons[0].startswith("too short")


def test_max_duration_cap_leaves_too_few_runs(tmp_path: Path, model: ModelRecord) -> None:
    settings = BenchmarkSettings(
        warmup_runs=0, min_runs=10_000_000, min_duration_s=0.0, max_duration_s=0.05
    )
    measurement = run(device(tmp_path, "local", "local"), model, settings)
    assert measurement.verdict.reasons[0].startswith("too few runs")


def test_emulated_device_reads_its_sysfs_and_scales_with_frequency(
    tmp_path: Path, model: ModelRecord
) -> None:
    settings = BenchmarkSettings(warmup_runs=2, min_runs=40, min_duration_s=0.0)
    dev = device(tmp_path, "emu-phone")
    fast = run(dev, model, settings)
    big_cluster = Path(dev.sysfs_root) / "sys/devices/system/cpu/cpufreq/policy4"
    (big_cluster / "scaling_max_freq").write_text("710000\n")  # capped at the lowest level
    slow = run(dev, model, settings)
    env = slow.environment
    assert env.emulation == "phone"
    assert env.threads == 4  # the big cluster's cores
    assert env.dvfs.domain("cpu4-7").cur_khz == 710000
    assert [d.name for d in env.dvfs.domains] == ["cpu0-3", "cpu4-7"]
    # f_max / f = 3.4 on the frequency-bound 75 %: the speed model predicts 2.8x slower
    ratio = slow.summary.p50_ms / fast.summary.p50_ms
    # Wide above: this tiny model's host CPU time per inference grows when the job sleeps
    # between inferences to pace a slow device (cold caches), up to 3x on this VM.
    assert 2.0 < ratio < 6.0
    assert set(slow.emulated_figures) == {
        "latency", "init_ms", "first_inference_ms", "peak_memory_mb", "energy_per_inference_mj",
        "avg_power_w",
    }


def test_emulated_presets_differ_in_speed(tmp_path: Path, model: ModelRecord) -> None:
    settings = BenchmarkSettings(warmup_runs=2, min_runs=40, min_duration_s=0.0, threads=1)
    phone, server = device(tmp_path, "p", preset="phone"), device(tmp_path, "s", preset="server")
    # Twice each, alternating: a job of this shared machine's that ran slow (the host, not
    # the model) only ever makes a figure larger, so the faster of the two is the one kept.
    p50: dict[str, list[float]] = {"phone": [], "server": []}
    for _ in range(2):
        p50["phone"].append(run(phone, model, settings).summary.p50_ms)
        p50["server"].append(run(server, model, settings).summary.p50_ms)
    # one thread each: the phone's big core is 3.0x, the server's core 0.9x a host core
    ratio = min(p50["phone"]) / min(p50["server"])
    assert 2.0 < ratio < 5.0


def test_corrupt_model_is_reported_as_model_error(tmp_path: Path) -> None:
    record = ModelRecord.from_file(modelfiles.corrupt(tmp_path / "bad.onnx"))
    with pytest.raises(ModelError, match="onnxruntime cannot load it"):
        run(device(tmp_path, "local", "local"), record)


def test_changed_model_file_is_refused(tmp_path: Path, model: ModelRecord) -> None:
    stale = ModelRecord(**{**model.__dict__, "sha256": "0" * 64})
    with pytest.raises(ModelError, match="changed"):
        run(device(tmp_path, "local", "local"), stale)


def test_string_input_model_is_refused(tmp_path: Path) -> None:
    record = ModelRecord.from_file(modelfiles.string_input(tmp_path / "s.onnx"))
    with pytest.raises(ModelError, match="tensor\\(string\\)"):
        run(device(tmp_path, "local", "local"), record)


def test_agent_answers_malformed_job_with_an_error_result() -> None:
    result = LocalShell().run(
        [sys.executable, "-m", "hilbench.agents", "run"], timeout_s=60, stdin="{not json"
    )
    answer = json.loads(result.stdout)
    assert answer["status"] == "error" and "malformed job JSON" in answer["error"]["message"]


def test_agent_refuses_a_job_from_a_newer_host(model: ModelRecord) -> None:
    job = JobSpec("j", "local", "local", model.path, model.sha256, QUICK)
    data = json.loads(job.to_json())
    data["schema_version"] = 99
    result = LocalShell().run(
        [sys.executable, "-m", "hilbench.agents", "run"], timeout_s=60, stdin=json.dumps(data)
    )
    with pytest.raises(AgentError, match="upgrade hilbench on the device"):
        parse_result(result.stdout, "?")


def test_host_refuses_a_result_that_is_not_json() -> None:
    with pytest.raises(AgentError, match="malformed result JSON"):
        parse_result("Segmentation fault", "job-1")


def test_progress_lines_round_trip_and_garbage_is_ignored() -> None:
    assert parse_progress(progress_line("measure", 0.5)) == ("measure", 0.5)
    assert parse_progress("some warning from a runtime") is None
    assert parse_progress(PROGRESS_PREFIX + "{not json") is None
    assert parse_progress(PROGRESS_PREFIX + '{"phase": "load"}') is None
