"""Constraint solving over candidates: which (device, model, setting) meet LC and AC, which
one is best for the objective, the Pareto front, and why every other device lost.

Candidates are a table (``CANDIDATE_COLUMNS``), one row per (device, model, DVFS level and
runtime setting), measured or predicted; every step is a numpy operation over the columns,
so 100,000 candidates solve in well under a second.

A candidate is feasible when it has a latency, the latency the risk names (the upper end of
its interval by default: a prediction of 18 ms [12, 26] does not meet 20 ms) meets LC, and
its accuracy meets AC (a candidate without an accuracy record does not, when AC is asked).
The best is the feasible one with the lowest objective; ties, and candidates whose objective
is unknown (no energy figure), go by latency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy
import pandas

from hilbench.core.constraints import Constraints, check_objective
from hilbench.core.errors import SettingsError
from hilbench.selector.battery import battery_hours, missing
from hilbench.selector.pareto import pareto_front

CANDIDATE_COLUMNS = (
    "device", "model", "model_sha256", "batch", "setting", "dvfs", "dvfs_levels", "source",
    "latency_ms", "latency_lower_ms", "latency_upper_ms",
    "energy_mj", "power_w", "idle_w", "battery_wh", "battery_h", "cost", "accuracy", "note",
)
FLOAT_COLUMNS = frozenset(name for name in CANDIDATE_COLUMNS if name.endswith(
    ("_ms", "_mj", "_w", "_wh", "_h")) or name in ("cost", "accuracy"))
OBJECTIVE_COLUMNS = {"energy": "energy_mj", "latency": "latency_ms", "power": "power_w",
                     "cost": "cost", "accuracy": "accuracy", "battery": "battery_h"}
OBJECTIVE_UNITS = {"energy": "mJ/inference", "latency": "ms", "power": "W", "cost": "",
                   "accuracy": "", "battery": "h"}
MAXIMISED = frozenset({"accuracy", "battery"})
NEAREST = 5


@dataclass(frozen=True)
class Selection:
    """The answer: ``best`` (None when nothing is feasible), the feasible candidates ranked,
    the Pareto front, one line per device saying why it lost (or that it holds the pick), and
    when nothing is feasible the nearest candidates."""

    best: dict[str, Any] | None
    ranked: pandas.DataFrame
    pareto: pandas.DataFrame
    devices: dict[str, str]
    nearest: pandas.DataFrame
    objective: str
    constraints: Constraints
    notes: tuple[str, ...] = field(default=())
    candidates: pandas.DataFrame | None = None


def empty_candidates() -> pandas.DataFrame:
    return pandas.DataFrame({name: pandas.Series(dtype=float if name in FLOAT_COLUMNS
                                                 else object) for name in CANDIDATE_COLUMNS})


def checked_latency(frame: pandas.DataFrame, constraints: Constraints) -> numpy.ndarray:
    """The latency each candidate is held to LC by: its upper bound (risk ``upper``) or its
    value (``median``); NaN where it has none."""
    column = "latency_upper_ms" if constraints.risk == "upper" else "latency_ms"
    values: numpy.ndarray = frame[column].to_numpy(dtype=float)
    return values


def feasibility(frame: pandas.DataFrame, constraints: Constraints
                ) -> tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """Per candidate: has a latency, meets LC, meets AC (NaN compares false)."""
    latency = checked_latency(frame, constraints)
    has_latency = numpy.isfinite(latency)
    meets_lc = has_latency.copy()
    meets_lc &= latency <= constraints.bound_ms()
    accuracy = frame["accuracy"].to_numpy(dtype=float)
    meets_ac = numpy.ones(len(frame), dtype=bool)
    if constraints.accuracy is not None:
        meets_ac = numpy.isfinite(accuracy) & (accuracy >= constraints.accuracy.minimum)
    return has_latency, meets_lc, meets_ac


def objective_score(frame: pandas.DataFrame, objective: str) -> numpy.ndarray:
    """Per candidate, the objective as a figure to minimise (accuracy negated); unknown
    figures are +inf."""
    score = frame[OBJECTIVE_COLUMNS[objective]].to_numpy(dtype=float)
    if objective in MAXIMISED:
        score = -score
    found: numpy.ndarray = numpy.where(numpy.isfinite(score), score, numpy.inf)
    return found


def _ranked(frame: pandas.DataFrame, objective: str) -> pandas.DataFrame:
    score = objective_score(frame, objective)
    order = numpy.lexsort((frame["latency_ms"].to_numpy(dtype=float), score))
    ranked: pandas.DataFrame = frame.iloc[order]
    return ranked


def pareto(frame: pandas.DataFrame) -> pandas.DataFrame:
    """Candidates no other beats on latency, accuracy and energy at once; a dimension no
    candidate has a figure for is left out, and candidates lacking an included figure are
    not on the front."""
    dimensions = [("latency_ms", 1.0), ("accuracy", -1.0), ("energy_mj", 1.0)]
    used = [(name, sign) for name, sign in dimensions
            if frame[name].notna().any()] if len(frame) else []
    if not used or "latency_ms" not in {name for name, _ in used}:
        return frame.iloc[:0]
    values = numpy.column_stack([frame[name].to_numpy(dtype=float) * sign
                                 for name, sign in used])
    complete = numpy.flatnonzero(numpy.isfinite(values).all(axis=1))
    front: pandas.DataFrame = frame.iloc[complete[pareto_front(values[complete])]]
    return front


def with_battery_life(frame: pandas.DataFrame, constraints: Constraints) -> pandas.DataFrame:
    """``frame`` with ``battery_h`` filled at the required rate (left as is without one)."""
    if constraints.rate_per_s is None or frame.empty:
        return frame
    return frame.assign(battery_h=battery_hours(frame, constraints.rate_per_s))


def solve(frame: pandas.DataFrame, constraints: Constraints, objective: str = "energy"
          ) -> Selection:
    """The best feasible candidate for ``objective``, the front, and each device's story."""
    check_objective(objective)
    if objective == "battery" and constraints.rate_per_s is None:
        raise SettingsError("--objective battery needs the inference rate the device serves: "
                            "--rate N (per second)")
    frame = with_battery_life(frame, constraints)
    has_latency, meets_lc, meets_ac = feasibility(frame, constraints)
    feasible = has_latency & meets_lc & meets_ac
    ranked = _ranked(frame[feasible], objective)
    best = {str(k): v for k, v in ranked.iloc[0].to_dict().items()} if len(ranked) else None
    notes: list[str] = []
    if best is not None and not math.isfinite(float(best[OBJECTIVE_COLUMNS[objective]])):
        notes.append(f"no feasible candidate has a figure for {objective}: ranked by latency")
    elif best is not None:
        unknown = int(ranked[OBJECTIVE_COLUMNS[objective]].isna().sum())
        if unknown:
            notes.append(f"{unknown} feasible candidate{'s' if unknown != 1 else ''} without "
                         f"{objective} figures ranked last")
    context = _Context(frame, constraints, objective, has_latency, meets_lc, meets_ac, best)
    devices = {str(name): context.explain(str(name)) for name in frame["device"].unique()}
    nearest = frame.iloc[:0] if best is not None else context.nearest()
    return Selection(best, ranked, pareto(frame), devices, nearest, objective, constraints,
                     tuple(notes), frame)


def _ms(value: float) -> str:
    return f"{value:.3g} ms"


@dataclass
class _Context:
    frame: pandas.DataFrame
    constraints: Constraints
    objective: str
    has_latency: numpy.ndarray
    meets_lc: numpy.ndarray
    meets_ac: numpy.ndarray
    best: dict[str, Any] | None

    def _label(self, row: pandas.Series) -> str:
        setting = str(row["setting"] or "")
        return f"{row['model']}" + (f" ({setting})" if setting else "")

    def _lc_ratio(self) -> numpy.ndarray:
        latency = checked_latency(self.frame, self.constraints)
        ratio: numpy.ndarray = latency / self.constraints.bound_ms()
        return ratio

    def __post_init__(self) -> None:
        codes, names = pandas.factorize(self.frame["device"])
        self._codes = codes
        self._index = {str(name): i for i, name in enumerate(names)}

    def explain(self, device: str) -> str:
        mine = self._codes == self._index[device]
        feasible = mine & self.has_latency & self.meets_lc & self.meets_ac
        if feasible.any():
            return self._feasible_story(device, feasible)
        if not (mine & self.has_latency).any():
            notes = [str(n) for n in self.frame.loc[mine, "note"] if n]
            why = notes[0] if notes else "no candidate"
            return f"not measured and not predictable: {why}"
        timed = mine & self.has_latency
        if self.constraints.accuracy is not None and not (timed & self.meets_ac).any():
            story = self._accuracy_story(timed)
            untimed = mine & self.meets_ac & ~self.has_latency
            if untimed.any():  # the accurate enough ones have no latency
                row = self.frame.iloc[int(numpy.flatnonzero(untimed)[0])]
                story += (f"; {row['model']}, which does, is not measured and not "
                          f"predictable: {row['note'] or 'no candidate'}")
            return story
        return self._latency_story(timed & self.meets_ac)

    def _feasible_story(self, device: str, feasible: numpy.ndarray) -> str:
        assert self.best is not None  # some candidate is feasible
        if self.best["device"] == device:
            return "best: holds the pick"
        column = OBJECTIVE_COLUMNS[self.objective]
        own = _ranked(self.frame[feasible], self.objective).iloc[0]
        mine, theirs = float(own[column]), float(self.best[column])
        if self.objective == "battery" and not math.isfinite(mine) and missing(own):
            return f"feasible, but its battery life is unknown: {missing(own)}"
        unit = OBJECTIVE_UNITS[self.objective]
        if self.objective in MAXIMISED and math.isfinite(mine) and math.isfinite(theirs):
            what = "battery life" if self.objective == "battery" else self.objective
            return (f"feasible, but its best ({self._label(own)}) reaches {what} "
                    f"{mine:.4g}{' ' + unit if unit else ''} against the pick's "
                    f"{theirs:.4g}{' ' + unit if unit else ''}")
        if math.isfinite(mine) and math.isfinite(theirs) and theirs > 0:
            return (f"feasible, but its best ({self._label(own)}) costs {mine / theirs:.2f}x "
                    f"the pick's {self.objective} ({mine:.3g} vs {theirs:.3g}"
                    f"{' ' + unit if unit else ''})")
        return (f"feasible, but its best ({self._label(own)}) ranks after the pick "
                f"({self.objective} unknown)")

    def _accuracy_story(self, mine: numpy.ndarray) -> str:
        assert self.constraints.accuracy is not None
        accuracy = self.frame["accuracy"].to_numpy(dtype=float)
        known = mine & numpy.isfinite(accuracy)
        wanted = self.constraints.accuracy.describe()
        if not known.any():
            return f"no accuracy record for its candidates ({wanted} asked)"
        top = self.frame.iloc[int(numpy.flatnonzero(known)[numpy.argmax(accuracy[known])])]
        return (f"no variant reaches AC ({wanted}): best {float(top['accuracy']):.4g} "
                f"({top['model']})")

    def _latency_story(self, candidates: numpy.ndarray) -> str:
        ratio = self._lc_ratio()
        index = numpy.flatnonzero(candidates)
        pick = int(index[numpy.argmin(ratio[index])])
        row = self.frame.iloc[pick]
        constraints = self.constraints
        statistic = constraints.latency.statistic if constraints.latency else "latency"
        upper = constraints.risk == "upper" and row["source"] == "predicted"
        value = float(checked_latency(self.frame, constraints)[pick])
        shown = f"{statistic} {'upper bound ' if upper else ''}{_ms(value)}"
        what = (f"the {_ms(constraints.bound_ms())} between inferences at "
                f"{constraints.rate_per_s:g}/s" if constraints.bound_by_rate() else "LC")
        return (f"nearest feasible variant is {ratio[pick]:.2f}x {what}: "
                f"{self._label(row)}, {shown} > {_ms(constraints.bound_ms())}")

    def nearest(self) -> pandas.DataFrame:
        """The candidates closest to feasible: those meeting AC by how far over LC they
        are; when none meets AC, the most accurate ones that have a latency."""
        ratio = self._lc_ratio()
        close = self.has_latency & self.meets_ac
        if close.any():
            index = numpy.flatnonzero(close)
            order = index[numpy.argsort(ratio[index], kind="stable")][:NEAREST]
            return self.frame.iloc[order]
        accuracy = self.frame["accuracy"].to_numpy(dtype=float)
        index = numpy.flatnonzero(self.has_latency)
        score = numpy.where(numpy.isfinite(accuracy[index]), -accuracy[index], numpy.inf)
        order = index[numpy.lexsort((ratio[index], score))][:NEAREST]
        return self.frame.iloc[order]
