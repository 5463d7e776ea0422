"""The closed loop: a pick that was only predicted is measured before it is believed, and a
measured pick is checked against what the predictions leave open.

While the best feasible candidate is a prediction, the ``top_k`` best predicted candidates
are measured (``measure`` runs them on the devices and stores the runs), and the selection
is made again from the store: a measured candidate now stands for itself. Once the pick is a
measurement, the predicted candidates that could still beat it (*contenders*: the lower end
of their latency interval meets LC, they meet AC, and their objective at that lower end is
better than the pick's) are measured the same way, best first, until none is left. A pair
measured without a VALID run is not predicted again (the prediction was not confirmed, and
the measurement cannot be trusted); its row says so. When nothing is feasible, the
predictions that could be (their lower bound meets LC) are measured the same way. The loop
ends when the pick is a measurement no prediction can beat, when nothing is or could be
feasible, or after ``max_rounds``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy
import pandas

from hilbench.selector.solve import (
    Selection,
    feasibility,
    objective_score,
)

Pair = tuple[str, str]  # (device, model sha256)
UNCONFIRMED = ("measured while verifying, without a VALID run: the prediction is not "
               "trusted (bench profiles show for the run)")


@dataclass(frozen=True)
class Pick:
    """A candidate to measure."""

    device: str
    model: str
    model_sha256: str
    batch: int

    @property
    def pair(self) -> Pair:
        return (self.device, self.model_sha256)


@dataclass(frozen=True)
class Round:
    """One turn of the loop: the pick that started it (a prediction, or a measurement with
    contenders; None when nothing was feasible yet), and what was measured."""

    pick: Pick | None
    measured: tuple[Pick, ...]


@dataclass(frozen=True)
class Verified:
    """The final selection, the rounds it took, and how it ended: ``measured`` (the pick is
    a measurement no prediction can beat), ``was measured`` (so before any round),
    ``nothing feasible`` or ``rounds exhausted`` (the pick is still a prediction, or
    contenders are left)."""

    selection: Selection
    rounds: tuple[Round, ...]
    status: str

    @property
    def measurements(self) -> int:
        return sum(len(r.measured) for r in self.rounds)


def _pick(row: dict[str, object] | pandas.Series) -> Pick:
    return Pick(str(row["device"]), str(row["model"]), str(row["model_sha256"]),
                int(float(str(row["batch"]))))


def unconfirmed(frame: pandas.DataFrame, tried: frozenset[Pair]) -> pandas.DataFrame:
    """``frame`` with the predicted rows of pairs already measured emptied (no latency, a
    note): their runs were not VALID, or they would be measured rows now."""
    if not tried or frame.empty:
        return frame
    pairs = list(zip(frame["device"], frame["model_sha256"], strict=True))
    hit = numpy.array([pair in tried for pair in pairs]) & (
        frame["source"] == "predicted").to_numpy()
    if not hit.any():
        return frame
    changed = frame.copy()
    for column in ("latency_ms", "latency_lower_ms", "latency_upper_ms", "energy_mj",
                   "power_w"):
        changed.loc[hit, column] = numpy.nan
    changed.loc[hit, "source"] = "none"
    changed.loc[hit, "note"] = UNCONFIRMED
    return changed


def contenders(selection: Selection, tried: frozenset[Pair]) -> pandas.DataFrame:
    """Predicted candidates not measured yet that their intervals allow to be feasible and
    better than the measured pick (any, when nothing is feasible), the most promising
    first."""
    frame, best = selection.candidates, selection.best
    if frame is None or frame.empty:
        return pandas.DataFrame()
    constraints, objective = selection.constraints, selection.objective
    lower = frame["latency_lower_ms"].to_numpy(dtype=float)
    optimistic = frame.assign(latency_upper_ms=lower, latency_ms=lower)
    has, meets_lc, meets_ac = feasibility(optimistic, constraints)
    if objective == "energy":  # a prediction's energy is power x latency
        ratio = lower / frame["latency_ms"].to_numpy(dtype=float)
        optimistic = optimistic.assign(energy_mj=frame["energy_mj"] * ratio)
    score = objective_score(optimistic, objective)
    best_score = (float(objective_score(pandas.DataFrame([best]), objective)[0])
                  if best is not None else numpy.inf)  # with no pick, any could be
    pairs = zip(frame["device"], frame["model_sha256"], strict=True)
    untried = numpy.array([pair not in tried for pair in pairs])
    better = score < best_score if best is not None else numpy.ones(len(frame), dtype=bool)
    open_ = ((frame["source"] == "predicted").to_numpy() & untried & has & meets_lc & meets_ac
             & better)
    order = numpy.argsort(score[open_], kind="stable")
    chosen: pandas.DataFrame = frame[open_].iloc[order]
    return chosen


def closed_loop(select: Callable[[frozenset[Pair]], Selection],
                measure: Callable[[Sequence[Pick]], None], top_k: int = 3,
                max_rounds: int = 5) -> Verified:
    """Select, measure the best predicted candidates, select again, until the pick is a
    measurement. ``select(tried)`` builds the selection from the store, emptying the
    predicted rows of ``tried`` pairs (see ``unconfirmed``)."""
    tried: set[Pair] = set()
    rounds: list[Round] = []
    selection = select(frozenset())
    while True:
        best = selection.best
        if best is None or best["source"] == "measured":
            queue = contenders(selection, frozenset(tried))
            if queue.empty and best is None:
                return Verified(selection, tuple(rounds), "nothing feasible")
            if queue.empty:
                return Verified(selection, tuple(rounds),
                                "measured" if rounds else "was measured")
        else:
            ranked = selection.ranked
            queue = ranked[ranked["source"] == "predicted"]
        if len(rounds) >= max_rounds:
            return Verified(selection, tuple(rounds), "rounds exhausted")
        picks = [p for p in (_pick(row) for _, row in queue.iterrows())
                 if p.pair not in tried][:top_k]
        if not picks:
            return Verified(selection, tuple(rounds), "rounds exhausted")
        measure(picks)
        tried |= {p.pair for p in picks}
        rounds.append(Round(_pick(best) if best is not None else None, tuple(picks)))
        selection = select(frozenset(tried))
