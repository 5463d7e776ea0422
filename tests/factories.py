"""Realistic records for store tests."""

from __future__ import annotations

import random
import uuid
from dataclasses import replace

from hilbench.core.dvfs import DomainState, DvfsState
from hilbench.core.measurement import Environment, Measurement
from hilbench.core.records import RUN_FAILED, RUN_OK, ModelRecord, RunRecord
from hilbench.core.settings import BenchmarkSettings
from hilbench.core.stats import LatencySummary
from hilbench.core.telemetry import Series, Telemetry

SETTINGS = BenchmarkSettings(min_runs=5, min_duration_s=0.0)
MODEL = ModelRecord(sha256="5" * 64, name="encoder", format="onnx", path="/models/encoder.onnx",
                    size_bytes=4_360_000)
ENVIRONMENT = Environment(
    device="phone", device_kind="emulated", runtime="onnxruntime", runtime_version="1.20.0",
    execution_provider="CPUExecutionProvider", model_sha256=MODEL.sha256, threads=4,
    input_shapes=(("input_ids", (1, 128)), ("attention_mask", (1, 128))),
    dvfs=DvfsState((DomainState("cpu4-7", (4, 5, 6, 7), "performance", 2419000, 710000,
                                2419000, (710000, 2419000)),)),
    agent_version="0.1.0", python_version="3.11.7", platform="Linux", hostname="lab",
    emulation="phone",
)


def measurement(count: int = 200, seed: int = 0, **changes: object) -> Measurement:
    rng = random.Random(seed)
    samples = tuple(int(rng.gauss(3_000_000, 60_000)) for _ in range(count))
    environment = replace(ENVIRONMENT, **changes)  # type: ignore[arg-type]
    return Measurement(
        environment=environment, settings=SETTINGS, samples_ns=samples,
        timed_duration_s=sum(samples) / 1e9, init_ms=120.5, first_inference_ms=4.25,
        peak_memory_mb=169.0, started_at=1_700_000_000.0, finished_at=1_700_000_002.0,
        emulated_figures=("latency",),
    )


def ok_run(device: str = "phone", count: int = 200, seed: int = 0, **changes: object) -> RunRecord:
    return RunRecord(
        run_id=uuid.uuid4().hex, device=device, model=MODEL, settings=SETTINGS, status=RUN_OK,
        started_at=1_700_000_000.0 + seed, finished_at=1_700_000_003.0 + seed,
        measurement=measurement(count, seed, device=device, **changes), campaign_id="c1",
    )


def failed_run(device: str = "phone") -> RunRecord:
    return RunRecord(
        run_id=uuid.uuid4().hex, device=device, model=MODEL, settings=SETTINGS,
        status=RUN_FAILED, started_at=1_700_000_100.0, finished_at=1_700_000_101.0,
        error="phone: agent failed: Killed",
    )


def tool_reported_run(device: str = "phone") -> RunRecord:
    """A run measured by the device's own ``benchmark_model`` (an old build: no
    percentiles, no first inference): a summary, no raw samples."""
    environment = replace(ENVIRONMENT, device=device, runtime="benchmark_model",
                          runtime_version="sha256:" + "b" * 12, emulation=None)
    reported = LatencySummary(count=50, mean_ms=112.533, p50_ms=None, p90_ms=None, p99_ms=None,
                              std_ms=0.778, min_ms=110.425, max_ms=114.213)
    measurement = Measurement(
        environment=environment, settings=SETTINGS, samples_ns=(),
        timed_duration_s=50 * 0.112533, init_ms=34.939, first_inference_ms=None,
        peak_memory_mb=None, started_at=1_700_000_200.0, finished_at=1_700_000_207.0,
        unavailable_figures=("p50_ms", "p90_ms", "p99_ms", "first_inference_ms",
                             "peak_memory_mb"),
        reported=reported,
        telemetry=Telemetry(0.1, (
            Series("/sys/devices/system/cpu/cpufreq/policy4/scaling_cur_freq", "kHz",
                   (10.0, 10.1, 10.2), (2419000.0, 2419000.0, 2419000.0)),
            Series("/sys/class/thermal/thermal_zone0/temp", "m°C", (10.0, 10.1, 10.2),
                   (41000.0, 42500.0, 44000.0)),
        )),
    )
    return RunRecord(
        run_id=uuid.uuid4().hex, device=device, model=MODEL, settings=SETTINGS, status=RUN_OK,
        started_at=1_700_000_200.0, finished_at=1_700_000_207.0, measurement=measurement,
        campaign_id="c2",
    )
