"""Summary statistics of a latency sample."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

NS_PER_MS = 1_000_000
Z95 = 1.959963984540054  # two-sided 95 % quantile of the normal distribution


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Linear-interpolated percentile (numpy's default) of an already sorted sequence."""
    if not sorted_values:
        raise ValueError("percentile of an empty sample")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"percentile fraction {fraction} is outside [0, 1]")
    position = fraction * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    weight = position - low
    return sorted_values[low] * (1.0 - weight) + sorted_values[high] * weight


OPTIONAL_STATS = ("p50_ms", "p90_ms", "p99_ms", "std_ms", "min_ms", "max_ms")


@dataclass(frozen=True)
class LatencySummary:
    """Latency statistics in milliseconds over ``count`` timed inferences.

    From raw samples every figure is known. A device's own benchmark tool may report only
    some of them (old ``benchmark_model`` builds print no percentiles, old
    ``onnxruntime_perf_test`` only the mean): a figure it did not report is ``None``,
    never guessed."""

    count: int
    mean_ms: float
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    std_ms: float | None
    min_ms: float | None
    max_ms: float | None

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"a latency summary needs at least one run, got count={self.count}")
        if not (self.mean_ms >= 0 and math.isfinite(self.mean_ms)):
            raise ValueError(f"mean latency must be a finite number >= 0, got {self.mean_ms}")

    @property
    def missing(self) -> tuple[str, ...]:
        """Names of the figures nobody reported."""
        return tuple(name for name in OPTIONAL_STATS if getattr(self, name) is None)

    @property
    def cv(self) -> float | None:
        """Coefficient of variation (std / mean); None when the std is unknown."""
        if self.std_ms is None:
            return None
        return self.std_ms / self.mean_ms if self.mean_ms > 0 else 0.0

    @property
    def ci95_ms(self) -> float | None:
        """Half-width of the 95 % confidence interval of the mean (normal approximation)."""
        if self.std_ms is None:
            return None
        return Z95 * self.std_ms / math.sqrt(self.count)

    def required_runs(self, relative_error: float = 0.01) -> int | None:
        """Timed runs needed for the 95 % interval of the mean to be within
        ``relative_error`` of the mean, at this sample's coefficient of variation."""
        if relative_error <= 0:
            raise ValueError("relative error must be > 0")
        cv = self.cv
        if cv is None:
            return None
        return max(1, math.ceil((Z95 * cv / relative_error) ** 2))

    @classmethod
    def from_ns(cls, samples_ns: Sequence[int]) -> LatencySummary:
        if not samples_ns:
            raise ValueError("cannot summarise an empty sample")
        values = sorted(s / NS_PER_MS for s in samples_ns)
        count = len(values)
        mean = math.fsum(values) / count
        variance = math.fsum((v - mean) ** 2 for v in values) / (count - 1) if count > 1 else 0.0
        return cls(
            count=count,
            mean_ms=mean,
            p50_ms=percentile(values, 0.50),
            p90_ms=percentile(values, 0.90),
            p99_ms=percentile(values, 0.99),
            std_ms=math.sqrt(variance),
            min_ms=values[0],
            max_ms=values[-1],
        )
