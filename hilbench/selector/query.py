"""One selector question, answered: what ``bench select`` and the dashboard both call.

A ``Query`` names the models (a stored family and/or files), the devices, the constraints
and the objective; ``answer`` builds the candidates from the store and the predictor,
solves, runs the closed loop when a way to measure is given (``measure``), and builds the
per-DVFS table when asked. ``answer_json`` is the answer as ``bench select --json`` prints
it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hilbench.core.constraints import Constraints, check_objective
from hilbench.core.errors import ModelError, SettingsError
from hilbench.core.records import DeviceRecord, ModelRecord
from hilbench.profiles.family import family_named
from hilbench.profiles.store import Store
from hilbench.selector.candidates import ModelChoice, accuracies, candidates
from hilbench.selector.reconfigure import LevelChoice, export, reconfiguration
from hilbench.selector.solve import Selection, solve
from hilbench.selector.verify import Pair, Pick, Verified, closed_loop, unconfirmed

if TYPE_CHECKING:
    import pandas

    from hilbench.predictor.service import Predictor

Measure = Callable[[Sequence[DeviceRecord], Sequence[ModelChoice], Sequence[Pick]], None]


@dataclass(frozen=True)
class Query:
    """What to select: ``devices`` are the records to choose among (see
    ``devices.registry.select_devices``); ``statistic`` is the latency statistic candidates
    carry (LC's, when LC is asked); ``batteries`` override the probed battery capacity (Wh)
    per device; ``max_rounds`` 0 turns verification off."""

    devices: tuple[DeviceRecord, ...]
    constraints: Constraints = field(default_factory=Constraints)
    objective: str = "energy"
    family: str | None = None
    model_files: tuple[Path, ...] = ()
    statistic: str = "p90"
    costs: Mapping[str, float] = field(default_factory=dict)
    batteries: Mapping[str, float] = field(default_factory=dict)
    batch: int | None = None
    per_dvfs: str | None = None
    top_k: int = 3
    max_rounds: int = 5

    def __post_init__(self) -> None:
        check_objective(self.objective)
        if self.top_k < 1 or self.max_rounds < 0:
            raise SettingsError("--top-k must be >= 1 and --max-rounds >= 0")
        if self.batch is not None and self.batch < 1:
            raise SettingsError(f"batch size must be >= 1, got {self.batch}")
        names = {d.name for d in self.devices}
        for option, named in (("--cost", self.costs), ("--battery", self.batteries)):
            unknown = sorted(set(named) - names)
            if unknown:
                raise SettingsError(f"{option} names devices not selected: "
                                    f"{', '.join(unknown)}")
        if self.objective == "cost" and not self.costs:
            raise SettingsError("--objective cost needs each device's cost: "
                                "--cost DEVICE=NUMBER")
        if self.objective == "battery" and self.constraints.rate_per_s is None:
            raise SettingsError("--objective battery needs the inference rate the device "
                                "serves: --rate N (per second)")
        if self.per_dvfs is not None and self.per_dvfs not in names:
            raise SettingsError(f"--per-dvfs {self.per_dvfs}: not among the selected devices")

    def battery_capacities(self) -> dict[str, float]:
        """Each device's battery (Wh): the override, else what its probe found."""
        found = {d.name: float(d.info["battery_wh"]) for d in self.devices
                 if isinstance(d.info.get("battery_wh"), int | float)}
        return {**found, **{k: float(v) for k, v in self.batteries.items()}}


@dataclass(frozen=True)
class Answer:
    """The selection, the candidate table it was made from, how verification went, the
    accuracy metric used, the models, and the per-DVFS table when asked (with its export)."""

    selection: Selection
    table: pandas.DataFrame
    verified: Verified
    metric: str | None
    choices: tuple[ModelChoice, ...]
    levels: tuple[LevelChoice, ...] = ()
    exported: dict[str, Any] | None = None


def model_choices(store: Store, family: str | None, files: Sequence[Path]
                  ) -> list[ModelChoice]:
    """The models to choose among: the family's members and the files (recorded in the
    store); ``ModelError`` when none is named."""
    chosen: dict[str, ModelChoice] = {}
    if family is not None:
        _, members = family_named(store, family)
        for row in members.itertuples():
            chosen[str(row.sha256)] = ModelChoice(str(row.sha256), str(row.name),
                                                  str(row.path), str(row.format))
    for path in files:
        record = ModelRecord.from_file(path)
        store.add_model(record)
        chosen.setdefault(record.sha256, ModelChoice(record.sha256, record.name, str(path),
                                                     record.format))
    if not chosen:
        raise ModelError("name the models: --family BASE (a stored family) or --model FILE")
    return list(chosen.values())


def answer(store: Store, query: Query, predictor: Predictor | None, why_no_predictor: str,
           measure: Measure | None = None) -> Answer:
    """Select; with ``measure``, verify predicted picks on the devices (the closed loop)."""
    choices = model_choices(store, query.family, query.model_files)
    wanted = query.constraints.accuracy
    scores, metric = accuracies(store, choices, wanted)
    constraints = query.constraints
    if wanted is not None and wanted.metric is None and metric is not None:
        constraints = replace(constraints, accuracy=replace(wanted, metric=metric))
    batteries = query.battery_capacities()
    tables: list[pandas.DataFrame] = []

    def select_once(tried: frozenset[Pair]) -> Selection:
        table = unconfirmed(candidates(store, choices, query.devices, query.statistic,
                                       predictor, why_no_predictor, query.batch,
                                       query.costs, scores, batteries), tried)
        tables.append(table)
        return solve(table, constraints, query.objective)

    def measure_picks(picks: Sequence[Pick]) -> None:
        assert measure is not None
        measure(query.devices, choices, picks)

    rounds = query.max_rounds if measure is not None else 0
    verified = closed_loop(select_once, measure_picks, query.top_k, rounds)
    selection = verified.selection
    levels: tuple[LevelChoice, ...] = ()
    exported = None
    if query.per_dvfs is not None:
        levels = tuple(reconfiguration(tables[-1], query.per_dvfs, selection.constraints,
                                       selection.objective))
        exported = export(list(levels), query.per_dvfs, selection.constraints,
                          selection.objective, {c.sha256: c.path for c in choices})
    table = selection.candidates if selection.candidates is not None else tables[-1]
    return Answer(selection, table, verified, metric, tuple(choices), levels, exported)


def cell_value(row: Mapping[str, Any], key: str) -> Any:
    """A candidate's cell for JSON and tables: None for NaN."""
    value = row.get(key)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def records(frame: pandas.DataFrame) -> list[dict[str, Any]]:
    rows = [{str(key): value for key, value in row.items()}
            for row in frame.to_dict(orient="records")]
    return [{key: cell_value(row, key) for key in row} for row in rows]


def verification_story(verified: Verified) -> dict[str, Any]:
    return {"status": verified.status, "rounds": len(verified.rounds),
            "measurements": verified.measurements,
            "measured": [{"round": i + 1, "device": p.device, "model": p.model}
                         for i, r in enumerate(verified.rounds) for p in r.measured]}


def answer_json(found: Answer) -> dict[str, Any]:
    """The answer as ``bench select --json`` prints it."""
    selection, table = found.selection, found.table
    constraints = selection.constraints
    best = selection.best
    return {
        "best": {key: cell_value(best, key) for key in best} if best is not None else None,
        "objective": selection.objective,
        "latency_constraint": ({"limit_ms": constraints.latency.limit_ms,
                                "statistic": constraints.latency.statistic}
                               if constraints.latency else None),
        "rate_per_s": constraints.rate_per_s,
        "latency_bound_ms": (constraints.bound_ms()
                             if math.isfinite(constraints.bound_ms()) else None),
        "accuracy_constraint": ({"minimum": constraints.accuracy.minimum,
                                 "metric": found.metric,
                                 "dataset": constraints.accuracy.dataset}
                                if constraints.accuracy else None),
        "risk": constraints.risk,
        "candidates": len(table),
        "batch": int(table["batch"].iloc[0]) if len(table) else None,
        "measured": int((table["source"] == "measured").sum()),
        "predicted": int((table["source"] == "predicted").sum()),
        "feasible": len(selection.ranked),
        "devices": selection.devices,
        "pareto": records(selection.pareto),
        "nearest": records(selection.nearest),
        "notes": list(selection.notes),
        "verification": verification_story(found.verified),
        **({"reconfiguration": found.exported} if found.exported else {}),
    }
