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


@dataclass(frozen=True)
class LatencySummary:
    """Latency statistics in milliseconds over ``count`` timed inferences."""

    count: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    std_ms: float
    min_ms: float
    max_ms: float

    @property
    def cv(self) -> float:
        """Coefficient of variation (std / mean)."""
        return self.std_ms / self.mean_ms if self.mean_ms > 0 else 0.0

    @property
    def ci95_ms(self) -> float:
        """Half-width of the 95 % confidence interval of the mean (normal approximation)."""
        return Z95 * self.std_ms / math.sqrt(self.count)

    def required_runs(self, relative_error: float = 0.01) -> int:
        """Timed runs needed for the 95 % interval of the mean to be within
        ``relative_error`` of the mean, at this sample's coefficient of variation."""
        if relative_error <= 0:
            raise ValueError("relative error must be > 0")
        return max(1, math.ceil((Z95 * self.cv / relative_error) ** 2))

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
