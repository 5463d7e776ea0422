"""Measurements carry their environment and are never combined across environments."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hilbench.core.dvfs import DomainState, DvfsState
from hilbench.core.errors import IncompatibleMeasurementsError
from hilbench.core.measurement import Environment, Measurement, combine
from hilbench.core.settings import BenchmarkSettings
from hilbench.core.telemetry import Series
from tests import factories

ENV = Environment(
    device="phone", device_kind="emulated", runtime="onnxruntime", runtime_version="1.20.0",
    execution_provider="CPUExecutionProvider", model_sha256="ab" * 32, threads=4,
    input_shapes=(("x", (1, 128)),),
    dvfs=DvfsState((DomainState("cpu4-7", (4, 5, 6, 7), "performance", 2419000, 710000,
                                2419000, (710000, 2419000)),)),
    agent_version="0.1.0", python_version="3.11.7", platform="Linux", hostname="lab",
    emulation="phone",
)
SETTINGS = BenchmarkSettings(min_runs=3, min_duration_s=0.0)


def measurement(samples: tuple[int, ...], env: Environment = ENV) -> Measurement:
    return Measurement(
        environment=env, settings=SETTINGS, samples_ns=samples,
        timed_duration_s=sum(samples) / 1e9, init_ms=12.0, first_inference_ms=3.0,
        peak_memory_mb=80.0, started_at=1.0, finished_at=2.0,
    )


def test_compatible_runs_pool_their_raw_samples() -> None:
    pooled = combine([measurement((1_000_000, 2_000_000)), measurement((3_000_000,))])
    assert pooled.samples_ns == (1_000_000, 2_000_000, 3_000_000)
    assert pooled.summary.count == 3 and pooled.summary.mean_ms == pytest.approx(2.0)


def test_current_frequency_alone_does_not_make_runs_incompatible() -> None:
    domain = replace(ENV.dvfs.domains[0], cur_khz=1_800_000)
    moved = replace(ENV, dvfs=DvfsState((domain,)), hostname="other")
    assert ENV.compatibility_key() == moved.compatibility_key()
    assert combine([measurement((1,)), measurement((2,), moved)]).summary.count == 2


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"threads": 2}, "threads"),
        ({"model_sha256": "cd" * 32}, "model"),
        ({"runtime_version": "1.21.0"}, "runtime"),
        ({"input_shapes": (("x", (8, 128)),)}, "input shapes"),
        ({"device": "server"}, "device"),
        ({"emulation": None}, "emulation"),
    ],
)
def test_incompatible_runs_are_refused_naming_the_difference(change: dict, named: str) -> None:
    other = replace(ENV, **change)
    assert ENV.compatibility_key() != other.compatibility_key()
    with pytest.raises(IncompatibleMeasurementsError, match=f"differ in {named}"):
        combine([measurement((1,)), measurement((2,), other)])


def test_pinned_frequency_limits_are_part_of_the_environment() -> None:
    pinned = replace(ENV.dvfs.domains[0], min_khz=710000, max_khz=710000)
    other = replace(ENV, dvfs=DvfsState((pinned,)))
    with pytest.raises(IncompatibleMeasurementsError, match="DVFS policy"):
        combine([measurement((1,)), measurement((2,), other)])


def test_json_round_trip_keeps_everything() -> None:
    original = measurement((5, 7, 9))
    copy = Measurement.from_dict(original.to_dict())
    assert copy == original
    assert copy.environment.compatibility_key() == original.environment.compatibility_key()
    assert copy.verdict == original.verdict


def test_a_tool_summary_round_trips_and_is_judged_on_what_it_reports() -> None:
    measurement = factories.tool_reported_run().measurement
    assert measurement is not None
    assert Measurement.from_dict(measurement.to_dict()) == measurement
    assert measurement.summary.missing == ("p50_ms", "p90_ms", "p99_ms")
    assert measurement.verdict.valid
    without_std = replace(measurement, reported=replace(measurement.reported, std_ms=None))
    assert without_std.verdict.reasons == (
        "stability unknown: no standard deviation was reported",
    )
    assert without_std.summary.ci95_ms is None and without_std.summary.required_runs() is None


def test_a_measurement_needs_samples_or_a_reported_summary() -> None:
    measurement = factories.measurement()
    with pytest.raises(ValueError, match="either raw samples or"):
        replace(measurement, samples_ns=())
    data = measurement.to_dict()
    with pytest.raises(ValueError, match="needs 'samples_ns' or"):
        Measurement.from_dict({**data, "samples_ns": []})


def _with_frequencies(khz: tuple[float, ...], window: tuple[float, float] | None = None,
                      **domain: object) -> Measurement:
    measurement = factories.tool_reported_run().measurement
    assert measurement is not None and measurement.telemetry is not None
    series = Series("/sys/devices/system/cpu/cpufreq/policy4/scaling_cur_freq", "kHz",
                    tuple(float(i) for i in range(len(khz))), khz)
    telemetry = replace(measurement.telemetry, series=(series,),
                        window_start_s=window[0] if window else None,
                        window_end_s=window[1] if window else None)
    cluster = replace(measurement.environment.dvfs.domains[0], **domain)  # type: ignore[arg-type]
    environment = replace(measurement.environment, dvfs=DvfsState((cluster,)))
    return replace(measurement, telemetry=telemetry, environment=environment)


def test_a_cluster_that_slowed_under_load_makes_the_run_invalid_with_evidence() -> None:
    steady = _with_frequencies((2419000.0,) * 5)
    assert steady.verdict.valid
    dropped = _with_frequencies((2419000.0, 2419000.0, 1804000.0, 1401000.0, 2419000.0))
    assert dropped.verdict.reasons == (
        "throttled: cpu4-7 at 1401 MHz (expected 2419 MHz) at t=3.0 s, 2 of the samples below",
    )


def test_a_pinned_level_must_hold_only_during_the_timed_runs() -> None:
    pinned = {"min_khz": 1401000, "max_khz": 1401000}
    left = _with_frequencies((1401000.0, 1401000.0, 1056000.0), **pinned)
    assert left.verdict.reasons[0].startswith("throttled: cpu4-7 at 1056 MHz (pinned at 1401")
    before_the_window = _with_frequencies((1056000.0, 1401000.0, 1401000.0), (1.0, 2.0), **pinned)
    assert before_the_window.verdict.valid


def test_other_governors_move_frequency_on_purpose() -> None:
    schedutil = _with_frequencies((2419000.0, 710000.0, 2419000.0), governor="schedutil")
    assert schedutil.verdict.valid
