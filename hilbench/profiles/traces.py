"""A stored run's sensor traces as one table, in display units: power in W (an energy
counter's readings become the mean power between two of them), frequencies in MHz,
temperatures in °C. Times are seconds from the start of the timed runs, so the timed window
is [0, its length]."""

from __future__ import annotations

from itertools import pairwise

import pandas

from hilbench.core.telemetry import Series, Telemetry

TRACE_COLUMNS = ("sensor", "label", "kind", "unit", "t_s", "value", "timed")
# raw unit -> (kind, display unit, divisor)
_DISPLAY = {"W": ("power", "W", 1.0), "kHz": ("frequency", "MHz", 1e3),
            "Hz": ("frequency", "MHz", 1e6), "m°C": ("temperature", "°C", 1e3)}


def sensor_label(sensor: str) -> str:
    """A short name for a sensor: ``cpufreq policy4``, ``devfreq 17000000.ga10b``,
    ``thermal_zone1``; power sensors keep their own (``ina3221:VDD_IN``)."""
    parts = sensor.strip("/").split("/")
    if "cpufreq" in parts and len(parts) >= 2:
        return f"cpufreq {parts[-2]}"
    if "devfreq" in parts and len(parts) >= 2:
        return f"devfreq {parts[-2]}"
    if "thermal" in parts and len(parts) >= 2:
        return parts[-2]
    return sensor


def _points(series: Series) -> list[tuple[float, float]]:
    """(t, value) in display units; an energy counter (J) as W between readings (at the
    later one), a counter that fell (wrapped) skipped."""
    pairs = list(zip(series.t_s, series.values, strict=True))
    if series.unit != "J":
        divisor = _DISPLAY[series.unit][2]
        return [(t, v / divisor) for t, v in pairs]
    return [(t1, (v1 - v0) / (t1 - t0)) for (t0, v0), (t1, v1) in pairwise(pairs)
            if t1 > t0 and v1 >= v0]


def run_traces(telemetry: Telemetry | None) -> pandas.DataFrame:
    """One row per reading of every power, frequency and temperature series
    (``TRACE_COLUMNS``); empty when nothing was sampled. Other sensors (raw currents and
    voltages) are left out: the power they give is a series of its own."""
    rows = []
    if telemetry is not None:
        origin = telemetry.window_start_s or 0.0
        start = telemetry.window_start_s if telemetry.window_start_s is not None else -1e300
        end = telemetry.window_end_s if telemetry.window_end_s is not None else 1e300
        for series in telemetry.series:
            if series.unit not in _DISPLAY and series.unit != "J":
                continue
            kind, unit, _ = _DISPLAY.get(series.unit, ("power", "W", 1.0))
            label = sensor_label(series.sensor)
            rows += [{"sensor": series.sensor, "label": label, "kind": kind, "unit": unit,
                      "t_s": t - origin, "value": value, "timed": start <= t <= end}
                     for t, value in _points(series)]
    return pandas.DataFrame(rows, columns=list(TRACE_COLUMNS))
