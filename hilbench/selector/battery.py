"""Battery life of a candidate on a battery device serving a steady inference rate.

Between inferences the device idles; each inference adds what running the model costs above
idle. A run's figures give both: its energy per inference (idle included) over its average
power is the time one inference held the device, and that time at idle power is what the
device would have drawn anyway. So, at ``rate`` inferences per second::

    active J  = energy J - idle W x (energy J / power W)
    average W = idle W + rate x active J
    hours     = battery Wh / average W

A candidate without an energy figure, an idle power or a battery capacity has no battery
life (NaN), and ``missing`` says which.
"""

from __future__ import annotations

import numpy
import pandas


def battery_hours(frame: pandas.DataFrame, rate_per_s: float) -> numpy.ndarray:
    """Hours on a full battery, per candidate, at ``rate_per_s`` inferences per second."""
    energy_j = frame["energy_mj"].to_numpy(dtype=float) / 1000.0
    power_w = frame["power_w"].to_numpy(dtype=float)
    idle_w = frame["idle_w"].to_numpy(dtype=float)
    capacity_wh = frame["battery_wh"].to_numpy(dtype=float)
    with numpy.errstate(divide="ignore", invalid="ignore"):
        busy_s = energy_j / power_w
        active_j = numpy.maximum(energy_j - idle_w * busy_s, 0.0)  # noise can dip below idle
        average_w = idle_w + rate_per_s * active_j
        hours: numpy.ndarray = numpy.where(average_w > 0, capacity_wh / average_w, numpy.nan)
    return hours


def missing(row: pandas.Series) -> str:
    """What keeps ``row`` from having a battery life ("" when nothing does)."""
    if not numpy.isfinite(float(row["battery_wh"])):
        return ("no battery capacity known (its probe found no battery; give it with "
                "--battery DEVICE=WH)")
    if not numpy.isfinite(float(row["idle_w"])):
        return "no idle power measured on it (a run with a power sensor measures it)"
    if not numpy.isfinite(float(row["energy_mj"])):
        return "no energy figure (no power sensor)"
    return ""
