"""Sensor readings sampled beside a benchmark run (frequencies, temperatures, power)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from hilbench.core.fields import get_float, get_list, get_optional_float, get_str

_UNITS = (
    ("/cpufreq/", "kHz"), ("/devfreq/", "Hz"), ("/thermal/", "m°C"), ("/current_now", "µA"),
    ("/voltage_now", "µV"),
)


def unit_of(sensor: str) -> str:
    """The unit of a sysfs file's raw value, by where it lives."""
    return next((unit for part, unit in _UNITS if part in sensor), "raw")


@dataclass(frozen=True)
class Series:
    """One sensor over the run: timestamps in seconds on the device's clock, raw values in
    the sensor's own ``unit`` (sysfs: kHz for cpufreq, Hz for devfreq, m°C for thermal)."""

    sensor: str
    unit: str
    t_s: tuple[float, ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.t_s) != len(self.values):
            raise ValueError(f"sensor {self.sensor}: {len(self.t_s)} timestamps for "
                             f"{len(self.values)} values")

    def to_dict(self) -> dict[str, Any]:
        return {"sensor": self.sensor, "unit": self.unit, "t_s": list(self.t_s),
                "values": list(self.values)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Series:
        return cls(
            sensor=get_str(data, "sensor"),
            unit=get_str(data, "unit"),
            t_s=tuple(float(t) for t in get_list(data, "t_s")),
            values=tuple(float(v) for v in get_list(data, "values")),
        )


@dataclass(frozen=True)
class Telemetry:
    """What a sampler running beside the workload read, every ``interval_s`` seconds."""

    interval_s: float
    series: tuple[Series, ...] = ()
    window_start_s: float | None = None  # the timed runs, on the same time base
    window_end_s: float | None = None

    def in_window(self, series: Series) -> list[tuple[float, float]]:
        """The points of ``series`` taken while the timed runs ran (all without a window)."""
        start = self.window_start_s if self.window_start_s is not None else float("-inf")
        end = self.window_end_s if self.window_end_s is not None else float("inf")
        return [(t, v) for t, v in zip(series.t_s, series.values) if start <= t <= end]

    def get(self, sensor: str) -> Series | None:
        return next((s for s in self.series if s.sensor == sensor), None)

    def with_unit(self, unit: str) -> tuple[Series, ...]:
        return tuple(s for s in self.series if s.unit == unit)

    def to_dict(self) -> dict[str, Any]:
        return {"interval_s": self.interval_s, "series": [s.to_dict() for s in self.series],
                "window_start_s": self.window_start_s, "window_end_s": self.window_end_s}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Telemetry:
        return cls(
            interval_s=get_float(data, "interval_s"),
            series=tuple(Series.from_dict(s) for s in get_list(data, "series")),
            window_start_s=get_optional_float(data, "window_start_s"),
            window_end_s=get_optional_float(data, "window_end_s"),
        )
