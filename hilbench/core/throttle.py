"""Throttling: did a CPU cluster run slower than it should have while the timed runs ran?

A pinned domain (min = max) must stay at its level; an unpinned one under the
``performance`` governor must stay at its maximum. Other governors move the frequency on
purpose, so they are not judged; their frequencies are still recorded."""

from __future__ import annotations

from hilbench.core.dvfs import DomainState, DvfsState
from hilbench.core.telemetry import Telemetry

CPUFREQ_SERIES = "/sys/devices/system/cpu/cpufreq/policy{cpu}/scaling_cur_freq"


def _expected_khz(domain: DomainState) -> int | None:
    if domain.min_khz is not None and domain.min_khz == domain.max_khz:
        return domain.max_khz
    if domain.governor == "performance":
        return domain.max_khz
    return None


def _evidence(domain: DomainState, telemetry: Telemetry, expected: int) -> str | None:
    series = telemetry.get(CPUFREQ_SERIES.format(cpu=domain.cpus[0]))
    if series is None:
        return None
    below = [(t, v) for t, v in telemetry.in_window(series) if v < expected]
    if not below:
        return None
    t, slowest = min(below, key=lambda point: point[1])
    pinned = "pinned at" if domain.min_khz == domain.max_khz else "expected"
    return (f"throttled: {domain.name} at {slowest / 1000:.0f} MHz ({pinned} "
            f"{expected / 1000:.0f} MHz) at t={t:.1f} s, {len(below)} of the samples below")


def throttle_reasons(dvfs: DvfsState, telemetry: Telemetry | None) -> tuple[str, ...]:
    """One reason per CPU cluster that ran under its expected frequency during the window."""
    if telemetry is None:
        return ()
    reasons = []
    for domain in dvfs.domains:
        expected = _expected_khz(domain)
        if domain.cpus and expected is not None:
            evidence = _evidence(domain, telemetry, expected)
            if evidence:
                reasons.append(evidence)
    return tuple(reasons)


def frequency_stats_mhz(telemetry: Telemetry | None) -> dict[str, dict[str, float]]:
    """min / mean / max of every frequency series over the timed runs, in MHz."""
    stats: dict[str, dict[str, float]] = {}
    if telemetry is None:
        return stats
    for series in telemetry.series:
        scale = {"kHz": 1e3, "Hz": 1e6}.get(series.unit)
        values = [v for _, v in telemetry.in_window(series)]
        if scale is None or not values:
            continue
        stats[series.sensor] = {"min": min(values) / scale, "mean": sum(values) / len(values)
                                / scale, "max": max(values) / scale}
    return stats


def temperature_span_c(telemetry: Telemetry | None) -> tuple[float | None, float | None]:
    """The hottest zone's temperature at the first and the last sample, in °C."""
    if telemetry is None:
        return None, None
    zones = [s for s in telemetry.series if s.unit == "m°C" and s.values]
    if not zones:
        return None, None
    return (max(s.values[0] for s in zones) / 1000.0, max(s.values[-1] for s in zones) / 1000.0)
