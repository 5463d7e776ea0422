"""Per-DVFS-level reconfiguration (after RT3): for one device, at each DVFS level it was
measured at, the variant that meets LC (and AC) there at the least energy. A battery device
that lowers its frequency (to save charge, or because it heats) can switch to the variant
its level calls for; the table is exported as JSON for its runtime to load.

Only measured candidates carry a level (the predictor learns one setting per device), so
the table covers the levels a sweep (``bench run --dvfs sweep``) measured.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy
import pandas

from hilbench.core.constraints import Constraints
from hilbench.core.errors import SettingsError
from hilbench.selector.solve import solve

FORMAT = "hilbench-reconfiguration"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class LevelChoice:
    """One DVFS level: its label and pinned levels, the chosen candidate (None when no
    variant is feasible there) and why not."""

    dvfs: str
    levels: dict[str, Any]
    best: dict[str, Any] | None
    why: str


def _top_khz(levels: Mapping[str, Any]) -> float:
    values = [float(v) for k, v in levels.items() if k != "power_mode"
              and isinstance(v, int | float)]
    return max(values) if values else numpy.inf  # the default (unpinned) level first


def reconfiguration(frame: pandas.DataFrame, device: str, constraints: Constraints,
                    objective: str = "energy") -> list[LevelChoice]:
    """The table for ``device``, highest level first."""
    mine = frame[(frame["device"] == device) & (frame["source"] == "measured")]
    if mine.empty:
        raise SettingsError(f"{device} has no measured candidate of these models: measure "
                            f"them at its DVFS levels (bench run --dvfs sweep -d {device})")
    choices = []
    for label, group in mine.groupby("dvfs", sort=False):
        levels = dict(group["dvfs_levels"].iloc[0] or {})
        selection = solve(group, constraints, objective)
        why = "" if selection.best is not None else selection.devices[device]
        choices.append(LevelChoice(str(label), levels, selection.best, why))
    return sorted(choices, key=lambda c: (-_top_khz(c.levels), c.dvfs))


def export(choices: list[LevelChoice], device: str, constraints: Constraints,
           objective: str, paths: Mapping[str, str]) -> dict[str, Any]:
    """The table as a device runtime loads it: per level, the pinned frequencies and the
    model file to run (sha256 and path), or none with the reason."""
    latency = constraints.latency
    accuracy = constraints.accuracy
    return {
        "format": FORMAT, "version": FORMAT_VERSION, "created_at": time.time(),
        "device": device, "objective": objective,
        "latency_constraint": ({"limit_ms": latency.limit_ms, "statistic": latency.statistic}
                               if latency else None),
        "accuracy_constraint": ({"minimum": accuracy.minimum, "metric": accuracy.metric,
                                 "dataset": accuracy.dataset} if accuracy else None),
        "risk": constraints.risk,
        "levels": [_level(choice, paths) for choice in choices],
    }


def _number(value: Any) -> float | None:
    number = float(value)
    return None if numpy.isnan(number) else number


def _level(choice: LevelChoice, paths: Mapping[str, str]) -> dict[str, Any]:
    entry: dict[str, Any] = {"dvfs": choice.dvfs, "pinned_khz": {
        k: v for k, v in choice.levels.items() if k != "power_mode"},
        "power_mode": choice.levels.get("power_mode")}
    best = choice.best
    if best is None:
        return {**entry, "model": None, "why": choice.why}
    sha = str(best["model_sha256"])
    return {**entry, "model": str(best["model"]), "model_sha256": sha,
            "model_path": paths.get(sha), "batch": int(best["batch"]),
            "latency_ms": _number(best["latency_ms"]), "energy_mj": _number(best["energy_mj"]),
            "power_w": _number(best["power_w"]), "accuracy": _number(best["accuracy"])}
