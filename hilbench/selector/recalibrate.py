"""Recalibration of predictions on the family's own measurements.

The predictor learns a device from many networks; the variants of one family share a
structure, so its error on them is mostly one shared bias (a family the device runs 20 %
slower than predicted runs all its variants about 20 % slower). Each (device, model) pair
that is measured *and* predictable tells that bias: measured / predicted. Once a device has
such pairs, its remaining predictions are multiplied by the median of those ratios (in
log space), interval and energy with them, and say so in their note. The closed loop
therefore recalibrates between rounds: every verification measurement is a new pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy
import pandas

SHIFTED = ("latency_ms", "latency_lower_ms", "latency_upper_ms", "energy_mj")


@dataclass(frozen=True)
class Correction:
    """A device's factor (measured / predicted, median over ``models`` pairs)."""

    device: str
    factor: float
    models: int

    def note(self) -> str:
        plural = "s" if self.models != 1 else ""
        return (f"recalibrated x{self.factor:.3g} on {self.models} measured model{plural} of "
                f"these on {self.device}")


def corrections(frame: pandas.DataFrame, estimates: pandas.DataFrame) -> dict[str, Correction]:
    """Per device, the correction its measured rows give. ``estimates`` holds the
    predicted latency (same statistic, same setting as the predictions) of measured pairs:
    columns ``device``, ``model_sha256``, ``latency_ms``."""
    if frame.empty or estimates.empty:
        return {}
    measured = frame[frame["source"] == "measured"][["device", "model_sha256", "latency_ms"]]
    joined = measured.merge(estimates, on=["device", "model_sha256"],
                            suffixes=("_measured", "_predicted"))
    ratio = (joined["latency_ms_measured"].to_numpy(dtype=float)
             / joined["latency_ms_predicted"].to_numpy(dtype=float))
    usable = numpy.isfinite(ratio) & (ratio > 0)
    joined = joined[usable].assign(log_ratio=numpy.log(ratio[usable]))
    # a pair measured at several DVFS settings counts once, by its median
    pairs = joined.groupby(["device", "model_sha256"])["log_ratio"].median().reset_index()
    found = {}
    for device, group in pairs.groupby("device"):
        factor = float(numpy.exp(numpy.median(group["log_ratio"])))
        found[str(device)] = Correction(str(device), factor, len(group))
    return found


def recalibrate(frame: pandas.DataFrame, estimates: pandas.DataFrame) -> pandas.DataFrame:
    """``frame`` with each device's predicted rows corrected (see ``corrections``)."""
    found = corrections(frame, estimates)
    if not found:
        return frame
    changed = frame.copy()
    predicted = (changed["source"] == "predicted").to_numpy()
    for device, correction in found.items():
        rows = predicted & (changed["device"] == device).to_numpy()
        if not rows.any():
            continue
        for column in SHIFTED:
            changed.loc[rows, column] = changed.loc[rows, column] * correction.factor
        changed.loc[rows, "note"] = [
            f"{note}; {correction.note()}" if note else correction.note()
            for note in changed.loc[rows, "note"]]
    return changed
