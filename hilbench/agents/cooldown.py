"""Waiting, before a job, until the device is back under a temperature."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from hilbench.core.settings import BenchmarkSettings

POLL_S = 0.2


def max_temperature_c(root: Path) -> float | None:
    """The hottest thermal zone, in °C (sysfs gives m°C); None without thermal zones."""
    readings = []
    for zone in root.glob("sys/class/thermal/thermal_zone*/temp"):
        try:
            readings.append(int(zone.read_text().split()[0]) / 1000.0)
        except (OSError, ValueError, IndexError):
            continue
    return max(readings) if readings else None


def cool_down(root: Path, settings: BenchmarkSettings,
              progress: Callable[[str, float], None]) -> tuple[str, ...]:
    """Sleep until the hottest zone is under ``cooldown_below_c`` (at most
    ``cooldown_max_s``); returns a note of what happened, empty if nothing was asked."""
    threshold = settings.cooldown_below_c
    if threshold is None:
        return ()
    started = time.monotonic()
    temperature = max_temperature_c(root)
    if temperature is None:
        return ("cool-down: no thermal zone on the device, not waited",)
    while temperature is not None and temperature >= threshold:
        waited = time.monotonic() - started
        if waited >= settings.cooldown_max_s:
            return (f"cool-down: still {temperature:.1f} °C after {waited:.0f} s "
                    f"(wanted < {threshold:g} °C)",)
        progress("cool-down", min(1.0, waited / max(settings.cooldown_max_s, 1e-9)))
        time.sleep(POLL_S)
        temperature = max_temperature_c(root)
    waited = time.monotonic() - started
    if waited < POLL_S:
        return ()
    return (f"cool-down: waited {waited:.1f} s to reach {temperature:.1f} °C "
            f"(< {threshold:g} °C)",)
