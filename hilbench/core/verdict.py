"""VALID / INVALID verdicts with the rule that failed (as MLPerf LoadGen reports them)."""

from __future__ import annotations

from dataclasses import dataclass

from hilbench.core.settings import BenchmarkSettings
from hilbench.core.stats import LatencySummary


@dataclass(frozen=True)
class Verdict:
    """Whether a measurement can be trusted, and if not, every rule it broke."""

    reasons: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.reasons

    @property
    def label(self) -> str:
        return "VALID" if self.valid else "INVALID"

    def describe(self) -> str:
        return self.label if self.valid else f"INVALID: {'; '.join(self.reasons)}"


def judge(summary: LatencySummary, timed_duration_s: float, settings: BenchmarkSettings) -> Verdict:
    """Apply the minimum-count, minimum-duration and stability rules."""
    reasons: list[str] = []
    if summary.count < settings.min_runs:
        reasons.append(f"too few runs: {summary.count} < {settings.min_runs}")
    if timed_duration_s < settings.min_duration_s:
        reasons.append(f"too short: {timed_duration_s:.3g} s < {settings.min_duration_s:.3g} s")
    cv = summary.cv
    if cv is None:
        reasons.append("stability unknown: no standard deviation was reported")
    elif cv > settings.max_cv:
        reasons.append(f"unstable: coefficient of variation {cv:.1%} > {settings.max_cv:.0%}")
    return Verdict(tuple(reasons))
