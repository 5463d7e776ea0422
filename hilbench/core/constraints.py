"""What a deployment must meet and what it should minimise: the selector's question.

``LatencyConstraint`` is LC on one latency statistic (``p90`` by default: a tail, not a
mean); ``AccuracyConstraint`` is AC on one metric, optionally of one dataset; ``Risk`` says
which end of a latency interval must meet LC (a predicted candidate is feasible only when
the upper end of its interval meets LC by default). ``OBJECTIVES`` are what a feasible
candidate is ranked by: the lowest energy, latency, power or cost, or the highest accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hilbench.core.errors import SettingsError

LATENCY_STATISTICS = ("mean", "p50", "p90", "p99")
OBJECTIVES = ("energy", "latency", "power", "cost", "accuracy")
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

    def __post_init__(self) -> None:
        if self.risk not in RISKS:
            raise SettingsError(f"risk {self.risk!r}: use one of {', '.join(RISKS)}")


def check_objective(objective: str) -> str:
    if objective not in OBJECTIVES:
        raise SettingsError(f"objective {objective!r}: use one of {', '.join(OBJECTIVES)}")
    return objective
