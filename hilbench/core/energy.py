"""Energy over a measured window, from a sampled power trace or an energy counter."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence, Tuple

from hilbench.core.fields import get_float, get_int, get_optional_float, get_str

Points = Sequence[Tuple[float, float]]


def value_at(points: Points, t: float) -> float | None:
    """Linear interpolation of a sampled series at ``t``; None outside the samples."""
    if not points or t < points[0][0] or t > points[-1][0]:
        return None
    for (t0, v0), (t1, v1) in zip(points, points[1:]):
        if t0 <= t <= t1:
            return v0 if t1 == t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0)
    return points[-1][1] if t == points[-1][0] else None


def unwrap(points: Points, wrap: float | None) -> list[tuple[float, float]]:
    """An energy counter made monotonic: each time it falls, it wrapped at ``wrap``."""
    unwrapped: list[tuple[float, float]] = []
    offset = 0.0
    for index, (t, value) in enumerate(points):
        if index and value + offset < unwrapped[-1][1] - 1e-12:
            offset += wrap if wrap else unwrapped[-1][1] - (value + offset)
        unwrapped.append((t, value + offset))
    return unwrapped


def counter_energy_j(points: Points, start: float, end: float,
                     wrap: float | None = None) -> float | None:
    """Joules a cumulative counter (in J) rose by over [start, end]."""
    series = unwrap(points, wrap)
    first, last = value_at(series, start), value_at(series, end)
    if first is None or last is None:
        return None
    return last - first


def trace_energy_j(points: Points, start: float, end: float) -> float | None:
    """Joules under a power trace (in W) over [start, end], by the trapezoidal rule."""
    first, last = value_at(points, start), value_at(points, end)
    if first is None or last is None or end <= start:
        return None
    inner = [(t, w) for t, w in points if start < t < end]
    edges = [(start, first), *inner, (end, last)]
    return sum((t1 - t0) * (w0 + w1) / 2.0 for (t0, w0), (t1, w1) in zip(edges, edges[1:]))


def mean_power_w(points: Points, start: float, end: float, kind: str) -> float | None:
    """Average power over [start, end] of a power trace (``power``) or a counter
    (``energy``)."""
    if end <= start:
        return None
    energy = (counter_energy_j(points, start, end) if kind == "energy"
              else trace_energy_j(points, start, end))
    return None if energy is None else energy / (end - start)


@dataclass(frozen=True)
class EnergyReport:
    """Energy of the timed inferences, read from ``sensor``.

    ``energy_j`` covers the whole window (idle power included); ``idle_power_w`` was
    measured on the idle device just before. ``method``: ``counter`` (an energy counter's
    difference) or ``power trace`` (sampled power, integrated)."""

    sensor: str
    method: str
    window_s: float
    inferences: int
    energy_j: float
    idle_power_w: float | None = None

    @property
    def avg_power_w(self) -> float:
        return self.energy_j / self.window_s

    @property
    def energy_per_inference_mj(self) -> float:
        return self.energy_j / self.inferences * 1000.0

    @property
    def active_energy_per_inference_mj(self) -> float | None:
        """Energy per inference above idle: what running the model added."""
        if self.idle_power_w is None:
            return None
        active = self.energy_j - self.idle_power_w * self.window_s
        return active / self.inferences * 1000.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EnergyReport:
        """``ValueError`` for a report the figures above cannot come from (no window, no
        inference)."""
        report = cls(
            sensor=get_str(data, "sensor"), method=get_str(data, "method"),
            window_s=get_float(data, "window_s"), inferences=get_int(data, "inferences"),
            energy_j=get_float(data, "energy_j"),
            idle_power_w=get_optional_float(data, "idle_power_w"),
        )
        if not report.window_s > 0 or report.inferences < 1:
            raise ValueError(f"energy over a window of {report.window_s} s for "
                             f"{report.inferences} inferences")
        return report
