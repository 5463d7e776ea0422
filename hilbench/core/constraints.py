"""What a deployment must meet and what it should minimise: the selector's question.

``LatencyConstraint`` is LC on one latency statistic (``p90`` by default: a tail, not a
mean); ``AccuracyConstraint`` is AC on one metric, optionally of one dataset; ``Risk`` says
which end of a latency interval must meet LC (a predicted candidate is feasible only when
the upper end of its interval meets LC by default). A required inference rate adds a
bound of its own: at 50 inferences per second each must finish within 20 ms, or the queue
grows without end. ``OBJECTIVES`` are what a feasible candidate is ranked by: the lowest
energy, latency, power or cost, or the highest accuracy or battery life (at the rate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hilbench.core.errors import SettingsError

LATENCY_STATISTICS = ("mean", "p50", "p90", "p99")
OBJECTIVES = ("energy", "latency", "power", "cost", "accuracy", "battery")
RISKS = ("upper", "median")


@dataclass(frozen=True)
class LatencyConstraint:
    limit_ms: float
    statistic: str = "p90"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.limit_ms) and self.limit_ms > 0):
            raise SettingsError(f"the latency constraint must be a positive duration, not "
                                f"{self.limit_ms} ms")
        if self.statistic not in LATENCY_STATISTICS:
            raise SettingsError(f"latency statistic {self.statistic!r}: use one of "
                                f"{', '.join(LATENCY_STATISTICS)}")

    def describe(self) -> str:
        return f"{self.statistic} <= {self.limit_ms:g} ms"


@dataclass(frozen=True)
class AccuracyConstraint:
    minimum: float
    metric: str | None = None
    dataset: str | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.minimum):
            raise SettingsError(f"the accuracy constraint must be a number, not {self.minimum}")

    def describe(self) -> str:
        what = self.metric or "accuracy"
        return f"{what} >= {self.minimum:g}" + (f" on {self.dataset}" if self.dataset else "")


@dataclass(frozen=True)
class Constraints:
    latency: LatencyConstraint | None = None
    accuracy: AccuracyConstraint | None = None
    risk: str = "upper"
    rate_per_s: float | None = None  # inferences (calls at the selected batch) per second

    def __post_init__(self) -> None:
        if self.risk not in RISKS:
            raise SettingsError(f"risk {self.risk!r}: use one of {', '.join(RISKS)}")
        if self.rate_per_s is not None and not (math.isfinite(self.rate_per_s)
                                                and self.rate_per_s > 0):
            raise SettingsError(f"the inference rate must be a positive number per second, "
                                f"not {self.rate_per_s}")

    def bound_ms(self) -> float:
        """The latency a candidate must meet: LC, or the time between two inferences at the
        required rate when that is shorter; inf when neither is asked."""
        limit = self.latency.limit_ms if self.latency else math.inf
        if self.rate_per_s is not None:
            limit = min(limit, 1000.0 / self.rate_per_s)
        return limit

    def bound_by_rate(self) -> bool:
        return self.rate_per_s is not None and (
            self.latency is None or 1000.0 / self.rate_per_s < self.latency.limit_ms)

    def describe_latency(self, statistic: str = "p90") -> str | None:
        """``p90 <= 20 ms``, ``p90 <= 20 ms (50/s)`` when the rate sets the bound, or None."""
        if self.latency is None and self.rate_per_s is None:
            return None
        shown = self.latency.statistic if self.latency else statistic
        text = f"{shown} <= {self.bound_ms():.4g} ms"
        return text + (f" (one inference every {self.bound_ms():.4g} ms at "
                       f"{self.rate_per_s:g}/s)" if self.bound_by_rate() else "")


def check_objective(objective: str) -> str:
    if objective not in OBJECTIVES:
        raise SettingsError(f"objective {objective!r}: use one of {', '.join(OBJECTIVES)}")
    return objective
