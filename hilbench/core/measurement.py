"""A measurement: raw samples, the environment they were taken in, and their verdict."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Mapping, Sequence, Tuple

from hilbench.core.dvfs import DvfsState
from hilbench.core.energy import EnergyReport
from hilbench.core.errors import IncompatibleMeasurementsError
from hilbench.core.fields import (
    get_dict,
    get_float,
    get_int,
    get_list,
    get_optional_float,
    get_optional_int,
    get_optional_str,
    get_str,
)
from hilbench.core.settings import BenchmarkSettings
from hilbench.core.stats import OPTIONAL_STATS, LatencySummary
from hilbench.core.telemetry import Telemetry
from hilbench.core.throttle import throttle_reasons
from hilbench.core.verdict import Verdict, judge

InputShapes = Tuple[Tuple[str, Tuple[int, ...]], ...]
SUMMARY_KEYS = ("count", "mean_ms", *OPTIONAL_STATS)


@dataclass(frozen=True)
class Environment:
    """Everything that can change a latency figure. Two measurements are comparable only
    when their ``compatibility_key`` is equal."""

    device: str
    device_kind: str
    runtime: str
    runtime_version: str
    execution_provider: str
    model_sha256: str
    threads: int | None
    input_shapes: InputShapes
    dvfs: DvfsState
    agent_version: str
    python_version: str
    platform: str
    hostname: str
    emulation: str | None = None

    def compatibility_key(self) -> str:
        relevant = {
            "device": self.device,
            "runtime": [self.runtime, self.runtime_version, self.execution_provider],
            "model": self.model_sha256,
            "threads": self.threads,
            "inputs": [[name, list(shape)] for name, shape in self.input_shapes],
            "dvfs": [list(p) for p in self.dvfs.policy()],
            "emulation": self.emulation,
        }
        encoded = json.dumps(relevant, sort_keys=True).encode()
        return hashlib.sha256(encoded).hexdigest()[:16]

    def differences(self, other: Environment) -> tuple[str, ...]:
        """Names of the fields that make ``other`` incompatible with this one."""
        pairs = {
            "device": (self.device, other.device),
            "runtime": (
                (self.runtime, self.runtime_version, self.execution_provider),
                (other.runtime, other.runtime_version, other.execution_provider),
            ),
            "model": (self.model_sha256, other.model_sha256),
            "threads": (self.threads, other.threads),
            "input shapes": (self.input_shapes, other.input_shapes),
            "DVFS policy": (self.dvfs.policy(), other.dvfs.policy()),
            "emulation": (self.emulation, other.emulation),
        }
        return tuple(name for name, (mine, theirs) in pairs.items() if mine != theirs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "device_kind": self.device_kind,
            "runtime": self.runtime,
            "runtime_version": self.runtime_version,
            "execution_provider": self.execution_provider,
            "model_sha256": self.model_sha256,
            "threads": self.threads,
            "input_shapes": {name: list(shape) for name, shape in self.input_shapes},
            "dvfs": self.dvfs.to_dict(),
            "agent_version": self.agent_version,
            "python_version": self.python_version,
            "platform": self.platform,
            "hostname": self.hostname,
            "emulation": self.emulation,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Environment:
        shapes = get_dict(data, "input_shapes")
        return cls(
            device=get_str(data, "device"),
            device_kind=get_str(data, "device_kind"),
            runtime=get_str(data, "runtime"),
            runtime_version=get_str(data, "runtime_version"),
            execution_provider=get_str(data, "execution_provider"),
            model_sha256=get_str(data, "model_sha256"),
            threads=get_optional_int(data, "threads"),
            input_shapes=tuple((str(n), tuple(int(d) for d in s)) for n, s in shapes.items()),
            dvfs=DvfsState.from_dict(get_dict(data, "dvfs")),
            agent_version=get_str(data, "agent_version"),
            python_version=get_str(data, "python_version"),
            platform=get_str(data, "platform"),
            hostname=get_str(data, "hostname"),
            emulation=get_optional_str(data, "emulation"),
        )


@dataclass(frozen=True)
class Measurement:
    """Timed inferences of one model on one device in one environment.

    ``samples_ns`` are the raw latencies of the timed runs (warm-up excluded). A device's
    own benchmark tool (``benchmark_model``, ``onnxruntime_perf_test``) prints a summary
    instead: then ``samples_ns`` is empty and ``reported`` holds the figures it printed.
    ``emulated_figures`` names the figures produced by a speed model instead of measured
    on the device itself; ``unavailable_figures`` those the device could not give.
    ``telemetry``: sensors sampled beside the run, where the agent sampled any; ``energy``:
    the energy of the timed runs worked out from them; ``notes``: what the agent could not
    do and why (no power sensor, a charging battery, a frequency it could not pin)."""

    environment: Environment
    settings: BenchmarkSettings
    samples_ns: tuple[int, ...]
    timed_duration_s: float
    init_ms: float | None
    first_inference_ms: float | None
    peak_memory_mb: float | None
    started_at: float
    finished_at: float
    emulated_figures: tuple[str, ...] = ()
    unavailable_figures: tuple[str, ...] = ()
    reported: LatencySummary | None = None
    telemetry: Telemetry | None = None
    energy: EnergyReport | None = None
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if bool(self.samples_ns) == (self.reported is not None):
            raise ValueError("a measurement has either raw samples or a tool-reported summary")

    @cached_property
    def summary(self) -> LatencySummary:
        if self.reported is not None:
            return self.reported
        return LatencySummary.from_ns(self.samples_ns)

    @property
    def verdict(self) -> Verdict:
        rules = judge(self.summary, self.timed_duration_s, self.settings)
        throttled = throttle_reasons(self.environment.dvfs, self.telemetry)
        return Verdict(rules.reasons + throttled)

    def to_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment.to_dict(),
            "settings": self.settings.to_dict(),
            "samples_ns": list(self.samples_ns),
            "timed_duration_s": self.timed_duration_s,
            "init_ms": self.init_ms,
            "first_inference_ms": self.first_inference_ms,
            "peak_memory_mb": self.peak_memory_mb,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "emulated_figures": list(self.emulated_figures),
            "unavailable_figures": list(self.unavailable_figures),
            "reported": summary_to_dict(self.reported) if self.reported else None,
            "telemetry": self.telemetry.to_dict() if self.telemetry else None,
            "energy": self.energy.to_dict() if self.energy else None,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Measurement:
        samples = get_list(data, "samples_ns")
        if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in samples):
            raise ValueError("field 'samples_ns' must be a list of non-negative ints")
        reported = data.get("reported")
        telemetry = data.get("telemetry")
        energy = data.get("energy")
        if not samples and not isinstance(reported, dict):
            raise ValueError("a measurement needs 'samples_ns' or a 'reported' summary")
        return cls(
            environment=Environment.from_dict(get_dict(data, "environment")),
            settings=BenchmarkSettings.from_dict(get_dict(data, "settings")),
            samples_ns=tuple(samples),
            timed_duration_s=get_float(data, "timed_duration_s"),
            init_ms=get_optional_float(data, "init_ms"),
            first_inference_ms=get_optional_float(data, "first_inference_ms"),
            peak_memory_mb=get_optional_float(data, "peak_memory_mb"),
            started_at=get_float(data, "started_at"),
            finished_at=get_float(data, "finished_at"),
            emulated_figures=tuple(str(f) for f in get_list(data, "emulated_figures")),
            unavailable_figures=tuple(str(f) for f in get_list(data, "unavailable_figures")),
            reported=summary_from_dict(reported) if isinstance(reported, dict) else None,
            telemetry=Telemetry.from_dict(telemetry) if isinstance(telemetry, dict) else None,
            energy=EnergyReport.from_dict(energy) if isinstance(energy, dict) else None,
            notes=tuple(str(n) for n in data.get("notes") or ()),
        )


def summary_to_dict(summary: LatencySummary) -> dict[str, Any]:
    return {name: getattr(summary, name) for name in SUMMARY_KEYS}


def summary_from_dict(data: Mapping[str, Any]) -> LatencySummary:
    optional = {name: get_optional_float(data, name) for name in OPTIONAL_STATS}
    return LatencySummary(
        count=get_int(data, "count"), mean_ms=get_float(data, "mean_ms"), **optional
    )


def combine(measurements: Sequence[Measurement]) -> Measurement:
    """Pool the samples of several runs taken in the same environment.

    Raises ``IncompatibleMeasurementsError`` naming what differs, never averages across
    environments."""
    if not measurements:
        raise ValueError("nothing to combine")
    first = measurements[0]
    if len(measurements) == 1:
        return first
    if any(m.reported is not None for m in measurements):
        raise IncompatibleMeasurementsError(
            "summaries reported by a device's benchmark tool have no raw samples to pool"
        )
    for other in measurements[1:]:
        differing = first.environment.differences(other.environment)
        if differing:
            raise IncompatibleMeasurementsError(
                "measurements differ in " + ", ".join(differing) + "; they cannot be combined"
            )
        if other.settings != first.settings:
            raise IncompatibleMeasurementsError(
                "measurements were taken with different benchmark settings"
            )
    return Measurement(
        environment=first.environment,
        settings=first.settings,
        samples_ns=tuple(s for m in measurements for s in m.samples_ns),
        timed_duration_s=sum(m.timed_duration_s for m in measurements),
        init_ms=first.init_ms,
        first_inference_ms=first.first_inference_ms,
        peak_memory_mb=max(
            (m.peak_memory_mb for m in measurements if m.peak_memory_mb is not None),
            default=None,
        ),
        started_at=min(m.started_at for m in measurements),
        finished_at=max(m.finished_at for m in measurements),
        emulated_figures=first.emulated_figures,
        unavailable_figures=first.unavailable_figures,
    )
